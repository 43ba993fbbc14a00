//! `LivenessModel`: a model fetched with its manifest, verified (`liveness_runtime`'s one load:
//! size, manifest, SHA-256 by WebCrypto), put on the engine the policy picks, and checked with
//! the server's own code (`liveness_runtime::Model::check`).

use std::rc::Rc;

use js_sys::{Array, Function};
use liveness_core::Frame;
use liveness_core::face::FaceBox;
use liveness_runtime::{Backend, Model, Outcome, Preference, Timings, VerifiedModel};
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::error::{Result, check_error, load_error, refusal_error};
use crate::fetch::{fetch_bytes, fetch_text, get, now_ms, sha256_of};
use crate::frames::read_frames;
use crate::{serialize, webgpu};

/// What a check hands to JavaScript: the verdict, the engine, the faces and the timings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckResult {
    /// `live`, `pSpoof`, `logit`, `threshold`.
    #[serde(flatten)]
    verdict: liveness_runtime::Verdict,
    /// The engine that ran the model: `webgpu` or `cpu`.
    backend: Backend,
    /// The face found in each frame.
    faces: Vec<FaceBox>,
    /// `detectMs`, `preprocessMs`, `inferenceMs`.
    timings: Timings,
}

/// How long each stage of loading a model took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadTimings {
    /// Downloading the manifest and the model (0 for `fromBytes`).
    fetch_ms: f64,
    /// Hashing the model (SHA-256) and checking it against the manifest.
    verify_ms: f64,
    /// Preparing the engine: the wonnx session (graph, weight upload, shaders) or tract's plan.
    session_ms: f64,
}

/// Options of `LivenessModel.load` / `fromBytes`: `{ backend, onProgress }`.
fn options(value: &JsValue) -> Result<(Preference, Option<Function>)> {
    let backend = get(value, "backend").as_string();
    let progress = get(value, "onProgress").dyn_into::<Function>().ok();
    Ok((
        Preference::parse(backend.as_deref()).map_err(load_error)?,
        progress,
    ))
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
        bytes: Vec<u8>,
        manifest: (&str, &str),
        source: &str,
        preference: Preference,
        fetch_ms: f64,
    ) -> Result<Self> {
        let started = now_ms();
        let sha256 = sha256_of(&bytes).await;
        let (manifest_json, manifest_source) = manifest;
        let verified =
            VerifiedModel::with_sha256(bytes, sha256, source, manifest_json, manifest_source)
                .map_err(load_error)?;
        let verified_at = now_ms();
        let adapter = match preference {
            Preference::Only(Backend::Cpu) => None,
            _ => webgpu::adapter().await,
        };
        let model = Model::load(verified, preference, adapter.as_ref())
            .await
            .map_err(load_error)?;
        Ok(LivenessModel {
            inner: Rc::new(model),
            load_timings: LoadTimings {
                fetch_ms,
                verify_ms: verified_at - started,
                session_ms: now_ms() - verified_at,
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
        // Before anything is downloaded: WebGPU asked for, and there is none.
        webgpu::require_adapter(preference).await?;
        let started = now_ms();
        let manifest_url =
            manifest_url.unwrap_or_else(|| liveness_core::model_file::manifest_url(&model_url));
        let manifest_json = fetch_text(&manifest_url).await?;
        // Read now for the model's versioned address, and so that a bad manifest is refused
        // before the download (`VerifiedModel` checks it again with the bytes).
        let sha256 = liveness_core::manifest::Manifest::parse(&manifest_json, &manifest_url)
            .map_err(|e| load_error(e.into()))?
            .sha256;
        let separator = if model_url.contains('?') { '&' } else { '?' };
        let versioned = format!("{model_url}{separator}v={sha256}");
        let bytes = fetch_bytes(&versioned, progress.as_ref()).await?;
        let fetch_ms = now_ms() - started;
        let manifest = (manifest_json.as_str(), manifest_url.as_str());
        Ok(Self::build(bytes, manifest, &model_url, preference, fetch_ms).await?)
    }

    /// Like `load`, from bytes already at hand; `source` names the model in errors.
    #[wasm_bindgen(js_name = fromBytes)]
    pub async fn from_bytes(
        bytes: js_sys::Uint8Array,
        manifest_json: String,
        source: Option<String>,
        options_value: JsValue,
    ) -> std::result::Result<LivenessModel, JsValue> {
        let (preference, _) = options(&options_value)?;
        webgpu::require_adapter(preference).await?;
        let source = source.unwrap_or_else(|| "model".to_owned());
        let manifest = (manifest_json.as_str(), "manifest");
        Ok(Self::build(bytes.to_vec(), manifest, &source, preference, 0.0).await?)
    }

    /// Decides on five frames (`ImageData`, or objects with RGBA `data`, `width`, `height`).
    /// Resolves to `{ live, pSpoof, logit, threshold, backend, faces, timings: { detectMs,
    /// preprocessMs, inferenceMs } }`; rejects with `no-face` / `multiple-faces` when the face
    /// gate refuses the frames, `frames` when they are not five frames of one valid size.
    pub fn check(&self, frames: Array) -> js_sys::Promise {
        let model = Rc::clone(&self.inner);
        wasm_bindgen_futures::future_to_promise(async move {
            let owned = read_frames(&frames)?;
            let views: Vec<Frame<'_>> = owned
                .iter()
                .map(|(p, w, h)| Frame::rgba(p, *w, *h))
                .collect();
            let checked = model.check(&views, now_ms).await.map_err(check_error)?;
            let verdict = match checked.outcome {
                Outcome::Verdict(v) => v,
                Outcome::Refused(r) => return Err(refusal_error(&r).into()),
            };
            serialize(&CheckResult {
                verdict,
                backend: model.engine().backend(),
                faces: checked.faces,
                timings: checked.timings,
            })
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
        self.inner.engine().backend().as_str().to_owned()
    }

    /// Why that engine was chosen.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.inner.reason().to_owned()
    }

    /// How long loading took, per stage: `{ fetchMs, verifyMs, sessionMs }`.
    #[wasm_bindgen(getter, js_name = loadTimings)]
    pub fn load_timings(&self) -> std::result::Result<JsValue, JsValue> {
        serialize(&self.load_timings)
    }
}
