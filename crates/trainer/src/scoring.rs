//! Running a model over samples: the scores behind validation, `eval` and `score`.

use std::sync::Arc;

use anyhow::Result;
use liveness_core::{AttackClass, Normalization, ScoredSample};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::dataset::Sample;
use crate::loader::{FrameStore, stream};
use crate::model::{SpoofModel, to_input};

/// One line of `score` / `score-onnx` output and of a run's `val_scores.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    /// The sample's folder.
    pub path: String,
    /// Its class.
    pub class: AttackClass,
    /// `p_spoof`.
    pub spoof: f32,
}

impl ScoreLine {
    /// The line of `sample` scored `spoof`.
    pub fn new(sample: &Sample, spoof: f32) -> Self {
        ScoreLine {
            path: sample.path.display().to_string(),
            class: sample.class,
            spoof,
        }
    }
}

/// Scores of a set of samples, in the order asked for.
pub struct Scores {
    /// Store index of each sample.
    pub indices: Vec<usize>,
    /// Raw logits.
    pub logits: Vec<f32>,
    /// `sigmoid(logit)`: probability of an attack.
    pub spoof: Vec<f32>,
}

impl Scores {
    /// Pairs each score with its sample's class, for the metrics.
    pub fn scored(&self, store: &FrameStore) -> Vec<ScoredSample> {
        self.indices
            .iter()
            .zip(&self.spoof)
            .map(|(&i, &spoof)| ScoredSample {
                class: store.samples()[i].class,
                spoof,
            })
            .collect()
    }

    /// One [`ScoreLine`] per sample.
    pub fn lines(&self, store: &FrameStore) -> Vec<ScoreLine> {
        self.indices
            .iter()
            .zip(&self.spoof)
            .map(|(&i, &p)| ScoreLine::new(&store.samples()[i], p))
            .collect()
    }

    /// Mean binary cross-entropy of the logits against the samples' labels.
    pub fn loss(&self, store: &FrameStore) -> f64 {
        if self.logits.is_empty() {
            return f64::NAN;
        }
        let logits = Tensor::from_slice(&self.logits);
        let labels: Vec<f32> = self
            .indices
            .iter()
            .map(|&i| store.samples()[i].class.label())
            .collect();
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
            &Tensor::from_slice(&labels),
            None,
            None,
            tch::Reduction::Mean,
        );
        f64::try_from(loss).unwrap_or(f64::NAN)
    }
}

/// Runs `model` in eval mode over `indices` of `store`, `batch_size` samples at a time.
pub fn score(
    model: &SpoofModel,
    store: &Arc<FrameStore>,
    indices: &[usize],
    batch_size: usize,
    norm: &Normalization,
    pool: Arc<rayon::ThreadPool>,
    device: Device,
) -> Result<Scores> {
    let (batches, producer) = stream(store.clone(), indices.to_vec(), batch_size, None, 2, pool);
    let mut out = Scores {
        indices: Vec::new(),
        logits: Vec::new(),
        spoof: Vec::new(),
    };
    for batch in batches {
        let batch = batch?;
        let input = to_input(&batch.pixels, batch.len(), store.size(), norm, device);
        let logits = tch::no_grad(|| model.forward_t(&input, false))
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1);
        out.spoof.extend(Vec::<f32>::try_from(logits.sigmoid())?);
        out.logits.extend(Vec::<f32>::try_from(&logits)?);
        out.indices.extend(batch.indices);
    }
    let _ = producer.join();
    Ok(out)
}
