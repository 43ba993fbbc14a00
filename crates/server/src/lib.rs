//! `liveness-server`: the host's own verification server.
//!
//! The widget keeps the check on the user's device; with a `session` endpoint it also binds the
//! capture to a server nonce and sends the five frames here, where the server re-runs the same
//! model on the same frames with the same code (`liveness-runtime`) and answers with a signed
//! verdict its backend can trust. Sessions and the audit log live in SQLite or PostgreSQL
//! ([`db`]). The server also serves the demo site ([`site`], [`demo`]).
//!
//! - [`sessions`]: the session API; [`tokens`]: verdicts as JWTs (EdDSA) and their keys;
//!   [`token_api`]: the JWKS and single use for backends;
//! - [`frames`]: the client's PNG frames, checked before decoding; [`scorer`]: the server's check;
//! - [`telemetry`]: request logs and Prometheus metrics; [`openapi`]: the API's description;
//!   [`private_files`]: the 0700/0600 state on disk;
//! - `bench` (feature `bench`): the load benchmark; [`honest`]: the honest client it and the
//!   tests use.

#[cfg(feature = "bench")]
pub mod bench;
pub mod db;
pub mod demo;
pub mod error;
pub mod frames;
pub mod honest;
pub mod openapi;
pub mod private_files;
pub mod scorer;
pub mod sessions;
pub mod site;
pub mod telemetry;
pub mod token_api;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The widget, its worker and wasm package, and the demo page.
    pub web_dir: PathBuf,
    /// The models folder served under `/models/`.
    pub models_dir: PathBuf,
    /// The model the server checks with (its manifest next to it).
    pub model: PathBuf,
    /// `sqlite://FILE` or `postgres://…`.
    pub database: String,
    /// Keep the five frames of every verify in the audit log.
    pub store_frames: bool,
    /// How long a session waits for its verify.
    pub session_ttl: std::time::Duration,
    /// How long a token stays valid.
    pub token_ttl: std::time::Duration,
    /// How long a client may take to send a request's headers (default 10 s).
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send a request's body (default 30 s).
    pub body_timeout: std::time::Duration,
    /// Most connections open at once (default 4096); more are closed on arrival.
    pub max_connections: usize,
    /// Per client address: at most this many session creations and verifies in a burst…
    pub rate_burst: u32,
    /// …then one more every this long (default: a burst of 20, then one every 3 s).
    pub rate_period: std::time::Duration,
    /// Take the client's address from `X-Forwarded-For` / `X-Real-IP` / `Forwarded` (only behind
    /// a proxy that sets them; otherwise any client could pick its own address).
    pub trust_proxy: bool,
    /// Serve the demo (its signup endpoint) and the static site (`web/`, `models/`); off: the
    /// session API and probes only, for a host that serves the widget itself.
    pub serve_site: bool,
    /// Origins (`https://shop.example`) whose pages may call the session API from the browser
    /// (CORS); empty: same-origin only.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// How long the audit log keeps a session (default 30 days).
    pub retention: std::time::Duration,
    /// Verifies decoded and scored at once (default: the machine's cores); more wait for a slot
    /// up to [`Config::slot_wait`], then get 503 with Retry-After.
    pub verify_slots: usize,
    /// How long an admitted verify waits for a verify slot (default 10 s).
    pub slot_wait: std::time::Duration,
    /// One fixed challenge for every session instead of a random one: only for fake-camera
    /// tests and demos with a recorded clip (a fixed challenge can be replayed).
    pub challenge: Option<liveness_core::challenge::Challenge>,
    /// The tokens' issuer (`iss`), default `liveness-server`.
    pub issuer: String,
    /// The tokens' audience (`aud`); `None`: the origin of the page that ran the check.
    pub audience: Option<String>,
    /// The operator's API key for `/v1/tokens/consume` and `/metrics`; `None`: both refused.
    pub api_key: Option<String>,
}

impl Config {
    /// The demo's settings: `web/`, `models/`, the default model, a SQLite log in `database`.
    pub fn new(web_dir: PathBuf, models_dir: PathBuf, model: PathBuf, database: String) -> Self {
        Config {
            web_dir,
            models_dir,
            model,
            database,
            store_frames: false,
            session_ttl: sessions::SESSION_TTL,
            token_ttl: sessions::TOKEN_TTL,
            challenge: None,
            issuer: "liveness-server".to_owned(),
            audience: None,
            api_key: None,
            retention: std::time::Duration::from_secs(30 * 24 * 3600),
            serve_site: true,
            cors_origins: Vec::new(),
            rate_burst: 20,
            rate_period: std::time::Duration::from_secs(3),
            trust_proxy: false,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            max_connections: 4096,
            slot_wait: std::time::Duration::from_secs(10),
            verify_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What every request shares.
#[derive(Clone)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// The database.
    pub store: db::Store,
    /// The model.
    pub scorer: scorer::SharedScorer,
    /// The token keys.
    pub keys: Arc<tokens::Keys>,
    /// The operator's API key ([`Config::api_key`]).
    pub operator_key: Option<token_api::OperatorKey>,
    /// Prometheus metrics.
    pub metrics: Arc<telemetry::Metrics>,
    /// SHA-256 of served models.
    pub hashes: Arc<site::HashCache>,
    /// Slots for decoding and scoring verifies ([`Config::verify_slots`]).
    pub verify_slots: Arc<tokio::sync::Semaphore>,
    /// Verifies admitted at once (four per verify slot; [`sessions::admit`]).
    pub admission: Arc<tokio::sync::Semaphore>,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The model cannot be loaded.
    #[error(transparent)]
    Model(#[from] liveness_runtime::Error),
    /// The database cannot be used.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// Loading the model failed outside the loader (its task panicked).
    #[error("loading the model: {0}")]
    Task(String),
    /// The port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl AppState {
    /// Loads the model and connects to the database.
    pub async fn new(config: Config, keys: tokens::Keys) -> Result<Self, StartError> {
        let model = config.model.clone();
        let scorer = tokio::task::spawn_blocking(move || scorer::Scorer::load(&model))
            .await
            .map_err(|e| StartError::Task(e.to_string()))??;
        let store = db::Store::connect(&config.database).await?;
        Ok(AppState {
            verify_slots: Arc::new(tokio::sync::Semaphore::new(config.verify_slots)),
            admission: Arc::new(tokio::sync::Semaphore::new(
                config.verify_slots.saturating_mul(4).max(1),
            )),
            metrics: Arc::new(telemetry::Metrics::new(config.verify_slots)),
            operator_key: config.api_key.as_deref().map(token_api::OperatorKey::new),
            config: Arc::new(config),
            store,
            scorer: Arc::new(scorer),
            keys: Arc::new(keys),
            hashes: Arc::default(),
        })
    }
}

/// The client's address for rate limits: the peer's, or with [`Config::trust_proxy`] the one
/// the proxy forwarded.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress {
    trust_proxy: bool,
}

impl tower_governor::key_extractor::KeyExtractor for ClientAddress {
    type Key = std::net::IpAddr;

    fn extract<T>(
        &self,
        req: &axum::http::Request<T>,
    ) -> Result<Self::Key, tower_governor::GovernorError> {
        use tower_governor::key_extractor::{PeerIpKeyExtractor, SmartIpKeyExtractor};
        if self.trust_proxy {
            SmartIpKeyExtractor.extract(req)
        } else {
            PeerIpKeyExtractor.extract(req)
        }
    }
}

/// The whole site: the session API (session creation and verifies rate-limited per client
/// address: 429 with `Retry-After` beyond [`Config::rate_burst`]), the demo signup, and the
/// static files.
pub fn router(state: AppState) -> Router {
    let limits = tower_governor::governor::GovernorConfigBuilder::default()
        .period(state.config.rate_period)
        .burst_size(state.config.rate_burst.max(1))
        .key_extractor(ClientAddress {
            trust_proxy: state.config.trust_proxy,
        })
        .finish()
        .map(std::sync::Arc::new);
    let limited = Router::new()
        .route("/v1/sessions", post(sessions::create))
        .route(
            "/v1/sessions/{id}/verify",
            post(sessions::verify)
                .layer(DefaultBodyLimit::max(sessions::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    sessions::admit,
                )),
        );
    let limited = match limits {
        Some(config) => {
            // The limiter forgets addresses that have been quiet (its memory stays bounded).
            let limiter = config.limiter().clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    limiter.retain_recent();
                }
            });
            limited.layer(tower_governor::GovernorLayer::new(config))
        }
        None => limited,
    };
    let api = Router::new()
        .merge(limited)
        .route("/v1/sessions/{id}", get(sessions::get))
        .route("/v1/tokens/consume", post(token_api::consume))
        .route("/.well-known/jwks.json", get(token_api::jwks))
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(telemetry::metrics));
    let api = if state.config.cors_origins.is_empty() {
        api
    } else {
        api.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(state.config.cors_origins.clone())
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::HeaderName::from_static("x-request-id"),
                ]),
        )
    };
    // A body trickled in more slowly than this is cut off (408).
    let api = api.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        state.config.body_timeout,
    ));
    // Models are float weights (they barely compress) and served with Range: left alone.
    let compress = CompressionLayer::new().compress_when(
        DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream")),
    );
    let app = if state.config.serve_site {
        api.route("/demo/signup", post(demo::signup))
            .fallback(site::serve)
    } else {
        api
    };
    app.layer(compress)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::observe,
        ))
        .with_state(state)
}

/// `GET /healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the model is loaded (it is, once the server serves) and the database answers;
/// 503 otherwise, so a load balancer sends no verify here.
async fn readyz(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match app.store.ping().await {
        Ok(()) => {
            axum::Json(serde_json::json!({ "ready": true, "model": app.scorer.manifest().sha256 }))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "ready": false, "error": "database" })),
            )
                .into_response()
        }
    }
}

/// Resolves on Ctrl+C (SIGINT) or SIGTERM (what container runtimes send): the server then stops
/// accepting and finishes the requests in flight.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Every minute: [`db::Store::sweep`] (expired claims, the retention period) and a reload of the
/// key folder (a rotation takes effect).
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = now_ms();
        let keep_since = now - state.config.retention.as_millis() as i64;
        match state.store.sweep(now, keep_since).await {
            Ok((closed, deleted)) if closed + deleted > 0 => {
                tracing::info!(closed, deleted, "swept the audit log");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "sweeping the audit log failed"),
        }
        if let Err(e) = state.keys.reload() {
            tracing::error!(error = %e, "reloading the signing keys failed; the old keys stay");
        }
    }
}

/// Binds `addr` and serves until the process ends (SIGTERM or Ctrl+C: in-flight requests finish,
/// for at most 30 s); returns the bound address first through `on_bound` (port 0 picks a free
/// port).
///
/// The accept loop is hyper's own, because `axum::serve` bounds nothing: a client has
/// [`Config::header_timeout`] to send its request's headers and [`Config::body_timeout`] to send
/// its body, and at most [`Config::max_connections`] connections are open at once (a connection
/// beyond that is closed at once), so slow or idle clients cannot hold the server.
pub async fn serve(
    state: AppState,
    addr: &str,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let bind = |source| StartError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    on_bound(listener.local_addr().map_err(bind)?);
    tokio::spawn(housekeeping(state.clone()));
    let config = state.config.clone();
    let app = router(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        // The peer's address, for the rate limits (what axum::serve would have inserted).
        let service = hyper_util::service::TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}
