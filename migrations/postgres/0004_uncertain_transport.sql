-- Uncertain outcomes and the transport kind of each row.
--
-- `uncertain`: the connection dropped or timed out after the message data was sent and before
-- the server answered (RFC 5321 §6.1: the server may have accepted it). Such a row is never
-- resent automatically, only by `fairsend send --resend-uncertain`.
-- `transport`: the kind of transport ('smtp' or 'outbox') a row was last moved to `sending`
-- with, so that a run resumed with another kind cannot judge an interrupted row by the wrong
-- rule.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'uncertain'));
ALTER TABLE outbox ADD COLUMN transport TEXT NULL CHECK (transport IN ('smtp', 'outbox'));
