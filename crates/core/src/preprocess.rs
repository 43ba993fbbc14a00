//! Frame preprocessing shared by the trainer, the browser and the server.
//!
//! A frame is decoded pixels (RGB or RGBA, row-major, 8 bits per channel). Preprocessing takes a
//! square region of the frame (by the model's [`Crop`] rule: the centre square, or a square
//! around the detected face), resizes it to `size × size` with a bilinear filter that widens with
//! the scale factor (like PIL's and torchvision's antialiased resize), and normalises to CHW
//! `f32`: `(x / 255 - mean[c]) / std[c]`. With the centre square this equals torchvision's
//! `Resize(size)` + `CenterCrop(size)` + `ToTensor` + `Normalize` up to resampling rounding.
//!
//! Resizing and normalising are separate steps so that the trainer can cache resized `u8` frames
//! and normalise on the GPU; [`preprocess_frame`] and [`preprocess_sample`] chain them.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use serde::{Deserialize, Serialize};

use crate::face::FaceBox;
use crate::limits::{MAX_FRAME_PIXELS, MAX_FRAME_SIDE, frame_size_ok};
use crate::{Error, FRAMES, Normalization, Result};

/// Which square of a frame the model sees. Recorded in the manifest; a runtime refuses a rule it
/// does not implement (an unknown `kind` does not parse).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Crop {
    /// The centre square of the frame (its shorter side).
    #[default]
    CentreSquare,
    /// A square centred on the detected face, `scale` times the face box's longer side, no larger
    /// than the frame's shorter side and shifted to lie inside the frame (never padded).
    Face {
        /// Side of the square over the face box's longer side.
        scale: f32,
    },
}

impl Crop {
    /// Whether this rule needs a face box per frame.
    pub fn needs_face(&self) -> bool {
        matches!(self, Crop::Face { .. })
    }

    /// The square of a `width × height` frame this rule takes; `face` is the frame's face (needed
    /// by [`Crop::Face`], ignored otherwise; without one the centre square is taken).
    pub fn square(&self, width: u32, height: u32, face: Option<&FaceBox>) -> Square {
        let (w, h) = (f64::from(width), f64::from(height));
        let shorter = w.min(h);
        match (self, face) {
            (Crop::Face { scale }, Some(face)) if scale.is_finite() && *scale > 0.0 => {
                let side = f64::from(face.width.max(face.height)) * f64::from(*scale);
                // A box from a broken detector (NaN, ∞) still gives a square inside the frame.
                let side = if side.is_finite() {
                    side.clamp(1.0_f64.min(shorter), shorter)
                } else {
                    shorter
                };
                let (cx, cy) = (f64::from(face.centre_x()), f64::from(face.centre_y()));
                let left = (cx - side / 2.0).max(0.0).min(w - side);
                let top = (cy - side / 2.0).max(0.0).min(h - side);
                Square {
                    left: if left.is_finite() {
                        left
                    } else {
                        (w - side) / 2.0
                    },
                    top: if top.is_finite() {
                        top
                    } else {
                        (h - side) / 2.0
                    },
                    side,
                }
            }
            _ => Square {
                left: (w - shorter) / 2.0,
                top: (h - shorter) / 2.0,
                side: shorter,
            },
        }
    }
}

/// A square region of a frame in pixels (fractional: the resizer samples sub-pixel positions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Square {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Side.
    pub side: f64,
}

/// How the bytes of a frame are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// 3 bytes per pixel: R, G, B (decoded images).
    Rgb8,
    /// 4 bytes per pixel: R, G, B, A (canvas `ImageData`); alpha is ignored.
    Rgba8,
}

impl PixelLayout {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb8 => 3,
            PixelLayout::Rgba8 => 4,
        }
    }
}

/// A borrowed decoded frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Row-major pixels, `width * height * layout.channels()` bytes.
    pub pixels: &'a [u8],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Byte layout of `pixels`.
    pub layout: PixelLayout,
}

impl<'a> Frame<'a> {
    /// An RGB frame.
    pub fn rgb(pixels: &'a [u8], width: u32, height: u32) -> Self {
        Frame {
            pixels,
            width,
            height,
            layout: PixelLayout::Rgb8,
        }
    }

    /// An RGBA frame, e.g. a canvas's `ImageData`.
    pub fn rgba(pixels: &'a [u8], width: u32, height: u32) -> Self {
        Frame {
            pixels,
            width,
            height,
            layout: PixelLayout::Rgba8,
        }
    }

    /// Checks the frame's size against the limits and its buffer against its size, before
    /// anything is allocated for it. `index` names the frame in errors.
    pub fn check(&self, index: usize) -> Result<()> {
        if !frame_size_ok(self.width, self.height) {
            return Err(Error::FrameTooLarge {
                index,
                width: self.width,
                height: self.height,
                max_side: MAX_FRAME_SIDE,
                max_pixels: MAX_FRAME_PIXELS,
            });
        }
        if self.width == 0 || self.height == 0 {
            return Err(Error::EmptyFrame {
                index,
                width: self.width,
                height: self.height,
            });
        }
        let expected = self.width as usize * self.height as usize * self.layout.channels();
        if self.pixels.len() != expected {
            return Err(Error::BufferSize {
                index,
                width: self.width,
                height: self.height,
                layout: self.layout,
                expected,
                got: self.pixels.len(),
            });
        }
        Ok(())
    }
}

/// Centre-crops `frame` to a square and resizes it to `size × size` RGB (HWC `u8`,
/// `size * size * 3` bytes). `index` only names the frame in errors.
pub fn resize_frame(frame: Frame<'_>, size: u32, index: usize) -> Result<Vec<u8>> {
    let square = Crop::CentreSquare.square(frame.width, frame.height, None);
    resize_square(frame, square, size, index)
}

/// Resizes the `square` of `frame` to `size × size` RGB (HWC `u8`, `size * size * 3` bytes).
/// `index` only names the frame in errors.
pub fn resize_square(frame: Frame<'_>, square: Square, size: u32, index: usize) -> Result<Vec<u8>> {
    if size == 0 || size > *crate::limits::INPUT_SIZE.end() {
        return Err(Error::BadInputSize(size));
    }
    frame.check(index)?;
    // The resizer then only ever sees U8x3, in the browser as in the trainer.
    let rgb_owned;
    let rgb: &[u8] = match frame.layout {
        PixelLayout::Rgb8 => frame.pixels,
        PixelLayout::Rgba8 => {
            rgb_owned = frame
                .pixels
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect::<Vec<u8>>();
            &rgb_owned
        }
    };
    let resize_error =
        |e: Box<dyn std::error::Error + Send + Sync>| Error::Resize { index, source: e };
    let src = ImageRef::new(frame.width, frame.height, rgb, PixelType::U8x3)
        .map_err(|e| resize_error(e.into()))?;
    let mut dst = Image::new(size, size, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(square.left, square.top, square.side, square.side);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| resize_error(e.into()))?;
    Ok(dst.into_vec())
}

/// Normalises one resized RGB frame (HWC `u8`, `size * size * 3` bytes) into `out`
/// (CHW `f32`, `3 * size * size` values). Only the common length of the two buffers is written
/// (callers size both from the same `size`).
pub fn normalize_into(rgb: &[u8], norm: &Normalization, out: &mut [f32]) {
    let plane = rgb.len().min(out.len()) / 3;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
        r[i] = f32::from(px[0]) * scale[0] - shift[0];
        g[i] = f32::from(px[1]) * scale[1] - shift[1];
        b[i] = f32::from(px[2]) * scale[2] - shift[2];
    }
}

/// One frame → normalised CHW `f32` of `3 * size * size` values.
pub fn preprocess_frame(frame: Frame<'_>, size: u32, norm: &Normalization) -> Result<Vec<f32>> {
    let rgb = resize_frame(frame, size, 0)?;
    let mut out = vec![0.0; rgb.len()];
    normalize_into(&rgb, norm, &mut out);
    Ok(out)
}

/// The model's input for one sample: exactly [`FRAMES`] frames of one size, centre squares →
/// `[FRAMES, 3, size, size]` `f32`, flattened.
pub fn preprocess_sample(
    frames: &[Frame<'_>],
    size: u32,
    norm: &Normalization,
) -> Result<Vec<f32>> {
    let squares: Vec<Square> = frames
        .iter()
        .map(|f| Crop::CentreSquare.square(f.width, f.height, None))
        .collect();
    preprocess_squares(frames, &squares, size, norm)
}

/// Checks a sample's frames before anything runs on them: exactly [`FRAMES`] frames, each within
/// the limits and matching its buffer, all of one size.
pub fn check_sample(frames: &[Frame<'_>]) -> Result<()> {
    if frames.len() != FRAMES {
        return Err(Error::FrameCount {
            expected: FRAMES,
            got: frames.len(),
        });
    }
    let (first_width, first_height) = (frames[0].width, frames[0].height);
    for (index, frame) in frames.iter().enumerate() {
        frame.check(index)?;
        if (frame.width, frame.height) != (first_width, first_height) {
            return Err(Error::MixedSizes {
                index,
                width: frame.width,
                height: frame.height,
                first_width,
                first_height,
            });
        }
    }
    Ok(())
}

/// The model's input for one sample, taking `squares[k]` of frame `k` (see [`Crop::square`]).
pub fn preprocess_squares(
    frames: &[Frame<'_>],
    squares: &[Square],
    size: u32,
    norm: &Normalization,
) -> Result<Vec<f32>> {
    check_sample(frames)?;
    if squares.len() != frames.len() {
        return Err(Error::BoxCount {
            expected: frames.len(),
            got: squares.len(),
        });
    }
    if size == 0 || size > *crate::limits::INPUT_SIZE.end() {
        return Err(Error::BadInputSize(size));
    }
    let per_frame = 3 * size as usize * size as usize;
    let mut out = vec![0.0; FRAMES * per_frame];
    for (index, ((frame, square), chunk)) in frames
        .iter()
        .zip(squares)
        .zip(out.chunks_exact_mut(per_frame))
        .enumerate()
    {
        let rgb = resize_square(*frame, *square, size, index)?;
        normalize_into(&rgb, norm, chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..height {
            for x in 0..width {
                v.extend_from_slice(&[
                    (x * 7 % 256) as u8,
                    (y * 5 % 256) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        v
    }

    #[test]
    fn uniform_frame_normalises_to_the_channel_formula() -> Result<()> {
        let pixels = vec![200u8; 40 * 30 * 3];
        let out = preprocess_frame(Frame::rgb(&pixels, 40, 30), 8, &Normalization::IMAGENET)?;
        assert_eq!(out.len(), 3 * 64);
        for c in 0..3 {
            let want =
                (200.0 / 255.0 - Normalization::IMAGENET.mean[c]) / Normalization::IMAGENET.std[c];
            for v in &out[c * 64..(c + 1) * 64] {
                assert!((v - want).abs() < 1e-5, "channel {c}: {v} vs {want}");
            }
        }
        Ok(())
    }

    #[test]
    fn same_size_is_a_centre_crop_and_layout_is_chw() -> Result<()> {
        // A 6x4 frame to 4x4: the centre square is columns 1..5, no resampling needed.
        let pixels = gradient(6, 4);
        let rgb = resize_frame(Frame::rgb(&pixels, 6, 4), 4, 0)?;
        for y in 0..4usize {
            for x in 0..4usize {
                let src = (y * 6 + x + 1) * 3;
                assert_eq!(
                    &rgb[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3],
                    &pixels[src..src + 3]
                );
            }
        }
        let norm = Normalization {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut chw = vec![0.0; rgb.len()];
        normalize_into(&rgb, &norm, &mut chw);
        // Pixel (y=2, x=3), green channel, sits at plane 1, offset 2*4+3.
        assert!((chw[16 + 2 * 4 + 3] - f32::from(rgb[(2 * 4 + 3) * 3 + 1]) / 255.0).abs() < 1e-7);
        Ok(())
    }

    #[test]
    fn rgba_and_rgb_give_the_same_input() -> Result<()> {
        let rgb = gradient(33, 21);
        let rgba: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 17])
            .collect();
        let a = preprocess_frame(Frame::rgb(&rgb, 33, 21), 12, &Normalization::IMAGENET)?;
        let b = preprocess_frame(Frame::rgba(&rgba, 33, 21), 12, &Normalization::IMAGENET)?;
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn bad_input_names_the_frame() {
        let ok = vec![0u8; 8 * 8 * 3];
        let short = vec![0u8; 10];
        let frames = [Frame::rgb(&ok, 8, 8); 4];
        assert!(matches!(
            preprocess_sample(&frames, 4, &Normalization::IMAGENET),
            Err(Error::FrameCount {
                expected: 5,
                got: 4
            })
        ));
        let mut frames = [Frame::rgb(&ok, 8, 8); 5];
        frames[3] = Frame::rgb(&short, 8, 8);
        let err = preprocess_sample(&frames, 4, &Normalization::IMAGENET).err();
        assert!(
            matches!(err, Some(Error::BufferSize { index: 3, .. })),
            "{err:?}"
        );
        let other = vec![0u8; 9 * 8 * 3];
        frames[3] = Frame::rgb(&other, 9, 8);
        let err = preprocess_sample(&frames, 4, &Normalization::IMAGENET).err();
        assert!(
            matches!(err, Some(Error::MixedSizes { index: 3, .. })),
            "{err:?}"
        );
        assert!(matches!(
            resize_frame(Frame::rgb(&[], 0, 8), 4, 2),
            Err(Error::EmptyFrame { index: 2, .. })
        ));
        assert!(matches!(
            resize_frame(Frame::rgb(&ok, 8, 8), 0, 0),
            Err(Error::BadInputSize(0))
        ));
    }
}
