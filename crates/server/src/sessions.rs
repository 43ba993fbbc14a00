//! The session API a host's page and backend use:
//!
//! - `POST /v1/sessions` → `{ id, nonce, expiresAt, modelSha256, minIntervalMs, challenge }`:
//!   the challenge is a random head-pose sequence the server drew and keeps;
//! - `POST /v1/sessions/{id}/verify` with `{ nonce, frames: [5 × base64 PNG], challenge: {
//!   frames: [track PNGs], times: [ms per track frame, then per frame] }, client: { pSpoof, live,
//!   captureMs } }` → the server's own verdict and a signed token;
//! - `GET /v1/sessions/{id}` → the session as the audit log holds it (for the host's backend);
//! - `GET /.well-known/jwks.json` → the keys that verify tokens offline ([`crate::token_api`]).
//!
//! A verify is refused (4xx, nothing written) for an unknown, expired or used session, a wrong
//! nonce, or frames that are not five PNGs of one valid size and a track within its limits;
//! otherwise the session is used once, for good, and its outcome recorded. Live = the face gate
//! ∧ the challenge (steps in order, one continuous face, distinct frames, depth, no faster than
//! a person, within the time the server measured itself) ∧ the passive model ∧ the client's
//! score agreeing within [`SCORE_TOLERANCE`] ∧ plausible capture timing. The verdict names the
//! signal that decided; the server's score is only in the answer of a live verdict, so a failed
//! session teaches an attacker nothing about it.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use liveness_core::FRAMES;
use liveness_core::challenge::{
    Challenge, HOLD_FRAMES, MAX_TRACK_FRAMES, MAX_TRACK_SIDE, MIN_STEP_MS, STEP_TIMEOUT_MS, Step,
};
use liveness_runtime::Outcome;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::db::VerifyRecord;
use crate::error::{ApiError, JsonBody};
use crate::frames::{decode_all, decode_track, track_count_ok};
use crate::now_ms;
use crate::tokens::Claims;

/// How long a session may wait for its verify.
pub const SESSION_TTL: Duration = Duration::from_secs(180);
/// How long a token stays valid after the verify.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);
/// Client and server scores of the same frames may differ by float rounding only.
pub const SCORE_TOLERANCE: f64 = 1e-3;
/// The least time between two captured frames the server accepts.
pub const MIN_INTERVAL_MS: u32 = 100;
/// The longest plausible capture of five frames.
pub const MAX_CAPTURE_MS: f64 = 30_000.0;
/// The largest verify body (five lossless frames, base64).
pub const MAX_BODY_BYTES: usize = 24 << 20;

/// A new session.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// Session id.
    pub id: String,
    /// The single-use nonce the verify must carry.
    pub nonce: String,
    /// When the session expires, ms since the Unix epoch.
    pub expires_at: i64,
    /// SHA-256 of the model the server checks with (the client must run the same).
    pub model_sha256: String,
    /// The least interval between captured frames the server accepts.
    pub min_interval_ms: u32,
    /// The head-pose challenge to perform.
    pub challenge: ChallengeSpec,
}

/// A session's challenge, as the widget needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeSpec {
    /// The steps, in order (`centre`, `left`, `right`, `up`, `down`; the user's left and right).
    pub steps: Vec<Step>,
    /// Frames in a row that must show a step.
    pub hold_frames: usize,
    /// The least time per step, ms.
    pub min_step_ms: u32,
    /// The most time the widget gives one step, ms.
    pub step_timeout_ms: u32,
    /// Most frames in the track.
    pub max_frames: usize,
    /// Widest or tallest track frame, pixels.
    pub max_side: u32,
}

impl ChallengeSpec {
    /// The spec of `challenge` with this build's limits.
    pub fn of(challenge: &Challenge) -> Self {
        ChallengeSpec {
            steps: challenge.steps().to_vec(),
            hold_frames: HOLD_FRAMES,
            min_step_ms: MIN_STEP_MS,
            step_timeout_ms: STEP_TIMEOUT_MS,
            max_frames: MAX_TRACK_FRAMES,
            max_side: MAX_TRACK_SIDE,
        }
    }
}

/// Deserialises a JSON array of at most `N` items, refusing the rest as it reads: a body of
/// millions of tiny items (empty strings) costs no more memory than its bytes. `N` is above the
/// valid counts, so a slightly wrong count still gets the error that names it.
fn at_most<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const N: usize>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Bounded<T, N> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "an array of at most {N} items")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
            while let Some(item) = seq.next_element()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!(
                        "more than {N} items in an array"
                    )));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<T, N>(std::marker::PhantomData))
}

/// The frames captured across the challenge.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackUpload {
    /// The track's frames, base64 PNG, in order.
    #[serde(deserialize_with = "at_most::<_, _, 128>")]
    pub frames: Vec<String>,
    /// Capture time of each track frame and then of each of the five frames, ms (one clock).
    #[serde(deserialize_with = "at_most::<_, _, 256>")]
    pub times: Vec<f64>,
}

/// What the client reports of its own check.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientResult {
    /// The client's `p_spoof`.
    pub p_spoof: f64,
    /// The client's verdict.
    pub live: bool,
    /// How long the capture of the five frames took, ms.
    pub capture_ms: f64,
}

/// A verify request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The session's nonce.
    pub nonce: String,
    /// Five lossless PNG frames, base64.
    #[serde(deserialize_with = "at_most::<_, _, 16>")]
    pub frames: Vec<String>,
    /// The frames captured across the challenge.
    pub challenge: TrackUpload,
    /// The client's result.
    pub client: ClientResult,
}

/// A verify's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// Session id.
    pub id: String,
    /// Confirmed live by the server.
    pub live: bool,
    /// The signal that decided: `live`, `refused` (face gate), `challenge-failed`, `flat`,
    /// `discontinuous`, `repeated-frames`, `too-fast` (challenge), `attack` (passive model),
    /// `mismatch` or `timing`.
    pub verdict: String,
    /// The server's `p_spoof`, only with a live verdict (never revealed before it is final).
    pub p_spoof: Option<f64>,
    /// The client's `p_spoof`.
    pub client_p_spoof: f64,
    /// The codes of every check that failed (the audit log has the details).
    pub findings: Vec<String>,
    /// The signed verdict for the host's backend.
    pub token: String,
    /// Server time in the face gate, preprocessing and the model, ms.
    pub model_ms: f64,
    /// Server time in the challenge's checks (the detector on every track frame), ms.
    pub challenge_ms: f64,
}

fn random_hex(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    liveness_core::model_file::hex(&raw)
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "session",
            format!("no session {id:?} (ids are 32 hex digits)"),
        ))
    }
}

/// `POST /v1/sessions`: a session with a nonce and a challenge drawn from the OS's CSPRNG (or
/// the operator's fixed one, for fake-camera tests).
pub async fn create(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let id = random_hex(16);
    crate::telemetry::record_session(&id);
    let nonce = random_hex(16);
    let expires_at = now + app.config.session_ttl.as_millis() as i64;
    let sha = app.scorer.manifest().sha256.clone();
    let challenge = app
        .config
        .challenge
        .clone()
        .unwrap_or_else(|| Challenge::draw(|n| rand::random_range(0..n)));
    app.store
        .create(&id, &nonce, &sha, now, expires_at, &challenge.to_string())
        .await
        .map_err(ApiError::db)?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id,
            nonce,
            expires_at,
            model_sha256: sha,
            min_interval_ms: MIN_INTERVAL_MS,
            challenge: ChallengeSpec::of(&challenge),
        }),
    ))
}

/// `GET /v1/sessions/{id}`.
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    valid_id(&id)?;
    crate::telemetry::record_session(&id);
    let row = app.store.get(&id).await.map_err(ApiError::db)?;
    let row = row.ok_or_else(|| {
        ApiError::client(StatusCode::NOT_FOUND, "session", format!("no session {id}"))
    })?;
    Ok(Json(row))
}

/// Admission to `POST /v1/sessions/{id}/verify`: at most four verifies per verify slot at once
/// (each may hold a body of up to [`MAX_BODY_BYTES`]), so the memory verifies take is bounded
/// whatever the number of clients. One more is answered `503 busy` — after its body has been
/// read and dropped piece by piece (never held), so a client still uploading gets the answer
/// rather than a reset connection.
pub async fn admit(
    State(app): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use http_body_util::BodyExt;
    if let Ok(permit) = app.admission.clone().try_acquire_owned() {
        let response = next.run(req).await;
        drop(permit);
        return response;
    }
    app.metrics.busy();
    let mut body = req.into_body();
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |d| d.len());
        if read > MAX_BODY_BYTES {
            break;
        }
    }
    ApiError::client(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "the server is receiving as many captures as it can; retry in a moment",
    )
    .into_response()
}

/// `POST /v1/sessions/{id}/verify`.
pub async fn verify(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(mut req): JsonBody<VerifyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    valid_id(&id)?;
    crate::telemetry::record_session(&id);
    let client = &req.client;
    if !(client.p_spoof.is_finite() && (0.0..=1.0).contains(&client.p_spoof)) {
        return Err(ApiError::bad(
            "client",
            format!("client.pSpoof {} is not a probability", client.p_spoof),
        ));
    }
    if !(client.capture_ms.is_finite() && client.capture_ms >= 0.0) {
        return Err(ApiError::bad(
            "client",
            format!("client.captureMs {} is not a duration", client.capture_ms),
        ));
    }
    track_count_ok(req.challenge.frames.len())?;
    let times = &req.challenge.times;
    let expected_times = req.challenge.frames.len() + FRAMES;
    if times.len() != expected_times || times.iter().any(|t| !t.is_finite()) {
        return Err(ApiError::bad(
            "challenge",
            format!(
                "challenge.times has {} entries; it needs one finite time per track frame and per frame ({expected_times})",
                times.len(),
            ),
        ));
    }
    // The session first (a read): frames are decoded only for a request that may use it.
    let now = now_ms();
    let session = app.store.get(&id).await.map_err(ApiError::db)?;
    let session = session.ok_or_else(|| {
        ApiError::client(StatusCode::NOT_FOUND, "session", format!("no session {id}"))
    })?;
    if session.nonce != req.nonce {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "nonce",
            format!("the nonce does not belong to session {id}"),
        ));
    }
    if session.state != "open" {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "used",
            format!("session {id} was already verified: a nonce is single-use"),
        ));
    }
    if now >= session.expires_at {
        return Err(ApiError::client(
            StatusCode::GONE,
            "expired",
            format!("session {id} expired; start a new one"),
        ));
    }
    let challenge =
        Challenge::parse(session.challenge.as_deref().unwrap_or_default()).map_err(|_| {
            ApiError::client(
                StatusCode::GONE,
                "expired",
                format!("session {id} has no challenge (made by an older server); start a new one"),
            )
        })?;
    // Decoding and scoring run on a bounded share of the blocking threads: a verify waits for a
    // slot a while (admission already bounds how many wait), and is told to come back (503,
    // Retry-After) when none frees up in time; nothing is written then.
    let waited = tokio::time::timeout(
        app.config.slot_wait,
        app.verify_slots.clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(permit)) = waited else {
        app.metrics.busy();
        return Err(ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is checking as many captures as it can; retry in a moment",
        ));
    };
    // Everything the request can get wrong is checked before the session is claimed.
    let (frame_b64, track_b64) = (
        std::mem::take(&mut req.frames),
        std::mem::take(&mut req.challenge.frames),
    );
    let decoded = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>((
            decode_all(&frame_b64)?,
            decode_track(&track_b64)?,
            frame_b64,
        ))
    })
    .await
    .map_err(ApiError::internal)??;
    let (frames, track, frame_b64) = decoded;
    req.frames = frame_b64;
    if !app.store.claim(&id, now).await.map_err(ApiError::db)? {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "used",
            format!("session {id} was already verified: a nonce is single-use"),
        ));
    }
    // The token's audience: the configured one, else the origin of the page that ran the check
    // (a token obtained on another site names that site), else the issuer.
    let audience = app.config.audience.clone().unwrap_or_else(|| {
        headers
            .get(axum::http::header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| o.starts_with("http://") || o.starts_with("https://"))
            .map_or_else(|| app.config.issuer.clone(), str::to_owned)
    });
    // The rest runs as its own task: a client that hangs up now cannot leave the session
    // claimed and unrecorded (its outcome is written all the same).
    let claimed = Claimed {
        app,
        id,
        audience,
        session,
        req,
        challenge,
        frames,
        track,
        now,
        _permit: permit,
    };
    tokio::spawn(decide(claimed))
        .await
        .map_err(ApiError::internal)?
}

/// A verify whose session is claimed, with its decoded frames and its slot.
struct Claimed {
    app: AppState,
    id: String,
    audience: String,
    session: crate::db::SessionRow,
    req: VerifyRequest,
    challenge: Challenge,
    frames: Vec<crate::frames::Rgba>,
    track: Vec<crate::frames::Rgba>,
    now: i64,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Scores a claimed verify, records its outcome and signs the verdict.
async fn decide(c: Claimed) -> Result<Json<Verified>, ApiError> {
    let Claimed {
        app,
        id,
        audience,
        session,
        req,
        challenge,
        frames,
        track,
        now,
        _permit,
    } = c;
    let client = &req.client;
    let scorer = app.scorer.clone();
    let elapsed_ms = (now - session.created_at) as f64;
    let times = req.challenge.times.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let scored = scorer.score(&frames)?;
        let started = std::time::Instant::now();
        let challenged =
            scorer.challenge(&challenge, &track, (&frames, &scored), &times, elapsed_ms)?;
        let challenge_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok::<_, liveness_runtime::Error>((scored, (challenged, challenge_ms)))
    })
    .await;
    let (scored, (challenged, challenge_ms)) = match checked {
        Ok(Ok(s)) => s,
        other => {
            // The server's failure, not the client's: the session stays usable.
            let _ = app.store.release(&id).await;
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
                Ok(Ok(_)) => String::new(),
            };
            return Err(ApiError::internal(why));
        }
    };
    // Every check that failed, "code: detail"; the first in this order decides the verdict:
    // face gate, challenge, passive model, score agreement, timing.
    let mut findings: Vec<(&'static str, String)> = Vec::new();
    let passive = match &scored.outcome {
        Outcome::Refused(r) => {
            findings.push(("refused", format!("{}: {r}", r.code())));
            None
        }
        Outcome::Verdict(v) => Some(*v),
    };
    let challenge_report = match &challenged {
        Ok(report) => serde_json::to_string(report).ok(),
        Err(failure) => {
            findings.push((failure.code(), failure.to_string()));
            serde_json::to_string(failure).ok()
        }
    };
    if let Some(v) = passive {
        if !v.live {
            findings.push((
                "attack",
                format!(
                    "the model's pSpoof {} is at or above the threshold {}",
                    v.p_spoof, v.threshold
                ),
            ));
        }
        let p = f64::from(v.p_spoof);
        if (p - client.p_spoof).abs() > SCORE_TOLERANCE || client.live != v.live {
            findings.push((
                "mismatch",
                format!(
                    "score-mismatch: the client reported pSpoof {} ({}), the server computed {p} ({}) on the same frames",
                    client.p_spoof,
                    if client.live { "live" } else { "attack" },
                    if v.live { "live" } else { "attack" }
                ),
            ));
        }
    }
    let min_capture = f64::from(4 * MIN_INTERVAL_MS);
    if client.capture_ms < min_capture
        || client.capture_ms > MAX_CAPTURE_MS
        || client.capture_ms > elapsed_ms
    {
        findings.push((
            "timing",
            format!(
                "capture-timing: {} ms for five frames; the server accepts {min_capture} to {MAX_CAPTURE_MS} ms within the session's life",
                client.capture_ms
            ),
        ));
    }
    let live = findings.is_empty();
    let verdict = findings.first().map_or("live", |(code, _)| *code);
    let server_p = passive.map(|v| f64::from(v.p_spoof));
    let outcome = VerifyRecord {
        verified_ms: now,
        client_p_spoof: client.p_spoof,
        server_p_spoof: server_p,
        capture_ms: client.capture_ms as i64,
        verdict,
        live,
        findings: findings.iter().map(|(_, detail)| detail.clone()).collect(),
        frames: app.config.store_frames.then(|| req.frames.clone()),
        challenge_report,
    };
    if let Err(e) = app.store.finish(&id, &outcome).await {
        // Nothing was recorded, so nothing is answered: the session goes back to open for a
        // retry if the database takes the release (else the sweeper closes it as abandoned).
        let _ = app.store.release(&id).await;
        return Err(ApiError::db(e));
    }
    app.metrics.verdict(verdict);
    let iat = crate::tokens::now_seconds();
    let token = app.keys.ring().sign(&Claims {
        iss: app.config.issuer.clone(),
        aud: audience,
        sub: id.clone(),
        iat,
        exp: iat + app.config.token_ttl.as_secs() as i64,
        jti: crate::tokens::new_jti(),
        live,
        verdict: verdict.to_owned(),
        signals: findings
            .iter()
            .map(|(code, _)| (*code).to_owned())
            .collect(),
        challenge: challenged.is_ok(),
        // A failed session's token reveals no score either.
        p_spoof: server_p.filter(|_| live).map(|p| p as f32),
        model: session.model_sha256,
    });
    Ok(Json(Verified {
        id,
        live,
        verdict: verdict.to_owned(),
        // The score is final only with the verdict; a failed session reveals none.
        p_spoof: if live { server_p } else { None },
        client_p_spoof: client.p_spoof,
        findings: findings
            .iter()
            .map(|(code, _)| (*code).to_owned())
            .collect(),
        token,
        model_ms: scored.model_ms,
        challenge_ms,
    }))
}
