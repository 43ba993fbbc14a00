//! The model architectures, by name: what each one's per-frame encoder hands to the shared
//! five-frame head, the smallest input it takes, and its ONNX graph. Recorded in checkpoints and
//! manifests; chosen with the trainer's `--arch`. Adding one = a file in `onnx/` (its graph), a
//! file in the trainer's `arch/` (its tch network), a variant here, and a parity test.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::onnx::proto::ModelProto;
use crate::onnx::{self, ExportError, GraphBuilder, Weights};
use crate::preprocess::{Crop, Fit};

/// A model architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arch {
    /// ResNet-18 per frame (512 features), the recipe's model: 11 M weights, 45 MB as f32.
    #[serde(rename = "resnet18", alias = "seed-resnet18")]
    Resnet18,
    /// Four conv blocks per frame (128 features): 98 k weights, 0.4 MB as f32.
    #[serde(rename = "cnn4")]
    Cnn4,
    /// Three cnn4 towers, one per view of each frame (by default the whole frame and the face at
    /// 1.5× and 2.7× its box), run as grouped convolutions; their 3 × 128 features meet in the
    /// five-frame head, which learns the fusion. 295 k weights, 1.2 MB as f32.
    #[serde(rename = "cnn4x3")]
    Cnn4x3,
    /// [`Arch::Cnn4x3`] with each block's max-pool replaced by a stride-2 convolution: the same
    /// weights, a quarter of the multiply-adds (`onnx::cnn4::Downsample::Stride`).
    #[serde(rename = "cnn4x3s")]
    Cnn4x3Strided,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 4] = [
        Arch::Resnet18,
        Arch::Cnn4,
        Arch::Cnn4x3,
        Arch::Cnn4x3Strided,
    ];

    /// The name in flags, checkpoints and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Cnn4 => "cnn4",
            Arch::Cnn4x3 => "cnn4x3",
            Arch::Cnn4x3Strided => "cnn4x3s",
        }
    }

    /// How many views of each frame the model takes (input channels = 3 × views).
    pub fn views(self) -> usize {
        match self {
            Arch::Resnet18 | Arch::Cnn4 => 1,
            Arch::Cnn4x3 | Arch::Cnn4x3Strided => 3,
        }
    }

    /// The views a multi-view architecture takes unless told otherwise (`None` for one view:
    /// the crop rule is the training's `--crop`).
    pub fn default_views(self) -> Option<Vec<Crop>> {
        match self {
            Arch::Resnet18 | Arch::Cnn4 => None,
            // Letterboxed: on the six cross-session folds its worst fold beat squashing (ACER
            // 33.6 vs 37.8 %, EER 35.1 vs 55.9 %; models/README.md).
            Arch::Cnn4x3 | Arch::Cnn4x3Strided => Some(vec![
                Crop::Whole {
                    fit: Fit::Letterbox,
                },
                Crop::Face { scale: 1.5 },
                Crop::Face { scale: 2.7 },
            ]),
        }
    }

    /// Features per frame out of the encoder (the head's input width; even).
    pub fn features(self) -> usize {
        match self {
            Arch::Resnet18 => onnx::resnet18::FEATURES,
            Arch::Cnn4 | Arch::Cnn4x3 | Arch::Cnn4x3Strided => onnx::cnn4::FEATURES * self.views(),
        }
    }

    /// How a cnn4-family encoder halves its feature maps.
    fn downsample(self) -> onnx::cnn4::Downsample {
        match self {
            Arch::Cnn4x3Strided => onnx::cnn4::Downsample::Stride,
            _ => onnx::cnn4::Downsample::MaxPool,
        }
    }

    /// Smallest input side the encoder takes.
    pub fn min_input_size(self) -> u32 {
        match self {
            Arch::Resnet18 => onnx::resnet18::MIN_SIZE,
            Arch::Cnn4 | Arch::Cnn4x3 | Arch::Cnn4x3Strided => onnx::cnn4::MIN_SIZE,
        }
    }

    /// The ONNX graph for `batch` samples of `size × size` frames from trained `weights`.
    pub fn onnx(
        self,
        weights: &Weights,
        size: u32,
        batch: usize,
    ) -> Result<ModelProto, ExportError> {
        self.onnx_ensemble(&[weights], size, batch)
    }

    /// One ONNX graph averaging the logits of several trained `members` (e.g. seeds) of this
    /// architecture: each member's encoder and head on the same input, their logits summed with
    /// the 1/K folded into each head. One member gives exactly [`Arch::onnx`]'s graph.
    pub fn onnx_ensemble(
        self,
        members: &[&Weights],
        size: u32,
        batch: usize,
    ) -> Result<ModelProto, ExportError> {
        if members.is_empty() || members.len() > onnx::MAX_ENSEMBLE {
            return Err(ExportError::EnsembleSize(members.len()));
        }
        let (mut g, frames) =
            GraphBuilder::liveness_input(size, self.min_input_size(), batch, self.views())?;
        let scale = 1.0 / members.len() as f32;
        let mut sum: Option<onnx::Value> = None;
        for (k, w) in members.iter().enumerate() {
            if members.len() > 1 {
                g.set_prefix(&format!("m{k}."));
            }
            let logit = match self {
                Arch::Resnet18 => onnx::resnet18::logit(&mut g, &frames, w, batch, scale)?,
                Arch::Cnn4 | Arch::Cnn4x3 | Arch::Cnn4x3Strided => onnx::cnn4::logit(
                    &mut g,
                    &frames,
                    w,
                    batch,
                    scale,
                    self.views(),
                    self.downsample(),
                )?,
            };
            sum = Some(match sum {
                None => logit,
                Some(s) => g.add(&s, &logit),
            });
        }
        let logit = sum.ok_or(ExportError::EnsembleSize(0))?;
        g.finish_liveness(&logit, batch, &format!("liveness-{}", self.name()))
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An architecture name that is not one of [`Arch::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {0:?} (known: resnet18, cnn4, cnn4x3, cnn4x3s)")]
pub struct UnknownArch(pub String);

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownArch(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_old_name_still_reads() {
        for a in Arch::ALL {
            assert_eq!(a.name().parse::<Arch>(), Ok(a));
            let json = serde_json::to_string(&a).expect("json");
            assert_eq!(serde_json::from_str::<Arch>(&json).expect("parse"), a);
            assert_eq!(a.features() % 2, 0);
        }
        assert_eq!(
            serde_json::from_str::<Arch>("\"seed-resnet18\"").expect("alias"),
            Arch::Resnet18
        );
        assert!("mobilenet".parse::<Arch>().is_err());
    }
}
