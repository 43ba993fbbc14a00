//! Device-side input: a batch of resized `u8` frames → normalised `f32` on the device, with the
//! same arithmetic as `liveness_core::normalize_into` (tested against it).

use liveness_core::{FRAMES, Normalization};
use tch::{Device, Kind, Tensor};

/// `[N, 5, V, S, S, 3]` `u8` pixels (V views per frame) → `[N, 5, 3·V, S, S]` `f32` in
/// `[0, 1]` on `device`.
pub fn to_unit(pixels: &[u8], n: usize, size: u32, views: usize, device: Device) -> Tensor {
    let (s, v) = (i64::from(size), views as i64);
    Tensor::from_slice(pixels)
        .to_device(device)
        .view([n as i64, FRAMES as i64, v, s, s, 3])
        .permute([0, 1, 2, 5, 3, 4])
        .reshape([n as i64, FRAMES as i64, 3 * v, s, s])
        .to_kind(Kind::Float)
        .divide_scalar(255.0)
}

/// `(x - mean) / std` per channel of `[N, 5, 3·V, S, S]` (every view's RGB alike).
pub fn normalize(unit: &Tensor, norm: &Normalization) -> Tensor {
    let device = unit.device();
    let views = unit.size()[2] / 3;
    let per_channel = |v: &[f32; 3]| {
        Tensor::from_slice(v)
            .repeat([views])
            .to_device(device)
            .view([1, 1, 3 * views, 1, 1])
    };
    unit.g_sub(&per_channel(&norm.mean))
        .divide(&per_channel(&norm.std))
}

/// `[N, 5, V, S, S, 3]` `u8` pixels → `[N, 5, 3·V, S, S]` normalised `f32` on `device`: the same
/// arithmetic as `liveness_core::normalize_into`, done on the device.
pub fn to_input(
    pixels: &[u8],
    n: usize,
    size: u32,
    views: usize,
    norm: &Normalization,
    device: Device,
) -> Tensor {
    normalize(&to_unit(pixels, n, size, views, device), norm)
}

/// Runs `f` (a per-frame transform of `[N, F, 3, S, S]`, e.g. augmentation) on every view of
/// `[N, 5, 3·V, S, S]`, as if each view were one more frame of the sample.
pub fn per_view(unit: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    let size = unit.size();
    let (n, frames, c, s) = (size[0], size[1], size[2], size[3]);
    let out = f(&unit.reshape([n, frames * (c / 3), 3, s, s]));
    out.reshape([n, frames, c, s, s])
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::normalize_into;

    #[test]
    fn device_normalisation_matches_the_shared_core() -> Result<(), tch::TchError> {
        let size = 6u32;
        let pixels: Vec<u8> = (0..FRAMES * 36 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let t = to_input(&pixels, 1, size, 1, &Normalization::IMAGENET, Device::Cpu);
        assert_eq!(t.size(), vec![1, 5, 3, 6, 6]);
        let got: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let mut want = vec![0.0f32; pixels.len()];
        for (src, dst) in pixels.chunks(36 * 3).zip(want.chunks_mut(36 * 3)) {
            normalize_into(src, &Normalization::IMAGENET, dst);
        }
        liveness_core::testing::assert_close("device vs core", &got, &want, 1e-5);
        Ok(())
    }

    #[test]
    fn views_land_in_their_channels_like_the_shared_core() -> Result<(), tch::TchError> {
        // Two views of 4 × 4 per frame: the core's multi-view layout puts view v of frame k at
        // channels 3v..3v+3 of frame k.
        let (size, views) = (4u32, 2usize);
        let per_image = 4 * 4 * 3;
        let pixels: Vec<u8> = (0..FRAMES * views * per_image)
            .map(|i| (i * 13 % 256) as u8)
            .collect();
        let t = to_input(
            &pixels,
            1,
            size,
            views,
            &Normalization::IMAGENET,
            Device::Cpu,
        );
        assert_eq!(t.size(), vec![1, 5, 6, 4, 4]);
        let got: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let mut want = vec![0.0f32; pixels.len()];
        for (src, dst) in pixels.chunks(per_image).zip(want.chunks_mut(per_image)) {
            normalize_into(src, &Normalization::IMAGENET, dst);
        }
        liveness_core::testing::assert_close("views on the device vs core", &got, &want, 1e-5);
        // Per-view transforms see 3-channel images and give the layout back.
        let back = per_view(&t, |x| {
            assert_eq!(x.size(), vec![1, 10, 3, 4, 4]);
            x.shallow_clone()
        });
        assert_eq!(back.size(), t.size());
        Ok(())
    }
}
