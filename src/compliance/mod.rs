//! The rules of DESIGN.md as checks: the pre-flight `check` over config, audience, content and
//! approval ([`check`]); footer variants for review and approval ([`review`]); and the gate
//! every rendered message passes before it may be handed to a transport ([`gate`]). It
//! inspects and reports; it never sends anything.

pub mod check;
pub mod review;

pub use crate::model::{Finding, Severity};
pub use check::{CheckReport, Depth, check_campaign, insecure_link_findings};
pub use review::{FooterVariant, VariantKey, footer_variants};

use crate::compose::ComposedMessage;
use crate::config::Settings;

/// A message that must not be sent, with every reason.
#[derive(Debug, thiserror::Error)]
#[error("message for outbox row {outbox_id} fails the compliance check: {}", problems.join("; "))]
pub struct GateFailure {
    pub outbox_id: i64,
    pub problems: Vec<String>,
}

/// Structural check of one rendered message: the sender identity and the unsubscribe link are
/// in both parts, the one-click headers are present, and the message has exactly one recipient
/// header (`To`) and no `Cc`/`Bcc`.
pub fn gate(message: &ComposedMessage, settings: &Settings) -> Result<(), GateFailure> {
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
    let head_end = find(&message.bytes, b"\r\n\r\n").unwrap_or(message.bytes.len());
    let head = String::from_utf8_lossy(&message.bytes[..head_end]).to_ascii_lowercase();
    let header_count = |name: &str| head.split("\r\n").filter(|l| l.starts_with(name)).count();
    if header_count("to:") != 1 {
        problems.push("the message must have exactly one To header".into());
    }
    if header_count("cc:") + header_count("bcc:") > 0 {
        problems.push("the message must not have Cc or Bcc headers".into());
    }
    if header_count("list-unsubscribe:") != 1 || header_count("list-unsubscribe-post:") != 1 {
        problems.push("List-Unsubscribe and List-Unsubscribe-Post must each appear once".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GateFailure {
            outbox_id: message.outbox_id,
            problems,
        })
    }
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
