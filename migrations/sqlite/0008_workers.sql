-- Several `send` workers share a campaign: each claims a batch of due rows under a lease that
-- it renews with its heartbeat; a dead worker's lease runs out and its unsent rows go to the
-- others. One send lock per campaign is no longer needed.
DROP TABLE send_locks;

ALTER TABLE outbox ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NULL;
CREATE INDEX outbox_lease ON outbox (lease_owner);

-- One row per `send` process that has worked on a campaign (worker = host:pid:start).
CREATE TABLE workers (
    worker        TEXT    PRIMARY KEY,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id),
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    claimed       INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    stopped_at    INTEGER NULL
);
CREATE INDEX workers_campaign ON workers (campaign_id, heartbeat_at);

-- The campaign-wide rate limit: the next free send slot (Unix ms), shared by all workers.
CREATE TABLE campaign_pace (
    campaign_id  INTEGER PRIMARY KEY REFERENCES campaigns(id),
    next_slot    INTEGER NOT NULL
);
