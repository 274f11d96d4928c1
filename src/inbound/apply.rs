//! Applies what an inbound message or an operator's decision on a bounce changes, one event per
//! transaction: the bounce queue, opt-outs, engagement, the failed outbox row, and the
//! suppression reasons that `suppress::policy` says follow. This file sequences the steps; it
//! holds no rule of its own (those are in `suppress::policy`) and no SQL (that is `store`'s).

use crate::model::{OptOutSource, SuppressionReason};
use crate::store::{
    AppliedInbound, BounceDecision, BounceRecord, DecisionOutcome, InboundEffects, InboundTx,
    MailboxMessage, NewReason, OptOutRecord, Store, StoreError, StoredBounce,
};
use crate::suppress::policy::{self, ReasonChange, SoftBounceLimit};

/// Applies one inbound message's effects; a message seen before changes nothing.
pub async fn apply_inbound(
    store: &Store,
    effects: &InboundEffects,
) -> Result<AppliedInbound, StoreError> {
    let mut tx = store.begin_inbound().await?;
    let applied = apply_in(&mut tx, effects).await?;
    tx.commit().await?;
    Ok(applied)
}

/// [`apply_inbound`] for a message taken from a mailbox: the effects and the record that this
/// mailbox message was handled commit together, so a crash before the message is moved on the
/// server never counts it twice. A message recorded before changes nothing.
pub async fn apply_inbound_from_mailbox(
    store: &Store,
    message: &MailboxMessage<'_>,
    effects: &InboundEffects,
) -> Result<AppliedInbound, StoreError> {
    let mut tx = store.begin_inbound().await?;
    if !tx
        .record_mailbox_message(message, &effects.fingerprint)
        .await?
    {
        return Ok(AppliedInbound {
            duplicate: true,
            ..Default::default()
        });
    }
    let applied = apply_in(&mut tx, effects).await?;
    tx.commit().await?;
    Ok(applied)
}

/// The steps of one inbound message inside the caller's transaction.
async fn apply_in(
    tx: &mut InboundTx,
    effects: &InboundEffects,
) -> Result<AppliedInbound, StoreError> {
    let mut applied = AppliedInbound::default();
    if !tx
        .first_sighting(&effects.fingerprint, effects.kind)
        .await?
    {
        applied.duplicate = true;
        return Ok(applied);
    }
    let limit = SoftBounceLimit::from(effects.soft_limit);
    for b in &effects.bounces {
        record_bounce(tx, effects, b, limit, &mut applied).await?;
    }
    for optout in &effects.optouts {
        let evidence = format!("message {}", &effects.fingerprint[..16]);
        applied.optouts += usize::from(record_optout(tx, optout, &evidence).await?);
    }
    if let Some((hash, campaign_id)) = &effects.reply_from {
        tx.record_reply(hash, *campaign_id).await?;
    }
    Ok(applied)
}

/// Records one reported bounce; an unverified one waits for an operator and changes nothing.
async fn record_bounce(
    tx: &mut InboundTx,
    effects: &InboundEffects,
    b: &BounceRecord,
    limit: SoftBounceLimit,
    applied: &mut AppliedInbound,
) -> Result<(), StoreError> {
    if let Some(why) = &b.unverified {
        tx.record_bounce(&effects.fingerprint, b, &format!("unverified: {why}"))
            .await?;
        applied.unverified += 1;
        return Ok(());
    }
    let action = policy::bounce_action(b.kind, b.class);
    let id = tx.record_bounce(&effects.fingerprint, b, action).await?;
    match act_on_bounce(tx, id, b, limit, "inbound").await? {
        Some(SuppressionReason::HardBounce) => applied.suppressed_hard += 1,
        Some(SuppressionReason::SoftBounceLimit) => applied.suppressed_soft_limit += 1,
        _ => {}
    }
    Ok(())
}

/// Records an opt-out and adds the reason it suppresses for. True when the opt-out is new.
async fn record_optout(
    tx: &mut InboundTx,
    optout: &OptOutRecord,
    evidence: &str,
) -> Result<bool, StoreError> {
    let email = optout.email.as_ref().map(|e| e.as_str());
    let new = tx
        .record_optout(
            &optout.email_hash,
            email,
            optout.source,
            optout.campaign_id,
            optout.detail.as_deref(),
        )
        .await?;
    tx.add_reason(&NewReason {
        email_hash: &optout.email_hash,
        email,
        reason: policy::reason_for_optout(optout.source),
        source: optout.source.as_str(),
        evidence: Some(evidence),
        campaign_id: optout.campaign_id,
    })
    .await?;
    Ok(new)
}

/// The effects of a proven (or confirmed) DSN, as the policy decides them: the reason the
/// address is now suppressed for, if any. A hard bounce also fails its outbox row; reaching the
/// soft-bounce limit is noted on the bounce.
async fn act_on_bounce(
    tx: &mut InboundTx,
    id: i64,
    b: &BounceRecord,
    limit: SoftBounceLimit,
    source: &str,
) -> Result<Option<SuppressionReason>, StoreError> {
    let Some(hash) = &b.email_hash else {
        return Ok(None);
    };
    let history = tx.soft_bounce_history(hash).await?;
    let Some(reason) = policy::reason_for_bounce(b.class, history, limit) else {
        return Ok(None);
    };
    tx.add_reason(&NewReason {
        email_hash: hash,
        email: b.email.as_deref(),
        reason,
        source,
        evidence: Some(&format!("bounce {id}")),
        campaign_id: b.campaign_id,
    })
    .await?;
    match (reason, b.outbox_id) {
        (SuppressionReason::HardBounce, Some(outbox_id)) => {
            let error = format!("hard bounce: {}", b.reason);
            tx.fail_outbox_row(outbox_id, &error).await?;
        }
        (SuppressionReason::SoftBounceLimit, _) => {
            tx.set_bounce_action(id, "suppressed_soft_limit").await?;
        }
        _ => {}
    }
    Ok(Some(reason))
}

/// An operator confirms or dismisses an unverified bounce. Confirming acts on it as on a
/// proven one (a complaint becomes an opt-out); dismissing records the decision only. Both
/// are audited.
pub async fn decide_bounce(
    store: &Store,
    id: i64,
    decision: BounceDecision,
    actor: &str,
    soft_limit: (i64, i64),
) -> Result<DecisionOutcome, StoreError> {
    let mut tx = store.begin_inbound().await?;
    let Some(row) = tx.bounce(id).await? else {
        return Ok(DecisionOutcome::NoSuchBounce);
    };
    if row.verification != "unverified" {
        return Ok(DecisionOutcome::NotUnverified);
    }
    let (verification, action, audited) = match decision {
        BounceDecision::Confirm => ("confirmed", "confirmed by operator", "bounce_confirmed"),
        BounceDecision::Dismiss => ("dismissed", "dismissed by operator", "bounce_dismissed"),
    };
    tx.set_verification(id, verification, action).await?;
    let suppressed = match decision {
        BounceDecision::Confirm => confirm(&mut tx, id, &row, actor, soft_limit.into()).await?,
        BounceDecision::Dismiss => false,
    };
    tx.audit(actor, audited, &format!("bounce {id}"), None)
        .await?;
    tx.commit().await?;
    Ok(DecisionOutcome::Done { suppressed })
}

/// Acts on a confirmed bounce as on a proven one. True when it suppressed the address.
async fn confirm(
    tx: &mut InboundTx,
    id: i64,
    row: &StoredBounce,
    actor: &str,
    limit: SoftBounceLimit,
) -> Result<bool, StoreError> {
    let source = format!("operator:{actor}");
    if row.kind == "complaint" {
        return confirm_complaint(tx, id, row, &source).await;
    }
    let record = BounceRecord {
        email_hash: row.email_hash.clone(),
        email: row.email.clone(),
        outbox_id: row.outbox_id,
        campaign_id: row.campaign_id,
        kind: "dsn",
        class: match row.class.as_deref() {
            Some("hard") => Some("hard"),
            Some("soft") => Some("soft"),
            _ => None,
        },
        reason: "confirmed",
        status: None,
        reply_code: None,
        diagnostic: None,
        unverified: None,
    };
    Ok(act_on_bounce(tx, id, &record, limit, &source)
        .await?
        .is_some())
}

/// A confirmed complaint is an opt-out.
async fn confirm_complaint(
    tx: &mut InboundTx,
    id: i64,
    row: &StoredBounce,
    source: &str,
) -> Result<bool, StoreError> {
    let Some(hash) = &row.email_hash else {
        return Ok(false);
    };
    let detail = format!("complaint {id} confirmed");
    tx.record_optout(
        hash,
        row.email.as_deref(),
        OptOutSource::Complaint,
        row.campaign_id,
        Some(&detail),
    )
    .await?;
    tx.add_reason(&NewReason {
        email_hash: hash,
        email: row.email.as_deref(),
        reason: policy::reason_for_optout(OptOutSource::Complaint),
        source,
        evidence: Some(&format!("bounce {id}")),
        campaign_id: row.campaign_id,
    })
    .await
}

/// Re-classifies a bounce (an operator undoing a wrong classification); what that lifts or
/// adds is `policy::reclassify`'s. Audited. Returns false if there is no such bounce.
pub async fn reclassify_bounce(
    store: &Store,
    id: i64,
    class: &str,
    reason: &str,
    actor: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_inbound().await?;
    let Some(row) = tx.bounce(id).await? else {
        return Ok(false);
    };
    let proven = policy::verification_acts(&row.verification);
    let other_hard = match &row.email_hash {
        Some(hash) if proven => tx.other_hard_bounces(hash, id).await?,
        _ => 0,
    };
    let decided = policy::reclassify(row.class.as_deref(), class, proven, other_hard);
    tx.set_bounce_class(id, class, reason, decided.action)
        .await?;
    if let Some(hash) = &row.email_hash {
        change_reason(&mut tx, id, &row, hash, class, decided.change, actor).await?;
    }
    let old_class = row.class.as_deref().unwrap_or("-");
    let detail = format!("{old_class} {} → {class} {reason}", row.reason);
    tx.audit(
        actor,
        "reclassify_bounce",
        &format!("bounce {id}"),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Executes the reason change a re-classification decided.
async fn change_reason(
    tx: &mut InboundTx,
    id: i64,
    row: &StoredBounce,
    hash: &str,
    class: &str,
    change: ReasonChange,
    actor: &str,
) -> Result<(), StoreError> {
    let operator = format!("operator:{actor}");
    let why = format!("bounce {id} re-classified {class}");
    match change {
        ReasonChange::Keep => {}
        ReasonChange::Lift(reason) => {
            tx.lift_reason(hash, reason, &operator, &why).await?;
        }
        ReasonChange::Add(reason) => {
            tx.add_reason(&NewReason {
                email_hash: hash,
                email: row.email.as_deref(),
                reason,
                source: &operator,
                evidence: Some(&why),
                campaign_id: row.campaign_id,
            })
            .await?;
        }
    }
    Ok(())
}
