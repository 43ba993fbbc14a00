//! The server's own check of the client's frames: the model named by the manifest, the face
//! gate, the crop and the preprocessing — `liveness-runtime`, the code the browser's CPU engine
//! runs — on the CPU (tract), on tokio's blocking threads.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use liveness_core::Frame;
use liveness_core::challenge::{Challenge, ChallengeFailure, ChallengeReport};
use liveness_core::manifest::Manifest;
use liveness_core::model::manifest_path;
use liveness_runtime::challenge::check_challenge;
use liveness_runtime::{Checker, Outcome, TractModel};

use crate::frames::Rgba;

/// Why the model cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The runtime refused the manifest or the model.
    #[error("{path}: {source}")]
    Runtime {
        path: String,
        #[source]
        source: liveness_runtime::Error,
    },
}

/// A loaded, verified model with its face gate.
#[derive(Clone)]
pub struct Scorer {
    checker: Checker,
    model: TractModel,
}

/// One server-side check.
pub struct Scored {
    /// The verdict, or the face gate's refusal.
    pub outcome: Outcome,
    /// Time spent in the face detector, preprocessing and the model, ms.
    pub model_ms: f64,
}

impl Scorer {
    /// Loads `model` and its manifest (`NAME.json` next to it).
    pub fn load(model: &Path) -> Result<Self, ScorerError> {
        let manifest_file = manifest_path(model);
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| ScorerError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let runtime = |p: &Path| {
            let path = p.display().to_string();
            move |source| ScorerError::Runtime { path, source }
        };
        let text = String::from_utf8_lossy(&read(&manifest_file)?).into_owned();
        let manifest = Manifest::parse(&text, &manifest_file.display().to_string())
            .map_err(|e| runtime(&manifest_file)(e.into()))?;
        let checker = Checker::new(manifest.clone(), &manifest_file.display().to_string())
            .map_err(runtime(&manifest_file))?;
        let bytes = read(model)?;
        let model_loaded = TractModel::load(&bytes, manifest, &model.display().to_string())
            .map_err(runtime(model))?;
        Ok(Scorer {
            checker,
            model: model_loaded,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        self.checker.manifest()
    }

    /// Checks five frames (blocking: call it from a blocking thread).
    pub fn score(&self, frames: &[Rgba]) -> Result<Scored, liveness_runtime::Error> {
        let started = Instant::now();
        let views: Vec<Frame<'_>> = frames
            .iter()
            .map(|f| Frame::rgba(&f.pixels, f.width, f.height))
            .collect();
        let outcome = self.checker.check(&self.model, &views)?;
        Ok(Scored {
            outcome,
            model_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }
}

impl Scorer {
    /// Checks a challenge's track: the `track` frames, then the five `passive` frames, with
    /// their capture times (the client's clock) and the time the server measured itself
    /// (blocking).
    pub fn challenge(
        &self,
        challenge: &Challenge,
        track: &[Rgba],
        passive: &[Rgba],
        times_ms: &[f64],
        elapsed_ms: f64,
    ) -> Result<Result<ChallengeReport, ChallengeFailure>, liveness_runtime::Error> {
        let frames: Vec<Frame<'_>> = track
            .iter()
            .chain(passive)
            .map(|f| Frame::rgba(&f.pixels, f.width, f.height))
            .collect();
        check_challenge(
            self.checker.detector(),
            challenge,
            &frames,
            times_ms,
            Some(elapsed_ms),
        )
    }
}

/// A scorer shared by every request.
pub type SharedScorer = Arc<Scorer>;
