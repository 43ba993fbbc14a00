//! The one error type of the HTTP API: a client fault is a 4xx with a JSON body that names the
//! fault (`{"error": "code", "message": "…"}`); only the server's own failures are 5xx. Also the
//! JSON body extractor whose rejections are such errors.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sessions::MAX_BODY_BYTES;

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

/// JSON body whose rejections are this API's 4xx JSON errors.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type",
                "the body must be JSON (Content-Type: application/json)",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::client(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                ))
            }
            // Trickled past the body timeout, or cut short.
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::client(
                StatusCode::REQUEST_TIMEOUT,
                "body",
                format!("the body did not arrive in time: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad(
                "json",
                format!("the body is not a valid request: {}", e.body_text()),
            )),
        }
    }
}
