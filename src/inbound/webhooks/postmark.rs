//! Postmark's bounce and spam-complaint webhooks, protected by HTTP basic authentication with
//! credentials the operator sets in Postmark's webhook URL (compared in constant time). Postmark
//! signs nothing and sends no timestamp to check; the event `ID` is remembered instead.
//! Postmark reports its own MessageID, not the Message-ID header, so the proof that fairsend
//! sent the message is fairsend's Message-ID in the event's `Metadata` (set with an
//! `X-PM-Metadata-…` header) or in the bounce's `Content`.

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{Event, Refused, Verified, bounced, complained};
use crate::inbound::{Kind, Reason};

#[derive(Clone)]
pub struct PostmarkVerifier {
    expected: Vec<u8>,
}

impl std::fmt::Debug for PostmarkVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostmarkVerifier")
    }
}

impl PostmarkVerifier {
    pub fn new(username: &str, password: &str) -> Result<Self, String> {
        if username.is_empty() || username.contains(':') || password.len() < 16 {
            return Err(
                "the Postmark webhook user must be set (without ':') and its password at \
                        least 16 characters"
                    .into(),
            );
        }
        Ok(Self {
            expected: format!("{username}:{password}").into_bytes(),
        })
    }

    pub fn verify(&self, authorization: Option<&str>, body: &[u8]) -> Result<Verified, Refused> {
        let given = authorization
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| data_encoding::BASE64.decode(b64.trim().as_bytes()).ok())
            .ok_or_else(|| Refused::unauthenticated("no basic-auth credentials"))?;
        // Lengths differ for a wrong guess; ct_eq returns false for them without a timing hint
        // about the content.
        if !bool::from(given.ct_eq(&self.expected)) {
            return Err(Refused::unauthenticated("wrong basic-auth credentials"));
        }
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| Refused::malformed(format!("the body is not JSON: {e}")))?;
        Ok(Verified {
            events: event(&doc).into_iter().collect(),
            ..Default::default()
        })
    }
}

fn event(e: &Value) -> Option<Event> {
    let text = |k: &str| e.get(k).and_then(Value::as_str);
    let id = match e.get("ID")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let email = text("Email");
    let (kind, recipient, feedback_type) = match text("RecordType")? {
        "Bounce" => {
            let fallback = match text("Type") {
                Some("HardBounce" | "BadEmailAddress") => Reason::UserUnknown,
                Some("DnsError") => Reason::Network,
                _ => Reason::Other,
            };
            let diagnostic = text("Details").unwrap_or_default();
            (Kind::Dsn, bounced(email, None, diagnostic, fallback), None)
        }
        "SpamComplaint" => (
            Kind::Complaint,
            complained(email, Some("abuse")),
            Some("abuse".into()),
        ),
        _ => return None,
    };
    Some(Event {
        id,
        kind,
        recipients: vec![recipient],
        feedback_type,
        message_id: our_message_id(e),
    })
}

/// Every Metadata value that looks like a Message-ID (`…@…`) and every `Message-ID:` line of
/// `Content` (the bounce's own comes first, the returned message's after it); the one fairsend
/// signed, if any, is found among them.
fn our_message_id(e: &Value) -> Option<String> {
    let metadata = e
        .get("Metadata")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| v.contains('@'))
        .map(str::to_string);
    let content = e
        .get("Content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_string())
        });
    let all: Vec<String> = metadata.chain(content).take(16).collect();
    (!all.is_empty()).then(|| all.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn postmarks_verdict_counts_only_when_the_details_say_nothing() {
        let bounce = |kind: &str, details: &str| {
            event(
                &json!({"RecordType": "Bounce", "ID": 1, "Type": kind, "Email": "a@example.fi",
                          "Details": details}),
            )
            .expect("event")
            .recipients[0]
                .reason
        };
        assert_eq!(
            bounce("HardBounce", "Test bounce details"),
            Reason::UserUnknown
        );
        assert_eq!(
            bounce("HardBounce", "smtp;552 5.2.2 mailbox full"),
            Reason::MailboxFull
        );
        assert_eq!(bounce("SoftBounce", ""), Reason::Other);
    }

    #[test]
    fn credentials_must_match_exactly() {
        let v = PostmarkVerifier::new("hook", "0123456789abcdef").expect("verifier");
        let auth = |s: &str| format!("Basic {}", data_encoding::BASE64.encode(s.as_bytes()));
        assert!(
            v.verify(Some(&auth("hook:0123456789abcdef")), b"{}")
                .is_ok()
        );
        for wrong in [
            "hook:0123456789abcde",
            "hook:0123456789abcdefg",
            "Hook:0123456789abcdef",
        ] {
            assert!(v.verify(Some(&auth(wrong)), b"{}").is_err(), "{wrong}");
        }
        assert!(v.verify(None, b"{}").is_err());
        assert!(PostmarkVerifier::new("hook", "short").is_err());
    }
}
