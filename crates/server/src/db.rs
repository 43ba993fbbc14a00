//! The audit log and the sessions' state, in SQLite (a file next to the server, the default) or
//! PostgreSQL (shared by several instances behind a load balancer, so any instance can verify any
//! session), through sqlx's Any driver with one schema (`migrations/`, applied at start).
//!
//! Single use holds across instances: a verify first moves its session from `open` to
//! `verifying` in one conditional UPDATE, which only one request can win.

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

/// Why the database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A URL that is neither `sqlite:` nor `postgres:`.
    #[error("--database {0}: expected sqlite://FILE or postgres://…")]
    Url(String),
    /// Connecting or migrating failed.
    #[error("database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema failed.
    #[error("database {url}: migrating the schema: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    /// The SQLite file cannot be created.
    #[error("database {path}: cannot create it: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `url` with any password replaced by `***`, for messages (errors are logged and printed).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// A session as the audit log holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Its single-use nonce.
    #[serde(skip)]
    pub nonce: String,
    /// SHA-256 of the model that decides.
    pub model_sha256: String,
    /// Created, ms since the Unix epoch.
    pub created_at: i64,
    /// Expires, ms since the Unix epoch.
    pub expires_at: i64,
    /// `open`, `verifying` or `done`.
    pub state: String,
    /// Verified, ms since the Unix epoch.
    pub verified_at: Option<i64>,
    /// The client's `p_spoof`.
    pub client_p_spoof: Option<f64>,
    /// The server's `p_spoof` on the same frames.
    pub server_p_spoof: Option<f64>,
    /// How long the client's capture took, ms.
    pub capture_ms: Option<i64>,
    /// `live`, `attack`, `refused` or `mismatch`.
    pub verdict: Option<String>,
    /// Whether the server confirmed a live person.
    pub live: Option<bool>,
    /// Why a verdict is not live beyond the model's score (mismatch, timing, refusal).
    pub findings: Vec<String>,
    /// When the host accepted the session's token.
    pub token_used_at: Option<i64>,
    /// The challenge drawn for the session (`centre,left,right,centre`).
    pub challenge: Option<String>,
    /// What the challenge's track measured (JSON), or why it failed.
    pub challenge_report: Option<String>,
}

/// What a verify found, to record.
#[derive(Debug, Clone)]
pub struct VerifyRecord {
    /// When.
    pub verified_ms: i64,
    /// The client's `p_spoof`.
    pub client_p_spoof: f64,
    /// The server's `p_spoof` (`None` when the face gate refused the frames).
    pub server_p_spoof: Option<f64>,
    /// The capture's duration.
    pub capture_ms: i64,
    /// `live`, `attack`, `refused` or `mismatch`.
    pub verdict: &'static str,
    /// Confirmed live.
    pub live: bool,
    /// Why not, beyond the score.
    pub findings: Vec<String>,
    /// The frames (base64 PNG) when the operator keeps them.
    pub frames: Option<Vec<String>>,
    /// What the challenge's track measured (JSON), or why it failed.
    pub challenge_report: Option<String>,
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

const COLUMNS: &str = "id, nonce, model_sha256, created_ms, expires_ms, state, verified_ms, client_p_spoof, server_p_spoof, capture_ms, verdict, live, findings, token_used_ms, challenge, challenge_report";

fn row(r: &sqlx::any::AnyRow) -> Result<SessionRow, sqlx::Error> {
    let findings: Option<String> = r.try_get("findings")?;
    let live: Option<i64> = r.try_get("live")?;
    Ok(SessionRow {
        id: r.try_get("id")?,
        nonce: r.try_get("nonce")?,
        model_sha256: r.try_get("model_sha256")?,
        created_at: r.try_get("created_ms")?,
        expires_at: r.try_get("expires_ms")?,
        state: r.try_get("state")?,
        verified_at: r.try_get("verified_ms")?,
        client_p_spoof: r.try_get("client_p_spoof")?,
        server_p_spoof: r.try_get("server_p_spoof")?,
        capture_ms: r.try_get("capture_ms")?,
        verdict: r.try_get("verdict")?,
        live: live.map(|l| l != 0),
        findings: findings
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default(),
        token_used_at: r.try_get("token_used_ms")?,
        challenge: r.try_get("challenge")?,
        challenge_report: r.try_get("challenge_report")?,
    })
}

impl Store {
    /// Connects to `url` (`sqlite://FILE` — created when missing — or `postgres://…`) and
    /// applies the schema.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        install_default_drivers();
        let url_full = if let Some(path) = url.strip_prefix("sqlite://") {
            // The audit log is the operator's alone: a new file is created 0600.
            let file = path.split('?').next().unwrap_or(path);
            if !file.is_empty() && !file.starts_with(':') && !std::path::Path::new(file).exists() {
                crate::private_files::create_file(std::path::Path::new(file), b"").map_err(
                    |source| DbError::Create {
                        path: file.to_owned(),
                        source,
                    },
                )?;
            }
            if path.contains('?') {
                url.to_owned()
            } else {
                format!("sqlite://{path}?mode=rwc")
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.to_owned()
        } else {
            return Err(DbError::Url(redact(url)));
        };
        let connect = |source| DbError::Connect {
            url: redact(url),
            source,
        };
        // SQLite serialises writers: one connection avoids "database is locked" under load.
        let max = if url_full.starts_with("sqlite") { 1 } else { 8 };
        // A database that does not answer fails a request within seconds (503), not a
        // client's patience; the pool reconnects by itself once it is back.
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url_full)
            .await
            .map_err(connect)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| DbError::Migrate {
                url: redact(url),
                source,
            })?;
        Ok(Store { pool })
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records a new open session and its challenge.
    pub async fn create(
        &self,
        id: &str,
        nonce: &str,
        model_sha256: &str,
        created_ms: i64,
        expires_ms: i64,
        challenge: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sessions (id, nonce, model_sha256, created_ms, expires_ms, state, challenge) VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        )
        .bind(id)
        .bind(nonce)
        .bind(model_sha256)
        .bind(created_ms)
        .bind(expires_ms)
        .bind(challenge)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<SessionRow>, DbError> {
        let found = sqlx::query(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.as_ref().map(row).transpose()?)
    }

    /// Moves an open, unexpired session to `verifying`; `false` when another request already did
    /// (or it expired meanwhile).
    pub async fn claim(&self, id: &str, now_ms: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE sessions SET state = 'verifying' WHERE id = $1 AND state = 'open' AND expires_ms > $2")
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claimed session back (the server failed while scoring: not the client's fault).
    pub async fn release(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET state = 'open' WHERE id = $1 AND state = 'verifying'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a verify's outcome.
    pub async fn finish(&self, id: &str, o: &VerifyRecord) -> Result<(), DbError> {
        let frames = o
            .frames
            .as_ref()
            .map(|f| serde_json::to_string(f).unwrap_or_default());
        sqlx::query(
            "UPDATE sessions SET state = 'done', verified_ms = $1, client_p_spoof = $2, server_p_spoof = $3, capture_ms = $4, verdict = $5, live = $6, findings = $7, frames = $8, challenge_report = $9 WHERE id = $10",
        )
        .bind(o.verified_ms)
        .bind(o.client_p_spoof)
        .bind(o.server_p_spoof)
        .bind(o.capture_ms)
        .bind(o.verdict)
        .bind(i64::from(o.live))
        .bind(serde_json::to_string(&o.findings).unwrap_or_default())
        .bind(frames)
        .bind(o.challenge_report.as_deref())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Consumes the token `jti` of session `session_id` (valid until `expires_ms`): `true` the
    /// first time, `false` for a replay. One INSERT decides, so of concurrent consumes of one
    /// token — on any instance sharing the database — exactly one wins. The session's
    /// `token_used_ms` records the first use in the audit log.
    pub async fn consume(
        &self,
        jti: &str,
        session_id: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        let inserted = sqlx::query(
            "INSERT INTO consumed_tokens (jti, session_id, expires_ms, consumed_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(session_id)
        .bind(expires_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query(
                "UPDATE sessions SET token_used_ms = $1 WHERE id = $2 AND token_used_ms IS NULL",
            )
            .bind(now_ms)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        }
        Ok(inserted)
    }

    /// Housekeeping, run by the server every minute: closes sessions left `verifying` a minute
    /// past their expiry (a server that stopped while scoring; the verdict `abandoned`, never
    /// live), deletes sessions created before `keep_since_ms` (the retention period) and
    /// forgets consumed tokens that have expired.
    /// Returns (closed, deleted).
    pub async fn sweep(&self, now_ms: i64, keep_since_ms: i64) -> Result<(u64, u64), DbError> {
        let closed = sqlx::query(
            "UPDATE sessions SET state = 'done', verdict = 'abandoned', live = 0, verified_ms = $1 WHERE state = 'verifying' AND expires_ms < $2",
        )
        .bind(now_ms)
        .bind(now_ms - 60_000)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM sessions WHERE created_ms < $1")
            .bind(keep_since_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM consumed_tokens WHERE expires_ms < $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok((closed, deleted))
    }

    /// The stored frames of a session (when the operator keeps them).
    pub async fn frames(&self, id: &str) -> Result<Option<Vec<String>>, DbError> {
        let found = sqlx::query("SELECT frames FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let text: Option<String> = match found {
            Some(r) => r.try_get("frames")?,
            None => None,
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_database_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://liveness:s3cr3t@db.internal:5432/liveness"),
            "postgres://liveness:***@db.internal:5432/liveness"
        );
        assert_eq!(
            redact("postgres://liveness@db/x"),
            "postgres://liveness@db/x"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        // An '@' inside the password is still hidden.
        assert!(!redact("postgres://u:p@ss@h/d").contains("p@ss"));
    }
}
