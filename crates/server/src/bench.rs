//! The load benchmark (`liveness-server bench`): the server on a free port with a fresh SQLite
//! log and the default model, and for each concurrency level that many client threads verifying
//! honest captures (five 640×480 frames and a 25-frame challenge track of a drawn head) over
//! HTTP: verified sessions per second, verify latency (p50, p99), the server's own time per
//! verify, the verdicts, memory. With `--abuse`, the abuse cases after: what they were answered,
//! the memory they cost, and how soon the server answered others. Built with the `bench` feature
//! only (its HTTP client, ureq, is not in the shipped server).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liveness_core::FRAMES;
use liveness_core::challenge::Challenge;
use serde::Serialize;

use crate::frames::encode_png;
use crate::honest::{HonestCheck, honest_client};
use crate::sessions::{Created, Verified};
use crate::{AppState, Config, tokens};

/// One concurrency level of the load benchmark.
#[derive(Debug, Serialize)]
pub struct LoadResult {
    /// Sessions verified.
    pub sessions: usize,
    /// Client threads.
    pub concurrency: usize,
    /// Verified sessions per second (wall time of the verifies).
    pub verified_per_s: f64,
    /// Verify request latency, ms.
    pub verify_p50_ms: f64,
    /// Verify request latency, ms.
    pub verify_p99_ms: f64,
    /// The server's time in the face gate, preprocessing and the model per verify (median), ms.
    pub model_p50_ms: f64,
    /// The server's time in the challenge's checks per verify (median), ms.
    pub challenge_p50_ms: f64,
    /// Verdicts by kind (an honest capture: `live`, unless the model calls the drawn head an
    /// attack), and `busy (retried)` for each 503 (sent again after a second).
    pub verdicts: BTreeMap<String, usize>,
    /// Resident memory of the process after the level, MB.
    pub rss_mb: Option<f64>,
}

/// One abuse case: what the server answered and what it cost in memory.
#[derive(Debug, Serialize)]
pub struct AbuseResult {
    /// What was sent.
    pub case: String,
    /// Requests or connections.
    pub requests: usize,
    /// Answers by HTTP status (0: the connection was closed or timed out).
    pub statuses: BTreeMap<u16, usize>,
    /// Resident memory before the case, MB.
    pub rss_before_mb: Option<f64>,
    /// The highest resident memory during the case, MB (sampled every 5 ms).
    pub rss_peak_mb: Option<f64>,
    /// How long until `GET /healthz` answered once the case's requests were sent, ms.
    pub healthz_after_ms: f64,
}

/// What `liveness-server bench` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// `release` or `debug`: the figures only mean something for a release build.
    pub build: &'static str,
    /// What one verify carries.
    pub frames: &'static str,
    /// Verify slots (the machine's cores).
    pub verify_slots: usize,
    /// One entry per concurrency level.
    pub load: Vec<LoadResult>,
    /// The abuse cases (with `--abuse`).
    pub abuse: Vec<AbuseResult>,
    /// Peak resident memory of the whole run (server and clients in one process), MB.
    pub peak_rss_mb: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// A memory figure of this process (`VmRSS:`, `VmHWM:`) from /proc/self/status, MB.
fn status_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resident memory now, MB.
fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

/// Samples the resident memory every 5 ms until dropped; [`RssSampler::peak`] is the highest.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<f64>>>,
}

impl RssSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak: Option<f64> = None;
            while !flag.load(Ordering::Relaxed) {
                peak = match (peak, rss_mb()) {
                    (Some(p), Some(r)) => Some(p.max(r)),
                    (p, r) => p.or(r),
                };
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        RssSampler {
            stop,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Runs the benchmark: the server in this process with a fresh SQLite log, each concurrency
/// level of `levels` in turn (`sessions` honest verifies each), then with `abuse` the abuse
/// cases of [`abuse_cases`].
pub fn run(
    model: PathBuf,
    web: PathBuf,
    sessions: usize,
    levels: &[usize],
    abuse: bool,
) -> anyhow::Result<BenchReport> {
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
    let verify_slots = config.verify_slots;
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
    let load = levels
        .iter()
        .map(|&c| load_level(&base, &honest, sessions, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let abuse = if abuse {
        abuse_cases(&base, &honest)?
    } else {
        Vec::new()
    };
    Ok(BenchReport {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        frames: "5 x 640x480 PNG + a 25-frame 320x240 challenge track",
        verify_slots,
        load,
        abuse,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// `sessions` honest verifies from `concurrency` client threads. The sessions are created
/// first and verified once the capture's duration has passed, as a person's would be (the
/// server checks the track's time against its own clock).
fn load_level(
    base: &str,
    honest: &HonestCheck,
    sessions: usize,
    concurrency: usize,
) -> anyhow::Result<LoadResult> {
    let concurrency = concurrency.max(1);
    let client = agent();
    let mut created = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut r = client.post(&format!("{base}/v1/sessions")).send_empty()?;
        let text = r.body_mut().read_to_string()?;
        let c: Created = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}: {text}"))?;
        created.push(c);
    }
    let span_ms = honest.times.last().copied().unwrap_or(0.0) - honest.times[0];
    std::thread::sleep(Duration::from_millis(span_ms.max(0.0) as u64 + 200));
    let queue = Mutex::new(created.into_iter());
    let started = Instant::now();
    type Done = (f64, Option<(f64, f64)>, String);
    let results: Vec<anyhow::Result<Vec<Done>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<Done>> {
                    let agent = agent();
                    let mut out = Vec::new();
                    let mut retry = None;
                    loop {
                        // A verify answered `busy` is sent again after its Retry-After, as the
                        // widget does; each 503 is counted.
                        let next = retry
                            .take()
                            .or_else(|| queue.lock().ok().and_then(|mut q| q.next()));
                        let Some(c) = next else { break };
                        let t0 = Instant::now();
                        let sent = agent
                            .post(&format!("{base}/v1/sessions/{}/verify", c.id))
                            .header("content-type", "application/json")
                            .send(honest.body(&c.nonce, 800.0));
                        let Ok(mut r) = sent else {
                            out.push((0.0, None, "connection-error".to_owned()));
                            continue;
                        };
                        let status = r.status().as_u16();
                        let text = r.body_mut().read_to_string()?;
                        let latency = t0.elapsed().as_secs_f64() * 1e3;
                        if status == 503 {
                            out.push((latency, None, "busy (retried)".to_owned()));
                            std::thread::sleep(Duration::from_secs(1));
                            retry = Some(c);
                            continue;
                        }
                        let v: Verified = serde_json::from_str(&text)
                            .map_err(|e| anyhow::anyhow!("{status} {e}: {text}"))?;
                        out.push((latency, Some((v.model_ms, v.challenge_ms)), v.verdict));
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
    let (mut latency, mut model_ms, mut challenge_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut verdicts = BTreeMap::new();
    for r in results {
        for (l, times, verdict) in r? {
            if let Some((m, c)) = times {
                latency.push(l);
                model_ms.push(m);
                challenge_ms.push(c);
            }
            *verdicts.entry(verdict).or_insert(0) += 1;
        }
    }
    for v in [&mut latency, &mut model_ms, &mut challenge_ms] {
        v.sort_by(f64::total_cmp);
    }
    Ok(LoadResult {
        sessions: latency.len(),
        concurrency,
        verified_per_s: latency.len() as f64 / wall,
        verify_p50_ms: percentile(&latency, 0.5),
        verify_p99_ms: percentile(&latency, 0.99),
        model_p50_ms: percentile(&model_ms, 0.5),
        challenge_p50_ms: percentile(&challenge_ms, 0.5),
        verdicts,
        rss_mb: rss_mb(),
    })
}

/// Milliseconds until `GET /healthz` answers 200 (probing every 50 ms, for at most 60 s).
fn healthz_ms(base: &str) -> f64 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .into();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if agent
            .get(&format!("{base}/healthz"))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
        {
            return started.elapsed().as_secs_f64() * 1e3;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f64::INFINITY
}

/// `requests` POSTs of `body` to `url` at once; their statuses.
fn flood(url: &str, body: &str, requests: usize) -> BTreeMap<u16, usize> {
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..requests)
            .map(|_| {
                s.spawn(|| {
                    agent()
                        .post(url)
                        .header("content-type", "application/json")
                        .send(body)
                        .map_or(0, |r| r.status().as_u16())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let mut counts = BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_insert(0) += 1;
    }
    counts
}

/// The abuse cases the server must survive with bounded memory and without losing its other
/// clients: 32 parallel verifies of five 3840×2160 PNGs to a session that does not exist; 8
/// parallel verifies whose frames are millions of empty strings (a 24 MB body); 1,100
/// connections that each send half a header and wait.
pub fn abuse_cases(base: &str, honest: &HonestCheck) -> anyhow::Result<Vec<AbuseResult>> {
    let mut out = Vec::new();
    let missing = format!("{base}/v1/sessions/{}/verify", "0".repeat(32));
    // `send` answers the statuses, and the probe's time when it probed while the case held on.
    type Send<'a> = &'a dyn Fn() -> (BTreeMap<u16, usize>, Option<f64>);
    let mut case = |name: &str, requests: usize, send: Send| {
        let before = rss_mb();
        let sampler = RssSampler::start();
        let (statuses, probed) = send();
        let healthz_after_ms = probed.unwrap_or_else(|| healthz_ms(base));
        out.push(AbuseResult {
            case: name.to_owned(),
            requests,
            statuses,
            rss_before_mb: before,
            rss_peak_mb: sampler.peak(),
            healthz_after_ms,
        });
    };

    // Five 4K frames: small as PNG (a flat picture), 33 MB each once decoded.
    let (w, h) = (3840u32, 2160u32);
    let big = encode_png(&vec![180u8; (w * h * 4) as usize], w, h);
    let body = serde_json::json!({
        "nonce": "0".repeat(32),
        "frames": vec![big; FRAMES],
        "challenge": { "frames": [honest.track[0].clone()], "times": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] },
        "client": { "pSpoof": 0.5, "live": true, "captureMs": 800.0 },
    })
    .to_string();
    case(
        "32 verifies of five 3840x2160 PNGs to a session that does not exist",
        32,
        &|| (flood(&missing, &body, 32), None),
    );

    // Millions of empty frame strings: a 24 MB body.
    let empties = (crate::sessions::MAX_BODY_BYTES - 200) / 3;
    let mut body = String::with_capacity(crate::sessions::MAX_BODY_BYTES);
    body.push_str(r#"{"nonce":"x","frames":["#);
    for i in 0..empties {
        body.push_str(if i == 0 { r#""""# } else { r#","""# });
    }
    body.push_str(r#"],"challenge":{"frames":[],"times":[]},"client":{"pSpoof":0.5,"live":true,"captureMs":800}}"#);
    case(
        &format!(
            "8 verifies of {empties} empty frame strings ({} MB)",
            body.len() >> 20
        ),
        8,
        &|| (flood(&missing, &body, 8), None),
    );

    // Slowloris: half a header each, held open.
    let connections = 1_100;
    case(
        "1100 connections holding half a header",
        connections,
        &|| {
            let addr = base.trim_start_matches("http://");
            let held: Vec<_> = (0..connections)
                .filter_map(|_| {
                    let mut s = std::net::TcpStream::connect(addr).ok()?;
                    std::io::Write::write_all(&mut s, b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n")
                        .ok()?;
                    Some(s)
                })
                .collect();
            // Probe while they are held (the server cuts them at its header timeout).
            let probe = healthz_ms(base);
            let mut counts = BTreeMap::new();
            counts.insert(0, connections - held.len());
            drop(held);
            (counts, Some(probe))
        },
    );
    Ok(out)
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
