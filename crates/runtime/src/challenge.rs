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
    track_faces_with(detector, frames, &[])
}

/// [`track_faces`] with the faces of the last `known_tail.len()` frames already found (in frame
/// pixels, one person each: what the face gate passed), so that the server detects its five
/// passive frames once, for the model and the challenge alike.
pub fn track_faces_with(
    detector: &FaceDetector,
    frames: &[Frame<'_>],
    known_tail: &[FaceBox],
) -> Result<std::result::Result<Vec<FaceBox>, ChallengeFailure>> {
    let known_from = frames.len().saturating_sub(known_tail.len());
    let mut faces = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        if let Some(known) = i.checked_sub(known_from).and_then(|k| known_tail.get(k)) {
            faces.push(to_track_scale(known, frame.width));
            continue;
        }
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
/// times (ms, the client's clock) and, on the server, the time it measured itself;
/// `known_tail`: the faces of the last frames when already found ([`track_faces_with`]). `Err`
/// is a frame the detector cannot read; `Ok(Err(_))` is a failed challenge.
pub fn check_challenge(
    detector: &FaceDetector,
    challenge: &Challenge,
    frames: &[Frame<'_>],
    times_ms: &[f64],
    elapsed_ms: Option<f64>,
    known_tail: &[FaceBox],
) -> Result<std::result::Result<ChallengeReport, ChallengeFailure>> {
    if let Err(repeated) = distinct_frames(frames) {
        return Ok(Err(repeated));
    }
    let faces = match track_faces_with(detector, frames, known_tail)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::challenge::Step;
    use liveness_core::face::MIN_SCORE;
    use liveness_core::testing::{DrawnHead, WALL, draw_head, head_track, imitating_print};

    fn check(
        frames: &[Vec<u8>],
        times: &[f64],
        challenge: &Challenge,
    ) -> std::result::Result<ChallengeReport, ChallengeFailure> {
        let detector = FaceDetector::new(MIN_SCORE).expect("detector");
        let views: Vec<Frame<'_>> = frames.iter().map(|f| Frame::rgb(f, 320, 240)).collect();
        check_challenge(&detector, challenge, &views, times, None, &[]).expect("frames readable")
    }

    fn challenge() -> Challenge {
        Challenge::parse("centre,left,up,right,centre").expect("challenge")
    }

    /// A drawn head's poses, each with its noise seed ([`head_track`]).
    type Heads = Vec<(DrawnHead, u64)>;

    /// A drawn head performing `c` (seed 7, frames 200 ms apart): its poses, frames and times.
    fn performed(c: &Challenge) -> (Heads, Vec<Vec<u8>>, Vec<f64>) {
        let (heads, times) = head_track(c, 7, 200.0);
        let frames = heads
            .iter()
            .map(|(h, seed)| draw_head(320, 240, *h, WALL, *seed))
            .collect();
        (heads, frames, times)
    }

    #[test]
    fn a_drawn_head_performing_the_steps_passes_and_its_flat_picture_does_not() {
        let c = challenge();
        let (heads, frames, times) = performed(&c);
        let report = check(&frames, &times, &c).expect("a head performing the challenge passes");
        eprintln!("head: {report:?}");
        assert!(report.depth >= liveness_core::challenge::MIN_DEPTH);
        // The attacker's print of the first frame, turned and tilted just as the head was.
        let pictures: Vec<Vec<u8>> = heads
            .iter()
            .map(|(h, seed)| imitating_print(&frames[0], 320, 240, h, *seed))
            .collect();
        let failure = check(&pictures, &times, &c).expect_err("a turned picture fails");
        eprintln!("picture: {failure}");
        assert_eq!(failure.code(), "challenge-failed", "{failure}");
    }

    /// Faces already found for the last frames are used instead of detecting them again, and
    /// give the same verdict as detecting them.
    #[test]
    fn known_faces_of_the_last_frames_stand_in_for_detection() {
        let c = challenge();
        let (_, frames, times) = performed(&c);
        let detector = FaceDetector::new(MIN_SCORE).expect("detector");
        let views: Vec<Frame<'_>> = frames.iter().map(|f| Frame::rgb(f, 320, 240)).collect();
        let detected = track_faces(&detector, &views)
            .expect("readable")
            .expect("one face each");
        let tail: Vec<FaceBox> = detected[detected.len() - 5..].to_vec(); // 320 wide: same scale
        let known = track_faces_with(&detector, &views, &tail).expect("readable");
        assert_eq!(known.as_ref().ok(), Some(&detected));
        let report = |tail: &[FaceBox]| {
            check_challenge(&detector, &c, &views, &times, None, tail).expect("readable")
        };
        assert_eq!(report(&tail).ok(), report(&[]).ok());
        // Faces that are not the frames' own are taken as given: the track no longer holds.
        let far: Vec<FaceBox> = tail
            .iter()
            .map(|f| FaceBox {
                x: f.x + 150.0,
                ..*f
            })
            .collect();
        assert!(
            report(&far).is_err(),
            "a face jumping 150 px breaks the track"
        );
    }

    /// Every challenge a session can draw (18), performed by a drawn head: the server's tests
    /// with random challenges rely on it.
    #[test]
    fn a_drawn_head_performs_every_challenge_a_session_can_draw() {
        let mut seen = std::collections::BTreeSet::new();
        let mut state = 7u64;
        while seen.len() < 18 {
            let c = Challenge::draw(|n| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % u64::from(n)) as u32
            });
            if !seen.insert(c.to_string()) {
                continue;
            }
            let (heads, times) = head_track(&c, 11, 200.0);
            let frames: Vec<Vec<u8>> = heads
                .iter()
                .map(|(h, seed)| draw_head(320, 240, *h, WALL, *seed))
                .collect();
            if let Err(f) = check(&frames, &times, &c) {
                panic!("{c}: {f}");
            }
        }
    }

    #[test]
    fn wrong_order_too_fast_repeated_frames_and_another_face_fail() {
        let c = challenge();
        let (heads, times) = head_track(&c, 9, 200.0);
        let draw = |list: &[(liveness_core::testing::DrawnHead, u64)]| -> Vec<Vec<u8>> {
            list.iter()
                .map(|(h, seed)| draw_head(320, 240, *h, WALL, *seed))
                .collect()
        };
        let frames = draw(&heads);
        // The same moves for another challenge (right before left): not in order.
        let other = Challenge::new(vec![
            Step::Centre,
            Step::Right,
            Step::Up,
            Step::Left,
            Step::Centre,
        ])
        .expect("challenge");
        assert_eq!(
            check(&frames, &times, &other)
                .expect_err("wrong order")
                .code(),
            "challenge-failed"
        );
        // Every step at once: 40 ms between frames.
        let fast: Vec<f64> = (0..times.len()).map(|i| i as f64 * 40.0).collect();
        assert_eq!(
            check(&frames, &fast, &c).expect_err("too fast").code(),
            "too-fast"
        );
        // One frame sent twice.
        let mut repeated = frames.clone();
        repeated[5] = repeated[4].clone();
        assert_eq!(
            check(&repeated, &times, &c).expect_err("repeated").code(),
            "repeated-frames"
        );
        // Halfway, another (larger, higher) face takes over.
        let mut swapped = heads.clone();
        for (h, _) in swapped.iter_mut().skip(heads.len() / 2) {
            h.width *= 1.45;
            h.cy -= 30.0;
        }
        assert_eq!(
            check(&draw(&swapped), &times, &c)
                .expect_err("swapped")
                .code(),
            "discontinuous"
        );
    }
}
