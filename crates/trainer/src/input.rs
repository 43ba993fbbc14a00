//! Device-side input: a batch of resized `u8` frames → normalised `f32` on the device, with the
//! same arithmetic as `liveness_core::normalize_into` (tested against it).

use liveness_core::{FRAMES, Normalization};
use tch::{Device, Kind, Tensor};

/// `[N, 5, S, S, 3]` `u8` pixels → `[N, 5, 3, S, S]` `f32` in `[0, 1]` on `device`.
pub fn to_unit(pixels: &[u8], n: usize, size: u32, device: Device) -> Tensor {
    let s = i64::from(size);
    Tensor::from_slice(pixels)
        .to_device(device)
        .view([n as i64, FRAMES as i64, s, s, 3])
        .permute([0, 1, 4, 2, 3])
        .to_kind(Kind::Float)
        .divide_scalar(255.0)
}

/// `(x - mean) / std` per channel of `[N, 5, 3, S, S]`.
pub fn normalize(unit: &Tensor, norm: &Normalization) -> Tensor {
    let device = unit.device();
    let mean = Tensor::from_slice(&norm.mean)
        .to_device(device)
        .view([1, 1, 3, 1, 1]);
    let std = Tensor::from_slice(&norm.std)
        .to_device(device)
        .view([1, 1, 3, 1, 1]);
    unit.g_sub(&mean).divide(&std)
}

/// `[N, 5, S, S, 3]` `u8` pixels → `[N, 5, 3, S, S]` normalised `f32` on `device`: the same
/// arithmetic as `liveness_core::normalize_into`, done on the device.
pub fn to_input(
    pixels: &[u8],
    n: usize,
    size: u32,
    norm: &Normalization,
    device: Device,
) -> Tensor {
    normalize(&to_unit(pixels, n, size, device), norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::normalize_into;

    #[test]
    fn device_normalisation_matches_the_shared_core() -> Result<(), tch::TchError> {
        let size = 6u32;
        let pixels: Vec<u8> = (0..FRAMES * 36 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let t = to_input(&pixels, 1, size, &Normalization::IMAGENET, Device::Cpu);
        assert_eq!(t.size(), vec![1, 5, 3, 6, 6]);
        let got: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let mut want = vec![0.0f32; pixels.len()];
        for (src, dst) in pixels.chunks(36 * 3).zip(want.chunks_mut(36 * 3)) {
            normalize_into(src, &Normalization::IMAGENET, dst);
        }
        liveness_core::testing::assert_close("device vs core", &got, &want, 1e-5);
        Ok(())
    }
}
