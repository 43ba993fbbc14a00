//! A checkpoint's weights as the graph needs them: looked up with their shape checked, and
//! BatchNorm folded into the convolution before it.

use super::{BN_EPS, ExportError, Weight, Weights};

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
