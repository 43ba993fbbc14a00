//! The head-pose challenge: a short random sequence of head poses (centre → left → right →
//! centre…) that the server draws per session, the user performs on camera, and the browser and
//! the server check alike from the face detector's six key points:
//!
//! - **pose** ([`pose`]): where the nose tip sits in the frame spanned by the eyes and the mouth.
//!   A head turns in 3-D, so its nose moves against the eyes (yaw) and along the eye–mouth axis
//!   (pitch); a flat picture turned or tilted keeps that position (an affine map keeps ratios), so
//!   it never reaches a step;
//! - **steps** ([`Tracker`]): each step of the challenge is reached and held, in order;
//! - **depth** ([`depth`]): six key points of a flat picture in two poses are related by one
//!   homography; a head's are not (the nose is in front of the eyes, the ears behind);
//! - **continuity** ([`check_track`]): one face that moves smoothly from frame to frame, with
//!   the face's proportions kept, so pictures of several people or poses cannot be swapped in.
//!
//! Frame-level checks that need pixels (repeated frames) are in [`distinct_frames`].
//! Every threshold here was measured on rendered heads and flat pictures
//! (`scripts/challenge-evidence.py`; figures in the README).

use serde::{Deserialize, Serialize};

use crate::Frame;
use crate::face::FaceBox;

/// The head poses a challenge asks for. `Left` and `Right` are the user's own left and right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Face the camera.
    Centre,
    /// Turn the head to the user's left.
    Left,
    /// Turn the head to the user's right.
    Right,
    /// Tilt the head up.
    Up,
    /// Tilt the head down.
    Down,
}

impl Step {
    /// Every turn a challenge may ask for.
    pub const TURNS: [Step; 4] = [Step::Left, Step::Right, Step::Up, Step::Down];

    /// The turns [`Challenge::draw`] draws from. `down` is left out: on the rendered heads it
    /// was the step the detector's key points measure least (report split, heads turning
    /// 22–32°: 11 of 18 challenges with a `down` passed, 17 of 22 without), and on drawn
    /// heads it barely moves the nose. A fixed challenge may still ask for it.
    pub const DRAWN: [Step; 3] = [Step::Left, Step::Right, Step::Up];

    /// The step's code (the widget keys its texts by it).
    pub fn code(self) -> &'static str {
        match self {
            Step::Centre => "centre",
            Step::Left => "left",
            Step::Right => "right",
            Step::Up => "up",
            Step::Down => "down",
        }
    }

    /// Whether `pose` (relative to the user's own centre, [`Pose::relative_to`]) is this step.
    pub fn reached(self, p: Pose) -> bool {
        match self {
            Step::Centre => p.yaw.abs() <= CENTRE_YAW && p.pitch.abs() <= CENTRE_PITCH,
            Step::Left => p.yaw >= TURN_YAW,
            Step::Right => p.yaw <= -TURN_YAW,
            Step::Up => p.pitch <= -TURN_PITCH,
            Step::Down => p.pitch >= TURN_PITCH,
        }
    }
}

// The pose thresholds were chosen on the `tune` split of the rendered evidence (subjects
// 0001–0004: 32 heads, 96 flat pictures) as the best margin between heads passing and flat
// pictures passing; `scripts/challenge-evidence.py` and the README have the figures.

/// Back at the centre, the nose lies at most this far (eye distances) from where it was in the
/// user's first frame, across the face…
pub const CENTRE_YAW: f32 = 0.12;
/// …and at most this far (eye–mouth distances) along it.
pub const CENTRE_PITCH: f32 = 0.08;
/// A turn left or right moves the nose at least this far across the face (eye distances; heads
/// turned 22–32° reach 0.22–0.35).
pub const TURN_YAW: f32 = 0.20;
/// A tilt up or down moves the nose at least this far along the face (eye–mouth distances).
pub const TURN_PITCH: f32 = 0.10;
/// A step is reached when this many frames in a row show it.
pub const HOLD_FRAMES: usize = 2;
/// The least time a step takes (turning and holding), ms; the server measures it itself.
pub const MIN_STEP_MS: u32 = 300;
/// The most time the widget gives one step, ms.
pub const STEP_TIMEOUT_MS: u32 = 6000;
/// Steps in a challenge (the first and the last are always centre).
pub const STEPS: std::ops::RangeInclusive<usize> = 3..=6;
/// Most frames a challenge's track may have (the widget looks about five times a second: 20 s).
/// With the five frames, a verify stays within the server's body limit.
pub const MAX_TRACK_FRAMES: usize = 100;
/// Widest or tallest challenge frame, pixels: the detector sees 128 × 128, so 320 loses
/// nothing it could use.
pub const MAX_TRACK_SIDE: u32 = 320;
/// Between two frames of the track the face's centre moves at most this many face widths…
pub const MAX_JUMP: f32 = 0.5;
/// …its width changes by at most this factor…
pub const MAX_SCALE_STEP: f32 = 1.3;
/// …and at most this much time passes, ms.
pub const MAX_GAP_MS: f64 = 1500.0;
/// The face's proportions (eye–mouth over eye distance, frontal frames) stay within this factor
/// of the first frames' (another person's face differs).
pub const MAX_PROPORTION_CHANGE: f32 = 1.25;
/// Two frames whose mean absolute difference is below this (0–255) are the same picture: a
/// camera's own noise is larger.
pub const MIN_FRAME_DIFFERENCE: f32 = 0.3;
/// Median homography residual (in eye distances) of the turned frames below which the face is
/// flat ([`depth`]). The rendered heads of the `tune` split scored 0.071 to 0.249; a
/// flat picture whose key points the detector places consistently scores its noise
/// (live five-frame samples of small motion: median 0.011).
pub const MIN_DEPTH: f32 = 0.05;

/// A challenge: the steps to perform, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Challenge(Vec<Step>);

/// Why a challenge or its track is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ChallengeFailure {
    /// The steps were not all performed in order.
    #[error("step {step} ({expected}) was not reached and held: {why}")]
    ChallengeFailed {
        /// Which step (0-based).
        step: usize,
        /// Its code.
        expected: &'static str,
        /// What was seen instead.
        why: String,
    },
    /// The face moved as a flat picture does.
    #[error("the face moved as a flat picture does: depth {depth:.3} < {min:.3} eye distances")]
    Flat {
        /// The measured depth.
        depth: f32,
        /// The least depth of a head.
        min: f32,
    },
    /// The track broke: another face, a jump, a gap.
    #[error("frame {frame}: {why}")]
    Discontinuous {
        /// Which frame of the track (0-based).
        frame: usize,
        /// What broke.
        why: String,
    },
    /// Two frames are the same picture.
    #[error("frames {first} and {second} are the same picture")]
    RepeatedFrames {
        /// The earlier frame.
        first: usize,
        /// The later frame.
        second: usize,
    },
    /// Faster than a person can perform the steps.
    #[error("the challenge took {took_ms:.0} ms; {steps} steps take at least {min_ms} ms")]
    TooFast {
        /// The time it took.
        took_ms: f64,
        /// The least time.
        min_ms: u32,
        /// Its steps.
        steps: usize,
    },
}

impl ChallengeFailure {
    /// Every failure's code.
    pub const CODES: [&'static str; 5] = [
        "challenge-failed",
        "flat",
        "discontinuous",
        "repeated-frames",
        "too-fast",
    ];

    /// The stable code (`challenge-failed`, `flat`, `discontinuous`, `repeated-frames`,
    /// `too-fast`), as results, events and tokens report it.
    pub fn code(&self) -> &'static str {
        match self {
            ChallengeFailure::ChallengeFailed { .. } => "challenge-failed",
            ChallengeFailure::Flat { .. } => "flat",
            ChallengeFailure::Discontinuous { .. } => "discontinuous",
            ChallengeFailure::RepeatedFrames { .. } => "repeated-frames",
            ChallengeFailure::TooFast { .. } => "too-fast",
        }
    }
}

impl Challenge {
    /// Draws a challenge: centre, two or three turns of [`Step::DRAWN`] (no turn twice in a
    /// row), centre: 18 different challenges.
    /// `random(n)` returns a uniform integer in `0..n` (the caller's generator: the server's
    /// CSPRNG, the browser's `crypto.getRandomValues`).
    pub fn draw(mut random: impl FnMut(u32) -> u32) -> Challenge {
        let turns = 2 + random(2) as usize;
        let mut steps = vec![Step::Centre];
        let mut last = None;
        for _ in 0..turns {
            let options: Vec<Step> = Step::DRAWN
                .into_iter()
                .filter(|s| Some(*s) != last)
                .collect();
            let pick = options[random(options.len() as u32) as usize % options.len()];
            steps.push(pick);
            last = Some(pick);
        }
        steps.push(Step::Centre);
        Challenge(steps)
    }

    /// A given challenge, checked: [`STEPS`] steps, centre first and last, no step twice in a row.
    pub fn new(steps: Vec<Step>) -> Result<Challenge, String> {
        if !STEPS.contains(&steps.len()) {
            return Err(format!(
                "{} steps; a challenge has {} to {}",
                steps.len(),
                STEPS.start(),
                STEPS.end()
            ));
        }
        if steps.first() != Some(&Step::Centre) || steps.last() != Some(&Step::Centre) {
            return Err("a challenge starts and ends with centre".into());
        }
        if let Some(w) = steps.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{} twice in a row", w[0].code()));
        }
        Ok(Challenge(steps))
    }

    /// Parses `centre,left,right,centre`.
    pub fn parse(text: &str) -> Result<Challenge, String> {
        let steps = text
            .split(',')
            .map(|s| match s.trim() {
                "centre" | "center" => Ok(Step::Centre),
                "left" => Ok(Step::Left),
                "right" => Ok(Step::Right),
                "up" => Ok(Step::Up),
                "down" => Ok(Step::Down),
                other => Err(format!(
                    "unknown step {other:?} (centre, left, right, up, down)"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Challenge::new(steps)
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The least time the whole challenge takes, ms.
    pub fn min_ms(&self) -> u32 {
        self.0.len() as u32 * MIN_STEP_MS
    }
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let codes: Vec<&str> = self.0.iter().map(|s| s.code()).collect();
        f.write_str(&codes.join(","))
    }
}

/// A head's pose from the face detector's key points: `yaw`, the nose tip's offset from the
/// eyes' midpoint along the eye line, in eye distances (positive: towards the person's left
/// eye, i.e. the head turned to the person's left); `pitch`, the nose tip's position along the
/// face from the eye line (0) to the mouth (1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// Nose offset along the eye line, eye distances.
    pub yaw: f32,
    /// Nose position from the eyes (0) to the mouth (1).
    pub pitch: f32,
}

impl Pose {
    /// This pose against the user's own centre (their first frame): faces and cameras differ
    /// in where the nose sits when the user feels they face the camera (measured on rendered
    /// heads: up to 0.16 eye distances beside the eyes' midpoint).
    pub fn relative_to(self, centre: Pose) -> Pose {
        Pose {
            yaw: self.yaw - centre.yaw,
            pitch: self.pitch - centre.pitch,
        }
    }
}

/// The key points the checks use (BlazeFace's order).
const RIGHT_EYE: usize = 0;
const LEFT_EYE: usize = 1;
const NOSE: usize = 2;
const MOUTH: usize = 3;

fn sub(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [a[0] - b[0], a[1] - b[1]]
}

fn dot(a: [f32; 2], b: [f32; 2]) -> f32 {
    a[0] * b[0] + a[1] * b[1]
}

/// The eye distance, pixels.
fn eye_distance(face: &FaceBox) -> f32 {
    let e = sub(face.keypoints[LEFT_EYE], face.keypoints[RIGHT_EYE]);
    dot(e, e).sqrt()
}

/// The pose of `face`; `None` when its key points are degenerate (eyes on one point, mouth on
/// the eye line).
pub fn pose(face: &FaceBox) -> Option<Pose> {
    let k = &face.keypoints;
    let iod = eye_distance(face);
    if !(iod.is_finite() && iod >= 1.0) {
        return None;
    }
    let across = sub(k[LEFT_EYE], k[RIGHT_EYE]).map(|v| v / iod);
    let down = [-across[1], across[0]];
    let mid = [
        (k[LEFT_EYE][0] + k[RIGHT_EYE][0]) / 2.0,
        (k[LEFT_EYE][1] + k[RIGHT_EYE][1]) / 2.0,
    ];
    let nose = sub(k[NOSE], mid);
    let mouth = dot(sub(k[MOUTH], mid), down);
    if !(mouth.is_finite() && mouth >= 0.25 * iod) {
        return None;
    }
    Some(Pose {
        yaw: dot(nose, across) / iod,
        pitch: dot(nose, down) / mouth,
    })
}

/// The face's proportions: eye–mouth distance over eye distance.
fn proportion(face: &FaceBox) -> f32 {
    let k = &face.keypoints;
    let mid = [
        (k[LEFT_EYE][0] + k[RIGHT_EYE][0]) / 2.0,
        (k[LEFT_EYE][1] + k[RIGHT_EYE][1]) / 2.0,
    ];
    let m = sub(k[MOUTH], mid);
    dot(m, m).sqrt() / eye_distance(face)
}

/// Follows a challenge frame by frame: which step is due, and when each was reached. The widget
/// drives its prompts with it; [`check_track`] replays the whole track with it.
#[derive(Debug, Clone)]
pub struct Tracker {
    challenge: Challenge,
    centre: Option<Pose>,
    step: usize,
    held: usize,
    frames: usize,
    /// Frames in a row at a turn that is neither due nor the one just done.
    astray_held: usize,
    /// That turn, once held for [`HOLD_FRAMES`]: the challenge failed.
    astray: Option<Step>,
}

/// Where a [`Tracker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The step due (0-based); equal to the number of steps when all are done.
    pub step: usize,
    /// The steps in all.
    pub steps: usize,
    /// The step due (`None` when done).
    pub due: Option<Step>,
    /// The pose of the last frame against the user's centre (`None`: no usable face).
    pub pose: Option<Pose>,
    /// Every step was reached and held.
    pub done: bool,
    /// A turn that was neither due nor just done, held: the challenge failed (a recording that
    /// turns every way would otherwise contain, in order, the steps of many challenges).
    pub astray: Option<Step>,
}

impl Tracker {
    /// A tracker at the first step.
    pub fn new(challenge: Challenge) -> Tracker {
        Tracker {
            challenge,
            centre: None,
            step: 0,
            held: 0,
            frames: 0,
            astray_held: 0,
            astray: None,
        }
    }

    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Feeds the next frame's face (`None`: no single face in it).
    pub fn push(&mut self, face: Option<&FaceBox>) -> Progress {
        self.frames += 1;
        let raw = face.and_then(pose);
        // The user's centre: their first frame with a usable face (the widget starts a challenge
        // only with a well-placed face, and the first step is always centre).
        if self.centre.is_none() {
            self.centre = raw;
        }
        let relative = match (raw, self.centre) {
            (Some(p), Some(c)) => Some(p.relative_to(c)),
            _ => None,
        };
        let steps = self.challenge.0.len();
        // A drawable turn held that is neither due nor the step just done fails the challenge
        // for good: the steps must be performed in order and nothing else performed between.
        if let (Some(p), Some(&due), None) =
            (relative, self.challenge.0.get(self.step), self.astray)
        {
            let previous = self.step.checked_sub(1).map(|i| self.challenge.0[i]);
            let turned = Step::DRAWN
                .into_iter()
                .find(|t| *t != due && Some(*t) != previous && t.reached(p));
            self.astray_held = if turned.is_some() {
                self.astray_held + 1
            } else {
                0
            };
            if self.astray_held >= HOLD_FRAMES {
                self.astray = turned;
            }
        }
        if self.astray.is_some() {
            self.held = 0;
        } else if let (Some(p), Some(&due)) = (relative, self.challenge.0.get(self.step)) {
            if due.reached(p) {
                self.held += 1;
                if self.held >= HOLD_FRAMES {
                    self.step += 1;
                    self.held = 0;
                }
            } else {
                self.held = 0;
            }
        } else {
            self.held = 0;
        }
        Progress {
            step: self.step,
            steps,
            due: self.challenge.0.get(self.step).copied(),
            pose: relative,
            done: self.step >= steps && self.astray.is_none(),
            astray: self.astray,
        }
    }
}

/// One frame of a challenge's track: when it was taken (ms, the client's clock) and its one
/// face, in the frame's pixels scaled to a common width (see [`FaceBox`] scaling by the caller).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackFrame {
    /// Capture time, ms.
    pub t_ms: f64,
    /// The face.
    pub face: FaceBox,
}

/// What a passed challenge measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeReport {
    /// Frames in the track.
    pub frames: usize,
    /// The track's span, ms.
    pub span_ms: f64,
    /// The measured depth ([`depth`]).
    pub depth: f32,
}

/// Checks a whole track against `challenge`: continuity (one face moving smoothly, its
/// proportions kept, time going forward without long gaps), the steps in order, the least time,
/// and depth. `faces` holds the one face of each frame, or `None` where the gate found none or
/// several; `elapsed_ms`, when given, is the time the server itself measured for the session,
/// which the track's span may not exceed.
pub fn check_track(
    challenge: &Challenge,
    track: &[TrackFrame],
    elapsed_ms: Option<f64>,
) -> Result<ChallengeReport, ChallengeFailure> {
    let broken = |frame: usize, why: String| ChallengeFailure::Discontinuous { frame, why };
    let first = track
        .first()
        .ok_or_else(|| broken(0, "the track is empty".into()))?;
    let centre = track.iter().find_map(|f| pose(&f.face));
    let frontal = |face: &FaceBox| matches!((pose(face), centre), (Some(p), Some(c)) if Step::Centre.reached(p.relative_to(c)));
    let reference = track
        .iter()
        .find(|f| frontal(&f.face))
        .map(|f| proportion(&f.face));
    for (i, pair) in track.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        let gap = b.t_ms - a.t_ms;
        if !(gap > 0.0 && gap <= MAX_GAP_MS) {
            return Err(broken(
                i + 1,
                format!("{gap:.0} ms after the previous frame (0 to {MAX_GAP_MS} ms)"),
            ));
        }
        let width = (a.face.width + b.face.width) / 2.0;
        let jump = ((b.face.centre_x() - a.face.centre_x()).powi(2)
            + (b.face.centre_y() - a.face.centre_y()).powi(2))
        .sqrt()
            / width;
        let scale = (b.face.width / a.face.width).max(a.face.width / b.face.width);
        if !(jump <= MAX_JUMP && scale <= MAX_SCALE_STEP) {
            return Err(broken(
                i + 1,
                format!(
                    "the face jumped {jump:.2} face widths and scaled {scale:.2}× since the previous frame (at most {MAX_JUMP} and {MAX_SCALE_STEP}×)"
                ),
            ));
        }
    }
    if let Some(reference) = reference {
        for (i, f) in track.iter().enumerate() {
            if frontal(&f.face) {
                let r = proportion(&f.face) / reference;
                if !(1.0 / MAX_PROPORTION_CHANGE..=MAX_PROPORTION_CHANGE).contains(&r) {
                    return Err(broken(
                        i,
                        format!(
                            "the face's proportions changed {r:.2}× from the first frontal frame: another face"
                        ),
                    ));
                }
            }
        }
    }
    let mut tracker = Tracker::new(challenge.clone());
    let mut last = None;
    for f in track {
        last = Some(tracker.push(Some(&f.face)));
    }
    let progress = last.ok_or_else(|| broken(0, "the track is empty".into()))?;
    if let (Some(turned), Some(due)) = (progress.astray, progress.due) {
        return Err(ChallengeFailure::ChallengeFailed {
            step: progress.step,
            expected: due.code(),
            why: format!("the head turned {} instead", turned.code()),
        });
    }
    if !progress.done {
        let expected = progress.due.map_or("centre", Step::code);
        let seen = match progress.pose {
            Some(p) => format!(
                "the last frame's pose is yaw {:.2}, pitch {:.2}",
                p.yaw, p.pitch
            ),
            None => "no usable face in the last frame".into(),
        };
        return Err(ChallengeFailure::ChallengeFailed {
            step: progress.step,
            expected,
            why: seen,
        });
    }
    let span_ms = track.last().map_or(0.0, |l| l.t_ms) - first.t_ms;
    let took = elapsed_ms.map_or(span_ms, |e| e.min(span_ms));
    if elapsed_ms.is_some_and(|e| span_ms > e + 1.0) || took < f64::from(challenge.min_ms()) {
        return Err(ChallengeFailure::TooFast {
            took_ms: took,
            min_ms: challenge.min_ms(),
            steps: challenge.steps().len(),
        });
    }
    let depth = depth(track);
    // A NaN depth is flat too.
    if depth.is_nan() || depth < MIN_DEPTH {
        return Err(ChallengeFailure::Flat {
            depth,
            min: MIN_DEPTH,
        });
    }
    Ok(ChallengeReport {
        frames: track.len(),
        span_ms,
        depth,
    })
}

/// How far the face's six key points are from moving as one plane: for each turned frame, the
/// root-mean-square residual (in that frame's eye distances) of the best homography from the
/// first frontal frame's key points to its own; the median over the turned frames. A flat
/// picture, however turned, tilted or moved, scores its detector noise; a head scores its nose
/// and ears moving against its eyes and mouth. 0 when no frame is turned.
pub fn depth(track: &[TrackFrame]) -> f32 {
    let Some((centre, c)) = track.iter().find_map(|f| pose(&f.face).map(|p| (f, p))) else {
        return 0.0;
    };
    let mut residuals: Vec<f32> = track
        .iter()
        .filter(|f| {
            pose(&f.face).is_some_and(|p| {
                let r = p.relative_to(c);
                r.yaw.abs() >= TURN_YAW || r.pitch.abs() >= TURN_PITCH
            })
        })
        .filter_map(|f| {
            homography_residual(&centre.face.keypoints, &f.face.keypoints)
                .map(|r| r / eye_distance(&f.face).max(1.0))
        })
        .collect();
    if residuals.is_empty() {
        return 0.0;
    }
    residuals.sort_by(f32::total_cmp);
    residuals[residuals.len() / 2]
}

/// Root-mean-square distance (pixels of `to`) between `to` and `from` mapped by the least-squares
/// homography from `from` to `to` (points normalised first, as Hartley recommends); `None` when
/// the points are degenerate.
pub fn homography_residual(from: &[[f32; 2]; 6], to: &[[f32; 2]; 6]) -> Option<f32> {
    let norm = |pts: &[[f32; 2]; 6]| -> Option<([[f64; 2]; 6], f64, [f64; 2])> {
        let n = pts.len() as f64;
        let c = [
            pts.iter().map(|p| f64::from(p[0])).sum::<f64>() / n,
            pts.iter().map(|p| f64::from(p[1])).sum::<f64>() / n,
        ];
        let spread = pts
            .iter()
            .map(|p| (f64::from(p[0]) - c[0]).hypot(f64::from(p[1]) - c[1]))
            .sum::<f64>()
            / n;
        if !(spread.is_finite() && spread > 1e-6) {
            return None;
        }
        let s = std::f64::consts::SQRT_2 / spread;
        Some((
            pts.map(|p| [(f64::from(p[0]) - c[0]) * s, (f64::from(p[1]) - c[1]) * s]),
            s,
            c,
        ))
    };
    let (a, _, _) = norm(from)?;
    let (b, sb, _) = norm(to)?;
    // h = (h11..h32), h33 = 1: two equations per point, least squares via the normal equations.
    let mut ata = [[0.0f64; 8]; 8];
    let mut atb = [0.0f64; 8];
    for (p, q) in a.iter().zip(&b) {
        let (x, y, u, v) = (p[0], p[1], q[0], q[1]);
        for (row, rhs) in [
            ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
            ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
        ] {
            for i in 0..8 {
                atb[i] += row[i] * rhs;
                for j in 0..8 {
                    ata[i][j] += row[i] * row[j];
                }
            }
        }
    }
    let h = solve8(ata, atb)?;
    let sq: f64 = a
        .iter()
        .zip(&b)
        .map(|(p, q)| {
            let w = h[6] * p[0] + h[7] * p[1] + 1.0;
            let u = (h[0] * p[0] + h[1] * p[1] + h[2]) / w;
            let v = (h[3] * p[0] + h[4] * p[1] + h[5]) / w;
            (u - q[0]).powi(2) + (v - q[1]).powi(2)
        })
        .sum();
    let rms = (sq / a.len() as f64).sqrt() / sb;
    rms.is_finite().then_some(rms as f32)
}

/// Solves an 8 × 8 system by Gaussian elimination with partial pivoting; `None` when singular.
fn solve8(mut m: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = m[col];
        for row in col + 1..8 {
            let f = m[row][col] / pivot_row[col];
            for (v, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| m[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / m[row][row];
    }
    Some(x)
}

/// Refuses a track in which two frames are the same picture: byte-identical, or (neighbours)
/// differing by less than [`MIN_FRAME_DIFFERENCE`] on average — a camera's sensor noise alone
/// differs more. Frames of different sizes are different pictures.
pub fn distinct_frames(frames: &[Frame<'_>]) -> Result<(), ChallengeFailure> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    let mut seen: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        let digest: [u8; 32] = Sha256::digest(f.pixels).into();
        if let Some(&first) = seen.get(&digest) {
            return Err(ChallengeFailure::RepeatedFrames { first, second: i });
        }
        seen.insert(digest, i);
    }
    for (i, pair) in frames.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        if a.pixels.len() != b.pixels.len() || (a.width, a.height) != (b.width, b.height) {
            continue;
        }
        // Every 7th byte: enough samples to see noise, cheap on large frames.
        let (sum, n) = a
            .pixels
            .iter()
            .zip(b.pixels)
            .step_by(7)
            .fold((0u64, 0u64), |(s, n), (x, y)| {
                (s + u64::from(x.abs_diff(*y)), n + 1)
            });
        if n > 0 && (sum as f32 / n as f32) < MIN_FRAME_DIFFERENCE {
            return Err(ChallengeFailure::RepeatedFrames {
                first: i,
                second: i + 1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face_with(keypoints: [[f32; 2]; 6]) -> FaceBox {
        FaceBox {
            x: 100.0,
            y: 80.0,
            width: 100.0,
            height: 100.0,
            score: 0.9,
            keypoints,
        }
    }

    /// A generic head's key points (face widths; x right, y down, z towards the camera) turned
    /// by `yaw` radians and seen orthographically at 100 pixels per unit.
    fn head(yaw: f32) -> FaceBox {
        let points: [[f32; 3]; 6] = [
            [-0.2, -0.1, 0.45],
            [0.2, -0.1, 0.45],
            [0.0, 0.08, 0.62],
            [0.0, 0.3, 0.48],
            [-0.48, 0.0, 0.0],
            [0.48, 0.0, 0.0],
        ];
        face_with(points.map(|[x, y, z]| {
            [
                150.0 + 100.0 * (x * yaw.cos() + z * yaw.sin()),
                130.0 + 100.0 * y,
            ]
        }))
    }

    #[test]
    fn drawn_challenges_are_valid_and_vary() {
        let mut state = 12345u64;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = Challenge::draw(|n| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % u64::from(n)) as u32
            });
            let again = Challenge::parse(&c.to_string()).expect("a drawn challenge parses");
            assert_eq!(again, c);
            assert!(c.steps().len() == 4 || c.steps().len() == 5, "{c}");
            seen.insert(c.to_string());
        }
        assert_eq!(seen.len(), 18, "{seen:?}");
        for bad in [
            "left,centre",
            "centre,left,left,centre",
            "centre,sideways,centre",
            "centre,left,right",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_head_turned_to_its_left_has_positive_yaw_and_a_picture_keeps_its_pose() {
        let front = pose(&head(0.0)).expect("pose");
        let left = pose(&head(0.5)).expect("pose");
        let right = pose(&head(-0.5)).expect("pose");
        assert!(front.yaw.abs() < 1e-4, "{front:?}");
        assert!(
            left.yaw >= TURN_YAW && right.yaw <= -TURN_YAW,
            "{left:?} {right:?}"
        );
        // The frontal key points on a picture turned by 0.5 rad: x foreshortened, nothing else.
        let picture = face_with(
            head(0.0)
                .keypoints
                .map(|[x, y]| [150.0 + (x - 150.0) * 0.5f32.cos(), y]),
        );
        let p = pose(&picture).expect("pose");
        assert!((p.yaw - front.yaw).abs() < 1e-4, "{p:?}");
        assert!(
            pose(&face_with([[10.0, 10.0]; 6])).is_none(),
            "degenerate key points"
        );
    }

    #[test]
    fn a_homography_explains_a_plane_but_not_a_head() {
        let from = head(0.0).keypoints;
        let h = [
            [1.1f32, 0.1, 5.0],
            [-0.05, 0.95, 3.0],
            [0.0004, -0.0002, 1.0],
        ];
        let to = from.map(|[x, y]| {
            let w = h[2][0] * x + h[2][1] * y + h[2][2];
            [
                (h[0][0] * x + h[0][1] * y + h[0][2]) / w,
                (h[1][0] * x + h[1][1] * y + h[1][2]) / w,
            ]
        });
        let flat = homography_residual(&from, &to).expect("residual");
        assert!(flat < 1e-3, "a plane: {flat}");
        let turned = homography_residual(&from, &head(0.5).keypoints).expect("residual");
        assert!(
            turned / 40.0 > MIN_DEPTH,
            "a head: {turned} px over an eye distance of 40 px"
        );
        assert!(homography_residual(&from, &[[1.0, 1.0]; 6]).is_none());
    }

    #[test]
    fn each_step_is_reached_by_its_own_pose_only() {
        let at = |yaw: f32, pitch: f32| Pose { yaw, pitch };
        let cases = [
            (at(0.0, 0.0), Step::Centre),
            (at(0.3, 0.0), Step::Left),
            (at(-0.3, 0.0), Step::Right),
            (at(0.0, -0.2), Step::Up),
            (at(0.0, 0.2), Step::Down),
        ];
        for (pose, step) in cases {
            for other in [Step::Centre, Step::Left, Step::Right, Step::Up, Step::Down] {
                assert_eq!(other.reached(pose), other == step, "{other:?} at {pose:?}");
            }
        }
        // Just short of each threshold is not the step, nor the centre.
        assert!(!Step::Left.reached(at(TURN_YAW - 0.01, 0.0)));
        assert!(!Step::Right.reached(at(0.01 - TURN_YAW, 0.0)));
        assert!(!Step::Up.reached(at(0.0, 0.01 - TURN_PITCH)));
        assert!(!Step::Centre.reached(at(CENTRE_YAW + 0.01, 0.0)));
    }

    /// A performance that contains the challenge's steps in order but turns another way first
    /// fails (a recording turning every way would otherwise pass many challenges); the same
    /// steps without the stray turn pass, and lingering at the step just done is no stray.
    #[test]
    fn a_turn_neither_due_nor_just_done_fails_the_challenge() {
        let centre = pose(&head(0.0)).expect("a pose");
        let turned = pose(&head(0.5)).expect("a pose").relative_to(centre);
        let first = [Step::Left, Step::Right]
            .into_iter()
            .find(|s| s.reached(turned))
            .expect("a yaw of 0.5 is a turn");
        let second = if first == Step::Left {
            Step::Right
        } else {
            Step::Left
        };
        let yaw = |s: Step| if s == first { 0.5 } else { -0.5 };
        let perform = |turns: &[Step]| {
            let mut faces = vec![head(0.0); 3];
            for t in turns {
                faces.extend([head(yaw(*t)); 4]);
                faces.extend([head(0.0); 3]);
            }
            faces
        };
        let run = |challenge: &[Step], faces: &[FaceBox]| {
            let mut tracker = Tracker::new(Challenge::new(challenge.to_vec()).expect("valid"));
            faces
                .iter()
                .map(|f| tracker.push(Some(f)))
                .last()
                .expect("frames")
        };
        let asked = [Step::Centre, first, second, Step::Centre];
        let honest = run(&asked, &perform(&[first, second]));
        assert!(honest.done && honest.astray.is_none(), "{honest:?}");
        // The asked steps, in order, inside a longer performance that starts with another turn.
        let replay = run(&asked, &perform(&[second, first, second]));
        assert!(!replay.done, "{replay:?}");
        assert_eq!(replay.astray, Some(second), "{replay:?}");
        assert_eq!((replay.step, replay.due), (1, Some(first)), "{replay:?}");
        // Holding the turn just done a little longer is not a stray turn.
        let mut lingering = perform(&[first]);
        lingering.truncate(lingering.len() - 3);
        lingering.extend([head(yaw(first)); 3]);
        lingering.extend(perform(&[second]).into_iter().skip(3));
        let lingered = run(&asked, &lingering);
        assert!(lingered.done, "{lingered:?}");
    }

    /// Key points that move as one plane can still shift the nose against the eyes (strong
    /// perspective of a tilted print): the steps pass, and depth alone refuses the track.
    #[test]
    fn a_track_that_one_homography_explains_is_flat() {
        // The homography taking the frontal eyes, nose and mouth to those of a head turned by
        // `yaw` (4 points fix it); the ears follow it, so all six move as one plane.
        let planar = |yaw: f32| {
            let (a, b) = (head(0.0).keypoints, head(yaw).keypoints);
            let mut m = [[0.0f64; 8]; 8];
            let mut r = [0.0f64; 8];
            for (k, i) in [0usize, 1, 2, 3].into_iter().enumerate() {
                let (x, y) = (f64::from(a[i][0]), f64::from(a[i][1]));
                let (u, v) = (f64::from(b[i][0]), f64::from(b[i][1]));
                m[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y];
                m[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y];
                r[2 * k] = u;
                r[2 * k + 1] = v;
            }
            let h = solve8(m, r).expect("four points in general position");
            face_with(a.map(|[x, y]| {
                let (x, y) = (f64::from(x), f64::from(y));
                let w = h[6] * x + h[7] * y + 1.0;
                [
                    ((h[0] * x + h[1] * y + h[2]) / w) as f32,
                    ((h[3] * x + h[4] * y + h[5]) / w) as f32,
                ]
            }))
        };
        let c = Challenge::parse("centre,left,right,centre").expect("challenge");
        let yaws = [0.0, 0.0, 0.6, 0.6, 0.6, -0.6, -0.6, -0.6, 0.0, 0.0, 0.0];
        let track_of = |face: &dyn Fn(f32) -> FaceBox| -> Vec<TrackFrame> {
            yaws.iter()
                .enumerate()
                .map(|(i, &yaw)| TrackFrame {
                    t_ms: i as f64 * 400.0,
                    face: face(yaw),
                })
                .collect()
        };
        let failure = check_track(&c, &track_of(&planar), None).expect_err("a plane is flat");
        assert!(
            matches!(failure, ChallengeFailure::Flat { .. }),
            "{failure}"
        );
        // The same moves by the head itself pass.
        let report = check_track(&c, &track_of(&head), None).expect("a head passes");
        assert!(report.depth >= MIN_DEPTH, "{report:?}");
    }

    #[test]
    fn the_tracker_needs_each_step_held_in_order() {
        let c = Challenge::parse("centre,left,right,centre").expect("challenge");
        let mut t = Tracker::new(c);
        let mut last = None;
        for yaw in [0.0, 0.0, 0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.0] {
            last = Some(t.push(Some(&head(yaw))));
        }
        let p = last.expect("progress");
        assert_eq!(
            (p.step, p.done),
            (3, false),
            "the last centre was seen once: {p:?}"
        );
        assert!(t.push(Some(&head(0.0))).done);
        // No face resets a hold.
        let mut t = Tracker::new(Challenge::parse("centre,left,centre").expect("challenge"));
        for face in [
            Some(head(0.0)),
            Some(head(0.0)),
            Some(head(0.5)),
            None,
            Some(head(0.5)),
        ] {
            last = Some(t.push(face.as_ref()));
        }
        assert_eq!(last.map(|p| p.step), Some(1));
    }
}
