//! A graph built node by node with a static shape for every tensor (wonnx needs them), in the
//! operators the exported architectures use.

use super::Weight;
use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
use super::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

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
    /// The graph's input, once [`GraphBuilder::liveness_input`] set it.
    pub(super) input: Option<ValueInfoProto>,
    /// Prepended to initializer names (one ensemble member's weights apart from another's).
    prefix: String,
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
