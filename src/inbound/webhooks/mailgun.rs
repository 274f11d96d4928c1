//! Mailgun's webhooks: the body carries `signature: {timestamp, token, signature}`, where
//! `signature` is the hex HMAC-SHA256 of timestamp + token under the webhook signing key, and
//! `event-data`. The token is remembered (a request seen once is never accepted again) and the
//! timestamp must be recent. `failed` (permanent or temporary) and `complained` matter here.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{Event, Refused, Verified, bounced, complained, within_window};
use crate::inbound::{BounceClass, Kind, Reason};

#[derive(Clone)]
pub struct MailgunVerifier {
    signing_key: Vec<u8>,
    window: Duration,
}

impl std::fmt::Debug for MailgunVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailgunVerifier")
    }
}

impl MailgunVerifier {
    pub fn new(signing_key: &str, window: Duration) -> Result<Self, String> {
        if signing_key.trim().is_empty() {
            return Err("the Mailgun signing key is empty".into());
        }
        Ok(Self {
            signing_key: signing_key.trim().as_bytes().to_vec(),
            window,
        })
    }

    pub fn verify(&self, body: &[u8], now: i64) -> Result<Verified, Refused> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| Refused::malformed(format!("the body is not JSON: {e}")))?;
        let field = |k: &str| {
            doc.pointer(&format!("/signature/{k}"))
                .and_then(Value::as_str)
        };
        let (Some(timestamp), Some(token), Some(signature)) =
            (field("timestamp"), field("token"), field("signature"))
        else {
            return Err(Refused::unauthenticated("the signature block is missing"));
        };
        let signature = data_encoding::HEXLOWER_PERMISSIVE
            .decode(signature.as_bytes())
            .map_err(|_| Refused::unauthenticated("the signature is not hex"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key)
            .map_err(|_| Refused::unauthenticated("the signing key is unusable"))?;
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&signature)
            .map_err(|_| Refused::unauthenticated("the signature does not verify"))?;
        let when: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Refused::malformed("the timestamp is not a number"))?;
        within_window(when, now, self.window)?;
        Ok(Verified {
            request_receipt: Some(token.to_string()),
            events: doc.get("event-data").and_then(event).into_iter().collect(),
            subscribe_url: None,
        })
    }
}

fn event(e: &Value) -> Option<Event> {
    let text = |p: &str| e.pointer(p).and_then(Value::as_str);
    let id = text("/id")?.to_string();
    let recipient = text("/recipient");
    let (kind, recipient, feedback_type) = match text("/event")? {
        "failed" => {
            let status = text("/delivery-status/enhanced-code");
            let code = e.pointer("/delivery-status/code").and_then(Value::as_u64);
            let diagnostic = [
                code.map(|c| c.to_string()),
                text("/delivery-status/message").map(str::to_string),
                text("/delivery-status/description").map(str::to_string),
            ]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
            let mut r = bounced(recipient, status, &diagnostic, Reason::Other);
            // "temporary" is Mailgun's own verdict that the address may yet work: never hard.
            if text("/severity") == Some("temporary") && r.class == Some(BounceClass::Hard) {
                r.reason = Reason::Expired;
                r.class = Reason::Expired.class();
            }
            (Kind::Dsn, r, None)
        }
        "complained" => (
            Kind::Complaint,
            complained(recipient, Some("abuse")),
            Some("abuse".into()),
        ),
        _ => return None,
    };
    Some(Event {
        id,
        kind,
        recipients: vec![recipient],
        feedback_type,
        message_id: text("/message/headers/message-id").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(key: &str, timestamp: i64, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
        mac.update(format!("{timestamp}{token}").as_bytes());
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    }

    fn failed(severity: &str, code: u64, message: &str) -> Value {
        json!({"id": "e1", "event": "failed", "severity": severity, "recipient": "a@example.fi",
               "delivery-status": {"code": code, "message": message}})
    }

    #[test]
    fn a_temporary_failure_is_never_hard_and_a_permanent_one_is_classified() {
        let hard = event(&failed("permanent", 550, "5.1.1 No Such User Here")).expect("event");
        assert_eq!(hard.recipients[0].reason, Reason::UserUnknown);
        let temporary = event(&failed("temporary", 550, "5.1.1 No Such User Here")).expect("event");
        assert_eq!(temporary.recipients[0].class, Some(BounceClass::Soft));
        assert!(event(&json!({"id": "e2", "event": "opened"})).is_none());
    }

    #[test]
    fn the_signature_covers_timestamp_and_token() {
        let v = MailgunVerifier::new("key-1", Duration::from_secs(900)).expect("verifier");
        let now = 1_700_000_000;
        let body = |sig: &str, token: &str| {
            json!({"signature": {"timestamp": now.to_string(), "token": token, "signature": sig},
                   "event-data": failed("permanent", 550, "5.1.1 unknown")})
            .to_string()
        };
        let good = sign("key-1", now, "tok");
        assert!(v.verify(body(&good, "tok").as_bytes(), now).is_ok());
        let err = v.verify(body(&good, "tok2").as_bytes(), now).map(|_| ());
        assert_eq!(
            err.map_err(|e| e.kind),
            Err(super::super::RefusalKind::Unauthenticated)
        );
        let late = v
            .verify(body(&good, "tok").as_bytes(), now + 901)
            .map(|_| ());
        assert_eq!(
            late.map_err(|e| e.kind),
            Err(super::super::RefusalKind::Forbidden)
        );
    }
}
