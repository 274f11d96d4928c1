-- Engagement with a message (a reply now; clicks and opens when tracking exists): what tells a
-- living address from a silent one in the hygiene report.
CREATE TABLE engagements (
    id           INTEGER PRIMARY KEY,
    email_hash   TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('reply', 'click', 'open')),
    campaign_id  INTEGER NULL REFERENCES campaigns(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX engagements_hash ON engagements (email_hash);
CREATE INDEX outbox_contact ON outbox (contact_id, sent_at);
CREATE INDEX memberships_business_id ON memberships (business_id);
