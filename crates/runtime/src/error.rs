use liveness_core::face::Refusal;
use liveness_core::manifest::ManifestError;

/// What can go wrong running a model or the detector. Messages name the model or frame at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is invalid, does not match the model's bytes, or names another detector.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A model file larger than [`liveness_core::limits::MAX_MODEL_BYTES`].
    #[error("model {source_name} is {bytes} bytes; models may be at most {max} bytes")]
    ModelTooLarge {
        source_name: String,
        bytes: u64,
        max: u64,
    },
    /// tract could not load or run the model.
    #[error("{what}: {message}")]
    Tract { what: String, message: String },
    /// The frames are not five frames of one valid size.
    #[error(transparent)]
    Frames(#[from] liveness_core::Error),
    /// The face gate refused the frames (no face, several faces).
    #[error("no verdict: {0}")]
    Refused(#[from] Refusal),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps a tract error (`anyhow` inside tract) with what was being done.
pub(crate) fn tract(
    what: impl Into<String>,
) -> impl FnOnce(tract_onnx::prelude::TractError) -> Error {
    let what = what.into();
    move |e| Error::Tract {
        what,
        message: format!("{e:#}"),
    }
}
