//! The load benchmark (`liveness-server bench`): the server on a free port with a fresh SQLite
//! log and the default model, and `concurrency` client threads that each create sessions and
//! verify five 640×480 frames and a 25-frame challenge track (a drawn head) over HTTP. Prints verified sessions per second,
//! verify latency (p50, p99), the server's own time in the model per verify, and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use liveness_core::FRAMES;
use liveness_core::challenge::Challenge;
use liveness_core::testing::{DrawnHead, WALL, draw_head, head_track};
use serde::Serialize;

use crate::frames::{Rgba, encode_png};
use crate::scorer::Scorer;
use crate::sessions::{Created, Verified};
use crate::{AppState, Config, tokens};

/// What the benchmark printed.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// Sessions verified.
    pub sessions: usize,
    /// Client threads.
    pub concurrency: usize,
    /// Frame size.
    pub frames: &'static str,
    /// Verified sessions per second (wall time of the whole run).
    pub verified_per_s: f64,
    /// Verify request latency, ms.
    pub verify_p50_ms: f64,
    /// Verify request latency, ms.
    pub verify_p99_ms: f64,
    /// The server's time in the face gate, preprocessing and the model per verify (median), ms.
    pub model_p50_ms: f64,
    /// The server's time in the challenge's checks per verify (median), ms.
    pub challenge_p50_ms: f64,
    /// Peak resident memory of the process (server and clients), MB.
    pub peak_rss_mb: Option<f64>,
}

/// What an honest client sends: the track of a drawn 3-D head performing the challenge
/// (320×240 PNGs), five distinct `width × height` frames of it facing the camera afterwards, the
/// capture times of both, and its own verdict on the five (the server's model and code).
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

/// An honest client's capture for `challenge` (noise from `seed`, frames `interval_ms` apart),
/// five frames of `width × height`.
pub fn honest_client(
    scorer: &Scorer,
    challenge: &Challenge,
    (width, height): (u32, u32),
    seed: u64,
    interval_ms: f64,
) -> anyhow::Result<HonestCheck> {
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
    match scorer.score(&five)?.outcome {
        liveness_runtime::Outcome::Verdict(verdict) => Ok(HonestCheck {
            frames: five
                .iter()
                .map(|f| encode_png(&f.pixels, width, height))
                .collect(),
            track,
            times,
            verdict,
        }),
        liveness_runtime::Outcome::Refused(r) => anyhow::bail!("the drawn head was refused: {r}"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark.
pub fn run(
    model: PathBuf,
    web: PathBuf,
    sessions: usize,
    concurrency: usize,
) -> anyhow::Result<BenchResult> {
    let dir = tempfile_dir()?;
    // One fixed challenge: every client sends the same track, drawn once.
    let challenge = Challenge::parse("centre,left,up,right,centre").map_err(anyhow::Error::msg)?;
    let config = Config {
        challenge: Some(challenge.clone()),
        // One client address makes every request: no rate limit in the way of the measurement.
        rate_burst: u32::MAX,
        ..Config::new(
            web,
            model.parent().map(PathBuf::from).unwrap_or_default(),
            model.clone(),
            format!("sqlite://{}", dir.join("bench.db").display()),
        )
    };
    let keys = tokens::Keys::new(tokens::KeySource::Fixed(base64_seed()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let state = runtime.block_on(AppState::new(config, keys))?;
    let scorer = state.scorer.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = crate::serve(state, "127.0.0.1:0", move |addr| {
            let _ = tx.send(addr);
        })
        .await;
    });
    let addr = rx.recv()?;
    let base = format!("http://{addr}");

    // The client's frames and its own score (the same model and code: the scores agree).
    let honest = honest_client(&scorer, &challenge, (640, 480), 1, 200.0)?;
    let body = |nonce: &str| honest.body(nonce, 800.0);

    let started = Instant::now();
    let per_thread = sessions.div_ceil(concurrency.max(1));
    let results: Vec<anyhow::Result<Vec<(f64, f64, f64)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(f64, f64, f64)>> {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut out = Vec::new();
                    for _ in 0..per_thread {
                        let mut created =
                            agent.post(&format!("{base}/v1/sessions")).send_empty()?;
                        let created: Created =
                            serde_json::from_str(&created.body_mut().read_to_string()?)?;
                        // A real check takes seconds; here the session is verified at once, so the
                        // challenge's time rule flags it (it does not change the server's work).
                        let t0 = Instant::now();
                        let mut verified = agent
                            .post(&format!("{base}/v1/sessions/{}/verify", created.id))
                            .header("content-type", "application/json")
                            .send(body(&created.nonce))?;
                        let text = verified.body_mut().read_to_string()?;
                        let latency = t0.elapsed().as_secs_f64() * 1e3;
                        let v: Verified = serde_json::from_str(&text)
                            .map_err(|e| anyhow::anyhow!("{e}: {text}"))?;
                        out.push((latency, v.model_ms, v.challenge_ms));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut latency = Vec::new();
    let mut model_ms = Vec::new();
    let mut challenge_ms = Vec::new();
    for r in results {
        for (l, m, c) in r? {
            latency.push(l);
            model_ms.push(m);
            challenge_ms.push(c);
        }
    }
    for v in [&mut latency, &mut model_ms, &mut challenge_ms] {
        v.sort_by(f64::total_cmp);
    }
    Ok(BenchResult {
        sessions: latency.len(),
        concurrency,
        frames: "5 x 640x480 PNG + a 25-frame 320x240 challenge track",
        verified_per_s: latency.len() as f64 / wall,
        verify_p50_ms: percentile(&latency, 0.5),
        verify_p99_ms: percentile(&latency, 0.99),
        model_p50_ms: percentile(&model_ms, 0.5),
        challenge_p50_ms: percentile(&challenge_ms, 0.5),
        peak_rss_mb: peak_rss_mb(),
    })
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("liveness-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn base64_seed() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}
