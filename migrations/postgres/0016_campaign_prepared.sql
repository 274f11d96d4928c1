-- When a campaign's outbox was last prepared (Unix ms, by the server's clock, read once the
-- preparing transaction held the campaign's row lock) and over which audience definition (a
-- digest of its registers and segment): a `send` worker that starts while another prepares
-- joins that preparation instead of evaluating the whole audience again (store/outbox.rs).
ALTER TABLE campaigns ADD COLUMN prepared_at BIGINT NULL;
ALTER TABLE campaigns ADD COLUMN prepared_scope TEXT NULL;
