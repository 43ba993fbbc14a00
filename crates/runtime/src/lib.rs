//! Runs an exported liveness model and the face detector on the CPU with `tract` (pure Rust),
//! natively and compiled to wasm: the same code and the same detector file everywhere a verdict
//! is made — `score-onnx`, the server, the browser's CPU engine — and for the trainer's face crop.
//!
//! - [`FaceDetector`]: BlazeFace (compiled in, [`detector::ONNX`]) → face boxes in frame pixels.
//! - [`TractModel`]: a liveness model, size-checked and verified against its manifest.
//! - [`Checker`]: the engine-agnostic steps around inference — the face gate, the crop, the
//!   shared preprocessing ([`Checker::prepare`]) and the fail-closed verdict
//!   ([`Checker::decide`]) — so that an engine that is not tract (wonnx on WebGPU) only runs the
//!   model.

pub mod challenge;
pub mod check;
pub mod detector;
mod error;
pub mod model;

pub use check::{Checker, Outcome, Prepared, Verdict};
pub use detector::FaceDetector;
pub use error::{Error, Result};
pub use model::TractModel;
