//! The compliance gate: the one way a composed message becomes a [`GatedMessage`], the only
//! kind of message `send/` and its transports accept. The gate checks the rendered message
//! itself (sender identity, unsubscribe link and privacy contact in both parts, the one-click
//! headers, exactly one recipient header); it never changes the message and never sends it.
//!
//! A `GatedMessage` cannot be built anywhere else — its fields are private and it has no
//! public constructor, no `Default`, no `Deserialize` — so the compiler, not a convention,
//! guarantees that no unchecked message is sent:
//!
//! ```compile_fail,E0451
//! use fairsend::compliance::GatedMessage;
//! fn forge(composed: fairsend::compose::ComposedMessage) -> GatedMessage {
//!     GatedMessage { message: composed }
//! }
//! ```

use crate::compose::ComposedMessage;
use crate::config::Settings;
use crate::model::EmailAddress;

/// A message that must not be sent, with every reason.
#[derive(Debug, thiserror::Error)]
#[error("message for outbox row {outbox_id} fails the compliance check: {}", problems.join("; "))]
pub struct GateError {
    pub outbox_id: i64,
    pub problems: Vec<String>,
}

/// A composed message that passed [`gate`]: read-only from here on.
#[derive(Debug)]
pub struct GatedMessage {
    message: ComposedMessage,
}

impl GatedMessage {
    pub fn outbox_id(&self) -> i64 {
        self.message.outbox_id
    }

    /// `MAIL FROM`: the VERP address whose token identifies the outbox row.
    pub fn envelope_from(&self) -> &EmailAddress {
        &self.message.envelope_from
    }

    /// The one and only `RCPT TO`.
    pub fn recipient(&self) -> &EmailAddress {
        &self.message.recipient
    }

    pub fn message_id(&self) -> &str {
        &self.message.message_id
    }

    pub fn subject(&self) -> &str {
        &self.message.subject
    }

    pub fn unsubscribe_url(&self) -> &str {
        &self.message.unsubscribe_url
    }

    pub fn text(&self) -> &str {
        &self.message.text
    }

    pub fn html(&self) -> &str {
        &self.message.html
    }

    /// The whole message as it goes on the wire (headers, both parts, DKIM signature).
    pub fn bytes(&self) -> &[u8] {
        &self.message.bytes
    }
}

/// Structural check of one rendered message: the sender identity and the unsubscribe link are
/// in both parts, the one-click headers are present, and the message has exactly one recipient
/// header (`To`) and no `Cc`/`Bcc`. The only constructor of [`GatedMessage`].
pub fn gate(message: ComposedMessage, settings: &Settings) -> Result<GatedMessage, GateError> {
    let mut problems = body_problems(&message, settings);
    problems.extend(header_problems(&message.bytes));
    if problems.is_empty() {
        Ok(GatedMessage { message })
    } else {
        Err(GateError {
            outbox_id: message.outbox_id,
            problems,
        })
    }
}

/// The gate of a message a person asked for (a signup's confirmation request), which is not
/// marketing: it names the sender (917/2014 §203: the sender may not be hidden) in both parts
/// and goes to exactly one recipient, but has no unsubscribe link to check (nothing to
/// unsubscribe from until the person confirms). The only other constructor of
/// [`GatedMessage`].
pub fn gate_confirmation(
    message: ComposedMessage,
    settings: &Settings,
) -> Result<GatedMessage, GateError> {
    let mut problems = identity_problems(&message, settings);
    problems.extend(recipient_problems(&message.bytes));
    if problems.is_empty() {
        Ok(GatedMessage { message })
    } else {
        Err(GateError {
            outbox_id: message.outbox_id,
            problems,
        })
    }
}

fn identity_problems(message: &ComposedMessage, settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    for (part, body) in [
        ("text", message.text.as_str()),
        ("HTML", message.html.as_str()),
    ] {
        for item in [
            settings.sender.legal_name.as_str(),
            settings.sender.business_id.as_str(),
        ] {
            let escaped = if part == "HTML" {
                html_escape(item)
            } else {
                item.to_string()
            };
            if !body.contains(&escaped) {
                problems.push(format!(
                    "the {part} part lacks the sender identity '{item}'"
                ));
            }
        }
    }
    problems
}

/// The unsubscribe link, the sender identity and the privacy contact, in each part.
fn body_problems(message: &ComposedMessage, settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let html_url = message.unsubscribe_url.replace('&', "&amp;");
    let identity = [
        settings.sender.legal_name.as_str(),
        settings.sender.business_id.as_str(),
    ];
    for (part, body, url) in [
        (
            "text",
            message.text.as_str(),
            message.unsubscribe_url.as_str(),
        ),
        ("HTML", message.html.as_str(), html_url.as_str()),
    ] {
        if !body.contains(url) {
            problems.push(format!("the {part} part has no unsubscribe link"));
        }
        for item in identity {
            let escaped = if part == "HTML" {
                html_escape(item)
            } else {
                item.to_string()
            };
            if !body.contains(&escaped) {
                problems.push(format!(
                    "the {part} part lacks the sender identity '{item}'"
                ));
            }
        }
        if !body.contains(settings.sender.privacy_contact.as_str()) {
            problems.push(format!("the {part} part lacks the privacy notice contact"));
        }
    }
    problems
}

/// One `To`, no `Cc`/`Bcc`.
fn recipient_problems(bytes: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if header_count(bytes, "to:") != 1 {
        problems.push("the message must have exactly one To header".into());
    }
    if header_count(bytes, "cc:") + header_count(bytes, "bcc:") > 0 {
        problems.push("the message must not have Cc or Bcc headers".into());
    }
    problems
}

/// How many header lines of the message start with `name` (lower case, with the colon).
fn header_count(bytes: &[u8], name: &str) -> usize {
    let head_end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    head.split("\r\n").filter(|l| l.starts_with(name)).count()
}

/// One `To`, no `Cc`/`Bcc`, and the one-click unsubscribe headers once each.
fn header_problems(bytes: &[u8]) -> Vec<String> {
    let mut problems = recipient_problems(bytes);
    let header_count = |name: &str| header_count(bytes, name);
    if header_count("list-unsubscribe:") != 1 || header_count("list-unsubscribe-post:") != 1 {
        problems.push("List-Unsubscribe and List-Unsubscribe-Post must each appear once".into());
    }
    problems
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
