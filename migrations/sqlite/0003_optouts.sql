-- The opt-out queue: one row per address that refused marketing (GDPR art. 21), with how and
-- from which campaign. The suppression row is what blocks sending; this row is the record
-- operators read. After erasure only the keyed hash remains.
CREATE TABLE optouts (
    id           INTEGER PRIMARY KEY,
    email_hash   TEXT    NOT NULL UNIQUE,
    email        TEXT    NULL,
    source       TEXT    NOT NULL CHECK (source IN ('page', 'one_click', 'mailto', 'reply', 'complaint', 'manual')),
    campaign_id  INTEGER NULL REFERENCES campaigns(id),
    detail       TEXT    NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX optouts_created ON optouts (created_at);
