//! The record of messages taken from an IMAP bounce mailbox (`mailbox_handled`): each is
//! written in the same transaction as the message's effects, so whatever happens between that
//! commit and the message's move on the server, the message never counts twice.

use super::{AppliedInbound, InboundEffects, Store, StoreError};

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

    /// Applies a mailbox message's effects and records the message as handled, in one
    /// transaction. A message recorded before changes nothing (`duplicate`), and so does one
    /// whose bytes were ingested before by any path (the fingerprint rule of `apply_inbound`),
    /// though it is then recorded as handled.
    pub async fn apply_inbound_from_mailbox(
        &self,
        m: &MailboxMessage<'_>,
        effects: &InboundEffects,
    ) -> Result<AppliedInbound, StoreError> {
        let mut tx = self.begin_write().await?;
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
        .bind(&effects.fingerprint)
        .bind(crate::now_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if recorded == 0 {
            return Ok(AppliedInbound {
                duplicate: true,
                ..Default::default()
            });
        }
        let applied = Self::apply_effects(&mut tx, effects).await?;
        tx.commit().await?;
        Ok(applied)
    }
}
