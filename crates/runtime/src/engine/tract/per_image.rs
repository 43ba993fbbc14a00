//! Convolutions run one image at a time. The five frames of a sample reach each convolution as a
//! batch of five, and tract keeps its lazy im2col (patches gathered inside the matrix product)
//! for batches of one, materialising the patch matrix otherwise (about a sixth of the default
//! model's time in wasm). So the batch is sliced into images before the first convolution of a
//! run of per-image operations (convolutions, max-pools, element-wise operations with a constant
//! that does not vary over the batch: a network's blocks), each image goes through the run on its
//! own, and the results are concatenated after it.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Slice, TypedConcat};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, MaxPool};

/// Runs each run of per-image operations that starts with a [`Conv`] over a fixed batch of more
/// than one image one image at a time, in a decluttered model; returns how many runs.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut rewritten = 0;
    // The order is taken again after each rewrite: a rewritten run's nodes leave it.
    while let Some((start, batch)) = next_batched_conv(model)? {
        let run = per_image_run(model, start)?;
        split(model, &run, batch)?;
        rewritten += 1;
    }
    Ok(rewritten)
}

/// The first convolution (in evaluation order) over a fixed batch of more than one image.
fn next_batched_conv(model: &TypedModel) -> TractResult<Option<(usize, usize)>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        if !node.op_is::<Conv>() {
            continue;
        }
        if let Some(shape) = model.outlet_fact(node.inputs[0])?.shape.as_concrete()
            && let Some(&batch) = shape.first()
            && batch > 1
        {
            return Ok(Some((id, batch)));
        }
    }
    Ok(None)
}

/// `start` and the nodes after it, each the single successor of the one before, that compute
/// each image from that image alone.
fn per_image_run(model: &TypedModel, start: usize) -> TractResult<Vec<usize>> {
    let outputs = model.output_outlets()?;
    let mut run = vec![start];
    loop {
        let last = model.node(run[run.len() - 1]);
        let [output] = &last.outputs[..] else { break };
        let [next] = &output.successors[..] else {
            break;
        };
        if outputs.contains(&OutletId::new(last.id, 0)) {
            break;
        }
        let next = model.node(next.node);
        if !is_per_image(model, next, last.id)? {
            break;
        }
        run.push(next.id);
    }
    Ok(run)
}

/// Whether `node`, fed by `from`, computes each image of its output from that image alone.
fn is_per_image(model: &TypedModel, node: &TypedNode, from: usize) -> TractResult<bool> {
    if node.op_is::<Conv>() {
        return Ok(node.inputs[0].node == from);
    }
    if let Some(pool) = node.op_as::<MaxPool>() {
        return Ok(pool.with_index_outputs.is_none());
    }
    if node.op_is::<TypedBinOp>() {
        let rank = model.outlet_fact(OutletId::new(from, 0))?.rank();
        for input in &node.inputs {
            if input.node == from {
                continue;
            }
            // A constant broadcast over the batch: of lower rank, or with a batch of one.
            let fact = model.outlet_fact(*input)?;
            let broadcast = fact.rank() < rank || fact.shape[0].to_i64().ok() == Some(1);
            if fact.konst.is_none() || !broadcast {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// Wires `run` once per image of the batch (a slice of the first node's input) and joins the
/// images after the last node.
fn split(model: &mut TypedModel, run: &[usize], batch: usize) -> TractResult<()> {
    let mut patch = TypedModelPatch::default();
    let mut taps: HashMap<OutletId, OutletId> = HashMap::new();
    let mut tap = |patch: &mut TypedModelPatch, outlet: OutletId| -> TractResult<OutletId> {
        if let Some(&wire) = taps.get(&outlet) {
            return Ok(wire);
        }
        let wire = patch.tap_model(model, outlet)?;
        taps.insert(outlet, wire);
        Ok(wire)
    };
    let first = model.node(run[0]);
    let batched = tap(&mut patch, first.inputs[0])?;
    let mut images = tvec!();
    for i in 0..batch {
        let mut wire = patch.wire_node(
            format!("{}.image{i}", first.name),
            Slice::new(0, i, i + 1),
            &[batched],
        )?[0];
        let mut previous = first.inputs[0];
        for &id in run {
            let node = model.node(id);
            let mut inputs = tvec!();
            for &input in &node.inputs {
                inputs.push(if input == previous {
                    wire
                } else {
                    tap(&mut patch, input)?
                });
            }
            wire = patch.wire_node(format!("{}.image{i}", node.name), node.op.clone(), &inputs)?[0];
            previous = OutletId::new(id, 0);
        }
        images.push(wire);
    }
    let last = model.node(run[run.len() - 1]);
    let joined = patch.wire_node(
        format!("{}.batch", last.name),
        TypedConcat { axis: 0 },
        &images,
    )?[0];
    patch.shunt_outside(model, OutletId::new(last.id, 0), joined)?;
    patch.apply(model)
}
