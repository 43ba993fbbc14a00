//! Checkpoints: one safetensors file holding the model's tensors (`model.*`), the optimiser's
//! buffers (`optim.*`) and, in its metadata, what is needed to resume (JSON) plus a SHA-256 of
//! the tensor data.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the folder): a kill at any moment leaves
//! either the old file or the new one, never a torn one. A file damaged anyway (truncated, a byte
//! changed) fails its header parse or its checksum and is refused with the path named.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use liveness_core::{AttackClass, Normalization, Report};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::model::{ARCH, SpoofModel};
use crate::train::TrainConfig;

/// Format tag in the metadata; bump when the layout changes.
pub const FORMAT: &str = "liveness-checkpoint-v1";

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT`].
    pub format: String,
    /// Model architecture ([`crate::model::ARCH`]).
    pub arch: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps done in the epoch after `epoch` (non-zero when interrupted mid-epoch).
    pub step_in_epoch: usize,
    /// Training-loss sum and step count of that part-done epoch.
    #[serde(default)]
    pub epoch_loss: (f64, usize),
    /// Optimiser updates so far.
    pub optimizer_step: i64,
    /// Input side in pixels.
    pub input_size: u32,
    /// Pixel normalisation.
    pub normalization: Normalization,
    /// The run's training configuration.
    pub config: TrainConfig,
    /// Classes present in the training data.
    #[serde(default)]
    pub classes: Vec<AttackClass>,
    /// Validation metrics after the last completed epoch, if any.
    pub validation: Option<Report>,
    /// Tool that wrote it.
    pub written_by: String,
}

/// A loaded checkpoint (tensors on the CPU).
#[derive(Debug)]
pub struct Checkpoint {
    /// Its metadata.
    pub meta: Meta,
    /// Model tensors by variable name.
    pub model: BTreeMap<String, Tensor>,
    /// Optimiser buffers by name.
    pub optim: BTreeMap<String, Tensor>,
}

fn to_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let flat = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .flatten(0, -1)
        .contiguous();
    let values = Vec::<f32>::try_from(&flat).context("tensor to host")?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn shape(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

fn checksum<'a>(items: impl Iterator<Item = (&'a String, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (name, data) in items {
        h.update(name.as_bytes());
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself must reach the disk.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Saves the model and optimiser state with `meta` to `path`, atomically.
pub fn save(
    path: &Path,
    meta: &Meta,
    model: &SpoofModel,
    optim: &[(String, Tensor)],
) -> Result<()> {
    write_atomic(path, &encode(meta, model, optim)?)
}

/// The bytes of a checkpoint file (safetensors with metadata and checksum).
pub fn encode(meta: &Meta, model: &SpoofModel, optim: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut named: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, t) in model.vs.variables() {
        named.insert(format!("model.{name}"), (shape(&t), to_bytes(&t)?));
    }
    for (name, t) in optim {
        named.insert(format!("optim.{name}"), (shape(t), to_bytes(t)?));
    }
    let mut info = HashMap::new();
    info.insert("liveness".to_owned(), serde_json::to_string(meta)?);
    info.insert(
        "sha256".to_owned(),
        checksum(named.iter().map(|(k, (_, d))| (k, d.as_slice()))),
    );
    let views = named
        .iter()
        .map(|(k, (s, d))| Ok((k.as_str(), TensorView::new(Dtype::F32, s.clone(), d)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, Some(info))?)
}

/// Loads and verifies a checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let bad = |why: String| anyhow::anyhow!("{} is not a valid checkpoint: {why}", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let info = header.metadata().clone().unwrap_or_default();
    let meta_json = info
        .get("liveness")
        .ok_or_else(|| bad("no liveness metadata".into()))?;
    let meta: Meta = serde_json::from_str(meta_json).map_err(|e| bad(format!("metadata: {e}")))?;
    if meta.format != FORMAT {
        return Err(bad(format!(
            "format {:?}, this tool reads {FORMAT:?}",
            meta.format
        )));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut views: Vec<(String, TensorView<'_>)> = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = checksum(views.iter().map(|(k, v)| (k, v.data())));
    if info.get("sha256") != Some(&sum) {
        return Err(bad(
            "checksum mismatch (the file was damaged or cut short)".into()
        ));
    }
    let (mut model, mut optim) = (BTreeMap::new(), BTreeMap::new());
    for (name, view) in views {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}, expected F32",
                view.dtype()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let dims: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::from_slice(&values).reshape(dims);
        if let Some(n) = name.strip_prefix("model.") {
            model.insert(n.to_owned(), t);
        } else if let Some(n) = name.strip_prefix("optim.") {
            optim.insert(n.to_owned(), t);
        }
    }
    Ok(Checkpoint { meta, model, optim })
}

impl Checkpoint {
    /// Copies the weights into `model`, refusing a checkpoint of another architecture.
    pub fn apply_to(&self, model: &SpoofModel, path: &Path) -> Result<()> {
        if self.meta.arch != ARCH {
            bail!(
                "checkpoint {} is a {:?} model; this trainer builds {ARCH:?}",
                path.display(),
                self.meta.arch
            );
        }
        let vars = model.vs.variables();
        for (name, var) in &vars {
            let Some(saved) = self.model.get(name) else {
                bail!(
                    "checkpoint {} lacks tensor {name}: not a {ARCH} checkpoint",
                    path.display()
                );
            };
            if saved.size() != var.size() {
                bail!(
                    "checkpoint {}: tensor {name} has shape {:?}, {ARCH} needs {:?}",
                    path.display(),
                    saved.size(),
                    var.size()
                );
            }
            tch::no_grad(|| var.shallow_clone().copy_(saved));
        }
        if let Some(extra) = self.model.keys().find(|k| !vars.contains_key(*k)) {
            bail!(
                "checkpoint {} has tensor {extra}, which {ARCH} does not: another architecture",
                path.display()
            );
        }
        Ok(())
    }
}

/// Loads a checkpoint into a fresh model on `device`.
pub fn load_model(path: &Path, device: Device) -> Result<(SpoofModel, Meta)> {
    let ckpt = load(path)?;
    let model = SpoofModel::new(device);
    ckpt.apply_to(&model, path)?;
    Ok((model, ckpt.meta))
}
