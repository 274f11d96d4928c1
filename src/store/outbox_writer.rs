//! The writer of a worker's send loop: delivered messages recorded and rows moved to
//! `sending`, one commit per burst, through a pooled connection kept for the run (on an SQLite
//! file the send loop uses `sqlite_ledger`'s writer instead). What to write is the send
//! loop's to decide.

use std::collections::BTreeMap;

use sqlx::Row;

use super::outbox::{OutboxState, SendingRow, SentRecord, TransportKind};
use super::sqlite_ledger::NativeOutboxWriter;
use super::{Store, StoreError};

impl Store {
    /// A writer of a worker's outbox transitions on a pooled connection of its own.
    pub async fn outbox_writer(&self) -> Result<OutboxWriter, StoreError> {
        Ok(OutboxWriter {
            conn: self.pool().acquire().await?,
            store: self.clone(),
        })
    }

    /// On an SQLite file, a writer of a worker's outbox transitions through a connection of
    /// its own that blocks its caller ([`NativeOutboxWriter`]); `None` on PostgreSQL and for a
    /// database in memory (which another connection could not open).
    pub async fn native_outbox_writer(&self) -> Result<Option<NativeOutboxWriter>, StoreError> {
        match self.sqlite_file().await? {
            Some(file) => Ok(Some(NativeOutboxWriter::open(&file, self.writer.clone())?)),
            None => Ok(None),
        }
    }
}

/// The writer of one worker's send loop through the pool. It keeps one connection for as
/// long as the loop runs: a page cache belongs to a connection, and every write through
/// another connection would make this one read its pages again.
pub struct OutboxWriter {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    store: Store,
}

impl OutboxWriter {
    /// One write of the send loop, committed by its own statement before this returns: the
    /// delivered messages of `sent` are recorded, and the rows of `begin` move to `sending`.
    ///
    /// A row moves to `sending` before any byte of its message goes to the mail server, so a
    /// crash can never lead to a blind resend; the same statement reads what may still forbid
    /// each transaction (the contact's status and any suppression, as of this instant). A
    /// paused or cancelled campaign starts no transaction: its rows stay as they are. Rows of
    /// `begin` missing from the answer are no longer this worker's to send (the lease ran out
    /// and another worker took the row, or it reached a final state).
    ///
    /// Both kinds of write go in one commit because each commit costs more than the rows it
    /// carries: on SQLite every page the transaction touched is appended to the WAL again, on
    /// PostgreSQL a commit waits for the WAL flush. Their pages are mostly the same (the rows
    /// of one batch, the same index leaves), so one commit writes them once. Through a pooled
    /// connection they go in one statement, which commits itself: BEGIN and COMMIT would be
    /// round trips of their own. ([`NativeOutboxWriter`] writes the same on an SQLite file.)
    pub async fn write(
        &mut self,
        sent: &[SentRecord],
        begin: &[i64],
        worker: &str,
        transport: TransportKind,
    ) -> Result<BTreeMap<i64, SendingRow>, StoreError> {
        let _turn = self.store.write_turn().await;
        let writes: Vec<LedgerWrite<'_>> = sent
            .iter()
            .map(LedgerWrite::Sent)
            .chain(begin.iter().map(|&id| LedgerWrite::Begin(id)))
            .collect();
        let mut started = BTreeMap::new();
        for chunk in writes.chunks(200) {
            write_ledger_chunk(&mut self.conn, chunk, worker, transport, &mut started).await?;
        }
        Ok(started)
    }
}

/// One row of an [`OutboxWriter::write`].
enum LedgerWrite<'a> {
    Sent(&'a SentRecord),
    Begin(i64),
}

/// `UPDATE … FROM (VALUES (id, kind, reply, message_id, latency_ms), …)`: kind 1 records a
/// delivered message (`sent`), kind 0 moves a row to `sending`; every column a kind does not
/// write keeps its value. VALUES columns are column1… on both engines.
const LEDGER_WRITE: &str = "UPDATE outbox SET
        state       = CASE WHEN v.column2 = 0 THEN 'sending' ELSE 'sent' END,
        claimed_by  = CASE WHEN v.column2 = 0 THEN $1 ELSE claimed_by END,
        attempts    = attempts + 1 - v.column2,
        transport   = CASE WHEN v.column2 = 0 THEN $3 ELSE transport END,
        smtp_reply  = CASE WHEN v.column2 = 0 THEN smtp_reply ELSE v.column3 END,
        message_id  = CASE WHEN v.column2 = 0 THEN message_id ELSE v.column4 END,
        latency_ms  = CASE WHEN v.column2 = 0 THEN latency_ms ELSE v.column5 END,
        sent_at     = CASE WHEN v.column2 = 0 THEN sent_at ELSE $2 END,
        last_error  = CASE WHEN v.column2 = 0 THEN last_error END,
        lease_owner = CASE WHEN v.column2 = 0 THEN lease_owner END,
        lease_until = CASE WHEN v.column2 = 0 THEN lease_until END,
        updated_at  = $2
   FROM (VALUES {values}) AS v
  WHERE outbox.id = v.column1
    AND (v.column2 = 1
         OR (outbox.lease_owner = $1 AND outbox.state IN ('queued', 'deferred')
             AND (SELECT k.run_state FROM campaigns k WHERE k.id = outbox.campaign_id) = 'active'))
 RETURNING id, attempts, state,
        CASE WHEN state = 'sending' THEN
             (SELECT c.status FROM contacts c WHERE c.id = outbox.contact_id) END AS status,
        CASE WHEN state = 'sending' THEN
             (SELECT s.reason FROM contacts c JOIN suppressions s ON s.email_hash = c.email_hash
               WHERE c.id = outbox.contact_id) END AS reason";

/// One statement of [`OutboxWriter::write`]; the rows it moved to `sending` go to `started`.
/// (SQLite's RETURNING cannot name the VALUES, so a row's new state tells the kinds apart.)
async fn write_ledger_chunk(
    conn: &mut sqlx::AnyConnection,
    chunk: &[LedgerWrite<'_>],
    worker: &str,
    transport: TransportKind,
    started: &mut BTreeMap<i64, SendingRow>,
) -> Result<(), StoreError> {
    let values = (0..chunk.len())
        .map(|i| format!("({})", super::numbered_placeholders(5 * i + 4, 5)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = LEDGER_WRITE.replace("{values}", &values);
    let mut query = sqlx::query(&sql)
        .bind(worker)
        .bind(crate::now_millis())
        .bind(transport.as_str());
    for write in chunk {
        query = match write {
            LedgerWrite::Sent(record) => query
                .bind(record.outbox_id)
                .bind(1_i64)
                .bind(&record.reply)
                .bind(&record.message_id)
                .bind(record.latency_ms),
            LedgerWrite::Begin(id) => query
                .bind(*id)
                .bind(0_i64)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<i64>),
        };
    }
    for row in query.fetch_all(&mut *conn).await? {
        if row.get::<String, _>("state") == OutboxState::Sending.as_str() {
            let id: i64 = row.get("id");
            let answered = SendingRow::from_answer(
                id,
                row.get("attempts"),
                row.get("status"),
                row.get("reason"),
            )?;
            started.insert(id, answered);
        }
    }
    Ok(())
}
