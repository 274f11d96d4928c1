//! SendGrid's signed Event Webhook: an ECDSA P-256 / SHA-256 signature (base64 DER, header
//! `X-Twilio-Email-Event-Webhook-Signature`) over the timestamp header's value followed by the
//! raw body, checked with the verification key SendGrid shows (base64 of the DER public key).
//! The body is an array of events; `bounce` and `spamreport` matter here, the rest is ignored.

use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use super::{Event, Refused, Verified, bounced, complained, within_window};
use crate::inbound::{Kind, Reason};

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// Checks SendGrid's signatures with one verification key.
#[derive(Clone)]
pub struct SendGridVerifier {
    public_key: Vec<u8>,
    window: Duration,
}

impl std::fmt::Debug for SendGridVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendGridVerifier")
    }
}

impl SendGridVerifier {
    /// `key`: the verification key as SendGrid shows it (base64 of the DER public key), or the
    /// same in PEM.
    pub fn new(key: &str, window: Duration) -> Result<Self, String> {
        let b64: String = key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(str::chars)
            .filter(|c| !c.is_whitespace())
            .collect();
        let public_key = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|_| "the SendGrid verification key is not base64".to_string())?;
        // A P-256 key is 91 bytes as DER SubjectPublicKeyInfo, 65 as a bare point; anything
        // else would refuse every event, so it is refused at start.
        if public_key.len() != 91 && public_key.len() != 65 {
            return Err("the SendGrid verification key is not a P-256 public key".into());
        }
        Ok(Self { public_key, window })
    }

    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, Refused> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(Refused::unauthenticated(
                "the signature or timestamp header is missing",
            ));
        };
        let signature = data_encoding::BASE64
            .decode(signature.trim().as_bytes())
            .map_err(|_| Refused::unauthenticated("the signature is not base64"))?;
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.public_key)
            .verify(&signed, &signature)
            .map_err(|_| Refused::unauthenticated("the signature does not verify"))?;
        let when: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Refused::malformed("the timestamp is not a number"))?;
        within_window(when, now, self.window)?;
        Ok(Verified {
            events: events(body)?,
            ..Default::default()
        })
    }
}

fn events(body: &[u8]) -> Result<Vec<Event>, Refused> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| Refused::malformed(format!("the body is not JSON: {e}")))?;
    let list = doc
        .as_array()
        .ok_or_else(|| Refused::malformed("the body is not an array of events"))?;
    Ok(list.iter().filter_map(event).collect())
}

fn event(e: &Value) -> Option<Event> {
    let text = |k: &str| e.get(k).and_then(Value::as_str);
    let id = text("sg_event_id")?.to_string();
    let email = text("email");
    let (kind, recipient, feedback_type) = match text("event")? {
        "bounce" => {
            let recipient = bounced(
                email,
                text("status"),
                text("reason").unwrap_or_default(),
                Reason::Other,
            );
            (Kind::Dsn, recipient, None)
        }
        "spamreport" => (
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
        message_id: text("smtp-id").map(str::to_string),
    })
}
