-- Single use of tokens for backends that keep no state (POST /v1/tokens/consume, and the demo
-- signup): a token's jti is inserted once; a second insert of the same jti is a replay. Rows go
-- once the token has expired (the sweeper), since an expired token is refused anyway.
CREATE TABLE consumed_tokens (
    jti TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    consumed_ms BIGINT NOT NULL
);
