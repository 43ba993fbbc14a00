//! Running an exported model on the CPU with `tract-onnx` (pure Rust), fed by the very
//! preprocessing the browser uses (`liveness_core::preprocess_sample`): how a server re-checks a
//! client's frames with the model the browser ran.

use std::path::Path;

use anyhow::{Context, Result, bail};
use liveness_core::manifest::Manifest;
use liveness_core::{FRAMES, Frame, preprocess_sample};
use tract_onnx::prelude::*;

use crate::dataset::{Sample, decode_frame};
use crate::export::manifest_path;

/// A loaded, verified model ready to run.
pub struct OnnxModel {
    /// Its manifest.
    pub manifest: Manifest,
    plan: std::sync::Arc<TypedSimplePlan>,
}

impl OnnxModel {
    /// Loads `model` and its manifest (`NAME.json` next to it unless given), refusing a file
    /// whose SHA-256 does not match.
    pub fn load(model: &Path, manifest: Option<&Path>) -> Result<Self> {
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
        let plan = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("tract cannot load {}", model.display()))?;
        Ok(OnnxModel { manifest, plan })
    }

    /// Runs one full batch of preprocessed input (`[batch, 5, 3, S, S]` flattened) → logits.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let shape = self.manifest.input.shape();
        let array =
            tract_ndarray::Array::from_shape_vec(shape.to_vec(), input).context("input shape")?;
        let out = self
            .plan
            .run(tvec!(Tensor::from(array).into()))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let logits = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(logits.iter().copied().collect())
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
