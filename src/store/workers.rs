//! The `send` workers of a campaign: their registration and heartbeats, the leases on the
//! outbox rows they hold, and the campaign-wide pace they share. Whether a worker is dead is
//! decided in `send`; this module records and reports.

use sqlx::Row;

use super::{Store, StoreError};

/// One `send` process as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerRecord {
    pub worker: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Rows it has leased and rows it has sent, since it started.
    pub claimed: i64,
    pub sent: i64,
    /// Set when it stopped cleanly.
    pub stopped_at: Option<i64>,
}

impl Store {
    pub async fn register_worker(
        &self,
        campaign_id: i64,
        worker: &str,
        host: &str,
        pid: u32,
    ) -> Result<(), StoreError> {
        let now = crate::now_millis();
        sqlx::query(
            "INSERT INTO workers (worker, campaign_id, host, pid, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (worker) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
        )
        .bind(worker)
        .bind(campaign_id)
        .bind(host)
        .bind(i64::from(pid))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `worker` is alive with its running counts, and extends the leases of the
    /// rows it still holds to `lease_until`.
    pub async fn heartbeat(
        &self,
        worker: &str,
        claimed: u64,
        sent: u64,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE workers SET heartbeat_at = $1, claimed = $2, sent = $3 WHERE worker = $4",
        )
        .bind(crate::now_millis())
        .bind(claimed as i64)
        .bind(sent as i64)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET lease_until = $1
              WHERE lease_owner = $2 AND state IN ('queued', 'deferred', 'sending')",
        )
        .bind(lease_until)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives up the rows `worker` leased but did not start, so other workers take them at
    /// once; `stopped` also marks the worker as gone (a clean exit).
    pub async fn release_leases(&self, worker: &str, stopped: bool) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL
              WHERE lease_owner = $1 AND state IN ('queued', 'deferred')",
        )
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if stopped {
            sqlx::query("UPDATE workers SET stopped_at = $1 WHERE worker = $2")
                .bind(crate::now_millis())
                .bind(worker)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The workers of a campaign that have not stopped cleanly, newest first.
    pub async fn campaign_workers(
        &self,
        campaign_id: i64,
    ) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker, host, pid, started_at, heartbeat_at, claimed, sent, stopped_at
               FROM workers WHERE campaign_id = $1 AND stopped_at IS NULL
              ORDER BY started_at DESC, worker",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| WorkerRecord {
                worker: r.get("worker"),
                host: r.get("host"),
                pid: r.get("pid"),
                started_at: r.get("started_at"),
                heartbeat_at: r.get("heartbeat_at"),
                claimed: r.get("claimed"),
                sent: r.get("sent"),
                stopped_at: r.get("stopped_at"),
            })
            .collect())
    }

    /// Marks a worker found dead as stopped, so it is not reported as live again.
    pub async fn bury_worker(&self, worker: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE workers SET stopped_at = $1 WHERE worker = $2 AND stopped_at IS NULL")
            .bind(crate::now_millis())
            .bind(worker)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Reserves `count` consecutive send slots `interval_us` apart on the campaign's shared
    /// pace and returns the first (Unix µs). Slots never start before `now_us`, so an idle
    /// period banks nothing; every worker draws from the same row, so the limit holds for all
    /// of them together.
    pub async fn reserve_slots(
        &self,
        campaign_id: i64,
        now_us: i64,
        interval_us: i64,
        count: i64,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let span = interval_us.saturating_mul(count);
        Ok(sqlx::query_scalar(
            "INSERT INTO campaign_pace (campaign_id, next_slot) VALUES ($1, $2 + $3)
             ON CONFLICT (campaign_id) DO UPDATE SET next_slot =
                 (CASE WHEN campaign_pace.next_slot > $2 THEN campaign_pace.next_slot ELSE $2 END) + $3
             RETURNING next_slot - $3",
        )
        .bind(campaign_id)
        .bind(now_us)
        .bind(span)
        .fetch_one(self.pool())
        .await?)
    }
}
