//! A small network a browser can afford: per frame four blocks of `Conv 3×3 → BatchNorm → ReLU →
//! MaxPool 2×2` (16, 32, 64, 128 channels; about 98 k weights) → global average → 128 features
//! → the five-frame head. The trainer's `arch/cnn4.rs` defines the same network in tch.
//! [`Downsample::Stride`] halves each block's resolution in the convolution itself instead (the
//! same weights, a quarter of the multiply-adds, no max-pool).

use super::{ExportError, GraphBuilder, Value, Weights, fold_conv_bn};

/// Output channels of the four blocks.
pub const CHANNELS: [usize; 4] = [16, 32, 64, 128];
/// Features per frame out of the encoder.
pub const FEATURES: usize = CHANNELS[3];
/// Smallest input side that keeps every feature map at least 1 pixel (four 2× poolings).
pub const MIN_SIZE: u32 = 16;

/// How each block halves the feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downsample {
    /// `Conv 3×3 stride 1 → … → MaxPool 2×2`.
    MaxPool,
    /// `Conv 3×3 stride 2` (padding 1), no pooling.
    Stride,
}

/// The logit `[N, 1, 1, 1]` of `batch` samples from the folded frames `x` `[N·5, 3·towers, S, S]`
/// (weights `encoder.{k}.conv.weight`, `encoder.{k}.bn.*` for blocks k = 0..4, then `conv1d.*`,
/// `fc.*`), the head's output times `scale`.
///
/// With `towers > 1` the input carries that many views per frame (`3 × towers` channels) and
/// every convolution is grouped: tower `t` sees only view `t`, and the pooled features are the
/// towers' side by side (`128 × towers`) for the head to fuse.
pub fn logit(
    g: &mut GraphBuilder,
    x: &Value,
    w: &Weights,
    batch: usize,
    scale: f32,
    towers: usize,
    downsample: Downsample,
) -> Result<Value, ExportError> {
    let stride = match downsample {
        Downsample::MaxPool => 1,
        Downsample::Stride => 2,
    };
    let mut x = x.clone();
    let mut c_in = 3;
    for (k, &c_out) in CHANNELS.iter().enumerate() {
        let conv = format!("encoder.{k}.conv");
        let (weight, bias) = fold_conv_bn(
            w,
            &conv,
            &format!("encoder.{k}.bn"),
            [c_out * towers, c_in, 3, 3],
        )?;
        x = g.conv_grouped(
            &x,
            &conv,
            &weight,
            &bias,
            [stride, stride],
            [1, 1, 1, 1],
            towers as i64,
        );
        x = g.relu(&x);
        if downsample == Downsample::MaxPool {
            x = g.max_pool(&x, 2, 2, 0);
        }
        c_in = c_out;
    }
    let x = g.global_average_pool(&x);
    g.five_frame_logit(&x, w, FEATURES * towers, batch, scale)
}
