//! Checkpoints: one safetensors file holding the model's tensors (`model.*`), the optimiser's
//! buffers (`optim.*`) and, in its metadata, what is needed to resume (JSON) plus a SHA-256 over
//! that metadata and every tensor, so that neither can change unnoticed.
//!
//! Writes are atomic ([`crate::run_dir::write_atomic`]): a kill at any moment leaves either the
//! old file or the new one, never a torn one. A file damaged anyway (truncated, a byte changed)
//! fails its header parse or its checksum, and metadata outside what training can use (an input
//! size of 0, a std of 0) fails validation; each is refused with the path named.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use liveness_core::limits::INPUT_SIZE;
use liveness_core::{Arch, AttackClass, Normalization, Report};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::arch::Model;
use crate::config::{ConfigError, TrainConfig};
use crate::run_dir::{RunDirError, write_atomic};
use crate::shown;

/// Format tag in the metadata; bump when the layout changes. v2: the checksum covers the
/// metadata; the architecture and the training data's fingerprint are recorded.
pub const FORMAT: &str = "liveness-checkpoint-v2";

/// Which data a run trained on, to refuse a resume on other data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPrint {
    /// The data folder as given.
    pub path: String,
    /// Number of samples.
    pub samples: usize,
    /// SHA-256 over every sample's class, name and frame file names, in order.
    pub sha256: String,
}

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT`].
    pub format: String,
    /// Model architecture.
    pub arch: Arch,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps done in the epoch after `epoch` (non-zero when interrupted mid-epoch).
    pub step_in_epoch: usize,
    /// Training-loss sum and step count of that part-done epoch.
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
    pub classes: Vec<AttackClass>,
    /// Validation metrics after the last completed epoch, if any.
    pub validation: Option<Report>,
    /// The training data (absent in checkpoints not written by a training run).
    pub data: Option<DataPrint>,
    /// Tool that wrote it.
    pub written_by: String,
}

/// Metadata outside what training and export can use.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The metadata's own configuration is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A field out of range or inconsistent.
    #[error("{field} {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
}

impl Meta {
    /// The metadata of a run of `config` before its first step: the architecture, input size and
    /// normalisation are the configuration's; callers set the position, classes, validation and
    /// data with struct-update syntax.
    pub fn for_config(config: &TrainConfig) -> Meta {
        Meta {
            format: FORMAT.to_owned(),
            arch: config.arch,
            epoch: 0,
            step_in_epoch: 0,
            epoch_loss: (0.0, 0),
            optimizer_step: 0,
            input_size: config.input_size,
            normalization: config.normalization,
            config: config.clone(),
            classes: Vec::new(),
            validation: None,
            data: None,
            written_by: concat!("liveness-trainer ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Checks the metadata as a resume or an export would use it.
    pub fn validate(&self) -> Result<(), MetaError> {
        let field = |field, problem: String| Err(MetaError::Field { field, problem });
        if self.arch != self.config.arch {
            return field(
                "arch",
                format!(
                    "{} differs from the configuration's {}",
                    self.arch, self.config.arch
                ),
            );
        }
        let min = self.arch.min_input_size().max(*INPUT_SIZE.start());
        if !(min..=*INPUT_SIZE.end()).contains(&self.input_size)
            || self.input_size != self.config.input_size
        {
            return field(
                "input_size",
                format!(
                    "is {} (configuration: {}), allowed {min}..={}",
                    self.input_size,
                    self.config.input_size,
                    INPUT_SIZE.end()
                ),
            );
        }
        if let Err(problem) = self.normalization.check() {
            return field("normalization", problem);
        }
        if self.normalization != self.config.normalization {
            return field("normalization", "differs from the configuration's".into());
        }
        self.config.validate()?;
        Ok(())
    }
}

/// What can be wrong reading or writing a checkpoint. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read.
    #[error("cannot read checkpoint {}: {source}", shown(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a safetensors file (or cut short).
    #[error("{} is not a valid checkpoint: {source}", shown(path))]
    Container {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A safetensors file without this trainer's metadata.
    #[error("{} is not a valid checkpoint: no liveness metadata", shown(.0))]
    NoMetadata(PathBuf),
    /// Metadata that is not this trainer's JSON.
    #[error("{} is not a valid checkpoint: metadata: {source}", shown(path))]
    MetadataJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Another layout version.
    #[error(
        "{} is not a valid checkpoint: format {found:?}, this tool reads {FORMAT:?}",
        shown(path)
    )]
    Format { path: PathBuf, found: String },
    /// The checksum does not match the metadata and tensors.
    #[error("{} is not a valid checkpoint: checksum mismatch (the file was damaged, cut short or edited)", shown(.0))]
    Checksum(PathBuf),
    /// Metadata out of range.
    #[error("{} is not a valid checkpoint: {source}", shown(path))]
    Meta {
        path: PathBuf,
        #[source]
        source: MetaError,
    },
    /// A tensor that is not f32.
    #[error(
        "{} is not a valid checkpoint: tensor {name} is {dtype}, expected F32",
        shown(path)
    )]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    /// Tensors that are not those of the checkpoint's architecture.
    #[error("checkpoint {}: {problem}", shown(path))]
    Tensors { path: PathBuf, problem: String },
    /// libtorch failed moving a tensor.
    #[error("checkpoint tensor {name}: {source}")]
    Tch {
        name: String,
        #[source]
        source: tch::TchError,
    },
    /// Encoding the file failed.
    #[error("cannot encode the checkpoint: {0}")]
    Encode(String),
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] RunDirError),
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

fn to_bytes(name: &str, t: &Tensor) -> Result<Vec<u8>, CheckpointError> {
    let flat = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .flatten(0, -1)
        .contiguous();
    let values = Vec::<f32>::try_from(&flat).map_err(|source| CheckpointError::Tch {
        name: name.to_owned(),
        source,
    })?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn shape(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// SHA-256 over the metadata JSON and every tensor's name and bytes, in name order.
fn checksum<'a>(meta_json: &str, items: impl Iterator<Item = (&'a String, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    h.update(b"liveness-meta\0");
    h.update(meta_json.as_bytes());
    for (name, data) in items {
        h.update(name.as_bytes());
        h.update(data);
    }
    liveness_core::model_file::hex(&h.finalize())
}

/// Saves the model and optimiser state with `meta` to `path`, atomically.
pub fn save(
    path: &Path,
    meta: &Meta,
    model: &Model,
    optim: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    Ok(write_atomic(path, &encode(meta, model, optim)?)?)
}

/// The bytes of a checkpoint file (safetensors with metadata and checksum).
pub fn encode(
    meta: &Meta,
    model: &Model,
    optim: &[(String, Tensor)],
) -> Result<Vec<u8>, CheckpointError> {
    let mut named: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, t) in model.vs.variables() {
        let key = format!("model.{name}");
        let bytes = to_bytes(&key, &t)?;
        named.insert(key, (shape(&t), bytes));
    }
    for (name, t) in optim {
        let key = format!("optim.{name}");
        named.insert(key.clone(), (shape(t), to_bytes(&key, t)?));
    }
    let meta_json =
        serde_json::to_string(meta).map_err(|e| CheckpointError::Encode(e.to_string()))?;
    let mut info = HashMap::new();
    info.insert(
        "sha256".to_owned(),
        checksum(
            &meta_json,
            named.iter().map(|(k, (_, d))| (k, d.as_slice())),
        ),
    );
    info.insert("liveness".to_owned(), meta_json);
    let views = named
        .iter()
        .map(|(k, (s, d))| Ok((k.as_str(), TensorView::new(Dtype::F32, s.clone(), d)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| CheckpointError::Encode(e.to_string()))?;
    safetensors::serialize(views, Some(info)).map_err(|e| CheckpointError::Encode(e.to_string()))
}

/// Loads and verifies a checkpoint: container, format, checksum over metadata and tensors, and
/// the metadata's ranges.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_owned(),
        source,
    })?;
    let container = |source| CheckpointError::Container {
        path: path.to_owned(),
        source,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(container)?;
    let info = header.metadata().clone().unwrap_or_default();
    let meta_json = info
        .get("liveness")
        .ok_or_else(|| CheckpointError::NoMetadata(path.to_owned()))?;
    let format = serde_json::from_str::<serde_json::Value>(meta_json)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned));
    if let Some(found) = format.filter(|f| f != FORMAT) {
        return Err(CheckpointError::Format {
            path: path.to_owned(),
            found,
        });
    }
    let st = SafeTensors::deserialize(&bytes).map_err(container)?;
    let mut views: Vec<(String, TensorView<'_>)> = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = checksum(meta_json, views.iter().map(|(k, v)| (k, v.data())));
    if info.get("sha256") != Some(&sum) {
        return Err(CheckpointError::Checksum(path.to_owned()));
    }
    let meta: Meta =
        serde_json::from_str(meta_json).map_err(|source| CheckpointError::MetadataJson {
            path: path.to_owned(),
            source,
        })?;
    meta.validate().map_err(|source| CheckpointError::Meta {
        path: path.to_owned(),
        source,
    })?;
    let (mut model, mut optim) = (BTreeMap::new(), BTreeMap::new());
    for (name, view) in views {
        if view.dtype() != Dtype::F32 {
            return Err(CheckpointError::Dtype {
                path: path.to_owned(),
                name,
                dtype: format!("{:?}", view.dtype()),
            });
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
    /// Copies the weights into `model`, refusing a checkpoint of another architecture or with
    /// tensors that are not the architecture's.
    pub fn apply_to(&self, model: &Model, path: &Path) -> Result<(), CheckpointError> {
        let problem = |problem: String| CheckpointError::Tensors {
            path: path.to_owned(),
            problem,
        };
        if self.meta.arch != model.arch {
            return Err(problem(format!(
                "is a {} model; this one is {}",
                self.meta.arch, model.arch
            )));
        }
        let arch = model.arch;
        let vars = model.vs.variables();
        for (name, var) in &vars {
            let Some(saved) = self.model.get(name) else {
                return Err(problem(format!(
                    "lacks tensor {name}: not a {arch} checkpoint"
                )));
            };
            if saved.size() != var.size() {
                return Err(problem(format!(
                    "tensor {name} has shape {:?}, {arch} needs {:?}",
                    saved.size(),
                    var.size()
                )));
            }
            tch::no_grad(|| var.shallow_clone().copy_(saved));
        }
        if let Some(extra) = self.model.keys().find(|k| !vars.contains_key(*k)) {
            return Err(problem(format!(
                "has tensor {extra}, which {arch} does not: another architecture"
            )));
        }
        Ok(())
    }
}

/// Loads a checkpoint into a fresh model of its architecture on `device`.
pub fn load_model(path: &Path, device: Device) -> Result<(Model, Meta), CheckpointError> {
    let ckpt = load(path)?;
    let model = Model::new(ckpt.meta.arch, device);
    ckpt.apply_to(&model, path)?;
    Ok((model, ckpt.meta))
}
