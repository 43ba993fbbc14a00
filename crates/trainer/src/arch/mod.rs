//! The trainer's side of the architecture seam: each architecture's per-frame encoder in tch
//! (one file each), the five-frame head they share, and [`Model`], which every part of the
//! trainer uses without knowing which architecture it holds. The names, limits and ONNX graphs
//! live in `liveness_core::arch` / `liveness_core::onnx`.

mod cnn4;
mod resnet18;

use std::path::Path;

use liveness_core::onnx::cnn4::Downsample;
use liveness_core::{Arch, FRAMES};
use tch::{Device, Tensor, nn};

/// What can go wrong building or initialising a model.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The weights file cannot be read.
    #[error("cannot read weights file {}: {source}", crate::shown(path))]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: tch::TchError,
    },
    /// A weights file that does not fit the encoder.
    #[error("weights file {}: {problem}", crate::shown(path))]
    Mismatch {
        path: std::path::PathBuf,
        problem: String,
    },
    /// `--init-weights` for an architecture that has no pretrained layout.
    #[error("--init-weights takes torchvision ResNet-18 weights; --arch {0} has no such encoder")]
    NoPretrained(Arch),
}

/// A per-frame encoder: `[N·5, 3·views, S, S]` → `[N·5, F]` features.
pub trait Encoder: std::fmt::Debug {
    /// Runs the encoder (BatchNorm in training mode when `train`).
    fn forward_t(&self, frames: &Tensor, train: bool) -> Tensor;
}

/// The five-frame head every architecture shares: `[N, 5, F]` → `Conv1d(5→1, k3, s2, p1)` →
/// `[N, F/2]` → `Linear(F/2→1)` → one logit per sample (variables `conv1d.*`, `fc.*`).
#[derive(Debug)]
struct Head {
    conv1d: nn::Conv1D,
    fc: nn::Linear,
    features: i64,
}

impl Head {
    fn new(root: &nn::Path<'_>, features: i64) -> Self {
        let conv_cfg = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        Head {
            conv1d: nn::conv1d(root / "conv1d", FRAMES as i64, 1, 3, conv_cfg),
            fc: nn::linear(root / "fc", features / 2, 1, Default::default()),
            features,
        }
    }

    fn forward(&self, features: &Tensor, n: i64) -> Tensor {
        features
            .reshape([n, FRAMES as i64, self.features])
            .apply(&self.conv1d)
            .reshape([n, self.features / 2])
            .apply(&self.fc)
    }
}

/// A model of any architecture, its variables living in `vs`.
pub struct Model {
    /// All weights and BatchNorm statistics.
    pub vs: nn::VarStore,
    /// Which architecture.
    pub arch: Arch,
    encoder: Box<dyn Encoder>,
    head: Head,
}

impl Model {
    /// A randomly initialised model on `device` (seed it with `tch::manual_seed` first).
    pub fn new(arch: Arch, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder: Box<dyn Encoder> = match arch {
            Arch::Resnet18 => Box::new(resnet18::encoder(&(&root / "encoder"))),
            Arch::Cnn4 | Arch::Cnn4x3 => Box::new(cnn4::encoder(
                &(&root / "encoder"),
                arch.views() as i64,
                Downsample::MaxPool,
            )),
            Arch::Cnn4x3Strided => Box::new(cnn4::encoder(
                &(&root / "encoder"),
                arch.views() as i64,
                Downsample::Stride,
            )),
        };
        let head = Head::new(&root, arch.features() as i64);
        Model {
            vs,
            arch,
            encoder,
            head,
        }
    }

    /// `[N, 5, 3·views, S, S]` normalised frames → `[N, 1]` logits. Frames are folded into the batch
    /// (`[N·5, 3, S, S]`) so the encoder runs once per batch.
    pub fn forward_t(&self, frames: &Tensor, train: bool) -> Tensor {
        let size = frames.size();
        let (n, f) = (size[0], size[1]);
        let features = self
            .encoder
            .forward_t(&frames.reshape([n * f, size[2], size[3], size[4]]), train);
        self.head.forward(&features, n)
    }

    /// Initialises the encoder from pretrained weights (ResNet-18: a torchvision `resnet18`
    /// state_dict as safetensors).
    pub fn init_encoder(&mut self, path: &Path) -> Result<(), ArchError> {
        match self.arch {
            Arch::Resnet18 => resnet18::load_torchvision(&self.vs, path),
            other => Err(ArchError::NoPretrained(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn every_architecture_maps_five_frames_to_one_logit() {
        for arch in Arch::ALL {
            tch::manual_seed(0);
            let m = Model::new(arch, Device::Cpu);
            let c = 3 * arch.views() as i64;
            let x = Tensor::randn([2, 5, c, 32, 32], (Kind::Float, Device::Cpu));
            assert_eq!(m.forward_t(&x, false).size(), vec![2, 1], "{arch}");
            let vars = m.vs.variables();
            assert_eq!(vars["conv1d.weight"].size(), vec![1, 5, 3]);
            assert_eq!(
                vars["fc.weight"].size(),
                vec![1, arch.features() as i64 / 2]
            );
        }
    }
}
