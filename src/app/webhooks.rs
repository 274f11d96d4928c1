//! The provider-webhook use case: verify a request first (by the provider's signature or
//! secret), then record its events through the same path as ingested bounce mail. A request
//! that fails verification changes nothing; a replayed request or event changes nothing.

use std::time::Duration;

use crate::config::{BounceSettings, WebhookSettings};
use crate::inbound::Keys;
use crate::inbound::ingest::ingest_parsed;
use crate::inbound::webhooks::mailgun::MailgunVerifier;
use crate::inbound::webhooks::postmark::PostmarkVerifier;
use crate::inbound::webhooks::sendgrid::SendGridVerifier;
use crate::inbound::webhooks::sns::SnsVerifier;
use crate::inbound::webhooks::{Provider, Refused, Verified, to_inbound};
use crate::store::{Store, StoreError};
use crate::suppress::Secret;

/// How long event ids and request tokens are remembered. Signed requests older than the window
/// are refused anyway; Postmark's carry no timestamp, and providers retry for up to three days.
const RECEIPT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The verifiers of the providers that are on.
#[derive(Debug, Default)]
pub struct Webhooks {
    pub ses: Option<SnsVerifier>,
    pub sendgrid: Option<SendGridVerifier>,
    pub mailgun: Option<MailgunVerifier>,
    pub postmark: Option<PostmarkVerifier>,
}

impl Webhooks {
    /// Builds the verifiers from `[webhooks]`, reading each secret from the environment
    /// variable the configuration names (`env` is `std::env::var` outside tests).
    pub fn from_settings(
        settings: &WebhookSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        // `table` and `key` name the setting that names the variable, as the file spells it.
        let secret = |name: &str, table: &str, key: &str| {
            env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                format!("[webhooks.{table}] {key}: the environment variable {name} is not set")
            })
        };
        let window = settings.window;
        Ok(Self {
            ses: settings
                .ses
                .as_ref()
                .map(|s| SnsVerifier::new(s, window))
                .transpose()?,
            sendgrid: match &settings.sendgrid {
                Some(s) => Some(
                    SendGridVerifier::new(
                        &secret(&s.public_key_env, "sendgrid", "public_key_env")?,
                        window,
                    )
                    .map_err(|e| format!("{}: {e}", s.public_key_env))?,
                ),
                None => None,
            },
            mailgun: match &settings.mailgun {
                Some(m) => Some(
                    MailgunVerifier::new(
                        &secret(&m.signing_key_env, "mailgun", "signing_key_env")?,
                        window,
                    )
                    .map_err(|e| format!("{}: {e}", m.signing_key_env))?,
                ),
                None => None,
            },
            postmark: match &settings.postmark {
                Some(p) => Some(
                    PostmarkVerifier::new(
                        &secret(&p.username_env, "postmark", "username_env")?,
                        &secret(&p.password_env, "postmark", "password_env")?,
                    )
                    .map_err(|e| format!("{}/{}: {e}", p.username_env, p.password_env))?,
                ),
                None => None,
            },
        })
    }
}

/// The parts of an HTTP request the verifiers read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HookRequest<'a> {
    pub authorization: Option<&'a str>,
    pub sendgrid_signature: Option<&'a str>,
    pub sendgrid_timestamp: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a verified request did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Received {
    /// The request itself was seen before (Mailgun's token): nothing was done.
    pub replayed_request: bool,
    pub events: usize,
    /// Events seen before, ignored.
    pub duplicate_events: usize,
    pub suppressed: usize,
    pub optouts: usize,
    /// Events recorded as unverified: they name no message fairsend sent.
    pub unverified: usize,
    pub subscription_confirmed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the {0} webhook is not enabled in [webhooks]")]
    Disabled(&'static str),
    #[error("refused: {0}")]
    Refused(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies a provider's request and, only when it verifies, records its events.
pub async fn receive(
    store: &Store,
    secret: &Secret,
    bounces: &BounceSettings,
    hooks: &Webhooks,
    provider: Provider,
    request: HookRequest<'_>,
) -> Result<Received, HookError> {
    let verified = match verify(hooks, provider, request).await {
        Ok(v) => v,
        Err(e) => {
            if let HookError::Refused(r) = &e {
                tracing::warn!(provider = provider.as_str(), reason = %r, "webhook request refused");
            }
            return Err(e);
        }
    };
    record(store, secret, bounces, hooks, provider, verified).await
}

async fn verify(
    hooks: &Webhooks,
    provider: Provider,
    request: HookRequest<'_>,
) -> Result<Verified, HookError> {
    let now = crate::now_millis() / 1000;
    let disabled = || HookError::Disabled(provider.as_str());
    Ok(match provider {
        Provider::Ses => {
            hooks
                .ses
                .as_ref()
                .ok_or_else(disabled)?
                .verify(request.body, now)
                .await?
        }
        Provider::SendGrid => hooks.sendgrid.as_ref().ok_or_else(disabled)?.verify(
            request.sendgrid_signature,
            request.sendgrid_timestamp,
            request.body,
            now,
        )?,
        Provider::Mailgun => hooks
            .mailgun
            .as_ref()
            .ok_or_else(disabled)?
            .verify(request.body, now)?,
        Provider::Postmark => hooks
            .postmark
            .as_ref()
            .ok_or_else(disabled)?
            .verify(request.authorization, request.body)?,
    })
}

async fn record(
    store: &Store,
    secret: &Secret,
    bounces: &BounceSettings,
    hooks: &Webhooks,
    provider: Provider,
    verified: Verified,
) -> Result<Received, HookError> {
    let now = crate::now_millis();
    let forget_before = now - i64::try_from(RECEIPT_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let p = provider.as_str();
    let mut received = Received::default();
    if let Some(token) = &verified.request_receipt {
        let receipt = format!("request:{token}");
        if !store
            .claim_webhook_receipt(p, &receipt, now, forget_before)
            .await?
        {
            tracing::warn!(provider = p, "webhook request replayed: ignored");
            received.replayed_request = true;
            return Ok(received);
        }
    }
    let keys = Keys { secret, bounces };
    for event in &verified.events {
        received.events += 1;
        let receipt = format!("event:{}", event.id);
        if !store
            .claim_webhook_receipt(p, &receipt, now, forget_before)
            .await?
        {
            received.duplicate_events += 1;
            continue;
        }
        let inbound = to_inbound(provider, event, &keys);
        match ingest_parsed(store, secret, bounces, inbound).await {
            Ok(done) => {
                received.suppressed +=
                    done.applied.suppressed_hard + done.applied.suppressed_soft_limit;
                received.optouts += done.applied.optouts;
                received.unverified += done.applied.unverified;
                received.duplicate_events += usize::from(done.applied.duplicate);
            }
            Err(e) => {
                // The provider retries a failed request: its events must then be accepted.
                let _ = store.release_webhook_receipt(p, &receipt).await;
                if let Some(token) = &verified.request_receipt {
                    let _ = store
                        .release_webhook_receipt(p, &format!("request:{token}"))
                        .await;
                }
                return Err(e.into());
            }
        }
    }
    if let (Some(url), Some(ses)) = (&verified.subscribe_url, &hooks.ses) {
        ses.confirm(url).await?;
        received.subscription_confirmed = true;
        tracing::info!("SNS subscription confirmed");
    }
    Ok(received)
}
