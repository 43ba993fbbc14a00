//! The CPU engine: tract (pure Rust), natively and in wasm; a liveness model run on full batches.

use std::sync::Arc;

use liveness_core::manifest::Manifest;
use liveness_core::model_file::pad_to_batch;
use tract_onnx::prelude::*;

use crate::error::{Error, Result, tract};
use crate::verified::VerifiedModel;

/// A verified model optimised for the CPU.
#[derive(Clone)]
pub struct TractEngine {
    plan: Arc<TypedSimplePlan>,
}

impl TractEngine {
    /// Prepares a verified model.
    pub fn new(model: &VerifiedModel) -> Result<Self> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut model.bytes())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(tract(format!("tract cannot load {}", model.source())))?;
        Ok(TractEngine { plan })
    }

    /// Logits of up to one batch of samples' inputs (`k × sample_len`, `k ≤ batch`); padded to
    /// the batch, the padding's logits dropped.
    pub fn logits(&self, input: Vec<f32>, manifest: &Manifest) -> Result<Vec<f32>> {
        let samples = samples_in(&input, manifest)?;
        let array = tract_ndarray::Array::from_shape_vec(
            manifest.input.shape().to_vec(),
            pad_to_batch(input, manifest),
        )
        .map_err(|e| Error::ModelInput(e.to_string()))?;
        let out = self
            .plan
            .run(tvec!(Tensor::from(array).into()))
            .map_err(tract("running the model"))?;
        // The first output is the logit (the graph writes `logit`, then `p_spoof`).
        let logits = out
            .first()
            .ok_or_else(|| Error::Tract {
                what: "running the model".into(),
                message: "no output".into(),
            })?
            .to_plain_array_view::<f32>()
            .map_err(tract("reading the model's logits"))?;
        Ok(logits.iter().take(samples).copied().collect())
    }
}

/// How many samples `input` holds: 1 to the manifest's batch, whole.
pub(crate) fn samples_in(input: &[f32], manifest: &Manifest) -> Result<usize> {
    let per_sample = manifest.input.sample_len();
    let samples = input.len() / per_sample;
    if input.len() % per_sample != 0 || samples == 0 || samples > manifest.input.batch {
        return Err(Error::ModelInput(format!(
            "{} values is not 1 to {} samples of {per_sample}",
            input.len(),
            manifest.input.batch
        )));
    }
    Ok(samples)
}
