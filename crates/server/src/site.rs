//! The demo site: `web/` (the widget, its worker, the wasm package, the demo page) and `models/`,
//! with the strict Content-Security-Policy the widget is built for, correct MIME types, Range and
//! caching validators (tower-http's `ServeFile`), and content-hash caching for models: an ETag of
//! the file's SHA-256, and `?v=<sha256>` (the widget asks for the model that way) served as
//! immutable, so a revisit downloads nothing.
//!
//! Paths are resolved and canonicalised first: nothing outside the two folders is served (`..`,
//! dotfiles and symlinks leading out are 404s that do not echo the path), a folder is redirected
//! to its `/`-ending form on this origin and served as
//! its `index.html`, only GET and HEAD are allowed (405 with `Allow` otherwise), and an unreadable
//! file is an error response, never a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::AppState;

/// The policy the widget must work under: no inline script or style, no eval, wasm and workers
/// from this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A file as last seen: path, size, modification time.
type FileKey = (PathBuf, u64, Option<SystemTime>);

/// SHA-256 of model files, by `FileKey`.
#[derive(Default)]
pub struct HashCache(Mutex<HashMap<FileKey, String>>);

impl HashCache {
    fn sha256(&self, path: &Path, meta: &std::fs::Metadata) -> Option<String> {
        let key = (path.to_owned(), meta.len(), meta.modified().ok());
        if let Some(hit) = self.0.lock().ok()?.get(&key) {
            return Some(hit.clone());
        }
        let bytes = std::fs::read(path).ok()?;
        let sha = liveness_core::manifest::sha256_hex(&bytes);
        self.0.lock().ok()?.insert(key, sha.clone());
        Some(sha)
    }
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

/// `%XX` decoding of a URL path; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves a file of `web/` or `models/`.
pub async fn serve(State(app): State<AppState>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: GET or HEAD\n".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let raw = req.uri().path().to_owned();
    if raw == "/" {
        return Redirect::to("/demo/").into_response();
    }
    let Some(path) = percent_decode(&raw) else {
        return plain(StatusCode::BAD_REQUEST, "bad path\n".into());
    };
    let (root, rel, is_model) = match path.strip_prefix("/models/") {
        Some(rel) => (&app.config.models_dir, rel, true),
        None => (&app.config.web_dir, path.trim_start_matches('/'), false),
    };
    // The answer never echoes the path (it is the client's input).
    let not_found = || plain(StatusCode::NOT_FOUND, "not found\n".into());
    // No dotfile or dot-folder is ever served (`.git`, `.env`, editor files), nor `..`.
    if rel
        .split('/')
        .any(|s| s.starts_with('.') || s.contains('\0'))
    {
        return not_found();
    }
    let (Ok(root), Ok(mut file)) = (root.canonicalize(), root.join(rel).canonicalize()) else {
        return not_found();
    };
    // Symlinks are resolved by canonicalize: whatever leads out of the folder is not served.
    if !file.starts_with(&root) {
        return not_found();
    }
    let Ok(mut meta) = std::fs::metadata(&file) else {
        return not_found();
    };
    if meta.is_dir() {
        if !raw.ends_with('/') {
            // Always a path on this origin: `//host` would be a link to another site.
            return Redirect::permanent(&format!("/{}/", raw.trim_matches('/'))).into_response();
        }
        file = file.join("index.html");
        match std::fs::metadata(&file) {
            Ok(m) if m.is_file() => meta = m,
            _ => return not_found(),
        }
    } else if !meta.is_file() {
        return not_found();
    }
    let mut cache = "no-cache".to_owned();
    let mut etag = None;
    if is_model && let Some(sha) = app.hashes.sha256(&file, &meta) {
        let wanted = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("v=")));
        if wanted == Some(sha.as_str()) {
            cache = "public, max-age=31536000, immutable".into();
        }
        let tag = format!("\"sha256-{sha}\"");
        let matches = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
        if matches {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            if let Ok(v) = HeaderValue::from_str(&tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            if let Ok(v) = HeaderValue::from_str(&cache) {
                r.headers_mut().insert(header::CACHE_CONTROL, v);
            }
            return r;
        }
        etag = Some(tag);
    }
    let mut response = match ServeFile::new(&file).oneshot(req).await {
        Ok(r) => r.map(Body::new),
        Err(never) => match never {},
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(v) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(header::ETAG, v);
    }
    // ES modules must be served as JavaScript whatever the platform's MIME table says.
    if file.extension().is_some_and(|e| e == "js" || e == "mjs") {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        );
    }
    if file.extension().is_some_and(|e| e == "wasm") {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/wasm"),
        );
    }
    response
}
