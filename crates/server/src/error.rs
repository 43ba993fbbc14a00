//! The one error type of the HTTP API: a client fault is a 4xx with a JSON body that names the
//! fault (`{"error": "code", "message": "…"}`); only the server's own failures are 500s.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client's request is at fault.
    #[error("{message}")]
    Client {
        /// HTTP status (4xx).
        status: StatusCode,
        /// Stable machine-readable code.
        code: &'static str,
        /// What exactly, naming the field, frame or session.
        message: String,
    },
    /// The database does not answer: 503 with `Retry-After` (nothing was decided; the client
    /// may retry), the details to the log.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server failed (model, task); the details go to the log, not the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 4xx.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
        }
    }

    /// A 400 naming a bad field or frame.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 503 for a database failure.
    pub fn db(e: impl std::fmt::Display) -> Self {
        ApiError::Unavailable(e.to_string())
    }

    /// A 500 from any error.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Client {
                status,
                code,
                message,
            } => (status, code, message),
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server's database does not answer; retry in a moment".to_owned(),
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server failed; see its log".to_owned(),
                )
            }
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": code, "message": message })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
