-- When a campaign's outbox was last prepared (Unix ms, by the preparing transaction's clock,
-- read once it held the campaign's write lock) and over which audience definition (a digest of
-- its registers and segment): a `send` worker that starts while another prepares joins that
-- preparation instead of evaluating the whole audience again (store/outbox.rs).
ALTER TABLE campaigns ADD COLUMN prepared_at INTEGER NULL;
ALTER TABLE campaigns ADD COLUMN prepared_scope TEXT NULL;
