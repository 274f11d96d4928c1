//! The outbox: one row per (campaign, contact) and its state machine
//! `queued → sending → sent | deferred | failed | suppressed | uncertain`, with the transport
//! kind each row was last sent with.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{AudienceScope, Store, StoreError};
use crate::model::Phase;
use crate::model::SuppressionReason;
use crate::model::{ContactStatus, EmailAddress};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
    Suppressed,
    /// The data was sent and no answer came (RFC 5321 §6.1): the server may have accepted the
    /// message. Never resent unless the operator asks.
    Uncertain,
    /// Still to be sent when its campaign was cancelled: never sent.
    Cancelled,
}

impl OutboxState {
    pub const ALL: [OutboxState; 8] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Deferred,
        Self::Failed,
        Self::Suppressed,
        Self::Uncertain,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
            Self::Uncertain => "uncertain",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The kind of transport a row was sent with: how an interrupted row can be judged (the
/// outbox transport can tell whether its file was written; SMTP cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Smtp,
    Outbox,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Outbox => "outbox",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Smtp, Self::Outbox]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A row in `sending`: who moved it there, and with which kind of transport (`None` for a row
/// moved there before the kind was recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightRow {
    pub outbox_id: i64,
    pub claimed_by: Option<String>,
    pub transport: Option<TransportKind>,
}

/// A row whose delivery is uncertain, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UncertainRow {
    pub outbox_id: i64,
    pub email: String,
    /// When the row became uncertain (Unix ms).
    pub at: i64,
    pub reason: String,
}

/// A row just moved to `sending`, with what was read in the same statement.
#[derive(Debug, Clone)]
pub struct SendingRow {
    /// This attempt's number (1 for the first).
    pub attempts: i64,
    /// `None` if the contact no longer exists.
    pub status: Option<ContactStatus>,
    pub suppressed: Option<SuppressionReason>,
}

impl SendingRow {
    /// The row `id` as the move to `sending` answered: its attempt number, and the contact's
    /// status and suppression reason as stored (either writer's answer, same columns).
    pub(super) fn from_answer(
        id: i64,
        attempts: i64,
        status: Option<String>,
        reason: Option<String>,
    ) -> Result<Self, StoreError> {
        let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
            table: "contacts/suppressions",
            column,
            id,
            value,
        };
        Ok(Self {
            attempts,
            status: status
                .map(|s| ContactStatus::parse(&s).ok_or_else(|| corrupt("status", s)))
                .transpose()?,
            suppressed: reason
                .map(|r| SuppressionReason::parse(&r).ok_or_else(|| corrupt("reason", r)))
                .transpose()?,
        })
    }
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

/// What [`Store::prepare_outbox`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preparation {
    /// Rows added to the outbox by this call.
    pub added: u64,
    /// Set when this call joined another worker's preparation instead: when that began.
    pub joined_at: Option<i64>,
}

/// The database's clock (see [`Store::database_clock`]) through `conn`.
async fn clock_millis(
    backend: super::Backend,
    conn: &mut sqlx::AnyConnection,
) -> Result<i64, StoreError> {
    match backend {
        super::Backend::Sqlite => Ok(crate::now_millis()),
        super::Backend::Postgres => Ok(sqlx::query_scalar(
            "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
        )
        .fetch_one(conn)
        .await?),
    }
}

impl Store {
    /// Adds an outbox row for every contact of the scope (its registers narrowed by its
    /// segment) that has none yet in this campaign; a contact in several registers lands in
    /// the first whose membership the segment selects. Returns the rows added.
    pub async fn materialise_outbox(
        &self,
        campaign_id: i64,
        scope: &AudienceScope<'_>,
    ) -> Result<u64, StoreError> {
        let preparation = self
            .prepare_outbox(
                campaign_id,
                scope,
                None::<fn(&[super::ab::UngroupedRow]) -> super::ab::Grouping>,
                None,
            )
            .await?;
        Ok(preparation.added)
    }

    /// The database's clock, Unix ms: PostgreSQL's (one clock for every worker of a campaign,
    /// whatever host they run on), or this host's for an SQLite file (whose workers share it).
    /// What [`Store::prepare_outbox`]'s `joinable_since` is read from.
    pub async fn database_clock(&self) -> Result<i64, StoreError> {
        clock_millis(self.backend, &mut *self.pool().acquire().await?).await
    }

    /// Materialises the outbox and, for an A/B campaign, groups the new rows (`assign` decides
    /// from each row's facts which are left out, and the phase and variant of the others), all in
    /// one transaction that holds the campaign's row lock, so the groups are formed over one
    /// consistent set of rows.
    /// The segment is evaluated here, when rows are added: a queued row stays queued if its
    /// contact leaves the segment later (eligibility is still decided at each transaction).
    ///
    /// Workers starting together prepare the campaign once. With `joinable_since` (the
    /// [`Store::database_clock`] once the caller's own writes are committed), a preparation of
    /// the same audience definition that began after that instant (strictly: equal milliseconds
    /// cannot order a commit against a snapshot) is joined instead of
    /// repeated: it evaluated the audience after everything the caller could have seen, so a
    /// second pass would add no row — and on a large audience each pass costs seconds of the
    /// database's time, taken in turn under the lock.
    pub async fn prepare_outbox<F>(
        &self,
        campaign_id: i64,
        scope: &AudienceScope<'_>,
        assign: Option<F>,
        joinable_since: Option<i64>,
    ) -> Result<Preparation, StoreError>
    where
        F: FnOnce(&[super::ab::UngroupedRow]) -> super::ab::Grouping,
    {
        let now = crate::now_millis();
        let digest = scope.digest();
        let mut tx = self.begin_write().await?;
        // A write first: PostgreSQL locks the campaign row, SQLite takes its write lock.
        sqlx::query("UPDATE campaigns SET name = name WHERE id = $1")
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        // Read under the lock (a statement of its own, so PostgreSQL reads the latest commit).
        let (prepared_at, prepared_scope): (Option<i64>, Option<String>) =
            sqlx::query_as("SELECT prepared_at, prepared_scope FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .fetch_one(&mut *tx)
                .await?;
        let joined_at = match (joinable_since, prepared_at) {
            (Some(since), Some(at))
                if at > since && prepared_scope.as_deref() == Some(digest.as_str()) =>
            {
                Some(at)
            }
            _ => None,
        };
        let mut added = 0;
        if joined_at.is_none() {
            // Every statement below reads a snapshot taken after this instant.
            let began = clock_millis(self.backend, &mut tx).await?;
            for index in 0..scope.registers.len() {
                let statement = super::segment::materialise_through(
                    scope,
                    self.backend,
                    campaign_id,
                    index,
                    now,
                );
                added += statement.query().execute(&mut *tx).await?.rows_affected();
            }
            sqlx::query("UPDATE campaigns SET prepared_at = $1, prepared_scope = $2 WHERE id = $3")
                .bind(began)
                .bind(&digest)
                .bind(campaign_id)
                .execute(&mut *tx)
                .await?;
        }
        // Even a joined preparation may have left rows without a group: a preview or a dry run
        // materialises the outbox but forms no A/B groups.
        if let Some(assign) = assign {
            let ungrouped = super::ab::ungrouped_rows(&mut tx, campaign_id).await?;
            if !ungrouped.is_empty() {
                let grouping = assign(&ungrouped);
                super::ab::exclude_rows(&mut tx, &grouping.excluded).await?;
                super::ab::assign_rows(&mut tx, &grouping.assigned).await?;
            }
        }
        tx.commit().await?;
        Ok(Preparation { added, joined_at })
    }

    /// The next `limit` rows after `after_id` that a run would send (queued or deferred, of
    /// `phase` if given), by id: how a dry run pages through the outbox without changing it.
    pub async fn rows_to_send(
        &self,
        campaign_id: i64,
        after_id: i64,
        limit: i64,
        phase: Option<Phase>,
    ) -> Result<Vec<i64>, StoreError> {
        let phase = phase.map(|p| p.as_str());
        Ok(sqlx::query_scalar(
            "SELECT id FROM outbox
              WHERE campaign_id = $1 AND state IN ('queued', 'deferred') AND id > $2
                AND ($3 IS NULL OR phase = $3)
              ORDER BY id LIMIT $4",
        )
        .bind(campaign_id)
        .bind(after_id)
        .bind(phase)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// When the earliest waiting row (of `phase`, if given) comes due.
    pub async fn next_retry_at(
        &self,
        campaign_id: i64,
        phase: Option<Phase>,
    ) -> Result<Option<i64>, StoreError> {
        let phase = phase.map(|p| p.as_str());
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox
              WHERE campaign_id = $1 AND state IN ('queued', 'deferred') AND ($2 IS NULL OR phase = $2)",
        )
        .bind(campaign_id)
        .bind(phase)
        .fetch_one(self.pool())
        .await?)
    }

    /// When the next row (of `phase`, if given) can be claimed: when it comes due, or, for a
    /// row under another worker's lease, just after that lease would run out.
    pub async fn next_claimable_at(
        &self,
        campaign_id: i64,
        phase: Option<Phase>,
    ) -> Result<Option<i64>, StoreError> {
        let phase = phase.map(|p| p.as_str());
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until >= next_attempt_at
                             THEN lease_until + 1 ELSE next_attempt_at END)
               FROM outbox
              WHERE campaign_id = $1 AND state IN ('queued', 'deferred') AND ($2 IS NULL OR phase = $2)",
        )
        .bind(campaign_id)
        .bind(phase)
        .fetch_one(self.pool())
        .await?)
    }

    /// Leases up to `limit` due rows (of `phase`, if given) to `worker` until `lease_until`:
    /// rows that are queued or deferred, due by `now`, and not under another live lease.
    /// Returns their ids, oldest first. Leasing sends nothing; each row is still moved to
    /// `sending` by [`OutboxWriter::write`] before its transaction.
    pub async fn claim_batch(
        &self,
        campaign_id: i64,
        worker: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        phase: Option<Phase>,
    ) -> Result<Vec<i64>, StoreError> {
        let _turn = self.write_turn().await;
        let phase = phase.map(|p| p.as_str());
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2
              WHERE id IN (SELECT id FROM outbox
                            WHERE campaign_id = $3 AND state IN ('queued', 'deferred')
                              AND (SELECT k.run_state FROM campaigns k WHERE k.id = $3) = 'active'
                              AND next_attempt_at <= $4
                              AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $1)
                              AND ($5 IS NULL OR phase = $5)
                            ORDER BY next_attempt_at, id LIMIT $6 {})
             RETURNING id",
            self.backend.skip_locked()
        );
        let mut ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(worker)
            .bind(lease_until)
            .bind(campaign_id)
            .bind(now)
            .bind(phase)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Ends a transaction without delivery: `deferred` (retry at `retry_at`) or a final state.
    /// The lease is released, so any worker may take a deferred row when it comes due.
    pub async fn mark_unsent(
        &self,
        outbox_id: i64,
        state: OutboxState,
        retry_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        debug_assert!(matches!(
            state,
            OutboxState::Deferred
                | OutboxState::Failed
                | OutboxState::Suppressed
                | OutboxState::Uncertain
        ));
        sqlx::query(
            "UPDATE outbox SET state = $1, next_attempt_at = $2, last_error = $3, updated_at = $4,
                    lease_owner = NULL, lease_until = NULL
              WHERE id = $5",
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

    /// Rows in `sending`, with the worker that moved them there and its transport kind.
    pub async fn rows_in_sending(&self, campaign_id: i64) -> Result<Vec<InFlightRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, claimed_by, transport FROM outbox
              WHERE campaign_id = $1 AND state = 'sending' ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let outbox_id: i64 = r.get("id");
                let transport: Option<String> = r.get("transport");
                let transport = match transport {
                    None => None,
                    Some(t) => Some(TransportKind::parse(&t).ok_or(StoreError::Corrupt {
                        table: "outbox",
                        column: "transport",
                        id: outbox_id,
                        value: t.clone(),
                    })?),
                };
                Ok(InFlightRow {
                    outbox_id,
                    claimed_by: r.get("claimed_by"),
                    transport,
                })
            })
            .collect()
    }

    /// Requeues every `uncertain` row of a campaign (the operator asked to resend them);
    /// returns how many.
    pub async fn requeue_uncertain(&self, campaign_id: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = 0, updated_at = $1,
                    lease_owner = NULL, lease_until = NULL
              WHERE campaign_id = $2 AND state = 'uncertain'",
        )
        .bind(crate::now_millis())
        .bind(campaign_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The `uncertain` rows of a campaign with their recipients, oldest first.
    pub async fn uncertain_rows(&self, campaign_id: i64) -> Result<Vec<UncertainRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, c.email, o.updated_at, o.last_error
               FROM outbox o JOIN contacts c ON c.id = o.contact_id
              WHERE o.campaign_id = $1 AND o.state = 'uncertain'
              ORDER BY o.updated_at, o.id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| UncertainRow {
                outbox_id: r.get("id"),
                email: r.get("email"),
                at: r.get("updated_at"),
                reason: r.get::<Option<String>, _>("last_error").unwrap_or_default(),
            })
            .collect())
    }

    /// Resolves a row a dead worker left in `sending`: to `sent`, back to `queued`, to
    /// `failed` or to `uncertain`. Only the first live worker to try succeeds; returns whether this one did.
    pub async fn resolve_interrupted(
        &self,
        outbox_id: i64,
        dead_worker: Option<&str>,
        resolution: OutboxState,
        note: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        debug_assert!(matches!(
            resolution,
            OutboxState::Sent | OutboxState::Queued | OutboxState::Failed | OutboxState::Uncertain
        ));
        let now = crate::now_millis();
        let (last_error, smtp_reply, sent_at) = match resolution {
            OutboxState::Sent => (None, Some(note), Some(now)),
            _ => (Some(note), None, None),
        };
        let done = sqlx::query(
            "UPDATE outbox SET state = $1, last_error = $2, smtp_reply = $3, sent_at = $4,
                    next_attempt_at = 0, updated_at = $5, lease_owner = NULL, lease_until = NULL
              WHERE id = $6 AND state = 'sending'
                AND (claimed_by = $7 OR (claimed_by IS NULL AND $7 IS NULL))",
        )
        .bind(resolution.as_str())
        .bind(last_error)
        .bind(smtp_reply)
        .bind(sent_at)
        .bind(now)
        .bind(outbox_id)
        .bind(dead_worker)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Per-state counts for one campaign, or for every campaign.
    pub async fn campaign_counts(
        &self,
        campaign: Option<&str>,
    ) -> Result<Vec<CampaignCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.name, o.state, COUNT(o.id) AS n
               FROM campaigns c LEFT JOIN outbox o ON o.campaign_id = c.id
              WHERE $1 IS NULL OR c.name = $2
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
              WHERE campaign = $1 ORDER BY id DESC LIMIT 1",
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
              WHERE o.campaign_id = $1 AND c.email = $2",
        )
        .bind(campaign_id)
        .bind(email.as_str())
        .fetch_optional(self.pool())
        .await?)
    }
}

/// A delivered message, as recorded: its row, the server's reply, its Message-ID and how
/// long the transaction took.
#[derive(Debug, Clone)]
pub struct SentRecord {
    pub outbox_id: i64,
    pub reply: String,
    pub message_id: String,
    pub latency_ms: Option<i64>,
}
