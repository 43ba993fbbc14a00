//! The server over HTTP on a free port: sessions, verify with real frames (drawn faces the face
//! detector finds), forged scores, reused nonces, expired sessions, bad uploads, tokens and the
//! demo signup, the static site; and two instances sharing one PostgreSQL when the test script
//! starts one (`LIVENESS_TEST_POSTGRES=postgres://…`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use liveness_server::frames::encode_png;
use liveness_server::sessions::{Created, Verified};
use liveness_server::{AppState, Config, tokens};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server {
    base: String,
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
    edit(&mut cfg);
    let signer = tokens::Signer::from_base64(
        &base64::engine::general_purpose::STANDARD.encode(seed),
        "test",
    )
    .expect("key");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let state = runtime
        .block_on(AppState::new(cfg, signer))
        .expect("server starts");
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
        _runtime: runtime,
        _dir: dir,
    }
}

fn start() -> Server {
    start_with(|_| {}, None, [3; 32])
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

/// Five PNG frames of a drawn face, and what an honest client computes on them.
fn honest_frames() -> (Vec<String>, f32, bool) {
    let scorer =
        liveness_server::scorer::Scorer::load(&root().join("models/default.onnx")).expect("model");
    let (frames, v) = liveness_server::bench::honest_client(&scorer, 320, 240)
        .expect("the drawn face passes the gate");
    (frames, v.p_spoof, v.live)
}

fn create(s: &Server) -> Created {
    let (status, body, _) = call("POST", &format!("{}/v1/sessions", s.base), None);
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body).expect("created")
}

fn verify_body(nonce: &str, frames: &[String], p_spoof: f32, live: bool) -> String {
    json!({ "nonce": nonce, "frames": frames, "client": { "pSpoof": p_spoof, "live": live, "captureMs": 450.0 } }).to_string()
}

/// Creates a session, waits out a plausible capture, and verifies `frames` with `p_spoof`.
fn verified(s: &Server, frames: &[String], p_spoof: f32, live: bool) -> (Created, u16, Value) {
    let c = create(s);
    std::thread::sleep(Duration::from_millis(500));
    let (status, body, _) = call(
        "POST",
        &format!("{}/v1/sessions/{}/verify", s.base, c.id),
        Some(verify_body(&c.nonce, frames, p_spoof, live)),
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
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert_eq!(v.live, live);
    assert_eq!(v.verdict, if live { "live" } else { "attack" });
    let server_p = v.p_spoof.expect("a score");
    assert!(
        (server_p - f64::from(p)).abs() <= 1e-6,
        "server {server_p} vs client {p}"
    );
    // The audit log.
    let row = state_of(&s, &c.id);
    assert_eq!(row["state"], "done");
    assert_eq!(row["verdict"], v.verdict);
    assert_eq!(row["serverPSpoof"].as_f64(), Some(server_p));
    assert_eq!(row["modelSha256"], c.model_sha256);
    // The token, offline.
    let (_, key, _) = call("GET", &format!("{}/v1/public-key", s.base), None);
    let key = tokens::public_key(key["publicKey"].as_str().expect("key")).expect("public key");
    let claims =
        tokens::verify(&v.token, &key, liveness_server::sessions::now_ms()).expect("valid token");
    assert_eq!((claims.sid.as_str(), claims.live), (c.id.as_str(), live));
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
    assert_eq!(body["verdict"], "mismatch");
    assert!(
        body["findings"][0]
            .as_str()
            .is_some_and(|f| f.starts_with("score-mismatch")),
        "{body}"
    );
    assert_eq!(state_of(&s, &c.id)["verdict"], "mismatch");
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
        .decode(&frames[0])
        .expect("b64");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let with = |replace: &dyn Fn(&mut Vec<String>)| {
        let mut f = frames.clone();
        replace(&mut f);
        verify_body(&c.nonce, &f, p, live)
    };
    let wide = encode_png(&vec![0u8; 4097 * 4], 4097, 1);
    let cases: Vec<(String, u16, &str)> = vec![
        (with(&|f| f.truncate(4)), 400, "4 frames"),
        (with(&|f| f[2] = "***".into()), 400, "frame 2: not base64"),
        (with(&|f| f[1] = b64(b"GIF89a not a png")), 400, "frame 1: not a PNG"),
        (with(&|f| f[3] = b64(&png[..png.len() / 2])), 400, "frame 3: not a complete PNG"),
        (with(&|f| f[0] = wide.clone()), 400, "frame 0: 4097x1"),
        (with(&|f| f[4] = encode_png(&[0u8; 16 * 16 * 4], 16, 16)), 400, "frame 4 is 16x16"),
        ("{not json".into(), 400, "not a valid request"),
        (json!({ "nonce": c.nonce, "frames": frames, "client": { "pSpoof": 2.0, "live": true, "captureMs": 1.0 } }).to_string(), 400, "not a probability"),
        (json!({ "nonce": c.nonce, "frames": frames }).to_string(), 400, "missing field"),
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
    assert_eq!(signup("v1.eyJzaWQiOiJ4In0.AAAA").0, 403);
    // A token signed by another key.
    let other = tokens::Signer::from_base64(
        &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        "other",
    )
    .expect("key");
    let now = liveness_server::sessions::now_ms();
    let foreign = other.sign(&tokens::Claims {
        sid: "0".repeat(32),
        live: true,
        p_spoof: 0.0,
        model: String::new(),
        iat: now,
        exp: now + 60_000,
    });
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
    // An expired token.
    let quick = start_with(|c| c.token_ttl = Duration::from_millis(1), None, [3; 32]);
    let (_, _, body) = verified(&quick, &frames, p, live);
    std::thread::sleep(Duration::from_millis(20));
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
        let r = a.get(&format!("{}{path}", s.base)).call().expect("get");
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
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
fn two_instances_share_sessions_through_postgres() {
    let Ok(url) = std::env::var("LIVENESS_TEST_POSTGRES") else {
        eprintln!(
            "LIVENESS_TEST_POSTGRES is not set: skipped (scripts/test.sh starts a PostgreSQL and sets it)"
        );
        return;
    };
    let a = start_with(|_| {}, Some(&url), [5; 32]);
    let b = start_with(|_| {}, Some(&url), [5; 32]);
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
}
