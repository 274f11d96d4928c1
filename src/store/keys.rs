//! The key pin: one row holding the wrapped data key and the master secret's fingerprint.
//! `suppress::keys` decides what goes in it; this file only reads and writes the row.

use sqlx::Row;

use super::{Store, StoreError};

/// The stored key record (all fields hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPin {
    pub fingerprint: String,
    pub salt: String,
    pub wrapped_key: String,
    pub key_check: String,
}

impl Store {
    pub async fn key_pin(&self) -> Result<Option<KeyPin>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, salt, wrapped_key, key_check FROM key_pin WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| KeyPin {
            fingerprint: r.get("fingerprint"),
            salt: r.get("salt"),
            wrapped_key: r.get("wrapped_key"),
            key_check: r.get("key_check"),
        }))
    }

    /// Stores the first pin; when another process pinned first, theirs stays. Returns the pin
    /// in force.
    pub async fn pin_key(&self, pin: &KeyPin) -> Result<KeyPin, StoreError> {
        sqlx::query(
            "INSERT INTO key_pin (id, fingerprint, salt, wrapped_key, key_check, created_at)
             VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&pin.fingerprint)
        .bind(&pin.salt)
        .bind(&pin.wrapped_key)
        .bind(&pin.key_check)
        .bind(crate::now_millis())
        .execute(self.pool())
        .await?;
        Ok(self.key_pin().await?.unwrap_or_else(|| pin.clone()))
    }

    /// Replaces the pin made with the master of fingerprint `old_fingerprint`; false when the
    /// pin in force is another one (nothing changed).
    pub async fn repin_key(&self, old_fingerprint: &str, pin: &KeyPin) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE key_pin SET fingerprint = $1, salt = $2, wrapped_key = $3, key_check = $4,
                    rotated_at = $5
              WHERE id = 1 AND fingerprint = $6",
        )
        .bind(&pin.fingerprint)
        .bind(&pin.salt)
        .bind(&pin.wrapped_key)
        .bind(&pin.key_check)
        .bind(crate::now_millis())
        .bind(old_fingerprint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 1 {
            let detail = format!("master fingerprint {old_fingerprint} → {}", pin.fingerprint);
            let now = crate::now_millis();
            super::ops::write_audit(
                &mut tx,
                now,
                "keys rotate",
                "key_rotated",
                "key pin",
                Some(&detail),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Whether the database already holds hashes or tokens made before keys were pinned
    /// (a database from an earlier fairsend): its data key is then the master secret itself.
    pub async fn holds_unpinned_data(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM contacts) + (SELECT COUNT(*) FROM suppressions)
                  + (SELECT COUNT(*) FROM outbox)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }
}
