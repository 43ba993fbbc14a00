//! Loads and runs an exported liveness model and the face detector — natively and compiled to
//! wasm, the same code everywhere a verdict is made: `score-onnx`, the server, the browser.
//!
//! The words, one meaning each, across the crates:
//! - **Engine** ([`Engine`]): the loaded runner of a model — tract on the CPU
//!   ([`engine::TractEngine`]), wonnx on a GPU (`engine::WonnxEngine`, feature `wonnx`).
//! - **Backend** ([`Backend`]): an engine's label, `cpu` or `webgpu`, as flags and results say it;
//!   **Preference** adds `auto`, decided by [`engine::choose`].
//! - **Check**: one run over five frames — the face gate, the crop, the shared preprocessing, the
//!   engine, the verdict ([`Model::check`], around [`Checker`]).
//! - **Verdict** ([`Verdict`]): what the model decided — live, pSpoof, logit, threshold.
//! - **Outcome** ([`Outcome`]): how a check ended — a verdict, or the face gate's refusal.
//!
//! The one way in is [`VerifiedModel`] (size, manifest, SHA-256, in that order), then
//! [`Model::load`] puts it on an engine. [`FaceDetector`]: BlazeFace, compiled in.

pub mod challenge;
pub mod check;
pub mod detector;
pub mod engine;
mod error;
pub mod model;
pub mod verified;

pub use check::{Checker, Outcome, Prepared, Verdict};
pub use detector::FaceDetector;
pub use engine::{AdapterInfo, Backend, Engine, Preference, TractEngine};
pub use error::{Error, Result};
pub use model::{Checked, Model, Timings};
pub use verified::VerifiedModel;
