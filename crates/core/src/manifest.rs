//! The manifest that travels next to an exported model (`NAME.json` beside `NAME.onnx`): what the
//! model expects, how to read its output, which face detector gates it, where its data came from
//! and under which terms, how well it did, and the SHA-256 of the model file so that a client can
//! refuse altered bytes.
//!
//! Every runtime reads a manifest through [`Manifest::parse`], which checks every field against
//! [`crate::limits`]: a manifest that parses is one any runtime here can run.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::{self, BATCH, INPUT_SIZE, MAX_MANIFEST_BYTES};
use crate::model_file::{INPUT, OUTPUTS, hex};
use crate::preprocess::Crop;
use crate::{Arch, AttackClass, FRAMES, Normalization, Report};

/// Format tag; bump when fields change meaning. v2 added the crop rule and the face gate.
pub const FORMAT: &str = "liveness-model-v2";

/// The model's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Graph input name ([`crate::model_file::INPUT`]).
    pub name: String,
    /// Samples per run (the file has static shapes).
    pub batch: usize,
    /// Frames per sample.
    pub frames: usize,
    /// Square side in pixels.
    pub size: u32,
    /// Tensor layout: `[batch, frames, 3, size, size]`, RGB (`3 × views` channels with views).
    pub layout: String,
    /// Which region of each frame the model sees (the first view's, with several).
    #[serde(default)]
    pub crop: Crop,
    /// With a multi-view architecture, every view's crop rule in channel order (the first is
    /// `crop`); empty for one view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<Crop>,
    /// How a frame becomes the input, in words.
    pub preprocessing: String,
    /// Per-channel normalisation.
    pub normalization: Normalization,
}

/// The face gate: the detector every runtime runs before the model, identified by its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceSpec {
    /// Detector name (e.g. `blazeface-front-128`).
    pub detector: String,
    /// SHA-256 of the detector's ONNX file; a runtime refuses a manifest naming another detector.
    pub sha256: String,
    /// A detection counts as a face from this score up.
    pub min_score: f32,
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
    /// What the model covers and what it does not (attack types, cameras, people), in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub coverage: String,
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
    /// Architecture.
    pub architecture: Arch,
    /// The input.
    pub input: InputSpec,
    /// Output names: the logit and its sigmoid, each `[batch, 1]`.
    pub outputs: Vec<String>,
    /// `p_spoof >= threshold` means a presentation attack; below it, a live person.
    pub threshold: f32,
    /// How the threshold was chosen (e.g. the cross-validation report's rule), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_rule: Option<String>,
    /// The face gate.
    pub face: FaceSpec,
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
    /// The standard description of an input of `batch × 5 × 3 × size × size` cropped by `crop`.
    pub fn new(batch: usize, size: u32, crop: Crop, normalization: Normalization) -> Self {
        Self::with_views(batch, size, &[crop], normalization)
    }

    /// An input with one view per crop rule in `crops` (at least one): `batch × 5 × 3·V × size ×
    /// size`, view `v` at channels `3v..3v+3`.
    pub fn with_views(
        batch: usize,
        size: u32,
        crops: &[Crop],
        normalization: Normalization,
    ) -> Self {
        let crop = crops.first().copied().unwrap_or_default();
        let (layout, preprocessing) = if crops.len() > 1 {
            let each: Vec<String> = crops
                .iter()
                .enumerate()
                .map(|(v, c)| {
                    format!(
                        "view {v} (channels {}-{}): {}",
                        3 * v,
                        3 * v + 2,
                        c.describe()
                    )
                })
                .collect();
            (
                format!(
                    "[batch, frames, 3 x {} views, size, size], RGB per view, f32",
                    crops.len()
                ),
                format!(
                    "{}; each bilinear resized to size x size, (x / 255 - mean) / std",
                    each.join("; ")
                ),
            )
        } else {
            (
                "[batch, frames, 3, size, size], RGB, f32".to_owned(),
                format!(
                    "{}, bilinear resize to size x size, (x / 255 - mean) / std",
                    crop.describe()
                ),
            )
        };
        InputSpec {
            name: INPUT.to_owned(),
            batch,
            frames: FRAMES,
            size,
            layout,
            crop,
            views: if crops.len() > 1 {
                crops.to_vec()
            } else {
                Vec::new()
            },
            preprocessing,
            normalization,
        }
    }

    /// Every view's crop rule, in channel order (one for a single-view model).
    pub fn crops(&self) -> Vec<Crop> {
        if self.views.is_empty() {
            vec![self.crop]
        } else {
            self.views.clone()
        }
    }

    /// Values in one sample's input: `5 × 3·views × size × size`.
    pub fn sample_len(&self) -> usize {
        self.shape()[1..].iter().product()
    }

    /// `[batch, frames, 3 × views, size, size]`.
    pub fn shape(&self) -> [usize; 5] {
        [
            self.batch,
            self.frames,
            3 * self.crops().len(),
            self.size as usize,
            self.size as usize,
        ]
    }
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// What can be wrong with a manifest or the model it describes. Every message names the source.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Larger than a manifest can be.
    #[error("manifest {source_name} is {bytes} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")]
    TooLarge { source_name: String, bytes: u64 },
    /// Not JSON of the manifest's shape.
    #[error("manifest {source_name} is not valid: {error}")]
    Json {
        source_name: String,
        #[source]
        error: serde_json::Error,
    },
    /// Another format version.
    #[error(
        "manifest {source_name} has format {found:?}; this version reads {FORMAT:?} (export the model again)"
    )]
    Format { source_name: String, found: String },
    /// A field outside what any runtime can run.
    #[error("manifest {source_name}: {field} {problem}")]
    Field {
        source_name: String,
        field: &'static str,
        problem: String,
    },
    /// The model bytes do not match the manifest.
    #[error(
        "model file {file} has SHA-256 {actual}, but its manifest says {expected}: the file was altered or is not this manifest's model"
    )]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    /// The manifest names a face detector other than the one this runtime carries.
    #[error(
        "manifest {source_name} needs face detector {detector} with SHA-256 {expected}; this runtime carries {actual}"
    )]
    Detector {
        source_name: String,
        detector: String,
        expected: String,
        actual: String,
    },
}

impl Manifest {
    /// The manifest of `bytes` (a model with the standard input and outputs), whose SHA-256 it
    /// records. The optional records (validation, cross-validation, training, training command)
    /// start empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model_file: impl Into<String>,
        bytes: &[u8],
        architecture: Arch,
        input: InputSpec,
        threshold: f32,
        face: FaceSpec,
        data: DataSpec,
        tool: impl Into<String>,
    ) -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            model_file: model_file.into(),
            sha256: sha256_hex(bytes),
            architecture,
            input,
            outputs: OUTPUTS.map(str::to_owned).to_vec(),
            threshold,
            threshold_rule: None,
            face,
            data,
            validation: None,
            cross_validation: None,
            training: None,
            training_command: None,
            tool: tool.into(),
        }
    }

    /// Parses and [validates](Manifest::validate) a manifest; `source` (a path or address) names
    /// it in errors.
    pub fn parse(json: &str, source: &str) -> Result<Manifest, ManifestError> {
        if json.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                source_name: source.to_owned(),
                bytes: json.len() as u64,
            });
        }
        // The format first, so that another version gets its own message, not a missing field.
        let format = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned));
        if let Some(found) = format.filter(|f| f != FORMAT) {
            return Err(ManifestError::Format {
                source_name: source.to_owned(),
                found,
            });
        }
        let manifest: Manifest =
            serde_json::from_str(json).map_err(|error| ManifestError::Json {
                source_name: source.to_owned(),
                error,
            })?;
        manifest.validate(source)?;
        Ok(manifest)
    }

    /// Checks every field a runtime relies on: the format, 5 frames, a batch and size within
    /// [`crate::limits`], the standard input and output names, a threshold inside (0, 1), a
    /// finite normalisation with every std > 0, a usable crop rule and face gate, and hashes that
    /// are SHA-256 hex.
    pub fn validate(&self, source: &str) -> Result<(), ManifestError> {
        let field = |field: &'static str, problem: String| {
            Err(ManifestError::Field {
                source_name: source.to_owned(),
                field,
                problem,
            })
        };
        if self.format != FORMAT {
            return Err(ManifestError::Format {
                source_name: source.to_owned(),
                found: self.format.clone(),
            });
        }
        let input = &self.input;
        if input.frames != FRAMES {
            return field(
                "input.frames",
                format!("is {}, the model contract is {FRAMES} frames", input.frames),
            );
        }
        if !BATCH.contains(&input.batch) {
            return field(
                "input.batch",
                format!("is {}, allowed {BATCH:?}", input.batch),
            );
        }
        let min = self.architecture.min_input_size().max(*INPUT_SIZE.start());
        if !(min..=*INPUT_SIZE.end()).contains(&input.size) {
            return field(
                "input.size",
                format!(
                    "is {}, allowed {min}..={} for {}",
                    input.size,
                    INPUT_SIZE.end(),
                    self.architecture
                ),
            );
        }
        if input.name != INPUT {
            return field(
                "input.name",
                format!("is {:?}, must be {INPUT:?}", input.name),
            );
        }
        if self.outputs != OUTPUTS {
            return field(
                "outputs",
                format!("are {:?}, must be {OUTPUTS:?}", self.outputs),
            );
        }
        if !limits::threshold_ok(self.threshold) {
            return field(
                "threshold",
                format!("is {}, must be finite and inside (0, 1)", self.threshold),
            );
        }
        if let Err(problem) = input.normalization.check() {
            return field("input.normalization", problem);
        }
        for crop in input.crops() {
            if let Crop::Face { scale } = crop
                && !(scale.is_finite() && limits::FACE_SCALE.contains(&scale))
            {
                let (lo, hi) = (limits::FACE_SCALE.start(), limits::FACE_SCALE.end());
                return field(
                    "input.crop.scale",
                    format!("is {scale}, allowed {lo}..={hi}"),
                );
            }
        }
        if input.crops().len() != self.architecture.views()
            || input.views.first().is_some_and(|v| *v != input.crop)
        {
            return field(
                "input.views",
                format!(
                    "has {} view(s) (first {:?}, crop {:?}); {} takes {}, the first being `crop`",
                    input.crops().len(),
                    input.views.first(),
                    input.crop,
                    self.architecture,
                    self.architecture.views()
                ),
            );
        }
        if !(self.face.min_score.is_finite()
            && self.face.min_score > 0.0
            && self.face.min_score < 1.0)
        {
            return field(
                "face.min_score",
                format!("is {}, must be inside (0, 1)", self.face.min_score),
            );
        }
        for (name, hash) in [("sha256", &self.sha256), ("face.sha256", &self.face.sha256)] {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return field(
                    if name == "sha256" {
                        "sha256"
                    } else {
                        "face.sha256"
                    },
                    format!("{hash:?} is not a SHA-256 in hex"),
                );
            }
        }
        Ok(())
    }

    /// Checks `bytes` against the manifest's SHA-256.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        self.verify_sha256(sha256_hex(bytes))
    }

    /// Checks a SHA-256 (hex) computed elsewhere, e.g. by the browser's WebCrypto, against the
    /// manifest's.
    pub fn verify_sha256(&self, actual: String) -> Result<(), ManifestError> {
        if actual.eq_ignore_ascii_case(&self.sha256) {
            Ok(())
        } else {
            Err(ManifestError::HashMismatch {
                file: self.model_file.clone(),
                expected: self.sha256.clone(),
                actual,
            })
        }
    }

    /// Checks that the manifest's face gate is the detector a runtime carries (its SHA-256).
    pub fn check_detector(&self, detector_sha256: &str, source: &str) -> Result<(), ManifestError> {
        if self.face.sha256.eq_ignore_ascii_case(detector_sha256) {
            Ok(())
        } else {
            Err(ManifestError::Detector {
                source_name: source.to_owned(),
                detector: self.face.detector.clone(),
                expected: self.face.sha256.clone(),
                actual: detector_sha256.to_owned(),
            })
        }
    }
}

/// A valid manifest for tests: `size`-pixel input, batch `batch`, threshold 0.5, of `bytes`.
#[doc(hidden)]
pub fn example(bytes: &[u8], size: u32, batch: usize) -> Manifest {
    Manifest::new(
        "m.onnx",
        bytes,
        Arch::Cnn4,
        InputSpec::new(batch, size, Crop::CentreSquare, Normalization::IMAGENET),
        0.5,
        FaceSpec {
            detector: "blazeface-front-128".into(),
            sha256: "0".repeat(64),
            min_score: crate::face::MIN_SCORE,
        },
        DataSpec {
            name: "d".into(),
            terms: "t".into(),
            classes: vec![AttackClass::Real],
            coverage: String::new(),
        },
        "test",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v = serde_json::to_value(example(b"model bytes", 32, 1)).expect("json");
        edit(&mut v);
        v.to_string()
    }

    #[test]
    fn a_changed_byte_fails_verification() {
        let bytes = b"model bytes".to_vec();
        let m = example(&bytes, 32, 1);
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
        assert_eq!(Manifest::parse(&json, "m.json").expect("parse"), m);
    }

    #[test]
    fn every_field_a_runtime_relies_on_is_checked() {
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "input.frames",
                Box::new(|v| v["input"]["frames"] = 4.into()),
            ),
            ("input.batch", Box::new(|v| v["input"]["batch"] = 0.into())),
            (
                "input.batch",
                Box::new(|v| v["input"]["batch"] = 100_000.into()),
            ),
            ("input.size", Box::new(|v| v["input"]["size"] = 0.into())),
            (
                "input.size",
                Box::new(|v| v["input"]["size"] = 100_000.into()),
            ),
            ("input.name", Box::new(|v| v["input"]["name"] = "x".into())),
            (
                "outputs",
                Box::new(|v| v["outputs"] = serde_json::json!(["logit"])),
            ),
            ("threshold", Box::new(|v| v["threshold"] = 1.5.into())),
            ("threshold", Box::new(|v| v["threshold"] = 0.0.into())),
            // serde_json writes NaN as null, which is no number: refused while parsing.
            (
                "threshold",
                Box::new(|v| v["threshold"] = serde_json::Value::Null),
            ),
            (
                "input.normalization",
                Box::new(|v| v["input"]["normalization"]["std"][1] = 0.0.into()),
            ),
            (
                "input.crop",
                Box::new(|v| {
                    v["input"]["crop"] = serde_json::json!({"kind": "face", "scale": 99.0})
                }),
            ),
            (
                "input.crop",
                Box::new(|v| v["input"]["crop"] = serde_json::json!({"kind": "ellipse"})),
            ),
            (
                "face.min_score",
                Box::new(|v| v["face"]["min_score"] = 1.0.into()),
            ),
            ("sha256", Box::new(|v| v["sha256"] = "abc".into())),
            (
                "architecture",
                Box::new(|v| v["architecture"] = "mobilenet".into()),
            ),
            (
                "format",
                Box::new(|v| v["format"] = "liveness-model-v1".into()),
            ),
        ];
        for (field, edit) in cases {
            let err = Manifest::parse(&json_with(edit), "bad.json").expect_err(field);
            let msg = err.to_string();
            assert!(msg.contains("bad.json"), "{field}: {msg}");
            let named = msg.contains(field)
                || msg.contains(field.rsplit('.').next().unwrap_or(field))
                || matches!(err, ManifestError::Json { .. });
            assert!(named, "{field}: {msg}");
        }
        assert!(Manifest::parse("{", "x.json").is_err());
        let huge = " ".repeat(MAX_MANIFEST_BYTES as usize + 1);
        assert!(matches!(
            Manifest::parse(&huge, "x.json"),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_manifest_naming_another_detector_is_refused() {
        let m = example(b"x", 32, 1);
        assert!(m.check_detector(&"0".repeat(64), "m.json").is_ok());
        let err = m
            .check_detector(&"1".repeat(64), "m.json")
            .expect_err("other detector");
        assert!(err.to_string().contains("blazeface-front-128"));
    }
}
