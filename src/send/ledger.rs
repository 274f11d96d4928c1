//! The one writer of a worker's outbox transitions on the send path: rows moved to `sending`
//! just before their transactions, and delivered messages recorded. Every request that
//! arrives while the previous write runs goes into the next one (group commit): one commit
//! per burst of messages, on one connection kept for the whole run, rather than two per
//! message. It decides nothing: the send loop says what to write, `store` writes it.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

use crate::store::{
    NativeOutboxWriter, OutboxWriter, SendingRow, SentRecord, Store, StoreError, TransportKind,
};

type Started = Result<Option<SendingRow>, String>;

enum Entry {
    /// Move this row to `sending`; the answer says whether it may be sent and what was read.
    Begin(i64, oneshot::Sender<Started>),
    /// This message was delivered: record it with the next commit.
    Sent(SentRecord),
}

/// A handle to the writer of one phase of a worker's run.
pub(super) struct Ledger {
    sender: mpsc::UnboundedSender<Entry>,
    writer: Writer,
}

/// Where the writer runs: on an SQLite file a thread of its own, whose writes block it and
/// nothing else (a burst goes from the senders to the database and back in one hand-off each
/// way); otherwise a task on the runtime, writing through the pool.
enum Writer {
    Thread(oneshot::Receiver<Result<(), StoreError>>),
    Task(tokio::task::JoinHandle<Result<(), StoreError>>),
}

impl Ledger {
    /// The channel needs no bound of its own: every sender waits for its `begin`, and a
    /// place's record goes before the `begin` of the row that takes the place, so no more
    /// entries are pending than twice the rows in the pipeline.
    pub(super) async fn start(
        store: &Store,
        worker: &str,
        transport: TransportKind,
    ) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let worker = worker.to_string();
        let writer = match store.native_outbox_writer().await? {
            Some(native) => {
                let (done, finished) = oneshot::channel();
                std::thread::Builder::new()
                    .name("fairsend-ledger".into())
                    .spawn(move || {
                        let _ = done.send(write_on_thread(native, worker, transport, receiver));
                    })
                    .map_err(|e| {
                        StoreError::Native(format!("cannot start the outbox writer's thread: {e}"))
                    })?;
                Writer::Thread(finished)
            }
            None => Writer::Task(tokio::spawn(write_loop(
                store.clone(),
                worker,
                transport,
                receiver,
            ))),
        };
        Ok(Self { sender, writer })
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
        let stopped_early = |e: String| {
            StoreError::Sql(sqlx::Error::Protocol(format!(
                "the writer of the outbox stopped: {e}"
            )))
        };
        match self.writer {
            Writer::Thread(finished) => finished.await.map_err(|e| stopped_early(e.to_string()))?,
            Writer::Task(task) => task.await.map_err(|e| stopped_early(e.to_string()))?,
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Sql(sqlx::Error::Protocol(
        "the writer of the outbox stopped".into(),
    ))
}

/// The entries of one write: everything waiting when the writer got to it.
#[derive(Default)]
struct Burst {
    sent: Vec<SentRecord>,
    begin: Vec<(i64, oneshot::Sender<Started>)>,
}

impl Burst {
    /// `first` and everything else already waiting.
    fn gather(&mut self, first: Entry, receiver: &mut mpsc::UnboundedReceiver<Entry>) {
        let mut next = Some(first);
        while let Some(entry) = next {
            match entry {
                Entry::Begin(id, reply) => self.begin.push((id, reply)),
                Entry::Sent(record) => self.sent.push(record),
            }
            next = receiver.try_recv().ok();
        }
    }

    fn begin_ids(&self) -> Vec<i64> {
        self.begin.iter().map(|(id, _)| *id).collect()
    }

    /// Answers every move to `sending` with what the write did. A failed write fails the rows
    /// it would have started; if it carried records it ends the writer with the error (the
    /// run stops; the unrecorded rows stay in `sending`).
    fn settle(
        &mut self,
        written: Result<BTreeMap<i64, SendingRow>, StoreError>,
    ) -> Result<(), StoreError> {
        let recorded_any = !self.sent.is_empty();
        self.sent.clear();
        match written {
            Ok(started) => answer(&mut self.begin, started),
            Err(e) => {
                fail_all(&mut self.begin, &e);
                if recorded_any {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// The writer's loop on a thread of its own (an SQLite file): takes everything waiting,
/// writes it in one transaction, answers every move to `sending` once it is committed, and
/// again.
fn write_on_thread(
    mut writer: NativeOutboxWriter,
    worker: String,
    transport: TransportKind,
    mut receiver: mpsc::UnboundedReceiver<Entry>,
) -> Result<(), StoreError> {
    let mut burst = Burst::default();
    while let Some(first) = receiver.blocking_recv() {
        burst.gather(first, &mut receiver);
        let written = writer.write(&burst.sent, &burst.begin_ids(), &worker, transport);
        burst.settle(written)?;
    }
    Ok(())
}

/// The same loop as a task writing through the pool (one statement per burst).
async fn write_loop(
    store: Store,
    worker: String,
    transport: TransportKind,
    mut receiver: mpsc::UnboundedReceiver<Entry>,
) -> Result<(), StoreError> {
    let mut burst = Burst::default();
    // A connection of its own, taken when there is something to write.
    let mut writer: Option<OutboxWriter> = None;
    while let Some(first) = receiver.recv().await {
        burst.gather(first, &mut receiver);
        let written = async {
            let writer = match &mut writer {
                Some(writer) => writer,
                None => writer.insert(store.outbox_writer().await?),
            };
            let begin = burst.begin_ids();
            writer.write(&burst.sent, &begin, &worker, transport).await
        };
        let written = written.await;
        burst.settle(written)?;
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
