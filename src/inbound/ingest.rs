//! Turns a parsed inbound message into its effects: hard bounce → suppressed at once and the
//! outbox row marked; soft bounce → recorded (suppressed after the configured number over the
//! configured span); complaint → opt-out; auto-reply → recorded only; a reply asking to be
//! removed, or mail to the tokenized `mailto:` address → opt-out. `apply` applies them in one
//! transaction, and a message ingested twice counts once.

use super::{Inbound, Keys, Kind, parse};
use crate::config::BounceSettings;
use crate::model::{EmailAddress, OptOutSource};
use crate::store::{
    AppliedInbound, BounceRecord, InboundEffects, MailboxMessage, OptOutRecord, Store, StoreError,
};
use crate::suppress::{Secret, address_hash};

/// What ingesting one message found and did.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub parsed: Inbound,
    pub applied: AppliedInbound,
}

pub async fn ingest(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    raw: &[u8],
) -> Result<Ingested, StoreError> {
    let (parsed, effects) = decide(store, secret, settings, raw).await?;
    let applied = super::apply::apply_inbound(store, &effects).await?;
    Ok(Ingested { parsed, applied })
}

/// [`ingest`] for a message taken from a mailbox: the same effects, committed together with the
/// record that this mailbox message was handled, so it is never counted twice.
pub async fn ingest_from_mailbox(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    raw: &[u8],
    message: &MailboxMessage<'_>,
) -> Result<Ingested, StoreError> {
    let (parsed, effects) = decide(store, secret, settings, raw).await?;
    let applied = super::apply::apply_inbound_from_mailbox(store, message, &effects).await?;
    Ok(Ingested { parsed, applied })
}

async fn decide(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    raw: &[u8],
) -> Result<(Inbound, InboundEffects), StoreError> {
    let parsed = parse(
        raw,
        &Keys {
            secret,
            bounces: settings,
        },
    );
    let effects = effects(store, secret, settings, &parsed).await?;
    Ok((parsed, effects))
}

/// Records an already parsed report (a provider webhook's event) exactly as an ingested
/// message's: the same proof rule, the same effects, the same once-only fingerprint.
pub async fn ingest_parsed(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    parsed: Inbound,
) -> Result<Ingested, StoreError> {
    let effects = effects(store, secret, settings, &parsed).await?;
    let applied = super::apply::apply_inbound(store, &effects).await?;
    Ok(Ingested { parsed, applied })
}

async fn effects(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    parsed: &Inbound,
) -> Result<InboundEffects, StoreError> {
    let mut effects = InboundEffects {
        fingerprint: parsed.fingerprint.clone(),
        kind: parsed.kind.as_str(),
        soft_limit: (
            i64::from(settings.soft_bounce_limit),
            i64::from(settings.soft_bounce_days),
        ),
        ..Default::default()
    };
    // The VERP token (or our Message-ID) names the outbox row: the most reliable recipient.
    let row = match parsed.outbox_row {
        Some(id) => store
            .outbox_contact(id)
            .await?
            .map(|(email, campaign)| (id, email, campaign)),
        None => None,
    };
    let hash = |a: &EmailAddress| address_hash(secret, a);

    // Mail to the tokenized mailto: address is an opt-out, whatever it says.
    if let Some(unsubscribe_row) = parsed.unsubscribe_row
        && parsed.kind != Kind::Dsn
        && let Some((email, campaign)) = store.outbox_contact(unsubscribe_row).await?
    {
        effects.optouts.push(OptOutRecord {
            email_hash: hash(&email),
            email: Some(email),
            source: OptOutSource::Mailto,
            campaign_id: Some(campaign),
            detail: None,
        });
        return Ok(effects);
    }

    match parsed.kind {
        Kind::Dsn | Kind::Complaint | Kind::AutoReply => {
            report_effects(parsed, row.as_ref(), &hash, &mut effects)
        }
        Kind::Reply => reply_effects(parsed, row.as_ref(), &hash, &mut effects),
        Kind::Unknown => {}
    }
    Ok(effects)
}

/// A DSN, complaint or automatic reply: one bounce-queue row per reported recipient, and an
/// opt-out for a proven complaint.
fn report_effects(
    parsed: &Inbound,
    row: Option<&(i64, EmailAddress, i64)>,
    hash: &impl Fn(&EmailAddress) -> String,
    effects: &mut InboundEffects,
) {
    let count = parsed.recipients.len();
    for r in &parsed.recipients {
        let parsed_address = r
            .address
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok());
        let (address, outbox_id, campaign_id, unverified) = prove(row, parsed_address, count);
        // An automatic reply changes nothing, so it needs no proof.
        let unverified = unverified.filter(|_| parsed.kind != Kind::AutoReply);
        if parsed.kind == Kind::Complaint
            && unverified.is_none()
            && let Some(a) = &address
        {
            effects.optouts.push(OptOutRecord {
                email_hash: hash(a),
                email: Some(a.clone()),
                source: OptOutSource::Complaint,
                campaign_id,
                detail: parsed.feedback_type.clone(),
            });
        }
        effects.bounces.push(BounceRecord {
            email_hash: address.as_ref().map(hash),
            email: address.as_ref().map(|a| a.to_string()),
            outbox_id,
            campaign_id,
            kind: match parsed.kind {
                Kind::Complaint => "complaint",
                Kind::AutoReply => "auto_reply",
                _ => "dsn",
            },
            class: if parsed.kind == Kind::Dsn {
                r.class.map(|c| c.as_str())
            } else {
                None
            },
            reason: match parsed.kind {
                Kind::Complaint => "complaint",
                Kind::AutoReply => "auto_reply",
                _ => r.reason.as_str(),
            },
            status: r.status.clone(),
            reply_code: r.reply_code,
            diagnostic: r.diagnostic.clone(),
            unverified,
        });
    }
}

/// A human reply: engagement, and an opt-out when it asks to be removed.
fn reply_effects(
    parsed: &Inbound,
    row: Option<&(i64, EmailAddress, i64)>,
    hash: &impl Fn(&EmailAddress) -> String,
    effects: &mut InboundEffects,
) {
    let sender = || {
        parsed
            .from
            .as_deref()
            .and_then(|f| EmailAddress::parse(f).ok())
    };
    if let Some((_, email, campaign)) = row {
        effects.reply_from = Some((hash(email), Some(*campaign)));
    } else if let Some(from) = sender() {
        effects.reply_from = Some((hash(&from), None));
    }
    let Some(word) = parsed.unsubscribe_word else {
        return;
    };
    // The person the reply is about: our message it answers, else its sender.
    let target = match row {
        Some((_, email, campaign)) => Some((email.clone(), Some(*campaign))),
        None => sender().map(|a| (a, None)),
    };
    if let Some((email, campaign)) = target {
        effects.optouts.push(OptOutRecord {
            email_hash: hash(&email),
            email: Some(email),
            source: OptOutSource::Reply,
            campaign_id: campaign,
            detail: Some(format!("replied \"{word}\"")),
        });
    }
}

/// A report about one message names one recipient; more than this many in one report is not
/// what fairsend's one-recipient transactions produce.
const MAX_PROVEN_RECIPIENTS: usize = 5;

/// Ties a report's recipient to a message fairsend sent, or says why it cannot. Proof is the
/// outbox row named by a signed VERP token or our signed Message-ID — which only fairsend can
/// make — and, when the report names several recipients, the same address as that row's. Anything
/// else (no token, another address, a long list of addresses) is unverified: anyone can send
/// mail to the bounce address, and an unproven "bounce" must not suppress anyone.
fn prove(
    row: Option<&(i64, EmailAddress, i64)>,
    reported: Option<EmailAddress>,
    recipients: usize,
) -> (
    Option<EmailAddress>,
    Option<i64>,
    Option<i64>,
    Option<String>,
) {
    if recipients > MAX_PROVEN_RECIPIENTS {
        return (
            reported,
            None,
            None,
            Some(format!(
                "the report lists {recipients} recipients; fairsend sends each message to one"
            )),
        );
    }
    match (row, reported) {
        // One recipient: the report is about the message the token names, whatever address
        // the remote MTA reports (it may be a forwarding target); acting on it can only
        // suppress the address fairsend itself sent that message to.
        (Some((id, email, campaign)), _) if recipients == 1 => {
            (Some(email.clone()), Some(*id), Some(*campaign), None)
        }
        (Some((id, email, campaign)), Some(a)) if &a == email => {
            (Some(a), Some(*id), Some(*campaign), None)
        }
        (Some(_), a) => (
            a,
            None,
            None,
            Some("the recipient is not the one the message was sent to".to_string()),
        ),
        (None, a) => (
            a,
            None,
            None,
            Some("no VERP token or Message-ID of a message fairsend sent".to_string()),
        ),
    }
}
