//! Inbound effects (bounces, complaints, reply opt-outs), applied atomically, and the bounce
//! queue.

use sqlx::Row;

use super::suppressions::{self, NewReason};
use super::{Store, StoreError};
use crate::model::EmailAddress;
use crate::model::{OptOutSource, SuppressionReason};

/// A bounce-queue row to record.
#[derive(Debug, Clone)]
pub struct BounceRecord {
    pub email_hash: Option<String>,
    pub email: Option<String>,
    pub outbox_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub kind: &'static str,
    pub class: Option<&'static str>,
    pub reason: &'static str,
    pub status: Option<String>,
    pub reply_code: Option<u16>,
    pub diagnostic: Option<String>,
    /// Why this report could not be tied to a message fairsend sent to this recipient; `None`
    /// when it is proven (VERP token or our Message-ID, and the recipient matches). An
    /// unverified report is recorded for an operator and changes nothing else.
    pub unverified: Option<String>,
}

/// An opt-out an inbound message asks for (complaint, reply, mailto).
#[derive(Debug, Clone)]
pub struct OptOutRecord {
    pub email_hash: String,
    pub email: Option<EmailAddress>,
    pub source: OptOutSource,
    pub campaign_id: Option<i64>,
    pub detail: Option<String>,
}

/// Everything one inbound message changes, applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct InboundEffects {
    pub fingerprint: String,
    pub kind: &'static str,
    pub bounces: Vec<BounceRecord>,
    pub optouts: Vec<OptOutRecord>,
    /// Soft bounces suppress an address once there are `count` of them spanning `days`.
    pub soft_limit: (i64, i64),
    /// (address hash, campaign) of a person who replied: engagement, for the hygiene report.
    pub reply_from: Option<(String, Option<i64>)>,
}

/// What applying the effects did, per bounce row and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedInbound {
    pub duplicate: bool,
    pub suppressed_hard: usize,
    pub suppressed_soft_limit: usize,
    pub optouts: usize,
    /// Reports recorded as unverified (waiting for an operator).
    pub unverified: usize,
}

/// One row of the bounce queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BounceEntry {
    pub id: i64,
    pub at: i64,
    pub recipient: Option<String>,
    pub campaign: Option<String>,
    pub kind: String,
    pub class: Option<String>,
    pub reason: String,
    pub status: Option<String>,
    pub reply_code: Option<i64>,
    pub diagnostic: Option<String>,
    pub action: String,
    /// `proven`, `unverified`, `confirmed` or `dismissed`.
    pub verification: String,
}

/// An operator's decision on an unverified bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceDecision {
    /// The operator checked it: act on it as on a proven one.
    Confirm,
    /// Not ours, or forged: keep it recorded, act on nothing.
    Dismiss,
}

/// What an operator's decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    NoSuchBounce,
    /// The bounce is not waiting for a decision (proven, or already decided).
    NotUnverified,
    Done {
        suppressed: bool,
    },
}

impl Store {
    /// The contact and campaign of an outbox row.
    pub async fn outbox_contact(
        &self,
        outbox_id: i64,
    ) -> Result<Option<(EmailAddress, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT c.email, o.campaign_id FROM outbox o JOIN contacts c ON c.id = o.contact_id
              WHERE o.id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|r| {
            let email: String = r.get("email");
            EmailAddress::parse(&email)
                .ok()
                .map(|e| (e, r.get("campaign_id")))
        }))
    }

    /// Applies one inbound message's effects; a message seen before changes nothing.
    pub async fn apply_inbound(
        &self,
        effects: &InboundEffects,
    ) -> Result<AppliedInbound, StoreError> {
        let mut tx = self.begin_write().await?;
        let applied = Self::apply_effects(&mut tx, effects).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// The writes of [`Store::apply_inbound`], inside the caller's transaction (the IMAP
    /// intake records the mailbox message in the same one).
    pub(super) async fn apply_effects(
        tx: &mut sqlx::AnyConnection,
        effects: &InboundEffects,
    ) -> Result<AppliedInbound, StoreError> {
        let now = crate::now_millis();
        let mut applied = AppliedInbound::default();
        let new = sqlx::query(
            "INSERT INTO inbound_messages (fingerprint, kind, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (fingerprint) DO NOTHING",
        )
        .bind(&effects.fingerprint)
        .bind(effects.kind)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if new == 0 {
            applied.duplicate = true;
            return Ok(applied);
        }
        for b in &effects.bounces {
            if let Some(why) = &b.unverified {
                insert_bounce(tx, effects, b, &format!("unverified: {why}"), now).await?;
                applied.unverified += 1;
                continue;
            }
            let action = match b.kind {
                "complaint" => "opt_out",
                _ if b.class == Some("hard") => "suppressed",
                _ if b.class == Some("soft") => "recorded",
                _ => "none",
            };
            let id = insert_bounce(tx, effects, b, action, now).await?;
            let effect = act_on_bounce(tx, id, b, effects.soft_limit, "inbound", now).await?;
            applied.suppressed_hard += usize::from(effect == BounceEffect::Hard);
            applied.suppressed_soft_limit += usize::from(effect == BounceEffect::SoftLimit);
        }
        for OptOutRecord {
            email_hash: hash,
            email,
            source,
            campaign_id,
            detail,
        } in &effects.optouts
        {
            let done = sqlx::query(
                "INSERT INTO optouts (email_hash, email, source, campaign_id, detail, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_hash) DO NOTHING",
            )
            .bind(hash)
            .bind(email.as_ref().map(EmailAddress::as_str))
            .bind(source.as_str())
            .bind(campaign_id)
            .bind(detail)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            applied.optouts += done.rows_affected() as usize;
            let reason = if *source == OptOutSource::Complaint {
                SuppressionReason::Complaint
            } else {
                SuppressionReason::OptOut
            };
            let evidence = format!("message {}", &effects.fingerprint[..16]);
            suppressions::add_reason(
                tx,
                &NewReason {
                    email_hash: hash,
                    email: email.as_ref().map(EmailAddress::as_str),
                    reason,
                    source: source.as_str(),
                    evidence: Some(&evidence),
                    campaign_id: *campaign_id,
                },
                now,
            )
            .await?;
        }
        if let Some((hash, campaign_id)) = &effects.reply_from {
            sqlx::query("INSERT INTO engagements (email_hash, kind, campaign_id, created_at) VALUES ($1, 'reply', $2, $3)")
                .bind(hash)
                .bind(campaign_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        Ok(applied)
    }

    /// The bounce queue, newest first.
    pub async fn bounces(&self, limit: i64) -> Result<Vec<BounceEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.id, b.received_at, b.email, c.name AS campaign, b.kind, b.class, b.reason,
                    b.status, b.reply_code, b.diagnostic, b.action_taken, b.verification
               FROM bounces b LEFT JOIN campaigns c ON c.id = b.campaign_id
              ORDER BY b.received_at DESC, b.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| BounceEntry {
                id: r.get("id"),
                at: r.get("received_at"),
                recipient: r.get("email"),
                campaign: r.get("campaign"),
                kind: r.get("kind"),
                class: r.get("class"),
                reason: r.get("reason"),
                status: r.get("status"),
                reply_code: r.get("reply_code"),
                diagnostic: r.get("diagnostic"),
                action: r.get("action_taken"),
                verification: r.get("verification"),
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BounceEffect {
    None,
    Hard,
    SoftLimit,
}

async fn insert_bounce(
    conn: &mut sqlx::AnyConnection,
    effects: &InboundEffects,
    b: &BounceRecord,
    action: &str,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO bounces (fingerprint, received_at, email_hash, email, outbox_id, campaign_id,
             kind, class, reason, status, reply_code, diagnostic, action_taken, verification)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(&effects.fingerprint)
    .bind(now)
    .bind(&b.email_hash)
    .bind(&b.email)
    .bind(b.outbox_id)
    .bind(b.campaign_id)
    .bind(b.kind)
    .bind(b.class)
    .bind(b.reason)
    .bind(&b.status)
    .bind(b.reply_code.map(i64::from))
    .bind(&b.diagnostic)
    .bind(action)
    .bind(if b.unverified.is_some() {
        "unverified"
    } else {
        "proven"
    })
    .fetch_one(&mut *conn)
    .await?)
}

/// The effects of a proven (or confirmed) DSN: a hard bounce suppresses the address and fails
/// its outbox row; a soft one suppresses once the address has `soft_limit` proven soft bounces
/// spanning the configured days.
async fn act_on_bounce(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    b: &BounceRecord,
    soft_limit: (i64, i64),
    source: &str,
    now: i64,
) -> Result<BounceEffect, StoreError> {
    let Some(hash) = &b.email_hash else {
        return Ok(BounceEffect::None);
    };
    let evidence = format!("bounce {id}");
    match b.class {
        Some("hard") => {
            suppressions::add_reason(
                conn,
                &NewReason {
                    email_hash: hash,
                    email: b.email.as_deref(),
                    reason: SuppressionReason::HardBounce,
                    source,
                    evidence: Some(&evidence),
                    campaign_id: b.campaign_id,
                },
                now,
            )
            .await?;
            if let Some(outbox_id) = b.outbox_id {
                sqlx::query(
                    "UPDATE outbox SET state = 'failed', last_error = $1, updated_at = $2
                      WHERE id = $3 AND state IN ('sent', 'queued', 'deferred')",
                )
                .bind(format!("hard bounce: {}", b.reason))
                .bind(now)
                .bind(outbox_id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(BounceEffect::Hard)
        }
        Some("soft") => {
            let (count, first, last): (i64, i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(MIN(received_at), 0), COALESCE(MAX(received_at), 0)
                   FROM bounces
                  WHERE email_hash = $1 AND class = 'soft'
                    AND verification IN ('proven', 'confirmed')",
            )
            .bind(hash)
            .fetch_one(&mut *conn)
            .await?;
            let (limit, days) = soft_limit;
            if count < limit || last - first < days * 86_400_000 {
                return Ok(BounceEffect::None);
            }
            suppressions::add_reason(
                conn,
                &NewReason {
                    email_hash: hash,
                    email: b.email.as_deref(),
                    reason: SuppressionReason::SoftBounceLimit,
                    source,
                    evidence: Some(&evidence),
                    campaign_id: b.campaign_id,
                },
                now,
            )
            .await?;
            sqlx::query("UPDATE bounces SET action_taken = 'suppressed_soft_limit' WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok(BounceEffect::SoftLimit)
        }
        _ => Ok(BounceEffect::None),
    }
}

impl Store {
    /// An operator confirms or dismisses an unverified bounce. Confirming acts on it as on a
    /// proven one (a complaint becomes an opt-out); dismissing records the decision only. Both
    /// are audited.
    pub async fn decide_bounce(
        &self,
        id: i64,
        decision: BounceDecision,
        actor: &str,
        soft_limit: (i64, i64),
    ) -> Result<DecisionOutcome, StoreError> {
        let now = crate::now_millis();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT email_hash, email, outbox_id, campaign_id, kind, class, reason, verification
               FROM bounces WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(DecisionOutcome::NoSuchBounce);
        };
        if row.get::<String, _>("verification") != "unverified" {
            return Ok(DecisionOutcome::NotUnverified);
        }
        let (verification, action) = match decision {
            BounceDecision::Confirm => ("confirmed", "confirmed by operator"),
            BounceDecision::Dismiss => ("dismissed", "dismissed by operator"),
        };
        sqlx::query("UPDATE bounces SET verification = $1, action_taken = $2 WHERE id = $3")
            .bind(verification)
            .bind(action)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut suppressed = false;
        if decision == BounceDecision::Confirm {
            let kind: String = row.get("kind");
            let class: Option<String> = row.get("class");
            let record = BounceRecord {
                email_hash: row.get("email_hash"),
                email: row.get("email"),
                outbox_id: row.get("outbox_id"),
                campaign_id: row.get("campaign_id"),
                kind: if kind == "complaint" {
                    "complaint"
                } else {
                    "dsn"
                },
                class: match class.as_deref() {
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
            let source = format!("operator:{actor}");
            if kind == "complaint" {
                if let Some(hash) = &record.email_hash {
                    sqlx::query(
                        "INSERT INTO optouts (email_hash, email, source, campaign_id, detail, created_at)
                         VALUES ($1, $2, 'complaint', $3, $4, $5) ON CONFLICT (email_hash) DO NOTHING",
                    )
                    .bind(hash)
                    .bind(&record.email)
                    .bind(record.campaign_id)
                    .bind(format!("complaint {id} confirmed"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    suppressed = suppressions::add_reason(
                        &mut tx,
                        &NewReason {
                            email_hash: hash,
                            email: record.email.as_deref(),
                            reason: SuppressionReason::Complaint,
                            source: &source,
                            evidence: Some(&format!("bounce {id}")),
                            campaign_id: record.campaign_id,
                        },
                        now,
                    )
                    .await?;
                }
            } else {
                suppressed = act_on_bounce(&mut tx, id, &record, soft_limit, &source, now).await?
                    != BounceEffect::None;
            }
        }
        sqlx::query(
            "INSERT INTO audit_log (created_at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(now)
        .bind(actor)
        .bind(match decision {
            BounceDecision::Confirm => "bounce_confirmed",
            BounceDecision::Dismiss => "bounce_dismissed",
        })
        .bind(format!("bounce {id}"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DecisionOutcome::Done { suppressed })
    }
}
