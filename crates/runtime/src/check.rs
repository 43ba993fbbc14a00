//! The steps of a check around the engine: the face gate, the crop and the shared preprocessing
//! before it ([`Checker::prepare`]), and the verdict after it ([`Checker::decide`]).

use liveness_core::face::{FaceBox, gate};
use liveness_core::manifest::Manifest;
use liveness_core::{Frame, check_sample, classified_as_attack, preprocess_views};
use serde::Serialize;

use crate::detector::{self, FaceDetector};
use crate::error::Result;

/// A model's input for one sample, and the face found in each frame.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `[5, 3·views, S, S]` normalised, flattened.
    pub input: Vec<f32>,
    /// The one face of each frame.
    pub faces: Vec<FaceBox>,
}

/// What a check decides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `true` when a live person was seen: `p_spoof < threshold` (never for a non-finite score).
    pub live: bool,
    /// The model's probability that the frames show a presentation attack: `sigmoid(logit)`.
    pub p_spoof: f32,
    /// The model's raw output.
    pub logit: f32,
    /// The decision threshold on `p_spoof`, from the manifest.
    pub threshold: f32,
}

/// A check's outcome: a verdict, or a refusal by the face gate (no verdict, not "live").
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model decided.
    Verdict(Verdict),
    /// The face gate refused the frames.
    Refused(liveness_core::face::Refusal),
}

/// `1 / (1 + e^-x)`, the model's own output function.
pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

/// The steps around inference for one model.
#[derive(Clone)]
pub struct Checker {
    manifest: Manifest,
    detector: FaceDetector,
}

impl Checker {
    /// A checker for a validated `manifest` (named `source` in errors); refuses a manifest whose
    /// face gate is not the detector compiled into this runtime.
    pub fn new(manifest: Manifest, source: &str) -> Result<Self> {
        manifest.validate(source)?;
        manifest.check_detector(&detector::sha256(), source)?;
        let detector = FaceDetector::new(manifest.face.min_score)?;
        Ok(Checker { manifest, detector })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The detector (for live guidance on preview frames).
    pub fn detector(&self) -> &FaceDetector {
        &self.detector
    }

    /// The faces of each of five frames (checked first: count, limits, buffers, one size).
    pub fn faces(&self, frames: &[Frame<'_>]) -> Result<Vec<Vec<FaceBox>>> {
        check_sample(frames)?;
        frames
            .iter()
            .enumerate()
            .map(|(k, f)| self.detector.detect(*f, k))
            .collect()
    }

    /// The face gate (exactly one face per frame; else [`crate::Error::Refused`]), the crop rule and
    /// the shared preprocessing: five frames → the model's input for one sample.
    pub fn prepare(&self, frames: &[Frame<'_>]) -> Result<Prepared> {
        self.prepare_from(frames, &self.faces(frames)?)
    }

    /// [`Checker::prepare`] with the faces already found ([`Checker::faces`]).
    pub fn prepare_from(
        &self,
        frames: &[Frame<'_>],
        faces_per_frame: &[Vec<FaceBox>],
    ) -> Result<Prepared> {
        let faces = gate(faces_per_frame)?;
        let spec = &self.manifest.input;
        let input = preprocess_views(
            frames,
            Some(&faces),
            &spec.crops(),
            spec.size,
            &spec.normalization,
        )?;
        Ok(Prepared { input, faces })
    }

    /// The verdict on a model's logit, with the shared fail-closed rule.
    pub fn decide(&self, logit: f32) -> Verdict {
        let p_spoof = sigmoid(logit);
        Verdict {
            live: !classified_as_attack(p_spoof, self.manifest.threshold),
            p_spoof,
            logit,
            threshold: self.manifest.threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_logit_is_never_live() {
        let mut m = liveness_core::manifest::example(b"x", 32, 1);
        m.face.sha256 = detector::sha256();
        let c = Checker::new(m, "m.json").expect("checker");
        assert!(!c.decide(f32::NAN).live);
        assert!(c.decide(-5.0).live);
        assert!(!c.decide(5.0).live);
    }

    #[test]
    fn a_manifest_for_another_detector_is_refused() {
        let m = liveness_core::manifest::example(b"x", 32, 1);
        let Err(e) = Checker::new(m, "m.json") else {
            panic!("another detector must be refused")
        };
        assert!(e.to_string().contains("blazeface"), "{e}");
    }
}
