//! What the server tells its operator: one structured log line per request (`tracing`, JSON
//! from `liveness-server serve`) and Prometheus metrics at `GET /metrics` (the operator's API
//! key).
//!
//! A request's line has its id (`x-request-id`, kept from the client or made here and sent
//! back), method, route (the pattern, never the raw path), status, latency and, for session
//! routes, the session id. Never frames, nonces, tokens or query strings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    verdict: String,
}

/// The server's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    busy: Counter,
    slots: Gauge,
    slots_in_use: Gauge,
}

impl Metrics {
    /// The metrics, registered; `slots` is [`crate::Config::verify_slots`].
    pub fn new(slots: usize) -> Self {
        let mut registry = Registry::with_prefix("liveness");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "verdicts",
            "Verifies decided, by the signal that decided (live, attack, challenge-failed, …)",
            verdicts.clone(),
        );
        let busy = Counter::default();
        registry.register(
            "verify_busy",
            "Verifies turned away with 503 because every verify slot was in use",
            busy.clone(),
        );
        let slots_gauge = Gauge::default();
        slots_gauge.set(slots as i64);
        registry.register(
            "verify_slots",
            "Verifies that may be decoded and scored at once",
            slots_gauge.clone(),
        );
        let slots_in_use = Gauge::default();
        registry.register(
            "verify_slots_in_use",
            "Verify slots in use now (pool saturation)",
            slots_in_use.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            verdicts,
            busy,
            slots: slots_gauge,
            slots_in_use,
        }
    }

    /// Counts a decided verify.
    pub fn verdict(&self, verdict: &str) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                verdict: verdict.to_owned(),
            })
            .inc();
    }

    /// Counts a verify turned away because the pool was full.
    pub fn busy(&self) {
        self.busy.inc();
    }

    /// The metrics in Prometheus' text format, with the pool's use as of now.
    pub fn render(&self, slots_free: usize) -> String {
        let total = self.slots.get();
        self.slots_in_use
            .set(total - (slots_free as i64).min(total));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The route pattern of a path: the label of its metrics and log line (a bounded set, so the
/// metrics' cardinality stays bounded whatever clients request).
pub fn route_of(path: &str) -> &'static str {
    match path {
        "/v1/sessions" => "/v1/sessions",
        "/v1/tokens/consume" => "/v1/tokens/consume",
        "/.well-known/jwks.json" => "/.well-known/jwks.json",
        "/openapi.json" => "/openapi.json",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/demo/signup" => "/demo/signup",
        p if p.starts_with("/v1/sessions/") && p.ends_with("/verify") => "/v1/sessions/{id}/verify",
        p if p.starts_with("/v1/sessions/") => "/v1/sessions/{id}",
        p if p.starts_with("/v1/") => "/v1/other",
        _ => "static",
    }
}

/// Records the session id on the current request's log line.
pub fn record_session(id: &str) {
    tracing::Span::current().record("session", id);
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Middleware: the request's id, span, log line and metrics.
pub async fn observe(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(req.uri().path());
    let method = req.method().clone();
    // The client's id if it sent a sane one (a proxy's), else ours.
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                format!(
                    "{:x}-{}",
                    std::process::id(),
                    NEXT_ID.fetch_add(1, Ordering::Relaxed)
                )
            },
            str::to_owned,
        );
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route,
        session = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = latency.as_secs_f64() * 1e3,
            "answered"
        );
    });
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method: method.to_string(),
            status: status.as_u16(),
        })
        .inc();
    app.metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(latency.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// `GET /metrics` (the operator's API key).
pub async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(e) = crate::token_api::require_operator(&app, &headers) {
        return e.into_response();
    }
    let body = app.metrics.render(app.verify_slots.available_permits());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// JSON log lines on stdout for `liveness-server serve`; the level from `LIVENESS_LOG`
/// (`info` by default, e.g. `LIVENESS_LOG=warn`).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVENESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .try_init();
}
