use liveness_core::face::Refusal;
use liveness_core::manifest::ManifestError;

/// What can go wrong running a model or the detector. Messages name the model or frame at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is invalid, does not match the model's bytes, or names another detector.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The model's bytes are not the ones its manifest describes.
    #[error("refusing model {source_name}: {source}")]
    Refusing {
        source_name: String,
        #[source]
        source: ManifestError,
    },
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
    /// The model's input is not whole samples of the manifest's shape.
    #[error("model input: {0}")]
    ModelInput(String),
    /// wonnx could not load or run the model (its panics included, where they can be caught).
    #[error("{what}: wonnx failed: {message}")]
    Wonnx { what: String, message: String },
    /// WebGPU was asked for and there is no adapter.
    #[error("backend=webgpu, but this browser offers no WebGPU adapter")]
    WebGpuUnavailable,
    /// A backend name that is not `auto`, `webgpu` or `cpu`.
    #[error("backend {0:?}: expected auto, webgpu or cpu")]
    UnknownBackend(String),
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
