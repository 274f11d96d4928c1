//! The send loop's writer on an SQLite file, through a connection of its own that blocks its
//! caller (the send loop runs it on a thread of its own): each burst is one transaction of
//! prepared single-row statements. Through sqlx each statement went to a connection's worker
//! thread and each returned row came back on its own, and the statement was the large
//! `UPDATE … FROM (VALUES …)` the pooled path needs to save round trips; here there is no
//! round trip to save. It writes what `OutboxWriter::write` writes, with the same conditions:
//! nothing else.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, params};

use super::StoreError;
use super::outbox::{SendingRow, SentRecord, TransportKind};

/// A delivered message: the row leaves `sending` whatever state it is in now (the record is
/// the truth about the transaction), as in the shared statement.
const RECORD_SENT: &str = "UPDATE outbox SET state = 'sent', smtp_reply = ?1, message_id = ?2,
        latency_ms = ?3, sent_at = ?4, last_error = NULL, lease_owner = NULL,
        lease_until = NULL, updated_at = ?4
  WHERE id = ?5";

/// A row moves to `sending` only under this worker's lease, from a due state, while its
/// campaign is active. `OR FAIL`: a single-row statement has nothing of its own to undo on an
/// error (the whole burst is rolled back), so SQLite keeps no statement journal for it.
const BEGIN_SENDING: &str = "UPDATE OR FAIL outbox SET state = 'sending', claimed_by = ?1,
        attempts = attempts + 1, transport = ?2, updated_at = ?3
  WHERE id = ?4 AND lease_owner = ?1 AND state IN ('queued', 'deferred')
    AND (SELECT k.run_state FROM campaigns k WHERE k.id = outbox.campaign_id) = 'active'";

/// What may still forbid the transaction of a row just moved to `sending`, read in the same
/// transaction: its attempt number, the contact's status and any suppression of the address.
/// (A RETURNING clause would read the same, through a temporary table per statement.)
const SENDING_FACTS: &str = "SELECT o.attempts,
        (SELECT c.status FROM contacts c WHERE c.id = o.contact_id),
        (SELECT s.reason FROM contacts c JOIN suppressions s ON s.email_hash = c.email_hash
          WHERE c.id = o.contact_id)
   FROM outbox o WHERE o.id = ?1";

/// The send loop's writer on an SQLite file. Its calls block: run it on a thread of its own.
pub struct NativeOutboxWriter {
    conn: Connection,
    /// The store's turn to write (one writer at a time in this process).
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl NativeOutboxWriter {
    /// Opens the database file at `path` (already created and migrated by the pool, in WAL
    /// mode) with the pool's connection settings.
    pub(super) fn open(path: &Path, turn: Arc<tokio::sync::Mutex<()>>) -> Result<Self, StoreError> {
        let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        Ok(Self { conn, turn })
    }

    /// What [`super::OutboxWriter::write`] writes, with the same conditions and answer, in one
    /// transaction, blocking until it is committed. Never call it on the async runtime.
    pub fn write(
        &mut self,
        sent: &[SentRecord],
        begin: &[i64],
        worker: &str,
        transport: TransportKind,
    ) -> Result<BTreeMap<i64, SendingRow>, StoreError> {
        let _turn = self.turn.blocking_lock();
        write(&mut self.conn, sent, begin, worker, transport)
    }
}

/// One transaction: every record, then every move to `sending`; rolled back whole on an error.
fn write(
    conn: &mut Connection,
    sent: &[SentRecord],
    begin: &[i64],
    worker: &str,
    transport: TransportKind,
) -> Result<BTreeMap<i64, SendingRow>, StoreError> {
    let now = crate::now_millis();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(native)?;
    let mut started = BTreeMap::new();
    {
        let mut record = tx.prepare_cached(RECORD_SENT).map_err(native)?;
        for sent in sent {
            record
                .execute(params![
                    sent.reply,
                    sent.message_id,
                    sent.latency_ms,
                    now,
                    sent.outbox_id
                ])
                .map_err(native)?;
        }
        let mut begin_sending = tx.prepare_cached(BEGIN_SENDING).map_err(native)?;
        let mut facts = tx.prepare_cached(SENDING_FACTS).map_err(native)?;
        for &id in begin {
            let moved = begin_sending
                .execute(params![worker, transport.as_str(), now, id])
                .map_err(native)?;
            if moved == 0 {
                continue;
            }
            let mut rows = facts.query(params![id]).map_err(native)?;
            if let Some(row) = rows.next().map_err(native)? {
                let answered = SendingRow::from_answer(
                    id,
                    row.get(0).map_err(native)?,
                    row.get(1).map_err(native)?,
                    row.get(2).map_err(native)?,
                )?;
                started.insert(id, answered);
            }
        }
    }
    tx.commit().map_err(native)?;
    Ok(started)
}

/// A connection of the send loop's own to the database file at `path` (already created and
/// migrated by the pool, in WAL mode), with the pool's connection settings.
pub(super) fn open_connection(path: &Path, access: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(native)?;
    conn.execute_batch(super::SQLITE_CONNECTION_PRAGMAS)
        .map_err(native)?;
    Ok(conn)
}

pub(super) fn native(e: rusqlite::Error) -> StoreError {
    StoreError::Native(e.to_string())
}
