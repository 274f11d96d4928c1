-- See migrations/sqlite/0009_suppression_reasons.sql: one suppression model (a set of reasons
-- per address), the key pin, and proven/unverified bounces.
CREATE TABLE suppression_reasons (
    email_hash   TEXT    NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason IN ('optout', 'hard_bounce', 'soft_bounce_limit', 'complaint', 'erased', 'manual')),
    source       TEXT    NOT NULL,
    evidence     TEXT    NULL,
    campaign_id  BIGINT  NULL REFERENCES campaigns(id),
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (email_hash, reason)
);
INSERT INTO suppression_reasons (email_hash, reason, source, evidence, campaign_id, created_at)
    SELECT email_hash, reason, source, NULL, campaign_id, created_at FROM suppressions
    ON CONFLICT DO NOTHING;
INSERT INTO suppression_reasons (email_hash, reason, source, evidence, campaign_id, created_at)
    SELECT email_hash, CASE WHEN source = 'complaint' THEN 'complaint' ELSE 'optout' END, source,
           NULL, campaign_id, created_at FROM optouts
    ON CONFLICT DO NOTHING;

CREATE TABLE key_pin (
    id           BIGINT  PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT    NOT NULL,
    salt         TEXT    NOT NULL,
    wrapped_key  TEXT    NOT NULL,
    key_check    TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    rotated_at   BIGINT  NULL
);

ALTER TABLE bounces ADD COLUMN verification TEXT NOT NULL DEFAULT 'proven'
    CHECK (verification IN ('proven', 'unverified', 'confirmed', 'dismissed'));
CREATE INDEX bounces_verification ON bounces (verification, received_at);
