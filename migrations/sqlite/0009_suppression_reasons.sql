-- One suppression model: an address (by keyed hash) is suppressed while it has at least one
-- reason. Each reason keeps its own source, time and evidence; adding one never changes another
-- and lifting one (an operator's re-classification) removes that reason alone.
-- `suppressions` stays as the per-address summary that the send path joins on (one row per
-- hash, the earliest reason); both tables are written only through src/store/suppressions.rs,
-- which src/suppress/ drives.
CREATE TABLE suppression_reasons (
    email_hash   TEXT    NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason IN ('optout', 'hard_bounce', 'soft_bounce_limit', 'complaint', 'erased', 'manual')),
    source       TEXT    NOT NULL,
    evidence     TEXT    NULL,            -- a bounce id, an opt-out source; never the address
    campaign_id  INTEGER NULL REFERENCES campaigns(id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (email_hash, reason)
);
INSERT INTO suppression_reasons (email_hash, reason, source, evidence, campaign_id, created_at)
    SELECT email_hash, reason, source, NULL, campaign_id, created_at FROM suppressions WHERE true
    ON CONFLICT DO NOTHING;
-- An opt-out recorded after another suppression kept only the first reason: restore it.
INSERT INTO suppression_reasons (email_hash, reason, source, evidence, campaign_id, created_at)
    SELECT email_hash, CASE WHEN source = 'complaint' THEN 'complaint' ELSE 'optout' END, source,
           NULL, campaign_id, created_at FROM optouts WHERE true
    ON CONFLICT DO NOTHING;

-- The key pin: the data key that hashes addresses and signs tokens, wrapped by the master secret
-- of the environment, and the master's fingerprint. A command run with another master refuses.
CREATE TABLE key_pin (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT    NOT NULL,
    salt         TEXT    NOT NULL,
    wrapped_key  TEXT    NOT NULL,
    key_check    TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    rotated_at   INTEGER NULL
);

-- Bounces act only when proven: `proven` (VERP token or our Message-ID), `unverified` (recorded
-- only; an operator confirms or dismisses), `confirmed`, `dismissed`.
ALTER TABLE bounces ADD COLUMN verification TEXT NOT NULL DEFAULT 'proven'
    CHECK (verification IN ('proven', 'unverified', 'confirmed', 'dismissed'));
CREATE INDEX bounces_verification ON bounces (verification, received_at);
