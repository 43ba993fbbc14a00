//! The head-pose challenge on frames: the face detector on every frame of the track, the
//! one-face rule per frame, then `liveness-core`'s checks ([`liveness_core::challenge`]) — the
//! same code in the browser (to prompt the user) and on the server (to decide).

use liveness_core::Frame;
use liveness_core::challenge::{
    Challenge, ChallengeFailure, ChallengeReport, TrackFrame, check_track, distinct_frames,
};
use liveness_core::face::{FaceBox, people};

use crate::detector::FaceDetector;
use crate::error::Result;

/// Face boxes of frames of different sizes are compared at this common width (pixels).
pub const TRACK_WIDTH: f32 = 320.0;

/// `face` in the coordinates of a frame `width` pixels wide scaled to [`TRACK_WIDTH`].
pub fn to_track_scale(face: &FaceBox, width: u32) -> FaceBox {
    let s = TRACK_WIDTH / width.max(1) as f32;
    FaceBox {
        x: face.x * s,
        y: face.y * s,
        width: face.width * s,
        height: face.height * s,
        score: face.score,
        keypoints: face.keypoints.map(|[x, y]| [x * s, y * s]),
    }
}

/// The faces of a track: one per frame, at the track's scale; a frame without exactly one
/// person breaks the track.
pub fn track_faces(
    detector: &FaceDetector,
    frames: &[Frame<'_>],
) -> Result<std::result::Result<Vec<FaceBox>, ChallengeFailure>> {
    let mut faces = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let found = people(&detector.detect(*frame, i)?);
        match found.as_slice() {
            [one] => faces.push(to_track_scale(one, frame.width)),
            other => {
                return Ok(Err(ChallengeFailure::Discontinuous {
                    frame: i,
                    why: format!("{} faces; the track needs exactly one", other.len()),
                }));
            }
        }
    }
    Ok(Ok(faces))
}

/// Checks a challenge's track: frames (in order, any sizes up to the limits), their capture
/// times (ms, the client's clock) and, on the server, the time it measured itself. `Err` is a
/// frame the detector cannot read; `Ok(Err(_))` is a failed challenge.
pub fn check_challenge(
    detector: &FaceDetector,
    challenge: &Challenge,
    frames: &[Frame<'_>],
    times_ms: &[f64],
    elapsed_ms: Option<f64>,
) -> Result<std::result::Result<ChallengeReport, ChallengeFailure>> {
    if let Err(repeated) = distinct_frames(frames) {
        return Ok(Err(repeated));
    }
    let faces = match track_faces(detector, frames)? {
        Ok(f) => f,
        Err(broken) => return Ok(Err(broken)),
    };
    let track: Vec<TrackFrame> = faces
        .into_iter()
        .zip(times_ms)
        .map(|(face, &t_ms)| TrackFrame { t_ms, face })
        .collect();
    Ok(check_track(challenge, &track, elapsed_ms))
}
