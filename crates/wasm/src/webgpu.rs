//! The WebGPU adapter, probed once per module instance, and the engine policy on it
//! (`liveness_runtime::engine::choose`).

use std::cell::RefCell;

use js_sys::{Function, Promise, Reflect};
use liveness_runtime::engine::{AdapterInfo, Preference, choose};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{LivenessError, load_error};
use crate::fetch::get;
use crate::serialize;

thread_local! {
    /// `None`: not probed yet; `Some(None)`: no WebGPU or no adapter.
    static ADAPTER: RefCell<Option<Option<AdapterInfo>>> = const { RefCell::new(None) };
}

async fn request_adapter() -> Option<AdapterInfo> {
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return None;
    }
    let request = get(&gpu, "requestAdapter").dyn_into::<Function>().ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.unchecked_into();
    let adapter = JsFuture::from(promise).await.ok()?;
    read_adapter(&adapter)
}

/// What a `GPUAdapter` says about itself (`None` for null or undefined).
fn read_adapter(adapter: &JsValue) -> Option<AdapterInfo> {
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = get(adapter, "info");
    let text = |name: &str| get(&info, name).as_string().unwrap_or_default();
    let flag = |v: JsValue| v.as_bool().unwrap_or(false);
    Some(AdapterInfo {
        is_fallback_adapter: flag(get(adapter, "isFallbackAdapter"))
            || flag(get(&info, "isFallbackAdapter")),
        vendor: text("vendor"),
        architecture: text("architecture"),
        description: text("description"),
    })
}

/// Takes the `GPUAdapter` (or `null`: none) that the caller already asked the browser for, so
/// the adapter is probed once: the worker probes it to pick which module to load.
#[wasm_bindgen(js_name = useWebgpuAdapter)]
pub fn use_webgpu_adapter(adapter: JsValue) {
    let found = read_adapter(&adapter);
    ADAPTER.with(|a| *a.borrow_mut() = Some(found));
}

/// What the browser says about its adapter, asked once (wonnx, when it runs, asks again itself).
pub(crate) async fn adapter() -> Option<AdapterInfo> {
    if let Some(known) = ADAPTER.with(|a| a.borrow().clone()) {
        return known;
    }
    let found = request_adapter().await;
    ADAPTER.with(|a| *a.borrow_mut() = Some(found.clone()));
    found
}

/// Resolves to what the browser says about its WebGPU adapter (`{ isFallbackAdapter, vendor,
/// architecture, description }`), or `null` without WebGPU or an adapter.
#[wasm_bindgen(js_name = webgpuAdapter)]
pub async fn webgpu_adapter() -> Result<JsValue, JsValue> {
    match adapter().await {
        Some(info) => serialize(&info),
        None => Ok(JsValue::NULL),
    }
}

/// The engine the policy picks for a `backend` preference (`auto`, `webgpu`, `cpu`) on this
/// browser's adapter: `{ backend, reason }`, or a `webgpu-unavailable` error.
#[wasm_bindgen(js_name = chooseBackend)]
pub async fn choose_backend(preference: Option<String>) -> Result<JsValue, JsValue> {
    let preference = Preference::parse(preference.as_deref()).map_err(load_error)?;
    let adapter = match preference {
        // Only ask for an adapter when WebGPU may be used.
        Preference::Only(liveness_runtime::Backend::Cpu) => None,
        _ => adapter().await,
    };
    let (backend, reason) = choose(preference, adapter.as_ref()).map_err(load_error)?;
    let out = js_sys::Object::new();
    let _ = Reflect::set(&out, &"backend".into(), &backend.as_str().into());
    let _ = Reflect::set(&out, &"reason".into(), &reason.into());
    Ok(out.into())
}

/// The error for a WebGPU preference without an adapter, before anything is downloaded.
pub(crate) async fn require_adapter(preference: Preference) -> Result<(), LivenessError> {
    if preference == Preference::Only(liveness_runtime::Backend::WebGpu)
        && adapter().await.is_none()
    {
        return Err(load_error(liveness_runtime::Error::WebGpuUnavailable));
    }
    Ok(())
}
