-- Several `send` workers share a campaign: each claims a batch of due rows under a lease that
-- it renews with its heartbeat; a dead worker's lease runs out and its unsent rows go to the
-- others.

ALTER TABLE outbox ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT  NULL;
CREATE INDEX outbox_lease ON outbox (lease_owner);

-- One row per `send` process that has worked on a campaign (worker = host:pid:start).
CREATE TABLE workers (
    worker        TEXT    PRIMARY KEY,
    campaign_id   BIGINT  NOT NULL REFERENCES campaigns(id),
    host          TEXT    NOT NULL,
    pid           BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL,
    claimed       BIGINT  NOT NULL DEFAULT 0,
    sent          BIGINT  NOT NULL DEFAULT 0,
    stopped_at    BIGINT  NULL
);
CREATE INDEX workers_campaign ON workers (campaign_id, heartbeat_at);

-- The campaign-wide rate limit: the next free send slot (Unix ms), shared by all workers.
CREATE TABLE campaign_pace (
    campaign_id  BIGINT  PRIMARY KEY REFERENCES campaigns(id),
    next_slot    BIGINT  NOT NULL
);
