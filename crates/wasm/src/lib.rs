//! The browser side of the liveness checker, for `web/liveness-check.js`:
//!
//! - [`Camera`]: camera capture (getUserMedia → video → canvas → five RGBA frames);
//! - [`LivenessModel`]: a model and its manifest, fetched, verified against the manifest's
//!   SHA-256, and run through wonnx on WebGPU after the trainer's own preprocessing
//!   (`liveness_core::preprocess_sample`);
//! - [`webgpu_available`]: the adapter check that must come before wonnx (without an adapter
//!   wonnx panics and its promise never settles).
//!
//! Every failure reaches JavaScript as an `Error` named `LivenessError` with a `code`
//! ([`error::ErrorCode`]). A panic (wonnx panics on wgpu errors, e.g. a lost device) cannot be
//! caught on wasm32; the panic hook reports it to the listener set with [`set_fatal_listener`],
//! and the widget then loads a fresh instance of this module.

pub mod camera;
pub mod error;
pub mod model;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use liveness_core::Frame;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub use camera::Camera;
use error::{ErrorCode, LivenessError, Result, js_message};
use model::{LoadTimings, Model, Timings, Verdict, model_input, parse_manifest, verify_sha256};

thread_local! {
    static FATAL_LISTENER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Installs the panic hook when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        web_sys::console::error_1(&message.as_str().into());
        let code = if message.contains("lost") {
            ErrorCode::DeviceLost
        } else {
            ErrorCode::Inference
        };
        let error: JsValue =
            LivenessError::new(code, format!("the runtime stopped: {message}")).into();
        FATAL_LISTENER.with(|l| {
            if let Ok(listener) = l.try_borrow()
                && let Some(f) = listener.as_ref()
            {
                let _ = f.call1(&JsValue::NULL, &error);
            }
        });
    }));
}

/// Sets the function called with a `LivenessError` when the module hits an unrecoverable
/// error (a panic). After it fires this module instance must not be used again.
#[wasm_bindgen(js_name = setFatalListener)]
pub fn set_fatal_listener(listener: Option<Function>) {
    FATAL_LISTENER.with(|l| *l.borrow_mut() = listener);
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

async fn ensure_webgpu_inner() -> Result<String> {
    let unavailable = |msg: &str| LivenessError::new(ErrorCode::WebGpuUnavailable, msg);
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into())
        .map_err(|_| unavailable("no navigator"))?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err(unavailable(
            "this browser has no WebGPU (navigator.gpu is missing)",
        ));
    }
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| unavailable("navigator.gpu.requestAdapter is missing"))?;
    let promise: Promise = request
        .call0(&gpu)
        .map_err(|e| unavailable(&js_message(&e)))?
        .unchecked_into();
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| unavailable(&js_message(&e)))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(unavailable(
            "WebGPU is present but offers no adapter (GPU blocked or disabled)",
        ));
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    Ok(format!("{} {}", field("vendor"), field("architecture"))
        .trim()
        .to_owned())
}

/// Resolves to a short description of the WebGPU adapter, or rejects with a
/// `webgpu-unavailable` `LivenessError`. Cheap: call it before asking for the camera.
#[wasm_bindgen(js_name = webgpuAvailable)]
pub async fn webgpu_available() -> std::result::Result<String, JsValue> {
    Ok(ensure_webgpu_inner().await?)
}

/// The manifest's address for a model address: `NAME.onnx` → `NAME.json` (the rule every
/// runtime shares, `liveness_core::model::manifest_url`).
#[wasm_bindgen(js_name = manifestUrl)]
pub fn manifest_url(model_url: &str) -> String {
    liveness_core::model::manifest_url(model_url)
}

async fn fetch_response(url: &str) -> Result<web_sys::Response> {
    let failed = |msg: String| LivenessError::new(ErrorCode::ModelFetch, msg);
    let global = js_sys::global();
    let fetch = Reflect::get(&global, &"fetch".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| failed("fetch is not available".into()))?;
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

async fn fetch_text(url: &str) -> Result<String> {
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

/// The body of `url` as an `ArrayBuffer`.
async fn fetch_buffer(url: &str) -> Result<JsValue> {
    let response = fetch_response(url).await?;
    let buffer = response
        .array_buffer()
        .map_err(|e| LivenessError::new(ErrorCode::ModelFetch, js_message(&e)))?;
    JsFuture::from(buffer).await.map_err(|e| {
        LivenessError::new(
            ErrorCode::ModelFetch,
            format!("{url}: download broke off: {}", js_message(&e)),
        )
    })
}

/// SHA-256 (hex) of a JS buffer: the browser's WebCrypto where there is one (native and off
/// the main thread: 45 MB took 1.35 s in wasm's `sha2` with the page frozen), else `sha2`.
async fn sha256_of(buffer: &JsValue) -> String {
    let subtle = Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|c| Reflect::get(&c, &"subtle".into()))
        .unwrap_or(JsValue::UNDEFINED);
    let digest = Reflect::get(&subtle, &"digest".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    if let Some(digest) = digest
        && let Ok(promise) = digest.call2(&subtle, &"SHA-256".into(), buffer)
        && let Ok(hash) = JsFuture::from(Promise::from(promise)).await
    {
        return Uint8Array::new(&hash)
            .to_vec()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }
    liveness_core::manifest::sha256_hex(&Uint8Array::new(buffer).to_vec())
}

/// A verified model on WebGPU. Create it with `LivenessModel.load(url)` or
/// `LivenessModel.fromBytes(bytes, manifestJson)`.
#[wasm_bindgen]
pub struct LivenessModel {
    inner: Rc<Model>,
    load_timings: LoadTimings,
}

impl LivenessModel {
    /// Verifies the model in `buffer` (an `ArrayBuffer` or `Uint8Array`) against the manifest,
    /// then builds the session; `fetch_ms` is what getting the bytes took.
    async fn build(
        buffer: &JsValue,
        manifest_json: &str,
        source: &str,
        fetch_ms: f64,
    ) -> Result<Self> {
        let started = now_ms();
        let manifest = parse_manifest(manifest_json, source)?;
        verify_sha256(&manifest, sha256_of(buffer).await, source)?;
        let verified = now_ms();
        let bytes = Uint8Array::new(buffer).to_vec();
        let model = Model::load(&bytes, manifest, source).await?;
        Ok(LivenessModel {
            inner: Rc::new(model),
            load_timings: LoadTimings {
                fetch_ms,
                verify_ms: verified - started,
                session_ms: now_ms() - verified,
            },
        })
    }
}

#[wasm_bindgen]
impl LivenessModel {
    /// Fetches `modelUrl` and its manifest (`manifestUrl`, by default `NAME.json` next to
    /// `NAME.onnx`), verifies the SHA-256 and prepares the model on WebGPU.
    pub async fn load(
        model_url: String,
        manifest_url: Option<String>,
    ) -> std::result::Result<LivenessModel, JsValue> {
        ensure_webgpu_inner().await?;
        let started = now_ms();
        let manifest_url = manifest_url.unwrap_or_else(|| self::manifest_url(&model_url));
        let manifest = fetch_text(&manifest_url).await?;
        let buffer = fetch_buffer(&model_url).await?;
        let fetch_ms = now_ms() - started;
        Ok(Self::build(&buffer, &manifest, &model_url, fetch_ms).await?)
    }

    /// Like `load`, from bytes already at hand; `source` names the model in errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(
        bytes: Uint8Array,
        manifest_json: String,
        source: Option<String>,
    ) -> std::result::Result<LivenessModel, JsValue> {
        ensure_webgpu_inner().await?;
        let source = source.unwrap_or_else(|| "model".to_owned());
        Ok(Self::build(&bytes, &manifest_json, &source, 0.0).await?)
    }

    /// Decides on five frames (`ImageData`, or objects with RGBA `data`, `width`, `height`).
    /// Resolves to `{ live, pSpoof, logit, threshold, timings: { preprocessMs, inferenceMs } }`.
    pub fn check(&self, frames: Array) -> Promise {
        let model = Rc::clone(&self.inner);
        wasm_bindgen_futures::future_to_promise(async move {
            let verdict = check_frames(&model, &frames).await?;
            serialize(&verdict)
        })
    }

    /// The model's manifest as a plain object (input size, threshold, data and terms, metrics).
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> std::result::Result<JsValue, JsValue> {
        serialize(&self.inner.manifest)
    }

    /// The decision threshold on `pSpoof`.
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> f32 {
        self.inner.manifest.threshold
    }

    /// How long loading took, per stage: `{ fetchMs, verifyMs, sessionMs }`.
    #[wasm_bindgen(getter, js_name = loadTimings)]
    pub fn load_timings(&self) -> std::result::Result<JsValue, JsValue> {
        serialize(&self.load_timings)
    }
}

fn serialize<T: serde::Serialize>(value: &T) -> std::result::Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LivenessError::new(ErrorCode::Inference, e.to_string()).into())
}

/// Copies the RGBA bytes and size out of each JS frame object.
fn read_frames(frames: &Array) -> Result<Vec<(Vec<u8>, u32, u32)>> {
    let bad =
        |i: u32, what: &str| LivenessError::new(ErrorCode::Frames, format!("frame {i}: {what}"));
    let mut out = Vec::with_capacity(frames.length() as usize);
    for (i, frame) in frames.iter().enumerate() {
        let i = i as u32;
        let number = |name: &str| {
            Reflect::get(&frame, &name.into())
                .ok()
                .and_then(|v| v.as_f64())
                .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= f64::from(u32::MAX))
                .map(|v| v as u32)
                .ok_or_else(|| bad(i, &format!("no valid {name}")))
        };
        let (width, height) = (number("width")?, number("height")?);
        let data = Reflect::get(&frame, &"data".into()).unwrap_or(JsValue::UNDEFINED);
        if !data.is_instance_of::<js_sys::Uint8ClampedArray>()
            && !data.is_instance_of::<Uint8Array>()
        {
            return Err(bad(
                i,
                "data must be a Uint8ClampedArray or Uint8Array of RGBA pixels",
            ));
        }
        out.push((Uint8Array::new(&data).to_vec(), width, height));
    }
    Ok(out)
}

async fn check_frames(model: &Model, frames: &Array) -> Result<Verdict> {
    let started = now_ms();
    let owned = read_frames(frames)?;
    let views: Vec<Frame<'_>> = owned
        .iter()
        .map(|(pixels, w, h)| Frame::rgba(pixels, *w, *h))
        .collect();
    let input = model_input(&model.manifest, &views)?;
    let preprocessed = now_ms();
    let (logit, p_spoof) = model.infer(&input).await?;
    let timings = Timings {
        preprocess_ms: preprocessed - started,
        inference_ms: now_ms() - preprocessed,
    };
    Ok(Verdict::new(
        logit,
        p_spoof,
        model.manifest.threshold,
        timings,
    ))
}
