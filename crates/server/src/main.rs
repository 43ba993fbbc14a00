//! `liveness-server`: serve (the demo site and the session API), verify a token offline, or run
//! the load benchmark.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use liveness_core::challenge::Challenge;
use liveness_server::{AppState, Config, tokens};

#[derive(Parser)]
#[command(
    name = "liveness-server",
    version,
    about = "The liveness checker's verification server and demo site."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the session API, the demo page and the models.
    Serve(Box<ServeArgs>),
    /// Check a token offline against the server's keys (a saved JWKS); prints its claims. Exits
    /// non-zero for an invalid or expired token, and for a valid one whose verdict is not live.
    VerifyToken {
        /// The token (a JWT).
        token: String,
        /// The server's key set, saved from GET /.well-known/jwks.json.
        #[arg(long)]
        jwks: PathBuf,
        /// The audience the token must name (your site's origin).
        #[arg(long)]
        audience: Option<String>,
        /// The issuer the token must name.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Add a new signing key to the key folder. Running servers sign with it within a minute;
    /// the old key keeps verifying until its last token expires.
    RotateKey {
        /// The server's data folder (the keys are in its keys/).
        #[arg(long, env = "LIVENESS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Load benchmark: concurrent sessions verified per second, latency, memory (a server built
    /// with `--features bench`).
    Bench {
        /// The model (its manifest next to it).
        #[arg(long, default_value = "models/default.onnx")]
        model: PathBuf,
        /// The site folder.
        #[arg(long, default_value = "web")]
        web: PathBuf,
        /// Sessions to verify at each concurrency level.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Client threads: one level, or several in one run (1,4,16).
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        concurrency: Vec<usize>,
        /// Then the abuse cases: huge frames to a missing session, millions of empty frames,
        /// half-header connections (memory, answers, time until others are served).
        #[arg(long)]
        abuse: bool,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIVENESS_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port (0 = any free port).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// The site folder (widget, worker, wasm package, demo).
    #[arg(long, env = "LIVENESS_WEB", default_value = "web")]
    web: PathBuf,
    /// The models folder, served under /models/.
    #[arg(long, env = "LIVENESS_MODELS", default_value = "models")]
    models: PathBuf,
    /// The model the server re-scores with (its manifest next to it).
    #[arg(long, env = "LIVENESS_MODEL", default_value = "models/default.onnx")]
    model: PathBuf,
    /// Where the server keeps its state: the SQLite audit log, the signing keys (keys/), the
    /// operator's API key. Default: the platform's data folder (~/.local/share/liveness-server
    /// on Linux), never the working folder.
    #[arg(long, env = "LIVENESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The audit log: sqlite://FILE (created 0600 when missing) or postgres://USER@HOST/DB.
    /// Default: sqlite://DATA_DIR/liveness.db.
    #[arg(long, env = "LIVENESS_DATABASE")]
    database: Option<String>,
    /// The operator's API key file (POST /v1/tokens/consume, GET /metrics), created 0600 with a
    /// random key when missing; LIVENESS_API_KEY takes precedence. Default: DATA_DIR/operator-api.key.
    #[arg(long, env = "LIVENESS_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// The tokens' issuer (iss).
    #[arg(long, env = "LIVENESS_ISSUER", default_value = "liveness-server")]
    issuer: String,
    /// The tokens' audience (aud), e.g. https://shop.example. Default: the origin of the page
    /// that ran the check.
    #[arg(long, env = "LIVENESS_AUDIENCE")]
    audience: Option<String>,
    /// Seconds a session waits for its verify.
    #[arg(long, env = "LIVENESS_SESSION_TTL", default_value_t = 180)]
    session_ttl: u64,
    /// Seconds a token stays valid.
    #[arg(long, env = "LIVENESS_TOKEN_TTL", default_value_t = 600)]
    token_ttl: u64,
    /// Keep the five frames of every verify in the audit log (off: no frame is stored).
    #[arg(long, env = "LIVENESS_STORE_FRAMES")]
    store_frames: bool,
    /// Give every session this head-pose challenge (e.g. centre,left,right,centre) instead of a
    /// random one. Only for a fake camera playing a recorded clip: a fixed challenge can be replayed.
    #[arg(long, env = "LIVENESS_FIXED_CHALLENGE", value_parser = parse_challenge)]
    fixed_challenge: Option<Challenge>,
    /// Days the audit log keeps a session.
    #[arg(long, env = "LIVENESS_RETENTION_DAYS", default_value_t = 30)]
    retention_days: u64,
    /// Verifies decoded and scored at once (default: the machine's cores); up to four per slot
    /// more are admitted and wait for one, the rest get 503.
    #[arg(long, env = "LIVENESS_VERIFY_SLOTS")]
    verify_slots: Option<usize>,
    /// Seconds an admitted verify waits for a slot before it gets 503.
    #[arg(long, env = "LIVENESS_VERIFY_WAIT", default_value_t = 10)]
    verify_wait: u64,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "LIVENESS_HEADER_TIMEOUT", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, env = "LIVENESS_BODY_TIMEOUT", default_value_t = 30)]
    body_timeout: u64,
    /// Most connections open at once; more are closed on arrival.
    #[arg(long, env = "LIVENESS_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Per client address: session creations and verifies allowed in a burst (then 429)…
    #[arg(long, env = "LIVENESS_RATE_BURST", default_value_t = 20)]
    rate_burst: u32,
    /// …and milliseconds until one more is allowed.
    #[arg(long, env = "LIVENESS_RATE_PERIOD_MS", default_value_t = 3000)]
    rate_period_ms: u64,
    /// Behind a reverse proxy that sets X-Forwarded-For / X-Real-IP / Forwarded: limit by the
    /// address it forwards. Without a proxy this lets a client choose its own address.
    #[arg(long, env = "LIVENESS_TRUST_PROXY")]
    trust_proxy: bool,
    /// The session API and probes only: no demo signup, no static site (the host serves the
    /// widget from its own origin).
    #[arg(long, env = "LIVENESS_NO_DEMO")]
    no_demo: bool,
    /// An origin whose pages may call the session API (CORS), e.g. https://shop.example;
    /// repeat for more (LIVENESS_CORS_ORIGINS: comma-separated). Default: same-origin only.
    #[arg(long, env = "LIVENESS_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    cors_origin: Vec<axum::http::HeaderValue>,
}

fn parse_origin(text: &str) -> Result<axum::http::HeaderValue, String> {
    let url = text.trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{text:?}: an origin is http(s)://host[:port]"))?;
    if host.is_empty() || host.contains(['/', ' ', '?', '#']) {
        return Err(format!(
            "{text:?}: an origin is http(s)://host[:port], no path"
        ));
    }
    axum::http::HeaderValue::from_str(url).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_challenge(text: &str) -> Result<Challenge, String> {
    Challenge::parse(text)
}

/// The data folder: `--data-dir`, else the platform's (created 0700).
fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match flag {
        Some(d) => d,
        None => directories::ProjectDirs::from("", "", "liveness-server")
            .map(|p| p.data_dir().to_path_buf())
            .context("no home folder to keep the server's data in: pass --data-dir")?,
    };
    liveness_server::private_files::create_dir(&dir)
        .with_context(|| format!("--data-dir {}: cannot create it", dir.display()))?;
    Ok(dir)
}

/// The operator's API key: LIVENESS_API_KEY, else the key file (created 0600 when missing; one
/// others can read is refused).
fn api_key(file: &std::path::Path) -> Result<String> {
    if let Ok(key) = std::env::var("LIVENESS_API_KEY") {
        anyhow::ensure!(
            key.trim().len() >= 16,
            "LIVENESS_API_KEY is shorter than 16 characters"
        );
        return Ok(key);
    }
    if !file.exists() {
        let key = liveness_core::model_file::hex(&rand::random::<[u8; 32]>());
        liveness_server::private_files::create_file(file, key.as_bytes())
            .with_context(|| format!("--api-key-file {}: cannot create it", file.display()))?;
    }
    liveness_server::private_files::check(file)?;
    let key = std::fs::read_to_string(file)
        .with_context(|| format!("--api-key-file {}", file.display()))?;
    anyhow::ensure!(
        key.trim().len() >= 16,
        "--api-key-file {}: the key is shorter than 16 characters",
        file.display()
    );
    Ok(key)
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(a) => {
            let a = *a;
            liveness_server::telemetry::init_logs();
            let dir = data_dir(a.data_dir)?;
            let keys = tokens::Keys::new(match std::env::var("LIVENESS_SIGNING_KEY") {
                Ok(seed) => tokens::KeySource::Fixed(seed),
                Err(_) => tokens::KeySource::Dir(dir.join("keys")),
            })?;
            let api_key = api_key(
                &a.api_key_file
                    .unwrap_or_else(|| dir.join("operator-api.key")),
            )?;
            let database = a
                .database
                .unwrap_or_else(|| format!("sqlite://{}", dir.join("liveness.db").display()));
            let defaults = Config::new(a.web, a.models, a.model, database);
            let config = Config {
                store_frames: a.store_frames,
                challenge: a.fixed_challenge,
                session_ttl: std::time::Duration::from_secs(a.session_ttl.max(1)),
                token_ttl: std::time::Duration::from_secs(a.token_ttl.max(1)),
                issuer: a.issuer,
                audience: a.audience,
                api_key: Some(api_key),
                retention: std::time::Duration::from_secs(a.retention_days.saturating_mul(86_400)),
                verify_slots: a.verify_slots.unwrap_or(defaults.verify_slots),
                slot_wait: std::time::Duration::from_secs(a.verify_wait),
                header_timeout: std::time::Duration::from_secs(a.header_timeout.max(1)),
                body_timeout: std::time::Duration::from_secs(a.body_timeout.max(1)),
                max_connections: a.max_connections.max(1),
                rate_burst: a.rate_burst.max(1),
                rate_period: std::time::Duration::from_millis(a.rate_period_ms.max(1)),
                trust_proxy: a.trust_proxy,
                serve_site: !a.no_demo,
                cors_origins: a.cors_origin,
                ..defaults
            };
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let state = AppState::new(config, keys).await?;
                let kid = state.keys.ring().kid().to_owned();
                let serve_site = state.config.serve_site;
                let addr = format!("{}:{}", a.host, a.port);
                liveness_server::serve(state, &addr, |bound| {
                    let host = if a.host == "0.0.0.0" {
                        "localhost".to_owned()
                    } else {
                        a.host.clone()
                    };
                    if serve_site {
                        println!("Demo signup page: http://{host}:{}/demo/", bound.port());
                    }
                    println!(
                        "Session API: http://{host}:{port}/v1/sessions; token keys (signing kid {kid}): http://{host}:{port}/.well-known/jwks.json; data: {data}. Ctrl+C stops.",
                        port = bound.port(),
                        data = dir.display()
                    );
                })
                .await?;
                Ok(())
            })
        }
        Command::VerifyToken {
            token,
            jwks,
            audience,
            issuer,
        } => {
            let text = std::fs::read_to_string(&jwks)
                .with_context(|| format!("--jwks {}", jwks.display()))?;
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "--jwks {}: not a JWK set (save GET /.well-known/jwks.json)",
                        jwks.display()
                    )
                })?;
            let claims = tokens::verify(
                &token,
                &set,
                &tokens::Expect {
                    audience: audience.as_deref(),
                    issuer: issuer.as_deref(),
                },
            )?;
            println!("{}", serde_json::to_string(&claims)?);
            // A valid token of a verdict that is not live is no pass for a script either.
            if !claims.live {
                anyhow::bail!(
                    "the token is valid, but its verdict is {:?}, not live",
                    claims.verdict
                );
            }
            Ok(())
        }
        Command::RotateKey { data_dir: flag } => {
            let dir = data_dir(flag)?;
            let path = tokens::KeyRing::rotate(&dir.join("keys"))?;
            let ring = tokens::KeyRing::load(&dir.join("keys"))?;
            println!(
                "New signing key {} (kid {}); running servers sign with it within a minute.",
                path.display(),
                ring.kid()
            );
            Ok(())
        }
        Command::Bench {
            model,
            web,
            sessions,
            concurrency,
            abuse,
        } => {
            #[cfg(feature = "bench")]
            {
                let r = liveness_server::bench::run(model, web, sessions, &concurrency, abuse)?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(())
            }
            #[cfg(not(feature = "bench"))]
            {
                let _ = (model, web, sessions, concurrency, abuse);
                anyhow::bail!(
                    "this liveness-server was built without the load benchmark: build it with `cargo build --release -p liveness-server --features bench`"
                )
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn cors_origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("https://shop.example").expect("ok"),
            "https://shop.example"
        );
        assert_eq!(
            parse_origin("http://localhost:3000/").expect("ok"),
            "http://localhost:3000"
        );
        for bad in [
            "shop.example",
            "https://",
            "https://shop.example/path",
            "ftp://x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
