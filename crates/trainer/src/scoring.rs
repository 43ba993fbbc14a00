//! Running a checkpoint over samples: the scores behind validation, `eval` and `score`.
//!
//! A sample the face gate refuses (with a face crop) gets no score from the model: it is scored
//! `p_spoof = 1` (classified as an attack, as the product would not let it pass) and its line
//! carries the refusal's code in `error`.

use std::path::PathBuf;
use std::sync::Arc;

use liveness_core::face::Refusal;
use liveness_core::{AttackClass, Normalization, ScoredSample, evaluate};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::arch::Model;
use crate::checkpoint::{CheckpointError, load_model};
use crate::config::Common;
use crate::dataset::{DataError, Sample, SubjectRule, scan};
use crate::loader::{FrameStore, LoaderError, join, stream, worker_pool};
use crate::shown;

/// What stops scoring.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The checkpoint cannot be used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The data folder cannot be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The loader failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
    /// Fewer scores than samples (a bug, reported rather than hidden).
    #[error("scored {got} of {expected} samples")]
    Incomplete { expected: usize, got: usize },
    /// A flag out of range.
    #[error("{flag} {value} is not allowed: {allowed}")]
    Flag {
        flag: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// The face detector could not load.
    #[error("face detector: {0}")]
    Detector(String),
}

/// One line of `score` / `score-onnx` output and of a run's `val_scores.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    /// The sample's folder ([`shown`]: escaped when not UTF-8).
    pub path: String,
    /// Its class.
    pub class: AttackClass,
    /// `p_spoof` (1 for a refused sample).
    pub spoof: f32,
    /// The model's raw output (absent for a refused sample, and in lines written before it was
    /// recorded): comparable where `spoof` has saturated at 0 or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit: Option<f32>,
    /// Why the sample got no verdict (`no-face`, `multiple-faces`), if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ScoreLine {
    /// The line of `sample` whose model output was `logit`.
    pub fn new(sample: &Sample, logit: f32) -> Self {
        ScoreLine {
            path: shown(&sample.path),
            class: sample.class,
            spoof: liveness_runtime::check::sigmoid(logit),
            logit: Some(logit),
            error: None,
        }
    }

    /// The line of a sample the face gate refused: scored as an attack, with the refusal's code.
    pub fn refused(sample: &Sample, refusal: &Refusal) -> Self {
        ScoreLine {
            path: shown(&sample.path),
            class: sample.class,
            spoof: 1.0,
            logit: None,
            error: Some(refusal.code().to_owned()),
        }
    }

    /// The line as a metric input.
    pub fn scored(&self) -> ScoredSample {
        ScoredSample {
            class: self.class,
            spoof: self.spoof,
        }
    }
}

/// Scores of a set of samples, in the order asked for.
pub struct Scores {
    /// Store index of each sample.
    pub indices: Vec<usize>,
    /// Raw logits (`+∞` for a refused sample); their lines carry `sigmoid(logit)`.
    pub logits: Vec<f32>,
    /// The face gate's refusal of each sample, if any.
    pub refusals: Vec<Option<Refusal>>,
}

impl Scores {
    /// Pairs each score with its sample's class, for the metrics.
    pub fn scored(&self, store: &FrameStore) -> Vec<ScoredSample> {
        self.lines(store).iter().map(ScoreLine::scored).collect()
    }

    /// One [`ScoreLine`] per sample.
    pub fn lines(&self, store: &FrameStore) -> Vec<ScoreLine> {
        self.indices
            .iter()
            .zip(&self.logits)
            .zip(&self.refusals)
            .map(|((&i, &logit), r)| match r {
                Some(r) => ScoreLine::refused(&store.samples()[i], r),
                None => ScoreLine::new(&store.samples()[i], logit),
            })
            .collect()
    }

    /// Mean binary cross-entropy of the model's logits against the samples' labels (refused
    /// samples left out).
    pub fn loss(&self, store: &FrameStore) -> f64 {
        let (logits, labels): (Vec<f32>, Vec<f32>) = self
            .indices
            .iter()
            .zip(&self.logits)
            .zip(&self.refusals)
            .filter(|(_, r)| r.is_none())
            .map(|((&i, &l), _)| (l, store.samples()[i].class.label()))
            .unzip();
        if logits.is_empty() {
            return f64::NAN;
        }
        let loss = Tensor::from_slice(&logits).binary_cross_entropy_with_logits::<Tensor>(
            &Tensor::from_slice(&labels),
            None,
            None,
            tch::Reduction::Mean,
        );
        f64::try_from(loss).unwrap_or(f64::NAN)
    }
}

/// Runs `model` in eval mode over `indices` of `store`, `batch_size` samples at a time; samples
/// the face gate refuses are not run (see the module's docs).
pub fn score(
    model: &Model,
    store: &Arc<FrameStore>,
    indices: &[usize],
    batch_size: usize,
    norm: &Normalization,
    pool: Arc<rayon::ThreadPool>,
    device: Device,
) -> Result<Scores, ScoreError> {
    let mut refusals = std::collections::BTreeMap::new();
    for &i in indices {
        if let Some(r) = store.refusal(i)? {
            refusals.insert(i, r);
        }
    }
    let run: Vec<usize> = indices
        .iter()
        .copied()
        .filter(|i| !refusals.contains_key(i))
        .collect();
    let (batches, producer) = stream(store.clone(), run.clone(), batch_size, None, 2, pool);
    let mut logits = std::collections::BTreeMap::new();
    for batch in batches {
        let batch = batch?;
        let input = crate::input::to_input(
            &batch.pixels,
            batch.len(),
            store.size(),
            store.views(),
            norm,
            device,
        );
        let out = tch::no_grad(|| model.forward_t(&input, false))
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1);
        for (i, l) in batch.indices.iter().zip(Vec::<f32>::try_from(&out)?) {
            logits.insert(*i, l);
        }
    }
    join(producer)?;
    if logits.len() != run.len() {
        return Err(ScoreError::Incomplete {
            expected: run.len(),
            got: logits.len(),
        });
    }
    let mut out = Scores {
        indices: Vec::with_capacity(indices.len()),
        logits: Vec::with_capacity(indices.len()),
        refusals: Vec::with_capacity(indices.len()),
    };
    for &i in indices {
        let logit = logits.get(&i).copied().unwrap_or(f32::INFINITY);
        out.indices.push(i);
        out.logits.push(logit);
        out.refusals.push(refusals.get(&i).cloned());
    }
    Ok(out)
}

/// `eval` and `score`: a checkpoint on a data folder.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Checkpoint file.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Decision threshold (default: the checkpoint's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Print the report as one JSON object (eval only).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

/// What `eval` / `score` print.
pub enum Evaluated {
    /// `score`: one line per sample.
    Lines(Vec<ScoreLine>),
    /// `eval`: the metrics, the mean loss and the folder.
    Report {
        report: Box<liveness_core::Report>,
        loss: f64,
    },
}

/// Runs a checkpoint over a data folder: every sample's line (`as_lines`), or the metrics.
pub fn evaluate_folder(a: &EvalArgs, as_lines: bool) -> Result<Evaluated, ScoreError> {
    if !(1..=4096).contains(&a.batch_size) {
        return Err(ScoreError::Flag {
            flag: "--batch-size",
            value: a.batch_size.to_string(),
            allowed: "1 to 4096",
        });
    }
    if let Some(t) = a.threshold
        && !liveness_core::limits::threshold_ok(t)
    {
        return Err(ScoreError::Flag {
            flag: "--threshold",
            value: t.to_string(),
            allowed: "strictly between 0 and 1",
        });
    }
    let device = a.common.device;
    let (model, meta) = load_model(&a.checkpoint, device)?;
    let samples = scan(&a.data, &SubjectRule::default())?;
    let pool = worker_pool(a.common.workers)?;
    let crops = meta.config.crops();
    let detector = crops
        .iter()
        .any(liveness_core::Crop::needs_face)
        .then(|| liveness_runtime::FaceDetector::new(liveness_core::face::MIN_SCORE))
        .transpose()
        .map_err(|e| ScoreError::Detector(e.to_string()))?;
    // One pass over the folder: a cache would only hold every frame in RAM for nothing.
    let store = Arc::new(FrameStore::with_crops(
        samples,
        meta.input_size,
        false,
        crops,
        detector,
    ));
    let all: Vec<usize> = (0..store.samples().len()).collect();
    let scores = score(
        &model,
        &store,
        &all,
        a.batch_size,
        &meta.normalization,
        pool,
        device,
    )?;
    Ok(if as_lines {
        Evaluated::Lines(scores.lines(&store))
    } else {
        Evaluated::Report {
            report: Box::new(evaluate(
                &scores.scored(&store),
                a.threshold.unwrap_or(meta.config.threshold),
            )),
            loss: scores.loss(&store),
        }
    })
}
