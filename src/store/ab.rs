//! A/B test state: phase and variant assignment, the decision (taken once), tracked links and
//! click/open events.

use crate::model::TestMessage;
use sqlx::Row;

use super::{Store, StoreError};
use crate::model::{ContactStatus, Decision, Phase, SuppressionReason};

/// The stored state of a campaign's test.
#[derive(Debug, Clone, Default)]
pub struct AbState {
    pub test_finished_at: Option<i64>,
    pub decision: Option<(i64, Decision)>,
}

impl Store {
    /// Rows of `phase` being worked on at `now`: in `sending`, or leased to a worker whose
    /// lease has not run out. While there are any, the phase is not over.
    pub async fn ab_in_flight(
        &self,
        campaign_id: i64,
        phase: Phase,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE campaign_id = $1 AND phase = $2
                AND (state = 'sending' OR (state IN ('queued', 'deferred') AND lease_until >= $3))",
        )
        .bind(campaign_id)
        .bind(phase.as_str())
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Rows of `phase` not yet in a final state.
    pub async fn ab_pending(&self, campaign_id: i64, phase: Phase) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE campaign_id = $1 AND phase = $2 AND state IN ('queued', 'deferred', 'sending')",
        )
        .bind(campaign_id)
        .bind(phase.as_str())
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn ab_state(&self, campaign_id: i64) -> Result<AbState, StoreError> {
        let row = sqlx::query("SELECT * FROM ab_state WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(AbState::default());
        };
        let decided_at: Option<i64> = row.get("decided_at");
        let decision = decided_at.map(|at| {
            (
                at,
                Decision {
                    winner: row.get::<Option<i64>, _>("winner").unwrap_or(0) as usize,
                    method: row.get::<Option<String>, _>("method").unwrap_or_default(),
                    statistic: row.get::<Option<f64>, _>("statistic").unwrap_or(0.0),
                    p_value_or_probability: row.get::<Option<f64>, _>("p_value").unwrap_or(1.0),
                    fallback_used: row.get::<Option<i64>, _>("fallback_used").unwrap_or(0) != 0,
                },
            )
        });
        Ok(AbState {
            test_finished_at: row.get("test_finished_at"),
            decision,
        })
    }

    /// Records when the test phase finished (the last test message's send time), once.
    pub async fn ab_test_finished(&self, campaign_id: i64) -> Result<i64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(sent_at) FROM outbox WHERE campaign_id = $1 AND phase = 'test'",
        )
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        sqlx::query(
            "INSERT INTO ab_state (campaign_id, test_finished_at) VALUES ($1, $2)
             ON CONFLICT (campaign_id) DO UPDATE SET test_finished_at = COALESCE(ab_state.test_finished_at, excluded.test_finished_at)",
        )
        .bind(campaign_id)
        .bind(last.unwrap_or_else(crate::now_millis))
        .execute(self.pool())
        .await?;
        Ok(self
            .ab_state(campaign_id)
            .await?
            .test_finished_at
            .unwrap_or_else(crate::now_millis))
    }

    /// Stores the decision unless one was taken already, gives the remainder the winning
    /// variant, and returns the decision in force.
    pub async fn ab_decide(
        &self,
        campaign_id: i64,
        decision: &Decision,
    ) -> Result<Decision, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE ab_state SET decided_at = $1, winner = $2, method = $3, statistic = $4, p_value = $5, fallback_used = $6
              WHERE campaign_id = $7 AND decided_at IS NULL",
        )
        .bind(crate::now_millis())
        .bind(decision.winner as i64)
        .bind(&decision.method)
        .bind(decision.statistic)
        .bind(decision.p_value_or_probability)
        .bind(decision.fallback_used as i64)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        let winner: i64 = sqlx::query_scalar("SELECT winner FROM ab_state WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE outbox SET variant = $1 WHERE campaign_id = $2 AND phase = 'remainder'",
        )
        .bind(winner)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(self
            .ab_state(campaign_id)
            .await?
            .decision
            .map(|(_, d)| d)
            .unwrap_or_else(|| decision.clone()))
    }

    /// Every test-phase message that was sent, with its events and whether its recipient replied.
    pub async fn ab_test_messages(&self, campaign_id: i64) -> Result<Vec<TestMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.variant, o.sent_at,
                    CASE WHEN EXISTS (SELECT 1 FROM engagements e JOIN contacts c ON c.email_hash = e.email_hash
                             WHERE c.id = o.contact_id AND e.kind = 'reply' AND e.campaign_id = o.campaign_id)
                         THEN 1 ELSE 0 END AS replied
               FROM outbox o WHERE o.campaign_id = $1 AND o.phase = 'test' AND o.state = 'sent' ORDER BY o.id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get("id");
            let events = sqlx::query("SELECT kind, link, created_at FROM message_events WHERE outbox_id = $1 ORDER BY created_at")
                .bind(id)
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(|e| (e.get("kind"), e.get("link"), e.get("created_at")))
                .collect();
            out.push(TestMessage {
                variant: r.get::<Option<i64>, _>("variant").unwrap_or(0) as usize,
                sent_at: r.get("sent_at"),
                events,
                replied: r.get::<i64, _>("replied") != 0,
            });
        }
        Ok(out)
    }

    /// (group size, sent) per variant of the test phase.
    pub async fn ab_group_counts(
        &self,
        campaign_id: i64,
    ) -> Result<Vec<(usize, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT variant, COUNT(*) AS size, SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS sent FROM outbox
              WHERE campaign_id = $1 AND phase = 'test' GROUP BY variant ORDER BY variant",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get::<Option<i64>, _>("variant").unwrap_or(0) as usize,
                    r.get("size"),
                    r.get::<Option<i64>, _>("sent").unwrap_or(0),
                )
            })
            .collect())
    }

    /// Stores the campaign's trackable links (first send fixes them; later sends keep them).
    pub async fn set_campaign_links(
        &self,
        campaign_id: i64,
        links: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        for (idx, url) in links.iter().enumerate() {
            sqlx::query("INSERT INTO campaign_links (campaign_id, idx, url) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(campaign_id)
                .bind(idx as i64)
                .bind(url)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(
            sqlx::query_scalar(
                "SELECT url FROM campaign_links WHERE campaign_id = $1 ORDER BY idx",
            )
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?,
        )
    }

    /// The target of a tracked link: a URL of that outbox row's own campaign, or nothing.
    pub async fn link_target(
        &self,
        outbox_id: i64,
        idx: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT l.url FROM outbox o JOIN campaign_links l ON l.campaign_id = o.campaign_id AND l.idx = $1 WHERE o.id = $2",
        )
        .bind(idx)
        .bind(outbox_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records a click or an open of an existing outbox row, at most one per (row, kind, link)
    /// and clock minute: a flood of pixel or link requests counts once a minute. Returns
    /// whether it counted; a row that does not exist writes nothing.
    pub async fn record_event(
        &self,
        outbox_id: i64,
        kind: &str,
        link: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = crate::now_millis();
        // The unique index message_events_once_a_minute makes the once-a-minute rule hold
        // across `serve` processes too; the WHERE clause also lets SQLite parse the upsert.
        let inserted = sqlx::query(
            "INSERT INTO message_events (outbox_id, kind, link, created_at, minute)
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM outbox WHERE id = $1)
             ON CONFLICT DO NOTHING",
        )
        .bind(outbox_id)
        .bind(kind)
        .bind(link)
        .bind(now)
        .bind(now.div_euclid(60_000))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }
}

/// A queued row not yet given an A/B phase, with what decides whether its contact may be in
/// a group (status and suppression, as of the grouping).
#[derive(Debug, Clone, Copy)]
pub struct UngroupedRow {
    pub outbox_id: i64,
    pub contact_id: i64,
    pub status: ContactStatus,
    pub suppressed: Option<SuppressionReason>,
}

/// What the caller decided about the ungrouped rows: those left out (marked `suppressed`, so
/// they never count in a group) and the phase and variant of the others.
#[derive(Debug, Default)]
pub struct Grouping {
    pub excluded: Vec<i64>,
    pub assigned: Vec<(i64, Phase, Option<usize>)>,
}

/// Queued rows not yet given a phase, with their contact's facts. Runs inside
/// [`Store::prepare_outbox`]'s transaction.
pub(super) async fn ungrouped_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    campaign_id: i64,
) -> Result<Vec<UngroupedRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.contact_id, c.status, s.reason
           FROM outbox o
           JOIN contacts c ON c.id = o.contact_id
           LEFT JOIN suppressions s ON s.email_hash = c.email_hash
          WHERE o.campaign_id = $1 AND o.phase IS NULL AND o.state = 'queued'
          ORDER BY o.id",
    )
    .bind(campaign_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(ungrouped_from_row).collect()
}

fn ungrouped_from_row(row: &sqlx::any::AnyRow) -> Result<UngroupedRow, StoreError> {
    let outbox_id: i64 = row.get("id");
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        table: "contacts/suppressions",
        column,
        id: outbox_id,
        value,
    };
    let status: String = row.get("status");
    let status = ContactStatus::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?;
    let reason: Option<String> = row.get("reason");
    let suppressed = match reason {
        None => None,
        Some(r) => Some(SuppressionReason::parse(&r).ok_or_else(|| corrupt("reason", r.clone()))?),
    };
    Ok(UngroupedRow {
        outbox_id,
        contact_id: row.get("contact_id"),
        status,
        suppressed,
    })
}

/// Marks the rows left out of the A/B groups `suppressed`.
pub(super) async fn exclude_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox_ids: &[i64],
) -> Result<(), StoreError> {
    let now = crate::now_millis();
    for chunk in outbox_ids.chunks(500) {
        let placeholders = super::numbered_placeholders(2, chunk.len());
        let sql = format!(
            "UPDATE outbox SET state = 'suppressed', last_error = 'not eligible when the A/B groups were formed', updated_at = $1
              WHERE id IN ({placeholders}) AND phase IS NULL AND state = 'queued'"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn assign_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    assignments: &[(i64, Phase, Option<usize>)],
) -> Result<(), StoreError> {
    for (id, phase, variant) in assignments {
        sqlx::query("UPDATE outbox SET phase = $1, variant = $2 WHERE id = $3 AND phase IS NULL")
            .bind(phase.as_str())
            .bind(variant.map(|v| v as i64))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
