//! Inbound mail: bounces (RFC 3464 DSNs and the non-standard texts MTAs send), feedback-loop
//! complaints (ARF, RFC 5965), automatic replies (RFC 3834) and human replies. This module
//! parses and decides what a message is; it changes nothing. `ingest` turns the decision into
//! suppressions and records through `store` and `suppress`.

pub mod apply;
pub mod classify;
pub mod dsn;
pub mod imap;
pub mod ingest;
pub mod reply;
pub mod ses;
pub mod webhooks;

use mail_parser::{Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

pub use classify::{BounceClass, Reason};
pub use dsn::DsnRecipient;

use crate::config::BounceSettings;
use crate::suppress::{Secret, TokenPurpose, verify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dsn,
    Complaint,
    AutoReply,
    Reply,
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dsn => "dsn",
            Self::Complaint => "complaint",
            Self::AutoReply => "auto_reply",
            Self::Reply => "reply",
            Self::Unknown => "unknown",
        }
    }
}

/// What an inbound message is and whom it concerns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inbound {
    pub kind: Kind,
    /// SHA-256 of the raw bytes: the same message ingested twice counts once.
    pub fingerprint: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// The outbox row named by a VERP token (envelope sender) or our Message-ID found in the
    /// message: the most reliable link to the recipient and campaign.
    pub outbox_row: Option<i64>,
    /// The outbox row of a tokenized `mailto:` unsubscribe address this was sent to.
    pub unsubscribe_row: Option<i64>,
    pub recipients: Vec<DsnRecipient>,
    /// For replies: the unsubscribe word found in the person's first lines.
    pub unsubscribe_word: Option<&'static str>,
    /// For complaints: the ARF `Feedback-Type`.
    pub feedback_type: Option<String>,
    /// The `Message-ID` of the returned original message (DSN or complaint), without `<>`.
    pub returned_message_id: Option<String>,
    /// The returned original message's `X-Fairsend-*` headers, as (name, value).
    pub returned_headers: Vec<(String, String)>,
}

/// Only the first 10 MiB of a message are parsed (the fingerprint covers all of it): a report
/// puts its status first, and what follows is the returned message.
pub const MAX_PARSE_BYTES: usize = 10 * 1024 * 1024;

/// Splits an mbox (messages separated by lines starting with `From `) into messages; a file
/// that is not an mbox is one message.
pub fn split_mbox(raw: &[u8]) -> Vec<&[u8]> {
    if !raw.starts_with(b"From ") {
        return vec![raw];
    }
    let mut messages = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < raw.len() {
        let line_end = raw[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| at + i + 1)
            .unwrap_or(raw.len());
        if raw[at..].starts_with(b"From ")
            && (at == 0
                || raw[..at].ends_with(b"\n\n")
                || raw[..at].ends_with(b"\r\n\r\n")
                || at == start)
        {
            if at > start {
                messages.push(&raw[start..at]);
            }
            start = line_end; // the separator line is not part of the message
        }
        at = line_end;
    }
    if start < raw.len() {
        messages.push(&raw[start..]);
    }
    messages.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    messages
}

/// What identifies fairsend's own addresses and tokens in inbound mail.
pub struct Keys<'a> {
    pub secret: &'a Secret,
    pub bounces: &'a BounceSettings,
}

pub fn parse(raw: &[u8], keys: &Keys<'_>) -> Inbound {
    let fingerprint = data_encoding::HEXLOWER.encode(&Sha256::digest(raw));
    let raw = &raw[..raw.len().min(MAX_PARSE_BYTES)];
    let Some(message) = parse_mime(raw) else {
        return Inbound::unknown(fingerprint, None, Vec::new());
    };
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    let (returned_message_id, returned_headers) = dsn::returned_identity(&message);
    let mut inbound = Inbound::unknown(fingerprint, returned_message_id, returned_headers);
    inbound.message_id = message.message_id().map(str::to_string);
    inbound.from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase);
    inbound.subject = message.subject().map(str::to_string);
    inbound.outbox_row = find_token(&text, keys, &keys.bounces.local_part, TokenPurpose::Bounce)
        .or_else(|| find_message_id_token(&text, keys));
    inbound.unsubscribe_row = recipient_headers(&message).iter().find_map(|h| {
        find_token(
            h,
            keys,
            &keys.bounces.unsubscribe_local_part,
            TokenPurpose::Unsubscribe,
        )
    });
    classify_message(&message, &text, keys, &mut inbound);
    inbound
}

impl Inbound {
    /// A message of unknown kind that concerns no one (yet).
    fn unknown(
        fingerprint: String,
        returned_message_id: Option<String>,
        returned_headers: Vec<(String, String)>,
    ) -> Self {
        Inbound {
            kind: Kind::Unknown,
            fingerprint,
            message_id: None,
            from: None,
            subject: None,
            outbox_row: None,
            unsubscribe_row: None,
            recipients: Vec::new(),
            unsubscribe_word: None,
            feedback_type: None,
            returned_message_id,
            returned_headers,
        }
    }
}

/// Decides what the message is — SES notification, ARF complaint, DSN, automatic reply or a
/// person's reply — and whom it concerns.
fn classify_message(message: &Message<'_>, text: &str, keys: &Keys<'_>, inbound: &mut Inbound) {
    let own = |a: &str| a.ends_with(&format!("@{}", keys.bounces.domain));
    let ses = text
        .contains("notificationtype")
        .then(|| ses::notification(message))
        .flatten();
    if let Some(notification) = ses {
        match notification {
            ses::Notification::Bounce(recipients) | ses::Notification::Delivery(recipients) => {
                inbound.kind = Kind::Dsn;
                inbound.recipients = recipients;
            }
            ses::Notification::Complaint {
                recipient,
                feedback_type,
            } => complaint(inbound, recipient, feedback_type),
        }
    } else if is_complaint(message) {
        complaint(
            inbound,
            complaint_recipient(message),
            feedback_type(message),
        );
    } else if dsn::looks_like_dsn(message) {
        inbound.kind = Kind::Dsn;
        inbound.recipients = dsn::recipients(message, &own);
    } else if reply::is_auto_reply(message) {
        // The auto-reply comes from the person our message reached.
        auto_reply(inbound);
    } else if inbound.from.is_some() {
        inbound.unsubscribe_word = reply::unsubscribe_request(message);
        // Out-of-office wording in the body counts only when the person asked nothing: a
        // reply that asks to be removed must never be lost as an automatic one.
        if inbound.unsubscribe_word.is_none() && reply::reads_like_auto_reply(message) {
            auto_reply(inbound);
        } else {
            inbound.kind = Kind::Reply;
        }
    }
}

fn complaint(inbound: &mut Inbound, address: Option<String>, feedback_type: Option<String>) {
    inbound.kind = Kind::Complaint;
    inbound.feedback_type = feedback_type;
    inbound.recipients = vec![DsnRecipient {
        address,
        action: None,
        status: None,
        reply_code: None,
        diagnostic: inbound.feedback_type.clone(),
        class: None,
        reason: Reason::Other,
    }];
}

fn auto_reply(inbound: &mut Inbound) {
    inbound.kind = Kind::AutoReply;
    inbound.recipients = vec![DsnRecipient::reported_by(
        inbound.from.clone(),
        inbound.subject.clone(),
    )];
}

/// mail-parser 0.11 (the last release that builds on this toolchain) panics on some malformed
/// multipart structures (found by `tests/inbound_fuzz.rs`). A message it cannot parse is
/// `unknown`, not a crash of `bounces ingest`; only the library call is guarded, so a panic in
/// fairsend's own code still fails the fuzz test.
fn parse_mime(raw: &[u8]) -> Option<Message<'_>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MessageParser::default().parse(raw)
    })) {
        Ok(message) => message,
        Err(_) => {
            tracing::warn!(
                bytes = raw.len(),
                "the MIME parser failed on this message; it is recorded as unknown"
            );
            None
        }
    }
}

/// ARF (RFC 5965): `multipart/report; report-type=feedback-report` or a
/// `message/feedback-report` part.
/// A report forwarded inside another message counts too, as does Microsoft's JMRP format (the
/// complained-about message attached with an `X-HmXmrOriginalRecipient` header).
fn is_complaint(message: &Message<'_>) -> bool {
    is_arf(message, 0) || jmrp_recipient(message).is_some()
}

fn is_arf(message: &Message<'_>, depth: usize) -> bool {
    dsn::has_part(message, "message", "feedback-report")
        || message.content_type().is_some_and(|ct| {
            ct.attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("feedback-report"))
        })
        || (depth < 2
            && message
                .parts
                .iter()
                .filter_map(|p| p.message())
                .any(|m| is_arf(m, depth + 1)))
}

/// The recipient named by a JMRP report's `X-HmXmrOriginalRecipient` header.
fn jmrp_recipient(message: &Message<'_>) -> Option<String> {
    message
        .parts
        .iter()
        .filter_map(|p| p.message())
        .find_map(|m| m.header_raw("X-HmXmrOriginalRecipient"))
        .and_then(|v| dsn::addresses(v).into_iter().next())
        .map(|(_, a)| a)
}

fn feedback_type(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|p| {
        let text = String::from_utf8_lossy(p.contents()).into_owned();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("Feedback-Type:")
                    .or_else(|| l.strip_prefix("feedback-type:"))
            })
            .map(|v| v.trim().to_ascii_lowercase())
    })
}

/// The complained-about recipient: `Original-Rcpt-To` of the report, else JMRP's header, else
/// the original message's `To`.
fn complaint_recipient(message: &Message<'_>) -> Option<String> {
    if let Some(a) = jmrp_recipient(message) {
        return Some(a);
    }
    for p in &message.parts {
        let text = String::from_utf8_lossy(p.contents()).into_owned();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("Original-Rcpt-To:")
                && let Some((_, a)) = dsn::addresses(v).into_iter().next()
            {
                return Some(a);
            }
        }
    }
    dsn::original_header(message, "to")
}

fn recipient_headers(message: &Message<'_>) -> Vec<String> {
    [
        "to",
        "cc",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
    ]
    .iter()
    .filter_map(|h| message.header_raw(*h).map(str::to_ascii_lowercase))
    .collect()
}

/// A `LOCAL+TOKEN@bounce-domain` address anywhere in `text` whose token verifies.
fn find_token(text: &str, keys: &Keys<'_>, local_part: &str, purpose: TokenPurpose) -> Option<i64> {
    let prefix = format!("{}+", local_part.to_ascii_lowercase());
    let suffix = format!("@{}", keys.bounces.domain);
    text.match_indices(&prefix).find_map(|(i, _)| {
        let rest = &text[i + prefix.len()..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .take(64)
            .collect();
        rest[token.len()..]
            .starts_with(&suffix)
            .then(|| verify(keys.secret, purpose, &token))
            .flatten()
    })
}

/// Our Message-ID `<TOKEN@bounce-domain>` (quoted in a DSN's original message, or in a
/// reply's `In-Reply-To`/`References`).
fn find_message_id_token(text: &str, keys: &Keys<'_>) -> Option<i64> {
    let suffix = format!("@{}>", keys.bounces.domain);
    text.match_indices(&suffix).find_map(|(i, _)| {
        // A token is short: look back a bounded distance, so many matches stay linear.
        let mut from = i.saturating_sub(128);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let start = from + text[from..i].rfind('<')?;
        verify(keys.secret, TokenPurpose::Bounce, &text[start + 1..i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_split() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\nbody\nFrom here on, a line\n\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nbody2\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: one"));
        assert!(parts[0].ends_with(b"From here on, a line\n\n"));
        assert!(parts[1].starts_with(b"Subject: two"));
        assert_eq!(split_mbox(b"Subject: x\n\nbody").len(), 1);
    }

    fn settings() -> BounceSettings {
        BounceSettings {
            domain: "bounces.example.com".into(),
            local_part: "bounces".into(),
            unsubscribe_local_part: "unsubscribe".into(),
            soft_bounce_limit: 3,
            soft_bounce_days: 7,
        }
    }

    #[test]
    fn out_of_office_body_never_hides_an_opt_out() {
        let secret = Secret::development();
        let settings = settings();
        let keys = Keys {
            secret: &secret,
            bounces: &settings,
        };
        let away = parse(
            b"From: a@example.fi\r\nSubject: Re: Seminar\r\n\r\nI am out of the office until Monday.\r\n",
            &keys,
        );
        assert_eq!(away.kind, Kind::AutoReply);
        let asks = parse(
            b"From: a@example.fi\r\nSubject: Re: Seminar\r\n\r\nPlease remove me. I am out of the office until Monday.\r\n",
            &keys,
        );
        assert_eq!(asks.kind, Kind::Reply);
        assert_eq!(asks.unsubscribe_word, Some("remove"));
    }

    #[test]
    fn oversized_message_is_cut_not_refused() {
        let secret = Secret::development();
        let settings = settings();
        let keys = Keys {
            secret: &secret,
            bounces: &settings,
        };
        let mut raw = b"From: MAILER-DAEMON@example.net\r\nSubject: failure notice\r\n\r\n<a@example.org>:\r\n550 5.1.1 user unknown\r\n".to_vec();
        raw.resize(MAX_PARSE_BYTES + 1_000, b'x');
        let parsed = parse(&raw, &keys);
        assert_eq!(parsed.kind, Kind::Dsn);
        assert_eq!(
            parsed.recipients[0].address.as_deref(),
            Some("a@example.org")
        );
        // The fingerprint covers every byte, not only the parsed ones.
        let cut = parse(&raw[..MAX_PARSE_BYTES], &keys);
        assert_ne!(parsed.fingerprint, cut.fingerprint);
    }
}
