-- `serve` hardening (issue 17). Server-side admin sessions, so that logout and a change of the
-- admin password end them on every `serve` process sharing this database; failed logins, for
-- the per-client and global attempt limits; and at most one open and one click per
-- (message, link) per minute.

-- The cookie holds a random token; only its SHA-256 is stored. `password_tag` is a keyed hash
-- of the admin password that opened the session: a session of another password is no session.
CREATE TABLE admin_sessions (
    token_hash    TEXT    PRIMARY KEY,
    password_tag  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

-- One row per failed admin login (client = the peer's IP address), kept for the limit's window.
CREATE TABLE login_failures (
    id      INTEGER PRIMARY KEY,
    client  TEXT    NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_client ON login_failures (client, failed_at);
CREATE INDEX login_failures_at ON login_failures (failed_at);

-- The minute (created_at / 60000) an event counts for; NULL for events recorded before this
-- migration, which the unique index therefore leaves alone.
ALTER TABLE message_events ADD COLUMN minute INTEGER NULL;
CREATE UNIQUE INDEX message_events_once_a_minute
    ON message_events (outbox_id, kind, COALESCE(link, -1), minute);
