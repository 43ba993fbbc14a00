//! Convolutions run one image at a time. The five frames of a sample reach each convolution as a
//! batch of five, and tract keeps its lazy im2col (patches gathered inside the matrix product)
//! for batches of one, materialising the patch matrix otherwise (about a sixth of the default
//! model's time in wasm). Slicing the batch, convolving each image and concatenating the results
//! lets every convolution take the lazy path.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Slice, TypedConcat};
use tract_onnx::tract_core::ops::cnn::Conv;

/// Rewrites each [`Conv`] over a fixed batch of more than one image, in a decluttered model.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id).clone();
        if !node.op_is::<Conv>() {
            continue;
        }
        let batch = match model.outlet_fact(node.inputs[0])?.shape.as_concrete() {
            Some(shape) if shape.first().is_some_and(|&n| n > 1) => shape[0],
            _ => continue,
        };
        let mut patch = TypedModelPatch::default();
        let inputs = patch.taps(model, &node.inputs)?;
        let mut images = tvec!();
        for i in 0..batch {
            let image = patch.wire_node(
                format!("{}.image{i}", node.name),
                Slice::new(0, i, i + 1),
                &[inputs[0]],
            )?[0];
            let mut conv_inputs = inputs.clone();
            conv_inputs[0] = image;
            images.push(
                patch.wire_node(
                    format!("{}.conv{i}", node.name),
                    node.op.clone(),
                    &conv_inputs,
                )?[0],
            );
        }
        let joined = patch.wire_node(
            format!("{}.batch", node.name),
            TypedConcat { axis: 0 },
            &images,
        )?[0];
        patch.shunt_outside(model, node.id.into(), joined)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}
