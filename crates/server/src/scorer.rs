//! The server's own check of the client's frames: the model named by the manifest, the face
//! gate, the crop and the preprocessing — `liveness-runtime`, the code the browser's CPU engine
//! runs — on the CPU (tract), on tokio's blocking threads.

use std::path::Path;
use std::sync::Arc;

use liveness_core::Frame;
use liveness_core::challenge::{Challenge, ChallengeFailure, ChallengeReport};
use liveness_core::face::FaceBox;
use liveness_core::manifest::Manifest;
use liveness_runtime::challenge::check_challenge;
use liveness_runtime::{Backend, Model, Outcome, VerifiedModel};

use crate::frames::Rgba;

/// A loaded, verified model with its face gate, on the CPU engine.
pub struct Scorer {
    model: Model,
}

/// One server-side check.
pub struct Scored {
    /// The verdict, or the face gate's refusal.
    pub outcome: Outcome,
    /// Time spent in the face detector, preprocessing and the model, ms.
    pub model_ms: f64,
    /// The one face of each frame (empty when the gate refused them), for the challenge.
    pub faces: Vec<FaceBox>,
}

fn frames<'a>(rgba: impl IntoIterator<Item = &'a Rgba>) -> Vec<Frame<'a>> {
    rgba.into_iter()
        .map(|f| Frame::rgba(&f.pixels, f.width, f.height))
        .collect()
}

impl Scorer {
    /// Loads `model` and its manifest (`NAME.json` next to it): `liveness-runtime`'s one load
    /// (size, manifest, SHA-256), on the CPU engine.
    pub fn load(model: &Path) -> Result<Self, liveness_runtime::Error> {
        let verified = VerifiedModel::read(model, None)?;
        Ok(Scorer {
            model: Model::load_blocking(&verified, Backend::Cpu)?,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        self.model.manifest()
    }

    /// Checks five frames (blocking: call it from a blocking thread).
    pub fn score(&self, rgba: &[Rgba]) -> Result<Scored, liveness_runtime::Error> {
        let checked = self.model.check_blocking(&frames(rgba))?;
        Ok(Scored {
            outcome: checked.outcome,
            model_ms: checked.timings.total_ms(),
            faces: checked.faces,
        })
    }
}

impl Scorer {
    /// Checks a challenge's track: the `track` frames, then the five `passive` frames, with
    /// their capture times (the client's clock) and the time the server measured itself
    /// (blocking). `passive` is the [`Scored`] check of the five: the faces the gate passed are
    /// not detected again.
    pub fn challenge(
        &self,
        challenge: &Challenge,
        track: &[Rgba],
        (passive, scored): (&[Rgba], &Scored),
        times_ms: &[f64],
        elapsed_ms: f64,
    ) -> Result<Result<ChallengeReport, ChallengeFailure>, liveness_runtime::Error> {
        check_challenge(
            self.model.checker().detector(),
            challenge,
            &frames(track.iter().chain(passive)),
            times_ms,
            Some(elapsed_ms),
            &scored.faces,
        )
    }
}

/// A scorer shared by every request.
pub type SharedScorer = Arc<Scorer>;
