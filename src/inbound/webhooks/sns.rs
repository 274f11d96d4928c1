//! Amazon SNS HTTP(S) notifications carrying SES events. A message is accepted only when its
//! signature verifies (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, over the canonical
//! string SNS documents) with the certificate at `SigningCertURL`, which must be an https URL
//! on `sns.<region>.amazonaws.com`, chain to a trusted root and be issued for that host; its
//! topic must be one the operator listed, and its timestamp recent. Certificates are fetched
//! once and kept in memory (the chain is checked at every use, so an expired one stops
//! working). `SubscriptionConfirmation` is confirmed by fetching `SubscribeURL` (same host
//! rule) only when the operator asked for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, ServerName,
    SignatureVerificationAlgorithm, UnixTime, alg_id, pem::PemObject,
};
use serde_json::Value;

use super::{Event, RefusalKind, Refused, Verified, within_window};
use crate::config::{SesHook, WEBHOOK_TEST_ONLY_ENV};
use crate::inbound::{DsnRecipient, Kind, Reason, ses};

/// A signing certificate is small; anything bigger is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CACHED_CERTS: usize = 32;

pub struct SnsVerifier {
    hook: SesHook,
    window: Duration,
    tls: Arc<rustls::ClientConfig>,
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    /// Signing certificates (PEM as fetched) by URL.
    certs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl std::fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnsVerifier")
    }
}

impl SnsVerifier {
    pub fn new(hook: &SesHook, window: Duration) -> Result<Self, String> {
        refuse_test_options_outside_tests(hook)?;
        let mut roots: Vec<CertificateDer<'static>> =
            rustls_native_certs::load_native_certs().certs;
        if let Some(path) = &hook.test_ca_file {
            let bad = |e: &dyn std::fmt::Display| {
                format!("[webhooks.ses] test_ca_file {}: {e}", path.display())
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.push(cert.map_err(|e| bad(&e))?);
            }
        }
        let mut store = rustls::RootCertStore::empty();
        let mut anchors = Vec::new();
        for cert in &roots {
            // A root the store cannot use is skipped, as for SMTP.
            if let Ok(anchor) = webpki::anchor_from_trusted_cert(cert) {
                anchors.push(anchor.to_owned());
            }
            let _ = store.add(cert.clone());
        }
        if anchors.is_empty() {
            return Err("no trusted root certificates found for the SNS certificate check".into());
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
        Ok(Self {
            hook: hook.clone(),
            window,
            tls: Arc::new(tls),
            anchors,
            certs: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies one SNS message and returns what it carries.
    pub async fn verify(&self, body: &[u8], now: i64) -> Result<Verified, Refused> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| Refused::malformed(format!("the body is not JSON: {e}")))?;
        let field = |k: &str| doc.get(k).and_then(Value::as_str);
        let kind = field("Type").ok_or_else(|| Refused::malformed("no Type"))?;
        let topic = field("TopicArn").unwrap_or_default();
        if !self.hook.topic_arns.iter().any(|t| t == topic) {
            return Err(Refused::forbidden(format!(
                "topic {topic:?} is not in [webhooks.ses] topic_arns"
            )));
        }
        let cert_url = field("SigningCertURL").unwrap_or_default();
        let host = sns_host(cert_url)?;
        let canonical = canonical(&doc, kind)?;
        let signature = data_encoding::BASE64
            .decode(field("Signature").unwrap_or_default().as_bytes())
            .map_err(|_| Refused::unauthenticated("the signature is not base64"))?;
        let algorithm: &dyn SignatureVerificationAlgorithm = match field("SignatureVersion") {
            Some("1") => &RSA_SHA1,
            Some("2") => &RSA_SHA256,
            other => {
                return Err(Refused::malformed(format!(
                    "SignatureVersion {other:?} is not 1 or 2"
                )));
            }
        };
        let pem = self.certificate(cert_url, host, now).await?;
        self.with_certificate(&pem, host, now, |cert| {
            cert.verify_signature(algorithm, canonical.as_bytes(), &signature)
                .map_err(|_| Refused::unauthenticated("the signature does not verify"))
        })?;
        let sent = field("Timestamp")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| Refused::malformed("no valid Timestamp"))?;
        within_window(sent.timestamp(), now, self.window)?;
        let id = field("MessageId").unwrap_or_default().to_string();
        match kind {
            "Notification" => Ok(Verified {
                events: notification(&id, field("Message").unwrap_or_default())
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            "SubscriptionConfirmation" => {
                let url = field("SubscribeURL").unwrap_or_default();
                sns_host(url)?;
                Ok(Verified {
                    subscribe_url: self.hook.auto_confirm.then(|| url.to_string()),
                    ..Default::default()
                })
            }
            _ => Ok(Verified::default()),
        }
    }

    /// Confirms a subscription by fetching its (already checked) `SubscribeURL`.
    pub async fn confirm(&self, url: &str) -> Result<(), Refused> {
        let host = sns_host(url)?;
        self.get(host, url).await.map(|_| ())
    }

    /// The certificate at `url`: from the cache, else fetched, and kept only when it chains
    /// to a trusted root for its host (so junk fetched from an SNS host is never kept). The
    /// cache is bounded: SNS uses a handful of certificates.
    async fn certificate(&self, url: &str, host: &str, now: i64) -> Result<Arc<Vec<u8>>, Refused> {
        if let Some(pem) = self.cache().get(url) {
            return Ok(Arc::clone(pem));
        }
        let pem = Arc::new(self.get(host, url).await?);
        self.with_certificate(&pem, host, now, |_| Ok(()))?;
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED_CERTS {
            cache.clear();
        }
        cache.insert(url.to_string(), Arc::clone(&pem));
        Ok(pem)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<u8>>>> {
        self.certs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the leaf certificate of `pem` once it chains to a trusted root at `now`
    /// and is issued for `host`.
    fn with_certificate<T>(
        &self,
        pem: &[u8],
        host: &str,
        now: i64,
        f: impl FnOnce(&webpki::EndEntityCert<'_>) -> Result<T, Refused>,
    ) -> Result<T, Refused> {
        let bad = |what: &str, e: &dyn std::fmt::Debug| {
            Refused::unauthenticated(format!("the signing certificate {what}: {e:?}"))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad("is not PEM", &e))?;
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| Refused::unauthenticated("no certificate at SigningCertURL"))?;
        let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| bad("cannot be read", &e))?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0).unsigned_abs()));
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            intermediates,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| bad("does not chain to a trusted root", &e))?;
        let name = ServerName::try_from(host).map_err(|e| bad("host", &e))?;
        cert.verify_is_valid_for_subject_name(&name)
            .map_err(|e| bad("is not issued for its host", &e))?;
        f(&cert)
    }

    /// An HTTPS GET on an SNS host; `url` has passed `sns_host`.
    async fn get(&self, host: &str, url: &str) -> Result<Vec<u8>, Refused> {
        let path = &url["https://".len() + host.len()..];
        let path = if path.is_empty() { "/" } else { path };
        let fetch = async {
            let stream = match self.hook.test_connect {
                Some(addr) => tokio::net::TcpStream::connect(addr).await,
                None => tokio::net::TcpStream::connect((host, 443)).await,
            }
            .map_err(|e| format!("cannot connect: {e}"))?;
            let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let request = hyper::Request::get(path)
                .header(hyper::header::HOST, host)
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_CERT_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(body.to_bytes().to_vec())
        };
        match tokio::time::timeout(FETCH_TIMEOUT, fetch).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => Err(unavailable(format!("GET https://{host}{path}: {e}"))),
            Err(_) => Err(unavailable(format!("GET https://{host}{path}: timed out"))),
        }
    }
}

/// The test-only options would let a private CA and a fixed address stand in for Amazon's:
/// only a test may set them.
fn refuse_test_options_outside_tests(hook: &SesHook) -> Result<(), String> {
    let test = std::env::var(WEBHOOK_TEST_ONLY_ENV).is_ok_and(|v| v == "1");
    for (name, set) in [
        ("test_ca_file", hook.test_ca_file.is_some()),
        ("test_connect", hook.test_connect.is_some()),
    ] {
        if set && !test {
            return Err(format!(
                "[webhooks.ses] {name} is for fairsend's own tests and is refused unless \
                 {WEBHOOK_TEST_ONLY_ENV}=1"
            ));
        }
    }
    Ok(())
}

fn unavailable(reason: String) -> Refused {
    Refused {
        kind: RefusalKind::Unavailable,
        reason,
    }
}

/// The host of an `https://sns.<region>.amazonaws.com/…` URL; anything else is refused before
/// any connection is made.
pub fn sns_host(url: &str) -> Result<&str, Refused> {
    let refuse = || {
        Refused::forbidden(format!(
            "{url:?} is not an https URL on sns.<region>.amazonaws.com"
        ))
    };
    let rest = url.strip_prefix("https://").ok_or_else(refuse)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .ok_or_else(refuse)?;
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok || !rest[host.len()..].starts_with('/') {
        return Err(refuse());
    }
    Ok(host)
}

/// The string SNS signs: `Key\nValue\n` for each of the type's keys in order; `Subject` only
/// when the message has one.
fn canonical(doc: &Value, kind: &str) -> Result<String, Refused> {
    let keys: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        other => return Err(Refused::malformed(format!("unknown SNS Type {other:?}"))),
    };
    let mut out = String::new();
    for key in keys {
        match doc.get(*key).and_then(Value::as_str) {
            Some(value) => {
                out.push_str(key);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
            None if *key == "Subject" => {}
            None => return Err(Refused::malformed(format!("no {key}"))),
        }
    }
    Ok(out)
}

/// The SES event inside a notification's `Message`.
fn notification(id: &str, message: &str) -> Option<Event> {
    let doc: Value = serde_json::from_str(message).ok()?;
    let message_id = ses::original_message_id(&doc);
    let (kind, recipients, feedback_type) = match ses::from_document(&doc)? {
        ses::Notification::Bounce(r) => (Kind::Dsn, r, None),
        ses::Notification::Complaint {
            recipient,
            feedback_type,
        } => (
            Kind::Complaint,
            vec![DsnRecipient {
                address: recipient,
                action: None,
                status: None,
                reply_code: None,
                diagnostic: feedback_type.clone(),
                class: None,
                reason: Reason::Other,
            }],
            feedback_type,
        ),
        ses::Notification::Delivery(_) => return None,
    };
    Some(Event {
        id: id.to_string(),
        kind,
        recipients,
        feedback_type,
        message_id,
    })
}

/// RSA PKCS#1 v1.5 over the certificate's key: SHA-1 for SignatureVersion 1 (what SNS still
/// uses by default; only for this), SHA-256 for 2.
#[derive(Debug)]
struct RsaPkcs1(&'static aws_lc_rs::signature::RsaParameters);

static RSA_SHA1: RsaPkcs1 =
    RsaPkcs1(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY);
static RSA_SHA256: RsaPkcs1 = RsaPkcs1(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256);

impl SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        aws_lc_rs::signature::UnparsedPublicKey::new(self.0, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_PKCS1_SHA256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_on_an_sns_host_pass() {
        for good in [
            "https://sns.eu-north-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        ] {
            assert!(sns_host(good).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.eu-north-1.amazonaws.com/cert.pem",
            "https://sns.eu-north-1.amazonaws.com.evil.example/cert.pem",
            "https://evil.example/sns.eu-north-1.amazonaws.com/cert.pem",
            "https://sns.eu-north-1.amazonaws.com@evil.example/cert.pem",
            "https://sns.eu-north-1.amazonaws.com:8443/cert.pem",
            "https://sns..amazonaws.com/cert.pem",
            "https://sns.EU.amazonaws.com/cert.pem",
            "https://sns.eu-north-1.amazonaws.com",
            "https://xsns.eu-north-1.amazonaws.com/cert.pem",
        ] {
            assert_eq!(
                sns_host(bad).map_err(|e| e.kind),
                Err(RefusalKind::Forbidden),
                "{bad}"
            );
        }
    }

    #[test]
    fn canonical_string_follows_the_documented_order() {
        let doc = serde_json::json!({
            "Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Message": "m\nn",
            "Timestamp": "t", "Signature": "ignored", "UnsubscribeURL": "ignored"
        });
        assert_eq!(
            canonical(&doc, "Notification").ok(),
            Some(
                "Message\nm\nn\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
                    .into()
            )
        );
        let mut with_subject = doc.clone();
        with_subject["Subject"] = "s".into();
        assert!(
            canonical(&with_subject, "Notification")
                .is_ok_and(|c| c.contains("MessageId\nid\nSubject\ns\nTimestamp"))
        );
        // A confirmation without its Token cannot be verified.
        assert!(canonical(&doc, "SubscriptionConfirmation").is_err());
    }
}
