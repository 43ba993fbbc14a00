//! A verified model on its engine, and one check: the face gate, the crop and the shared
//! preprocessing (`liveness_runtime::Checker`, the server's code), inference on the chosen
//! engine, and the fail-closed verdict.
//!
//! Only [`Model::load`] and [`Model::check`] touch WebGPU; the rest is plain Rust, tested on the
//! host.

use liveness_core::Frame;
use liveness_core::face::FaceBox;
use liveness_core::manifest::Manifest;
use liveness_runtime::{Checker, TractModel};
use serde::Serialize;

use crate::engine::{AdapterInfo, Backend, Engine, Preference, choose};
use crate::error::{ErrorCode, LivenessError, Result, refusal_code};

/// How long each stage of one check took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// The face detector on the five frames.
    pub detect_ms: f64,
    /// Crop, resize and normalise the five frames (`liveness_core::preprocess_regions`).
    pub preprocess_ms: f64,
    /// Running the model on its engine (upload and read-back included on WebGPU).
    pub inference_ms: f64,
}

/// What a check decides; handed to JavaScript as a plain object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `live`, `pSpoof`, `logit`, `threshold`: the shared verdict (`liveness_runtime::Verdict`).
    #[serde(flatten)]
    pub verdict: liveness_runtime::Verdict,
    /// The engine that ran the model: `webgpu` or `cpu`.
    pub backend: Backend,
    /// The face found in each frame.
    pub faces: Vec<FaceBox>,
    /// Per-stage durations.
    pub timings: Timings,
}

/// How long each stage of loading a model took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTimings {
    /// Downloading the manifest and the model (0 for `fromBytes`).
    pub fetch_ms: f64,
    /// Hashing the model (SHA-256) and checking it against the manifest.
    pub verify_ms: f64,
    /// Preparing the engine: the wonnx session (graph, weight upload, shaders) or tract's plan.
    pub session_ms: f64,
}

/// Parses a manifest and checks that this build can run the model it describes (the checks
/// every runtime shares: `Manifest::parse`, and the face detector compiled in).
pub fn parse_manifest(json: &str, source: &str) -> Result<Manifest> {
    let manifest = Manifest::parse(json, source)
        .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))?;
    manifest
        .check_detector(&liveness_runtime::detector::sha256(), source)
        .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))?;
    Ok(manifest)
}

/// Checks the model's SHA-256 (hex) against the manifest's.
pub fn verify_sha256(manifest: &Manifest, sha256: String, source: &str) -> Result<()> {
    manifest.verify_sha256(sha256).map_err(|e| {
        LivenessError::new(
            ErrorCode::ModelHash,
            format!("refusing model {source}: {e}"),
        )
    })
}

/// A model loaded onto its engine, with its manifest and face gate.
pub struct Model {
    /// The face gate, crop, preprocessing and verdict of the manifest.
    pub checker: Checker,
    /// The engine that runs the model.
    pub engine: Engine,
    /// Why this engine was chosen.
    pub reason: String,
}

fn invalid(source: &str) -> impl Fn(String) -> LivenessError + '_ {
    move |e| {
        LivenessError::new(
            ErrorCode::ModelInvalid,
            format!("cannot load {source}: {e}"),
        )
    }
}

impl Model {
    /// Prepares bytes already checked against `manifest` on the engine the policy picks for
    /// `preference` and `adapter` ([`choose`]). Under `auto`, a wonnx failure at load falls back
    /// to the CPU engine. The caller must have checked for an adapter before asking for WebGPU:
    /// without one wonnx panics and never returns.
    pub async fn load(
        bytes: &[u8],
        manifest: Manifest,
        source: &str,
        preference: Preference,
        adapter: Option<&AdapterInfo>,
    ) -> Result<Model> {
        let checker =
            Checker::new(manifest.clone(), source).map_err(|e| invalid(source)(e.to_string()))?;
        let (backend, mut reason) = choose(preference, adapter)?;
        let cpu = |manifest: Manifest| {
            TractModel::load_verified(bytes, manifest, source)
                .map(Engine::Cpu)
                .map_err(|e| invalid(source)(e.to_string()))
        };
        let engine = match backend {
            Backend::Cpu => cpu(manifest)?,
            Backend::WebGpu => match wonnx::Session::from_bytes(bytes).await {
                Ok(session) => Engine::WebGpu(session),
                Err(e) if preference == Preference::Auto => {
                    reason = format!("wonnx could not load the model ({e}); CPU engine instead");
                    cpu(manifest)?
                }
                Err(e) => return Err(invalid(source)(format!("wonnx: {e}"))),
            },
        };
        Ok(Model {
            checker,
            engine,
            reason,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        self.checker.manifest()
    }

    /// One check on five frames; `now` reads a clock in milliseconds for the timings.
    pub async fn check(&self, frames: &[Frame<'_>], now: impl Fn() -> f64) -> Result<Verdict> {
        let frames_error = |e: liveness_runtime::Error| match e {
            liveness_runtime::Error::Refused(r) => {
                LivenessError::new(refusal_code(&r), r.to_string())
            }
            other => LivenessError::new(ErrorCode::Frames, other.to_string()),
        };
        let started = now();
        let faces = self.checker.faces(frames).map_err(frames_error)?;
        let detected = now();
        let prepared = self
            .checker
            .prepare_from(frames, &faces)
            .map_err(frames_error)?;
        let preprocessed = now();
        let logit = self.engine.logit(prepared.input, self.manifest()).await?;
        Ok(Verdict {
            verdict: self.checker.decide(logit),
            backend: self.engine.backend(),
            faces: prepared.faces,
            timings: Timings {
                detect_ms: detected - started,
                preprocess_ms: preprocessed - detected,
                inference_ms: now() - preprocessed,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::manifest::sha256_hex;

    fn manifest_json(size: u32, batch: usize) -> String {
        let mut m = liveness_core::manifest::example(b"model bytes", size, batch);
        m.face.sha256 = liveness_runtime::detector::sha256();
        serde_json::to_string(&m).expect("manifest serialises")
    }

    #[test]
    fn a_valid_manifest_parses_and_its_hash_is_checked() {
        let m = parse_manifest(&manifest_json(16, 1), "m.json").expect("valid");
        verify_sha256(&m, sha256_hex(b"model bytes"), "m.onnx").expect("same bytes");
        let err =
            verify_sha256(&m, sha256_hex(b"model bytez"), "m.onnx").expect_err("changed byte");
        assert_eq!(err.code, ErrorCode::ModelHash);
        assert!(err.message.contains("m.onnx"), "{}", err.message);
    }

    #[test]
    fn bad_manifests_are_refused_naming_the_file() {
        let err = parse_manifest("{", "bad.json").expect_err("not JSON");
        assert_eq!(err.code, ErrorCode::ModelInvalid);
        assert!(err.message.contains("bad.json"));

        let mut v: serde_json::Value = serde_json::from_str(&manifest_json(16, 1)).expect("JSON");
        v["input"]["frames"] = 4.into();
        let err = parse_manifest(&v.to_string(), "four.json").expect_err("4 frames");
        assert!(err.message.contains("input.frames is 4"), "{}", err.message);

        // A manifest made for another face detector.
        let other =
            serde_json::to_string(&liveness_core::manifest::example(b"x", 16, 1)).expect("json");
        let err = parse_manifest(&other, "other.json").expect_err("other detector");
        assert!(err.message.contains("face detector"), "{}", err.message);
    }
}
