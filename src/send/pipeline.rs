//! A worker's send loop as a pipeline: one side claims due rows and reads their recipients a
//! batch ahead; the other composes, gates and delivers them, twice as many at once as there
//! are lanes to the mail server, so that while one message of a lane is on the wire the next
//! is composed and its row committed to `sending`. Nothing waits at a batch's end for the
//! slowest transaction, and the server never waits for the database. What happens to each
//! row is still decided by `send_one`; this module only keeps the rows flowing.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

use super::ledger::Ledger;
use super::{Run, SendError, SendReport, send_one};
use crate::model::Phase;
use crate::store::RecipientGate;

type Row = (i64, Option<RecipientGate>);

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
        let batch = self.batch_size();
        let ledger = Ledger::start(self.store, self.worker, self.transport.kind());
        let in_pipeline = InPipeline::default();
        let (rows, queue) = mpsc::channel(batch as usize);
        // The senders show progress from a copy; the feeding side records in the report what
        // it finds (dead workers' rows resolved, a cancellation, the next window).
        let shown = report.clone();
        let (fed, ()) = tokio::join!(
            self.feed(report, phase, &in_pipeline, rows),
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
            let mut gates = self.store.recipients(&due).await?;
            for id in due {
                if rows.send((id, gates.remove(&id))).await.is_err() {
                    return Ok(());
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
        let depth = 2 * self.config.settings.transport.concurrency;
        let rows = futures_util::stream::unfold(queue, |mut queue| async move {
            queue.recv().await.map(|row| (row, queue))
        });
        rows.for_each_concurrent(depth, |(outbox_id, gate)| async move {
            // A stopped run, or a window that closed, leaves the row leased and unsent: the
            // next claim (after the window opens) takes it up again.
            let go = !self.options.stop.load(Ordering::SeqCst)
                && self.options.schedule.is_open(crate::schedule_now());
            if go {
                let outcome = send_one(self, ledger, outbox_id, gate).await;
                self.tally(shown, outbox_id, outcome);
            }
            in_pipeline.leave(outbox_id);
        })
        .await;
    }
}
