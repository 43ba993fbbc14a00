//! An honest client, for the load benchmark and the server's tests: a drawn 3-D head performing
//! a challenge ([`honest_capture`]) and the verify request it sends ([`HonestCheck::body`]).

use liveness_core::FRAMES;
use liveness_core::challenge::Challenge;
use liveness_core::testing::{DrawnHead, WALL, draw_head, head_track};

use crate::frames::{Rgba, encode_png};
use crate::scorer::Scorer;

/// What an honest client sends: its [`Capture`] and its own verdict on the five frames.
#[derive(Clone)]
pub struct HonestCheck {
    /// The five frames, base64 PNG.
    pub frames: Vec<String>,
    /// The challenge's track, base64 PNG.
    pub track: Vec<String>,
    /// Capture times of the track's frames, then of the five, ms.
    pub times: Vec<f64>,
    /// The client's verdict on the five frames.
    pub verdict: liveness_runtime::Verdict,
}

impl HonestCheck {
    /// The verify request's JSON body for `nonce`, with a capture of `capture_ms`.
    pub fn body(&self, nonce: &str, capture_ms: f64) -> String {
        serde_json::json!({
            "nonce": nonce,
            "frames": self.frames,
            "challenge": { "frames": self.track, "times": self.times },
            "client": { "pSpoof": self.verdict.p_spoof, "live": self.verdict.live, "captureMs": capture_ms },
        })
        .to_string()
    }
}

fn rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// What an honest client captures, before any verdict: the track of a drawn 3-D head performing
/// the challenge (320×240 PNGs), five distinct frames of it facing the camera afterwards, and the
/// capture times of both.
pub struct Capture {
    /// The five frames, decoded.
    pub five: Vec<Rgba>,
    /// The five frames, base64 PNG.
    pub frames: Vec<String>,
    /// The challenge's track, base64 PNG.
    pub track: Vec<String>,
    /// Capture times of the track's frames, then of the five, ms.
    pub times: Vec<f64>,
}

impl Capture {
    /// The capture with the client's `verdict` on its five frames.
    pub fn with_verdict(self, verdict: liveness_runtime::Verdict) -> HonestCheck {
        HonestCheck {
            frames: self.frames,
            track: self.track,
            times: self.times,
            verdict,
        }
    }
}

/// An honest client's capture for `challenge` (noise from `seed`, frames `interval_ms` apart),
/// five frames of `width × height`.
pub fn honest_capture(
    challenge: &Challenge,
    (width, height): (u32, u32),
    seed: u64,
    interval_ms: f64,
) -> Capture {
    let (heads, mut times) = head_track(challenge, seed, interval_ms);
    let track = heads
        .iter()
        .map(|(h, noise)| encode_png(&rgba(&draw_head(320, 240, *h, WALL, *noise)), 320, 240))
        .collect();
    // The same head facing the camera, at the same place in the larger frame.
    let scale = width as f32 / 320.0;
    let last = times.last().copied().unwrap_or(0.0);
    let five: Vec<Rgba> = (0..FRAMES)
        .map(|k| {
            let head = DrawnHead {
                cx: 160.0 * scale,
                cy: 125.0 * scale,
                width: 90.0 * scale,
                yaw: 0.0,
                pitch: 0.0,
            };
            Rgba {
                pixels: rgba(&draw_head(
                    width,
                    height,
                    head,
                    WALL,
                    seed ^ (0xF00 + k as u64),
                )),
                width,
                height,
            }
        })
        .collect();
    times.extend((1..=FRAMES).map(|k| last + interval_ms * k as f64));
    let frames = five
        .iter()
        .map(|f| encode_png(&f.pixels, width, height))
        .collect();
    Capture {
        five,
        frames,
        track,
        times,
    }
}

/// [`honest_capture`] with the client's verdict computed by `scorer` (the bench's client; the
/// server's tests take theirs from an independent reference instead).
pub fn honest_client(
    scorer: &Scorer,
    challenge: &Challenge,
    size: (u32, u32),
    seed: u64,
    interval_ms: f64,
) -> anyhow::Result<HonestCheck> {
    let capture = honest_capture(challenge, size, seed, interval_ms);
    match scorer.score(&capture.five)?.outcome {
        liveness_runtime::Outcome::Verdict(verdict) => Ok(capture.with_verdict(verdict)),
        liveness_runtime::Outcome::Refused(r) => anyhow::bail!("the drawn head was refused: {r}"),
    }
}
