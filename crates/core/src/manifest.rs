//! The manifest that travels next to an exported model (`NAME.json` beside `NAME.onnx`): what the
//! model expects, how to read its output, where its data came from and under which terms, how well
//! it did, and the SHA-256 of the model file so that a client can refuse altered bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AttackClass, FRAMES, Normalization, Report};

/// Format tag; bump when fields change meaning.
pub const FORMAT: &str = "liveness-model-v1";

/// The model's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Graph input name.
    pub name: String,
    /// Samples per run (the file has static shapes).
    pub batch: usize,
    /// Frames per sample.
    pub frames: usize,
    /// Square side in pixels.
    pub size: u32,
    /// Tensor layout: `[batch, frames, 3, size, size]`, RGB.
    pub layout: String,
    /// How a frame becomes the input: centre square crop, bilinear resize, then `(x/255 - mean)/std`.
    pub preprocessing: String,
    /// Per-channel normalisation.
    pub normalization: Normalization,
}

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Name of the dataset.
    pub name: String,
    /// Its terms of use (e.g. research use only).
    pub terms: String,
    /// Classes the model saw in training.
    pub classes: Vec<AttackClass>,
}

/// Everything a client needs besides the ONNX bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// File name of the ONNX model, next to the manifest.
    pub model_file: String,
    /// SHA-256 of the ONNX file, lowercase hex.
    pub sha256: String,
    /// Architecture name.
    pub architecture: String,
    /// The input.
    pub input: InputSpec,
    /// Output names: the logit and its sigmoid, each `[batch, 1]`.
    pub outputs: Vec<String>,
    /// `p_spoof >= threshold` means a presentation attack; below it, a live person.
    pub threshold: f32,
    /// Training data and terms.
    pub data: DataSpec,
    /// Metrics of the exported checkpoint on its validation set, at `threshold` (absent when
    /// the model trained on every person).
    pub validation: Option<Report>,
    /// Cross-validation of the training recipe (folds of held-out people), when available.
    #[serde(default)]
    pub cross_validation: Option<serde_json::Value>,
    /// The training configuration (as the trainer recorded it).
    pub training: Option<serde_json::Value>,
    /// The command that reproduces the model, when known.
    #[serde(default)]
    pub training_command: Option<String>,
    /// Tool and version that wrote the file.
    pub tool: String,
}

impl InputSpec {
    /// The standard description of an input of `batch × 5 × 3 × size × size`.
    pub fn new(name: &str, batch: usize, size: u32, normalization: Normalization) -> Self {
        InputSpec {
            name: name.to_owned(),
            batch,
            frames: FRAMES,
            size,
            layout: "[batch, frames, 3, size, size], RGB, f32".to_owned(),
            preprocessing:
                "centre square crop, bilinear resize to size x size, (x / 255 - mean) / std"
                    .to_owned(),
            normalization,
        }
    }

    /// `[batch, frames, 3, size, size]`.
    pub fn shape(&self) -> [usize; 5] {
        [
            self.batch,
            self.frames,
            3,
            self.size as usize,
            self.size as usize,
        ]
    }
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The model bytes do not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "model file {file} has SHA-256 {actual}, but its manifest says {expected}: the file was altered or is not this manifest's model"
)]
pub struct HashMismatch {
    /// Model file name from the manifest.
    pub file: String,
    /// Hash in the manifest.
    pub expected: String,
    /// Hash of the bytes.
    pub actual: String,
}

impl Manifest {
    /// The manifest of `bytes`, a model with the standard outputs (`logit`, `p_spoof`) whose
    /// SHA-256 it records. The optional records (validation, cross-validation, training, training
    /// command) start empty.
    pub fn new(
        model_file: impl Into<String>,
        bytes: &[u8],
        architecture: impl Into<String>,
        input: InputSpec,
        threshold: f32,
        data: DataSpec,
        tool: impl Into<String>,
    ) -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            model_file: model_file.into(),
            sha256: sha256_hex(bytes),
            architecture: architecture.into(),
            input,
            outputs: vec![
                crate::onnx::seed::LOGIT.to_owned(),
                crate::onnx::seed::P_SPOOF.to_owned(),
            ],
            threshold,
            data,
            validation: None,
            cross_validation: None,
            training: None,
            training_command: None,
            tool: tool.into(),
        }
    }

    /// Checks `bytes` against the manifest's SHA-256.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), HashMismatch> {
        self.verify_sha256(sha256_hex(bytes))
    }

    /// Checks a SHA-256 (hex) computed elsewhere, e.g. by the browser's WebCrypto, against the
    /// manifest's.
    pub fn verify_sha256(&self, actual: String) -> Result<(), HashMismatch> {
        if actual.eq_ignore_ascii_case(&self.sha256) {
            Ok(())
        } else {
            Err(HashMismatch {
                file: self.model_file.clone(),
                expected: self.sha256.clone(),
                actual,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_fails_verification() {
        let bytes = b"model bytes".to_vec();
        let m = Manifest::new(
            "m.onnx",
            &bytes,
            "x",
            InputSpec::new("frames", 1, 32, Normalization::IMAGENET),
            0.5,
            DataSpec {
                name: "d".into(),
                terms: "t".into(),
                classes: vec![AttackClass::Real],
            },
            "test",
        );
        assert_eq!(m.format, FORMAT);
        assert_eq!(m.outputs, ["logit", "p_spoof"]);
        assert!(m.verify(&bytes).is_ok());
        let mut changed = bytes.clone();
        changed[3] ^= 1;
        let err = m.verify(&changed).expect_err("must fail");
        assert!(err.to_string().contains("m.onnx"));
        // The known SHA-256 of "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(serde_json::from_str::<Manifest>(&json).expect("parse"), m);
    }
}
