//! The recipe's per-frame encoder: torchvision's ResNet-18 without its final layer (512
//! features), variables named as in a PyTorch state_dict (`layer1.0.conv1.weight`…), so that
//! pretrained torchvision weights load name for name.

use std::collections::BTreeSet;
use std::path::Path;

use tch::{Tensor, nn};

use super::{ArchError, Encoder};

pub(super) struct Resnet18(nn::FuncT<'static>);

impl std::fmt::Debug for Resnet18 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resnet18")
    }
}

/// The encoder under `root`.
pub(super) fn encoder(root: &nn::Path<'_>) -> Resnet18 {
    Resnet18(tch::vision::resnet::resnet18_no_final_layer(root))
}

impl Encoder for Resnet18 {
    fn forward_t(&self, frames: &Tensor, train: bool) -> Tensor {
        frames.apply_t(&self.0, train)
    }
}

/// Loads a torchvision `resnet18` state_dict (safetensors) into the encoder of `vs`. Its `fc.*`
/// and `*.num_batches_tracked` entries are ignored; every encoder tensor must be present with
/// the right shape.
pub(super) fn load_torchvision(vs: &nn::VarStore, path: &Path) -> Result<(), ArchError> {
    let tensors = Tensor::read_safetensors(path).map_err(|source| ArchError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mismatch = |problem: String| ArchError::Mismatch {
        path: path.to_owned(),
        problem,
    };
    let vars = vs.variables();
    let mut missing: BTreeSet<String> = vars
        .keys()
        .filter_map(|k| k.strip_prefix("encoder.").map(str::to_owned))
        .collect();
    tch::no_grad(|| -> Result<(), ArchError> {
        for (name, tensor) in &tensors {
            if name.starts_with("fc.") || name.ends_with("num_batches_tracked") {
                continue;
            }
            let Some(var) = vars.get(&format!("encoder.{name}")) else {
                return Err(mismatch(format!(
                    "tensor {name:?} is not part of a ResNet-18"
                )));
            };
            if var.size() != tensor.size() {
                return Err(mismatch(format!(
                    "tensor {name:?} has shape {:?}, ResNet-18 needs {:?}",
                    tensor.size(),
                    var.size()
                )));
            }
            var.shallow_clone().copy_(&tensor.to_kind(var.kind()));
            missing.remove(name);
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.into_iter().collect();
        return Err(mismatch(format!(
            "lacks ResNet-18 tensors: {}",
            list.join(", ")
        )));
    }
    Ok(())
}
