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
use crate::error::JsonBody;
use crate::token_api::consume_token;

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
    headers: axum::http::HeaderMap,
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
    // What a host's backend does: check the token against the server's keys, expecting its own
    // origin as the audience, and use it once (here in-process; a backend elsewhere calls
    // POST /v1/tokens/consume).
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    let audience = app.config.audience.as_deref().or(origin);
    let claims = consume_token(&app, &token, audience).await?;
    if !claims.live {
        return Err(refused(
            "not-live",
            "the liveness check did not confirm a live person".into(),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "ok": true,
            "message": format!("Account created for {} (demo: nothing was stored but the audit log).", form.name.trim()),
            "session": claims.sub,
        })),
    ))
}
