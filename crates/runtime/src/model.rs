//! A liveness model on tract: loaded from bytes that match their manifest, run on full batches.

use std::sync::Arc;

use liveness_core::limits::MAX_MODEL_BYTES;
use liveness_core::manifest::Manifest;
use liveness_core::model::pad_to_batch;
use tract_onnx::prelude::*;

use crate::error::{Error, Result, tract};

/// An exported liveness model, verified and optimised for the CPU.
#[derive(Clone)]
pub struct TractModel {
    plan: Arc<TypedSimplePlan>,
    manifest: Arc<Manifest>,
}

impl TractModel {
    /// Checks `bytes` (the model named `source` in errors) against the size limit and the
    /// manifest's SHA-256, then prepares it.
    pub fn load(bytes: &[u8], manifest: Manifest, source: &str) -> Result<Self> {
        check_size(bytes, source)?;
        manifest.verify(bytes)?;
        Self::load_verified(bytes, manifest, source)
    }

    /// Like [`TractModel::load`] for bytes whose SHA-256 the caller has already checked against
    /// the manifest (the browser hashes with WebCrypto, which is much faster than hashing in wasm).
    pub fn load_verified(bytes: &[u8], manifest: Manifest, source: &str) -> Result<Self> {
        check_size(bytes, source)?;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(tract(format!("tract cannot load {source}")))?;
        Ok(TractModel {
            plan,
            manifest: Arc::new(manifest),
        })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Logits of up to one batch of samples' inputs (`k × sample_len`, `k ≤ batch`); padded to
    /// the batch, the padding's logits dropped.
    pub fn logits(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let per_sample = self.manifest.input.sample_len();
        let samples = input.len() / per_sample;
        if input.len() % per_sample != 0 || samples == 0 || samples > self.manifest.input.batch {
            return Err(Error::Tract {
                what: "model input".into(),
                message: format!(
                    "{} values is not 1 to {} samples of {per_sample}",
                    input.len(),
                    self.manifest.input.batch
                ),
            });
        }
        let shape = self.manifest.input.shape();
        let array = tract_ndarray::Array::from_shape_vec(
            shape.to_vec(),
            pad_to_batch(input, &self.manifest),
        )
        .map_err(|e| Error::Tract {
            what: "model input".into(),
            message: e.to_string(),
        })?;
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

/// Model bytes within [`MAX_MODEL_BYTES`] (checked before hashing or parsing them).
fn check_size(bytes: &[u8], source: &str) -> Result<()> {
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(Error::ModelTooLarge {
            source_name: source.to_owned(),
            bytes: bytes.len() as u64,
            max: MAX_MODEL_BYTES,
        });
    }
    Ok(())
}
