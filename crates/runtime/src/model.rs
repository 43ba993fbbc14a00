//! A liveness model ready to check frames: a [`VerifiedModel`] on its [`Engine`], with the
//! [`Checker`] of its manifest. The server, `score-onnx` and the browser all check through this.

use liveness_core::Frame;
use liveness_core::face::FaceBox;
use liveness_core::manifest::Manifest;
use serde::Serialize;

use crate::check::{Checker, Outcome};
use crate::engine::{AdapterInfo, Backend, Engine, Preference, choose};
use crate::error::{Error, Result};
use crate::verified::VerifiedModel;

/// How long each stage of one check took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// The face detector on the five frames.
    pub detect_ms: f64,
    /// Crop, resize and normalise the five frames.
    pub preprocess_ms: f64,
    /// Running the model on its engine (upload and read-back included on a GPU).
    pub inference_ms: f64,
}

impl Timings {
    /// All stages together.
    pub fn total_ms(&self) -> f64 {
        self.detect_ms + self.preprocess_ms + self.inference_ms
    }
}

/// One check's outcome, the face of each frame (empty when the gate refused) and its timings.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verdict, or the face gate's refusal.
    pub outcome: Outcome,
    /// The one face of each frame.
    pub faces: Vec<FaceBox>,
    /// Per-stage durations.
    pub timings: Timings,
}

/// A verified model on its engine, with its face gate, crop and verdict rule.
pub struct Model {
    checker: Checker,
    engine: Engine,
    reason: String,
}

impl Model {
    /// Prepares `model` on the backend the policy picks for `preference` and `adapter`
    /// ([`choose`]). Under `auto`, a WebGPU engine that fails to load gives way to the CPU
    /// engine. Asking for WebGPU without an adapter is refused before wonnx is touched (it would
    /// panic).
    pub async fn load(
        model: VerifiedModel,
        preference: Preference,
        adapter: Option<&AdapterInfo>,
    ) -> Result<Model> {
        let (backend, reason) = choose(preference, adapter)?;
        match Model::on(&model, backend, reason).await {
            Err(e) if preference == Preference::Auto && backend != Backend::Cpu => {
                let reason =
                    format!("the WebGPU engine could not load the model ({e}); CPU instead");
                Model::on(&model, Backend::Cpu, reason).await
            }
            loaded => loaded,
        }
    }

    /// Prepares `model` on `backend`; `reason` says why that one.
    pub async fn on(model: &VerifiedModel, backend: Backend, reason: String) -> Result<Model> {
        Ok(Model {
            checker: Checker::new(model.manifest().clone(), model.source())?,
            engine: Engine::load(model, backend).await?,
            reason,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        self.checker.manifest()
    }

    /// The face gate, crop and verdict rule.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Why this engine was chosen.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Logits of up to one batch of preprocessed samples.
    pub async fn logits(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        self.engine.logits(input, self.manifest()).await
    }

    /// One check on five frames: the face gate, the crop, the shared preprocessing, the engine
    /// and the fail-closed verdict; `now` reads a clock in milliseconds for the timings (wasm
    /// has no `Instant`).
    pub async fn check(&self, frames: &[Frame<'_>], now: impl Fn() -> f64) -> Result<Checked> {
        let started = now();
        let faces = self.checker.faces(frames)?;
        let detected = now();
        let prepared = match self.checker.prepare_from(frames, &faces) {
            Ok(prepared) => prepared,
            Err(Error::Refused(refusal)) => {
                return Ok(Checked {
                    outcome: Outcome::Refused(refusal),
                    faces: Vec::new(),
                    timings: Timings {
                        detect_ms: detected - started,
                        ..Timings::default()
                    },
                });
            }
            Err(e) => return Err(e),
        };
        let preprocessed = now();
        let logits = self.logits(prepared.input).await?;
        let logit = logits.first().copied().unwrap_or(f32::NAN);
        Ok(Checked {
            outcome: Outcome::Verdict(self.checker.decide(logit)),
            faces: prepared.faces,
            timings: Timings {
                detect_ms: detected - started,
                preprocess_ms: preprocessed - detected,
                inference_ms: now() - preprocessed,
            },
        })
    }
}

/// Native callers (the server, `score-onnx`) block on the engine, and wonnx's panics (a wgpu
/// validation error, no adapter) become errors instead of taking the process down.
#[cfg(not(target_arch = "wasm32"))]
impl Model {
    /// [`Model::on`] `backend`, blocking (a native GPU adapter is wgpu's to find; wonnx
    /// reports, or panics, when there is none).
    pub fn load_blocking(model: &VerifiedModel, backend: Backend) -> Result<Model> {
        let what = format!("loading {}", model.source());
        let reason = format!("backend={}", backend.as_str());
        no_panic(&what, || {
            pollster::block_on(Model::on(model, backend, reason))
        })
    }

    /// [`Model::logits`], blocking.
    pub fn logits_blocking(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        no_panic("running the model", || {
            pollster::block_on(self.logits(input))
        })
    }

    /// [`Model::check`], blocking, timed by the process's monotonic clock.
    pub fn check_blocking(&self, frames: &[Frame<'_>]) -> Result<Checked> {
        let origin = std::time::Instant::now();
        let now = || origin.elapsed().as_secs_f64() * 1e3;
        no_panic("running the model", || {
            pollster::block_on(self.check(frames, now))
        })
    }
}

/// Runs `f`, turning a panic into [`Error::Wonnx`] (`what` names the step).
#[cfg(not(target_arch = "wasm32"))]
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(Error::Wonnx {
                what: what.to_owned(),
                message: message.to_owned(),
            })
        }
    }
}
