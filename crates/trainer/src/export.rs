//! `export`: a checkpoint → `NAME.onnx` (its architecture's graph in wonnx's dialect, written by
//! `liveness_core::onnx`) + `NAME.json` (the manifest, validated before it is written), both
//! written atomically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use liveness_core::limits::{MAX_MODEL_BYTES, threshold_ok};
use liveness_core::manifest::{DataSpec, FaceSpec, InputSpec, Manifest, ManifestError};
use liveness_core::model_file::manifest_path;
use liveness_core::onnx::{ExportError as GraphError, Weight, Weights};
use prost::Message;
use tch::{Device, Kind};

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::run_dir::{RunDirError, json_bytes, write_atomic};
use crate::shown;

/// Why an export failed; nothing is written then.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `--out` is not a `.onnx` path in an existing folder.
    #[error("--out {}: {problem}", shown(path))]
    Out { path: PathBuf, problem: String },
    /// `--threshold` outside (0, 1).
    #[error("--threshold {0} is not allowed: strictly between 0 and 1")]
    Threshold(f32),
    /// The checkpoint cannot be used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The graph cannot be built (size, batch, weights).
    #[error("cannot export {}: {source}", shown(path))]
    Graph {
        path: PathBuf,
        #[source]
        source: GraphError,
    },
    /// The model would exceed the size limit.
    #[error("the exported model would be {0} bytes; models may be at most {MAX_MODEL_BYTES}")]
    TooLarge(usize),
    /// Ensemble members that were not trained alike.
    #[error(
        "{} cannot join an ensemble with {}: its {what} differs",
        shown(path),
        shown(first)
    )]
    Unlike {
        path: PathBuf,
        first: PathBuf,
        what: &'static str,
    },
    /// `--threshold` differs from the cross-validation report's rule.
    #[error(
        "--threshold {given} differs from the threshold {report} that --cross-validation's rule chose ({rule}); drop --threshold, or add --force-threshold"
    )]
    ThresholdNotReport {
        given: f32,
        report: f32,
        rule: String,
    },
    /// `--cross-validation` is not a report.
    #[error("--cross-validation {}: {message}", shown(path))]
    Report { path: PathBuf, message: String },
    /// The manifest would be invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] RunDirError),
}

/// `export`: write NAME.onnx and its manifest NAME.json from a checkpoint.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Checkpoint file; several (e.g. one per seed of one recipe) export one graph that
    /// averages their logits. They must share architecture, input, crop and normalisation.
    #[arg(long, num_args = 1.., required = true)]
    pub checkpoint: Vec<PathBuf>,
    /// Output model path (NAME.onnx); the manifest is written as NAME.json next to it.
    #[arg(long)]
    pub out: PathBuf,
    /// Input side in pixels (default: the checkpoint's training size).
    #[arg(long)]
    pub size: Option<u32>,
    /// Samples per run (static shape; wonnx limits it at large sizes).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Decision threshold on p_spoof stored in the manifest (default: the --cross-validation
    /// report's, else the checkpoint's). One that differs from the report's is refused unless
    /// --force-threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Accept a --threshold other than the --cross-validation report's (recorded as "given").
    #[arg(long)]
    pub force_threshold: bool,
    /// Name of the training data, recorded in the manifest.
    #[arg(long)]
    pub data_name: String,
    /// Terms of use of the training data, recorded in the manifest (e.g. "research use only").
    #[arg(long)]
    pub data_terms: String,
    /// What the model covers and does not (attack types, cameras, people), recorded in the
    /// manifest so that whoever ships it sees it.
    #[arg(long, default_value = "")]
    pub coverage: String,
    /// A `report` folder's report.json: its cross-validation figures go into the manifest
    /// (needed for a model trained with --train-on-all, whose own validation saw its people).
    #[arg(long)]
    pub cross_validation: Option<PathBuf>,
    /// The command that reproduces the model, recorded in the manifest.
    #[arg(long)]
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
pub fn weights_of(ckpt: &Checkpoint) -> Result<Weights, tch::TchError> {
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

/// The face gate every exported model names: the detector compiled into `liveness-runtime`.
pub fn face_spec() -> FaceSpec {
    FaceSpec {
        detector: liveness_runtime::detector::NAME.to_owned(),
        sha256: liveness_runtime::detector::sha256(),
        min_score: liveness_core::face::MIN_SCORE,
    }
}

/// A `report` folder's report.json: its threshold, the rule that chose it, and the whole.
struct CrossValidationFile {
    threshold: f32,
    threshold_rule: String,
    json: serde_json::Value,
}

fn read_report(path: &Path) -> Result<CrossValidationFile, ExportError> {
    let report_error = |message: String| ExportError::Report {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read(path).map_err(|e| report_error(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| report_error(format!("not a report.json: {e}")))?;
    let threshold = json
        .get("threshold")
        .and_then(serde_json::Value::as_f64)
        .map(|t| t as f32)
        .filter(|t| threshold_ok(*t))
        .ok_or_else(|| report_error("has no threshold strictly between 0 and 1".into()))?;
    let threshold_rule = json
        .get("threshold_rule")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("not stated")
        .to_owned();
    Ok(CrossValidationFile {
        threshold,
        threshold_rule,
        json,
    })
}

/// Runs the export.
pub fn export(opts: &ExportArgs) -> Result<Exported, ExportError> {
    let started = Instant::now();
    let out_error = |problem: String| ExportError::Out {
        path: opts.out.clone(),
        problem,
    };
    if opts.out.extension().is_none_or(|e| e != "onnx") {
        return Err(out_error("the model file must end in .onnx".into()));
    }
    let parent = opts
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(out_error(format!(
            "folder {} does not exist",
            shown(parent)
        )));
    }
    if let Some(t) = opts.threshold
        && !threshold_ok(t)
    {
        return Err(ExportError::Threshold(t));
    }
    let ckpts: Vec<Checkpoint> = opts
        .checkpoint
        .iter()
        .map(|p| checkpoint::load(p))
        .collect::<Result<_, _>>()?;
    let (first_path, ckpt) = (&opts.checkpoint[0], &ckpts[0]);
    let meta = &ckpt.meta;
    for (path, other) in opts.checkpoint.iter().zip(&ckpts).skip(1) {
        let o = &other.meta;
        let unlike = [
            ("architecture", o.arch != meta.arch),
            ("input size", o.input_size != meta.input_size),
            ("crop rule", o.config.crops() != meta.config.crops()),
            ("normalisation", o.normalization != meta.normalization),
            ("classes", o.classes != meta.classes),
        ];
        if let Some((what, _)) = unlike.into_iter().find(|(_, differs)| *differs) {
            return Err(ExportError::Unlike {
                path: path.clone(),
                first: first_path.clone(),
                what,
            });
        }
    }
    let size = opts.size.unwrap_or(meta.input_size);
    let weights: Vec<Weights> = ckpts.iter().map(weights_of).collect::<Result<_, _>>()?;
    let members: Vec<&Weights> = weights.iter().collect();
    let graph = meta
        .arch
        .onnx_ensemble(&members, size, opts.batch)
        .map_err(|source| ExportError::Graph {
            path: first_path.clone(),
            source,
        })?;
    let bytes = graph.encode_to_vec();
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(ExportError::TooLarge(bytes.len()));
    }
    let file_name = opts
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = opts
        .cross_validation
        .as_ref()
        .map(|p| read_report(p))
        .transpose()?;
    let (threshold, threshold_rule) = match (&report, opts.threshold) {
        (Some(r), Some(given)) if given != r.threshold && !opts.force_threshold => {
            return Err(ExportError::ThresholdNotReport {
                given,
                report: r.threshold,
                rule: r.threshold_rule.clone(),
            });
        }
        (Some(r), None) => (r.threshold, r.threshold_rule.clone()),
        (Some(r), Some(given)) if given == r.threshold => (given, r.threshold_rule.clone()),
        (_, Some(given)) => (given, "given".to_owned()),
        (None, None) => (
            meta.config.threshold,
            "the checkpoint's validation threshold".to_owned(),
        ),
    };
    let mut manifest = Manifest::new(
        file_name,
        &bytes,
        meta.arch,
        InputSpec::with_views(opts.batch, size, &meta.config.crops(), meta.normalization),
        threshold,
        face_spec(),
        DataSpec {
            name: opts.data_name.clone(),
            terms: opts.data_terms.clone(),
            classes: meta.classes.clone(),
            coverage: opts.coverage.clone(),
        },
        concat!("liveness-trainer ", env!("CARGO_PKG_VERSION")),
    );
    manifest.threshold_rule = Some(threshold_rule);
    // A model trained on every person has no honest validation of its own, and an ensemble's
    // members were each validated alone.
    if !meta.config.train_on_all && ckpts.len() == 1 {
        manifest.validation = meta.validation.clone();
    }
    manifest.cross_validation = report.map(|r| r.json);
    manifest.training = serde_json::to_value(&meta.config).ok().map(|mut t| {
        if ckpts.len() > 1
            && let Some(o) = t.as_object_mut()
        {
            let seeds: Vec<u64> = ckpts.iter().map(|c| c.meta.config.seed).collect();
            o.insert("ensemble_seeds".to_owned(), serde_json::json!(seeds));
        }
        t
    });
    manifest.training_command = opts.training_command.clone();
    // What the runtimes will refuse is refused here, before anything is written.
    manifest.validate(&shown(&opts.out))?;
    let manifest_path = manifest_path(&opts.out);
    let manifest_bytes = json_bytes("the manifest", &manifest)?;
    write_atomic(&opts.out, &bytes)?;
    write_atomic(&manifest_path, &manifest_bytes)?;
    Ok(Exported {
        manifest,
        manifest_path,
        bytes: bytes.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
