//! Queries for the operations pages and /metrics: the audit record, counts for Prometheus,
//! send rates.

use sqlx::Row;

use super::{Store, StoreError};

/// Upper bounds (ms) of the SMTP latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [i64; 10] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Metrics {
    /// (campaign, state, count)
    pub messages: Vec<(String, String, i64)>,
    /// (class or kind, count): `hard`, `soft`, `complaint`, `auto_reply`, `delivered`.
    pub bounces: Vec<(String, i64)>,
    /// (source, count)
    pub optouts: Vec<(String, i64)>,
    /// Cumulative counts per bucket of `LATENCY_BUCKETS_MS`, then the total count and sum (ms).
    pub latency_buckets: Vec<i64>,
    pub latency_count: i64,
    pub latency_sum_ms: i64,
    /// Rows waiting to be sent (queued or deferred).
    pub queue_depth: i64,
}

/// One row of the audit log, on the caller's connection (inside its transaction when it has
/// one): every writer of the log goes through here.
pub(super) async fn write_audit(
    conn: &mut sqlx::AnyConnection,
    now: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (created_at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records an operator's action.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        write_audit(
            &mut conn,
            crate::now_millis(),
            actor,
            action,
            subject,
            detail,
        )
        .await
    }

    /// Messages of a campaign sent in the last `seconds`.
    pub async fn sent_since(&self, campaign: &str, since_ms: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox o JOIN campaigns c ON c.id = o.campaign_id
              WHERE c.name = $1 AND o.state = 'sent' AND o.sent_at >= $2",
        )
        .bind(campaign)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn metrics(&self) -> Result<Metrics, StoreError> {
        let pool = self.pool();
        let mut m = Metrics::default();
        for row in sqlx::query(
            "SELECT c.name, o.state, COUNT(*) AS n FROM outbox o JOIN campaigns c ON c.id = o.campaign_id
              GROUP BY c.name, o.state ORDER BY c.name, o.state",
        )
        .fetch_all(pool)
        .await?
        {
            m.messages.push((row.get("name"), row.get("state"), row.get("n")));
        }
        for row in sqlx::query(
            "SELECT COALESCE(class, CASE WHEN reason = 'delivered' THEN 'delivered' ELSE kind END) AS k, COUNT(*) AS n
               FROM bounces GROUP BY k ORDER BY k",
        )
        .fetch_all(pool)
        .await?
        {
            m.bounces.push((row.get("k"), row.get("n")));
        }
        for row in
            sqlx::query("SELECT source, COUNT(*) AS n FROM optouts GROUP BY source ORDER BY source")
                .fetch_all(pool)
                .await?
        {
            m.optouts.push((row.get("source"), row.get("n")));
        }
        // One pass over the sent rows: a cumulative count per bucket bound (bound parameters).
        let buckets = LATENCY_BUCKETS_MS
            .iter()
            .enumerate()
            .map(|(i, _)| {
                format!(
                    "COALESCE(SUM(CASE WHEN latency_ms <= ${} THEN 1 ELSE 0 END), 0)",
                    i + 1
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COUNT(latency_ms), CAST(COALESCE(SUM(latency_ms), 0) AS BIGINT), {buckets} FROM outbox WHERE latency_ms IS NOT NULL"
        );
        let mut query = sqlx::query(&sql);
        for le in LATENCY_BUCKETS_MS {
            query = query.bind(le);
        }
        let row = query.fetch_one(pool).await?;
        m.latency_count = row.get(0);
        m.latency_sum_ms = row.get(1);
        m.latency_buckets = (0..LATENCY_BUCKETS_MS.len())
            .map(|i| row.get(i + 2))
            .collect();
        m.queue_depth =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'deferred')")
                .fetch_one(pool)
                .await?;
        Ok(m)
    }
}
