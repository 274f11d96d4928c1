//! Receipts of provider webhooks: the id each request or event carries, remembered so that a
//! replayed one changes nothing. Which id counts, and for how long, is decided in `inbound/`.

use super::{Store, StoreError};

impl Store {
    /// Claims a receipt: true when it is new (and is now remembered), false when it was seen.
    /// Receipts received before `forget_before` are dropped on the way.
    pub async fn claim_webhook_receipt(
        &self,
        provider: &str,
        receipt: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM webhook_receipts WHERE received_at < $1")
            .bind(forget_before)
            .execute(self.pool())
            .await?;
        let new = sqlx::query(
            "INSERT INTO webhook_receipts (provider, receipt, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider, receipt) DO NOTHING",
        )
        .bind(provider)
        .bind(receipt)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(new == 1)
    }

    /// Gives a claimed receipt back, when recording its events failed: the provider's retry of
    /// the same request must then be accepted.
    pub async fn release_webhook_receipt(
        &self,
        provider: &str,
        receipt: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_receipts WHERE provider = $1 AND receipt = $2")
            .bind(provider)
            .bind(receipt)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
