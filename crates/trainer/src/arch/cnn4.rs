//! The small per-frame encoder (`liveness_core::onnx::cnn4` writes the same network as ONNX):
//! four blocks of `Conv 3×3 (no bias) → BatchNorm → ReLU → MaxPool 2×2`, then the global mean;
//! several towers side by side (grouped convolutions) for a multi-view input; with
//! [`Downsample::Stride`], stride-2 convolutions in place of the max-pools.

use liveness_core::onnx::cnn4::{CHANNELS, Downsample};
use tch::{Tensor, nn};

use super::Encoder;

#[derive(Debug)]
pub(super) struct Cnn4 {
    blocks: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Downsample,
}

/// The encoder under `root` (variables `{k}.conv.weight`, `{k}.bn.*`), with `towers` towers as
/// grouped convolutions (one per view: tower `t` reads channels `3t..3t+3` only).
pub(super) fn encoder(root: &nn::Path<'_>, towers: i64, downsample: Downsample) -> Cnn4 {
    let stride = match downsample {
        Downsample::MaxPool => 1,
        Downsample::Stride => 2,
    };
    let mut c_in = 3;
    let blocks = CHANNELS
        .iter()
        .enumerate()
        .map(|(k, &c_out)| {
            let block = root / k;
            let conv = nn::conv2d(
                &block / "conv",
                c_in * towers,
                c_out as i64 * towers,
                3,
                nn::ConvConfig {
                    stride,
                    padding: 1,
                    bias: false,
                    groups: towers,
                    ..Default::default()
                },
            );
            c_in = c_out as i64;
            (
                conv,
                nn::batch_norm2d(&block / "bn", c_out as i64 * towers, Default::default()),
            )
        })
        .collect();
    Cnn4 { blocks, downsample }
}

impl Encoder for Cnn4 {
    fn forward_t(&self, frames: &Tensor, train: bool) -> Tensor {
        let mut x = frames.shallow_clone();
        for (conv, bn) in &self.blocks {
            x = x.apply(conv).apply_t(bn, train).relu();
            if self.downsample == Downsample::MaxPool {
                x = x.max_pool2d_default(2);
            }
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}
