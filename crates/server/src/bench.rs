//! The load benchmark (`liveness-server bench`): the server on a free port with a fresh SQLite
//! log and the default model, and `concurrency` client threads that each create sessions and
//! verify five 640×480 frames (a drawn face) over HTTP. Prints verified sessions per second,
//! verify latency (p50, p99), the server's own time in the model per verify, and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use liveness_core::testing::{DrawnFace, draw_faces};
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
    /// Peak resident memory of the process (server and clients), MB.
    pub peak_rss_mb: Option<f64>,
}

/// What an honest client sends for a drawn face filling a `width × height` frame: five PNG
/// frames (base64) and its own verdict on them (the server's model and code).
pub fn honest_client(
    scorer: &Scorer,
    width: u32,
    height: u32,
) -> anyhow::Result<(Vec<String>, liveness_runtime::Verdict)> {
    let (w, h) = (width as f32, height as f32);
    let face = DrawnFace {
        cx: w / 2.0,
        cy: h / 2.0 + h * 0.04,
        width: w.min(h) * 0.42,
    };
    let rgba: Vec<u8> = draw_faces(width, height, &[face], [70, 90, 110])
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let frames: Vec<Rgba> = (0..5)
        .map(|_| Rgba {
            pixels: rgba.clone(),
            width,
            height,
        })
        .collect();
    match scorer.score(&frames)?.outcome {
        liveness_runtime::Outcome::Verdict(v) => Ok((
            (0..5).map(|_| encode_png(&rgba, width, height)).collect(),
            v,
        )),
        liveness_runtime::Outcome::Refused(r) => anyhow::bail!("the drawn face was refused: {r}"),
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
    let config = Config::new(
        web,
        model.parent().map(PathBuf::from).unwrap_or_default(),
        model.clone(),
        format!("sqlite://{}", dir.join("bench.db").display()),
    );
    let signer = tokens::Signer::from_base64(&base64_seed(), "bench")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let state = runtime.block_on(AppState::new(config, signer))?;
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
    let (frames, verdict) = honest_client(&scorer, 640, 480)?;
    let body = |nonce: &str| {
        serde_json::json!({
            "nonce": nonce,
            "frames": frames,
            "client": { "pSpoof": verdict.p_spoof, "live": verdict.live, "captureMs": 800.0 },
        })
        .to_string()
    };

    let started = Instant::now();
    let per_thread = sessions.div_ceil(concurrency.max(1));
    let results: Vec<anyhow::Result<Vec<(f64, f64)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(f64, f64)>> {
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
                        // A real capture takes ~0.8 s; here the session is verified at once, so the
                        // timing rule flags it (it does not change the server's work).
                        let t0 = Instant::now();
                        let mut verified = agent
                            .post(&format!("{base}/v1/sessions/{}/verify", created.id))
                            .header("content-type", "application/json")
                            .send(body(&created.nonce))?;
                        let text = verified.body_mut().read_to_string()?;
                        let latency = t0.elapsed().as_secs_f64() * 1e3;
                        let v: Verified = serde_json::from_str(&text)
                            .map_err(|e| anyhow::anyhow!("{e}: {text}"))?;
                        out.push((latency, v.model_ms));
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
    for r in results {
        for (l, m) in r? {
            latency.push(l);
            model_ms.push(m);
        }
    }
    latency.sort_by(f64::total_cmp);
    model_ms.sort_by(f64::total_cmp);
    Ok(BenchResult {
        sessions: latency.len(),
        concurrency,
        frames: "5 x 640x480 PNG",
        verified_per_s: latency.len() as f64 / wall,
        verify_p50_ms: percentile(&latency, 0.5),
        verify_p99_ms: percentile(&latency, 0.99),
        model_p50_ms: percentile(&model_ms, 0.5),
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
