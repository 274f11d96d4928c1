//! Opt-outs (GDPR art. 21) and erasure (art. 17).

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::EmailAddress;
use crate::model::Locale;
use crate::model::{OptOutSource, SuppressionReason};

/// Whom an unsubscribe token (an outbox row) points at.
#[derive(Debug, Clone)]
pub struct UnsubscribeTarget {
    pub outbox_id: i64,
    pub campaign_id: i64,
    pub email: EmailAddress,
    pub email_hash: String,
    pub locale: Option<Locale>,
    pub register: String,
    pub opted_out: bool,
}

/// One entry of the opt-out queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptOutEntry {
    pub at: i64,
    /// `None` once the person's data was erased.
    pub email: Option<String>,
    pub source: OptOutSource,
    pub campaign: Option<String>,
    pub detail: Option<String>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ErasureReport {
    pub contact_found: bool,
    pub memberships_deleted: u64,
    pub outbox_rows_deleted: u64,
    pub optouts_anonymised: u64,
    /// Signup requests and consent proofs deleted.
    pub consent_records_deleted: u64,
}

impl Store {
    pub async fn unsubscribe_target(
        &self,
        outbox_id: i64,
    ) -> Result<Option<UnsubscribeTarget>, StoreError> {
        let row = sqlx::query(
            "SELECT o.campaign_id, o.register, c.email, c.email_hash, m.locale,
                    (SELECT COUNT(*) FROM optouts x WHERE x.email_hash = c.email_hash) AS opted
               FROM outbox o
               JOIN contacts c ON c.id = o.contact_id
               LEFT JOIN memberships m ON m.contact_id = o.contact_id AND m.register = o.register
              WHERE o.id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let email: String = row.get("email");
        let email = EmailAddress::parse(&email).map_err(|_| StoreError::Corrupt {
            table: "contacts",
            column: "email",
            id: outbox_id,
            value: email.clone(),
        })?;
        let locale: Option<String> = row.get("locale");
        Ok(Some(UnsubscribeTarget {
            outbox_id,
            campaign_id: row.get("campaign_id"),
            email,
            email_hash: row.get("email_hash"),
            locale: locale.as_deref().and_then(Locale::parse),
            register: row.get("register"),
            opted_out: row.get::<i64, _>("opted") > 0,
        }))
    }

    /// Records an opt-out and suppresses the address for `reason` (which `suppress::policy`
    /// chose), in one transaction. Returns false when the address had already opted out (the
    /// first record is kept: opting out is idempotent).
    pub async fn record_optout(
        &self,
        email_hash: &str,
        email: Option<&EmailAddress>,
        source: OptOutSource,
        reason: SuppressionReason,
        campaign_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = crate::now_millis();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO optouts (email_hash, email, source, campaign_id, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(email_hash)
        .bind(email.map(EmailAddress::as_str))
        .bind(source.as_str())
        .bind(campaign_id)
        .bind(detail)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let evidence = format!("opt-out by {}", source.as_str());
        super::suppressions::add_reason(
            &mut tx,
            &super::NewReason {
                email_hash,
                email: email.map(EmailAddress::as_str),
                reason,
                source: source.as_str(),
                evidence: Some(&evidence),
                campaign_id,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The opt-out queue, newest first.
    pub async fn optouts(&self) -> Result<Vec<OptOutEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.created_at, o.email, o.source, c.name AS campaign, o.detail
               FROM optouts o LEFT JOIN campaigns c ON c.id = o.campaign_id
              ORDER BY o.created_at DESC, o.id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let source: String = row.get("source");
                Ok(OptOutEntry {
                    at: row.get("created_at"),
                    email: row.get("email"),
                    source: OptOutSource::parse(&source).ok_or_else(|| StoreError::Corrupt {
                        table: "optouts",
                        column: "source",
                        id: row.get("id"),
                        value: source.clone(),
                    })?,
                    campaign: row.get("campaign"),
                    detail: row.get("detail"),
                })
            })
            .collect()
    }

    /// GDPR art. 17: deletes the person's data everywhere — contact, register memberships,
    /// outbox rows (with their SMTP replies), the address in opt-out and suppression records —
    /// and keeps only the keyed hash, suppressed with reason `erased`, so that a later import
    /// of the same address is refused.
    pub async fn erase(
        &self,
        email: &EmailAddress,
        email_hash: &str,
    ) -> Result<ErasureReport, StoreError> {
        let now = crate::now_millis();
        let mut report = ErasureReport::default();
        let mut tx = self.begin_write().await?;
        let contact_id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM contacts WHERE email = $1 OR email_hash = $2")
                .bind(email.as_str())
                .bind(email_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = contact_id {
            report.contact_found = true;
            report.outbox_rows_deleted = sqlx::query("DELETE FROM outbox WHERE contact_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            report.memberships_deleted =
                sqlx::query("DELETE FROM memberships WHERE contact_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            sqlx::query("DELETE FROM contacts WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for statement in [
            "DELETE FROM bounces WHERE email_hash = $1",
            "DELETE FROM engagements WHERE email_hash = $1",
        ] {
            sqlx::query(statement)
                .bind(email_hash)
                .execute(&mut *tx)
                .await?;
        }
        report.optouts_anonymised =
            sqlx::query("UPDATE optouts SET email = NULL, detail = NULL WHERE email_hash = $1")
                .bind(email_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        report.consent_records_deleted = super::consent::erase(&mut tx, email_hash).await?;
        scrub_audit_log(&mut tx, email.as_str()).await?;
        super::suppressions::add_reason(
            &mut tx,
            &super::NewReason {
                email_hash,
                email: None,
                reason: SuppressionReason::Erased,
                source: "erasure",
                evidence: Some("GDPR art. 17 request"),
                campaign_id: None,
            },
            now,
        )
        .await?;
        super::suppressions::forget_address(&mut tx, email_hash).await?;
        tx.commit().await?;
        self.scrub_deleted().await?;
        Ok(report)
    }
}

/// Removes an address from audit records (operator actions recorded before addresses were kept
/// out of the audit log name it in their subject or detail).
pub(super) async fn scrub_audit_log(
    conn: &mut sqlx::AnyConnection,
    email: &str,
) -> Result<(), StoreError> {
    let pattern = format!(
        "%{}%",
        email
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query(
        "UPDATE audit_log SET subject = '(erased address)', detail = NULL
          WHERE LOWER(subject) LIKE $1 ESCAPE '\\' OR LOWER(detail) LIKE $1 ESCAPE '\\'",
    )
    .bind(&pattern)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
