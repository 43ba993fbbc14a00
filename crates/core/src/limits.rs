//! Every limit on what enters the product, stated once. Frames, models, manifests, checkpoints
//! and training flags are checked against these where they enter (before any allocation sized
//! by them), natively and in wasm alike.

use std::ops::RangeInclusive;

/// The face crop's side as a multiple of the detected face box (`--face-scale`, `input.crop`).
pub const FACE_SCALE: RangeInclusive<f32> = 0.5..=4.0;

/// Widest or tallest frame accepted (pixels). A 4K camera frame fits; a 100 000-pixel-wide
/// "frame" is refused before its buffer is copied or resized.
pub const MAX_FRAME_SIDE: u32 = 4096;

/// Most pixels in one frame (4K UHD). Five RGBA frames of this size are 166 MB.
pub const MAX_FRAME_PIXELS: u64 = 3840 * 2160;

/// Largest model file accepted (bytes), by every runtime and by `export`.
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// Largest manifest accepted (bytes): a manifest is a few kB of JSON.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Input sides (pixels) a model may take: every architecture's feature maps stay at least one
/// pixel from 16 up, and 512 keeps one sample's input under 16 MB.
pub const INPUT_SIZE: RangeInclusive<u32> = 16..=512;

/// Samples per model run (the exported file has a static batch).
pub const BATCH: RangeInclusive<usize> = 1..=64;

/// Whether `t` is a usable decision threshold on `p_spoof`: finite and strictly inside (0, 1)
/// (0 would call everything an attack, 1 nothing).
pub fn threshold_ok(t: f32) -> bool {
    t.is_finite() && t > 0.0 && t < 1.0
}

/// Whether a frame of `width × height` is within [`MAX_FRAME_SIDE`] and [`MAX_FRAME_PIXELS`].
pub fn frame_size_ok(width: u32, height: u32) -> bool {
    width <= MAX_FRAME_SIDE
        && height <= MAX_FRAME_SIDE
        && u64::from(width) * u64::from(height) <= MAX_FRAME_PIXELS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_must_be_strictly_inside_0_1() {
        assert!(threshold_ok(0.5) && threshold_ok(1e-6) && threshold_ok(0.9999));
        for bad in [0.0, 1.0, 1.5, -0.1, f32::NAN, f32::INFINITY] {
            assert!(!threshold_ok(bad), "{bad}");
        }
    }

    #[test]
    fn frame_limits() {
        assert!(frame_size_ok(640, 480) && frame_size_ok(3840, 2160));
        assert!(!frame_size_ok(100_000, 1) && !frame_size_ok(4096, 4096));
    }
}
