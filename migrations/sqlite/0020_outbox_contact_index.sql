-- outbox_contact indexed (contact_id, sent_at), so recording a delivered message (setting
-- sent_at) moved the row's entry in it, and the rows of one burst sit on as many leaves of it
-- as they have contacts: each commit wrote those pages to the WAL again. Every query that
-- looks up a contact's rows reads a contact's few rows (one per campaign) and can read
-- sent_at from them. Measured: 20,000 messages at concurrency 8, 3.22 s → 2.81 s.
DROP INDEX outbox_contact;
CREATE INDEX outbox_contact ON outbox (contact_id);
