//! The face gate and face boxes, shared by every runtime: the input and output contract of the
//! face detector (MediaPipe BlazeFace, short range, 128×128), its anchor decoding and weighted
//! non-maximum suppression, the rule that a sample needs exactly one face in each of its five
//! frames, and the live guidance shown while the user frames their face ([`guidance`]).
//!
//! The detector itself is an ONNX file (`models/face/`) that a runtime executes (tract natively
//! and in wasm); everything around it is here, so the trainer, `score-onnx`, the server and the
//! browser find the same boxes for the same frames.

pub mod guidance;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::{Deserialize, Serialize};

use crate::{Error, FRAMES, Frame, PixelLayout, Result};

/// Side of the detector's square input, pixels.
pub const DETECTOR_SIZE: u32 = 128;

/// A detection counts as a face from this score up (MediaPipe's short-range default).
pub const MIN_SCORE: f32 = 0.5;

/// Another face counts as a second person from this score up (the strongest face needs only
/// [`MIN_SCORE`]): weak detections beside a clear face are background clutter.
pub const SECOND_FACE_MIN_SCORE: f32 = 0.75;

/// …and from this share of the strongest face's width up: a bystander far behind is not part of
/// the check, a photo held beside the face is.
pub const SECOND_FACE_MIN_SIZE: f32 = 0.5;

/// Detections overlapping by at least this IoU are one face (MediaPipe's value).
const NMS_IOU: f32 = 0.3;

/// The two anchor layers of BlazeFace short range: (cells per row, anchors per cell). Layer 1
/// has a stride of 8 pixels, layer 2 of 16.
const LAYERS: [(usize, usize); 2] = [(16, 2), (8, 6)];

/// Values per anchor in the regressor outputs: box centre offset and size, six key points.
const REGRESSORS: usize = 16;

/// One detected face in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
    /// Detector confidence in `[0, 1]`.
    pub score: f32,
    /// Key points (right eye, left eye, nose tip, mouth, right ear, left ear), frame pixels.
    pub keypoints: [[f32; 2]; 6],
}

impl FaceBox {
    /// Horizontal centre.
    pub fn centre_x(&self) -> f32 {
        self.x + self.width / 2.0
    }

    /// Vertical centre.
    pub fn centre_y(&self) -> f32 {
        self.y + self.height / 2.0
    }

    fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let left = self.x.max(other.x);
        let top = self.y.max(other.y);
        let right = (self.x + self.width).min(other.x + other.width);
        let bottom = (self.y + self.height).min(other.y + other.height);
        let inner = (right - left).max(0.0) * (bottom - top).max(0.0);
        let union = self.area() + other.area() - inner;
        if union > 0.0 { inner / union } else { 0.0 }
    }
}

/// How a frame was fitted into the detector's square: scaled by (`scale_x`, `scale_y`) and
/// shifted by (`left`, `top`) detector pixels, the rest black (letterboxing, as MediaPipe does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    scale_x: f32,
    scale_y: f32,
    left: f32,
    top: f32,
}

impl Letterbox {
    /// A point in detector-input units (`[0, 1]` of the square) → frame pixels.
    fn to_frame(self, x: f32, y: f32) -> [f32; 2] {
        let s = DETECTOR_SIZE as f32;
        [
            (x * s - self.left) / self.scale_x,
            (y * s - self.top) / self.scale_y,
        ]
    }
}

/// The detector's input for one frame: NHWC `[1, 128, 128, 3]` values in `[-1, 1]`, the frame
/// letterboxed into the square (aspect kept, borders black), and how to map boxes back.
pub fn detector_input(frame: Frame<'_>, index: usize) -> Result<(Vec<f32>, Letterbox)> {
    frame.check(index)?;
    let s = DETECTOR_SIZE;
    let longer = frame.width.max(frame.height);
    // Round to whole pixels, at least one: the exact scale per axis is kept for the way back.
    let fit = |side: u32| {
        ((u64::from(side) * u64::from(s) + u64::from(longer) / 2) / u64::from(longer))
            .clamp(1, u64::from(s)) as u32
    };
    let (rw, rh) = (fit(frame.width), fit(frame.height));
    let (left, top) = ((s - rw) / 2, (s - rh) / 2);
    let pixel_type = match frame.layout {
        PixelLayout::Rgb8 => PixelType::U8x3,
        PixelLayout::Rgba8 => PixelType::U8x4,
    };
    let resize_error =
        |e: Box<dyn std::error::Error + Send + Sync>| Error::Resize { index, source: e };
    let src = ImageRef::new(frame.width, frame.height, frame.pixels, pixel_type)
        .map_err(|e| resize_error(e.into()))?;
    let mut dst = Image::new(rw, rh, pixel_type);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| resize_error(e.into()))?;
    let channels = frame.layout.channels();
    let mut input = vec![-1.0f32; (s * s * 3) as usize];
    for (y, row) in dst
        .buffer()
        .chunks_exact(rw as usize * channels)
        .enumerate()
    {
        for (x, px) in row.chunks_exact(channels).enumerate() {
            let at = (((top as usize + y) * s as usize) + left as usize + x) * 3;
            for c in 0..3 {
                input[at + c] = f32::from(px[c]) / 127.5 - 1.0;
            }
        }
    }
    let letterbox = Letterbox {
        scale_x: rw as f32 / frame.width as f32,
        scale_y: rh as f32 / frame.height as f32,
        left: left as f32,
        top: top as f32,
    };
    Ok((input, letterbox))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Faces from the detector's four outputs (scores and regressors of anchor layers 1 and 2, as
/// `[1, 512, 1]`, `[1, 384, 1]`, `[1, 512, 16]`, `[1, 384, 16]` flattened), in frame pixels,
/// strongest first. Overlapping detections are blended (weighted by score) into one face.
pub fn decode(
    scores: [&[f32]; 2],
    regressors: [&[f32]; 2],
    letterbox: &Letterbox,
    min_score: f32,
) -> Vec<FaceBox> {
    let s = DETECTOR_SIZE as f32;
    let mut found = Vec::new();
    for (layer, &(cells, anchors)) in LAYERS.iter().enumerate() {
        let (sc, rg) = (scores[layer], regressors[layer]);
        for (i, &logit) in sc.iter().enumerate().take(cells * cells * anchors) {
            // A NaN score is no face.
            let score = sigmoid(logit.clamp(-80.0, 80.0));
            if score.is_nan() || score < min_score {
                continue;
            }
            let Some(r) = rg.get(i * REGRESSORS..(i + 1) * REGRESSORS) else {
                break;
            };
            let cell = i / anchors;
            let (ax, ay) = (
                ((cell % cells) as f32 + 0.5) / cells as f32,
                ((cell / cells) as f32 + 0.5) / cells as f32,
            );
            let (cx, cy) = (ax + r[0] / s, ay + r[1] / s);
            let (w, h) = (r[2] / s, r[3] / s);
            let [x0, y0] = letterbox.to_frame(cx - w / 2.0, cy - h / 2.0);
            let [x1, y1] = letterbox.to_frame(cx + w / 2.0, cy + h / 2.0);
            let keypoints = std::array::from_fn(|k| {
                letterbox.to_frame(ax + r[4 + 2 * k] / s, ay + r[5 + 2 * k] / s)
            });
            let face = FaceBox {
                x: x0,
                y: y0,
                width: x1 - x0,
                height: y1 - y0,
                score,
                keypoints,
            };
            if [face.x, face.y, face.width, face.height]
                .iter()
                .all(|v| v.is_finite())
            {
                found.push(face);
            }
        }
    }
    blend_overlaps(found)
}

/// Weighted non-maximum suppression (MediaPipe's "blending"): the strongest detection and every
/// other one overlapping it by [`NMS_IOU`] or more become one face whose box is their
/// score-weighted mean and whose score is the strongest.
fn blend_overlaps(mut found: Vec<FaceBox>) -> Vec<FaceBox> {
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut rest = found.into_iter();
    let mut faces = Vec::new();
    // Each round takes the strongest left and removes it with its group: always progresses.
    while let Some(best) = rest.next() {
        let (overlapping, others): (Vec<FaceBox>, Vec<FaceBox>) =
            rest.partition(|f| best.iou(f) >= NMS_IOU);
        rest = others.into_iter();
        let group: Vec<FaceBox> = std::iter::once(best).chain(overlapping).collect();
        let total: f32 = group.iter().map(|f| f.score).sum();
        let mean = |get: &dyn Fn(&FaceBox) -> f32| {
            group.iter().map(|f| get(f) * f.score).sum::<f32>() / total
        };
        faces.push(FaceBox {
            x: mean(&|f| f.x),
            y: mean(&|f| f.y),
            width: mean(&|f| f.width),
            height: mean(&|f| f.height),
            score: best.score,
            keypoints: std::array::from_fn(|k| {
                [mean(&|f| f.keypoints[k][0]), mean(&|f| f.keypoints[k][1])]
            }),
        });
    }
    faces
}

/// Why a sample gets no verdict: the face gate. A check is never "live" without exactly one face
/// in each of its frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Refusal {
    /// A frame shows no face.
    #[error("frame {frame} shows no face")]
    NoFace {
        /// Which frame (0-based).
        frame: usize,
    },
    /// A frame shows more than one face.
    #[error("frame {frame} shows {count} faces; the check needs exactly one person")]
    MultipleFaces {
        /// Which frame (0-based).
        frame: usize,
        /// How many faces it shows.
        count: usize,
    },
}

impl Refusal {
    /// The stable code of the refusal (`no-face`, `multiple-faces`), as runtimes report it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoFace { .. } => "no-face",
            Refusal::MultipleFaces { .. } => "multiple-faces",
        }
    }
}

/// The people in a frame from its detections (strongest first, as [`decode`] returns them): the
/// strongest face, and every other face at least [`SECOND_FACE_MIN_SCORE`] strong and
/// [`SECOND_FACE_MIN_SIZE`] as wide as it. Measured on NUAA's 3,420 training frames: weak
/// or small second detections (a bystander far behind, clutter) occur in 40 samples; this rule
/// keeps one (a second person half as wide, score 0.81).
pub fn people(faces: &[FaceBox]) -> Vec<FaceBox> {
    let Some(first) = faces.iter().max_by(|a, b| a.score.total_cmp(&b.score)) else {
        return Vec::new();
    };
    let mut out = vec![*first];
    out.extend(faces.iter().filter(|f| {
        *f != first
            && f.score >= SECOND_FACE_MIN_SCORE
            && f.width >= SECOND_FACE_MIN_SIZE * first.width
    }));
    out
}

/// The face gate: exactly one person ([`people`]) in each of the [`FRAMES`] frames → their faces,
/// in order.
pub fn gate(faces_per_frame: &[Vec<FaceBox>]) -> std::result::Result<Vec<FaceBox>, Refusal> {
    debug_assert_eq!(faces_per_frame.len(), FRAMES);
    faces_per_frame
        .iter()
        .enumerate()
        .map(|(frame, faces)| match people(faces).as_slice() {
            [one] => Ok(*one),
            [] => Err(Refusal::NoFace { frame }),
            many => Err(Refusal::MultipleFaces {
                frame,
                count: many.len(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, side: f32, score: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            width: side,
            height: side,
            score,
            keypoints: [[x, y]; 6],
        }
    }

    /// Raw outputs with one anchor firing: layer 2 (8×8 cells, 6 anchors), cell (row 3, col 4).
    fn outputs_with(
        anchor_cell: (usize, usize),
        offset: [f32; 2],
        size: f32,
        logit: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (s1, mut s2) = (vec![-20.0; 512], vec![-20.0; 384]);
        let (r1, mut r2) = (vec![0.0; 512 * 16], vec![0.0; 384 * 16]);
        let i = (anchor_cell.0 * 8 + anchor_cell.1) * 6;
        s2[i] = logit;
        r2[i * 16] = offset[0];
        r2[i * 16 + 1] = offset[1];
        r2[i * 16 + 2] = size;
        r2[i * 16 + 3] = size;
        (s1, s2, r1, r2)
    }

    #[test]
    fn an_anchor_decodes_to_frame_pixels_through_the_letterbox() -> Result<()> {
        // A 320×240 frame: scaled by 0.4 to 128×96, 16 black rows above.
        let pixels = vec![0u8; 320 * 240 * 3];
        let (input, letterbox) = detector_input(Frame::rgb(&pixels, 320, 240), 0)?;
        assert_eq!(input.len(), 128 * 128 * 3);
        assert_eq!(input[0], -1.0); // letterbox border and black pixels alike
        let (s1, s2, r1, r2) = outputs_with((3, 4), [2.0, -4.0], 32.0, 3.0);
        let faces = decode([&s1, &s2], [&r1, &r2], &letterbox, MIN_SCORE);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        // Anchor centre (4.5/8, 3.5/8) of 128 = (72, 56); + offset (2, -4) = (74, 52) detector
        // pixels; box 32 wide. In the frame: x = 74/0.4 = 185, y = (52 - 16)/0.4 = 90, side 80.
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(
            close(f.centre_x(), 185.0) && close(f.centre_y(), 90.0),
            "{f:?}"
        );
        assert!(close(f.width, 80.0) && close(f.height, 80.0), "{f:?}");
        assert!(close(f.score, sigmoid(3.0)));
        Ok(())
    }

    #[test]
    fn overlapping_detections_blend_into_one_face_and_distant_ones_stay_apart() {
        let faces = blend_overlaps(vec![
            face(100.0, 100.0, 50.0, 0.9),
            face(104.0, 100.0, 50.0, 0.6),
            face(300.0, 50.0, 40.0, 0.7),
        ]);
        assert_eq!(faces.len(), 2);
        assert_eq!(faces[0].score, 0.9);
        // Score-weighted mean of x: (100·0.9 + 104·0.6) / 1.5 = 101.6.
        assert!((faces[0].x - 101.6).abs() < 1e-4, "{:?}", faces[0]);
        assert_eq!(faces[1].x, 300.0);
    }

    #[test]
    fn weak_and_non_finite_scores_are_no_faces() {
        let letterbox = Letterbox {
            scale_x: 1.0,
            scale_y: 1.0,
            left: 0.0,
            top: 0.0,
        };
        let (s1, s2, r1, r2) = outputs_with((0, 0), [0.0, 0.0], 10.0, -1.0);
        assert!(decode([&s1, &s2], [&r1, &r2], &letterbox, MIN_SCORE).is_empty());
        let (s1, s2, r1, r2) = outputs_with((0, 0), [0.0, 0.0], 10.0, f32::NAN);
        assert!(decode([&s1, &s2], [&r1, &r2], &letterbox, MIN_SCORE).is_empty());
        // Short outputs (a foreign model) give no face rather than a panic.
        assert!(decode([&[], &[5.0]], [&[], &[]], &letterbox, MIN_SCORE).is_empty());
    }

    #[test]
    fn the_gate_needs_one_face_in_every_frame() {
        let one = vec![face(0.0, 0.0, 10.0, 0.9)];
        let mut frames = vec![one.clone(); FRAMES];
        assert_eq!(gate(&frames).map(|f| f.len()), Ok(FRAMES));
        frames[2] = vec![];
        assert_eq!(gate(&frames), Err(Refusal::NoFace { frame: 2 }));
        let other = face(200.0, 0.0, 10.0, 0.8);
        frames[2] = vec![one[0], other];
        let refused = gate(&frames).expect_err("two faces");
        assert_eq!(refused.code(), "multiple-faces");
        assert!(refused.to_string().contains("frame 2 shows 2 faces"));
        // A weak or much smaller second detection is not a second person.
        frames[2] = vec![one[0], face(200.0, 0.0, 10.0, 0.6)];
        assert!(gate(&frames).is_ok());
        frames[2] = vec![one[0], face(200.0, 0.0, 4.0, 0.85)];
        assert!(gate(&frames).is_ok());
    }
}
