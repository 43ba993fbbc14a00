//! ResNet-18 per frame (torchvision's layout, 512 features) → the five-frame head: the recipe's
//! model, in the dialect every runtime here runs (see [`super`]).

use super::{ExportError, GraphBuilder, Value, Weights, fold_conv_bn};

/// Features per frame out of the encoder.
pub const FEATURES: usize = 512;
/// Smallest input side that keeps every feature map at least 1 pixel (five stride-2 stages).
pub const MIN_SIZE: u32 = 16;

/// The graph under construction and the weights it reads.
struct Exporter<'a> {
    g: &'a mut GraphBuilder,
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
        let (weight, bias) = fold_conv_bn(self.w, &conv, &format!("{prefix}{bn}"), shape)?;
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

/// The logit `[N, 1, 1, 1]` of `batch` samples from the folded frames `[N·5, 3, S, S]` and a
/// checkpoint's weights (names as the trainer writes them: `encoder.*` in torchvision's layout,
/// `conv1d.*`, `fc.*`), the head's output times `scale`.
pub fn logit(
    g: &mut GraphBuilder,
    frames: &Value,
    w: &Weights,
    batch: usize,
    scale: f32,
) -> Result<Value, ExportError> {
    let mut e = Exporter { g, w };
    let x = e.conv_bn(frames, "encoder.", ("conv1", "bn1"), [64, 3, 7, 7], 2, 3)?;
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
    let x = e.g.global_average_pool(&x);
    e.g.five_frame_logit(&x, w, FEATURES, batch, scale)
}
