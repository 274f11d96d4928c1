//! The inbound tables' statements (bounces, complaints, reply opt-outs, engagements) and the
//! bounce queue. What an inbound event suppresses is decided by `suppress::policy`, and the
//! event is applied by `inbound::apply` through one `InboundTx`: this file executes, it
//! decides nothing.

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

/// The proven (or confirmed) soft bounces of one address, the one just recorded included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftBounceHistory {
    pub count: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A bounce-queue row as an operator's decision needs it.
#[derive(Debug, Clone)]
pub struct StoredBounce {
    pub email_hash: Option<String>,
    pub email: Option<String>,
    pub outbox_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub kind: String,
    pub class: Option<String>,
    pub reason: String,
    pub verification: String,
}

/// One write transaction over the inbound tables (inbound messages, bounces, opt-outs,
/// engagements, the outbox row a bounce fails) and the suppression reasons it causes. The
/// caller decides what to write; nothing is visible to others before `commit`, and dropping
/// the handle rolls everything back, so one event stays one atomic change.
pub struct InboundTx {
    pub(super) tx: sqlx::Transaction<'static, sqlx::Any>,
    pub(super) now: i64,
}

impl Store {
    /// Starts the transaction of one inbound event or operator decision.
    pub async fn begin_inbound(&self) -> Result<InboundTx, StoreError> {
        Ok(InboundTx {
            tx: self.begin_write().await?,
            now: crate::now_millis(),
        })
    }
}

impl InboundTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    /// Records the message's fingerprint; false when it was seen before.
    pub async fn first_sighting(
        &mut self,
        fingerprint: &str,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let new = sqlx::query(
            "INSERT INTO inbound_messages (fingerprint, kind, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (fingerprint) DO NOTHING",
        )
        .bind(fingerprint)
        .bind(kind)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(new > 0)
    }

    /// Adds a row to the bounce queue; returns its id.
    pub async fn record_bounce(
        &mut self,
        fingerprint: &str,
        b: &BounceRecord,
        action: &str,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO bounces (fingerprint, received_at, email_hash, email, outbox_id, campaign_id,
                 kind, class, reason, status, reply_code, diagnostic, action_taken, verification)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(fingerprint)
        .bind(self.now)
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
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The soft bounces that count toward the address's limit.
    pub async fn soft_bounce_history(
        &mut self,
        email_hash: &str,
    ) -> Result<SoftBounceHistory, StoreError> {
        let (count, first_ms, last_ms): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MIN(received_at), 0), COALESCE(MAX(received_at), 0)
               FROM bounces
              WHERE email_hash = $1 AND class = 'soft'
                AND verification IN ('proven', 'confirmed')",
        )
        .bind(email_hash)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(SoftBounceHistory {
            count,
            first_ms,
            last_ms,
        })
    }

    /// Proven (or confirmed) hard bounces of the address other than bounce `id`.
    pub async fn other_hard_bounces(
        &mut self,
        email_hash: &str,
        id: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM bounces
              WHERE email_hash = $1 AND class = 'hard' AND id <> $2
                AND verification IN ('proven', 'confirmed')",
        )
        .bind(email_hash)
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Marks a message that hard-bounced as failed (unless it was already resolved otherwise).
    pub async fn fail_outbox_row(&mut self, outbox_id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'failed', last_error = $1, updated_at = $2
              WHERE id = $3 AND state IN ('sent', 'queued', 'deferred')",
        )
        .bind(error)
        .bind(self.now)
        .bind(outbox_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_bounce_action(&mut self, id: i64, action: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE bounces SET action_taken = $1 WHERE id = $2")
            .bind(action)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records an opt-out; false when the address had already opted out (the first is kept).
    pub async fn record_optout(
        &mut self,
        email_hash: &str,
        email: Option<&str>,
        source: OptOutSource,
        campaign_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO optouts (email_hash, email, source, campaign_id, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(email_hash)
        .bind(email)
        .bind(source.as_str())
        .bind(campaign_id)
        .bind(detail)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A reply from the person: engagement, for the hygiene report.
    pub async fn record_reply(
        &mut self,
        email_hash: &str,
        campaign_id: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO engagements (email_hash, kind, campaign_id, created_at) VALUES ($1, 'reply', $2, $3)")
            .bind(email_hash)
            .bind(campaign_id)
            .bind(self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Adds a suppression reason (see `suppressions::add_reason`).
    pub async fn add_reason(&mut self, new: &NewReason<'_>) -> Result<bool, StoreError> {
        suppressions::add_reason(&mut self.tx, new, self.now).await
    }

    /// Lifts a suppression reason (see `suppressions::lift_reason`).
    pub async fn lift_reason(
        &mut self,
        email_hash: &str,
        reason: SuppressionReason,
        actor: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        suppressions::lift_reason(&mut self.tx, email_hash, reason, actor, why, self.now).await
    }

    /// A bounce-queue row, read for an operator's decision.
    pub async fn bounce(&mut self, id: i64) -> Result<Option<StoredBounce>, StoreError> {
        let row = sqlx::query(
            "SELECT email_hash, email, outbox_id, campaign_id, kind, class, reason, verification
               FROM bounces WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|row| StoredBounce {
            email_hash: row.get("email_hash"),
            email: row.get("email"),
            outbox_id: row.get("outbox_id"),
            campaign_id: row.get("campaign_id"),
            kind: row.get("kind"),
            class: row.get("class"),
            reason: row.get("reason"),
            verification: row.get("verification"),
        }))
    }

    pub async fn set_verification(
        &mut self,
        id: i64,
        verification: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE bounces SET verification = $1, action_taken = $2 WHERE id = $3")
            .bind(verification)
            .bind(action)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn set_bounce_class(
        &mut self,
        id: i64,
        class: &str,
        reason: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE bounces SET class = $1, reason = $2, action_taken = $3 WHERE id = $4")
            .bind(class)
            .bind(reason)
            .bind(action)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records an operator's action, in this transaction.
    pub async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        super::ops::write_audit(&mut self.tx, self.now, actor, action, subject, detail).await
    }
}
