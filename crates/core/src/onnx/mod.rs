//! Writing ONNX from Rust: the protobuf types of `onnx.proto` ([`proto`]: prost, compiled at build
//! time with protox), a small graph builder that records a static shape for every tensor
//! (`builder`), the liveness model's input and five-frame head around any encoder (`liveness`),
//! checkpoint weights with BatchNorm folding (`weights`), and one file per architecture
//! ([`resnet18`], [`cnn4`]) that writes its graph from a checkpoint's weights.
//!
//! Every graph is written in the dialect that wonnx 0.5.1 runs (measured), which tract and
//! onnxruntime run too:
//! - input `frames` `[N, 5, 3, S, S]` (normalised), outputs `logit` and `p_spoof` `[N, 1]`
//!   ([`crate::model_file`]); static shapes everywhere, a `value_info` for every intermediate;
//! - BatchNorm folded into each convolution, and every Conv has a bias (wonnx's 3×3 shader is
//!   silently wrong without one);
//! - the five-frame head's `Conv1d(5→1, k3, s2, p1)` as a 2-D Conv on `[N, 5, 1, F]` with kernel
//!   `[1, 3]`, and its `Linear(F/2→1)` as a Conv with kernel `[1, F/2]` (wonnx's Gemm fails on
//!   torch's layout);
//! - Reshape shapes as constant initializers; opset 17, IR 8.

pub mod cnn4;
pub mod resnet18;

use std::collections::BTreeMap;

/// The prost types generated from `proto/onnx.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

mod builder;
mod liveness;
mod weights;

pub use builder::{GraphBuilder, Value, value_info, window_out};
pub use weights::{fold_conv_bn, weight};

/// A named `f32` weight with its shape, e.g. from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// Weights by name.
pub type Weights = BTreeMap<String, Weight>;

/// Errors while building a graph.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A batch or input size outside [`crate::limits`], or below the architecture's minimum.
    #[error("{what} {got} is outside the allowed range {allowed}")]
    OutOfRange {
        what: &'static str,
        got: u64,
        allowed: String,
    },
    /// The graph needs a Conv larger than wonnx can dispatch.
    #[error(
        "batch {batch} at {size}x{size} needs a Conv with {outputs} outputs; wonnx runs at most {WONNX_MAX_CONV_OUTPUTS} per Conv: use a batch of at most {max_batch}"
    )]
    TooLargeForWonnx {
        batch: usize,
        size: u32,
        outputs: i64,
        max_batch: i64,
    },
    /// An ensemble of no models, or of more than [`MAX_ENSEMBLE`].
    #[error("an ensemble needs 1 to {MAX_ENSEMBLE} members, got {0}")]
    EnsembleSize(usize),
    /// A weight the architecture needs is missing.
    #[error("weight {0} is missing: not a checkpoint of this architecture")]
    MissingWeight(String),
    /// A weight has the wrong shape.
    #[error("weight {name} has shape {got:?}, the architecture needs {expected:?}")]
    WeightShape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// Most members of a seed ensemble in one graph.
pub const MAX_ENSEMBLE: usize = 16;
/// Opset written.
pub const OPSET: i64 = 17;
/// BatchNorm epsilon of the trained model (torch's default).
pub const BN_EPS: f32 = 1e-5;
/// Most outputs one wonnx Conv dispatch can compute (65,535 workgroups × 256).
pub const WONNX_MAX_CONV_OUTPUTS: i64 = 65_535 * 256;
