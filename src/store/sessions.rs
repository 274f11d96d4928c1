//! Admin sessions and failed admin logins, for `serve`. Sessions live in the database so that
//! a logout or a new admin password ends them on every `serve` process sharing it; failed logins
//! are counted there for the same reason. What the limits are is decided in `web/`.

use super::{Store, StoreError};

/// Failed logins within a window: of one client, and of everyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub client_count: i64,
    pub client_last: Option<i64>,
    pub global_count: i64,
    pub global_last: Option<i64>,
}

impl Store {
    /// Records a new session; expired sessions are dropped on the way.
    pub async fn create_session(
        &self,
        token_hash: &str,
        password_tag: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions (token_hash, password_tag, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(password_tag)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether a session is open: known, opened under this password, not expired.
    pub async fn session_is_open(
        &self,
        token_hash: &str,
        password_tag: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM admin_sessions
              WHERE token_hash = $1 AND password_tag = $2 AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(password_tag)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session not opened under `password_tag`; returns how many.
    pub async fn end_sessions_of_other_passwords(
        &self,
        password_tag: &str,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM admin_sessions WHERE password_tag <> $1")
                .bind(password_tag)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Failed logins at or after `since`.
    pub async fn login_failures(
        &self,
        client: &str,
        since: i64,
    ) -> Result<LoginFailures, StoreError> {
        let (client_count, client_last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(failed_at) FROM login_failures
              WHERE client = $1 AND failed_at >= $2",
        )
        .bind(client)
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        let (global_count, global_last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(failed_at) FROM login_failures WHERE failed_at >= $1",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok(LoginFailures {
            client_count,
            client_last,
            global_count,
            global_last,
        })
    }

    /// Records a failed login and forgets those older than `forget_before`.
    pub async fn record_login_failure(
        &self,
        client: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
            .bind(forget_before)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO login_failures (client, failed_at) VALUES ($1, $2)")
            .bind(client)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A successful login clears the client's failures.
    pub async fn clear_login_failures(&self, client: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE client = $1")
            .bind(client)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
