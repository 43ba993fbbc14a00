//! The browser side of the liveness checker, for `web/liveness-check.js` (the widget, on the
//! page's main thread) and `web/liveness-worker.js` (a Web Worker that holds the models):
//!
//! - [`Camera`] (main thread): getUserMedia → video → canvas → RGBA frames;
//! - [`FaceGuide`] (worker): the face detector on preview frames → live guidance;
//! - [`challenge::ChallengeTracker`] (main thread): the head-pose challenge, look by look, and
//!   [`challenge::check_track_js`], its whole check (the server's rules);
//! - [`LivenessModel`] (worker): a model and its manifest, fetched (with progress), verified
//!   against the manifest's SHA-256, prepared on the engine the policy picks ([`engine`]: wonnx on
//!   a hardware WebGPU adapter, tract on the CPU otherwise), and run after the face gate, the crop
//!   and the trainer's own preprocessing (`liveness_runtime::Checker`, the server's code);
//! - the contracts the widget and its tests check against: [`error_codes`], [`guidance_codes`],
//!   [`frame_count`], [`manifest_url`].
//!
//! Every failure reaches JavaScript as an `Error` named `LivenessError` with a `code`
//! ([`error::ErrorCode`]). A panic (wonnx panics on wgpu errors, e.g. a lost device) cannot be
//! caught on wasm32; the panic hook reports it to the listener set with [`set_fatal_listener`],
//! and the worker then loads a fresh instance of this module.

pub mod camera;
pub mod challenge;
pub mod engine;
pub mod error;
pub mod model;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use liveness_core::Frame;
use liveness_core::face::{FaceBox, guidance};
use liveness_core::limits::{MAX_MODEL_BYTES, frame_size_ok};
use liveness_runtime::FaceDetector;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub use camera::Camera;
use engine::{AdapterInfo, Preference};
use error::{ErrorCode, LivenessError, Result, js_message};
use model::{LoadTimings, Model, parse_manifest, verify_sha256};

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

/// Every error `code` this module can reject with.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// Every guidance code [`FaceGuide::look`] can give.
#[wasm_bindgen(js_name = guidanceCodes)]
pub fn guidance_codes() -> Vec<String> {
    guidance::Guidance::ALL
        .iter()
        .map(|g| g.code().to_owned())
        .collect()
}

/// The number of frames a check takes (`liveness_core::FRAMES`).
#[wasm_bindgen(js_name = frameCount)]
pub fn frame_count() -> u32 {
    liveness_core::FRAMES as u32
}

/// The manifest's address for a model address: `NAME.onnx` → `NAME.json` (the rule every
/// runtime shares, `liveness_core::model::manifest_url`).
#[wasm_bindgen(js_name = manifestUrl)]
pub fn manifest_url(model_url: &str) -> String {
    liveness_core::model::manifest_url(model_url)
}

fn now_ms() -> f64 {
    Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| {
            let now = Reflect::get(&p, &"now".into())
                .ok()?
                .dyn_into::<Function>()
                .ok()?;
            now.call0(&p).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

async fn adapter_inner() -> Option<AdapterInfo> {
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return None;
    }
    let request = get(&gpu, "requestAdapter").dyn_into::<Function>().ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.unchecked_into();
    let adapter = JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = get(&adapter, "info");
    let text = |name: &str| get(&info, name).as_string().unwrap_or_default();
    let flag = |v: JsValue| v.as_bool().unwrap_or(false);
    Some(AdapterInfo {
        is_fallback_adapter: flag(get(&adapter, "isFallbackAdapter"))
            || flag(get(&info, "isFallbackAdapter")),
        vendor: text("vendor"),
        architecture: text("architecture"),
        description: text("description"),
    })
}

fn serialize<T: serde::Serialize>(value: &T) -> std::result::Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LivenessError::new(ErrorCode::Inference, e.to_string()).into())
}

/// Resolves to what the browser says about its WebGPU adapter (`{ isFallbackAdapter, vendor,
/// architecture, description }`), or `null` without WebGPU or an adapter. Cheap.
#[wasm_bindgen(js_name = webgpuAdapter)]
pub async fn webgpu_adapter() -> std::result::Result<JsValue, JsValue> {
    match adapter_inner().await {
        Some(info) => serialize(&info),
        None => Ok(JsValue::NULL),
    }
}

/// The engine selection policy (`engine::choose`) for a `backend` preference (`auto`, `webgpu`,
/// `cpu`) and an adapter description (as `webgpuAdapter` gives it, or `null`): `{ backend,
/// reason }`, or a `webgpu-unavailable` error.
#[wasm_bindgen(js_name = chooseBackend)]
pub fn choose_backend(
    preference: Option<String>,
    adapter: JsValue,
) -> std::result::Result<JsValue, JsValue> {
    let preference = Preference::parse(preference.as_deref())?;
    let adapter: Option<AdapterInfo> = if adapter.is_null() || adapter.is_undefined() {
        None
    } else {
        Some(
            serde_wasm_bindgen::from_value(adapter)
                .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))?,
        )
    };
    let (backend, reason) = engine::choose(preference, adapter.as_ref())?;
    let out = js_sys::Object::new();
    let _ = Reflect::set(&out, &"backend".into(), &backend.as_str().into());
    let _ = Reflect::set(&out, &"reason".into(), &reason.into());
    Ok(out.into())
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

/// The body of `url` as bytes, reporting `(loaded, total)` to `progress` as they arrive, and
/// refusing a body larger than the model limit (before and while reading it).
async fn fetch_bytes(url: &str, progress: Option<&Function>) -> Result<Uint8Array> {
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
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut loaded = 0.0;
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
        loaded += f64::from(chunk.length());
        if loaded > MAX_MODEL_BYTES as f64 {
            return Err(failed(format!(
                "more than {MAX_MODEL_BYTES} bytes; models may be at most that"
            )));
        }
        chunks.push(chunk);
        if let Some(p) = progress {
            let _ = p.call2(&JsValue::NULL, &loaded.into(), &total.max(loaded).into());
        }
    }
    let all = Uint8Array::new_with_length(loaded as u32);
    let mut at = 0;
    for c in chunks {
        all.set(&c, at);
        at += c.length();
    }
    Ok(all)
}

/// SHA-256 (hex) of bytes: the browser's WebCrypto where there is one (native and off the
/// wasm thread: 45 MB took 1.35 s in wasm's `sha2` with the page frozen), else `sha2`.
async fn sha256_of(bytes: &Uint8Array) -> String {
    let subtle = get(&get(&js_sys::global(), "crypto"), "subtle");
    if let Ok(digest) = get(&subtle, "digest").dyn_into::<Function>()
        && let Ok(promise) = digest.call2(&subtle, &"SHA-256".into(), bytes)
        && let Ok(hash) = JsFuture::from(Promise::from(promise)).await
    {
        return liveness_core::model::hex(&Uint8Array::new(&hash).to_vec());
    }
    liveness_core::manifest::sha256_hex(&bytes.to_vec())
}

/// Options of `LivenessModel.load` / `fromBytes`: `{ backend, onProgress }`.
fn options(value: &JsValue) -> Result<(Preference, Option<Function>)> {
    let backend = get(value, "backend").as_string();
    let progress = get(value, "onProgress").dyn_into::<Function>().ok();
    Ok((Preference::parse(backend.as_deref())?, progress))
}

/// A verified model on its engine. Create it with `LivenessModel.load(url, manifestUrl, options)`
/// or `LivenessModel.fromBytes(bytes, manifestJson, source, options)`.
#[wasm_bindgen]
pub struct LivenessModel {
    inner: Rc<Model>,
    load_timings: LoadTimings,
}

impl LivenessModel {
    /// Verifies `bytes` against the manifest, then prepares the engine; `fetch_ms` is what getting
    /// the bytes took.
    async fn build(
        bytes: &Uint8Array,
        manifest_json: &str,
        source: &str,
        preference: Preference,
        fetch_ms: f64,
    ) -> Result<Self> {
        let started = now_ms();
        let manifest = parse_manifest(manifest_json, source)?;
        verify_sha256(&manifest, sha256_of(bytes).await, source)?;
        let verified = now_ms();
        // Only ask for an adapter when WebGPU may be used: wonnx panics without one.
        let adapter = match preference {
            Preference::Cpu => None,
            _ => adapter_inner().await,
        };
        let model = Model::load(
            &bytes.to_vec(),
            manifest,
            source,
            preference,
            adapter.as_ref(),
        )
        .await?;
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
    /// `NAME.onnx`), verifies the SHA-256 and prepares the model on the engine the policy picks.
    /// The model is requested as `modelUrl?v=<sha256>` (the manifest's hash), so a server that
    /// caches by content can let a revisit download nothing. `options`: `{ backend: 'auto' |
    /// 'webgpu' | 'cpu', onProgress(loaded, total) }`.
    pub async fn load(
        model_url: String,
        manifest_url: Option<String>,
        options_value: JsValue,
    ) -> std::result::Result<LivenessModel, JsValue> {
        let (preference, progress) = options(&options_value)?;
        if preference == Preference::WebGpu && adapter_inner().await.is_none() {
            return Err(engine::choose(preference, None)
                .err()
                .map(JsValue::from)
                .unwrap_or(JsValue::NULL));
        }
        let started = now_ms();
        let manifest_url = manifest_url.unwrap_or_else(|| self::manifest_url(&model_url));
        let manifest_json = fetch_text(&manifest_url).await?;
        let manifest = parse_manifest(&manifest_json, &manifest_url)?;
        let separator = if model_url.contains('?') { '&' } else { '?' };
        let versioned = format!("{model_url}{separator}v={}", manifest.sha256);
        let bytes = fetch_bytes(&versioned, progress.as_ref()).await?;
        let fetch_ms = now_ms() - started;
        Ok(Self::build(&bytes, &manifest_json, &model_url, preference, fetch_ms).await?)
    }

    /// Like `load`, from bytes already at hand; `source` names the model in errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(
        bytes: Uint8Array,
        manifest_json: String,
        source: Option<String>,
        options_value: JsValue,
    ) -> std::result::Result<LivenessModel, JsValue> {
        let (preference, _) = options(&options_value)?;
        let source = source.unwrap_or_else(|| "model".to_owned());
        Ok(Self::build(&bytes, &manifest_json, &source, preference, 0.0).await?)
    }

    /// Decides on five frames (`ImageData`, or objects with RGBA `data`, `width`, `height`).
    /// Resolves to `{ live, pSpoof, logit, threshold, backend, faces, timings: { detectMs,
    /// preprocessMs, inferenceMs } }`; rejects with `no-face` / `multiple-faces` when the face
    /// gate refuses the frames, `frames` when they are not five frames of one valid size.
    pub fn check(&self, frames: Array) -> Promise {
        let model = Rc::clone(&self.inner);
        wasm_bindgen_futures::future_to_promise(async move {
            let owned = read_frames(&frames)?;
            let views: Vec<Frame<'_>> = owned
                .iter()
                .map(|(p, w, h)| Frame::rgba(p, *w, *h))
                .collect();
            let verdict = model.check(&views, now_ms).await?;
            serialize(&verdict)
        })
    }

    /// The model's manifest as a plain object (input size, threshold, data and terms, metrics).
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> std::result::Result<JsValue, JsValue> {
        serialize(self.inner.manifest())
    }

    /// The decision threshold on `pSpoof`.
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> f32 {
        self.inner.manifest().threshold
    }

    /// The engine the model runs on: `webgpu` or `cpu`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.engine.backend().as_str().to_owned()
    }

    /// Why that engine was chosen.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.inner.reason.clone()
    }

    /// How long loading took, per stage: `{ fetchMs, verifyMs, sessionMs }`.
    #[wasm_bindgen(getter, js_name = loadTimings)]
    pub fn load_timings(&self) -> std::result::Result<JsValue, JsValue> {
        serialize(&self.load_timings)
    }
}

/// The face detector for live guidance while the user frames their face (no download: the
/// detector is compiled in).
#[wasm_bindgen]
pub struct FaceGuide {
    detector: FaceDetector,
}

#[wasm_bindgen]
impl FaceGuide {
    /// Loads the detector.
    #[wasm_bindgen(constructor)]
    pub fn new() -> std::result::Result<FaceGuide, JsValue> {
        let detector = FaceDetector::new(liveness_core::face::MIN_SCORE)
            .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))?;
        Ok(FaceGuide { detector })
    }

    /// Looks at one preview frame (an `ImageData` or `{ data, width, height }`): resolves to
    /// `{ guidance, face, steady, detectMs }`, where `guidance` is one of `guidanceCodes()`,
    /// `face` the one person's face (or `null`), and `steady` whether it held still since
    /// `previous` (the `face` of the last look).
    pub fn look(&self, frame: JsValue, previous: JsValue) -> std::result::Result<JsValue, JsValue> {
        let started = now_ms();
        let (pixels, width, height) = read_frame(&frame, 0)?;
        let view = Frame::rgba(&pixels, width, height);
        let faces = self
            .detector
            .detect(view, 0)
            .map_err(|e| LivenessError::new(ErrorCode::Frames, e.to_string()))?;
        let people = liveness_core::face::people(&faces);
        let advice = guidance::guide(view, &faces);
        let face = (people.len() == 1).then(|| people[0]);
        let previous: Option<FaceBox> = serde_wasm_bindgen::from_value(previous).ok().flatten();
        let steady = matches!((previous, face), (Some(p), Some(f)) if guidance::steady(&p, &f));
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"guidance".into(), &advice.code().into());
        let _ = Reflect::set(&out, &"face".into(), &serialize(&face)?);
        let _ = Reflect::set(&out, &"steady".into(), &steady.into());
        let _ = Reflect::set(&out, &"detectMs".into(), &(now_ms() - started).into());
        Ok(out.into())
    }
}

/// Copies the RGBA bytes and size out of one JS frame object, after checking its size against
/// the limits and its buffer against its size (nothing is copied for a frame that is refused).
fn read_frame(frame: &JsValue, i: u32) -> Result<(Vec<u8>, u32, u32)> {
    let bad = |what: &str| LivenessError::new(ErrorCode::Frames, format!("frame {i}: {what}"));
    let number = |name: &str| {
        get(frame, name)
            .as_f64()
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= f64::from(u32::MAX))
            .map(|v| v as u32)
            .ok_or_else(|| bad(&format!("no valid {name}")))
    };
    let (width, height) = (number("width")?, number("height")?);
    if !frame_size_ok(width, height) {
        return Err(LivenessError::new(
            ErrorCode::Frames,
            liveness_core::Error::FrameTooLarge {
                index: i as usize,
                width,
                height,
                max_side: liveness_core::limits::MAX_FRAME_SIDE,
                max_pixels: liveness_core::limits::MAX_FRAME_PIXELS,
            }
            .to_string(),
        ));
    }
    let data = get(frame, "data");
    if !data.is_instance_of::<js_sys::Uint8ClampedArray>() && !data.is_instance_of::<Uint8Array>() {
        return Err(bad(
            "data must be a Uint8ClampedArray or Uint8Array of RGBA pixels",
        ));
    }
    let data = Uint8Array::new(&data);
    let expected = u64::from(width) * u64::from(height) * 4;
    if u64::from(data.length()) != expected {
        return Err(bad(&format!(
            "{width}x{height} RGBA needs {expected} bytes, got {}",
            data.length()
        )));
    }
    Ok((data.to_vec(), width, height))
}

/// Copies every frame of a JS array (see [`read_frame`]); refuses more than the model takes
/// before copying any.
fn read_frames(frames: &Array) -> Result<Vec<(Vec<u8>, u32, u32)>> {
    let count = frames.length() as usize;
    if count != liveness_core::FRAMES {
        return Err(LivenessError::new(
            ErrorCode::Frames,
            liveness_core::Error::FrameCount {
                expected: liveness_core::FRAMES,
                got: count,
            }
            .to_string(),
        ));
    }
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| read_frame(&f, i as u32))
        .collect()
}
