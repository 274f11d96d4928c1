-- Only the outbox indexes a query needs (see migrations/sqlite/0019_send_path_indexes.sql).
DROP INDEX outbox_sent_at;
DROP INDEX outbox_phase;
CREATE INDEX outbox_phase ON outbox (campaign_id, phase, state) WHERE phase IS NOT NULL;
DROP INDEX outbox_lease;
CREATE INDEX outbox_lease ON outbox (lease_owner) WHERE lease_owner IS NOT NULL;
