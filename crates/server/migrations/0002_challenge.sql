-- The head-pose challenge the server drew for the session (comma-separated steps), and what its
-- track measured (JSON), so the audit log says what was asked and what was seen.
ALTER TABLE sessions ADD COLUMN challenge TEXT;
ALTER TABLE sessions ADD COLUMN challenge_report TEXT;
