//! The suppression tables' statements: the only SQL that writes `suppression_reasons` and its
//! per-address summary `suppressions`. What to add or lift is decided by `suppress/` (and by the
//! ingest and erasure use cases through it); these functions run inside the caller's
//! transaction so that a suppression commits together with the event that caused it.
//!
//! Invariant kept here: an address has a `suppressions` row exactly when it has at least one
//! reason, and every change is written to `audit_log` naming the hash, never the address.

use sqlx::Row;

use super::StoreError;
use crate::model::SuppressionReason;

/// One reason to add.
#[derive(Debug, Clone)]
pub struct NewReason<'a> {
    pub email_hash: &'a str,
    /// The address, when it is still known (kept in the summary row for the opt-out and
    /// bounce queues; erased later with the rest of the person's data).
    pub email: Option<&'a str>,
    pub reason: SuppressionReason,
    /// Who or what added it: `inbound`, `page`, `operator:NAME`, `erasure`…
    pub source: &'a str,
    /// What proves it: a bounce id, a message fingerprint. Never an address.
    pub evidence: Option<&'a str>,
    pub campaign_id: Option<i64>,
}

/// A short, stable label of a hash for the audit log (the hash itself is not personal data,
/// but the log needs no more than this to find the suppression).
fn audit_subject(email_hash: &str) -> String {
    format!("address {}", &email_hash[..email_hash.len().min(16)])
}

/// Adds `new.reason` to the address; other reasons are untouched. Returns false when the
/// address already had that reason (the first record is kept).
pub(crate) async fn add_reason(
    conn: &mut sqlx::AnyConnection,
    new: &NewReason<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO suppression_reasons (email_hash, reason, source, evidence, campaign_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_hash, reason) DO NOTHING",
    )
    .bind(new.email_hash)
    .bind(new.reason.as_str())
    .bind(new.source)
    .bind(new.evidence)
    .bind(new.campaign_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    // The summary keeps its first reason; an erasure forgets the address, for good.
    let erased = new.reason == SuppressionReason::Erased
        || reasons_of(conn, new.email_hash)
            .await?
            .contains(&SuppressionReason::Erased);
    sqlx::query(
        "INSERT INTO suppressions (email_hash, email, reason, source, campaign_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (email_hash) DO UPDATE SET
             email = CASE WHEN excluded.reason = 'erased' THEN NULL
                          ELSE COALESCE(suppressions.email, excluded.email) END",
    )
    .bind(new.email_hash)
    .bind(if erased { None } else { new.email })
    .bind(new.reason.as_str())
    .bind(new.source)
    .bind(new.campaign_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if added {
        audit(
            conn,
            new.source,
            "suppression_added",
            new.email_hash,
            &format!(
                "{}{}",
                new.reason.as_str(),
                new.evidence.map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            now,
        )
        .await?;
    }
    Ok(added)
}

/// Removes `reason` from the address; the address stays suppressed while any other reason
/// remains. Returns false when it did not have that reason.
pub(crate) async fn lift_reason(
    conn: &mut sqlx::AnyConnection,
    email_hash: &str,
    reason: SuppressionReason,
    actor: &str,
    why: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let lifted =
        sqlx::query("DELETE FROM suppression_reasons WHERE email_hash = $1 AND reason = $2")
            .bind(email_hash)
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0;
    if !lifted {
        return Ok(false);
    }
    let remaining = sqlx::query(
        "SELECT reason, source, campaign_id, created_at FROM suppression_reasons
          WHERE email_hash = $1 ORDER BY created_at, reason LIMIT 1",
    )
    .bind(email_hash)
    .fetch_optional(&mut *conn)
    .await?;
    match remaining {
        Some(row) => {
            let next: String = row.get("reason");
            sqlx::query(
                "UPDATE suppressions SET reason = $1, source = $2, campaign_id = $3, created_at = $4
                  WHERE email_hash = $5",
            )
            .bind(&next)
            .bind(row.get::<String, _>("source"))
            .bind(row.get::<Option<i64>, _>("campaign_id"))
            .bind(row.get::<i64, _>("created_at"))
            .bind(email_hash)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                .bind(email_hash)
                .execute(&mut *conn)
                .await?;
        }
    }
    audit(
        conn,
        actor,
        "suppression_lifted",
        email_hash,
        &format!("{} ({why})", reason.as_str()),
        now,
    )
    .await?;
    Ok(true)
}

/// The reasons an address is suppressed for, oldest first.
pub(crate) async fn reasons_of(
    conn: &mut sqlx::AnyConnection,
    email_hash: &str,
) -> Result<Vec<SuppressionReason>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM suppression_reasons WHERE email_hash = $1 ORDER BY created_at, reason",
    )
    .bind(email_hash)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| SuppressionReason::parse(r))
        .collect())
}

/// Forgets the address kept beside the hash (purge, erasure): the suppression stays.
pub(crate) async fn forget_address(
    conn: &mut sqlx::AnyConnection,
    email_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE suppressions SET email = NULL WHERE email_hash = $1")
        .bind(email_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn audit(
    conn: &mut sqlx::AnyConnection,
    actor: &str,
    action: &str,
    email_hash: &str,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    let subject = audit_subject(email_hash);
    super::ops::write_audit(conn, now, actor, action, &subject, Some(detail)).await
}
