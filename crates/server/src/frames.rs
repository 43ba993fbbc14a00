//! The client's frames: five lossless PNGs (base64), checked against the limits from their
//! headers before they are decoded, all of one size.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use liveness_core::FRAMES;
use liveness_core::challenge::{MAX_TRACK_FRAMES, MAX_TRACK_SIDE};
use liveness_core::limits::{MAX_FRAME_PIXELS, MAX_FRAME_SIDE, frame_size_ok};

use crate::error::ApiError;

/// A decoded RGBA frame.
pub struct Rgba {
    /// `width × height × 4` bytes.
    pub pixels: Vec<u8>,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Decodes one base64 PNG; `index` names the frame in errors.
pub fn decode_png(b64: &str, index: usize) -> Result<Rgba, ApiError> {
    let bad = |what: String| ApiError::bad("frames", format!("frame {index}: {what}"));
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(bad("not a PNG (frames must be lossless PNG)".into()));
    }
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(&bytes), image::ImageFormat::Png);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    if !frame_size_ok(width, height) {
        return Err(bad(format!(
            "{width}x{height}: frames may be at most {MAX_FRAME_SIDE} pixels wide or tall and {MAX_FRAME_PIXELS} pixels in all"
        )));
    }
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| bad(format!("not a complete PNG: {e}")))?;
    let rgba = image.into_rgba8();
    Ok(Rgba {
        width: rgba.width(),
        height: rgba.height(),
        pixels: rgba.into_raw(),
    })
}

/// Decodes the five frames of a verify; refuses another count or mixed sizes.
pub fn decode_all(frames: &[String]) -> Result<Vec<Rgba>, ApiError> {
    if frames.len() != FRAMES {
        return Err(ApiError::bad(
            "frames",
            format!("{} frames; a check is exactly {FRAMES}", frames.len()),
        ));
    }
    let decoded = frames
        .iter()
        .enumerate()
        .map(|(i, f)| decode_png(f, i))
        .collect::<Result<Vec<_>, _>>()?;
    let (w, h) = (decoded[0].width, decoded[0].height);
    if let Some((i, f)) = decoded
        .iter()
        .enumerate()
        .find(|(_, f)| (f.width, f.height) != (w, h))
    {
        return Err(ApiError::bad(
            "frames",
            format!(
                "frame {i} is {}x{} but frame 0 is {w}x{h}: the frames of a check share one size",
                f.width, f.height
            ),
        ));
    }
    Ok(decoded)
}

/// Refuses a track of no frames or more than [`MAX_TRACK_FRAMES`] (before anything is decoded).
pub fn track_count_ok(count: usize) -> Result<(), ApiError> {
    if count == 0 || count > MAX_TRACK_FRAMES {
        return Err(ApiError::bad(
            "challenge",
            format!("challenge.frames has {count} frames; a track has 1 to {MAX_TRACK_FRAMES}"),
        ));
    }
    Ok(())
}

/// Decodes a challenge's track: 1 to [`MAX_TRACK_FRAMES`] PNGs of at most [`MAX_TRACK_SIDE`]
/// pixels a side (the detector sees 128 × 128; larger frames only cost time).
pub fn decode_track(frames: &[String]) -> Result<Vec<Rgba>, ApiError> {
    track_count_ok(frames.len())?;
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let frame = decode_png(f, i).map_err(|e| {
                ApiError::bad("challenge", format!("challenge.frames: {e}"))
            })?;
            if frame.width > MAX_TRACK_SIDE || frame.height > MAX_TRACK_SIDE {
                return Err(ApiError::bad(
                    "challenge",
                    format!(
                        "challenge.frames: frame {i} is {}x{}; track frames are at most {MAX_TRACK_SIDE} pixels a side",
                        frame.width, frame.height
                    ),
                ));
            }
            Ok(frame)
        })
        .collect()
}

/// A base64 PNG of RGBA pixels (for tests and the benchmark's client).
pub fn encode_png(pixels: &[u8], width: u32, height: u32) -> String {
    let mut png = Vec::new();
    let ok = image::RgbaImage::from_raw(width, height, pixels.to_vec())
        .map(|img| img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png));
    if !matches!(ok, Some(Ok(()))) {
        png.clear();
    }
    STANDARD.encode(png)
}
