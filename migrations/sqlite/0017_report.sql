-- The campaign results report (issue 22): a bounce is found by its message, once per message
-- of the campaign (whether a sent message bounced decides if it was delivered).
CREATE INDEX bounces_outbox ON bounces (outbox_id);
