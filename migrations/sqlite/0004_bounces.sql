-- Inbound messages already handled (by SHA-256 of their bytes): ingesting one twice counts once.
CREATE TABLE inbound_messages (
    fingerprint  TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
);

-- The bounce queue: one row per recipient of a DSN, per complaint, per auto-reply.
CREATE TABLE bounces (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT    NOT NULL REFERENCES inbound_messages(fingerprint),
    received_at   INTEGER NOT NULL,
    email_hash    TEXT    NULL,
    email         TEXT    NULL,
    outbox_id     INTEGER NULL,
    campaign_id   INTEGER NULL REFERENCES campaigns(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('dsn', 'complaint', 'auto_reply')),
    class         TEXT    NULL CHECK (class IN ('hard', 'soft')),
    reason        TEXT    NOT NULL,
    status        TEXT    NULL,
    reply_code    INTEGER NULL,
    diagnostic    TEXT    NULL,
    action_taken  TEXT    NOT NULL
);
CREATE INDEX bounces_hash ON bounces (email_hash, class, received_at);
CREATE INDEX bounces_received ON bounces (received_at);
