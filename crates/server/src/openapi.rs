//! The HTTP API's OpenAPI 3.1 document (`api/openapi.json`), served at `GET /openapi.json`. A
//! test (`tests/api.rs`) checks it against the router: every documented operation is routed,
//! and every route is documented.

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("../api/openapi.json");

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
