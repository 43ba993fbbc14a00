-- The audit log of verification sessions. One schema for SQLite and PostgreSQL (sqlx's Any
-- driver): BIGINT milliseconds since the Unix epoch, DOUBLE PRECISION scores, TEXT otherwise.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    -- open → verifying → done; a session is verified at most once.
    state TEXT NOT NULL,
    verified_ms BIGINT,
    client_p_spoof DOUBLE PRECISION,
    server_p_spoof DOUBLE PRECISION,
    capture_ms BIGINT,
    -- live | attack | refused (no single face) | mismatch (client and server disagree)
    verdict TEXT,
    live BIGINT,
    findings TEXT,
    -- When the host accepted the session's token (single use).
    token_used_ms BIGINT,
    -- The five PNG frames (base64, JSON array), only when the operator turns it on.
    frames TEXT
);
