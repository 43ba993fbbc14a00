//! The server over HTTP on a free port: sessions and their challenges, verify with real frames
//! (drawn 3-D heads the face detector follows), every attack on the challenge, forged scores,
//! reused nonces, expired sessions, bad uploads, tokens and the demo signup, the static site;
//! and two instances sharing one PostgreSQL when the test script starts one
//! (`LIVENESS_TEST_POSTGRES=postgres://…`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use liveness_core::challenge::Challenge;
use liveness_core::testing::{WALL, draw_head, head_track, imitating_print};
use liveness_server::frames::encode_png;
use liveness_server::honest::HonestCheck;
use liveness_server::sessions::{Created, Verified};
use liveness_server::{AppState, Config, tokens};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server {
    base: String,
    /// The server's keys (a test reloads them after a rotation instead of waiting a minute).
    keys: std::sync::Arc<tokens::Keys>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn config(dir: &Path, database: Option<&str>) -> Config {
    let db = database.map_or_else(
        || format!("sqlite://{}", dir.join("log.db").display()),
        str::to_owned,
    );
    Config::new(
        root().join("web"),
        root().join("models"),
        root().join("models/default.onnx"),
        db,
    )
}

fn start_with(edit: impl FnOnce(&mut Config), database: Option<&str>, seed: [u8; 32]) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = config(dir.path(), database);
    // Every request of a test comes from 127.0.0.1: the rate limit has its own test.
    cfg.rate_burst = 100_000;
    cfg.api_key = Some(API_KEY.to_owned());
    edit(&mut cfg);
    let keys = tokens::Keys::new(tokens::KeySource::Fixed(
        base64::engine::general_purpose::STANDARD.encode(seed),
    ))
    .expect("key");
    start_state(cfg, keys, dir)
}

/// The SQLite audit log of a test server.
fn db_url(s: &Server) -> String {
    format!("sqlite://{}", s._dir.path().join("log.db").display())
}

/// The operator API key of the test servers.
const API_KEY: &str = "test-operator-key-0123456789";

fn start_state(cfg: Config, keys: tokens::Keys, dir: tempfile::TempDir) -> Server {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let state = runtime
        .block_on(AppState::new(cfg, keys))
        .expect("server starts");
    let keys = state.keys.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = liveness_server::serve(state, "127.0.0.1:0", move |a| {
            let _ = tx.send(a);
        })
        .await;
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("bound");
    Server {
        base: format!("http://{addr}"),
        keys,
        _runtime: runtime,
        _dir: dir,
    }
}

/// The challenge of the test servers (random ones are tested on their own).
const FIXED: &str = "centre,left,up,right,centre";

fn fixed() -> Challenge {
    Challenge::parse(FIXED).expect("challenge")
}

/// A test server with the fixed challenge and `edit` applied to its settings.
fn start_fixed(edit: impl FnOnce(&mut Config)) -> Server {
    start_with(
        |c| {
            c.challenge = Some(fixed());
            edit(c);
        },
        None,
        [3; 32],
    )
}

fn start() -> Server {
    start_with(|c| c.challenge = Some(fixed()), None, [3; 32])
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// (status, JSON body) of a request.
fn call(method: &str, url: &str, body: Option<String>) -> (u16, Value, ureq::http::HeaderMap) {
    let a = agent();
    let response = match (method, body) {
        ("GET", _) => a.get(url).call(),
        ("POST", Some(b)) => a
            .post(url)
            .header("content-type", "application/json")
            .send(b),
        ("POST", None) => a.post(url).send_empty(),
        _ => unreachable!("test helper"),
    };
    let mut r = response.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

/// An honest client's capture for `challenge`: a drawn head performing it, then five frames,
/// with the client's verdict from the independent reference, never the server's own code.
fn honest(challenge: &Challenge, seed: u64) -> HonestCheck {
    let capture = liveness_server::honest::honest_capture(challenge, (320, 240), seed, INTERVAL);
    let verdict = reference_verdict(&capture, &root().join("models/default.onnx"));
    capture.with_verdict(verdict)
}

/// The verdict of `tests/oracle/liveness_oracle.py` on the capture's five PNG frames: `model`
/// run by onnxruntime on views cut, resized (Pillow) and normalised from the
/// manifest's words, sharing no code with the server. Only the face boxes are the runtime's
/// detector's (one face per frame is required here).
fn reference_verdict(
    capture: &liveness_server::honest::Capture,
    model: &Path,
) -> liveness_runtime::Verdict {
    use std::io::Write;
    let detector =
        liveness_runtime::FaceDetector::new(liveness_core::face::MIN_SCORE).expect("face detector");
    let faces: Vec<[f32; 4]> = capture
        .five
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let found = detector
                .detect(liveness_core::Frame::rgba(&f.pixels, f.width, f.height), k)
                .expect("detect");
            assert_eq!(found.len(), 1, "frame {k}: {found:?}");
            [found[0].x, found[0].y, found[0].width, found[0].height]
        })
        .collect();
    let python = root().join(".venv/bin/python");
    let script = root().join("tests/oracle/liveness_oracle.py");
    let request = json!({
        "model": model,
        "frames": capture.frames,
        "faces": faces,
    });
    let mut child = std::process::Command::new(&python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the independent reference needs .venv with onnxruntime: scripts/setup.sh)",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("reference ran");
    assert!(
        out.status.success(),
        "{} failed ({}): {}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the reference's JSON");
    let number = |k: &str| {
        answer[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} in {answer}")) as f32
    };
    liveness_runtime::Verdict {
        live: answer["live"].as_bool().expect("live"),
        p_spoof: number("p_spoof"),
        logit: number("logit"),
        threshold: number("threshold"),
    }
}

/// An honest capture for the test servers' fixed challenge.
fn honest_frames() -> (HonestCheck, f32, bool) {
    // Made once per test binary: the reference takes a second to start.
    static FIXED: std::sync::OnceLock<HonestCheck> = std::sync::OnceLock::new();
    let check = FIXED.get_or_init(|| honest(&fixed(), 1)).clone();
    let (p, live) = (check.verdict.p_spoof, check.verdict.live);
    (check, p, live)
}

fn create(s: &Server) -> Created {
    let (status, body, _) = call("POST", &format!("{}/v1/sessions", s.base), None);
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body).expect("created")
}

/// The verify body of `check` with the client's score and verdict as given.
fn verify_body(nonce: &str, check: &HonestCheck, p_spoof: f32, live: bool) -> String {
    body_with(nonce, check, f64::from(p_spoof), live, 450.0)
}

/// The test clients' frames are this far apart (ms): 30 frames span 1.74 s, more than the least
/// time of five steps (1.5 s), so tests wait little.
const INTERVAL: f64 = 60.0;

/// Longer than an honest capture's span: the server measures the time itself.
const PERFORM: Duration = Duration::from_millis(1900);

/// Creates a session, waits out a plausible challenge, and verifies `check` with `p_spoof`.
fn verified(s: &Server, check: &HonestCheck, p_spoof: f32, live: bool) -> (Created, u16, Value) {
    let c = create(s);
    std::thread::sleep(PERFORM);
    let (status, body, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", s.base, c.id),
        Some(verify_body(&c.nonce, check, p_spoof, live)),
    );
    (c, status, body)
}

fn state_of(s: &Server, id: &str) -> Value {
    let (status, body, _) = call("GET", &format!("{}/v1/sessions/{id}", s.base), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn an_honest_check_is_confirmed_and_its_token_verifies_offline() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let (c, status, body) = verified(&s, &frames, p, live);
    assert_eq!(status, 200, "{body}");
    let v: Verified = serde_json::from_value(body).expect("verified");
    eprintln!(
        "server: verdict {} pSpoof {:?} (client {p}), model {:.1} ms",
        v.verdict, v.p_spoof, v.model_ms
    );
    assert_eq!(v.live, live);
    assert_eq!(v.verdict, if live { "live" } else { "attack" });
    assert_eq!(
        v.findings,
        if live {
            vec![]
        } else {
            vec!["attack".to_owned()]
        }
    );
    // The score is in the answer only with a live verdict; the audit log always has it.
    let row = state_of(&s, &c.id);
    // The client's score is the independent reference's: the server agrees within 1e-4.
    let server_p = row["serverPSpoof"].as_f64().expect("a score");
    assert!(
        (server_p - f64::from(p)).abs() <= 1e-4,
        "server {server_p} vs reference {p}"
    );
    assert_eq!(v.p_spoof, live.then_some(server_p));
    assert_eq!(row["state"], "done");
    assert_eq!(row["verdict"], v.verdict);
    assert_eq!(row["modelSha256"], c.model_sha256);
    assert_eq!(row["challenge"], FIXED);
    assert!(
        row["challengeReport"]
            .as_str()
            .is_some_and(|r| r.contains("depth")),
        "{row}"
    );
    // The token, offline, against the published keys.
    let claims = tokens::verify(
        &v.token,
        &jwks(&s),
        &tokens::Expect {
            audience: Some("liveness-server"),
            issuer: Some("liveness-server"),
        },
    )
    .expect("valid token");
    assert_eq!((claims.sub.as_str(), claims.live), (c.id.as_str(), live));
    assert!(claims.challenge, "the token records the passed challenge");
    assert_eq!(claims.verdict, v.verdict);
    assert_eq!(claims.signals, v.findings);
    assert_eq!(claims.model, c.model_sha256);
    assert_eq!(
        claims.p_spoof.map(f64::from),
        v.p_spoof.map(|p| p as f32 as f64)
    );
}

/// The server's JWKS.
fn jwks(s: &Server) -> jsonwebtoken::jwk::JwkSet {
    let (status, body, _) = call("GET", &format!("{}/.well-known/jwks.json", s.base), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a JWK set")
}

/// Frames of drawn heads as base64 PNGs (320×240, RGBA).
fn drawn(heads: &[(liveness_core::testing::DrawnHead, u64)]) -> Vec<String> {
    heads
        .iter()
        .map(|(h, seed)| png_of(&draw_head(320, 240, *h, WALL, *seed)))
        .collect()
}

fn png_of(rgb: &[u8]) -> String {
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    encode_png(&rgba, 320, 240)
}

/// Every attack on the challenge that a camera-less attacker can mount: each is verified on its
/// own session and must fail with the signal that caught it, reveal no score, and close the
/// session for good.
#[test]
fn every_attack_on_the_challenge_fails_and_closes_its_session() {
    let s = start();
    let (honest, p, live) = honest_frames();
    let c = fixed();
    let (heads, mut times) = head_track(&c, 3, INTERVAL);
    let last = times.last().copied().unwrap_or(0.0);
    times.extend((1..=5).map(|k| last + INTERVAL * f64::from(k)));
    let with_track = |track: Vec<String>, times: Vec<f64>| HonestCheck {
        frames: honest.frames.clone(),
        track,
        times,
        verdict: honest.verdict,
    };
    // Stored photos of the face: frontal frames only, no steps.
    let frontal: Vec<_> = heads
        .iter()
        .map(|(h, seed)| {
            (
                liveness_core::testing::DrawnHead {
                    yaw: 0.0,
                    pitch: 0.0,
                    ..*h
                },
                *seed,
            )
        })
        .collect();
    // One still image sent as every frame.
    let still = vec![drawn(&heads[..1])[0].clone(); heads.len()];
    // Two people taking turns.
    let mut two = heads.clone();
    for (h, _) in two.iter_mut().skip(1).step_by(2) {
        h.width *= 1.5;
        h.cx += 40.0;
    }
    // The steps in the wrong order (right before left).
    let wrong = Challenge::parse("centre,right,up,left,centre").expect("challenge");
    let (wrong_heads, mut wrong_times) = head_track(&wrong, 4, INTERVAL);
    let last = wrong_times.last().copied().unwrap_or(0.0);
    wrong_times.extend((1..=5).map(|k| last + INTERVAL * f64::from(k)));
    // A print of the frontal face, turned and tilted to mimic each step, further than the head.
    let front = draw_head(320, 240, heads[0].0, WALL, 99);
    let turned: Vec<String> = heads
        .iter()
        .map(|(h, seed)| png_of(&imitating_print(&front, 320, 240, h, *seed)))
        .collect();
    let attacks: Vec<(&str, HonestCheck, &str)> = vec![
        (
            "stored photos",
            with_track(drawn(&frontal), times.clone()),
            "challenge-failed",
        ),
        (
            "a still image repeated",
            with_track(still, times.clone()),
            "repeated-frames",
        ),
        (
            "two people",
            with_track(drawn(&two), times.clone()),
            "discontinuous",
        ),
        (
            "steps in the wrong order",
            with_track(drawn(&wrong_heads), wrong_times),
            "challenge-failed",
        ),
        (
            "a photo turned to mimic each step",
            with_track(turned, times.clone()),
            "challenge-failed",
        ),
    ];
    let sessions: Vec<Created> = attacks.iter().map(|_| create(&s)).collect();
    // Too fast: the honest capture, verified the moment its session exists.
    let quick = create(&s);
    let url = |id: &str| format!("{}/v1/sessions/{id}/verify", s.base);
    let (status, body, _) = call(
        "POST",
        &url(&quick.id),
        Some(verify_body(&quick.nonce, &honest, p, live)),
    );
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("too-fast")),
        "{body}"
    );
    std::thread::sleep(PERFORM);
    for ((name, check, code), session) in attacks.iter().zip(&sessions) {
        let (status, body, _) = call(
            "POST",
            &url(&session.id),
            Some(verify_body(&session.nonce, check, p, live)),
        );
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            (body["live"].as_bool(), body["verdict"].as_str()),
            (Some(false), Some(*code)),
            "{name}: {body}"
        );
        assert_eq!(
            body["pSpoof"],
            Value::Null,
            "{name}: a failed verify reveals no score"
        );
        let row = state_of(&s, &session.id);
        assert!(
            row["challengeReport"]
                .as_str()
                .is_some_and(|r| r.contains(code)),
            "{name}: {row}"
        );
        // Closed for good: the honest capture cannot follow on the same session.
        let (status, again, _) = call(
            "POST",
            &url(&session.id),
            Some(verify_body(&session.nonce, &honest, p, live)),
        );
        assert_eq!(
            (status, again["error"].as_str()),
            (409, Some("used")),
            "{name}: {again}"
        );
    }
}

/// Sessions draw their own challenges; an honest capture of one passes its challenge, and the
/// same capture replayed on a session with another challenge does not.
#[test]
fn sessions_draw_challenges_and_a_replayed_capture_fails_another() {
    let s = start_with(|_| {}, None, [3; 32]);
    let first = create(&s);
    let drawn_steps: Vec<String> = first
        .challenge
        .steps
        .iter()
        .map(|s| s.code().to_owned())
        .collect();
    let challenge = Challenge::parse(&drawn_steps.join(",")).expect("a valid drawn challenge");
    let check = honest(&challenge, 5);
    // A second session whose challenge differs (a few tries: they are random). Even one whose
    // steps the first's performance contains in order fails: the performance turns another
    // way between them.
    let other = (0..50)
        .map(|_| create(&s))
        .find(|c| c.challenge.steps != first.challenge.steps)
        .expect("random challenges differ");
    std::thread::sleep(PERFORM);
    let url = |id: &str| format!("{}/v1/sessions/{id}/verify", s.base);
    let (p, live) = (check.verdict.p_spoof, check.verdict.live);
    let (status, body, _) = call(
        "POST",
        &url(&first.id),
        Some(verify_body(&first.nonce, &check, p, live)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["verdict"],
        if live { "live" } else { "attack" },
        "{body}"
    );
    let (status, body, _) = call(
        "POST",
        &url(&other.id),
        Some(verify_body(&other.nonce, &check, p, live)),
    );
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("challenge-failed")),
        "{body}"
    );
}

/// Abuse bounds: an unknown session is answered before its frames are decoded; with every
/// verify slot busy the answer is 503 with Retry-After and the session stays open; a client that
/// hangs up during scoring still gets its session's outcome recorded.
#[test]
fn verifies_are_bounded_and_survive_a_client_hanging_up() {
    let s = start();
    let (check, p, live) = honest_frames();
    // Broken frames for a session that does not exist: 404 (looked up first), not 400.
    let mut broken = check.frames.clone();
    broken[0] = "***".into();
    let broken = HonestCheck {
        frames: broken,
        track: check.track.clone(),
        times: check.times.clone(),
        verdict: check.verdict,
    };
    let (status, body, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", s.base, "a".repeat(32)),
        Some(verify_body("x", &broken, p, live)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("session")),
        "{body}"
    );

    let full = start_fixed(|c| {
        c.verify_slots = 0;
        c.slot_wait = Duration::from_millis(200);
    });
    let c = create(&full);
    let a = agent();
    let mut r = a
        .post(&format!("{}/v1/sessions/{}/verify", full.base, c.id))
        .header("content-type", "application/json")
        .send(verify_body(&c.nonce, &check, p, live))
        .expect("request");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap_or_default()
            .contains("busy")
    );
    assert_eq!(
        state_of(&full, &c.id)["state"],
        "open",
        "nothing written when busy"
    );

    // Send the whole verify, wait until the server has claimed the session (it is scoring
    // then), and hang up without reading the answer.
    let c = create(&s);
    std::thread::sleep(PERFORM);
    {
        use std::io::Write;
        let body = verify_body(&c.nonce, &check, p, live);
        let mut raw =
            std::net::TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
        write!(
            raw,
            "POST /v1/sessions/{}/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            c.id,
            body.len()
        )
        .expect("send");
        raw.flush().expect("flush");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while state_of(&s, &c.id)["state"] == "open" && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            state_of(&s, &c.id)["state"],
            "verifying",
            "hung up while the server scores"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let row = loop {
        let row = state_of(&s, &c.id);
        if row["state"] == "done" || std::time::Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(row["state"], "done", "the outcome is recorded: {row}");
    assert_eq!(
        row["verdict"],
        if live { "live" } else { "attack" },
        "{row}"
    );
}

/// The sweeper closes claims abandoned past their expiry (never live) and deletes sessions past
/// the retention period.
#[test]
fn the_sweeper_closes_abandoned_claims_and_deletes_old_sessions() {
    let dir = tempfile::tempdir().expect("tmp");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let store = liveness_server::db::Store::connect(&url).await.expect("db");
        let now = liveness_server::now_ms();
        let day = 86_400_000;
        store
            .create(
                &"1".repeat(32),
                "n",
                "m",
                now - 40 * day,
                now - 40 * day + 1000,
                FIXED,
            )
            .await
            .expect("old");
        store
            .create(
                &"2".repeat(32),
                "n",
                "m",
                now - 120_000,
                now - 90_000,
                FIXED,
            )
            .await
            .expect("stuck");
        store
            .create(&"3".repeat(32), "n", "m", now, now + 180_000, FIXED)
            .await
            .expect("fresh");
        assert!(
            store
                .claim(&"2".repeat(32), now - 100_000)
                .await
                .expect("claim")
        );
        assert!(store.claim(&"3".repeat(32), now).await.expect("claim"));
        let (closed, deleted) = store.sweep(now, now - 30 * day).await.expect("sweep");
        assert_eq!((closed, deleted), (1, 1));
        assert!(
            store.get(&"1".repeat(32)).await.expect("get").is_none(),
            "past retention"
        );
        let stuck = store.get(&"2".repeat(32)).await.expect("get").expect("row");
        assert_eq!(
            (stuck.state.as_str(), stuck.verdict.as_deref(), stuck.live),
            ("done", Some("abandoned"), Some(false))
        );
        let fresh = store.get(&"3".repeat(32)).await.expect("get").expect("row");
        assert_eq!(
            fresh.state, "verifying",
            "a claim within its session's life is left alone"
        );
    });
}

/// `verify-token` exits 0 only for a valid, unexpired token of a live verdict.
#[test]
fn verify_token_fails_for_a_token_that_is_not_live() {
    let keys = tokens::KeyRing::from_base64(
        &base64::engine::general_purpose::STANDARD.encode([4u8; 32]),
        "test",
    )
    .expect("key");
    let dir = tempfile::tempdir().expect("tmp");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_file,
        serde_json::to_string(&keys.jwks(tokens::now_seconds(), Duration::from_secs(60)))
            .expect("json"),
    )
    .expect("write");
    let now = tokens::now_seconds();
    let claims = |live: bool, exp: i64| claims_for("0".repeat(32), live, now, exp);
    let run = |token: &str, audience: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_liveness-server"))
            .args(["verify-token", token, "--jwks"])
            .arg(&jwks_file)
            .args(["--audience", audience])
            .output()
            .expect("runs")
    };
    let live = run(&keys.sign(&claims(true, now + 60)), "https://shop.example");
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let flat = run(&keys.sign(&claims(false, now + 60)), "https://shop.example");
    assert!(!flat.status.success());
    assert!(
        String::from_utf8_lossy(&flat.stderr).contains("\"flat\", not live"),
        "{}",
        String::from_utf8_lossy(&flat.stderr)
    );
    let expired = run(&keys.sign(&claims(true, now - 1)), "https://shop.example");
    assert!(!expired.status.success());
    let elsewhere = run(&keys.sign(&claims(true, now + 60)), "https://evil.example");
    assert!(!elsewhere.status.success());
    assert!(
        String::from_utf8_lossy(&elsewhere.stderr).contains("evil.example"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );
}

/// Claims of a made-up session, for tokens signed by hand.
fn claims_for(sub: String, live: bool, iat: i64, exp: i64) -> tokens::Claims {
    tokens::Claims {
        iss: "liveness-server".into(),
        aud: "https://shop.example".into(),
        sub,
        iat,
        exp,
        jti: tokens::new_jti(),
        live,
        verdict: if live { "live" } else { "flat" }.into(),
        signals: if live { vec![] } else { vec!["flat".into()] },
        challenge: live,
        p_spoof: live.then_some(0.5),
        model: String::new(),
    }
}

/// A plain TCP connection to a test server (for what an HTTP client will not send), reads
/// timing out after 10 s.
fn raw_connection(s: &Server) -> std::net::TcpStream {
    let t = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    t
}

/// Slow clients cannot hold the server: headers not finished within the header timeout and
/// bodies trickled past the body timeout are cut off, while the server keeps answering.
#[test]
fn slow_clients_are_cut_off() {
    use std::io::{Read, Write};
    let s = start_with(
        |c| {
            c.header_timeout = Duration::from_millis(300);
            c.body_timeout = Duration::from_millis(300);
        },
        None,
        [3; 32],
    );
    let connect = || raw_connection(&s);
    // Half a header, then nothing: closed after the header timeout (read gives EOF or an error).
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = slow.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    // A body trickled too slowly: 408.
    let c = create(&s);
    let mut trickle = connect();
    write!(trickle, "POST /v1/sessions/{}/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{", c.id).expect("write");
    let mut answer = String::new();
    let _ = trickle.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    // Once the slow connections above timed out, the server answers again.
    let (status, _, _) = call("GET", &format!("{}/healthz", s.base), None);
    assert_eq!(status, 200);
}

/// Connections beyond the cap are closed on arrival, and the server answers again once the
/// connections holding the cap go away. The header timeout is long here, so that the idle
/// connections hold the cap however slowly a loaded machine runs the test.
#[test]
fn connections_beyond_the_cap_are_closed_on_arrival() {
    use std::io::{Read, Write};
    let s = start_with(
        |c| {
            c.header_timeout = Duration::from_secs(30);
            c.max_connections = 3;
        },
        None,
        [3; 32],
    );
    let connect = || raw_connection(&s);
    // Three idle connections fill the cap (the server accepts in order: they are counted before
    // the fourth arrives); a fourth is closed without an answer.
    let idle: Vec<_> = (0..3).map(|_| connect()).collect();
    let mut over = connect();
    let _ = over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 256];
    let n = over.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "a connection over the cap is closed: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The idle clients leave: the server answers again (it notices the closes within moments).
    drop(idle);
    let started = std::time::Instant::now();
    loop {
        let mut probe = connect();
        let _ = probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = probe.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still refused 10 s after the idle connections closed: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Session creation is rate-limited per client address (429 with Retry-After past the burst),
/// other routes are not, and behind a trusted proxy each forwarded address has its own budget.
#[test]
fn session_creation_is_rate_limited_per_client_address() {
    let s = start_with(
        |c| {
            c.rate_burst = 3;
            c.rate_period = Duration::from_secs(60);
        },
        None,
        [3; 32],
    );
    let url = format!("{}/v1/sessions", s.base);
    let statuses: Vec<u16> = (0..4).map(|_| call("POST", &url, None).0).collect();
    assert_eq!(statuses, [201, 201, 201, 429]);
    let r = agent().post(&url).send_empty().expect("request");
    assert_eq!(r.status().as_u16(), 429);
    assert!(
        r.headers().get("retry-after").is_some(),
        "{:?}",
        r.headers()
    );
    assert_eq!(
        call("GET", &format!("{}/.well-known/jwks.json", s.base), None).0,
        200
    );
    // A forwarded address counts only behind a trusted proxy.
    let forwarded = |base: &str, ip: &str| {
        agent()
            .post(&format!("{base}/v1/sessions"))
            .header("x-forwarded-for", ip)
            .send_empty()
            .expect("request")
            .status()
            .as_u16()
    };
    assert_eq!(
        forwarded(&s.base, "203.0.113.7"),
        429,
        "without trust_proxy the header is ignored"
    );
    let proxied = start_with(
        |c| {
            c.rate_burst = 1;
            c.rate_period = Duration::from_secs(60);
            c.trust_proxy = true;
        },
        None,
        [3; 32],
    );
    assert_eq!(forwarded(&proxied.base, "203.0.113.7"), 201);
    assert_eq!(forwarded(&proxied.base, "203.0.113.7"), 429);
    assert_eq!(forwarded(&proxied.base, "203.0.113.8"), 201);
}

/// `--no-demo` serves the session API and probes only; `--cors-origin` lets the named origins'
/// pages call it, and no other.
#[test]
fn api_only_mode_and_the_cors_allowlist() {
    let shop = "https://shop.example";
    let s = start_with(
        |c| {
            c.serve_site = false;
            c.cors_origins = vec![axum::http::HeaderValue::from_static("https://shop.example")];
        },
        None,
        [3; 32],
    );
    let a = agent();
    assert_eq!(
        a.get(&format!("{}/demo/", s.base))
            .call()
            .expect("get")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        a.get(&format!("{}/liveness-check.js", s.base))
            .call()
            .expect("get")
            .status()
            .as_u16(),
        404
    );
    let signup = a
        .post(&format!("{}/demo/signup", s.base))
        .header("content-type", "application/json")
        .send("{}")
        .expect("post");
    assert_eq!(signup.status().as_u16(), 404);
    assert_eq!(
        a.get(&format!("{}/healthz", s.base))
            .call()
            .expect("get")
            .status()
            .as_u16(),
        200
    );
    let allowed = a
        .post(&format!("{}/v1/sessions", s.base))
        .header("origin", shop)
        .send_empty()
        .expect("post");
    assert_eq!(allowed.status().as_u16(), 201);
    assert_eq!(allowed.headers()["access-control-allow-origin"], shop);
    let other = a
        .post(&format!("{}/v1/sessions", s.base))
        .header("origin", "https://evil.example")
        .send_empty()
        .expect("post");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
    // The default: same-origin only, the site served.
    let d = start();
    let plain = a
        .post(&format!("{}/v1/sessions", d.base))
        .header("origin", shop)
        .send_empty()
        .expect("post");
    assert!(plain.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn a_forged_client_score_is_a_finding_not_a_pass() {
    let s = start();
    let (frames, p, live) = honest_frames();
    // The client claims the opposite verdict with a score to match.
    let forged = if live { 0.999 } else { 0.001 };
    let (c, status, body) = verified(&s, &frames, forged, !live);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"], false);
    // The passive model decides before the score check when it says attack.
    let decided = if live { "mismatch" } else { "attack" };
    assert_eq!(body["verdict"], decided);
    assert!(
        body["findings"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("mismatch"))),
        "{body}"
    );
    assert_eq!(
        body["pSpoof"],
        Value::Null,
        "no score before a final live verdict"
    );
    let row = state_of(&s, &c.id);
    assert_eq!(row["verdict"], decided);
    assert!(
        row["findings"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.starts_with("score-mismatch")))),
        "the audit log has the detail: {row}"
    );
    let _ = p;
}

#[test]
fn nonces_are_single_use_sessions_expire_and_refused_requests_write_nothing() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let (c, status, _) = verified(&s, &frames, p, live);
    assert_eq!(status, 200);
    let url = format!("{}/v1/sessions/{}/verify", s.base, c.id);
    let before = state_of(&s, &c.id);
    let (status, body, _) = call("POST", &url, Some(verify_body(&c.nonce, &frames, p, live)));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("used")),
        "{body}"
    );
    assert_eq!(
        state_of(&s, &c.id),
        before,
        "a refused verify changes nothing"
    );

    let other = create(&s);
    let (status, body, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", s.base, other.id),
        Some(verify_body(&c.nonce, &frames, p, live)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("nonce")),
        "{body}"
    );
    assert_eq!(state_of(&s, &other.id)["state"], "open");
    let (status, _, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", s.base, "f".repeat(32)),
        Some(verify_body("x", &frames, p, live)),
    );
    assert_eq!(status, 404);
    let (status, _, _) = call("GET", &format!("{}/v1/sessions/not-an-id", s.base), None);
    assert_eq!(status, 404);

    let quick = start_with(
        |c| c.session_ttl = Duration::from_millis(200),
        None,
        [3; 32],
    );
    let c = create(&quick);
    std::thread::sleep(Duration::from_millis(500));
    let (status, body, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", quick.base, c.id),
        Some(verify_body(&c.nonce, &frames, p, live)),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("expired")),
        "{body}"
    );
    assert_eq!(state_of(&quick, &c.id)["state"], "open");
}

#[test]
fn bad_uploads_are_4xx_that_name_the_fault_and_leave_the_session_open() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let c = create(&s);
    let url = format!("{}/v1/sessions/{}/verify", s.base, c.id);
    let png = base64::engine::general_purpose::STANDARD
        .decode(&frames.frames[0])
        .expect("b64");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let with = |replace: &dyn Fn(&mut Vec<String>)| {
        let mut f = frames.frames.clone();
        replace(&mut f);
        let check = HonestCheck {
            frames: f,
            track: frames.track.clone(),
            times: frames.times.clone(),
            verdict: frames.verdict,
        };
        verify_body(&c.nonce, &check, p, live)
    };
    let with_track = |replace: &dyn Fn(&mut Vec<String>, &mut Vec<f64>)| {
        let (mut track, mut times) = (frames.track.clone(), frames.times.clone());
        replace(&mut track, &mut times);
        let check = HonestCheck {
            frames: frames.frames.clone(),
            track,
            times,
            verdict: frames.verdict,
        };
        verify_body(&c.nonce, &check, p, live)
    };
    let wide = encode_png(&vec![0u8; 4097 * 4], 4097, 1);
    let large = encode_png(&vec![0u8; 321 * 10 * 4], 321, 10);
    let cases: Vec<(String, u16, &str)> = vec![
        (with(&|f| f.truncate(4)), 400, "4 frames"),
        (with(&|f| f[2] = "***".into()), 400, "frame 2: not base64"),
        (with(&|f| f[1] = b64(b"GIF89a not a png")), 400, "frame 1: not a PNG"),
        (with(&|f| f[3] = b64(&png[..png.len() / 2])), 400, "frame 3: not a complete PNG"),
        (with(&|f| f[0] = wide.clone()), 400, "frame 0: 4097x1"),
        (with(&|f| f[4] = encode_png(&[0u8; 16 * 16 * 4], 16, 16)), 400, "frame 4 is 16x16"),
        (with_track(&|t, _| t.clear()), 400, "challenge.frames has 0 frames"),
        (with_track(&|t, _| t.resize(101, String::new())), 400, "challenge.frames has 101 frames"),
        (with_track(&|t, _| t[3] = large.clone()), 400, "challenge.frames: frame 3 is 321x10"),
        (with_track(&|t, _| t[7] = "***".into()), 400, "challenge.frames: frame 7: not base64"),
        (with_track(&|_, times| { times.pop(); }), 400, "challenge.times has"),
        // Arrays far beyond the limits are refused as they are read (no memory for millions).
        (with(&|f| f.resize(17, String::new())), 400, "more than 16 items"),
        (with_track(&|t, _| t.resize(129, String::new())), 400, "more than 128 items"),
        (with_track(&|_, times| times.resize(257, 0.0)), 400, "more than 256 items"),
        ("{not json".into(), 400, "not a valid request"),
        (json!({ "nonce": c.nonce, "frames": frames.frames, "challenge": { "frames": frames.track, "times": frames.times }, "client": { "pSpoof": 2.0, "live": true, "captureMs": 1.0 } }).to_string(), 400, "not a probability"),
        (json!({ "nonce": c.nonce, "frames": frames.frames, "client": { "pSpoof": p, "live": live, "captureMs": 450.0 } }).to_string(), 400, "missing field `challenge`"),
        (json!({ "nonce": c.nonce, "frames": frames.frames }).to_string(), 400, "missing field"),
    ];
    for (body, status, needle) in cases {
        let (got, answer, _) = call("POST", &url, Some(body));
        assert_eq!(got, status, "{needle}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle}: {answer}");
    }
    // Not JSON at all, and a body beyond the limit.
    let a = agent();
    let r = a
        .post(&url)
        .header("content-type", "text/plain")
        .send("hello")
        .expect("request");
    assert_eq!(r.status().as_u16(), 415);
    let huge = "x".repeat(liveness_server::sessions::MAX_BODY_BYTES + 1024);
    let r = a
        .post(&url)
        .header("content-type", "application/json")
        .send(huge)
        .expect("request");
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        state_of(&s, &c.id)["state"],
        "open",
        "nothing written for refused requests"
    );
}

#[test]
fn the_demo_signup_accepts_only_a_valid_unused_live_token() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let signup = |token: &str| {
        call(
            "POST",
            &format!("{}/demo/signup", s.base),
            Some(json!({ "name": "Ada", "email": "ada@example.org", "token": token }).to_string()),
        )
    };
    // A forged `result` event carries no token, or a made-up one.
    assert_eq!(signup("").0, 403);
    assert_eq!(signup("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.AAAA").0, 403);
    // A token signed by another key.
    let other = tokens::KeyRing::from_base64(
        &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        "other",
    )
    .expect("key");
    let now = tokens::now_seconds();
    let foreign = other.sign(&claims_for("0".repeat(32), true, now, now + 60));
    let (status, body, _) = signup(&foreign);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("token")),
        "{body}"
    );
    // The real token of a verified session: accepted once if live, refused if not.
    let (_, status, body) = verified(&s, &frames, p, live);
    assert_eq!(status, 200);
    let token = body["token"].as_str().expect("token").to_owned();
    let (status, answer, _) = signup(&token);
    if live {
        assert_eq!(status, 201, "{answer}");
        let (again, answer, _) = signup(&token);
        assert_eq!((again, answer["error"].as_str()), (409, Some("token-used")));
    } else {
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("not-live")),
            "{answer}"
        );
    }
    // An expired token (token lifetimes are whole seconds: this one ends the second it is made).
    let quick = start_with(|c| c.token_ttl = Duration::ZERO, None, [3; 32]);
    let (_, _, body) = verified(&quick, &frames, p, live);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, _) = call(
        "POST",
        &format!("{}/demo/signup", quick.base),
        Some(
            json!({ "name": "Ada", "email": "ada@example.org", "token": body["token"] })
                .to_string(),
        ),
    );
    assert_eq!(status, 410);
}

#[test]
fn the_site_serves_with_the_policy_validators_and_content_hash_caching() {
    let s = start();
    let a = agent();
    // Probes, and the audit log the operator's alone.
    let r = a.get(&format!("{}/healthz", s.base)).call().expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let (status, ready, _) = call("GET", &format!("{}/readyz", s.base), None);
    assert_eq!((status, &ready["ready"]), (200, &json!(true)), "{ready}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s._dir.path().join("log.db"))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the database is created 0600, not {mode:o}"
        );
    }
    let r = a.get(&format!("{}/demo", s.base)).call().expect("get");
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()["location"], "/demo/");
    let r = a.get(&format!("{}/", s.base)).call().expect("get");
    assert_eq!(r.headers()["location"], "/demo/");
    let r = a.get(&format!("{}/demo/", s.base)).call().expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("worker-src 'self'")
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    let r = a
        .post(&format!("{}/demo/", s.base))
        .send_empty()
        .expect("post");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    for path in [
        "/models/../Cargo.toml",
        "/..%2fCargo.toml",
        "/models/%2e%2e/Cargo.toml",
        "/nope.js",
    ] {
        let mut r = a.get(&format!("{}{path}", s.base)).call().expect("get");
        assert_eq!(r.status().as_u16(), 404, "{path}");
        let text = r.body_mut().read_to_string().unwrap_or_default();
        assert!(
            !text.contains("Cargo") && !text.contains("nope") && !text.contains("git"),
            "{path}: the 404 echoes {text:?}"
        );
    }
    // A folder's redirect stays on this origin (`//demo/` would be another host).
    let r = a.get(&format!("{}//demo", s.base)).call().expect("get");
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()["location"], "/demo/");
    let r = a
        .get(&format!("{}/liveness-check.js", s.base))
        .call()
        .expect("get");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );

    // The model: ETag of its SHA-256, 304 on revalidation, immutable when asked by hash, Range.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(root().join("models/default.json")).expect("manifest"),
    )
    .expect("json");
    let sha = manifest["sha256"].as_str().expect("sha");
    let r = a
        .get(&format!("{}/models/default.onnx?v={sha}", s.base))
        .header("range", "bytes=0-15")
        .call()
        .expect("get");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.headers()["etag"].to_str().expect("etag"),
        format!("\"sha256-{sha}\"")
    );
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
    let r = a
        .get(&format!("{}/models/default.onnx", s.base))
        .header("if-none-match", format!("\"sha256-{sha}\""))
        .call()
        .expect("get");
    assert_eq!(r.status().as_u16(), 304);
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_site_and_odd_folders_are_not_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("folder.js")).expect("mkdir");
    std::fs::write(dir.path().join("secret.txt"), "secret").expect("write");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), web.join("link.txt"))
        .expect("symlink");
    std::fs::write(web.join("ok.txt"), "ok").expect("write");
    std::fs::write(web.join(".env"), "SECRET=1").expect("write");
    std::fs::create_dir_all(web.join(".git")).expect("mkdir");
    std::fs::write(web.join(".git/config"), "[core]").expect("write");
    let s = start_with(|c| c.web_dir = web.clone(), None, [3; 32]);
    let a = agent();
    let get = |p: &str| {
        a.get(&format!("{}{p}", s.base))
            .call()
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(get("/ok.txt"), 200);
    for dotfile in ["/.env", "/%2eenv", "/.git/config", "/.git/"] {
        assert_eq!(get(dotfile), 404, "{dotfile}: dotfiles are never served");
    }
    assert_eq!(get("/link.txt"), 404, "a symlink out of the folder");
    assert_eq!(
        get("/folder.js"),
        308,
        "a folder named like a file redirects"
    );
    assert_eq!(get("/folder.js/"), 404, "and has no index");
    assert_eq!(get("/ok.txt"), 200, "the server is still up");
}

/// Two instances behind a load balancer share one PostgreSQL: a session created on one is
/// verified on the other, and its nonce is spent for both.
#[test]
#[ignore = "needs a PostgreSQL: scripts/with-postgres.sh cargo test -p liveness-server -- --ignored (scripts/test.sh runs it)"]
fn two_instances_share_sessions_through_postgres() {
    let url = std::env::var("LIVENESS_TEST_POSTGRES").expect(
        "LIVENESS_TEST_POSTGRES is not set: run this test through scripts/with-postgres.sh",
    );
    // Enough slots that twenty verifies at once are all admitted (none answered busy).
    let a = start_with(|c| c.verify_slots = 8, Some(&url), [5; 32]);
    let b = start_with(|c| c.verify_slots = 8, Some(&url), [5; 32]);
    let (frames, p, live) = honest_frames();
    let c = create(&a);
    std::thread::sleep(Duration::from_millis(500));
    let body = verify_body(&c.nonce, &frames, p, live);
    let (status, answer, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", b.base, c.id),
        Some(body.clone()),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", a.base, c.id),
        Some(body),
    );
    assert_eq!((status, answer["error"].as_str()), (409, Some("used")));
    assert_eq!(state_of(&a, &c.id)["state"], "done");
    // Twenty verifies of one session at once, spread over both instances: the database's
    // conditional claim lets one through.
    let c = create(&a);
    std::thread::sleep(PERFORM);
    let body = verify_body(&c.nonce, &frames, p, live);
    let statuses = verify_in_parallel(&[&a.base, &b.base], &c.id, &body, 20);
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (1, 19),
        "{statuses:?}"
    );
    assert_eq!(state_of(&b, &c.id)["state"], "done");
    // Twenty consumes of its token spread over both instances: one wins.
    let token = answer_token(&b, &frames, p, live);
    let statuses = consume_in_parallel(&[&a.base, &b.base], &token, 20);
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (1, 19),
        "{statuses:?}"
    );

    // The database restarted mid-run: while it is down, clients get 503 `unavailable` (never a
    // 500) and nothing is decided; once it is back, the same session verifies.
    let ctl = std::env::var("LIVENESS_TEST_POSTGRES_CTL").expect(
        "LIVENESS_TEST_POSTGRES_CTL is not set: run this test through scripts/with-postgres.sh",
    );
    let pg = |action: &str| {
        let out = std::process::Command::new(&ctl)
            .arg(action)
            .output()
            .expect("the PostgreSQL control script runs");
        assert!(
            out.status.success(),
            "{ctl} {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let c = create(&a);
    pg("stop");
    for (url, body) in [
        (format!("{}/v1/sessions", a.base), None),
        (
            format!("{}/v1/sessions/{}/verify", b.base, c.id),
            Some(verify_body(&c.nonce, &frames, p, live)),
        ),
    ] {
        let (status, answer, _) = call("POST", &url, body);
        assert_eq!(
            (status, answer["error"].as_str()),
            (503, Some("unavailable")),
            "{url}: {answer}"
        );
    }
    pg("start");
    std::thread::sleep(PERFORM);
    let (status, answer, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", b.base, c.id),
        Some(verify_body(&c.nonce, &frames, p, live)),
    );
    assert_eq!(
        status, 200,
        "the session resumes once the database is back: {answer}"
    );
    assert_eq!(state_of(&a, &c.id)["state"], "done");
}

/// A fresh session verified on `s`; its token.
fn answer_token(s: &Server, check: &HonestCheck, p: f32, live: bool) -> String {
    let (_, status, body) = verified(s, check, p, live);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// `POST /v1/tokens/consume` with `key` as the operator's API key (none: no header).
fn consume(base: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = agent()
        .post(&format!("{base}/v1/tokens/consume"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        request = request.header("authorization", &format!("Bearer {k}"));
    }
    let mut r = request.send(body.to_string()).expect("request");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `n` calls of `request` (given its index) released at once; their statuses.
fn in_parallel(n: usize, request: impl Fn(usize) -> u16 + Sync) -> Vec<u16> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n)
            .map(|i| {
                let (start, request) = (&start, &request);
                scope.spawn(move || {
                    start.wait();
                    request(i)
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().expect("thread"))
            .collect()
    })
}

/// `n` verifies of session `id` with `body` at once, spread over `bases`; their statuses.
fn verify_in_parallel(bases: &[&str], id: &str, body: &str, n: usize) -> Vec<u16> {
    in_parallel(n, |i| {
        call(
            "POST",
            &format!("{}/v1/sessions/{id}/verify", bases[i % bases.len()]),
            Some(body.to_owned()),
        )
        .0
    })
}

/// `n` consumes of `token` at once, spread over `bases`; their statuses.
fn consume_in_parallel(bases: &[&str], token: &str, n: usize) -> Vec<u16> {
    in_parallel(n, |i| {
        consume(
            bases[i % bases.len()],
            json!({ "token": token }),
            Some(API_KEY),
        )
        .0
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn a_token_is_consumed_once_under_twenty_parallel_calls_and_only_by_the_operator() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let token = answer_token(&s, &frames, p, live);
    // Without the operator's key, or with another, nothing is consumed.
    let body = json!({ "token": token });
    assert_eq!(consume(&s.base, body.clone(), None).0, 401);
    assert_eq!(
        consume(&s.base, body.clone(), Some("not-the-key-0123456789")).0,
        401
    );
    // The audience is checked when the backend names its own.
    let (status, answer) = consume(
        &s.base,
        json!({ "token": token, "audience": "https://evil.example" }),
        Some(API_KEY),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("token")),
        "{answer}"
    );
    // A made-up token.
    let (status, _) = consume(&s.base, json!({ "token": "a.b.c" }), Some(API_KEY));
    assert_eq!(status, 403);
    let statuses = consume_in_parallel(&[&s.base], &token, 20);
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (1, 19),
        "{statuses:?}"
    );
    // The audit log records the first use; the claims came back with it.
    let row = state_of(&s, &decode_sub(&token));
    assert!(row["tokenUsedAt"].as_i64().is_some(), "{row}");
    // A server without an operator key refuses every consume.
    let closed = start_fixed(|c| {
        c.api_key = None;
    });
    let other = answer_token(&closed, &frames, p, live);
    let (status, answer) = consume(&closed.base, json!({ "token": other }), Some(API_KEY));
    assert_eq!((status, answer["error"].as_str()), (403, Some("operator")));
}

/// The session id a token names (read without checking: the test checks elsewhere).
fn decode_sub(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let json: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json");
    json["sub"].as_str().expect("sub").to_owned()
}

#[test]
fn a_rotated_key_signs_and_the_old_one_still_verifies_its_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let key_dir = dir.path().join("keys");
    let mut cfg = config(dir.path(), None);
    cfg.rate_burst = 100_000;
    cfg.challenge = Some(fixed());
    cfg.api_key = Some(API_KEY.to_owned());
    let keys = tokens::Keys::new(tokens::KeySource::Dir(key_dir.clone())).expect("keys");
    let s = start_state(cfg, keys, dir);
    let (frames, p, live) = honest_frames();
    let old = answer_token(&s, &frames, p, live);
    let kid = |t: &str| {
        jsonwebtoken::decode_header(t)
            .expect("header")
            .kid
            .expect("kid")
    };
    assert_eq!(jwks(&s).keys.len(), 1);

    tokens::KeyRing::rotate(&key_dir).expect("rotate");
    s.keys.reload().expect("reload");
    let new = answer_token(&s, &frames, p, live);
    assert_ne!(kid(&old), kid(&new), "the new key signs");
    let published = jwks(&s);
    let kids: Vec<_> = published
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert!(
        kids.contains(&kid(&old)) && kids.contains(&kid(&new)),
        "{kids:?}"
    );
    for t in [&old, &new] {
        tokens::verify(t, &published, &tokens::Expect::default()).expect("both verify");
        assert_eq!(
            consume(&s.base, json!({ "token": t }), Some(API_KEY)).0,
            200
        );
    }
}

/// Runs `program args…`; (success, stdout, stderr).
fn run_example(program: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .env("LIVENESS_API_KEY", API_KEY)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/setup.sh installs it)", program.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Node and Python examples do what a host's backend does, with their languages' usual JWT
/// libraries: verify a real token against the JWKS, refuse another audience, consume it once.
#[test]
fn the_node_and_python_examples_verify_and_consume_a_real_token() {
    let node_example = root().join("examples/node/verify-token.mjs");
    let python_example = root().join("examples/python/verify_token.py");
    assert!(
        root().join("examples/node/node_modules/jose").is_dir(),
        "examples/node has no node_modules/jose: run scripts/setup.sh (npm ci --prefix examples/node)"
    );
    let python = root().join(".venv/bin/python");
    let s = start();
    let (frames, p, live) = honest_frames();
    let audience = "liveness-server";
    let examples: [(PathBuf, Vec<String>); 2] = [
        (
            PathBuf::from("node"),
            vec![node_example.display().to_string()],
        ),
        (python, vec![python_example.display().to_string()]),
    ];
    for (program, script) in &examples {
        let token = answer_token(&s, &frames, p, live);
        let args = |aud: &str| -> Vec<String> {
            let mut a = script.clone();
            a.extend(["--server", &s.base, "--audience", aud, &token].map(str::to_owned));
            a
        };
        let run = |aud: &str| {
            let a = args(aud);
            run_example(program, &a.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let (ok, _, err) = run("https://evil.example");
        assert!(!ok, "{script:?}: another audience must be refused");
        assert!(err.contains("token refused"), "{script:?}: {err}");
        let (ok, out, err) = run(audience);
        if live {
            assert!(ok, "{script:?}: {err}");
            let claims: Value = serde_json::from_str(out.trim()).expect("claims JSON");
            assert_eq!(claims["sub"].as_str(), Some(decode_sub(&token).as_str()));
            // The second use is refused by the server's consume.
            let (again, _, err) = run(audience);
            assert!(!again, "{script:?}: a replay must be refused");
            assert!(err.contains("token-used"), "{script:?}: {err}");
        } else {
            assert!(!ok && err.contains("not live"), "{script:?}: {err}");
        }
        // A token signed by another server's key fails its signature check.
        let forged = tokens::KeyRing::from_base64(
            &base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
            "other",
        )
        .expect("key");
        let mut claims = claims_for(
            decode_sub(&token),
            true,
            tokens::now_seconds(),
            tokens::now_seconds() + 60,
        );
        claims.aud = audience.to_owned();
        let mut a = script.clone();
        let forged_token = forged.sign(&claims);
        a.extend(["--server", &s.base, "--audience", audience, &forged_token].map(str::to_owned));
        let (ok, _, err) = run_example(program, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!ok && err.contains("token refused"), "{script:?}: {err}");
    }
}

#[test]
fn the_openapi_document_matches_the_router() {
    let s = start();
    let (status, doc, _) = call("GET", &format!("{}/openapi.json", s.base), None);
    assert_eq!(status, 200);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(liveness_server::openapi::DOCUMENT).expect("JSON")
    );
    let paths = doc["paths"].as_object().expect("paths");
    let methods = ["get", "post", "put", "delete", "patch"];
    for (path, item) in paths {
        let url = format!("{}{}", s.base, path.replace("{id}", &"0".repeat(32)));
        for method in methods {
            let routed = item.get(method).is_some();
            let r = agent()
                .run(
                    ureq::http::Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&url)
                        .header("content-type", "application/json")
                        .body(if method == "get" {
                            String::new()
                        } else {
                            "{}".to_owned()
                        })
                        .expect("request"),
                )
                .expect("answer");
            let status = r.status().as_u16();
            if routed {
                // Routed: whatever the answer, not "no such route".
                assert!(status != 405, "{method} {path}: documented but 405");
                if status == 404 {
                    let mut r = r;
                    let body = r.body_mut().read_to_string().unwrap_or_default();
                    assert!(
                        body.contains("\"session\""),
                        "{method} {path}: documented but not routed ({body})"
                    );
                }
            } else if !path.starts_with("/demo") {
                assert_eq!(status, 405, "{method} {path}: routed but not documented");
            }
        }
    }
    // Every route the server knows (its metrics' route labels) is documented.
    for path in [
        "/v1/sessions",
        "/v1/sessions/x",
        "/v1/sessions/x/verify",
        "/v1/tokens/consume",
        "/.well-known/jwks.json",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/demo/signup",
    ] {
        let route = liveness_server::telemetry::route_of(path);
        assert!(paths.contains_key(route), "{route} is not documented");
    }
}

#[test]
fn metrics_count_requests_verdicts_and_the_verify_pool_for_the_operator() {
    let s = start();
    let (frames, p, live) = honest_frames();
    let (_, status, body) = verified(&s, &frames, p, live);
    assert_eq!(status, 200);
    let verdict = body["verdict"].as_str().expect("verdict").to_owned();
    let metrics_url = format!("{}/metrics", s.base);
    assert_eq!(
        agent()
            .get(&metrics_url)
            .call()
            .expect("answer")
            .status()
            .as_u16(),
        401
    );
    let mut r = agent()
        .get(&metrics_url)
        .header("authorization", &format!("Bearer {API_KEY}"))
        .call()
        .expect("answer");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.body_mut().read_to_string().expect("text");
    for line in [
        format!("liveness_verdicts_total{{verdict=\"{verdict}\"}} 1"),
        "liveness_http_requests_total{route=\"/v1/sessions\",method=\"POST\",status=\"201\"} 1".to_owned(),
        "liveness_http_requests_total{route=\"/v1/sessions/{id}/verify\",method=\"POST\",status=\"200\"} 1".to_owned(),
        format!("liveness_verify_slots {}", Config::new(PathBuf::new(), PathBuf::new(), PathBuf::new(), String::new()).verify_slots),
        "liveness_verify_slots_in_use 0".to_owned(),
        "liveness_verify_busy_total 0".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    assert!(
        text.contains("liveness_http_request_duration_seconds_bucket{le=\"0.001\",route=\"/v1/sessions/{id}/verify\"}")
            || text.contains("liveness_http_request_duration_seconds_bucket{route=\"/v1/sessions/{id}/verify\",le=\"0.001\"}"),
        "{text}"
    );
    // Unknown paths share one label: the metrics' size does not grow with what clients send.
    for i in 0..5 {
        call("GET", &format!("{}/nothing-{i}", s.base), None);
    }
    let mut r = agent()
        .get(&metrics_url)
        .header("authorization", &format!("Bearer {API_KEY}"))
        .call()
        .expect("answer");
    let text = r.body_mut().read_to_string().expect("text");
    assert!(!text.contains("nothing-"), "{text}");
    assert!(text.contains("route=\"static\""), "{text}");
}

/// Runs `liveness-server serve` in `work` with the data folder `data` and `extra` flags; the
/// child, its base URL and its stdout lines.
#[cfg(unix)]
fn spawn_server(
    work: &Path,
    data: &Path,
    extra: &[&str],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_liveness-server"))
        .current_dir(work)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data)
        .arg("--web")
        .arg(root().join("web"))
        .arg("--models")
        .arg(root().join("models"))
        .arg("--model")
        .arg(root().join("models/default.onnx"))
        .args(extra)
        .env_remove("LIVENESS_SIGNING_KEY")
        .env_remove("LIVENESS_API_KEY")
        .env_remove("LIVENESS_DATABASE")
        .env("LIVENESS_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let base = loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            panic!("no 'Session API' line from the server within 120 s; it printed: {seen:?}")
        };
        if let Some(rest) = line.split("Session API: ").nth(1) {
            break rest.split("/v1/").next().expect("url").to_owned();
        }
        seen.push(line);
    };
    (child, base, rx)
}

/// Sends SIGTERM to `child`.
#[cfg(unix)]
fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// SIGTERM while a verify is being scored: the verify is answered and recorded, then the
/// server exits cleanly; a new connection is refused meanwhile.
#[cfg(unix)]
#[test]
fn shutdown_finishes_a_verify_in_flight() {
    let work = tempfile::tempdir().expect("tmp");
    let (mut child, base, _lines) = spawn_server(
        work.path(),
        &work.path().join("data"),
        &["--fixed-challenge", FIXED],
    );
    let (frames, p, live) = honest_frames();
    let (status, created, _) = call("POST", &format!("{base}/v1/sessions"), None);
    assert_eq!(status, 201, "{created}");
    let c: Created = serde_json::from_value(created).expect("created");
    std::thread::sleep(PERFORM);
    let url = format!("{base}/v1/sessions/{}/verify", c.id);
    let body = verify_body(&c.nonce, &frames, p, live);
    let in_flight = std::thread::spawn(move || call("POST", &url, Some(body)));
    // The verify's frames are decoded and scored for a while (debug build: about a second).
    std::thread::sleep(Duration::from_millis(300));
    terminate(&child);
    let (status, answer, _) = in_flight.join().expect("thread");
    assert_eq!(
        status, 200,
        "the verify in flight must be answered: {answer}"
    );
    assert!(answer["token"].as_str().is_some(), "{answer}");
    let exit = child.wait().expect("exits");
    assert!(exit.success(), "{exit}");
}

/// A database that does not answer (SQLite locked by another process) gives 503 `unavailable`
/// with Retry-After, never a 500, and writes nothing; once it is back the same session verifies.
#[test]
fn a_locked_database_is_a_503_and_sessions_resume_when_it_is_back() {
    use sqlx::Connection;
    let s = start();
    let (frames, p, live) = honest_frames();
    let c = create(&s);
    std::thread::sleep(PERFORM);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = db_url(&s);
    let mut lock = runtime
        .block_on(sqlx::sqlite::SqliteConnection::connect(&db))
        .expect("a second connection");
    let count = |lock: &mut sqlx::sqlite::SqliteConnection| -> i64 {
        runtime
            .block_on(sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(lock))
            .expect("count")
    };
    let before = count(&mut lock);
    runtime
        .block_on(sqlx::query("BEGIN EXCLUSIVE").execute(&mut lock))
        .expect("lock");
    let verify_url = format!("{}/v1/sessions/{}/verify", s.base, c.id);
    for (method, url, body) in [
        ("POST", format!("{}/v1/sessions", s.base), None),
        (
            "POST",
            verify_url.clone(),
            Some(verify_body(&c.nonce, &frames, p, live)),
        ),
    ] {
        let (status, answer, headers) = call(method, &url, body);
        assert_eq!(
            (status, answer["error"].as_str()),
            (503, Some("unavailable")),
            "{url}: {answer}"
        );
        assert!(headers.get("retry-after").is_some(), "{headers:?}");
    }
    runtime
        .block_on(sqlx::query("COMMIT").execute(&mut lock))
        .expect("unlock");
    assert_eq!(
        count(&mut lock),
        before,
        "a refused request wrote a session"
    );
    let (status, answer, _) = call(
        "POST",
        &verify_url,
        Some(verify_body(&c.nonce, &frames, p, live)),
    );
    assert_eq!(
        status, 200,
        "the session resumes once the database is back: {answer}"
    );
}

/// `liveness-server serve` as a user runs it: its state goes into the data folder (private),
/// nothing into the working folder; each request is one JSON log line with id, route, status,
/// latency and session, and never the nonce; SIGTERM stops it cleanly.
#[cfg(unix)]
#[test]
fn serve_keeps_its_state_in_the_data_folder_and_logs_one_json_line_per_request() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tmp");
    let data = work.path().join("data");
    let (mut child, base, rx) = spawn_server(work.path(), &data, &[]);
    let (status, created, _) = call("POST", &format!("{base}/v1/sessions"), None);
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_owned();
    let nonce = created["nonce"].as_str().expect("nonce").to_owned();
    assert_eq!(call("GET", &format!("{base}/healthz"), None).0, 200);
    // SIGTERM: a clean stop.
    terminate(&child);
    let status = child.wait().expect("exits");
    assert!(status.success(), "SIGTERM should stop it cleanly: {status}");
    let lines: Vec<String> = rx.try_iter().collect();
    let log: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = log
        .iter()
        .find(|l| l["span"]["route"] == "/v1/sessions")
        .unwrap_or_else(|| panic!("no log line for POST /v1/sessions in {lines:?}"));
    assert_eq!(line["fields"]["status"], 201, "{line}");
    assert!(line["fields"]["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(line["span"]["session"], id.as_str(), "{line}");
    assert_eq!(line["span"]["method"], "POST", "{line}");
    assert!(
        line["span"]["id"].as_str().is_some_and(|i| !i.is_empty()),
        "{line}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&nonce)),
        "a nonce reached the log: {lines:?}"
    );
    // State: in the data folder, private; nothing in the working folder.
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("liveness.db")), 0o600);
    assert_eq!(mode(&data.join("operator-api.key")), 0o600);
    assert_eq!(mode(&data.join("keys")), 0o700);
    let mut here: Vec<_> = std::fs::read_dir(work.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    here.sort();
    assert_eq!(here, ["data"], "the server wrote into its working folder");
}

/// Verifies beyond four per verify slot are turned away with a clean `503 busy` (the body read
/// and dropped, so the uploading client gets the answer), and admitted again once others end.
#[test]
fn verifies_beyond_the_admission_limit_get_a_clean_503() {
    use std::io::Write;
    let s = start_fixed(|c| {
        c.verify_slots = 1;
    });
    let (frames, p, live) = honest_frames();
    let c = create(&s);
    let addr = s.base.trim_start_matches("http://").to_owned();
    // Four verifies that send their headers and one byte of a body, and wait.
    let held: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut t = std::net::TcpStream::connect(&addr).expect("connect");
            write!(
                t,
                "POST /v1/sessions/{}/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
                c.id
            )
            .expect("write");
            t
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("{}/v1/sessions/{}/verify", s.base, c.id);
    let (status, answer, headers) =
        call("POST", &url, Some(verify_body(&c.nonce, &frames, p, live)));
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("busy")),
        "{answer}"
    );
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    std::thread::sleep(PERFORM);
    let (status, answer, _) = call("POST", &url, Some(verify_body(&c.nonce, &frames, p, live)));
    assert_eq!(
        status, 200,
        "admitted again once the others hung up: {answer}"
    );
}

/// The whole audit table (every column that a verify or a token use writes), in id order.
type AuditRow = (
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn audit_table(s: &Server) -> Vec<AuditRow> {
    use sqlx::Connection;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = db_url(s);
    runtime.block_on(async {
        let mut c = sqlx::sqlite::SqliteConnection::connect(&db)
            .await
            .expect("the test's audit log");
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, state, verified_ms, verdict, findings, token_used_ms, challenge_report FROM sessions ORDER BY id",
        )
        .fetch_all(&mut c)
        .await
        .expect("rows")
    })
}

/// A verify body with the client's own score, verdict and capture time.
fn body_with(
    nonce: &str,
    check: &HonestCheck,
    p_spoof: f64,
    live: bool,
    capture_ms: f64,
) -> String {
    json!({
        "nonce": nonce,
        "frames": check.frames,
        "challenge": { "frames": check.track, "times": check.times },
        "client": { "pSpoof": p_spoof, "live": live, "captureMs": capture_ms },
    })
    .to_string()
}

/// Every verdict branch the server has, each reached by the one fault that decides it: a score
/// off by more than the tolerance with the verdict unchanged, one within it, an implausible
/// capture time, frames without a face (the face gate), and twenty verifies of one session at
/// once (one wins; nothing else is written).
#[test]
fn every_verdict_branch_is_reached_by_its_own_fault() {
    let s = start_fixed(|c| {
        // Twenty verifies at once are all admitted and wait for a slot.
        c.verify_slots = 8;
    });
    let (check, p, live) = honest_frames();
    let p = f64::from(p);
    let verify = |body: &dyn Fn(&str) -> String| {
        let c = create(&s);
        std::thread::sleep(PERFORM);
        let (status, answer, _) = call(
            "POST",
            &format!("{}/v1/sessions/{}/verify", s.base, c.id),
            Some(body(&c.nonce)),
        );
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let findings = |answer: &Value| -> Vec<String> {
        serde_json::from_value(answer["findings"].clone()).expect("findings")
    };
    // Only the score moved, by 2e-3 (the verdict the client claims is the server's).
    let off = if p > 0.5 { p - 2e-3 } else { p + 2e-3 };
    let answer = verify(&|n| body_with(n, &check, off, live, 800.0));
    assert!(
        findings(&answer).contains(&"mismatch".to_owned()),
        "{answer}"
    );
    // Within the tolerance (5e-4): no mismatch.
    let near = if p > 0.5 { p - 5e-4 } else { p + 5e-4 };
    let answer = verify(&|n| body_with(n, &check, near, live, 800.0));
    assert!(
        !findings(&answer).contains(&"mismatch".to_owned()),
        "{answer}"
    );
    // Five frames in 100 ms: faster than the server's least interval allows.
    let answer = verify(&|n| body_with(n, &check, p, live, 100.0));
    assert!(findings(&answer).contains(&"timing".to_owned()), "{answer}");
    if live {
        assert_eq!(answer["verdict"], "timing", "{answer}");
    }
    // The five frames show no face: the server's own face gate refuses them, first.
    let wall = png_of(&vec![WALL[0]; 320 * 240 * 3]);
    let faceless = HonestCheck {
        frames: vec![wall; 5],
        track: check.track.clone(),
        times: check.times.clone(),
        verdict: check.verdict,
    };
    let answer = verify(&|n| body_with(n, &faceless, p, live, 800.0));
    assert_eq!(answer["verdict"], "refused", "{answer}");
    assert_eq!(answer["live"], false, "{answer}");

    // Twenty verifies of one session at once: one 200, nineteen 409, and one outcome recorded.
    let c = create(&s);
    std::thread::sleep(PERFORM);
    let body = body_with(&c.nonce, &check, p, live, 800.0);
    let statuses = verify_in_parallel(&[&s.base], &c.id, &body, 20);
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (1, 19),
        "{statuses:?}"
    );
    assert_eq!(state_of(&s, &c.id)["state"], "done");
}

/// Every refused request leaves the whole audit table as it was.
#[test]
fn refused_requests_leave_the_whole_audit_table_unchanged() {
    let s = start();
    let (check, p, live) = honest_frames();
    let (used, status, _) = verified(&s, &check, p, live);
    assert_eq!(status, 200);
    let open = create(&s);
    let verify_url = |id: &str| format!("{}/v1/sessions/{id}/verify", s.base);
    let post = |id: &str, body: String| call("POST", &verify_url(id), Some(body)).0;
    let raw = |content_type: &str, body: String| {
        agent()
            .post(&verify_url(&open.id))
            .header("content-type", content_type)
            .send(body)
            .map_or(0, |r| r.status().as_u16())
    };
    let mut bad = check.frames.clone();
    bad[1] = "***".into();
    let broken = HonestCheck {
        frames: bad,
        track: check.track.clone(),
        times: check.times.clone(),
        verdict: check.verdict,
    };
    type Request<'a> = Box<dyn Fn() -> u16 + 'a>;
    let cases: Vec<(&str, Request)> = vec![
        (
            "409 used",
            Box::new(|| post(&used.id, verify_body(&used.nonce, &check, p, live))),
        ),
        (
            "403 nonce",
            Box::new(|| post(&open.id, verify_body(&used.nonce, &check, p, live))),
        ),
        (
            "404 unknown",
            Box::new(|| post(&"f".repeat(32), verify_body("x", &check, p, live))),
        ),
        (
            "400 frames",
            Box::new(|| post(&open.id, verify_body(&open.nonce, &broken, p, live))),
        ),
        (
            "415 not JSON",
            Box::new(|| raw("text/plain", "hello".into())),
        ),
        (
            "413 too large",
            Box::new(|| {
                raw(
                    "application/json",
                    "x".repeat(liveness_server::sessions::MAX_BODY_BYTES + 1024),
                )
            }),
        ),
    ];
    for (name, request) in cases {
        let before = audit_table(&s);
        let status = request();
        assert_eq!(
            status.to_string(),
            name.split(' ').next().expect("status"),
            "{name}"
        );
        assert_eq!(audit_table(&s), before, "{name}: the audit table changed");
    }
    // An expired session.
    let quick = start_with(
        |c| c.session_ttl = Duration::from_millis(200),
        None,
        [3; 32],
    );
    let c = create(&quick);
    std::thread::sleep(Duration::from_millis(500));
    let before = audit_table(&quick);
    let (status, _, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", quick.base, c.id),
        Some(verify_body(&c.nonce, &check, p, live)),
    );
    assert_eq!(status, 410);
    assert_eq!(audit_table(&quick), before, "410: the audit table changed");
}

/// `--store-frames` keeps exactly the five frames a verify sent; by default none is kept.
#[test]
fn store_frames_keeps_the_verified_frames_only_when_asked() {
    let (check, p, live) = honest_frames();
    for keep in [false, true] {
        let s = start_fixed(|c| c.store_frames = keep);
        let (c, status, body) = verified(&s, &check, p, live);
        assert_eq!(status, 200, "{body}");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let db = db_url(&s);
        let stored = runtime
            .block_on(async {
                liveness_server::db::Store::connect(&db)
                    .await
                    .expect("the test's audit log")
                    .frames(&c.id)
                    .await
            })
            .expect("read");
        assert_eq!(
            stored,
            keep.then(|| check.frames.clone()),
            "store_frames {keep}"
        );
    }
}

/// The wasm module is served as `application/wasm` (what streaming compilation needs), compressed
/// for a client that accepts it, with Last-Modified; a model (float weights) is not compressed.
#[test]
fn wasm_is_served_as_application_wasm_compressed_with_last_modified() {
    let dir = tempfile::tempdir().expect("tmp");
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("pkg")).expect("mkdir");
    // Compressible bytes (a real module compresses about 3.5×).
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i % 7) as u8))
        .collect();
    std::fs::write(web.join("pkg/module_bg.wasm"), &wasm).expect("write");
    let s = start_with(|c| c.web_dir = web.clone(), None, [3; 32]);
    let get = |path: &str, encoding: &str| {
        let mut r = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .get(&format!("{}{path}", s.base))
            .header("accept-encoding", encoding)
            .call()
            .expect("get");
        let headers = r.headers().clone();
        let body = r
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("body");
        (r.status().as_u16(), headers, body.len())
    };
    let header = |h: &ureq::http::HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, headers, len) = get("/pkg/module_bg.wasm", "gzip");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/wasm");
    assert_eq!(header(&headers, "content-encoding"), "gzip", "{headers:?}");
    assert!(
        len < wasm.len() / 4,
        "{len} bytes on the wire for {}",
        wasm.len()
    );
    assert!(!header(&headers, "last-modified").is_empty(), "{headers:?}");
    let (_, headers, len) = get("/pkg/module_bg.wasm", "identity");
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(len, wasm.len());
    // A model's float weights barely compress: served as they are.
    let (status, headers, _) = get("/models/default.onnx", "gzip");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), "", "{headers:?}");
}

/// The default model with its manifest's threshold moved to 0.9999999: the drawn head (pSpoof
/// ≈ 0.9999996, a logit of ≈ 14.8 against the threshold's ≈ 15.9) is then live, so the live
/// branches are reached by construction, not by the model's mood.
fn lenient_model(dir: &Path) -> PathBuf {
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/default.json")).expect("manifest"),
    )
    .expect("json");
    manifest["threshold"] = json!(0.9999999);
    manifest["threshold_rule"] = json!("given");
    std::fs::copy(root().join("models/default.onnx"), dir.join("default.onnx")).expect("copy");
    std::fs::write(dir.join("default.json"), manifest.to_string()).expect("write");
    dir.join("default.onnx")
}

/// Both branches of the demo signup, each forced: a live verdict's token creates the account
/// once (then 409), a not-live one is refused (403 `not-live`).
#[test]
fn the_demo_signup_takes_a_live_token_once_and_refuses_a_not_live_one() {
    let models = tempfile::tempdir().expect("tmp");
    let lenient = lenient_model(models.path());
    for (model, want_live) in [
        (lenient.clone(), true),
        (root().join("models/default.onnx"), false),
    ] {
        let capture = liveness_server::honest::honest_capture(&fixed(), (320, 240), 1, INTERVAL);
        let verdict = reference_verdict(&capture, &model);
        let check = capture.with_verdict(verdict);
        assert_eq!(check.verdict.live, want_live, "{:?}", check.verdict);
        let s = start_fixed(|c| {
            c.models_dir = model.parent().expect("folder").to_path_buf();
            c.model = model.clone();
        });
        let (_, status, body) = verified(&s, &check, check.verdict.p_spoof, check.verdict.live);
        assert_eq!(
            (status, body["live"].as_bool()),
            (200, Some(want_live)),
            "{body}"
        );
        let token = body["token"].as_str().expect("token").to_owned();
        let signup = || {
            call(
                "POST",
                &format!("{}/demo/signup", s.base),
                Some(
                    json!({ "name": "Ada", "email": "ada@example.org", "token": token })
                        .to_string(),
                ),
            )
        };
        let (status, answer, _) = signup();
        if want_live {
            assert_eq!(status, 201, "{answer}");
            let (again, answer, _) = signup();
            assert_eq!((again, answer["error"].as_str()), (409, Some("token-used")));
        } else {
            assert_eq!(
                (status, answer["error"].as_str()),
                (403, Some("not-live")),
                "{answer}"
            );
        }
    }
}

/// The server's model code (face gate, views, resize, normalisation, tract) against the
/// independent reference on drawn heads at three frame sizes: logits (not saturated scores)
/// within 1e-3 of their size.
#[test]
fn the_servers_model_agrees_with_the_independent_reference() {
    let scorer =
        liveness_server::scorer::Scorer::load(&root().join("models/default.onnx")).expect("model");
    for (seed, size) in [(1, (320, 240)), (2, (640, 480)), (3, (480, 360))] {
        let capture = liveness_server::honest::honest_capture(&fixed(), size, seed, INTERVAL);
        let reference = reference_verdict(&capture, &root().join("models/default.onnx"));
        let server = match scorer.score(&capture.five).expect("score").outcome {
            liveness_runtime::Outcome::Verdict(v) => v,
            other => panic!("seed {seed}: {other:?}"),
        };
        let error = liveness_core::testing::max_logit_error(&[server.logit], &[reference.logit]);
        eprintln!(
            "{size:?}: logit server {} reference {} (|Δ| / max(1, |logit|) {error:.2e})",
            server.logit, reference.logit
        );
        assert!(
            error <= 1e-3,
            "{size:?}: server {server:?} vs reference {reference:?}"
        );
        assert_eq!(server.live, reference.live, "{size:?}");
    }
}
