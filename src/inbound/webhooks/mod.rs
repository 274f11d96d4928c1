//! Provider webhooks: bounce and complaint callbacks from Amazon SES (through SNS), SendGrid,
//! Mailgun and Postmark. Each provider's file verifies a request by that provider's documented
//! signature or secret and turns its events into `Event`s; nothing here writes anything. An
//! event becomes the same `Inbound` an ingested bounce message would, so the proof rule of
//! `ingest` (the event must name a message fairsend sent, by fairsend's signed Message-ID)
//! decides whether it acts.

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod sns;

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::classify::{Evidence, Reason, classify_evidence};
use super::dsn::{DsnRecipient, best_status, reply_code};
use super::{Inbound, Keys, Kind, find_message_id_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ses,
    SendGrid,
    Mailgun,
    Postmark,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ses => "ses",
            Self::SendGrid => "sendgrid",
            Self::Mailgun => "mailgun",
            Self::Postmark => "postmark",
        }
    }
}

/// Why a request was not accepted; the web layer turns the kind into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not a request of the provider's format (400).
    Malformed,
    /// No valid credentials or signature (401).
    Unauthenticated,
    /// Authentic in form but not acceptable: stale, a foreign topic or certificate host (403).
    Forbidden,
    /// The signing certificate could not be fetched: the provider should retry (503).
    Unavailable,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    pub kind: RefusalKind,
    pub reason: String,
}

impl Refused {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::new(RefusalKind::Malformed, reason)
    }
    pub(crate) fn unauthenticated(reason: impl Into<String>) -> Self {
        Self::new(RefusalKind::Unauthenticated, reason)
    }
    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(RefusalKind::Forbidden, reason)
    }
    fn new(kind: RefusalKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

/// One bounce or complaint a provider reports.
#[derive(Debug, Clone)]
pub struct Event {
    /// The provider's id of the event (SNS MessageId, sg_event_id, Mailgun event id, Postmark
    /// ID): remembered, so that the same event counts once.
    pub id: String,
    pub kind: Kind,
    pub recipients: Vec<DsnRecipient>,
    pub feedback_type: Option<String>,
    /// The `Message-ID` header of the message the event is about, as the provider reports it.
    pub message_id: Option<String>,
}

/// What a verified request carries.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// An id of the request itself that must never come twice (Mailgun's token).
    pub request_receipt: Option<String>,
    pub events: Vec<Event>,
    /// An SNS subscription to confirm (already checked against the SNS host rule).
    pub subscribe_url: Option<String>,
}

/// The `Inbound` an event amounts to: fairsend's signed Message-ID, when the event carries it,
/// names the outbox row; the fingerprint is the provider's event id.
pub fn to_inbound(provider: Provider, event: &Event, keys: &Keys<'_>) -> Inbound {
    let digest = Sha256::digest(format!("webhook\0{}\0{}", provider.as_str(), event.id));
    let outbox_row = event.message_id.as_deref().and_then(|id| {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        find_message_id_token(&format!("<{}>", id.to_ascii_lowercase()), keys)
    });
    Inbound {
        kind: event.kind,
        fingerprint: data_encoding::HEXLOWER.encode(&digest),
        message_id: event.message_id.clone(),
        from: None,
        subject: None,
        outbox_row,
        unsubscribe_row: None,
        recipients: event.recipients.clone(),
        unsubscribe_word: None,
        feedback_type: event.feedback_type.clone(),
        returned_message_id: event.message_id.clone(),
        returned_headers: Vec::new(),
    }
}

/// A timestamp (seconds since the epoch) within `window` of now, either way.
pub(crate) fn within_window(timestamp: i64, now: i64, window: Duration) -> Result<(), Refused> {
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    if timestamp.abs_diff(now) > window.unsigned_abs() {
        return Err(Refused::forbidden(format!(
            "the timestamp is {}s away from now, outside the {window}s window (a replay, or a \
             clock that is wrong)",
            now - timestamp
        )));
    }
    Ok(())
}

/// A bounced recipient, classified like a DSN's from its status and diagnostic; the provider's
/// own verdict (`fallback`) counts only when they say nothing.
pub(crate) fn bounced(
    address: Option<&str>,
    status: Option<&str>,
    diagnostic: &str,
    fallback: Reason,
) -> DsnRecipient {
    let reply_status = best_status(diagnostic);
    let evidence = Evidence {
        status_field: status,
        reply_status: reply_status.as_deref(),
        text_status: None,
        reply_code: reply_code(diagnostic),
        diagnostic,
        action: Some("failed"),
    };
    let mut reason = classify_evidence(&evidence);
    if matches!(reason, Reason::Other) {
        reason = fallback;
    }
    DsnRecipient {
        address: address.map(|a| a.trim().to_ascii_lowercase()),
        action: Some("failed".into()),
        status: evidence.status().map(str::to_string),
        reply_code: evidence.reply_code,
        diagnostic: (!diagnostic.is_empty()).then(|| diagnostic.to_string()),
        class: reason.class(),
        reason,
    }
}

/// The recipient of a complaint.
pub(crate) fn complained(address: Option<&str>, feedback_type: Option<&str>) -> DsnRecipient {
    DsnRecipient {
        address: address.map(|a| a.trim().to_ascii_lowercase()),
        action: None,
        status: None,
        reply_code: None,
        diagnostic: feedback_type.map(str::to_string),
        class: None,
        reason: Reason::Other,
    }
}
