//! `MaxPool 2×2, stride 2, no padding` over NCHW f32, the pooling of every cnn4 block: tract's own
//! max-pool walks such a window one output at a time with bounds checks (about a quarter of the
//! default model's time in wasm); this one takes two input rows at once, their element-wise
//! maximum first, so the compiler vectorises it.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Replaces each [`MaxPool`] that [`MaxPool2x2`] computes the same way, in a decluttered model.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(pool) = node.op_as::<MaxPool>() else {
            continue;
        };
        let fact = model.outlet_fact(node.inputs[0])?;
        if !is_2x2_stride_2(pool) || fact.datum_type != f32::datum_type() || fact.rank() != 4 {
            continue;
        }
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, MaxPool2x2)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// ONNX's `MaxPool(kernel 2×2, strides 2, pads 0)` with one output, floor rounding.
fn is_2x2_stride_2(pool: &MaxPool) -> bool {
    let spec = &pool.pool_spec;
    let no_padding = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after) => before.iter().chain(after).all(|&p| p == 0),
        PaddingSpec::ExplicitOnnxPool(before, after, ceil) => {
            !ceil && before.iter().chain(after).all(|&p| p == 0)
        }
        PaddingSpec::SameUpper | PaddingSpec::SameLower => false,
    };
    pool.with_index_outputs.is_none()
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape[..] == [2, 2]
        && spec.strides()[..] == [2, 2]
        && spec.dilations()[..] == [1, 1]
        && no_padding
}

/// The pool: `[N, C, H, W]` → `[N, C, H / 2, W / 2]` (a last odd row or column is dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaxPool2x2;

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "MaxPool2x2".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.to_plain_array_view::<f32>()?;
        let &[n, c, h, w] = input.shape() else {
            bail!("MaxPool2x2 takes [N, C, H, W], got {:?}", input.shape());
        };
        let (oh, ow) = (h / 2, w / 2);
        let input = input.as_standard_layout();
        let input = input
            .as_slice()
            .context("MaxPool2x2: input not contiguous")?;
        let mut output = vec![0f32; n * c * oh * ow];
        if output.is_empty() {
            // A side under 2 pixels (or an empty batch): nothing to pool, and no chunks to walk.
            return Ok(tvec!(tensor_of(output, [n, c, oh, ow])?));
        }
        let mut rows = vec![0f32; 2 * ow];
        for (plane, out) in input
            .chunks_exact(h * w)
            .zip(output.chunks_exact_mut(oh * ow))
        {
            for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
                let top = &plane[2 * oy * w..][..2 * ow];
                let bottom = &plane[(2 * oy + 1) * w..][..2 * ow];
                // Vertical pairs first (contiguous: vectorised), then horizontal pairs.
                for ((m, &a), &b) in rows.iter_mut().zip(top).zip(bottom) {
                    *m = max(a, b);
                }
                for (o, pair) in out.iter_mut().zip(rows.chunks_exact(2)) {
                    *o = max(pair[0], pair[1]);
                }
            }
        }
        Ok(tvec!(tensor_of(output, [n, c, oh, ow])?))
    }
}

fn tensor_of(values: Vec<f32>, shape: [usize; 4]) -> TractResult<TValue> {
    Ok(tract_ndarray::Array4::from_shape_vec(shape, values)?.into_tvalue())
}

/// `b` where `a < b`, else `a`: wasm's `f32x4.pmax`, where `f32::max` would need NaN fix-ups.
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a < b { b } else { a }
}

impl TypedOp for MaxPool2x2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        ensure!(
            shape.rank() == 4,
            "MaxPool2x2 takes [N, C, H, W], got {shape:?}"
        );
        let half = |d: &TDim| d.clone() / 2;
        Ok(tvec!(f32::fact([
            shape[0].clone(),
            shape[1].clone(),
            half(&shape[2]),
            half(&shape[3]),
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_under_two_pixels_pools_to_an_empty_map() {
        let input = Tensor::from_shape(&[1, 2, 1, 3], &[1f32, 2., 3., 4., 5., 6.]).expect("input");
        let out = MaxPool2x2
            .eval_out_of_plan(tvec!(input.into_tvalue()))
            .expect("evaluates")
            .expect("needs no plan");
        assert_eq!(out[0].shape(), &[1, 2, 0, 1]);
    }
}
