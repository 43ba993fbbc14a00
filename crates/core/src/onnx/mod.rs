//! Writing ONNX from Rust: the protobuf types of `onnx.proto` (prost, compiled at build time with
//! protox), a small graph builder that records a static shape for every tensor, and one file per
//! architecture ([`resnet18`], [`cnn4`]) that writes its graph from a checkpoint's weights.
//!
//! Every graph is written in the dialect that wonnx 0.5.1 runs (measured), which tract and
//! onnxruntime run too:
//! - input `frames` `[N, 5, 3, S, S]` (normalised), outputs `logit` and `p_spoof` `[N, 1]`
//!   ([`crate::model`]); static shapes everywhere, a `value_info` for every intermediate;
//! - BatchNorm folded into each convolution, and every Conv has a bias (wonnx's 3×3 shader is
//!   silently wrong without one);
//! - the five-frame head's `Conv1d(5→1, k3, s2, p1)` as a 2-D Conv on `[N, 5, 1, F]` with kernel
//!   `[1, 3]`, and its `Linear(F/2→1)` as a Conv with kernel `[1, F/2]` (wonnx's Gemm fails on
//!   torch's layout);
//! - Reshape shapes as constant initializers; opset 17, IR 8.

pub mod cnn4;
pub mod resnet18;

use std::collections::BTreeMap;

/// The prost types generated from `proto/onnx.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::attribute_proto::AttributeType;
use proto::tensor_proto::DataType;
use proto::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
use proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// A named `f32` weight with its shape, e.g. from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// Weights by name.
pub type Weights = BTreeMap<String, Weight>;

/// Errors while building a graph.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A batch or input size outside [`crate::limits`], or below the architecture's minimum.
    #[error("{what} {got} is outside the allowed range {allowed}")]
    OutOfRange {
        what: &'static str,
        got: u64,
        allowed: String,
    },
    /// The graph needs a Conv larger than wonnx can dispatch.
    #[error(
        "batch {batch} at {size}x{size} needs a Conv with {outputs} outputs; wonnx runs at most {WONNX_MAX_CONV_OUTPUTS} per Conv: use a batch of at most {max_batch}"
    )]
    TooLargeForWonnx {
        batch: usize,
        size: u32,
        outputs: i64,
        max_batch: i64,
    },
    /// An ensemble of no models, or of more than [`MAX_ENSEMBLE`].
    #[error("an ensemble needs 1 to {MAX_ENSEMBLE} members, got {0}")]
    EnsembleSize(usize),
    /// A weight the architecture needs is missing.
    #[error("weight {0} is missing: not a checkpoint of this architecture")]
    MissingWeight(String),
    /// A weight has the wrong shape.
    #[error("weight {name} has shape {got:?}, the architecture needs {expected:?}")]
    WeightShape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// Most members of a seed ensemble in one graph.
pub const MAX_ENSEMBLE: usize = 16;
/// Opset written.
pub const OPSET: i64 = 17;
/// BatchNorm epsilon of the trained model (torch's default).
pub const BN_EPS: f32 = 1e-5;
/// Most outputs one wonnx Conv dispatch can compute (65,535 workgroups × 256).
pub const WONNX_MAX_CONV_OUTPUTS: i64 = 65_535 * 256;

/// The weight `name`, which must have `shape`.
pub fn weight<'a>(w: &'a Weights, name: &str, shape: &[usize]) -> Result<&'a Weight, ExportError> {
    let t = w
        .get(name)
        .ok_or_else(|| ExportError::MissingWeight(name.to_owned()))?;
    if t.shape != shape {
        return Err(ExportError::WeightShape {
            name: name.to_owned(),
            got: t.shape.clone(),
            expected: shape.to_vec(),
        });
    }
    Ok(t)
}

/// Folds BatchNorm `bn` into the bias-free convolution `conv` of shape `[out, in, kh, kw]`:
/// `w' = w · γ/√(σ²+ε)`, `b' = β − μ · γ/√(σ²+ε)`.
pub fn fold_conv_bn(
    w: &Weights,
    conv: &str,
    bn: &str,
    shape: [usize; 4],
) -> Result<(Weight, Vec<f32>), ExportError> {
    let cw = weight(w, &format!("{conv}.weight"), &shape)?;
    let c = [shape[0]];
    let gamma = &weight(w, &format!("{bn}.weight"), &c)?.values;
    let beta = &weight(w, &format!("{bn}.bias"), &c)?.values;
    let mean = &weight(w, &format!("{bn}.running_mean"), &c)?.values;
    let var = &weight(w, &format!("{bn}.running_var"), &c)?.values;
    let per_out = shape[1] * shape[2] * shape[3];
    let mut values = cw.values.clone();
    let mut bias = vec![0.0; shape[0]];
    for o in 0..shape[0] {
        let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
        for v in &mut values[o * per_out..(o + 1) * per_out] {
            *v *= scale;
        }
        bias[o] = beta[o] - mean[o] * scale;
    }
    Ok((
        Weight {
            shape: shape.to_vec(),
            values,
        },
        bias,
    ))
}

/// A tensor in the graph being built, with its static shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Tensor name.
    pub name: String,
    /// Static shape.
    pub shape: Vec<i64>,
}

/// Builds a graph node by node; every output gets a `value_info` with its shape.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    value_info: Vec<ValueInfoProto>,
    counter: usize,
    largest_conv: i64,
    input: Option<ValueInfoProto>,
    /// Prepended to initializer names (one ensemble member's weights apart from another's).
    prefix: String,
}

/// The square side of a `[N, 5, 3, S, S]` input's value info.
fn input_side(v: &ValueInfoProto) -> Option<u32> {
    match v.r#type.as_ref()?.value.as_ref()? {
        TypeValue::TensorType(t) => match t.shape.as_ref()?.dim.last()?.value {
            Some(DimValue::DimValue(d)) => u32::try_from(d).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Shape of a tensor as a `ValueInfoProto` (f32).
pub fn value_info(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dims = shape.iter().map(|&d| Dimension {
        value: Some(DimValue::DimValue(d)),
        ..Default::default()
    });
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims.collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// Output side of a convolution or pooling window along one axis.
pub fn window_out(input: i64, kernel: i64, stride: i64, pad_begin: i64, pad_end: i64) -> i64 {
    (input + pad_begin + pad_end - kernel) / stride + 1
}

impl GraphBuilder {
    fn fresh(&mut self, op: &str) -> String {
        self.counter += 1;
        format!("{}_{}", op.to_lowercase(), self.counter)
    }

    fn push(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        shape: Vec<i64>,
        attrs: Vec<AttributeProto>,
    ) -> Value {
        let out = self.fresh(op);
        self.nodes.push(NodeProto {
            op_type: Some(op.to_owned()),
            name: Some(format!("{out}_node")),
            input: inputs,
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        self.value_info.push(value_info(&out, &shape));
        Value { name: out, shape }
    }

    /// Names initializers from now on `{prefix}{name}` (each ensemble member gets its own).
    pub fn set_prefix(&mut self, prefix: &str) {
        prefix.clone_into(&mut self.prefix);
    }

    /// Adds an `f32` initializer (named with the current prefix); returns its name.
    pub fn constant_f32(&mut self, name: &str, shape: &[i64], values: &[f32]) -> String {
        let name = format!("{}{name}", self.prefix);
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: shape.to_vec(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    fn constant_i64(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            name: Some(name.to_owned()),
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name.to_owned()
    }

    /// 2-D convolution with a bias (always: wonnx's 3×3 kernels need one), `weight` shaped
    /// `[out, in, kh, kw]`, `pads` as `[top, left, bottom, right]`.
    pub fn conv(
        &mut self,
        x: &Value,
        name: &str,
        weight: &Weight,
        bias: &[f32],
        strides: [i64; 2],
        pads: [i64; 4],
    ) -> Value {
        self.conv_grouped(x, name, weight, bias, strides, pads, 1)
    }

    /// [`GraphBuilder::conv`] in `group` independent groups of channels (`weight` shaped
    /// `[out, in / group, kh, kw]`); the attribute is written only when `group > 1`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_grouped(
        &mut self,
        x: &Value,
        name: &str,
        weight: &Weight,
        bias: &[f32],
        strides: [i64; 2],
        pads: [i64; 4],
        group: i64,
    ) -> Value {
        let w: Vec<i64> = weight.shape.iter().map(|&d| d as i64).collect();
        let wname = self.constant_f32(&format!("{name}.weight"), &w, &weight.values);
        let bname = self.constant_f32(&format!("{name}.bias"), &[w[0]], bias);
        let shape = vec![
            x.shape[0],
            w[0],
            window_out(x.shape[2], w[2], strides[0], pads[0], pads[2]),
            window_out(x.shape[3], w[3], strides[1], pads[1], pads[3]),
        ];
        self.largest_conv = self.largest_conv.max(shape.iter().product());
        let mut attrs = vec![
            attr_ints("kernel_shape", &w[2..]),
            attr_ints("strides", &strides),
            attr_ints("pads", &pads),
            attr_ints("dilations", &[1, 1]),
        ];
        if group > 1 {
            attrs.push(AttributeProto {
                name: Some("group".to_owned()),
                r#type: Some(AttributeType::Int as i32),
                i: Some(group),
                ..Default::default()
            });
        }
        self.push("Conv", vec![x.name.clone(), wname, bname], shape, attrs)
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: &Value) -> Value {
        self.push("Relu", vec![x.name.clone()], x.shape.clone(), vec![])
    }

    /// `1 / (1 + exp(-x))`.
    pub fn sigmoid(&mut self, x: &Value) -> Value {
        self.push("Sigmoid", vec![x.name.clone()], x.shape.clone(), vec![])
    }

    /// Element-wise sum of two tensors of one shape.
    pub fn add(&mut self, a: &Value, b: &Value) -> Value {
        self.push(
            "Add",
            vec![a.name.clone(), b.name.clone()],
            a.shape.clone(),
            vec![],
        )
    }

    /// Max pooling, square kernel, symmetric padding.
    pub fn max_pool(&mut self, x: &Value, kernel: i64, stride: i64, pad: i64) -> Value {
        let shape = vec![
            x.shape[0],
            x.shape[1],
            window_out(x.shape[2], kernel, stride, pad, pad),
            window_out(x.shape[3], kernel, stride, pad, pad),
        ];
        let attrs = vec![
            attr_ints("kernel_shape", &[kernel, kernel]),
            attr_ints("strides", &[stride, stride]),
            attr_ints("pads", &[pad, pad, pad, pad]),
        ];
        self.push("MaxPool", vec![x.name.clone()], shape, attrs)
    }

    /// Mean over H and W: `[N, C, H, W]` → `[N, C, 1, 1]`.
    pub fn global_average_pool(&mut self, x: &Value) -> Value {
        self.push(
            "GlobalAveragePool",
            vec![x.name.clone()],
            vec![x.shape[0], x.shape[1], 1, 1],
            vec![],
        )
    }

    /// Reshape to a constant shape (wonnx needs the shape as an initializer).
    pub fn reshape(&mut self, x: &Value, shape: &[i64]) -> Value {
        let name = self.fresh("shape");
        let s = self.constant_i64(&name, shape);
        self.push("Reshape", vec![x.name.clone(), s], shape.to_vec(), vec![])
    }

    /// Makes `value` a graph output called `name` (an Identity node, so the name is stable).
    pub fn output(&mut self, value: &Value, name: &str) -> ValueInfoProto {
        self.nodes.push(NodeProto {
            op_type: Some("Identity".to_owned()),
            name: Some(format!("{name}_node")),
            input: vec![value.name.clone()],
            output: vec![name.to_owned()],
            ..Default::default()
        });
        value_info(name, &value.shape)
    }

    /// Output elements of the largest Conv so far (wonnx computes one per invocation).
    pub fn largest_conv_output(&self) -> i64 {
        self.largest_conv
    }

    /// A builder for a liveness model of `batch` samples of `size × size` frames with `views`
    /// views each, after checking both against [`crate::limits`] and the architecture's
    /// `min_size`, and the frames folded into the batch: `[N·5, 3·views, S, S]`, ready for a
    /// per-frame encoder.
    pub fn liveness_input(
        size: u32,
        min_size: u32,
        batch: usize,
        views: usize,
    ) -> Result<(GraphBuilder, Value), ExportError> {
        let sizes =
            min_size.max(*crate::limits::INPUT_SIZE.start())..=*crate::limits::INPUT_SIZE.end();
        if !sizes.contains(&size) {
            return Err(ExportError::OutOfRange {
                what: "input size",
                got: u64::from(size),
                allowed: format!("{}..={}", sizes.start(), sizes.end()),
            });
        }
        if !crate::limits::BATCH.contains(&batch) {
            return Err(ExportError::OutOfRange {
                what: "batch",
                got: batch as u64,
                allowed: format!("{:?}", crate::limits::BATCH),
            });
        }
        let (n, f, s) = (batch as i64, crate::FRAMES as i64, i64::from(size));
        let c = 3 * views as i64;
        let mut g = GraphBuilder::default();
        let input = Value {
            name: crate::model::INPUT.to_owned(),
            shape: vec![n, f, c, s, s],
        };
        let folded = g.reshape(&input, &[n * f, c, s, s]);
        g.input = Some(value_info(&input.name, &input.shape));
        Ok((g, folded))
    }

    /// The five-frame head shared by every architecture, on pooled per-frame features
    /// `[N·5, F, 1, 1]`: `Conv1d(5→1, k3, s2, p1)` over the features → `Linear(F/2→1)`, the
    /// Linear's weights and bias times `scale` (an ensemble's average) → the logit `[N, 1, 1, 1]`
    /// (weights `conv1d.*`, `fc.*`).
    pub fn five_frame_logit(
        &mut self,
        pooled: &Value,
        w: &Weights,
        features: usize,
        batch: usize,
        scale: f32,
    ) -> Result<Value, ExportError> {
        let (n, f, features_i) = (batch as i64, crate::FRAMES as i64, features as i64);
        let x = self.reshape(pooled, &[n, f, 1, features_i]);
        let c1 = weight(w, "conv1d.weight", &[1, crate::FRAMES, 3])?;
        let c1 = Weight {
            shape: vec![1, crate::FRAMES, 1, 3],
            values: c1.values.clone(),
        };
        let c1b = weight(w, "conv1d.bias", &[1])?.values.clone();
        let x = self.conv(&x, "conv1d", &c1, &c1b, [1, 2], [0, 1, 0, 1]);
        let half = features / 2;
        let fc = weight(w, "fc.weight", &[1, half])?;
        let fc = Weight {
            shape: vec![1, 1, 1, half],
            values: fc.values.iter().map(|v| v * scale).collect(),
        };
        let fcb: Vec<f32> = weight(w, "fc.bias", &[1])?
            .values
            .iter()
            .map(|v| v * scale)
            .collect();
        Ok(self.conv(&x, "fc", &fc, &fcb, [1, 1], [0, 0, 0, 0]))
    }

    /// Finishes a liveness model from its logit `[N, 1, 1, 1]`: outputs `logit` and `p_spoof`
    /// `[N, 1]`, after checking that wonnx can dispatch every Conv.
    pub fn finish_liveness(
        mut self,
        logit: &Value,
        batch: usize,
        name: &str,
    ) -> Result<ModelProto, ExportError> {
        let n = batch as i64;
        let logit = self.reshape(logit, &[n, 1]);
        let p = self.sigmoid(&logit);
        // wonnx runs a Conv in one dispatch: refuse a batch whose largest Conv exceeds it.
        let largest = self.largest_conv_output();
        if largest > WONNX_MAX_CONV_OUTPUTS {
            let size = self.input.as_ref().and_then(input_side).unwrap_or(0);
            return Err(ExportError::TooLargeForWonnx {
                batch,
                size,
                outputs: largest,
                max_batch: WONNX_MAX_CONV_OUTPUTS / (largest / n),
            });
        }
        let outputs = vec![
            self.output(&logit, crate::model::LOGIT),
            self.output(&p, crate::model::P_SPOOF),
        ];
        let inputs = self.input.take().into_iter().collect();
        Ok(self.finish(name, inputs, outputs, OPSET, "liveness-core"))
    }

    /// Wraps the graph in a model.
    pub fn finish(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
        opset: i64,
        producer: &str,
    ) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            producer_name: Some(producer.to_owned()),
            producer_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            graph: Some(GraphProto {
                name: Some(name.to_owned()),
                node: self.nodes,
                initializer: self.initializers,
                input: inputs,
                output: outputs,
                value_info: self.value_info,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
