//! Inbound effects (bounces, complaints, reply opt-outs), applied atomically, and the bounce
//! queue.

use sqlx::Row;

use super::{Store, StoreError};
use crate::audience::EmailAddress;
use crate::suppress::{OptOutSource, SuppressionReason};

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
        let now = crate::now_millis();
        let mut applied = AppliedInbound::default();
        let mut tx = self.begin_write().await?;
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
            let mut action = match b.kind {
                "complaint" => "opt_out",
                _ if b.class == Some("hard") => "suppressed",
                _ if b.class == Some("soft") => "recorded",
                _ => "none",
            };
            if b.class == Some("hard")
                && let Some(hash) = &b.email_hash
            {
                suppress(
                    &mut tx,
                    hash,
                    b.email.as_deref(),
                    SuppressionReason::HardBounce,
                    b.campaign_id,
                    now,
                )
                .await?;
                applied.suppressed_hard += 1;
                if let Some(outbox_id) = b.outbox_id {
                    sqlx::query(
                        "UPDATE outbox SET state = 'failed', last_error = $1, updated_at = $2
                          WHERE id = $3 AND state IN ('sent', 'queued', 'deferred')",
                    )
                    .bind(format!("hard bounce: {}", b.reason))
                    .bind(now)
                    .bind(outbox_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO bounces (fingerprint, received_at, email_hash, email, outbox_id, campaign_id,
                     kind, class, reason, status, reply_code, diagnostic, action_taken)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
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
            .fetch_one(&mut *tx)
            .await?;
            if b.class == Some("soft")
                && let Some(hash) = &b.email_hash
            {
                let (count, first, last): (i64, i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(received_at), MAX(received_at) FROM bounces
                      WHERE email_hash = $1 AND class = 'soft'",
                )
                .bind(hash)
                .fetch_one(&mut *tx)
                .await?;
                let (limit, days) = effects.soft_limit;
                if count >= limit && last - first >= days * 86_400_000 {
                    suppress(
                        &mut tx,
                        hash,
                        b.email.as_deref(),
                        SuppressionReason::SoftBounceLimit,
                        b.campaign_id,
                        now,
                    )
                    .await?;
                    action = "suppressed_soft_limit";
                    applied.suppressed_soft_limit += 1;
                    sqlx::query("UPDATE bounces SET action_taken = $1 WHERE id = $2")
                        .bind(action)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
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
            suppress(
                &mut tx,
                hash,
                email.as_ref().map(EmailAddress::as_str),
                reason,
                *campaign_id,
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
        tx.commit().await?;
        Ok(applied)
    }

    /// The bounce queue, newest first.
    pub async fn bounces(&self, limit: i64) -> Result<Vec<BounceEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.id, b.received_at, b.email, c.name AS campaign, b.kind, b.class, b.reason,
                    b.status, b.reply_code, b.diagnostic, b.action_taken
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
            })
            .collect())
    }
}

async fn suppress(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    hash: &str,
    email: Option<&str>,
    reason: SuppressionReason,
    campaign_id: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO suppressions (email_hash, email, reason, source, campaign_id, created_at)
         VALUES ($1, $2, $3, 'inbound', $4, $5) ON CONFLICT (email_hash) DO NOTHING",
    )
    .bind(hash)
    .bind(email)
    .bind(reason.as_str())
    .bind(campaign_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
