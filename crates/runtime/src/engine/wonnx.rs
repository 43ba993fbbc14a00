//! The WebGPU engine: wonnx (WGSL shaders through wgpu) — WebGPU in the browser, Vulkan natively
//! (Mesa's lavapipe on machines without a GPU, where it is the tests' reference for the browser).
//! wonnx panics on wgpu errors instead of returning them; native callers catch that
//! (`Model::check_blocking` and its siblings), the browser's panic hook reports it.

use std::collections::HashMap;

use liveness_core::manifest::Manifest;
use liveness_core::model_file::{LOGIT, pad_to_batch};

use crate::engine::tract::samples_in;
use crate::error::{Error, Result};
use crate::verified::VerifiedModel;

/// A verified model as a wonnx session on the GPU.
pub struct WonnxEngine {
    session: wonnx::Session,
}

impl WonnxEngine {
    /// Builds the session (graph, weight upload, shaders). Without a GPU adapter wonnx panics:
    /// the caller checks for one first.
    pub async fn new(model: &VerifiedModel) -> Result<Self> {
        let session = wonnx::Session::from_bytes(model.bytes())
            .await
            .map_err(|e| Error::Wonnx {
                what: format!("loading {}", model.source()),
                message: e.to_string(),
            })?;
        Ok(WonnxEngine { session })
    }

    /// Logits of up to one batch of samples' inputs, like [`super::TractEngine::logits`].
    pub async fn logits(&self, input: Vec<f32>, manifest: &Manifest) -> Result<Vec<f32>> {
        let failed = |message: String| Error::Wonnx {
            what: "running the model".into(),
            message,
        };
        let samples = samples_in(&input, manifest)?;
        let input = pad_to_batch(input, manifest);
        let mut inputs = HashMap::new();
        inputs.insert(manifest.input.name.clone(), input.as_slice().into());
        let mut outputs = self
            .session
            .run(&inputs)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let logit = outputs
            .remove(LOGIT)
            .ok_or_else(|| failed("the model has no logit output".into()))?;
        let logits = Vec::<f32>::try_from(logit).map_err(|e| failed(e.to_string()))?;
        Ok(logits.into_iter().take(samples).collect())
    }
}
