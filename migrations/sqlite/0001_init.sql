-- fairsend schema: contacts and their register memberships, campaigns, the outbox (one row per
-- campaign and contact), and the global suppression list. Timestamps are Unix milliseconds.

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    email       TEXT    NOT NULL UNIQUE,
    -- keyed hash of the normalised address; joins with suppressions without the address itself
    email_hash  TEXT    NOT NULL UNIQUE,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'passive', 'ceased')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per (contact, register): the person's data as that register holds it, so that a
-- purchased list never overwrites what the customer register says.
CREATE TABLE memberships (
    id           INTEGER PRIMARY KEY,
    contact_id   INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    register     TEXT    NOT NULL,
    first_name   TEXT    NOT NULL DEFAULT '',
    last_name    TEXT    NOT NULL DEFAULT '',
    company      TEXT    NOT NULL DEFAULT '',
    business_id  TEXT    NOT NULL DEFAULT '',
    title        TEXT    NOT NULL DEFAULT '',
    locale       TEXT    NULL CHECK (locale IN ('fi', 'sv', 'en')),
    legal_basis  TEXT    NOT NULL CHECK (legal_basis IN ('consent', 'customer_relationship', 'job_role')),
    consent_at   TEXT    NULL,
    fields       TEXT    NOT NULL DEFAULT '{}',
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (contact_id, register)
);
CREATE INDEX memberships_register ON memberships (register);

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    contact_id       INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    register         TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NULL,
    smtp_reply       TEXT    NULL,
    message_id       TEXT    NULL,
    claimed_by       TEXT    NULL,
    updated_at       INTEGER NOT NULL,
    sent_at          INTEGER NULL,
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX outbox_due ON outbox (campaign_id, state, next_attempt_at);

CREATE TABLE suppressions (
    email_hash   TEXT    PRIMARY KEY,
    email        TEXT    NULL,            -- NULL once the person's data has been erased
    reason       TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    campaign_id  INTEGER NULL REFERENCES campaigns(id),
    created_at   INTEGER NOT NULL
);

-- One `fairsend send` per campaign at a time on SQLite; the holder is host:pid so that a lock
-- left by a killed process can be recognised and taken over.
CREATE TABLE send_locks (
    campaign_id  INTEGER PRIMARY KEY REFERENCES campaigns(id),
    holder       TEXT    NOT NULL,
    acquired_at  INTEGER NOT NULL
);
