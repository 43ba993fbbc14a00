//! Frames from JavaScript (`ImageData`, or `{ data, width, height }` with RGBA bytes), checked
//! against the limits before anything is copied.

use js_sys::{Array, Uint8Array};
use liveness_core::limits::frame_size_ok;
use wasm_bindgen::prelude::*;

use crate::error::{ErrorCode, LivenessError, Result};
use crate::fetch::get;

/// Copies the RGBA bytes and size out of one JS frame object, after checking its size against
/// the limits and its buffer against its size (nothing is copied for a frame that is refused).
pub(crate) fn read_frame(frame: &JsValue, i: u32) -> Result<(Vec<u8>, u32, u32)> {
    let bad = |what: &str| LivenessError::new(ErrorCode::Frames, format!("frame {i}: {what}"));
    let number = |name: &str| {
        get(frame, name)
            .as_f64()
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= f64::from(u32::MAX))
            .map(|v| v as u32)
            .ok_or_else(|| bad(&format!("no valid {name}")))
    };
    let (width, height) = (number("width")?, number("height")?);
    if !frame_size_ok(width, height) {
        return Err(LivenessError::new(
            ErrorCode::Frames,
            liveness_core::Error::FrameTooLarge {
                index: i as usize,
                width,
                height,
                max_side: liveness_core::limits::MAX_FRAME_SIDE,
                max_pixels: liveness_core::limits::MAX_FRAME_PIXELS,
            }
            .to_string(),
        ));
    }
    let data = get(frame, "data");
    if !data.is_instance_of::<js_sys::Uint8ClampedArray>() && !data.is_instance_of::<Uint8Array>() {
        return Err(bad(
            "data must be a Uint8ClampedArray or Uint8Array of RGBA pixels",
        ));
    }
    let data = Uint8Array::new(&data);
    let expected = u64::from(width) * u64::from(height) * 4;
    if u64::from(data.length()) != expected {
        return Err(bad(&format!(
            "{width}x{height} RGBA needs {expected} bytes, got {}",
            data.length()
        )));
    }
    Ok((data.to_vec(), width, height))
}

/// Copies every frame of a JS array (see [`read_frame`]); refuses more than the model takes
/// before copying any.
pub(crate) fn read_frames(frames: &Array) -> Result<Vec<(Vec<u8>, u32, u32)>> {
    let count = frames.length() as usize;
    if count != liveness_core::FRAMES {
        return Err(LivenessError::new(
            ErrorCode::Frames,
            liveness_core::Error::FrameCount {
                expected: liveness_core::FRAMES,
                got: count,
            }
            .to_string(),
        ));
    }
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| read_frame(&f, i as u32))
        .collect()
}
