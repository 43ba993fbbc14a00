//! Live guidance while the user frames their face: from the faces found in one preview frame,
//! what to tell them (no face, several faces, too far, too close, off-centre, too dark) or that
//! the face is well placed. The widget shows it; its `auto-capture` waits for a well-placed face
//! that holds still ([`steady`]).

use serde::{Deserialize, Serialize};

use super::FaceBox;
use crate::Frame;

/// A face narrower than this share of the frame's shorter side is too far away.
pub const MIN_FACE_SHARE: f32 = 0.2;
/// A face wider than this share of the frame's shorter side is too close.
pub const MAX_FACE_SHARE: f32 = 0.8;
/// The face's centre may be at most this share of the frame's shorter side from the frame's
/// centre.
pub const MAX_OFF_CENTRE: f32 = 0.2;
/// Mean luma (0–255, Rec. 601) of the face below which the picture is too dark.
pub const MIN_FACE_LUMA: f32 = 50.0;
/// Between two looks, a steady face moves its centre by at most this share of its width…
pub const STEADY_MOVE: f32 = 0.08;
/// …and changes its width by at most this share.
pub const STEADY_SCALE: f32 = 0.08;

/// What the user should do, or that all is well. The strings are the widget's guidance codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guidance {
    /// No face in view.
    NoFace,
    /// More than one face in view.
    MultipleFaces,
    /// Come closer.
    TooFar,
    /// Move back.
    TooClose,
    /// Centre the face.
    OffCentre,
    /// More light.
    TooDark,
    /// Well placed: ready to capture.
    Good,
}

impl Guidance {
    /// Every guidance, in the order the checks run.
    pub const ALL: [Guidance; 7] = [
        Guidance::NoFace,
        Guidance::MultipleFaces,
        Guidance::TooFar,
        Guidance::TooClose,
        Guidance::OffCentre,
        Guidance::TooDark,
        Guidance::Good,
    ];

    /// The code the widget keys its texts by.
    pub fn code(self) -> &'static str {
        match self {
            Guidance::NoFace => "no-face",
            Guidance::MultipleFaces => "multiple-faces",
            Guidance::TooFar => "too-far",
            Guidance::TooClose => "too-close",
            Guidance::OffCentre => "off-centre",
            Guidance::TooDark => "too-dark",
            Guidance::Good => "good",
        }
    }
}

/// Mean Rec. 601 luma of the pixels of `frame` inside `face` (sampled on a grid of at most
/// 32 × 32 points; 0 when the box lies outside the frame).
pub fn face_luma(frame: Frame<'_>, face: &FaceBox) -> f32 {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let x0 = face.x.clamp(0.0, w);
    let y0 = face.y.clamp(0.0, h);
    let x1 = (face.x + face.width).clamp(0.0, w);
    let y1 = (face.y + face.height).clamp(0.0, h);
    if !(x1 - x0 >= 1.0 && y1 - y0 >= 1.0) {
        return 0.0;
    }
    let channels = frame.layout.channels();
    let (mut sum, mut n) = (0.0f32, 0u32);
    for j in 0..32 {
        for i in 0..32 {
            let x = (x0 + (x1 - x0) * (i as f32 + 0.5) / 32.0) as usize;
            let y = (y0 + (y1 - y0) * (j as f32 + 0.5) / 32.0) as usize;
            let at = (y.min(frame.height as usize - 1) * frame.width as usize
                + x.min(frame.width as usize - 1))
                * channels;
            if let Some(p) = frame.pixels.get(at..at + 3) {
                sum += 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum / n as f32 }
}

/// The guidance for one preview frame and the faces found in it.
pub fn guide(frame: Frame<'_>, faces: &[FaceBox]) -> Guidance {
    let people = super::people(faces);
    let face = match people.as_slice() {
        [] => return Guidance::NoFace,
        [one] => one,
        _ => return Guidance::MultipleFaces,
    };
    let shorter = frame.width.min(frame.height) as f32;
    let share = face.width.max(face.height) / shorter;
    if share < MIN_FACE_SHARE {
        return Guidance::TooFar;
    }
    if share > MAX_FACE_SHARE {
        return Guidance::TooClose;
    }
    let dx = face.centre_x() - frame.width as f32 / 2.0;
    let dy = face.centre_y() - frame.height as f32 / 2.0;
    if (dx * dx + dy * dy).sqrt() > MAX_OFF_CENTRE * shorter {
        return Guidance::OffCentre;
    }
    if face_luma(frame, face) < MIN_FACE_LUMA {
        return Guidance::TooDark;
    }
    Guidance::Good
}

/// Whether a face seen twice in a row held still between the two looks.
pub fn steady(before: &FaceBox, now: &FaceBox) -> bool {
    let width = before.width.max(1.0);
    let moved = ((now.centre_x() - before.centre_x()).powi(2)
        + (now.centre_y() - before.centre_y()).powi(2))
    .sqrt();
    moved <= STEADY_MOVE * width && (now.width - before.width).abs() <= STEADY_SCALE * width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face_at(cx: f32, cy: f32, side: f32) -> FaceBox {
        FaceBox {
            x: cx - side / 2.0,
            y: cy - side / 2.0,
            width: side,
            height: side,
            score: 0.9,
            keypoints: [[cx, cy]; 6],
        }
    }

    #[test]
    fn each_guidance_from_its_situation() {
        let bright = vec![180u8; 320 * 240 * 3];
        let dark = vec![20u8; 320 * 240 * 3];
        let frame = Frame::rgb(&bright, 320, 240);
        let centred = face_at(160.0, 120.0, 100.0);
        assert_eq!(guide(frame, &[]), Guidance::NoFace);
        let beside = face_at(250.0, 120.0, 90.0);
        assert_eq!(guide(frame, &[centred, beside]), Guidance::MultipleFaces);
        assert_eq!(
            guide(frame, &[face_at(160.0, 120.0, 30.0)]),
            Guidance::TooFar
        );
        assert_eq!(
            guide(frame, &[face_at(160.0, 120.0, 220.0)]),
            Guidance::TooClose
        );
        assert_eq!(
            guide(frame, &[face_at(60.0, 120.0, 100.0)]),
            Guidance::OffCentre
        );
        assert_eq!(
            guide(Frame::rgb(&dark, 320, 240), &[centred]),
            Guidance::TooDark
        );
        assert_eq!(guide(frame, &[centred]), Guidance::Good);
        let codes: std::collections::BTreeSet<_> = Guidance::ALL.iter().map(|g| g.code()).collect();
        assert_eq!(codes.len(), Guidance::ALL.len());
    }

    #[test]
    fn steadiness_allows_jitter_not_movement() {
        let a = face_at(160.0, 120.0, 100.0);
        assert!(steady(&a, &face_at(163.0, 121.0, 102.0)));
        assert!(!steady(&a, &face_at(180.0, 120.0, 100.0)));
        assert!(!steady(&a, &face_at(160.0, 120.0, 120.0)));
    }

    #[test]
    fn luma_of_a_box_outside_the_frame_is_zero_not_a_panic() {
        let px = vec![255u8; 8 * 8 * 4];
        let frame = Frame::rgba(&px, 8, 8);
        assert_eq!(face_luma(frame, &face_at(-50.0, -50.0, 10.0)), 0.0);
        assert!((face_luma(frame, &face_at(4.0, 4.0, 8.0)) - 255.0).abs() < 1e-3);
        assert_eq!(face_luma(frame, &face_at(f32::NAN, 4.0, 8.0)), 0.0);
    }
}
