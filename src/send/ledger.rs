//! The one writer of a worker's outbox transitions on the send path: rows moved to `sending`
//! just before their transactions, and delivered messages recorded. Every request that
//! arrives while the previous write runs goes into the next one (group commit): one
//! statement per burst of messages, on one connection kept for the whole run, rather than
//! two per message. It decides nothing: the send loop says what to write, `store` writes it.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use crate::store::{OutboxWriter, SendingRow, SentRecord, Store, StoreError, TransportKind};

type Started = Result<Option<SendingRow>, String>;

enum Entry {
    /// Move this row to `sending`; the answer says whether it may be sent and what was read.
    Begin(i64, oneshot::Sender<Started>),
    /// This message was delivered: record it with the next commit.
    Sent(SentRecord),
}

/// A handle to the writer task of one batch of a worker's run.
pub(super) struct Ledger {
    sender: mpsc::UnboundedSender<Entry>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl Ledger {
    /// The channel needs no bound of its own: every sender waits for its `begin` and its
    /// record, so no more entries are pending than rows in the pipeline.
    pub(super) fn start(store: &Store, worker: &str, transport: TransportKind) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (store, worker) = (store.clone(), worker.to_string());
        let task = tokio::spawn(write_loop(store, worker, transport, receiver));
        Self { sender, task }
    }

    /// Moves `outbox_id` to `sending`, committed before this returns. `None`: the row is no
    /// longer this worker's to send, or the campaign was paused or cancelled.
    pub(super) async fn begin(&self, outbox_id: i64) -> Result<Option<SendingRow>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Entry::Begin(outbox_id, reply))
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|e| StoreError::Sql(sqlx::Error::Protocol(e)))
    }

    /// Records a delivered message with the next commit, without waiting for it. The place
    /// the row held in the pipeline passes on at once, and the rows a kill can leave in
    /// `sending` still stay within the pipeline's depth: entries are written in the order they
    /// arrive, so the move to `sending` of the row that takes this place is committed with
    /// this record or after it. Every row unrecorded at a commit therefore belongs to a place
    /// that was taken when the commit began. A record not yet committed when the process dies
    /// leaves its row in `sending`, resolved like any interrupted transaction (never resent
    /// blindly).
    pub(super) fn record(&self, sent: SentRecord) -> Result<(), StoreError> {
        self.sender.send(Entry::Sent(sent)).map_err(|_| stopped())
    }

    /// Waits until everything recorded is committed.
    pub(super) async fn finish(self) -> Result<(), StoreError> {
        drop(self.sender);
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Sql(sqlx::Error::Protocol(format!(
                "the writer of the outbox stopped: {e}"
            )))),
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Sql(sqlx::Error::Protocol(
        "the writer of the outbox stopped".into(),
    ))
}

/// Takes everything waiting, writes it in one statement and answers every move to `sending`
/// once it is committed, and again. A failed write fails the rows it would have started; if it carried
/// records it also ends the loop with the error (the run stops; the unrecorded rows stay in
/// `sending`).
async fn write_loop(
    store: Store,
    worker: String,
    transport: TransportKind,
    mut receiver: mpsc::UnboundedReceiver<Entry>,
) -> Result<(), StoreError> {
    let (mut sent, mut begin) = (Vec::new(), Vec::new());
    // A connection of its own, taken when there is something to write.
    let mut writer: Option<OutboxWriter> = None;
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(entry) = next {
            match entry {
                Entry::Begin(id, reply) => begin.push((id, reply)),
                Entry::Sent(record) => sent.push(record),
            }
            next = receiver.try_recv().ok();
        }
        let writer = match &mut writer {
            Some(writer) => writer,
            None => match store.outbox_writer().await {
                Ok(new) => writer.insert(new),
                Err(e) => {
                    fail_all(&mut begin, &e);
                    if !sent.is_empty() {
                        return Err(e);
                    }
                    continue;
                }
            },
        };
        // One statement for both: a record frees its row's place in the pipeline, a begin
        // takes one, and one commit carries them.
        let ids: Vec<i64> = begin.iter().map(|(id, _)| *id).collect();
        match writer.write(&sent, &ids, &worker, transport).await {
            Ok(started) => answer(&mut begin, started),
            Err(e) => {
                fail_all(&mut begin, &e);
                if !sent.is_empty() {
                    return Err(e);
                }
            }
        }
        sent.clear();
    }
    Ok(())
}

fn fail_all(begin: &mut Vec<(i64, oneshot::Sender<Started>)>, e: &StoreError) {
    let why = e.to_string();
    for (_, reply) in begin.drain(..) {
        let _ = reply.send(Err(why.clone()));
    }
}

fn answer(
    begin: &mut Vec<(i64, oneshot::Sender<Started>)>,
    mut started: BTreeMap<i64, SendingRow>,
) {
    for (id, reply) in begin.drain(..) {
        let _ = reply.send(Ok(started.remove(&id)));
    }
}
