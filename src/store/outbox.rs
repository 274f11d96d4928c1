//! The outbox: one row per (campaign, contact) and its state machine
//! `queued → sending → sent | deferred | failed | suppressed`.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::audience::{ContactRecord, ContactStatus, EmailAddress, Recipient};
use crate::config::{LegalBasis, Locale};
use crate::suppress::SuppressionReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
    Suppressed,
}

impl OutboxState {
    pub const ALL: [OutboxState; 6] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Deferred,
        Self::Failed,
        Self::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A recipient as read immediately before its SMTP transaction, with everything that may
/// forbid the transaction.
#[derive(Debug, Clone)]
pub struct RecipientGate {
    pub recipient: Recipient,
    pub status: ContactStatus,
    pub suppressed: Option<SuppressionReason>,
}

/// Per-state counts of one campaign's outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignCounts {
    pub campaign: String,
    pub states: BTreeMap<&'static str, i64>,
}

impl CampaignCounts {
    pub fn count(&self, state: OutboxState) -> i64 {
        self.states.get(state.as_str()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> i64 {
        self.states.values().sum()
    }
}

impl Store {
    /// Adds an outbox row for every contact of `registers` that has none yet in this campaign;
    /// the first register listed wins for a contact in several. Returns the rows added.
    pub async fn materialise_outbox(
        &self,
        campaign_id: i64,
        registers: &[String],
    ) -> Result<u64, StoreError> {
        let now = crate::now_millis();
        let mut added = 0;
        let mut tx = self.pool().begin().await?;
        for register in registers {
            let done = sqlx::query(
                "INSERT INTO outbox (campaign_id, contact_id, register, state, updated_at)
                 SELECT ?, m.contact_id, m.register, 'queued', ? FROM memberships m
                  WHERE m.register = ?
                  ORDER BY m.contact_id
                 ON CONFLICT (campaign_id, contact_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(now)
            .bind(register)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Rows left in `sending` (by a run that was killed).
    pub async fn rows_in_sending(&self, campaign_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM outbox WHERE campaign_id = ? AND state = 'sending' ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` rows that are due now, oldest first.
    /// `phase`: only rows of that A/B phase (the test phase is sent before the rest).
    pub async fn due_rows(
        &self,
        campaign_id: i64,
        now: i64,
        limit: i64,
        phase: Option<crate::abtest::Phase>,
    ) -> Result<Vec<i64>, StoreError> {
        let phase = phase.map(|p| p.as_str());
        Ok(sqlx::query_scalar(
            "SELECT id FROM outbox
              WHERE campaign_id = ? AND state IN ('queued', 'deferred') AND next_attempt_at <= ?
                AND (? IS NULL OR phase = ?)
              ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(campaign_id)
        .bind(now)
        .bind(phase)
        .bind(phase)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// When the earliest waiting row (of `phase`, if given) comes due.
    pub async fn next_retry_at(
        &self,
        campaign_id: i64,
        phase: Option<crate::abtest::Phase>,
    ) -> Result<Option<i64>, StoreError> {
        let phase = phase.map(|p| p.as_str());
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox
              WHERE campaign_id = ? AND state IN ('queued', 'deferred') AND (? IS NULL OR phase = ?)",
        )
        .bind(campaign_id)
        .bind(phase)
        .bind(phase)
        .fetch_one(self.pool())
        .await?)
    }

    /// Moves a due row to `sending`, committed before any byte goes to the mail server, so a
    /// crash can never lead to a blind resend. Returns false if another run took it.
    pub async fn claim(&self, outbox_id: i64, holder: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'sending', claimed_by = ?, attempts = attempts + 1,
                    updated_at = ?
              WHERE id = ? AND state IN ('queued', 'deferred')",
        )
        .bind(holder)
        .bind(crate::now_millis())
        .bind(outbox_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The recipient of a row with its status and suppression, read fresh.
    pub async fn recipient(&self, outbox_id: i64) -> Result<Option<RecipientGate>, StoreError> {
        let row = sqlx::query(
            "SELECT o.id, o.register, o.variant, c.email, c.status, m.first_name, m.last_name, m.company,
                    m.business_id, m.title, m.locale, m.legal_basis, m.consent_at, m.fields,
                    m.source, s.reason
               FROM outbox o
               JOIN contacts c ON c.id = o.contact_id
               JOIN memberships m ON m.contact_id = o.contact_id AND m.register = o.register
               LEFT JOIN suppressions s ON s.email_hash = c.email_hash
              WHERE o.id = ?",
        )
        .bind(outbox_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        gate_from_row(&row, outbox_id).map(Some)
    }

    pub async fn mark_sent(
        &self,
        outbox_id: i64,
        smtp_reply: &str,
        message_id: &str,
        latency_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = crate::now_millis();
        sqlx::query(
            "UPDATE outbox SET state = 'sent', smtp_reply = ?, message_id = ?, last_error = NULL,
                    latency_ms = ?, sent_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(smtp_reply)
        .bind(message_id)
        .bind(latency_ms)
        .bind(now)
        .bind(now)
        .bind(outbox_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends a transaction without delivery: `deferred` (retry at `retry_at`) or a final state.
    pub async fn mark_unsent(
        &self,
        outbox_id: i64,
        state: OutboxState,
        retry_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        debug_assert!(matches!(
            state,
            OutboxState::Deferred
                | OutboxState::Failed
                | OutboxState::Suppressed
                | OutboxState::Queued
        ));
        sqlx::query(
            "UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?, updated_at = ?
              WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(retry_at)
        .bind(error)
        .bind(crate::now_millis())
        .bind(outbox_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the campaign's send lock for `holder` (`host:pid`). A lock held by a process that
    /// `holder_is_dead` says is gone is taken over. Returns the current holder on refusal.
    pub async fn acquire_send_lock(
        &self,
        campaign_id: i64,
        holder: &str,
        holder_is_dead: impl Fn(&str) -> bool,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT holder FROM send_locks WHERE campaign_id = ?")
                .bind(campaign_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(current) = current
            && current != holder
            && !holder_is_dead(&current)
        {
            return Ok(Err(current));
        }
        sqlx::query(
            "INSERT INTO send_locks (campaign_id, holder, acquired_at) VALUES (?, ?, ?)
             ON CONFLICT (campaign_id) DO UPDATE SET holder = excluded.holder,
                 acquired_at = excluded.acquired_at",
        )
        .bind(campaign_id)
        .bind(holder)
        .bind(crate::now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn release_send_lock(
        &self,
        campaign_id: i64,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM send_locks WHERE campaign_id = ? AND holder = ?")
            .bind(campaign_id)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Per-state counts for one campaign, or for every campaign.
    pub async fn campaign_counts(
        &self,
        campaign: Option<&str>,
    ) -> Result<Vec<CampaignCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.name, o.state, COUNT(o.id) AS n
               FROM campaigns c LEFT JOIN outbox o ON o.campaign_id = c.id
              WHERE ? IS NULL OR c.name = ?
              GROUP BY c.name, o.state ORDER BY c.name",
        )
        .bind(campaign)
        .bind(campaign)
        .fetch_all(self.pool())
        .await?;
        let mut result: Vec<CampaignCounts> = Vec::new();
        for row in rows {
            let name: String = row.get("name");
            if result.last().is_none_or(|c| c.campaign != name) {
                result.push(CampaignCounts {
                    campaign: name.clone(),
                    states: OutboxState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
                });
            }
            let state: Option<String> = row.get("state");
            if let Some(state) = state.as_deref().and_then(OutboxState::parse)
                && let Some(entry) = result.last_mut()
            {
                entry.states.insert(state.as_str(), row.get("n"));
            }
        }
        Ok(result)
    }
}

impl Store {
    /// How many delivery attempts a row has had (counted when it is claimed).
    pub async fn attempts(&self, outbox_id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = ?")
                .bind(outbox_id)
                .fetch_one(self.pool())
                .await?,
        )
    }
}

/// Builds a [`RecipientGate`] from a row of contacts ⋈ memberships ⋈ suppressions.
fn gate_from_row(
    row: &sqlx::sqlite::SqliteRow,
    outbox_id: i64,
) -> Result<RecipientGate, StoreError> {
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        table: "contacts/memberships",
        column,
        id: outbox_id,
        value,
    };
    let email: String = row.get("email");
    let email = EmailAddress::parse(&email).map_err(|_| corrupt("email", email.clone()))?;
    let status: String = row.get("status");
    let status = ContactStatus::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?;
    let locale: Option<String> = row.get("locale");
    let locale = match locale {
        None => None,
        Some(l) => Some(Locale::parse(&l).ok_or_else(|| corrupt("locale", l.clone()))?),
    };
    let basis: String = row.get("legal_basis");
    let legal_basis =
        LegalBasis::parse(&basis).ok_or_else(|| corrupt("legal_basis", basis.clone()))?;
    let fields: String = row.get("fields");
    let fields: BTreeMap<String, String> =
        serde_json::from_str(&fields).map_err(|_| corrupt("fields", fields.clone()))?;
    let suppressed: Option<String> = row.get("reason");
    let suppressed = match suppressed {
        None => None,
        Some(r) => Some(SuppressionReason::parse(&r).ok_or_else(|| corrupt("reason", r.clone()))?),
    };
    Ok(RecipientGate {
        recipient: Recipient {
            outbox_id,
            variant: row.get::<Option<i64>, _>("variant").unwrap_or(0).max(0) as usize,
            register: row.get("register"),
            contact: ContactRecord {
                email,
                first_name: row.get("first_name"),
                last_name: row.get("last_name"),
                company: row.get("company"),
                business_id: row.get("business_id"),
                title: row.get("title"),
                locale,
                legal_basis,
                consent_at: row.get("consent_at"),
                fields,
                source: row.get("source"),
            },
        },
        status,
        suppressed,
    })
}

impl Store {
    /// Every contact `registers` select, each once, through the first register listed that
    /// holds it, with status and suppression: the audience `check` and `review` examine.
    /// Outbox ids are 0: these are not queued rows.
    pub async fn campaign_audience(
        &self,
        registers: &[String],
    ) -> Result<Vec<RecipientGate>, StoreError> {
        use futures_util::TryStreamExt;
        let mut seen = std::collections::HashSet::new();
        let mut audience = Vec::new();
        for register in registers {
            let mut rows = sqlx::query(
                "SELECT c.id AS contact_id, m.register, NULL AS variant, c.email, c.status, m.first_name,
                        m.last_name, m.company, m.business_id, m.title, m.locale, m.legal_basis,
                        m.consent_at, m.fields, m.source, s.reason
                   FROM memberships m
                   JOIN contacts c ON c.id = m.contact_id
                   LEFT JOIN suppressions s ON s.email_hash = c.email_hash
                  WHERE m.register = ? ORDER BY c.id",
            )
            .bind(register)
            .fetch(self.pool());
            while let Some(row) = rows.try_next().await? {
                let contact_id: i64 = row.get("contact_id");
                if seen.insert(contact_id) {
                    audience.push(gate_from_row(&row, 0)?);
                }
            }
        }
        Ok(audience)
    }

    /// Records an approval of a campaign's compliance blocks.
    pub async fn record_approval(
        &self,
        campaign: &str,
        approved_by: &str,
        combined_hash: &str,
        variants: &BTreeMap<String, String>,
    ) -> Result<i64, StoreError> {
        let variants = serde_json::to_string(variants).unwrap_or_else(|_| "{}".into());
        Ok(sqlx::query_scalar(
            "INSERT INTO approvals (campaign, approved_by, approved_at, combined_hash, variants)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(campaign)
        .bind(approved_by)
        .bind(crate::now_millis())
        .bind(combined_hash)
        .bind(variants)
        .fetch_one(self.pool())
        .await?)
    }

    /// The approval in force for a campaign: the newest.
    pub async fn latest_approval(&self, campaign: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(
            "SELECT id, approved_by, approved_at, combined_hash, variants FROM approvals
              WHERE campaign = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(campaign)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get("id");
        let variants: String = row.get("variants");
        let variants = serde_json::from_str(&variants).map_err(|_| StoreError::Corrupt {
            table: "approvals",
            column: "variants",
            id,
            value: variants.clone(),
        })?;
        Ok(Some(Approval {
            approved_by: row.get("approved_by"),
            approved_at: row.get("approved_at"),
            combined_hash: row.get("combined_hash"),
            variants,
        }))
    }
}

/// A recorded approval of a campaign's rendered compliance blocks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Approval {
    pub approved_by: String,
    pub approved_at: i64,
    pub combined_hash: String,
    /// Variant key → SHA-256 of its rendered blocks.
    pub variants: BTreeMap<String, String>,
}

impl Store {
    /// The outbox row of `email` in a campaign, if the contact is in its audience.
    pub async fn outbox_row_for(
        &self,
        campaign_id: i64,
        email: &EmailAddress,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT o.id FROM outbox o JOIN contacts c ON c.id = o.contact_id
              WHERE o.campaign_id = ? AND c.email = ?",
        )
        .bind(campaign_id)
        .bind(email.as_str())
        .fetch_optional(self.pool())
        .await?)
    }
}
