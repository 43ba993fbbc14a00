//! The recipe's model: a ResNet-18 encoder per frame (512 features) → `[N, 5, 512]` →
//! `Conv1d(5→1, k3, s2, p1)` → `[N, 1, 256]` → `Linear(256→1)` → one logit per sample.
//! Frames are folded into the batch (`[N·5, 3, S, S]`) so the encoder runs once per batch.
//!
//! Variable names follow the recipe's PyTorch module (`encoder.*` in torchvision's ResNet layout,
//! `conv1d.*`, `fc.*`), so a PyTorch state_dict maps onto it name for name.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use liveness_core::{FRAMES, Normalization};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Name of this architecture in checkpoints; a checkpoint of any other is refused.
pub const ARCH: &str = "seed-resnet18";

/// Features per frame out of the encoder.
pub const FEATURES: i64 = 512;

/// Smallest input side the encoder's five stride-2 stages handle sensibly.
pub const MIN_INPUT_SIZE: u32 = 16;

/// The model, its variables living in `vs`.
pub struct SpoofModel {
    /// All weights and BatchNorm statistics.
    pub vs: nn::VarStore,
    encoder: nn::FuncT<'static>,
    conv1d: nn::Conv1D,
    fc: nn::Linear,
}

impl SpoofModel {
    /// A randomly initialised model on `device` (seed it with `tch::manual_seed` first).
    pub fn new(device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = tch::vision::resnet::resnet18_no_final_layer(&(&root / "encoder"));
        let conv_cfg = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let conv1d = nn::conv1d(&root / "conv1d", FRAMES as i64, 1, 3, conv_cfg);
        let fc = nn::linear(&root / "fc", FEATURES / 2, 1, Default::default());
        SpoofModel {
            vs,
            encoder,
            conv1d,
            fc,
        }
    }

    /// `[N, 5, 3, S, S]` normalised frames → `[N, 1]` logits.
    pub fn forward_t(&self, frames: &Tensor, train: bool) -> Tensor {
        let size = frames.size();
        let (n, f) = (size[0], size[1]);
        frames
            .reshape([n * f, size[2], size[3], size[4]])
            .apply_t(&self.encoder, train)
            .reshape([n, f, FEATURES])
            .apply(&self.conv1d)
            .reshape([n, FEATURES / 2])
            .apply(&self.fc)
    }

    /// Loads a torchvision `resnet18` state_dict (safetensors) into the encoder. Its `fc.*` and
    /// `*.num_batches_tracked` entries are ignored; every encoder tensor must be present with
    /// the right shape.
    pub fn load_torchvision_encoder(&mut self, path: &Path) -> Result<()> {
        let tensors = Tensor::read_safetensors(path)
            .with_context(|| format!("cannot read weights file {}", path.display()))?;
        let vars = self.vs.variables();
        let mut missing: BTreeSet<String> = vars
            .keys()
            .filter_map(|k| k.strip_prefix("encoder.").map(str::to_owned))
            .collect();
        tch::no_grad(|| -> Result<()> {
            for (name, tensor) in &tensors {
                if name.starts_with("fc.") || name.ends_with("num_batches_tracked") {
                    continue;
                }
                let Some(var) = vars.get(&format!("encoder.{name}")) else {
                    bail!(
                        "weights file {}: tensor {name:?} is not part of a ResNet-18",
                        path.display()
                    );
                };
                if var.size() != tensor.size() {
                    bail!(
                        "weights file {}: tensor {name:?} has shape {:?}, ResNet-18 needs {:?}",
                        path.display(),
                        tensor.size(),
                        var.size()
                    );
                }
                var.shallow_clone().copy_(&tensor.to_kind(var.kind()));
                missing.remove(name);
            }
            Ok(())
        })?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.into_iter().collect();
            bail!(
                "weights file {} lacks ResNet-18 tensors: {}",
                path.display(),
                list.join(", ")
            );
        }
        Ok(())
    }
}

/// `[N, 5, S, S, 3]` `u8` pixels → `[N, 5, 3, S, S]` `f32` in `[0, 1]` on `device`.
pub fn to_unit(pixels: &[u8], n: usize, size: u32, device: Device) -> Tensor {
    let s = i64::from(size);
    Tensor::from_slice(pixels)
        .to_device(device)
        .view([n as i64, FRAMES as i64, s, s, 3])
        .permute([0, 1, 4, 2, 3])
        .to_kind(Kind::Float)
        .divide_scalar(255.0)
}

/// `(x - mean) / std` per channel of `[N, 5, 3, S, S]`.
pub fn normalize(unit: &Tensor, norm: &Normalization) -> Tensor {
    let device = unit.device();
    let mean = Tensor::from_slice(&norm.mean)
        .to_device(device)
        .view([1, 1, 3, 1, 1]);
    let std = Tensor::from_slice(&norm.std)
        .to_device(device)
        .view([1, 1, 3, 1, 1]);
    unit.g_sub(&mean).divide(&std)
}

/// `[N, 5, S, S, 3]` `u8` pixels → `[N, 5, 3, S, S]` normalised `f32` on `device`: the same
/// arithmetic as `liveness_core::normalize_into`, done on the device.
pub fn to_input(
    pixels: &[u8],
    n: usize,
    size: u32,
    norm: &Normalization,
    device: Device,
) -> Tensor {
    normalize(&to_unit(pixels, n, size, device), norm)
}

/// `--device auto|cpu|cuda|cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let device = match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => bail!("--device {other:?}: expected auto, cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count();
        if n as i64 >= count {
            bail!(
                "--device {spec}: CUDA device {n} is not available ({count} CUDA device(s) found)"
            );
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::normalize_into;

    #[test]
    fn device_normalisation_matches_the_shared_core() -> Result<()> {
        let size = 6u32;
        let pixels: Vec<u8> = (0..FRAMES * 36 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let t = to_input(&pixels, 1, size, &Normalization::IMAGENET, Device::Cpu);
        assert_eq!(t.size(), vec![1, 5, 3, 6, 6]);
        let got: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let mut want = vec![0.0f32; pixels.len()];
        for (src, dst) in pixels.chunks(36 * 3).zip(want.chunks_mut(36 * 3)) {
            normalize_into(src, &Normalization::IMAGENET, dst);
        }
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-5, "max diff {max}");
        Ok(())
    }

    #[test]
    fn shapes_follow_the_recipe() {
        tch::manual_seed(0);
        let m = SpoofModel::new(Device::Cpu);
        let x = Tensor::randn([2, 5, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(m.forward_t(&x, false).size(), vec![2, 1]);
        let vars = m.vs.variables();
        assert_eq!(vars["conv1d.weight"].size(), vec![1, 5, 3]);
        assert_eq!(vars["fc.weight"].size(), vec![1, 256]);
        assert_eq!(vars["encoder.layer4.1.bn2.running_var"].size(), vec![512]);
        assert!(vars.contains_key("encoder.layer2.0.downsample.0.weight"));
    }

    #[test]
    fn device_flag_is_checked() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:99").is_err());
    }
}
