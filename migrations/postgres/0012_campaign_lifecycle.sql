-- Pause, resume and cancel (see migrations/sqlite/0018_campaign_lifecycle.sql).
ALTER TABLE campaigns ADD COLUMN run_state TEXT NOT NULL DEFAULT 'active'
    CHECK (run_state IN ('active', 'paused', 'cancelled'));
ALTER TABLE campaigns ADD COLUMN run_state_at BIGINT NULL;
ALTER TABLE campaigns ADD COLUMN run_state_by TEXT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'uncertain', 'cancelled'));
