//! Frame preprocessing shared by the trainer, the browser and the server.
//!
//! A frame is decoded pixels (RGB or RGBA, row-major, 8 bits per channel). Preprocessing takes a
//! region of the frame (by the model's [`Crop`] rule: the centre square, a square around the
//! detected face, or the whole frame squashed or letterboxed), resizes it to `size × size` with a bilinear filter that widens with
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

/// Which region of a frame the model sees. Recorded in the manifest; a runtime refuses a rule it
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
    /// The whole frame: the scene around the face (paper edges, hands, a screen's border, the
    /// light of the room) is where a print or a replay shows.
    Whole {
        /// How the frame's rectangle becomes the model's square.
        fit: Fit,
    },
}

/// How [`Crop::Whole`] fits a rectangular frame into the square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Resized to the square, aspect not kept (a 4:3 frame is squeezed horizontally).
    #[default]
    Squash,
    /// Scaled to fit with its aspect kept, black bars on the short sides.
    Letterbox,
}

impl Crop {
    /// Whether this rule needs a face box per frame.
    pub fn needs_face(&self) -> bool {
        matches!(self, Crop::Face { .. })
    }

    /// The region of a `width × height` frame this rule takes; `face` is the frame's face (needed
    /// by [`Crop::Face`], ignored otherwise; without one the centre square is taken). A region
    /// may reach past the frame's edges (a letterbox): that part is black in the input.
    pub fn region(&self, width: u32, height: u32, face: Option<&FaceBox>) -> Region {
        let (w, h) = (f64::from(width), f64::from(height));
        let shorter = w.min(h);
        let centre_square = Region::square((w - shorter) / 2.0, (h - shorter) / 2.0, shorter);
        match (self, face) {
            (Crop::Whole { fit: Fit::Squash }, _) => Region {
                left: 0.0,
                top: 0.0,
                width: w,
                height: h,
            },
            (
                Crop::Whole {
                    fit: Fit::Letterbox,
                },
                _,
            ) => {
                let longer = w.max(h);
                Region::square((w - longer) / 2.0, (h - longer) / 2.0, longer)
            }
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
                Region::square(
                    if left.is_finite() {
                        left
                    } else {
                        (w - side) / 2.0
                    },
                    if top.is_finite() {
                        top
                    } else {
                        (h - side) / 2.0
                    },
                    side,
                )
            }
            _ => centre_square,
        }
    }

    /// The rule in words, for the manifest.
    pub fn describe(&self) -> String {
        match self {
            Crop::CentreSquare => "centre square".to_owned(),
            Crop::Face { scale } => format!(
                "square of {scale} x the face box's longer side around the detected face (within the frame)"
            ),
            Crop::Whole { fit: Fit::Squash } => {
                "the whole frame, squashed to a square (aspect not kept)".to_owned()
            }
            Crop::Whole {
                fit: Fit::Letterbox,
            } => "the whole frame, letterboxed into a square (aspect kept, black bars)".to_owned(),
        }
    }
}

/// A rectangle of a frame in pixels (fractional: the resizer samples sub-pixel positions). It may
/// reach past the frame's edges; that part reads as black.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Region {
    /// A square of side `side` with its top-left corner at (`left`, `top`).
    pub fn square(left: f64, top: f64, side: f64) -> Self {
        Region {
            left,
            top,
            width: side,
            height: side,
        }
    }
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
    let region = Crop::CentreSquare.region(frame.width, frame.height, None);
    resize_region(frame, region, size, index)
}

/// Resizes the `region` of `frame` to `size × size` RGB (HWC `u8`, `size * size * 3` bytes).
/// The part of the region past the frame's edges is black (rounded to whole output pixels).
/// `index` only names the frame in errors.
pub fn resize_region(frame: Frame<'_>, region: Region, size: u32, index: usize) -> Result<Vec<u8>> {
    if size == 0 || size > *crate::limits::INPUT_SIZE.end() {
        return Err(Error::BadInputSize(size));
    }
    frame.check(index)?;
    let (w, h) = (f64::from(frame.width), f64::from(frame.height));
    let finite = [region.left, region.top, region.width, region.height]
        .iter()
        .all(|v| v.is_finite());
    let region = if finite && region.width > 0.0 && region.height > 0.0 {
        region
    } else {
        Region {
            left: 0.0,
            top: 0.0,
            width: w,
            height: h,
        }
    };
    // The part of the region inside the frame, and where it lands in the output.
    let (left, top) = (region.left.max(0.0), region.top.max(0.0));
    let (right, bottom) = (
        (region.left + region.width).min(w),
        (region.top + region.height).min(h),
    );
    let (sx, sy) = (
        f64::from(size) / region.width,
        f64::from(size) / region.height,
    );
    let to_px = |v: f64| (v.round().clamp(0.0, f64::from(size))) as u32;
    let (x0, x1) = (
        to_px((left - region.left) * sx),
        to_px((right - region.left) * sx),
    );
    let (y0, y1) = (
        to_px((top - region.top) * sy),
        to_px((bottom - region.top) * sy),
    );
    if right <= left || bottom <= top || x1 <= x0 || y1 <= y0 {
        return Ok(vec![0; size as usize * size as usize * 3]);
    }
    // The resizer then only ever sees U8x3, in the browser as in the trainer.
    let rgb = rgb_pixels(frame);
    let resize_error =
        |e: Box<dyn std::error::Error + Send + Sync>| Error::Resize { index, source: e };
    let src = ImageRef::new(frame.width, frame.height, &rgb, PixelType::U8x3)
        .map_err(|e| resize_error(e.into()))?;
    let (inner_w, inner_h) = (x1 - x0, y1 - y0);
    let mut dst = Image::new(inner_w, inner_h, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(left, top, right - left, bottom - top);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| resize_error(e.into()))?;
    if (inner_w, inner_h) == (size, size) {
        return Ok(dst.into_vec());
    }
    let mut out = vec![0; size as usize * size as usize * 3];
    let row = inner_w as usize * 3;
    for (y, src_row) in dst.buffer().chunks_exact(row).enumerate() {
        let at = ((y0 as usize + y) * size as usize + x0 as usize) * 3;
        out[at..at + row].copy_from_slice(src_row);
    }
    Ok(out)
}

/// A frame's pixels as RGB bytes: borrowed when they already are, converted from RGBA (alpha
/// dropped) otherwise.
fn rgb_pixels<'a>(frame: Frame<'a>) -> std::borrow::Cow<'a, [u8]> {
    match frame.layout {
        PixelLayout::Rgb8 => std::borrow::Cow::Borrowed(frame.pixels),
        PixelLayout::Rgba8 => frame
            .pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect::<Vec<u8>>()
            .into(),
    }
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
    let regions: Vec<Region> = frames
        .iter()
        .map(|f| Crop::CentreSquare.region(f.width, f.height, None))
        .collect();
    preprocess_regions(frames, &regions, size, norm)
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

/// The model's input for one sample, taking `regions[k]` of frame `k` (see [`Crop::region`]).
pub fn preprocess_regions(
    frames: &[Frame<'_>],
    regions: &[Region],
    size: u32,
    norm: &Normalization,
) -> Result<Vec<f32>> {
    check_sample(frames)?;
    if regions.len() != frames.len() {
        return Err(Error::BoxCount {
            expected: frames.len(),
            got: regions.len(),
        });
    }
    if size == 0 || size > *crate::limits::INPUT_SIZE.end() {
        return Err(Error::BadInputSize(size));
    }
    let per_frame = 3 * size as usize * size as usize;
    let mut out = vec![0.0; FRAMES * per_frame];
    for (index, ((frame, region), chunk)) in frames
        .iter()
        .zip(regions)
        .zip(out.chunks_exact_mut(per_frame))
        .enumerate()
    {
        let rgb = resize_region(*frame, *region, size, index)?;
        normalize_into(&rgb, norm, chunk);
    }
    Ok(out)
}

/// The model's input for one sample seen through several views (one [`Crop`] each, e.g. the
/// whole frame and the face at two scales): `[FRAMES, 3·V, size, size]` `f32`, flattened, view
/// `v` of frame `k` at channels `3v..3v+3`. `faces[k]` is frame `k`'s face, needed by face views.
pub fn preprocess_views(
    frames: &[Frame<'_>],
    faces: Option<&[FaceBox]>,
    crops: &[Crop],
    size: u32,
    norm: &Normalization,
) -> Result<Vec<f32>> {
    check_sample(frames)?;
    if let Some(faces) = faces
        && faces.len() != frames.len()
    {
        return Err(Error::BoxCount {
            expected: frames.len(),
            got: faces.len(),
        });
    }
    // RGBA canvas frames become RGB once here, not once per view in the resizer.
    let pixels: Vec<_> = frames.iter().map(|f| rgb_pixels(*f)).collect();
    let rgb: Vec<Frame<'_>> = frames
        .iter()
        .zip(&pixels)
        .map(|(f, p)| Frame::rgb(p, f.width, f.height))
        .collect();
    let mut views: Vec<Vec<f32>> = crops
        .iter()
        .map(|crop| {
            let regions: Vec<Region> = rgb
                .iter()
                .enumerate()
                .map(|(k, f)| crop.region(f.width, f.height, faces.map(|b| &b[k])))
                .collect();
            preprocess_regions(&rgb, &regions, size, norm)
        })
        .collect::<Result<_>>()?;
    if views.len() == 1 {
        return Ok(views.swap_remove(0));
    }
    let per_frame = 3 * size as usize * size as usize;
    let mut out = Vec::with_capacity(FRAMES * views.len() * per_frame);
    for k in 0..frames.len() {
        for view in &views {
            out.extend_from_slice(&view[k * per_frame..(k + 1) * per_frame]);
        }
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
    fn every_rule_takes_its_concrete_region() {
        let sq = |left, top, side| Region::square(left, top, side);
        // A 320 × 240 frame: the centre square, the whole frame squashed, and letterboxed.
        assert_eq!(
            Crop::CentreSquare.region(320, 240, None),
            sq(40.0, 0.0, 240.0)
        );
        let whole = |fit| Crop::Whole { fit }.region(320, 240, None);
        assert_eq!(
            whole(Fit::Squash),
            Region {
                left: 0.0,
                top: 0.0,
                width: 320.0,
                height: 240.0
            }
        );
        assert_eq!(whole(Fit::Letterbox), sq(0.0, -40.0, 320.0));
        assert_eq!(
            Crop::Whole {
                fit: Fit::Letterbox
            }
            .region(240, 320, None),
            sq(-40.0, 0.0, 320.0)
        );
        // A face crop: 1.5 × a 40 px box around its centre; at the frame's edges it is shifted
        // inside the frame (not padded), and never larger than the shorter side.
        let face = |x: f32, y: f32, side: f32| FaceBox {
            x,
            y,
            width: side,
            height: side,
            score: 0.9,
            keypoints: [[0.0; 2]; 6],
        };
        let crop = Crop::Face { scale: 1.5 };
        assert_eq!(
            crop.region(320, 240, Some(&face(100.0, 80.0, 40.0))),
            sq(90.0, 70.0, 60.0)
        );
        assert_eq!(
            crop.region(320, 240, Some(&face(-10.0, 200.0, 40.0))),
            sq(0.0, 180.0, 60.0)
        );
        assert_eq!(
            crop.region(320, 240, Some(&face(290.0, -5.0, 40.0))),
            sq(260.0, 0.0, 60.0)
        );
        assert_eq!(
            crop.region(320, 240, Some(&face(100.0, 50.0, 200.0))),
            sq(80.0, 0.0, 240.0)
        );
    }

    #[test]
    fn a_letterbox_is_the_frame_between_black_bars() -> Result<()> {
        // 8 × 4 of one grey → 8 × 8: rows 0–1 and 6–7 black, rows 2–5 grey.
        let pixels = vec![100u8; 8 * 4 * 3];
        let frame = Frame::rgb(&pixels, 8, 4);
        let region = Crop::Whole {
            fit: Fit::Letterbox,
        }
        .region(8, 4, None);
        let out = resize_region(frame, region, 8, 0)?;
        for y in 0..8 {
            let row = &out[y * 24..(y + 1) * 24];
            let want = if (2..6).contains(&y) { 100 } else { 0 };
            assert!(row.iter().all(|&v| v == want), "row {y}: {row:?}");
        }
        // Squashed, the same frame fills the square; its columns keep their order.
        let grad = gradient(8, 4);
        let squashed = resize_region(
            Frame::rgb(&grad, 8, 4),
            Crop::Whole { fit: Fit::Squash }.region(8, 4, None),
            4,
            0,
        )?;
        assert!(squashed.iter().any(|&v| v != 0));
        let red: Vec<u8> = (0..4).map(|x| squashed[x * 3]).collect();
        assert!(red.windows(2).all(|w| w[0] < w[1]), "{red:?}");
        // A region wholly outside the frame is black; a broken one reads the whole frame.
        let away = Region::square(100.0, 100.0, 8.0);
        assert!(resize_region(frame, away, 4, 0)?.iter().all(|&v| v == 0));
        let broken = Region::square(f64::NAN, 0.0, 8.0);
        assert!(
            resize_region(frame, broken, 4, 0)?
                .iter()
                .all(|&v| v == 100)
        );
        Ok(())
    }

    #[test]
    fn views_sit_side_by_side_in_each_frames_channels() -> Result<()> {
        let pixels = gradient(40, 30);
        let frames = [Frame::rgb(&pixels, 40, 30); FRAMES];
        let crops = [Crop::CentreSquare, Crop::Whole { fit: Fit::Squash }];
        let norm = Normalization::IMAGENET;
        let both = preprocess_views(&frames, None, &crops, 8, &norm)?;
        let per = 3 * 8 * 8;
        assert_eq!(both.len(), FRAMES * 2 * per);
        for (v, crop) in crops.iter().enumerate() {
            let alone = preprocess_views(&frames, None, &[*crop], 8, &norm)?;
            for k in 0..FRAMES {
                let at = (k * 2 + v) * per;
                assert_eq!(
                    &both[at..at + per],
                    &alone[k * per..(k + 1) * per],
                    "view {v}, frame {k}"
                );
            }
        }
        assert_ne!(&both[..per], &both[per..2 * per], "the two views differ");
        assert!(matches!(
            preprocess_views(&frames, Some(&[]), &crops, 8, &norm),
            Err(Error::BoxCount { .. })
        ));
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
