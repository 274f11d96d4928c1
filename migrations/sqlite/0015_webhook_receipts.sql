-- Provider webhooks (issue 23): what each provider's request or event was identified by (SNS
-- MessageId, SendGrid sg_event_id, Mailgun token, Postmark ID), so that a replayed request is
-- recognised and changes nothing. Rows older than the retention fairsend keeps are dropped.
CREATE TABLE webhook_receipts (
    provider     TEXT    NOT NULL,
    receipt      TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, receipt)
);
CREATE INDEX webhook_receipts_at ON webhook_receipts (received_at);
