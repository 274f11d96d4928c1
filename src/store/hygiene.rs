//! Register hygiene: ceased companies, departed persons, retention purges, the report.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::{ContactStatus, EmailAddress, SuppressionReason};

/// A register entry and when it was last used, for retention.
#[derive(Debug, Clone)]
pub struct EntryAge {
    pub membership_id: i64,
    pub contact_id: i64,
    pub register: String,
    pub email: String,
    pub created_at: i64,
    /// The last message sent to the contact, in any campaign.
    pub last_sent_at: Option<i64>,
}

/// What a purge deleted.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PurgeOutcome {
    pub entries_deleted: u64,
    pub contacts_deleted: u64,
    pub outbox_rows_deleted: u64,
}

/// Per-register counts for the hygiene report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegisterCounts {
    pub active: i64,
    pub passive: i64,
    pub ceased: i64,
    pub never_sent: i64,
    /// Sent to at least the threshold number of times with no engagement and no bounce.
    pub unengaged: i64,
}

impl Store {
    /// Marks every contact with this business ID `ceased`; returns (newly ceased, matched).
    pub async fn mark_ceased(&self, business_id: &str) -> Result<(u64, u64), StoreError> {
        let matched: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT contact_id) FROM memberships WHERE business_id = $1",
        )
        .bind(business_id)
        .fetch_one(self.pool())
        .await?;
        let changed = sqlx::query(
            "UPDATE contacts SET status = 'ceased', updated_at = $1
              WHERE status != 'ceased'
                AND id IN (SELECT contact_id FROM memberships WHERE business_id = $2)",
        )
        .bind(crate::now_millis())
        .bind(business_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok((changed, matched as u64))
    }

    /// Marks a contact `passive` (left the role) unless it is already passive or ceased;
    /// returns (changed, found).
    pub async fn mark_passive(&self, email: &EmailAddress) -> Result<(bool, bool), StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM contacts WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(self.pool())
                .await?;
        let Some(status) = status else {
            return Ok((false, false));
        };
        if status != "active" {
            return Ok((false, true));
        }
        self.set_contact_status(email, crate::model::ContactStatus::Passive)
            .await?;
        Ok((true, true))
    }

    /// The contacts with this business ID and name (a person identified without an address).
    pub async fn contacts_by_name(
        &self,
        business_id: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        let emails: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT c.email FROM contacts c JOIN memberships m ON m.contact_id = c.id
              WHERE m.business_id = $1 AND lower(m.first_name) = lower($2) AND lower(m.last_name) = lower($3)",
        )
        .bind(business_id)
        .bind(first_name)
        .bind(last_name)
        .fetch_all(self.pool())
        .await?;
        Ok(emails
            .iter()
            .filter_map(|e| EmailAddress::parse(e).ok())
            .collect())
    }

    /// Every register entry with its age, for retention.
    pub async fn entry_ages(&self) -> Result<Vec<EntryAge>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.contact_id, m.register, c.email, m.created_at,
                    (SELECT MAX(o.sent_at) FROM outbox o WHERE o.contact_id = m.contact_id) AS last_sent
               FROM memberships m JOIN contacts c ON c.id = m.contact_id ORDER BY m.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// Calls `each` for every entry of `registers`, with its age and its contact's status and
    /// suppression (the caller decides which count): the retention warnings of `check`,
    /// streamed.
    pub async fn for_each_entry_with_facts(
        &self,
        registers: &[String],
        mut each: impl FnMut(EntryAge, ContactStatus, Option<SuppressionReason>),
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        for register in registers {
            let mut rows = sqlx::query(
                "SELECT m.id, m.contact_id, m.register, c.email, m.created_at, c.status, s.reason,
                        (SELECT MAX(o.sent_at) FROM outbox o WHERE o.contact_id = m.contact_id) AS last_sent
                   FROM memberships m JOIN contacts c ON c.id = m.contact_id
                   LEFT JOIN suppressions s ON s.email_hash = c.email_hash
                  WHERE m.register = $1",
            )
            .bind(register)
            .fetch(self.pool());
            while let Some(r) = rows.try_next().await? {
                let (status, suppressed) = contact_facts(&r)?;
                each(entry_from_row(&r), status, suppressed);
            }
        }
        Ok(())
    }

    /// Deletes register entries; a contact left with none is deleted with its outbox rows,
    /// bounces and the address in suppression and opt-out records, keeping the keyed hashes.
    pub async fn purge_entries(&self, membership_ids: &[i64]) -> Result<PurgeOutcome, StoreError> {
        let mut outcome = PurgeOutcome::default();
        let mut tx = self.begin_write().await?;
        let mut touched = Vec::new();
        for id in membership_ids {
            let contact: Option<i64> =
                sqlx::query_scalar("DELETE FROM memberships WHERE id = $1 RETURNING contact_id")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(contact) = contact {
                outcome.entries_deleted += 1;
                touched.push(contact);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for contact in touched {
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE contact_id = $1")
                    .bind(contact)
                    .fetch_one(&mut *tx)
                    .await?;
            if left > 0 {
                continue;
            }
            let found: Option<(String, String)> =
                sqlx::query_as("SELECT email, email_hash FROM contacts WHERE id = $1")
                    .bind(contact)
                    .fetch_optional(&mut *tx)
                    .await?;
            let hash = match found {
                Some((email, hash)) => {
                    super::optout::scrub_audit_log(&mut tx, &email).await?;
                    Some(hash)
                }
                None => None,
            };
            outcome.outbox_rows_deleted += sqlx::query("DELETE FROM outbox WHERE contact_id = $1")
                .bind(contact)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM contacts WHERE id = $1")
                .bind(contact)
                .execute(&mut *tx)
                .await?;
            if let Some(hash) = hash {
                for statement in [
                    "DELETE FROM bounces WHERE email_hash = $1",
                    "DELETE FROM engagements WHERE email_hash = $1",
                    "UPDATE optouts SET email = NULL, detail = NULL WHERE email_hash = $1",
                ] {
                    sqlx::query(statement).bind(&hash).execute(&mut *tx).await?;
                }
                super::suppressions::forget_address(&mut tx, &hash).await?;
            }
            outcome.contacts_deleted += 1;
        }
        tx.commit().await?;
        self.scrub_deleted().await?;
        Ok(outcome)
    }

    /// Status and activity counts per register.
    pub async fn register_counts(
        &self,
        unengaged_after: i64,
    ) -> Result<BTreeMap<String, RegisterCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.register, c.status,
                    (SELECT COUNT(*) FROM outbox o WHERE o.contact_id = c.id AND o.state = 'sent') AS sends,
                    CASE WHEN EXISTS (SELECT 1 FROM engagements e WHERE e.email_hash = c.email_hash)
                         THEN 1 ELSE 0 END AS engaged,
                    CASE WHEN EXISTS (SELECT 1 FROM bounces b WHERE b.email_hash = c.email_hash AND b.kind = 'dsn')
                         THEN 1 ELSE 0 END AS bounced
               FROM memberships m JOIN contacts c ON c.id = m.contact_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out: BTreeMap<String, RegisterCounts> = BTreeMap::new();
        for r in rows {
            let counts = out.entry(r.get("register")).or_default();
            match r.get::<String, _>("status").as_str() {
                "passive" => counts.passive += 1,
                "ceased" => counts.ceased += 1,
                _ => counts.active += 1,
            }
            let sends: i64 = r.get("sends");
            if sends == 0 {
                counts.never_sent += 1;
            }
            if sends >= unengaged_after
                && r.get::<i64, _>("engaged") == 0
                && r.get::<i64, _>("bounced") == 0
            {
                counts.unengaged += 1;
            }
        }
        Ok(out)
    }
}

/// An [`EntryAge`] from a row of memberships ⋈ contacts with `last_sent`.
/// The `status` and `reason` columns of a row of memberships ⋈ contacts ⋈ suppressions.
fn contact_facts(
    r: &sqlx::any::AnyRow,
) -> Result<(ContactStatus, Option<SuppressionReason>), StoreError> {
    let id: i64 = r.get("contact_id");
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        table: "contacts/suppressions",
        column,
        id,
        value,
    };
    let status: String = r.get("status");
    let status = ContactStatus::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?;
    let reason: Option<String> = r.get("reason");
    let suppressed = match reason {
        None => None,
        Some(r) => Some(SuppressionReason::parse(&r).ok_or_else(|| corrupt("reason", r.clone()))?),
    };
    Ok((status, suppressed))
}

fn entry_from_row(r: &sqlx::any::AnyRow) -> EntryAge {
    EntryAge {
        membership_id: r.get("id"),
        contact_id: r.get("contact_id"),
        register: r.get("register"),
        email: r.get("email"),
        created_at: r.get("created_at"),
        last_sent_at: r.get("last_sent"),
    }
}
