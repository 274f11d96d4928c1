//! A worker's send loop as a pipeline: one side claims due rows a batch ahead and hands them
//! on with their recipients; the other delivers them, three times as many at once as there
//! are lanes to the mail server, so that while one message of a lane is on the wire the next
//! row is committed to `sending` and the one before has its delivery recorded. A row keeps its
//! place until its record is handed to the writer, which commits it with the move to
//! `sending` of the row that takes the place or before it, so a kill -9 can leave at most three
//! times `concurrency` rows in `sending` (see `deliver_all` and `Ledger::record`). Nothing
//! waits at a batch's end for the slowest transaction, and the server never waits for the
//! database. Messages are composed and gated on a thread of their own, a few rows at a time,
//! as the rows are handed on: composing is a third of a message's CPU, and on the loop's
//! thread it would hold the wire up. On an SQLite file that thread also reads the rows'
//! recipients, just before composing them, through a connection of its own (elsewhere the
//! feeding side reads them per batch). What happens to each row is still decided by
//! `send_one` (eligibility again at the move to `sending`); this module only keeps the rows
//! flowing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};

use super::ledger::Ledger;
use super::{Run, SendError, SendReport, compose_and_gate, send_one};
use crate::compliance::{Gate, GatedMessage};
use crate::compose::Composer;
use crate::model::Phase;
use crate::store::{NativeRecipientReader, RecipientGate, StoreError};

/// A row handed to the senders: its recipient as read just before composing (none if the
/// contact is gone) and its message, composed and gated.
struct Row {
    outbox_id: i64,
    gate: Option<RecipientGate>,
    composed: Option<Result<GatedMessage, String>>,
}

/// Rows composed per hand-off to the composing thread: small enough that the first of a batch
/// reach the senders at once, large enough that the hand-offs cost little.
const COMPOSE_CHUNK: usize = 16;

/// Chunks handed to the composing thread and not yet handed on: enough that it never waits,
/// few enough that composed messages (about 17 kB each, three times the wire size) do not pile
/// up — a whole batch composed ahead held 40 MiB more on a 1M send.
const CHUNKS_AHEAD: usize = 2;

/// The thread that composes and gates messages, with a composer of its own; on an SQLite file
/// it also reads the rows' recipients, through a connection of its own, just before.
struct Composing {
    jobs: std::sync::mpsc::Sender<ComposeJob>,
    reads_recipients: bool,
}

struct ComposeJob {
    outbox_ids: Vec<i64>,
    /// The rows' recipients, if read already (else the thread reads them).
    recipients: Option<BTreeMap<i64, RecipientGate>>,
    done: oneshot::Sender<Result<Vec<Row>, StoreError>>,
}

impl Composing {
    fn start(
        composer: Composer,
        compliance: Gate,
        reader: Option<NativeRecipientReader>,
    ) -> Result<Self, SendError> {
        let (jobs, queue) = std::sync::mpsc::channel::<ComposeJob>();
        let reads_recipients = reader.is_some();
        let mut reader = reader;
        std::thread::Builder::new()
            .name("fairsend-compose".into())
            .spawn(move || {
                for job in queue {
                    let recipients = match (job.recipients, reader.as_mut()) {
                        (Some(read), _) => Ok(read),
                        (None, Some(reader)) => reader.recipients(&job.outbox_ids),
                        // The feeding side reads them whenever this thread has no reader.
                        (None, None) => Err(StoreError::Native(
                            "the recipients of these rows were not read".into(),
                        )),
                    };
                    let rows = recipients.map(|mut recipients| {
                        let composed = job.outbox_ids.into_iter().map(|outbox_id| {
                            let gate = recipients.remove(&outbox_id);
                            Row {
                                composed: gate.as_ref().map(|recipient| {
                                    compose_and_gate(&composer, &compliance, recipient)
                                }),
                                outbox_id,
                                gate,
                            }
                        });
                        composed.collect()
                    });
                    // The run may have ended meanwhile; then nobody wants these.
                    let _ = job.done.send(rows);
                }
            })
            .map_err(|e| SendError::Composing(e.to_string()))?;
        Ok(Self {
            jobs,
            reads_recipients,
        })
    }

    /// Hands `outbox_ids` to the thread, with their `recipients` unless it reads them itself:
    /// the receiver yields the rows composed, in order.
    fn compose(
        &self,
        outbox_ids: Vec<i64>,
        recipients: Option<BTreeMap<i64, RecipientGate>>,
    ) -> oneshot::Receiver<Result<Vec<Row>, StoreError>> {
        let (done, composed) = oneshot::channel();
        // A send fails only if the thread is gone; the receiver then says so.
        let _ = self.jobs.send(ComposeJob {
            outbox_ids,
            recipients,
            done,
        });
        composed
    }
}

/// The rows between their claim and their outcome. A claim may return rows of this worker's
/// own leases (rows a pause or a closed window left unsent are taken up again that way), so
/// the rows already in the pipeline are left out of it.
#[derive(Default)]
struct InPipeline {
    rows: Mutex<HashSet<i64>>,
    /// Woken whenever a row leaves.
    left: Notify,
}

impl InPipeline {
    /// The claimed rows not already in the pipeline, now in it.
    fn admit(&self, claimed: Vec<i64>) -> Vec<i64> {
        let Ok(mut rows) = self.rows.lock() else {
            return Vec::new();
        };
        claimed.into_iter().filter(|id| rows.insert(*id)).collect()
    }

    fn leave(&self, id: i64) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        rows.remove(&id);
        self.left.notify_waiters();
    }

    fn len(&self) -> usize {
        self.rows.lock().map(|rows| rows.len()).unwrap_or(0)
    }

    async fn drained(&self) {
        self.below(0).await;
    }

    /// Returns once at most `count` rows are in the pipeline.
    async fn below(&self, count: usize) {
        loop {
            let left = self.left.notified();
            if self.len() <= count {
                return;
            }
            left.await;
        }
    }
}

impl Run<'_> {
    /// Sends every due row (of `phase`, if given), waiting within the run for rows that come
    /// due within `wait_in_run`.
    pub(super) async fn pipelined_phase(
        &self,
        report: &mut SendReport,
        phase: Option<Phase>,
    ) -> Result<(), SendError> {
        let ledger = Ledger::start(self.store, self.worker, self.transport.kind()).await?;
        let composing = Composing::start(
            self.composer.clone(),
            self.gate.clone(),
            self.store.native_recipient_reader().await?,
        )?;
        let in_pipeline = InPipeline::default();
        // Composed rows waiting for a sender: no more than the composing thread keeps ahead.
        let (rows, queue) = mpsc::channel(CHUNKS_AHEAD * COMPOSE_CHUNK);
        // The senders show progress from a copy; the feeding side records in the report what
        // it finds (dead workers' rows resolved, a cancellation, the next window).
        let shown = report.clone();
        let (fed, ()) = tokio::join!(
            self.feed(report, phase, &in_pipeline, &composing, rows),
            self.deliver_all(&shown, queue, &ledger, &in_pipeline),
        );
        let recorded = ledger.finish().await;
        if recorded.is_err() {
            self.options.stop.store(true, Ordering::SeqCst);
        }
        fed?;
        Ok(recorded?)
    }

    /// Claims due rows a batch at a time and hands them on with their recipients, until none
    /// is due (and none will be within `wait_in_run`), the run stops, or the campaign may not
    /// send (paused: waits; cancelled or outside its window with `--no-wait`: ends).
    async fn feed(
        &self,
        report: &mut SendReport,
        phase: Option<Phase>,
        in_pipeline: &InPipeline,
        composing: &Composing,
        rows: mpsc::Sender<Row>,
    ) -> Result<(), SendError> {
        let batch = self.batch_size();
        loop {
            if self.options.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if !self.wait_until_it_may_send(report).await? {
                return Ok(());
            }
            // Keep between half a batch and a batch in the pipeline: enough that the senders
            // never wait for a claim, few enough that other workers get their share.
            let low_water = (batch as usize / 2).max(1);
            if in_pipeline.len() > low_water {
                in_pipeline.below(low_water).await;
            }
            let now = crate::now_millis();
            let held = in_pipeline.len();
            let claimed = self.claim(report, now, batch, phase).await?;
            let due = in_pipeline.admit(claimed);
            self.counters
                .claimed
                .fetch_add(due.len() as u64, Ordering::Relaxed);
            if due.is_empty() {
                if held > 0 {
                    // What is in flight may yet come back (deferred, or left by a pause).
                    in_pipeline.drained().await;
                    continue;
                }
                if !self.wait_for_due(now, phase).await? {
                    return Ok(());
                }
                continue;
            }
            // Read here through the pool, unless the composing thread reads them itself.
            let mut recipients = match composing.reads_recipients {
                true => None,
                false => Some(self.store.recipients(&due).await?),
            };
            let mut chunks = due.chunks(COMPOSE_CHUNK).map(|chunk| {
                let read = recipients.as_mut().map(|recipients| {
                    chunk
                        .iter()
                        .filter_map(|id| recipients.remove_entry(id))
                        .collect()
                });
                (chunk.to_vec(), read)
            });
            let mut ahead = std::collections::VecDeque::new();
            loop {
                while ahead.len() < CHUNKS_AHEAD {
                    let Some((chunk, read)) = chunks.next() else {
                        break;
                    };
                    ahead.push_back(composing.compose(chunk, read));
                }
                let Some(chunk) = ahead.pop_front() else {
                    break;
                };
                let chunk = chunk
                    .await
                    .map_err(|_| SendError::Composing("it ended without a reply".into()))??;
                for row in chunk {
                    if rows.send(row).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Delivers the rows handed on, each through `send_one`, counting every outcome.
    async fn deliver_all(
        &self,
        shown: &SendReport,
        queue: mpsc::Receiver<Row>,
        ledger: &Ledger,
        in_pipeline: &InPipeline,
    ) {
        // The bound of rows in `sending` (README, "Crash safety"): per lane, one on the wire,
        // the next committed ahead (its commands may already ride behind the one on the
        // wire), and the last delivered one until its record is handed to the writer (which
        // commits it no later than the move of the row that takes the place).
        let depth = 3 * self.config.settings.transport.concurrency;
        let rows = futures_util::stream::unfold(queue, |mut queue| async move {
            queue.recv().await.map(|row| (row, queue))
        });
        rows.for_each_concurrent(depth, |row| async move {
            let outbox_id = row.outbox_id;
            // A stopped run, or a window that closed, leaves the row leased and unsent: the
            // next claim (after the window opens) takes it up again.
            let go = !self.options.stop.load(Ordering::SeqCst)
                && self.options.schedule.is_open(crate::schedule_now());
            if go {
                let outcome = send_one(self, ledger, outbox_id, row.gate, row.composed).await;
                self.tally(shown, outbox_id, outcome);
            }
            in_pipeline.leave(outbox_id);
        })
        .await;
    }
}
