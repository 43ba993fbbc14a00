//! A verified model on wonnx: the manifest's checks, the shared preprocessing, one inference.
//!
//! Only [`Model::load`] and [`Model::infer`] touch WebGPU; the checks and the verdict are plain
//! Rust, tested on the host.

use std::collections::HashMap;

use liveness_core::manifest::{Manifest, ManifestError};
use liveness_core::model::{LOGIT, P_SPOOF, pad_to_batch};
use liveness_core::{Frame, classified_as_attack, preprocess_sample};
use serde::Serialize;

use crate::error::{ErrorCode, LivenessError, Result};

/// How long each stage of one check took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Crop, resize and normalise the five frames (`liveness_core::preprocess_sample`).
    pub preprocess_ms: f64,
    /// Upload, run and read back the model on WebGPU.
    pub inference_ms: f64,
}

/// What a check decides; handed to JavaScript as a plain object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `true` when a live person was seen: `p_spoof < threshold`.
    pub live: bool,
    /// The model's probability that the frames show a presentation attack.
    pub p_spoof: f32,
    /// The model's raw output before the sigmoid.
    pub logit: f32,
    /// The decision threshold on `p_spoof`, from the manifest.
    pub threshold: f32,
    /// Per-stage durations.
    pub timings: Timings,
}

impl Verdict {
    /// The verdict for the model's outputs at `threshold`, with the rule the metrics use.
    pub fn new(logit: f32, p_spoof: f32, threshold: f32, timings: Timings) -> Self {
        Verdict {
            live: !classified_as_attack(p_spoof, threshold),
            p_spoof,
            logit,
            threshold,
            timings,
        }
    }
}

/// Parses a manifest and checks that this build can run the model it describes (the checks
/// every runtime shares: `Manifest::parse`).
pub fn parse_manifest(json: &str, source: &str) -> Result<Manifest> {
    Manifest::parse(json, source)
        .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))
}

/// Checks the model's SHA-256 (hex) against the manifest's.
pub fn verify_sha256(manifest: &Manifest, sha256: String, source: &str) -> Result<()> {
    manifest.verify_sha256(sha256).map_err(|e: ManifestError| {
        LivenessError::new(
            ErrorCode::ModelHash,
            format!("refusing model {source}: {e}"),
        )
    })
}

/// How long each stage of loading a model took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTimings {
    /// Downloading the manifest and the model (0 for `fromBytes`).
    pub fetch_ms: f64,
    /// Hashing the model (SHA-256) and checking it against the manifest.
    pub verify_ms: f64,
    /// Building the wonnx session: parsing the graph, uploading weights, compiling shaders.
    pub session_ms: f64,
}

/// The model's input for five frames: preprocessed by the trainer's code, padded to the
/// model's batch with zeros.
pub fn model_input(manifest: &Manifest, frames: &[Frame<'_>]) -> Result<Vec<f32>> {
    let input = preprocess_sample(frames, manifest.input.size, &manifest.input.normalization)
        .map_err(|e| LivenessError::new(ErrorCode::Frames, e.to_string()))?;
    Ok(pad_to_batch(input, manifest))
}

/// A model loaded onto WebGPU through wonnx, with its manifest.
pub struct Model {
    /// The verified manifest.
    pub manifest: Manifest,
    session: wonnx::Session,
}

impl Model {
    /// Builds the wonnx session for bytes already checked against `manifest`
    /// ([`verify_sha256`]). The caller must have checked for a WebGPU adapter first:
    /// without one wonnx panics and never returns.
    pub async fn load(bytes: &[u8], manifest: Manifest, source: &str) -> Result<Model> {
        let session = wonnx::Session::from_bytes(bytes).await.map_err(|e| {
            LivenessError::new(
                ErrorCode::ModelInvalid,
                format!("wonnx cannot load {source}: {e}"),
            )
        })?;
        Ok(Model { manifest, session })
    }

    /// Runs the model on a prepared input → `(logit, p_spoof)` of the first sample.
    pub async fn infer(&self, input: &[f32]) -> Result<(f32, f32)> {
        let mut inputs = HashMap::new();
        inputs.insert(self.manifest.input.name.clone(), input.into());
        let outputs = self.session.run(&inputs).await.map_err(|e| {
            LivenessError::new(ErrorCode::Inference, format!("running the model: {e}"))
        })?;
        let first = |name: &str| -> Result<f32> {
            let values: Vec<f32> = outputs
                .get(name)
                .cloned()
                .and_then(|t| Vec::<f32>::try_from(t).ok())
                .unwrap_or_default();
            values.first().copied().ok_or_else(|| {
                LivenessError::new(
                    ErrorCode::Inference,
                    format!("the model returned no {name:?} values"),
                )
            })
        };
        Ok((first(LOGIT)?, first(P_SPOOF)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::manifest::sha256_hex;
    use liveness_core::{FRAMES, Normalization};

    fn manifest_json(size: u32, batch: usize) -> String {
        let m = liveness_core::manifest::example(b"model bytes", size, batch);
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

        let mut v: serde_json::Value = serde_json::from_str(&manifest_json(16, 1)).expect("JSON");
        v["threshold"] = 1.5.into();
        assert!(parse_manifest(&v.to_string(), "t.json").is_err());

        let mut v: serde_json::Value = serde_json::from_str(&manifest_json(16, 1)).expect("JSON");
        v["format"] = "other".into();
        assert!(parse_manifest(&v.to_string(), "f.json").is_err());
    }

    #[test]
    fn input_is_the_shared_preprocessing_padded_to_the_batch() {
        let m = parse_manifest(&manifest_json(16, 2), "m.json").expect("valid");
        let pixels: Vec<u8> = (0..24 * 16 * 4).map(|i| (i * 7 % 256) as u8).collect();
        let frames = vec![Frame::rgba(&pixels, 24, 16); FRAMES];
        let input = model_input(&m, &frames).expect("input");
        let expected =
            preprocess_sample(&frames, 16, &Normalization::IMAGENET).expect("preprocess");
        assert_eq!(input.len(), 2 * expected.len());
        assert_eq!(&input[..expected.len()], expected.as_slice());
        assert!(input[expected.len()..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn wrong_frames_are_a_frames_error() {
        let m = parse_manifest(&manifest_json(16, 1), "m.json").expect("valid");
        let pixels = vec![0u8; 6 * 4 * 4];
        let err = model_input(&m, &[Frame::rgba(&pixels, 6, 4); 4]).expect_err("4 frames");
        assert_eq!(err.code, ErrorCode::Frames);
        let short = vec![0u8; 10];
        let mut frames = vec![Frame::rgba(&pixels, 6, 4); FRAMES];
        frames[3] = Frame::rgba(&short, 6, 4);
        let err = model_input(&m, &frames).expect_err("short frame");
        assert!(err.message.contains("frame 3"), "{}", err.message);
    }

    #[test]
    fn verdict_uses_the_metrics_rule() {
        let t = Timings::default();
        assert!(Verdict::new(-2.0, 0.2, 0.5, t.clone()).live);
        assert!(!Verdict::new(0.0, 0.5, 0.5, t.clone()).live);
        assert!(!Verdict::new(3.0, 0.95, 0.5, t).live);
    }
}
