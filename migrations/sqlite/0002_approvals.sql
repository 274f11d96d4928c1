-- Compliance approvals: who approved a campaign's rendered compliance blocks, when, and the hash
-- of every footer variant as approved. The newest row per campaign is the one in force.
CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY,
    campaign      TEXT    NOT NULL,
    approved_by   TEXT    NOT NULL,
    approved_at   INTEGER NOT NULL,
    combined_hash TEXT    NOT NULL,
    variants      TEXT    NOT NULL   -- JSON object: variant key → SHA-256 of its rendered blocks
);
CREATE INDEX approvals_campaign ON approvals (campaign, id);
