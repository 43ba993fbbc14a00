//! Getting a model and its manifest over HTTP in the browser (or a worker), with progress and
//! the size limit applied while the body arrives, and hashing it with WebCrypto.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use liveness_core::limits::MAX_MODEL_BYTES;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{ErrorCode, LivenessError, Result, js_message};

/// `target[name]`, or `undefined`.
pub(crate) fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `performance.now()` where there is one (pages and workers), else the wall clock.
pub(crate) fn now_ms() -> f64 {
    let performance = get(&js_sys::global(), "performance");
    get(&performance, "now")
        .dyn_into::<Function>()
        .ok()
        .and_then(|now| now.call0(&performance).ok()?.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

async fn fetch_response(url: &str) -> Result<web_sys::Response> {
    let failed = |msg: String| LivenessError::new(ErrorCode::ModelFetch, msg);
    let global = js_sys::global();
    let fetch = get(&global, "fetch")
        .dyn_into::<Function>()
        .map_err(|_| failed("fetch is not available".into()))?;
    let promise: Promise = fetch
        .call1(&global, &url.into())
        .map_err(|e| failed(format!("{url}: {}", js_message(&e))))?
        .unchecked_into();
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| failed(format!("{url}: {}", js_message(&e))))?
        .unchecked_into();
    if !response.ok() {
        return Err(failed(format!(
            "{url}: HTTP {} {}",
            response.status(),
            response.status_text()
        )));
    }
    Ok(response)
}

/// The body of `url` as text.
pub(crate) async fn fetch_text(url: &str) -> Result<String> {
    let response = fetch_response(url).await?;
    let text = response
        .text()
        .map_err(|e| LivenessError::new(ErrorCode::ModelFetch, js_message(&e)))?;
    JsFuture::from(text)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| LivenessError::new(ErrorCode::ModelFetch, format!("{url}: unreadable body")))
}

/// The body of `url` as bytes, reporting `(loaded, total)` to `progress` as they arrive, and
/// refusing a body larger than the model limit (before and while reading it).
pub(crate) async fn fetch_bytes(url: &str, progress: Option<&Function>) -> Result<Vec<u8>> {
    let failed = |msg: String| LivenessError::new(ErrorCode::ModelFetch, format!("{url}: {msg}"));
    let response = fetch_response(url).await?;
    let headers = get(&response, "headers");
    let total = get(&headers, "get")
        .dyn_into::<Function>()
        .ok()
        .and_then(|f| f.call1(&headers, &"content-length".into()).ok())
        .and_then(|v| v.as_string())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    if total > MAX_MODEL_BYTES as f64 {
        return Err(failed(format!(
            "{total} bytes; models may be at most {MAX_MODEL_BYTES}"
        )));
    }
    let body = get(&response, "body");
    let reader = get(&body, "getReader")
        .dyn_into::<Function>()
        .ok()
        .and_then(|f| f.call0(&body).ok())
        .ok_or_else(|| failed("the response has no readable body".into()))?;
    let read = get(&reader, "read")
        .dyn_into::<Function>()
        .map_err(|_| failed("the body cannot be read".into()))?;
    let mut bytes = Vec::with_capacity(total as usize);
    loop {
        let step: Promise = read
            .call0(&reader)
            .map_err(|e| failed(js_message(&e)))?
            .unchecked_into();
        let result = JsFuture::from(step)
            .await
            .map_err(|e| failed(format!("download broke off: {}", js_message(&e))))?;
        if get(&result, "done").as_bool().unwrap_or(true) {
            break;
        }
        let chunk: Uint8Array = get(&result, "value").unchecked_into();
        if (bytes.len() + chunk.length() as usize) as u64 > MAX_MODEL_BYTES {
            return Err(failed(format!(
                "more than {MAX_MODEL_BYTES} bytes; models may be at most that"
            )));
        }
        let at = bytes.len();
        bytes.resize(at + chunk.length() as usize, 0);
        chunk.copy_to(&mut bytes[at..]);
        if let Some(p) = progress {
            let loaded = bytes.len() as f64;
            let _ = p.call2(&JsValue::NULL, &loaded.into(), &total.max(loaded).into());
        }
    }
    Ok(bytes)
}

/// SHA-256 (hex) of bytes: the browser's WebCrypto where there is one (native and off the
/// wasm thread: 45 MB took 1.35 s in wasm's `sha2` with the page frozen), else `sha2`.
pub(crate) async fn sha256_of(bytes: &[u8]) -> String {
    let subtle = get(&get(&js_sys::global(), "crypto"), "subtle");
    if let Ok(digest) = get(&subtle, "digest").dyn_into::<Function>()
        && let Ok(promise) = digest.call2(&subtle, &"SHA-256".into(), &Uint8Array::from(bytes))
        && let Ok(hash) = JsFuture::from(Promise::from(promise)).await
    {
        return liveness_core::model_file::hex(&Uint8Array::new(&hash).to_vec());
    }
    liveness_core::manifest::sha256_hex(bytes)
}
