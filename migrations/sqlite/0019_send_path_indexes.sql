-- Every index on a column the send path changes is written twice per message (the move to
-- `sending`, then the record), so the outbox keeps only the indexes a query needs:
-- * outbox_sent_at goes: every query on sent_at also names the campaign (outbox_due) or the
--   contact (outbox_contact).
-- * outbox_phase and outbox_lease hold only the rows they are asked about: rows of an A/B
--   split (every query of it says `phase = …`), rows under a lease (`lease_owner = …`).
--   A campaign without a split no longer updates outbox_phase at all, and outbox_lease holds
--   the few rows being sent instead of every row ever sent.
DROP INDEX outbox_sent_at;
DROP INDEX outbox_phase;
CREATE INDEX outbox_phase ON outbox (campaign_id, phase, state) WHERE phase IS NOT NULL;
DROP INDEX outbox_lease;
CREATE INDEX outbox_lease ON outbox (lease_owner) WHERE lease_owner IS NOT NULL;
