//! The record of messages taken from an IMAP bounce mailbox (`mailbox_handled`): each is
//! written in the same transaction as the message's effects, so whatever happens between that
//! commit and the message's move on the server, the message never counts twice.

use super::{InboundTx, Store, StoreError};

/// One message of a mailbox, as IMAP names it for good: a UID is never reused while the
/// mailbox keeps its UIDVALIDITY (RFC 3501 §2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxMessage<'a> {
    /// Which server and login (`user@host:port`), so two accounts' UIDs never meet.
    pub account: &'a str,
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

impl Store {
    /// Whether this mailbox message's effects are already committed.
    pub async fn mailbox_handled(&self, m: &MailboxMessage<'_>) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT uid FROM mailbox_handled
              WHERE account = $1 AND mailbox = $2 AND uidvalidity = $3 AND uid = $4",
        )
        .bind(m.account)
        .bind(m.mailbox)
        .bind(i64::from(m.uidvalidity))
        .bind(i64::from(m.uid))
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }
}

impl InboundTx {
    /// Records a mailbox message as handled, in the transaction of its effects; false when it
    /// was recorded before (its effects are then already committed).
    pub async fn record_mailbox_message(
        &mut self,
        m: &MailboxMessage<'_>,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let recorded = sqlx::query(
            "INSERT INTO mailbox_handled
                 (account, mailbox, uidvalidity, uid, fingerprint, handled_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account, mailbox, uidvalidity, uid) DO NOTHING",
        )
        .bind(m.account)
        .bind(m.mailbox)
        .bind(i64::from(m.uidvalidity))
        .bind(i64::from(m.uid))
        .bind(fingerprint)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(recorded == 1)
    }
}
