//! The CPU engine: tract (pure Rust), natively and in wasm; a liveness model run on full batches.
//! Models (and the face detector) are optimised by [`plan`]: tract's own passes plus two graph
//! rewrites of ours where tract's choice is slow in wasm ([`per_image`], [`max_pool`]).

pub mod max_pool;
pub mod per_image;

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
            .and_then(plan)
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

/// A loaded ONNX graph, optimised and ready to run: decluttered by tract, rewritten by
/// [`per_image`] and [`max_pool`], then compiled to tract's kernels.
pub fn plan(model: InferenceModel) -> TractResult<Arc<TypedSimplePlan>> {
    let mut model = model.into_typed()?.into_decluttered()?;
    rewrite(&mut model)?;
    model.optimize()?;
    model.into_runnable()
}

/// Our two rewrites of a decluttered model, in order; how many per-image runs and how many
/// max-pools they rewrote.
fn rewrite(model: &mut TypedModel) -> TractResult<(usize, usize)> {
    let runs = per_image::rewrite(model)?;
    let pools = max_pool::rewrite(model)?;
    Ok((runs, pools))
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

#[cfg(test)]
mod tests {
    use liveness_core::onnx::{GraphBuilder, OPSET, Value, Weight, value_info};
    use prost::Message;

    use super::*;

    const SHAPE: [usize; 4] = [4, 6, 9, 11];

    /// `x [4, 6, 9, 11]` → grouped 3×3 convolution (3 groups, 6 → 12 channels, padding 1) → ReLU
    /// → `pool` → another convolution (12 → 12) → ReLU: cnn4x3's blocks, over a batch and with
    /// odd sides.
    fn graph(pool: impl Fn(&mut GraphBuilder, &Value) -> Value) -> Vec<u8> {
        let shape: Vec<i64> = SHAPE.iter().map(|&d| d as i64).collect();
        let mut g = GraphBuilder::default();
        let x = Value {
            name: "x".into(),
            shape: shape.clone(),
        };
        let weight = Weight {
            shape: vec![12, 2, 3, 3],
            values: (0..216)
                .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
                .collect(),
        };
        let bias: Vec<f32> = (0..12).map(|i| i as f32 / 10.0 - 0.5).collect();
        let y = g.conv_grouped(&x, "conv", &weight, &bias, [1, 1], [1, 1, 1, 1], 3);
        let y = g.relu(&y);
        let y = pool(&mut g, &y);
        let weight = Weight {
            shape: vec![12, 4, 3, 3],
            values: (0..432)
                .map(|i| (i * 53 % 89) as f32 / 60.0 - 0.7)
                .collect(),
        };
        let y = g.conv_grouped(&y, "conv2", &weight, &bias, [1, 1], [1, 1, 1, 1], 3);
        let y = g.relu(&y);
        let out = g.output(&y, "y");
        g.finish(
            "block",
            vec![value_info("x", &shape)],
            vec![out],
            OPSET,
            "test",
        )
        .encode_to_vec()
    }

    fn load(bytes: &[u8]) -> InferenceModel {
        tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .expect("the test graph")
    }

    fn run(plan: &Arc<TypedSimplePlan>, input: &Tensor) -> Vec<f32> {
        let out = plan.run(tvec!(input.clone().into())).expect("runs");
        out[0]
            .to_plain_array_view::<f32>()
            .expect("f32")
            .iter()
            .copied()
            .collect()
    }

    /// How many runs of per-image operations and how many max-pools [`plan`]'s rewrites replace.
    fn rewritten(bytes: &[u8]) -> (usize, usize) {
        let mut model = load(bytes)
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .expect("declutters");
        rewrite(&mut model).expect("rewrites")
    }

    #[test]
    fn the_rewritten_graph_computes_what_tract_alone_computes() {
        let len = SHAPE.iter().product::<usize>();
        let values: Vec<f32> = (0..len)
            .map(|i| (i * 7919 % 997) as f32 / 400.0 - 1.2)
            .collect();
        let input = Tensor::from_shape(&SHAPE, &values).expect("input");
        let cases: [(&str, Vec<u8>, (usize, usize)); 2] = [
            // One run (both blocks, one image at a time); the cnn4 pooling rewritten in each of
            // the four images (and the last odd row and column dropped).
            ("2×2 stride 2", graph(|g, y| g.max_pool(y, 2, 2, 0)), (1, 4)),
            // A padded 3×3 window: still per image, but left to tract.
            (
                "3×3 stride 2 padded",
                graph(|g, y| g.max_pool(y, 3, 2, 1)),
                (1, 0),
            ),
        ];
        for (what, bytes, counts) in cases {
            assert_eq!(
                rewritten(&bytes),
                counts,
                "{what}: (per-image runs, pools) rewritten"
            );
            let ours = plan(load(&bytes)).expect("our plan");
            let alone = load(&bytes)
                .into_optimized()
                .and_then(|m| m.into_runnable())
                .expect("tract's plan");
            let (got, want) = (run(&ours, &input), run(&alone, &input));
            assert_eq!(got.len(), want.len(), "{what}");
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}: output {i} is {a}, tract alone gives {b}"
                );
            }
        }
    }
}
