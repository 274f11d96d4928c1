//! Read-only reports for operators: who a campaign's rows went to and how each ended.

use sqlx::Row;

use super::{OutboxState, Store, StoreError};

/// One recipient of a campaign, as `status --recipients` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecipientOutcome {
    /// `None` once the person's data was erased.
    pub email: Option<String>,
    pub state: String,
    pub attempts: i64,
    /// The last SMTP reply, or why the row failed or was suppressed.
    pub last_reply: Option<String>,
    pub updated_at: i64,
}

impl Store {
    /// The rows of a campaign with their outcome, optionally of one state, in row order.
    pub async fn campaign_recipients(
        &self,
        campaign_id: i64,
        state: Option<OutboxState>,
    ) -> Result<Vec<RecipientOutcome>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.email, o.state, o.attempts, COALESCE(o.smtp_reply, o.last_error) AS reply,
                    o.updated_at
               FROM outbox o LEFT JOIN contacts c ON c.id = o.contact_id
              WHERE o.campaign_id = $1 AND ($2 = '' OR o.state = $2)
              ORDER BY o.id",
        )
        .bind(campaign_id)
        .bind(state.map(OutboxState::as_str).unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| RecipientOutcome {
                email: r.get("email"),
                state: r.get("state"),
                attempts: r.get("attempts"),
                last_reply: r.get("reply"),
                updated_at: r.get("updated_at"),
            })
            .collect())
    }
}
