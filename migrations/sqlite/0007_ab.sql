-- A/B subject tests: each outbox row's phase and subject variant, the campaign's test state
-- and decision, the links a tracked click may lead to, and the click/open events.
ALTER TABLE outbox ADD COLUMN phase TEXT NULL CHECK (phase IN ('test', 'remainder'));
ALTER TABLE outbox ADD COLUMN variant INTEGER NULL;
CREATE INDEX outbox_phase ON outbox (campaign_id, phase, state);

CREATE TABLE ab_state (
    campaign_id       INTEGER PRIMARY KEY REFERENCES campaigns(id),
    test_finished_at  INTEGER NULL,
    decided_at        INTEGER NULL,
    winner            INTEGER NULL,
    method            TEXT    NULL,
    statistic         REAL    NULL,
    p_value           REAL    NULL,
    fallback_used     INTEGER NULL
);

CREATE TABLE campaign_links (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    idx          INTEGER NOT NULL,
    url          TEXT    NOT NULL,
    PRIMARY KEY (campaign_id, idx)
);

CREATE TABLE message_events (
    id          INTEGER PRIMARY KEY,
    outbox_id   INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('click', 'open')),
    link        INTEGER NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX message_events_outbox ON message_events (outbox_id);
