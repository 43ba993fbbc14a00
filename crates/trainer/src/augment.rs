//! Training-time augmentation on the device, on a batch of `[N, 5, 3, S, S]` frames in `[0, 1]`.
//!
//! Every random choice is made per sample (the five frames of a sample are one recording, so they
//! get the same crop, colour and cut-out) from libtorch's generator, which the training loop seeds
//! per (seed, epoch, step): a resumed run augments exactly like an uninterrupted one.

use clap::Args;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Augmentation strengths; all zero (the default) is the recipe (flip only, in the loader).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, Args)]
pub struct Augment {
    /// Random scaled crop: smallest share of the frame side kept (0 = off, e.g. 0.7), with a
    /// random position; the crop is resized back to the input size.
    #[arg(long = "aug-crop", default_value_t = 0.0)]
    pub crop: f64,
    /// Colour jitter strength: brightness, contrast and saturation factors in [1 - x, 1 + x].
    #[arg(long = "aug-color", default_value_t = 0.0)]
    pub color: f64,
    /// Gaussian pixel noise: standard deviation drawn in [0, x] (pixels in [0, 1]).
    #[arg(long = "aug-noise", default_value_t = 0.0)]
    pub noise: f64,
    /// Probability of a 3x3 box blur.
    #[arg(long = "aug-blur", default_value_t = 0.0)]
    pub blur: f64,
    /// Probability of cutting out (zeroing) a random square a quarter of the side wide.
    #[arg(long = "aug-cutout", default_value_t = 0.0)]
    pub cutout: f64,
    /// Gamma: pixels raised to a power drawn in [1 - x, 1 + x] (another camera's or screen's
    /// response curve).
    #[arg(long = "aug-gamma", default_value_t = 0.0)]
    #[serde(default)]
    pub gamma: f64,
    /// Colour temperature: red and blue gains drawn in [1 - x, 1 + x] in opposite directions
    /// (another room's light).
    #[arg(long = "aug-tint", default_value_t = 0.0)]
    #[serde(default)]
    pub tint: f64,
}

impl Augment {
    /// Whether any augmentation is on.
    pub fn is_on(&self) -> bool {
        *self != Augment::default()
    }

    /// Augments `x` (`[N, 5, 3, S, S]`, values in `[0, 1]`).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (n, f, s) = (size[0], size[1], size[3]);
        let dev = x.device();
        let per_sample = |shape: &[i64]| Tensor::rand(shape, (Kind::Float, dev));
        let mut x = x.shallow_clone();
        if self.crop > 0.0 {
            // An affine grid per sample: scale in [crop, 1], shift within what the scale leaves.
            let scale = per_sample(&[n]) * (1.0 - self.crop) + self.crop;
            let room = scale.ones_like() - &scale;
            let tx = (per_sample(&[n]) * 2.0 - 1.0) * &room;
            let ty = (per_sample(&[n]) * 2.0 - 1.0) * &room;
            let zero = scale.zeros_like();
            let theta =
                Tensor::stack(&[&scale, &zero, &tx, &zero, &scale, &ty], 1).view([n, 1, 2, 3]);
            let theta = theta.expand([n, f, 2, 3], false).reshape([n * f, 2, 3]);
            let grid = Tensor::affine_grid_generator(&theta, [n * f, 3, s, s], false);
            x = x
                .reshape([n * f, 3, s, s])
                .grid_sampler(&grid, 0, 1, false)
                .view([n, f, 3, s, s]);
        }
        if self.color > 0.0 {
            let factor = || (per_sample(&[n, 1, 1, 1, 1]) * 2.0 - 1.0) * self.color + 1.0;
            let gray = |x: &Tensor| {
                let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114])
                    .to_device(dev)
                    .view([1, 1, 3, 1, 1]);
                (x * w).sum_dim_intlist(2, true, Kind::Float)
            };
            x = &x * factor();
            let mean = gray(&x).mean_dim([2, 3, 4].as_slice(), true, Kind::Float);
            x = (&x - &mean) * factor() + &mean;
            let g = gray(&x);
            x = (&x - &g) * factor() + &g;
        }
        if self.gamma > 0.0 {
            let g = (per_sample(&[n, 1, 1, 1, 1]) * 2.0 - 1.0) * self.gamma + 1.0;
            x = x.clamp(1e-6, 1.0).pow(&g);
        }
        if self.tint > 0.0 {
            let t = (per_sample(&[n, 1, 1, 1, 1]) * 2.0 - 1.0) * self.tint;
            let ones = t.ones_like();
            let gains = Tensor::cat(&[&ones + &t, ones.shallow_clone(), &ones - &t], 2);
            x = &x * gains;
        }
        if self.blur > 0.0 {
            let blurred = x
                .reshape([n * f, 3, s, s])
                .avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
                .view([n, f, 3, s, s]);
            let on = per_sample(&[n, 1, 1, 1, 1])
                .lt(self.blur)
                .to_kind(Kind::Float);
            x = &blurred * &on + &x * (on.ones_like() - &on);
        }
        if self.noise > 0.0 {
            let sigma = per_sample(&[n, 1, 1, 1, 1]) * self.noise;
            x = &x + Tensor::randn([n, f, 3, s, s], (Kind::Float, dev)) * sigma;
        }
        if self.cutout > 0.0 {
            let side = (s / 4).max(1);
            let pos = |len| (per_sample(&[n, 1, 1, 1, 1]) * (len - side + 1) as f64).floor();
            let (top, left) = (pos(s), pos(s));
            let rows = Tensor::arange(s, (Kind::Float, dev)).view([1, 1, 1, s, 1]);
            let cols = Tensor::arange(s, (Kind::Float, dev)).view([1, 1, 1, 1, s]);
            let inside = rows.ge_tensor(&top)
                * rows.lt_tensor(&(&top + side as f64))
                * cols.ge_tensor(&left)
                * cols.lt_tensor(&(&left + side as f64));
            let on = per_sample(&[n, 1, 1, 1, 1]).lt(self.cutout);
            let cut = (inside.to_kind(Kind::Float) * on.to_kind(Kind::Float))
                .expand([n, f, 3, s, s], false);
            x = &x * (cut.ones_like() - &cut);
        }
        x.clamp(0.0, 1.0)
    }
}

/// Seeds libtorch's generator for one training step.
pub fn seed_step(seed: u64, epoch: usize, step: usize) {
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((epoch as u64) << 32) ^ step as u64;
    tch::manual_seed((mixed & 0x7FFF_FFFF_FFFF_FFFF) as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn batch() -> Tensor {
        tch::manual_seed(1);
        Tensor::rand([3, 5, 3, 16, 16], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn off_is_identity_and_on_changes_pixels_within_range() {
        let x = batch();
        let none = Augment::default().apply(&x);
        assert_eq!(f64::try_from((&none - &x).abs().max()).unwrap_or(1.0), 0.0);
        for aug in [
            Augment {
                crop: 0.6,
                ..Default::default()
            },
            Augment {
                color: 0.4,
                ..Default::default()
            },
            Augment {
                noise: 0.05,
                ..Default::default()
            },
            Augment {
                blur: 1.0,
                ..Default::default()
            },
            Augment {
                cutout: 1.0,
                ..Default::default()
            },
            Augment {
                gamma: 0.4,
                ..Default::default()
            },
            Augment {
                tint: 0.3,
                ..Default::default()
            },
        ] {
            let y = aug.apply(&x);
            assert_eq!(y.size(), x.size());
            let diff = f64::try_from((&y - &x).abs().max()).unwrap_or(0.0);
            assert!(diff > 1e-3, "{aug:?} changed nothing");
            assert!(
                f64::try_from(y.min()).unwrap_or(-1.0) >= 0.0
                    && f64::try_from(y.max()).unwrap_or(2.0) <= 1.0
            );
        }
    }

    #[test]
    fn the_five_frames_of_a_sample_share_their_crop_and_cutout() {
        // Identical frames stay identical under per-sample transforms without noise.
        let one = Tensor::rand([2, 1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let x = one.expand([2, 5, 3, 16, 16], false).contiguous();
        let aug = Augment {
            crop: 0.6,
            color: 0.3,
            cutout: 1.0,
            blur: 0.5,
            noise: 0.0,
            gamma: 0.3,
            tint: 0.2,
        };
        let y = aug.apply(&x);
        let first = y.narrow(1, 0, 1);
        assert!(f64::try_from((&y - &first).abs().max()).unwrap_or(1.0) < 1e-6);
        // ...and differ between samples.
        assert!(f64::try_from((y.get(0) - y.get(1)).abs().max()).unwrap_or(0.0) > 1e-3);
    }
}
