-- Pause, resume and cancel.
--
-- campaigns.run_state: `active` sends; `paused` starts no new transaction (every worker sees it
-- within a second) until resumed; `cancelled` is final. Who changed it and when is kept beside
-- it (and in audit_log).
-- outbox.state `cancelled`: a row that was still to be sent when its campaign was cancelled.
--
-- SQLite cannot change a CHECK constraint in place: outbox is rebuilt with the same columns
-- (in the same order) and indexes, as in 0010. No table references outbox.
ALTER TABLE campaigns ADD COLUMN run_state TEXT NOT NULL DEFAULT 'active'
    CHECK (run_state IN ('active', 'paused', 'cancelled'));
ALTER TABLE campaigns ADD COLUMN run_state_at INTEGER NULL;
ALTER TABLE campaigns ADD COLUMN run_state_by TEXT NULL;

CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    contact_id       INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    register         TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'uncertain', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NULL,
    smtp_reply       TEXT    NULL,
    message_id       TEXT    NULL,
    claimed_by       TEXT    NULL,
    updated_at       INTEGER NOT NULL,
    sent_at          INTEGER NULL,
    latency_ms       INTEGER NULL,
    phase            TEXT    NULL CHECK (phase IN ('test', 'remainder')),
    variant          INTEGER NULL,
    lease_owner      TEXT    NULL,
    lease_until      INTEGER NULL,
    transport        TEXT    NULL CHECK (transport IN ('smtp', 'outbox')),
    UNIQUE (campaign_id, contact_id)
);
INSERT INTO outbox_new (id, campaign_id, contact_id, register, state, attempts, next_attempt_at,
                        last_error, smtp_reply, message_id, claimed_by, updated_at, sent_at,
                        latency_ms, phase, variant, lease_owner, lease_until, transport)
SELECT id, campaign_id, contact_id, register, state, attempts, next_attempt_at,
       last_error, smtp_reply, message_id, claimed_by, updated_at, sent_at,
       latency_ms, phase, variant, lease_owner, lease_until, transport
  FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (campaign_id, state, next_attempt_at);
CREATE INDEX outbox_contact ON outbox (contact_id, sent_at);
CREATE INDEX outbox_sent_at ON outbox (sent_at);
CREATE INDEX outbox_phase ON outbox (campaign_id, phase, state);
CREATE INDEX outbox_lease ON outbox (lease_owner);
