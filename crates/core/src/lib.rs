//! What both sides of the liveness checker must agree on, with no tch and no web dependency,
//! so that it compiles for the native trainer and for `wasm32-unknown-unknown` alike:
//!
//! - [`contract`]: a sample is [`FRAMES`] frames; the class folders and their binary label;
//!   the ImageNet normalisation.
//! - [`preprocess`]: a decoded RGB/RGBA frame → centre square crop → `size × size` → normalised
//!   CHW `f32`. The trainer and the browser call this same code, so they cannot drift apart.
//! - [`face`]: the face gate (BlazeFace's input, anchor decoding, non-maximum suppression, one
//!   face per frame) and the live guidance; [`preprocess::Crop`] crops around the face.
//! - [`arch`]: the model architectures; [`onnx`]: the ONNX writer (prost types of `onnx.proto`, a
//!   graph builder, one graph per architecture in the dialect wonnx runs); [`model_file`]: the
//!   runtime contract (input/output names, manifest address, batch padding); [`manifest`]: the
//!   JSON that travels next to an exported model, validated on read.
//! - [`limits`]: every limit on input, stated once.
//! - [`metrics`]: ISO/IEC 30107-3 presentation-attack metrics (APCER per attack class, BPCER,
//!   ACER), EER, ROC AUC and the recipe's classification scores, over a whole set of scores.
//!
//! ```
//! use liveness_core::{preprocess_sample, Frame, Normalization, FRAMES};
//! let pixels = vec![128u8; 48 * 32 * 3];
//! let frames = vec![Frame::rgb(&pixels, 48, 32); FRAMES];
//! let input = preprocess_sample(&frames, 16, &Normalization::IMAGENET)?;
//! assert_eq!(input.len(), FRAMES * 3 * 16 * 16);
//! # Ok::<(), liveness_core::Error>(())
//! ```

pub mod arch;
pub mod challenge;
pub mod contract;
mod error;
pub mod face;
pub mod limits;
pub mod manifest;
pub mod metrics;
pub mod model_file;
pub mod onnx;
pub mod preprocess;
pub mod testing;

pub use arch::Arch;
pub use contract::{AttackClass, DEFAULT_INPUT_SIZE, FRAMES, Normalization, classified_as_attack};
pub use error::{Error, Result};
pub use metrics::{Confusion, Report, ScoredSample, evaluate};
pub use preprocess::{
    Crop, Fit, Frame, PixelLayout, Region, check_sample, normalize_into, preprocess_frame,
    preprocess_regions, preprocess_sample, preprocess_views, resize_frame, resize_region,
};
