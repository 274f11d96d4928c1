//! Pause, resume and cancel: a campaign's run state, changed in one statement (or, for a
//! cancel, one transaction with its rows) and audited. The send loop reads the state; it
//! never writes it.

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::RunState;

/// What a change of run state did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunStateChange {
    pub campaign: String,
    pub before: RunState,
    pub after: RunState,
    /// Rows that were still to be sent and are now `cancelled` (cancel only).
    pub rows_cancelled: u64,
}

/// A change that the state does not allow.
#[derive(Debug, thiserror::Error)]
pub enum RunStateError {
    #[error("campaign '{0}' is not known to this database (it has never been sent or checked)")]
    UnknownCampaign(String),
    #[error("campaign '{0}' was cancelled; a cancelled campaign cannot be paused or resumed")]
    Cancelled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RunStateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl Store {
    /// The run state of a campaign (`Active` for one never paused).
    pub async fn run_state(&self, campaign_id: i64) -> Result<RunState, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT run_state FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(text
            .as_deref()
            .and_then(RunState::parse)
            .unwrap_or(RunState::Active))
    }

    /// Pauses or resumes a campaign. Pausing a paused campaign (or resuming an active one)
    /// changes nothing and says so (`before == after`).
    pub async fn set_paused(
        &self,
        campaign: &str,
        paused: bool,
        actor: &str,
    ) -> Result<RunStateChange, RunStateError> {
        let after = if paused {
            RunState::Paused
        } else {
            RunState::Active
        };
        let mut tx = self.begin_write().await?;
        let before = current(&mut tx, campaign).await?;
        if before == RunState::Cancelled {
            return Err(RunStateError::Cancelled(campaign.to_string()));
        }
        if before != after {
            sqlx::query(
                "UPDATE campaigns SET run_state = $1, run_state_at = $2, run_state_by = $3
                  WHERE name = $4 AND run_state <> 'cancelled'",
            )
            .bind(after.as_str())
            .bind(crate::now_millis())
            .bind(actor)
            .bind(campaign)
            .execute(&mut *tx)
            .await?;
            audit(
                &mut tx,
                actor,
                if paused { "pause" } else { "resume" },
                campaign,
                None,
            )
            .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(RunStateChange {
            campaign: campaign.to_string(),
            before,
            after,
            rows_cancelled: 0,
        })
    }

    /// Cancels a campaign for good: its state becomes `cancelled` and every row still to be
    /// sent (queued or deferred, leased or not) becomes `cancelled`, in one transaction. Rows
    /// already in an SMTP transaction finish it; none starts after this commits.
    pub async fn cancel(
        &self,
        campaign: &str,
        actor: &str,
    ) -> Result<RunStateChange, RunStateError> {
        let mut tx = self.begin_write().await?;
        let before = current(&mut tx, campaign).await?;
        let now = crate::now_millis();
        sqlx::query(
            "UPDATE campaigns SET run_state = 'cancelled', run_state_at = $1, run_state_by = $2
              WHERE name = $3 AND run_state <> 'cancelled'",
        )
        .bind(now)
        .bind(actor)
        .bind(campaign)
        .execute(&mut *tx)
        .await?;
        let rows_cancelled = sqlx::query(
            "UPDATE outbox SET state = 'cancelled', lease_owner = NULL, lease_until = NULL,
                    last_error = 'the campaign was cancelled', updated_at = $1
              WHERE state IN ('queued', 'deferred')
                AND campaign_id = (SELECT id FROM campaigns WHERE name = $2)",
        )
        .bind(now)
        .bind(campaign)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if before != RunState::Cancelled || rows_cancelled > 0 {
            let detail = format!("{rows_cancelled} unsent messages cancelled");
            audit(&mut tx, actor, "cancel", campaign, Some(&detail)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(RunStateChange {
            campaign: campaign.to_string(),
            before,
            after: RunState::Cancelled,
            rows_cancelled,
        })
    }
}

async fn current(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    campaign: &str,
) -> Result<RunState, RunStateError> {
    let row = sqlx::query("SELECT run_state FROM campaigns WHERE name = $1")
        .bind(campaign)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| RunStateError::UnknownCampaign(campaign.to_string()))?;
    let text: String = row.try_get(0).map_err(StoreError::from)?;
    Ok(RunState::parse(&text).unwrap_or(RunState::Active))
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    action: &str,
    campaign: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let subject = format!("campaign {campaign}");
    super::ops::write_audit(tx, crate::now_millis(), actor, action, &subject, detail).await
}
