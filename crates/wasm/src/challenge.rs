//! The head-pose challenge in the browser: a [`ChallengeTracker`] that the widget feeds with the
//! face of every look at the camera, to prompt the user step by step, and [`check_track`], the
//! whole check of `liveness-core` (the server's own rules) for the client-only mode.

use liveness_core::challenge::{
    Challenge, ChallengeFailure, Step, TrackFrame, Tracker, check_track,
};
use liveness_core::face::FaceBox;
use liveness_runtime::challenge::to_track_scale;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::error::{ErrorCode, LivenessError};
use crate::serialize;

fn bad(what: String) -> JsValue {
    LivenessError::new(ErrorCode::Frames, what).into()
}

/// A uniform integer in `0..n` from the browser's `crypto.getRandomValues`.
fn crypto_random(n: u32) -> u32 {
    let buf = js_sys::Uint32Array::new_with_length(1);
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let filled = crypto.and_then(|c| {
        let f = js_sys::Reflect::get(&c, &"getRandomValues".into()).ok()?;
        f.dyn_into::<js_sys::Function>().ok()?.call1(&c, &buf).ok()
    });
    let value = if filled.is_some() {
        buf.get_index(0)
    } else {
        (js_sys::Math::random() * f64::from(u32::MAX)) as u32
    };
    value % n.max(1)
}

fn parse_steps(steps: &[String]) -> Result<Challenge, JsValue> {
    Challenge::parse(&steps.join(",")).map_err(|e| bad(format!("challenge: {e}")))
}

/// Follows a challenge look by look.
#[wasm_bindgen]
pub struct ChallengeTracker {
    tracker: Tracker,
}

#[wasm_bindgen]
impl ChallengeTracker {
    /// A tracker for `steps` (e.g. the session's `["centre", "left", "right", "centre"]`), or for
    /// a challenge drawn here from `crypto.getRandomValues` when `steps` is `null` (the
    /// client-only mode, which a server cannot hold to account).
    #[wasm_bindgen(constructor)]
    pub fn new(steps: Option<Vec<String>>) -> Result<ChallengeTracker, JsValue> {
        let challenge = match steps {
            Some(s) => parse_steps(&s)?,
            None => Challenge::draw(crypto_random),
        };
        Ok(ChallengeTracker {
            tracker: Tracker::new(challenge),
        })
    }

    /// The steps, in order.
    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> Vec<String> {
        self.tracker
            .challenge()
            .steps()
            .iter()
            .map(|s| s.code().to_owned())
            .collect()
    }

    /// Feeds the face of the next look (`FaceGuide.look`'s `face`, or `null`): resolves to
    /// `{ step, steps, due, pose, done, astray }`.
    pub fn push(&mut self, face: JsValue) -> Result<JsValue, JsValue> {
        let face: Option<FaceBox> = serde_wasm_bindgen::from_value(face).ok().flatten();
        serialize(&self.tracker.push(face.as_ref()))
    }
}

/// One look of a track: the face and the width of the frame it was found in.
#[derive(Deserialize)]
struct Look {
    face: FaceBox,
    width: u32,
}

/// What [`check_track`] found.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackResult {
    passed: bool,
    code: Option<&'static str>,
    message: String,
    depth: Option<f32>,
}

/// The whole challenge check on a track of looks (`[{ face, width }]`, one face per look, in
/// order) and their times (ms): `{ passed, code, message, depth }`, `code` one of
/// [`challenge_codes`].
#[wasm_bindgen(js_name = checkTrack)]
pub fn check_track_js(
    steps: Vec<String>,
    looks: JsValue,
    times: Vec<f64>,
) -> Result<JsValue, JsValue> {
    let challenge = parse_steps(&steps)?;
    let looks: Vec<Look> =
        serde_wasm_bindgen::from_value(looks).map_err(|e| bad(format!("challenge looks: {e}")))?;
    if looks.len() != times.len() {
        return Err(bad(format!(
            "challenge: {} looks but {} times",
            looks.len(),
            times.len()
        )));
    }
    let track: Vec<TrackFrame> = looks
        .iter()
        .zip(times)
        .map(|(l, t_ms)| TrackFrame {
            t_ms,
            face: to_track_scale(&l.face, l.width),
        })
        .collect();
    let result = match check_track(&challenge, &track, None) {
        Ok(r) => TrackResult {
            passed: true,
            code: None,
            message: String::new(),
            depth: Some(r.depth),
        },
        Err(f) => TrackResult {
            passed: false,
            code: Some(f.code()),
            message: f.to_string(),
            depth: None,
        },
    };
    serialize(&result)
}

/// Every code a failed challenge reports (client and server alike).
#[wasm_bindgen(js_name = challengeCodes)]
pub fn challenge_codes() -> Vec<String> {
    ChallengeFailure::CODES
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

/// Every step a challenge can ask for.
#[wasm_bindgen(js_name = stepCodes)]
pub fn step_codes() -> Vec<String> {
    [Step::Centre]
        .into_iter()
        .chain(Step::TURNS)
        .map(|s| s.code().to_owned())
        .collect()
}
