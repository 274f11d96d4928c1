-- Bounce mailboxes read over IMAP (issue 23). One row per message taken from a mailbox, written
-- in the same transaction as the message's effects: a crash between that commit and the MOVE
-- (or flag) on the server leaves the message in the mailbox, and the next pass finds it here
-- and only moves it. A message is named by its mailbox's UIDVALIDITY and its UID (RFC 3501
-- §2.3.1.1): a UID is never reused while UIDVALIDITY stays the same.
CREATE TABLE mailbox_handled (
    account      TEXT    NOT NULL,
    mailbox      TEXT    NOT NULL,
    uidvalidity  BIGINT  NOT NULL,
    uid          BIGINT  NOT NULL,
    fingerprint  TEXT    NOT NULL,
    handled_at   BIGINT  NOT NULL,
    PRIMARY KEY (account, mailbox, uidvalidity, uid)
);
