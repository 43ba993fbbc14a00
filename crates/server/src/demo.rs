//! The demo signup endpoint: the host's backend side of the demo page. An account is created only
//! for a valid token — signed by this server, unexpired, of a session the server verified as live,
//! and not used before. A `result` event forged in the browser carries no such token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::sessions::{JsonBody, now_ms};
use crate::tokens::{TokenError, verify};

/// The signup form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    /// The user's name.
    pub name: String,
    /// The user's email.
    pub email: String,
    /// The liveness token from the widget's result.
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /demo/signup`.
pub async fn signup(
    State(app): State<AppState>,
    JsonBody(form): JsonBody<Signup>,
) -> Result<impl IntoResponse, ApiError> {
    let refused = |code, message: String| ApiError::client(StatusCode::FORBIDDEN, code, message);
    if form.name.trim().is_empty()
        || !form.email.contains('@')
        || form.name.len() > 200
        || form.email.len() > 200
    {
        return Err(ApiError::bad("form", "name and a valid email are required"));
    }
    let token = form.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        refused(
            "token",
            "no liveness token: complete the liveness check first".into(),
        )
    })?;
    let key = crate::tokens::public_key(&app.signer.public_key()).map_err(ApiError::internal)?;
    let claims = verify(&token, &key, now_ms()).map_err(|e| match e {
        TokenError::Expired(_) => {
            ApiError::client(StatusCode::GONE, "token-expired", e.to_string())
        }
        other => refused("token", other.to_string()),
    })?;
    if !claims.live {
        return Err(refused(
            "not-live",
            "the liveness check did not confirm a live person".into(),
        ));
    }
    if !app
        .store
        .use_token(&claims.sid, now_ms())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "token-used",
            format!("the token of session {} was already used", claims.sid),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "ok": true,
            "message": format!("Account created for {} (demo: nothing was stored but the audit log).", form.name.trim()),
            "session": claims.sid,
        })),
    ))
}
