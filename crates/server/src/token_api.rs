//! The token endpoints a host's backend uses:
//!
//! - `GET /.well-known/jwks.json` → the public keys that verify tokens (public; cacheable for a
//!   minute, so a rotation reaches verifiers quickly);
//! - `POST /v1/tokens/consume` with `{ token, audience? }` and `Authorization: Bearer <operator
//!   API key>` → `{ consumed: true, claims }` the first time, 409 `token-used` after: single use
//!   for a backend that keeps no state of its own.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use sha2::Digest;

use crate::AppState;
use crate::error::ApiError;
use crate::error::JsonBody;
use crate::now_ms;
use crate::tokens::{Claims, Expect, TokenError, verify};

/// The keys that verify the server's tokens now.
fn published(app: &AppState) -> jsonwebtoken::jwk::JwkSet {
    app.keys
        .ring()
        .jwks(crate::tokens::now_seconds(), app.config.token_ttl)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(published(&app)),
    )
}

/// A consume request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    /// The token the browser handed to the backend.
    pub token: String,
    /// The audience the backend expects (its own origin); checked when given.
    #[serde(default)]
    pub audience: Option<String>,
}

/// The operator's API key, kept as its SHA-256 (compared digest to digest, so the comparison's
/// time says nothing about the key).
#[derive(Clone)]
pub struct OperatorKey([u8; 32]);

impl OperatorKey {
    /// The key `text` (surrounding whitespace ignored).
    pub fn new(text: &str) -> Self {
        OperatorKey(sha2::Sha256::digest(text.trim().as_bytes()).into())
    }

    /// Whether `headers` carry `Authorization: Bearer <this key>`.
    fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| Self::new(given).0 == self.0)
    }
}

/// Refuses a request without the operator's API key (401), or every request when the server has
/// none (403).
pub fn require_operator(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &app.operator_key {
        None => Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "operator",
            "this server has no operator API key (--api-key-file or LIVENESS_API_KEY)",
        )),
        Some(key) if key.admits(headers) => Ok(()),
        Some(_) => Err(ApiError::client(
            StatusCode::UNAUTHORIZED,
            "operator",
            "an operator API key is required: Authorization: Bearer <key>",
        )),
    }
}

/// Verifies `token` against the server's own keys and consumes it: its claims the first time,
/// 409 `token-used` after, 410 when expired, 403 otherwise.
pub async fn consume_token(
    app: &AppState,
    token: &str,
    audience: Option<&str>,
) -> Result<Claims, ApiError> {
    let jwks = published(app);
    let expect = Expect {
        audience,
        issuer: Some(&app.config.issuer),
    };
    let claims = verify(token, &jwks, &expect).map_err(|e| match e {
        TokenError::Expired(_) => {
            ApiError::client(StatusCode::GONE, "token-expired", e.to_string())
        }
        other => ApiError::client(StatusCode::FORBIDDEN, "token", other.to_string()),
    })?;
    let first = app
        .store
        .consume(
            &claims.jti,
            &claims.sub,
            claims.exp.saturating_mul(1000),
            now_ms(),
        )
        .await
        .map_err(ApiError::db)?;
    if !first {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "token-used",
            format!("the token of session {} was already used", claims.sub),
        ));
    }
    Ok(claims)
}

/// `POST /v1/tokens/consume`.
pub async fn consume(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ConsumeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    require_operator(&app, &headers)?;
    let claims = consume_token(&app, &req.token, req.audience.as_deref()).await?;
    crate::telemetry::record_session(&claims.sub);
    Ok(Json(
        serde_json::json!({ "consumed": true, "claims": claims }),
    ))
}
