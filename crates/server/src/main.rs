//! `liveness-server`: serve (the demo site and the session API), verify a token offline, or run
//! the load benchmark.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use liveness_core::challenge::Challenge;
use liveness_server::{AppState, Config, bench, tokens};

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
    Serve(ServeArgs),
    /// Check a token offline with the server's public key; prints its claims. Exits non-zero
    /// for an invalid or expired token, and for a valid one whose verdict is not live.
    VerifyToken {
        /// The token (`v1.…`).
        token: String,
        /// The server's public key (base64; GET /v1/public-key).
        #[arg(long)]
        public_key: String,
    },
    /// Load benchmark: concurrent sessions verified per second, latency, memory.
    Bench {
        /// The model (its manifest next to it).
        #[arg(long, default_value = "models/default.onnx")]
        model: PathBuf,
        /// The site folder.
        #[arg(long, default_value = "web")]
        web: PathBuf,
        /// Sessions to verify.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Client threads.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 = any free port).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// The site folder (widget, worker, wasm package, demo).
    #[arg(long, default_value = "web")]
    web: PathBuf,
    /// The models folder, served under /models/.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// The model the server re-scores with (its manifest next to it).
    #[arg(long, default_value = "models/default.onnx")]
    model: PathBuf,
    /// The audit log: sqlite://FILE (created when missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "LIVENESS_DATABASE",
        default_value = "sqlite://liveness.db"
    )]
    database: String,
    /// Ed25519 signing key file (base64 seed); created on first start when missing. The
    /// LIVENESS_SIGNING_KEY environment variable (base64 seed) takes precedence.
    #[arg(long, default_value = "liveness-signing.key")]
    key: PathBuf,
    /// Keep the five frames of every verify in the audit log (off: no frame is stored).
    #[arg(long)]
    store_frames: bool,
    /// Give every session this head-pose challenge (e.g. centre,left,right,centre) instead of a
    /// random one. Only for a fake camera playing a recorded clip: a fixed challenge can be replayed.
    #[arg(long, value_parser = parse_challenge)]
    fixed_challenge: Option<Challenge>,
    /// Days the audit log keeps a session.
    #[arg(long, env = "LIVENESS_RETENTION_DAYS", default_value_t = 30)]
    retention_days: u64,
    /// Verifies decoded and scored at once (default: the machine's cores); more get 503.
    #[arg(long, env = "LIVENESS_VERIFY_SLOTS")]
    verify_slots: Option<usize>,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "LIVENESS_HEADER_TIMEOUT", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, env = "LIVENESS_BODY_TIMEOUT", default_value_t = 30)]
    body_timeout: u64,
    /// Most connections open at once; more are closed on arrival.
    #[arg(long, env = "LIVENESS_MAX_CONNECTIONS", default_value_t = 1024)]
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
    #[arg(long)]
    no_demo: bool,
    /// An origin whose pages may call the session API (CORS), e.g. https://shop.example;
    /// repeat for more. Default: same-origin only.
    #[arg(long, value_parser = parse_origin)]
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

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(a) => {
            let signer = match std::env::var("LIVENESS_SIGNING_KEY") {
                Ok(seed) => tokens::Signer::from_base64(&seed, "LIVENESS_SIGNING_KEY")?,
                Err(_) => tokens::Signer::load_or_create(&a.key)?,
            };
            let defaults = Config::new(a.web, a.models, a.model, a.database);
            let config = Config {
                store_frames: a.store_frames,
                challenge: a.fixed_challenge,
                retention: std::time::Duration::from_secs(a.retention_days.saturating_mul(86_400)),
                verify_slots: a.verify_slots.unwrap_or(defaults.verify_slots),
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
                let state = AppState::new(config, signer).await?;
                let public = state.signer.public_key();
                let addr = format!("{}:{}", a.host, a.port);
                liveness_server::serve(state, &addr, |bound| {
                    let host = if a.host == "0.0.0.0" {
                        "localhost".to_owned()
                    } else {
                        a.host.clone()
                    };
                    println!("Demo signup page: http://{host}:{}/demo/", bound.port());
                    println!("Token public key (Ed25519): {public}. Ctrl+C stops.");
                })
                .await?;
                Ok(())
            })
        }
        Command::VerifyToken { token, public_key } => {
            let key = tokens::public_key(&public_key)?;
            let claims = tokens::verify(&token, &key, liveness_server::sessions::now_ms())?;
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
        Command::Bench {
            model,
            web,
            sessions,
            concurrency,
        } => {
            let r = bench::run(model, web, sessions, concurrency)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
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
