-- Who changed what from the admin pages (bounce re-classification, manual opt-outs, erasure,
-- approvals), kept for audit.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    detail      TEXT    NULL
);

-- Milliseconds the SMTP transaction of a sent message took: the latency histogram of /metrics.
ALTER TABLE outbox ADD COLUMN latency_ms INTEGER NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at);
