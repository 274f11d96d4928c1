-- Signup forms with double opt-in (issue 23, part 3). Timestamps are Unix milliseconds.

-- One pending signup per (address, register). `mailed_at` is when its confirmation mail was
-- issued (the link expires counted from it, and carries it, so only the newest link works);
-- a new request within `[signup] resend_after` of it sends no mail. Deleted by erasure.
CREATE TABLE signup_requests (
    id              INTEGER PRIMARY KEY,
    email_hash      TEXT    NOT NULL,
    register        TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    company         TEXT    NOT NULL DEFAULT '',
    locale          TEXT    NOT NULL CHECK (locale IN ('fi', 'sv', 'en')),
    notice_sha256   TEXT    NOT NULL,
    notice_version  TEXT    NOT NULL,
    request_ip      TEXT    NULL,
    requested_at    INTEGER NOT NULL,
    mailed_at       INTEGER NOT NULL,
    confirmed_at    INTEGER NULL,
    UNIQUE (email_hash, register)
);

-- The proof of a confirmed consent: when it was asked for and confirmed, which notice (its
-- SHA-256 and version) in which language, from which (truncated) network. Deleted by erasure.
CREATE TABLE consent_proofs (
    id              INTEGER PRIMARY KEY,
    email_hash      TEXT    NOT NULL,
    register        TEXT    NOT NULL,
    requested_at    INTEGER NOT NULL,
    confirmed_at    INTEGER NOT NULL,
    notice_sha256   TEXT    NOT NULL,
    notice_version  TEXT    NOT NULL,
    locale          TEXT    NOT NULL,
    request_ip      TEXT    NULL,
    confirm_ip      TEXT    NULL,
    UNIQUE (email_hash, register)
);

-- Every notice text a proof refers to, by its hash: no personal data, kept after erasure.
CREATE TABLE consent_notices (
    sha256          TEXT    PRIMARY KEY,
    register        TEXT    NOT NULL,
    locale          TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    first_shown_at  INTEGER NOT NULL
);
