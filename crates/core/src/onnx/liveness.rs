//! What every liveness graph shares around its encoder: the `[N, 5, 3·views, S, S]` input folded
//! into a batch of frames, the five-frame head on the pooled features, and the `logit` /
//! `p_spoof` outputs (after checking that wonnx can dispatch every Conv).

use super::proto::tensor_shape_proto::dimension::Value as DimValue;
use super::proto::type_proto::Value as TypeValue;
use super::proto::{ModelProto, ValueInfoProto};
use super::{
    ExportError, GraphBuilder, OPSET, Value, WONNX_MAX_CONV_OUTPUTS, Weight, Weights, value_info,
    weight,
};

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

impl GraphBuilder {
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
            name: crate::model_file::INPUT.to_owned(),
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
            self.output(&logit, crate::model_file::LOGIT),
            self.output(&p, crate::model_file::P_SPOOF),
        ];
        let inputs = self.input.take().into_iter().collect();
        Ok(self.finish(name, inputs, outputs, OPSET, "liveness-core"))
    }
}
