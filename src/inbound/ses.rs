//! Amazon SES event notifications delivered by mail: the JSON document SES sends to an email
//! feedback address or through an SNS email subscription (where the JSON is a string inside
//! SNS's own `{"Type":"Notification","Message":…}` envelope). Bounces become classified
//! recipients, complaints a complaint, deliveries success reports.

use mail_parser::Message;
use serde_json::Value;

use super::classify::{Evidence, Reason, classify_evidence};
use super::dsn::{DsnRecipient, best_status, reply_code};

/// What an SES notification says.
#[derive(Debug)]
pub enum Notification {
    Bounce(Vec<DsnRecipient>),
    Complaint {
        recipient: Option<String>,
        feedback_type: Option<String>,
    },
    Delivery(Vec<DsnRecipient>),
}

/// The SES notification in the message's text, if it carries one.
pub fn notification(message: &Message<'_>) -> Option<Notification> {
    let body = message.body_text(0)?;
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    if end < start || !body[start..end].contains("notificationType") {
        return None;
    }
    let mut doc: Value = serde_json::from_str(&body[start..=end]).ok()?;
    // SNS wraps the SES document as a JSON string in `Message`.
    if let Some(inner) = doc.get("Message").and_then(Value::as_str) {
        doc = serde_json::from_str(inner).ok()?;
    }
    from_document(&doc)
}

/// The `Message-ID` header of the message an SES document is about, as fairsend wrote it:
/// `mail.commonHeaders.messageId`, else the `Message-ID` among `mail.headers` (`mail.messageId`
/// is SES's own id, which fairsend never made).
pub fn original_message_id(doc: &Value) -> Option<String> {
    let mail = doc.get("mail")?;
    mail.pointer("/commonHeaders/messageId")
        .and_then(Value::as_str)
        .or_else(|| {
            mail.get("headers")?.as_array()?.iter().find_map(|h| {
                h.get("name")?
                    .as_str()?
                    .eq_ignore_ascii_case("message-id")
                    .then(|| h.get("value")?.as_str())?
            })
        })
        .map(str::to_string)
}

/// What an SES event document (not wrapped) says.
pub fn from_document(doc: &Value) -> Option<Notification> {
    let kind = doc
        .get("notificationType")
        .or_else(|| doc.get("eventType"))?
        .as_str()?;
    match kind {
        "Bounce" => Some(Notification::Bounce(bounce(doc.get("bounce")?))),
        "Complaint" => {
            let c = doc.get("complaint")?;
            Some(Notification::Complaint {
                recipient: c
                    .get("complainedRecipients")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|r| r.get("emailAddress"))
                    .and_then(Value::as_str)
                    .map(clean_address),
                feedback_type: c
                    .get("complaintFeedbackType")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase),
            })
        }
        "Delivery" => {
            let d = doc.get("delivery")?;
            let recipients = d
                .get("recipients")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|a| DsnRecipient {
                    address: Some(clean_address(a)),
                    action: Some("delivered".into()),
                    status: None,
                    reply_code: None,
                    diagnostic: d
                        .get("smtpResponse")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    class: None,
                    reason: Reason::Delivered,
                })
                .collect();
            Some(Notification::Delivery(recipients))
        }
        _ => None,
    }
}

fn clean_address(a: &str) -> String {
    let a = a.trim();
    let a = match (a.rfind('<'), a.rfind('>')) {
        (Some(l), Some(r)) if l < r => &a[l + 1..r],
        _ => a,
    };
    a.to_ascii_lowercase()
}

/// SES's `bounceType`/`bounceSubType` are a second opinion: the recipient's own status and
/// diagnostic decide first, the subtype only when they say nothing.
fn bounce(b: &Value) -> Vec<DsnRecipient> {
    let sub_type = b.get("bounceSubType").and_then(Value::as_str).unwrap_or("");
    let transient = b.get("bounceType").and_then(Value::as_str) == Some("Transient");
    b.get("bouncedRecipients")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(super::dsn::MAX_RECIPIENTS)
        .map(|r| {
            let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            let diagnostic = field("diagnosticCode").unwrap_or_default();
            let status = field("status");
            let reply_status = best_status(&diagnostic);
            let action = field("action");
            let evidence = Evidence {
                status_field: status.as_deref(),
                reply_status: reply_status.as_deref(),
                text_status: None,
                reply_code: reply_code(&diagnostic),
                diagnostic: &diagnostic,
                action: action.as_deref(),
            };
            let mut reason = classify_evidence(&evidence);
            if matches!(reason, Reason::Other) {
                reason = by_sub_type(sub_type, transient);
            }
            DsnRecipient {
                address: field("emailAddress").map(|a| clean_address(&a)),
                action: action.clone(),
                status: evidence.status().map(str::to_string),
                reply_code: evidence.reply_code,
                diagnostic: (!diagnostic.is_empty()).then_some(diagnostic.clone()),
                class: reason.class(),
                reason,
            }
        })
        .collect()
}

/// SES's documented bounce subtypes.
fn by_sub_type(sub_type: &str, transient: bool) -> Reason {
    match sub_type {
        "NoEmail" => Reason::UserUnknown,
        "MailboxFull" => Reason::MailboxFull,
        "MessageTooLarge" => Reason::MessageTooLarge,
        "ContentRejected" | "AttachmentRejected" => Reason::ContentRejected,
        "Suppressed" | "OnAccountSuppressionList" => Reason::Other,
        _ if transient => Reason::Expired,
        _ => Reason::Other,
    }
}
