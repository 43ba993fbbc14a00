//! Running an exported model with `tract-onnx` (pure Rust, CPU) or wonnx (wgpu), fed by the very
//! preprocessing the browser uses (`liveness_core::preprocess_sample`): how a server re-checks a
//! client's frames with the model the browser ran. wonnx natively is the browser's runtime
//! outside the browser: the test oracle for what the widget computes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use liveness_core::manifest::Manifest;
use liveness_core::onnx::seed;
use liveness_core::{FRAMES, Frame, preprocess_sample};
use tract_onnx::prelude::*;

use crate::dataset::{Sample, decode_frame};
use crate::export::manifest_path;

/// Which runtime executes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// tract-onnx on the CPU (pure Rust).
    Tract,
    /// wonnx on a native GPU through wgpu (Vulkan; lavapipe on machines without a GPU): the
    /// runtime the browser uses, so a reference for what the widget computes.
    Wonnx,
}

enum Backend {
    Tract(Arc<TypedSimplePlan>),
    Wonnx(wonnx::Session),
}

/// A loaded, verified model ready to run.
pub struct OnnxModel {
    /// Its manifest.
    pub manifest: Manifest,
    backend: Backend,
}

/// Runs `f`, turning a panic (wonnx panics instead of returning errors, e.g. with no GPU adapter
/// or on a wgpu validation error) into an error.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            bail!("{what}: wonnx failed: {msg}")
        }
    }
}

impl OnnxModel {
    /// Loads `model` and its manifest (`NAME.json` next to it unless given), refusing a file
    /// whose SHA-256 does not match, and prepares it on `engine`.
    pub fn load(model: &Path, manifest: Option<&Path>, engine: Engine) -> Result<Self> {
        let manifest_file = manifest
            .map(Path::to_path_buf)
            .unwrap_or_else(|| manifest_path(model));
        let text = std::fs::read_to_string(&manifest_file)
            .with_context(|| format!("cannot read manifest {}", manifest_file.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("manifest {} is not valid", manifest_file.display()))?;
        let bytes = std::fs::read(model)
            .with_context(|| format!("cannot read model {}", model.display()))?;
        manifest
            .verify(&bytes)
            .with_context(|| format!("refusing {}", model.display()))?;
        let what = format!("loading {}", model.display());
        let backend = match engine {
            Engine::Tract => Backend::Tract(
                tract_onnx::onnx()
                    .model_for_read(&mut bytes.as_slice())
                    .and_then(|m| m.into_optimized())
                    .and_then(|m| m.into_runnable())
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
                    .with_context(|| format!("tract cannot load {}", model.display()))?,
            ),
            Engine::Wonnx => Backend::Wonnx(no_panic(&what, || {
                pollster::block_on(wonnx::Session::from_bytes(&bytes))
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?),
        };
        Ok(OnnxModel { manifest, backend })
    }

    /// Runs one full batch of preprocessed input (`[batch, 5, 3, S, S]` flattened) → logits.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let shape = self.manifest.input.shape();
        if input.len() != shape.iter().product::<usize>() {
            bail!(
                "input has {} values, the model takes {shape:?}",
                input.len()
            );
        }
        match &self.backend {
            Backend::Tract(plan) => {
                let array = tract_ndarray::Array::from_shape_vec(shape.to_vec(), input)
                    .context("input shape")?;
                let out = plan
                    .run(tvec!(Tensor::from(array).into()))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let logits = out[0]
                    .to_plain_array_view::<f32>()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                Ok(logits.iter().copied().collect())
            }
            Backend::Wonnx(session) => no_panic("running the model", || {
                let mut inputs = HashMap::new();
                inputs.insert(self.manifest.input.name.clone(), input.as_slice().into());
                let mut out =
                    pollster::block_on(session.run(&inputs)).map_err(|e| anyhow::anyhow!("{e}"))?;
                let logit = out
                    .remove(seed::LOGIT)
                    .context("the model has no logit output")?;
                Vec::<f32>::try_from(logit).map_err(|e| anyhow::anyhow!("{e}"))
            }),
        }
    }

    /// Preprocesses and scores samples (any number; padded to the model's batch) → logits.
    pub fn score_samples(&self, samples: &[Sample]) -> Result<Vec<f32>> {
        let batch = self.manifest.input.batch;
        let per_sample = FRAMES * 3 * (self.manifest.input.size as usize).pow(2);
        let mut logits = Vec::with_capacity(samples.len());
        for chunk in samples.chunks(batch) {
            let mut input = Vec::with_capacity(batch * per_sample);
            for s in chunk {
                input.extend(self.preprocess(s)?);
            }
            input.resize(batch * per_sample, 0.0);
            logits.extend(self.run(input)?.into_iter().take(chunk.len()));
        }
        Ok(logits)
    }

    /// The model's input for one sample, from its frame files.
    pub fn preprocess(&self, sample: &Sample) -> Result<Vec<f32>> {
        let images = sample
            .frames
            .iter()
            .map(|p| decode_frame(p))
            .collect::<Result<Vec<_>, _>>()?;
        let frames: Vec<Frame<'_>> = images
            .iter()
            .map(|i| Frame::rgb(i.as_raw(), i.width(), i.height()))
            .collect();
        let input = preprocess_sample(
            &frames,
            self.manifest.input.size,
            &self.manifest.input.normalization,
        )
        .with_context(|| format!("sample {}", sample.path.display()))?;
        if input.len() != FRAMES * 3 * (self.manifest.input.size as usize).pow(2) {
            bail!("sample {}: unexpected input length", sample.path.display());
        }
        Ok(input)
    }
}
