//! `export`: a checkpoint → `NAME.onnx` (the seed model in wonnx's dialect, written by
//! `liveness_core::onnx`) + `NAME.json` (the manifest), both written atomically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use liveness_core::manifest::{DataSpec, InputSpec, Manifest};
use liveness_core::onnx::{Weight, Weights, seed};
use prost::Message;
use tch::{Device, Kind};

use crate::checkpoint::{self, Checkpoint, write_atomic};
use crate::model::ARCH;

/// What to export.
pub struct ExportOptions {
    /// Checkpoint file.
    pub checkpoint: PathBuf,
    /// Output `.onnx` path; the manifest goes next to it as `.json`.
    pub out: PathBuf,
    /// Input side (default: the checkpoint's).
    pub size: Option<u32>,
    /// Samples per run.
    pub batch: usize,
    /// Decision threshold (default: the checkpoint's).
    pub threshold: Option<f32>,
    /// Training data's name.
    pub data_name: String,
    /// Training data's terms of use.
    pub data_terms: String,
    /// `report.json` of the folds that measured this recipe.
    pub cross_validation: Option<PathBuf>,
    /// The command that reproduces the model, for the manifest.
    pub training_command: Option<String>,
}

/// What was written.
pub struct Exported {
    /// The manifest written.
    pub manifest: Manifest,
    /// Path of the manifest.
    pub manifest_path: PathBuf,
    /// ONNX file size in bytes.
    pub bytes: usize,
    /// Seconds spent building and writing.
    pub seconds: f64,
}

/// The model tensors of a checkpoint as plain `f32` weights.
pub fn weights_of(ckpt: &Checkpoint) -> Result<Weights> {
    ckpt.model
        .iter()
        .map(|(name, t)| {
            let values =
                Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?;
            let shape = t.size().iter().map(|&d| d as usize).collect();
            Ok((name.clone(), Weight { shape, values }))
        })
        .collect()
}

/// The manifest path of a model path: `x/NAME.onnx` → `x/NAME.json`.
pub fn manifest_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// Runs the export.
pub fn export(opts: &ExportOptions) -> Result<Exported> {
    let started = Instant::now();
    if opts.out.extension().is_none_or(|e| e != "onnx") {
        bail!(
            "--out {}: the model file must end in .onnx",
            opts.out.display()
        );
    }
    let parent = opts
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "--out {}: folder {} does not exist",
            opts.out.display(),
            parent.display()
        );
    }
    let ckpt = checkpoint::load(&opts.checkpoint)?;
    if ckpt.meta.arch != ARCH {
        bail!(
            "checkpoint {} is a {:?} model; export writes {ARCH:?}",
            opts.checkpoint.display(),
            ckpt.meta.arch
        );
    }
    let size = opts.size.unwrap_or(ckpt.meta.input_size);
    let graph = seed::export(&weights_of(&ckpt)?, size, opts.batch)
        .with_context(|| format!("cannot export {}", opts.checkpoint.display()))?;
    let bytes = graph.encode_to_vec();
    let file_name = opts
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut manifest = Manifest::new(
        file_name,
        &bytes,
        ARCH,
        InputSpec::new(seed::INPUT, opts.batch, size, ckpt.meta.normalization),
        opts.threshold.unwrap_or(ckpt.meta.config.threshold),
        DataSpec {
            name: opts.data_name.clone(),
            terms: opts.data_terms.clone(),
            classes: ckpt.meta.classes.clone(),
        },
        concat!("liveness-trainer ", env!("CARGO_PKG_VERSION")),
    );
    // A model trained on every person has no honest validation of its own.
    if !ckpt.meta.config.train_on_all {
        manifest.validation = ckpt.meta.validation.clone();
    }
    if let Some(p) = &opts.cross_validation {
        manifest.cross_validation = Some(
            serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )
            .with_context(|| format!("{} is not a report.json", p.display()))?,
        );
    }
    manifest.training = Some(serde_json::to_value(&ckpt.meta.config)?);
    manifest.training_command = opts.training_command.clone();
    write_atomic(&opts.out, &bytes)?;
    let manifest_path = manifest_path(&opts.out);
    write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(Exported {
        manifest,
        manifest_path,
        bytes: bytes.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
