//! The recipe's model as ONNX, in the dialect that wonnx 0.5.1 runs (measured; see
//! shared/docs/verified-facts.md) and that any standard runtime runs too:
//!
//! - input `frames` `[N, 5, 3, S, S]` (normalised), outputs `logit` and `p_spoof` `[N, 1]`;
//! - static shapes everywhere, a `value_info` for every intermediate tensor;
//! - BatchNorm folded into each convolution, and every Conv has a bias (wonnx's 3×3 shader is
//!   silently wrong without one);
//! - `Conv1d(5→1, k3, s2, p1)` as a 2-D Conv on `[N, 5, 1, 512]` with kernel `[1, 3]`;
//!   `Linear(256→1)` as a Conv with kernel `[1, 256]` (wonnx's Gemm fails on torch's layout);
//! - Reshape shapes as constant initializers.

use super::proto::ModelProto;
use super::{ExportError, GraphBuilder, Value, Weight, Weights, value_info};
use crate::FRAMES;

/// Name of the graph input.
pub const INPUT: &str = "frames";
/// Name of the logit output.
pub const LOGIT: &str = "logit";
/// Name of the probability output.
pub const P_SPOOF: &str = "p_spoof";
/// Operator set written.
pub const OPSET: i64 = 17;
/// BatchNorm epsilon of the trained model (torch's default).
pub const BN_EPS: f32 = 1e-5;
/// Most outputs one wonnx Conv dispatch can compute (65,535 workgroups × 256).
pub const WONNX_MAX_CONV_OUTPUTS: i64 = 65_535 * 256;
/// Smallest input side that keeps every feature map at least 1 pixel.
pub const MIN_SIZE: u32 = 16;

/// Features per frame out of the encoder.
const FEATURES: i64 = 512;

fn weight<'a>(w: &'a Weights, name: &str, shape: &[usize]) -> Result<&'a Weight, ExportError> {
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

/// Folds BatchNorm `bn` into the bias-free convolution `conv` of shape `[out, in, k, k]`:
/// `w' = w · γ/√(σ²+ε)`, `b' = β − μ · γ/√(σ²+ε)`.
fn fold(
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

/// The graph under construction and the weights it reads.
struct Exporter<'a> {
    g: GraphBuilder,
    w: &'a Weights,
}

impl Exporter<'_> {
    /// `{prefix}{conv}` with `{prefix}{bn}` folded in, padding `pad` on every side.
    fn conv_bn(
        &mut self,
        x: &Value,
        prefix: &str,
        (conv, bn): (&str, &str),
        shape: [usize; 4],
        stride: i64,
        pad: i64,
    ) -> Result<Value, ExportError> {
        let conv = format!("{prefix}{conv}");
        let (weight, bias) = fold(self.w, &conv, &format!("{prefix}{bn}"), shape)?;
        Ok(self
            .g
            .conv(x, &conv, &weight, &bias, [stride, stride], [pad; 4]))
    }

    /// A torchvision BasicBlock.
    fn basic_block(
        &mut self,
        x: &Value,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        stride: i64,
    ) -> Result<Value, ExportError> {
        let y = self.conv_bn(x, prefix, ("conv1", "bn1"), [c_out, c_in, 3, 3], stride, 1)?;
        let y = self.g.relu(&y);
        let y = self.conv_bn(&y, prefix, ("conv2", "bn2"), [c_out, c_out, 3, 3], 1, 1)?;
        let shortcut = if stride != 1 || c_in != c_out {
            self.conv_bn(
                x,
                prefix,
                ("downsample.0", "downsample.1"),
                [c_out, c_in, 1, 1],
                stride,
                0,
            )?
        } else {
            x.clone()
        };
        let sum = self.g.add(&y, &shortcut);
        Ok(self.g.relu(&sum))
    }
}

/// Builds the graph for `batch` samples of `size × size` frames from a checkpoint's weights
/// (names as the trainer writes them: `encoder.*`, `conv1d.*`, `fc.*`).
pub fn export(w: &Weights, size: u32, batch: usize) -> Result<ModelProto, ExportError> {
    if size < MIN_SIZE {
        return Err(ExportError::Unsupported(format!(
            "input size {size} is below the minimum of {MIN_SIZE}"
        )));
    }
    if batch == 0 {
        return Err(ExportError::Unsupported("batch must be at least 1".into()));
    }
    let (n, f, s) = (batch as i64, FRAMES as i64, i64::from(size));
    let mut e = Exporter {
        g: GraphBuilder::default(),
        w,
    };
    let input = Value {
        name: INPUT.to_owned(),
        shape: vec![n, f, 3, s, s],
    };
    let x = e.g.reshape(&input, &[n * f, 3, s, s]);
    let x = e.conv_bn(&x, "encoder.", ("conv1", "bn1"), [64, 3, 7, 7], 2, 3)?;
    let x = e.g.relu(&x);
    let mut x = e.g.max_pool(&x, 3, 2, 1);
    for (layer, c_in, c_out, stride) in [
        (1, 64, 64, 1),
        (2, 64, 128, 2),
        (3, 128, 256, 2),
        (4, 256, 512, 2),
    ] {
        x = e.basic_block(&x, &format!("encoder.layer{layer}.0."), c_in, c_out, stride)?;
        x = e.basic_block(&x, &format!("encoder.layer{layer}.1."), c_out, c_out, 1)?;
    }
    let mut g = e.g;
    let x = g.global_average_pool(&x);
    let x = g.reshape(&x, &[n, f, 1, FEATURES]);
    // Conv1d(5→1, k3, s2, p1) over the 512 features, as a 2-D conv with a [1, 3] kernel.
    let c1 = weight(w, "conv1d.weight", &[1, FRAMES, 3])?;
    let c1 = Weight {
        shape: vec![1, FRAMES, 1, 3],
        values: c1.values.clone(),
    };
    let c1b = weight(w, "conv1d.bias", &[1])?.values.clone();
    let x = g.conv(&x, "conv1d", &c1, &c1b, [1, 2], [0, 1, 0, 1]);
    // Linear(256→1) as a conv whose kernel covers the whole row.
    let half = (FEATURES / 2) as usize;
    let fc = weight(w, "fc.weight", &[1, half])?;
    let fc = Weight {
        shape: vec![1, 1, 1, half],
        values: fc.values.clone(),
    };
    let fcb = weight(w, "fc.bias", &[1])?.values.clone();
    let x = g.conv(&x, "fc", &fc, &fcb, [1, 1], [0, 0, 0, 0]);
    let logit = g.reshape(&x, &[n, 1]);
    let p = g.sigmoid(&logit);

    // wonnx runs a Conv in one dispatch: refuse a batch whose largest Conv exceeds it.
    let largest = g.largest_conv_output();
    if largest > WONNX_MAX_CONV_OUTPUTS {
        let max_batch = WONNX_MAX_CONV_OUTPUTS / (largest / n);
        return Err(ExportError::Unsupported(format!(
            "batch {batch} at {size}x{size} needs a Conv with {largest} outputs; wonnx runs at most {WONNX_MAX_CONV_OUTPUTS} per Conv: use a batch of at most {max_batch}"
        )));
    }
    let outputs = vec![g.output(&logit, LOGIT), g.output(&p, P_SPOOF)];
    Ok(g.finish(
        "liveness-seed-resnet18",
        vec![value_info(INPUT, &input.shape)],
        outputs,
        OPSET,
        "liveness-core",
    ))
}
