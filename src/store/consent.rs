//! Signup requests (double opt-in) and the proof of each confirmed consent: the statements of
//! `signup_requests`, `consent_proofs` and `consent_notices`. The signup use case
//! (`app::signup`) decides when to mail and what counts as confirmed; these functions make each
//! step atomic, so that concurrent requests for one address reserve at most one mail.

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::Locale;

/// A signup as the form submitted it, with the notice the person was shown.
#[derive(Debug, Clone)]
pub struct NewSignup<'a> {
    pub email_hash: &'a str,
    pub register: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub company: &'a str,
    pub locale: Locale,
    pub notice_sha256: &'a str,
    pub notice_version: &'a str,
    pub notice_text: &'a str,
    pub request_ip: Option<&'a str>,
}

/// What [`Store::reserve_signup`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Send the confirmation mail for request `id`, issued at `mailed_at`.
    Mail { id: i64, mailed_at: i64 },
    /// The address is a consenting member of the register already.
    AlreadyConfirmed,
    /// The address is suppressed (for any reason): no mail to it, ever, from the form.
    Suppressed,
    /// A confirmation mail was sent to it recently.
    RecentlyMailed,
}

/// A pending signup, as a confirmation link finds it.
#[derive(Debug, Clone)]
pub struct PendingSignup {
    pub id: i64,
    pub register: String,
    pub locale: Locale,
    pub mailed_at: i64,
    pub confirmed: bool,
}

/// How a confirmation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The contact now has legal basis `consent` in the register, with its proof.
    Confirmed {
        email: String,
        register: String,
    },
    AlreadyConfirmed,
    /// The request is gone or a newer link replaced this one.
    Unknown,
    Suppressed,
}

/// The proof of one consent, for `consent show`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentProof {
    pub register: String,
    pub requested_at: i64,
    pub confirmed_at: i64,
    pub notice_sha256: String,
    pub notice_version: String,
    pub locale: String,
    pub request_ip: Option<String>,
    pub confirm_ip: Option<String>,
    /// The notice text itself, when it is kept (it always is for proofs made by fairsend).
    pub notice_text: Option<String>,
}

impl Store {
    /// Reserves the confirmation mail of a signup, atomically: at most one mail per address
    /// and register per `resend_after_ms`, none to a suppressed or already consenting address.
    /// Unconfirmed requests whose links have expired (before `expired_before`) are deleted.
    pub async fn reserve_signup(
        &self,
        new: &NewSignup<'_>,
        resend_after_ms: i64,
        expired_before: i64,
    ) -> Result<Reservation, StoreError> {
        let now = crate::now_millis();
        let mut tx = self.begin_write().await?;
        delete_expired(&mut tx, expired_before).await?;
        if !super::suppressions::reasons_of(&mut tx, new.email_hash)
            .await?
            .is_empty()
        {
            return Ok(Reservation::Suppressed);
        }
        if consenting_member(&mut tx, new.email_hash, new.register).await? {
            return Ok(Reservation::AlreadyConfirmed);
        }
        let Some(id) =
            upsert_request(&mut tx, new, now, now.saturating_sub(resend_after_ms)).await?
        else {
            return Ok(Reservation::RecentlyMailed);
        };
        sqlx::query(
            "INSERT INTO consent_notices (sha256, register, locale, version, text, first_shown_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(new.notice_sha256)
        .bind(new.register)
        .bind(new.locale.as_str())
        .bind(new.notice_version)
        .bind(new.notice_text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reservation::Mail { id, mailed_at: now })
    }

    /// Deletes the unconfirmed requests mailed before `before` (their links have expired, and
    /// no new mail would be held back by them); returns how many.
    pub async fn delete_expired_signups(&self, before: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        delete_expired(&mut conn, before).await
    }

    /// Gives a reservation back when its mail could not be sent, so that the person may try
    /// again at once.
    pub async fn release_signup(&self, id: i64, mailed_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signup_requests SET mailed_at = 0 WHERE id = $1 AND mailed_at = $2 AND confirmed_at IS NULL",
        )
        .bind(id)
        .bind(mailed_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The request a link names, if it still exists.
    pub async fn pending_signup(&self, id: i64) -> Result<Option<PendingSignup>, StoreError> {
        let row = sqlx::query(
            "SELECT register, locale, mailed_at, confirmed_at FROM signup_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let locale: String = row.get("locale");
        Ok(Some(PendingSignup {
            id,
            register: row.get("register"),
            locale: Locale::parse(&locale).ok_or_else(|| StoreError::Corrupt {
                table: "signup_requests",
                column: "locale",
                id,
                value: locale.clone(),
            })?,
            mailed_at: row.get("mailed_at"),
            confirmed: row.get::<Option<i64>, _>("confirmed_at").is_some(),
        }))
    }

    /// Confirms request `id` (whose link was issued at `mailed_at`) in one transaction: the
    /// contact and its membership with legal basis `consent`, and the proof. The request keeps
    /// only its times afterwards; the person's data lives in the contact.
    pub async fn confirm_signup(
        &self,
        id: i64,
        mailed_at: i64,
        confirm_ip: Option<&str>,
    ) -> Result<Confirmation, StoreError> {
        let now = crate::now_millis();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT email_hash, register, email, name, company, locale, notice_sha256,
                    notice_version, request_ip, requested_at, mailed_at, confirmed_at
               FROM signup_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row.filter(|r| r.get::<i64, _>("mailed_at") == mailed_at) else {
            return Ok(Confirmation::Unknown);
        };
        if row.get::<Option<i64>, _>("confirmed_at").is_some() {
            return Ok(Confirmation::AlreadyConfirmed);
        }
        let email_hash: String = row.get("email_hash");
        if !super::suppressions::reasons_of(&mut tx, &email_hash)
            .await?
            .is_empty()
        {
            return Ok(Confirmation::Suppressed);
        }
        let contact_id = upsert_contact(&mut tx, &row, now).await?;
        upsert_consenting_membership(&mut tx, contact_id, &row, now).await?;
        insert_proof(&mut tx, &row, confirm_ip, now).await?;
        sqlx::query(
            "UPDATE signup_requests SET confirmed_at = $1, email = '', name = '', company = ''
              WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Confirmation::Confirmed {
            email: row.get("email"),
            register: row.get("register"),
        })
    }

    /// Every consent proof of an address, oldest first.
    pub async fn consent_proofs(&self, email_hash: &str) -> Result<Vec<ConsentProof>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.register, p.requested_at, p.confirmed_at, p.notice_sha256, p.notice_version,
                    p.locale, p.request_ip, p.confirm_ip, n.text
               FROM consent_proofs p LEFT JOIN consent_notices n ON n.sha256 = p.notice_sha256
              WHERE p.email_hash = $1 ORDER BY p.confirmed_at, p.register",
        )
        .bind(email_hash)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| ConsentProof {
                register: r.get("register"),
                requested_at: r.get("requested_at"),
                confirmed_at: r.get("confirmed_at"),
                notice_sha256: r.get("notice_sha256"),
                notice_version: r.get("notice_version"),
                locale: r.get("locale"),
                request_ip: r.get("request_ip"),
                confirm_ip: r.get("confirm_ip"),
                notice_text: r.get("text"),
            })
            .collect())
    }
}

async fn delete_expired(conn: &mut sqlx::AnyConnection, before: i64) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM signup_requests WHERE confirmed_at IS NULL AND mailed_at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes an address's signup requests and consent proofs (erasure).
pub(super) async fn erase(
    conn: &mut sqlx::AnyConnection,
    email_hash: &str,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for statement in [
        "DELETE FROM signup_requests WHERE email_hash = $1",
        "DELETE FROM consent_proofs WHERE email_hash = $1",
    ] {
        deleted += sqlx::query(statement)
            .bind(email_hash)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(deleted)
}

async fn consenting_member(
    conn: &mut sqlx::AnyConnection,
    email_hash: &str,
    register: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM memberships m JOIN contacts c ON c.id = m.contact_id
          WHERE c.email_hash = $1 AND m.register = $2 AND m.legal_basis = 'consent'",
    )
    .bind(email_hash)
    .bind(register)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// Inserts the request, or renews an earlier one whose mail is older than `resend_before`;
/// the id when a mail is due. The conditional upsert is one statement, so two requests at
/// the same instant cannot both win (PostgreSQL re-checks the condition on the locked row).
async fn upsert_request(
    conn: &mut sqlx::AnyConnection,
    new: &NewSignup<'_>,
    now: i64,
    resend_before: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO signup_requests (email_hash, register, email, name, company, locale,
                notice_sha256, notice_version, request_ip, requested_at, mailed_at, confirmed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, NULL)
         ON CONFLICT (email_hash, register) DO UPDATE SET
                email = excluded.email, name = excluded.name, company = excluded.company,
                locale = excluded.locale, notice_sha256 = excluded.notice_sha256,
                notice_version = excluded.notice_version, request_ip = excluded.request_ip,
                requested_at = excluded.requested_at, mailed_at = excluded.mailed_at,
                confirmed_at = NULL
          WHERE signup_requests.mailed_at < $11
         RETURNING id",
    )
    .bind(new.email_hash)
    .bind(new.register)
    .bind(new.email)
    .bind(new.name)
    .bind(new.company)
    .bind(new.locale.as_str())
    .bind(new.notice_sha256)
    .bind(new.notice_version)
    .bind(new.request_ip)
    .bind(now)
    .bind(resend_before)
    .fetch_optional(&mut *conn)
    .await?)
}

async fn upsert_contact(
    conn: &mut sqlx::AnyConnection,
    request: &sqlx::any::AnyRow,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO contacts (email, email_hash, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (email) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
    )
    .bind(request.get::<String, _>("email"))
    .bind(request.get::<String, _>("email_hash"))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

/// A new member gets the form's data; an existing member keeps its data and gains consent.
async fn upsert_consenting_membership(
    conn: &mut sqlx::AnyConnection,
    contact_id: i64,
    request: &sqlx::any::AnyRow,
    now: i64,
) -> Result<(), StoreError> {
    let name: String = request.get("name");
    let (first, last) = name.trim().split_once(' ').unwrap_or((name.trim(), ""));
    let consent_at = chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    sqlx::query(
        "INSERT INTO memberships (contact_id, register, first_name, last_name, company, locale,
                legal_basis, consent_at, fields, source, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'consent', $7, '{}', 'signup form', $8, $8)
         ON CONFLICT (contact_id, register) DO UPDATE SET
                legal_basis = 'consent', consent_at = excluded.consent_at,
                updated_at = excluded.updated_at",
    )
    .bind(contact_id)
    .bind(request.get::<String, _>("register"))
    .bind(first.trim())
    .bind(last.trim())
    .bind(request.get::<String, _>("company"))
    .bind(request.get::<String, _>("locale"))
    .bind(consent_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_proof(
    conn: &mut sqlx::AnyConnection,
    request: &sqlx::any::AnyRow,
    confirm_ip: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consent_proofs (email_hash, register, requested_at, confirmed_at,
                notice_sha256, notice_version, locale, request_ip, confirm_ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (email_hash, register) DO UPDATE SET
                requested_at = excluded.requested_at, confirmed_at = excluded.confirmed_at,
                notice_sha256 = excluded.notice_sha256, notice_version = excluded.notice_version,
                locale = excluded.locale, request_ip = excluded.request_ip,
                confirm_ip = excluded.confirm_ip",
    )
    .bind(request.get::<String, _>("email_hash"))
    .bind(request.get::<String, _>("register"))
    .bind(request.get::<i64, _>("requested_at"))
    .bind(now)
    .bind(request.get::<String, _>("notice_sha256"))
    .bind(request.get::<String, _>("notice_version"))
    .bind(request.get::<String, _>("locale"))
    .bind(request.get::<Option<String>, _>("request_ip"))
    .bind(confirm_ip)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
