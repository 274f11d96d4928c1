-- outbox_contact indexed (contact_id, sent_at), so recording a delivered message (setting
-- sent_at) wrote a new entry in it: each contact's few rows (one per campaign) are read in
-- full by every query that looks them up, which can read sent_at from the rows.
DROP INDEX outbox_contact;
CREATE INDEX outbox_contact ON outbox (contact_id);
