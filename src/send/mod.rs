//! The campaign run: outbox materialisation, per-recipient SMTP transactions, rate limit,
//! retries, and the resolution of rows a killed run left behind.
//!
//! A run is one worker; any number of workers (processes, on one machine or several) may
//! send the same campaign. Each leases batches of due rows, renews its leases with a heartbeat
//! and draws send slots from the campaign's shared pace. Every message goes through the same
//! steps: move the row to `sending` (committed, only while this worker holds its lease), read
//! the recipient fresh and stop if suppressed or inactive, compose, pass the compliance gate,
//! deliver, record the outcome. A worker that finds another dead (its heartbeat stopped, or
//! its process gone on this host) frees its leases and resolves its `sending` rows by the
//! same no-duplicate rule as a restarted single run. This module decides what happens to a
//! row; `store` records it.

mod ledger;
mod pacer;
mod pipeline;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

pub use pacer::Pacer;
/// The TLS client configuration (system roots and a `ca_file`), shared with the IMAP intake.
pub use transport::smtp::tls_config;
pub use transport::{DeliveryFailure, InFlightOutcome, Transport, TransportError, open};

use crate::compliance::{self, ContactFacts, Eligibility, Exclusion, GatedMessage, eligibility};
use crate::compose::{ComposeError, Composer};
use crate::config::{Campaign, ConfigDir};
use crate::model::Phase;
use crate::model::RunState;
use crate::store::{
    Grouping, InFlightRow, OutboxState, RecipientGate, SentRecord, Store, StoreError,
    TransportKind, UngroupedRow, WorkerRecord,
};
use ledger::Ledger;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "register '{register}' is a purchased list whose permission to use ended on {valid_until}; sending to it is refused"
    )]
    ExpiredRegister {
        register: String,
        valid_until: String,
    },
    #[error(
        "{count} message(s) of this campaign are in flight through {recorded}, and this run uses the {current} transport: \
         whether they were delivered can only be judged by the transport they were sent with. Resume with that transport, \
         or pass --force-transport to switch anyway (those messages then count as uncertain and are not resent unless you ask with --resend-uncertain)"
    )]
    TransportSwitch {
        count: usize,
        /// The kinds the rows in flight were sent with, as a phrase ("the smtp transport").
        recorded: String,
        current: &'static str,
    },
    #[error("the thread composing the messages stopped: {0}")]
    Composing(String),
}

/// What one run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SendReport {
    pub campaign: String,
    pub added_to_outbox: u64,
    /// Rows due (queued or deferred) when this run began sending: the progress display's total.
    pub due_at_start: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub suppressed: u64,
    /// Rows a killed run left in `sending`, and how they were resolved.
    pub interrupted_sent: u64,
    pub interrupted_requeued: u64,
    pub interrupted_failed: u64,
    /// Rows in flight through another kind of transport, resolved as uncertain
    /// (`--force-transport`).
    pub interrupted_uncertain: u64,
    /// Transactions of this run whose outcome is unknown (no reply after the data was sent).
    pub uncertain: u64,
    /// Uncertain rows requeued by `--resend-uncertain`.
    pub uncertain_requeued: u64,
    /// Rows still waiting for a retry when the run ended, and when the first is due.
    pub waiting_for_retry: u64,
    pub next_retry_at: Option<i64>,
    pub dry_run: bool,
    /// The A/B phase the run ended in, and when the decision is due if it is still waiting.
    pub ab_phase: Option<String>,
    pub ab_decision_at: Option<i64>,
    /// The campaign was cancelled (`fairsend cancel`): its unsent rows will never be sent.
    pub cancelled: bool,
    /// The run ended outside the campaign's send window (`--no-wait`); it opens then.
    pub window_opens_at: Option<i64>,
    /// The same moment in the campaign's time zone, as people read it.
    pub window_opens_local: Option<String>,
}

/// Called after each message with the running report and the number of rows processed.
pub type ProgressFn = Box<dyn Fn(&SendReport, u64) + Send + Sync>;

pub struct SendOptions {
    pub dry_run: bool,
    /// Requeue rows a killed SMTP run left in `sending` (risking a duplicate) instead of
    /// failing them.
    pub resend_interrupted: bool,
    /// Requeue the campaign's `uncertain` rows (the server may have accepted them: a
    /// recipient may get the message twice).
    pub resend_uncertain: bool,
    /// Resume although rows in flight were sent with another kind of transport; they become
    /// `uncertain`.
    pub force_transport: bool,
    /// Called after each message with the running report; drives the progress display.
    pub on_progress: Option<ProgressFn>,
    /// Set to stop claiming new rows (Ctrl-C); messages in flight finish.
    pub stop: Arc<AtomicBool>,
    /// After an A/B test phase, or outside the send window, exit instead of waiting.
    pub no_wait: bool,
    /// The campaign's start and send window (`[schedule]`, or `send --at`).
    pub schedule: crate::model::Schedule,
    /// The database's clock once this run's own writes were committed (`app::send` reads it
    /// before its pre-flight): a preparation of the outbox that another worker began after it
    /// is joined, not repeated ([`Store::prepare_outbox`]). `None`: read just before preparing.
    pub joinable_since: Option<i64>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            resend_interrupted: false,
            resend_uncertain: false,
            force_transport: false,
            on_progress: None,
            stop: Arc::new(AtomicBool::new(false)),
            no_wait: false,
            schedule: crate::model::Schedule::default(),
            joinable_since: None,
        }
    }
}

/// This machine's name, as workers record it.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The identity of this worker in leases and claims: `host:pid:start-millis` (the start time
/// tells a reused pid from the process that had it before).
fn worker_id() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        crate::now_millis()
    )
}

/// Whether a worker is dead: its heartbeat is older than the lease, or it ran on this host
/// and its process no longer exists (found at once, without waiting for the lease).
fn worker_is_dead(worker: &WorkerRecord, now: i64, lease: Duration, this_host: &str) -> bool {
    if now - worker.heartbeat_at > lease.as_millis() as i64 {
        return true;
    }
    worker.host == this_host
        && worker.pid as u32 != std::process::id()
        && !std::path::Path::new(&format!("/proc/{}", worker.pid)).exists()
}

/// A worker of a campaign as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerStatus {
    #[serde(flatten)]
    pub record: WorkerRecord,
    /// False for a worker that stopped heart-beating (or whose process is gone) without
    /// exiting cleanly; the next live worker takes its rows over.
    pub live: bool,
}

/// The workers of a campaign that have not exited cleanly, each with whether it is alive.
pub async fn campaign_workers(
    store: &Store,
    campaign_id: i64,
    lease: Duration,
) -> Result<Vec<WorkerStatus>, StoreError> {
    let (now, host) = (crate::now_millis(), host_name());
    Ok(store
        .campaign_workers(campaign_id)
        .await?
        .into_iter()
        .map(|record| WorkerStatus {
            live: !worker_is_dead(&record, now, lease, &host),
            record,
        })
        .collect())
}

#[derive(Default)]
struct Counters {
    claimed: AtomicU64,
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    suppressed: AtomicU64,
    uncertain: AtomicU64,
}

/// Runs (or resumes) `campaign`: sends every due outbox row once.
pub async fn run_campaign(
    config: &ConfigDir,
    campaign: &Campaign,
    composer: &Composer,
    store: &Store,
    transport: &dyn Transport,
    options: &SendOptions,
) -> Result<SendReport, SendError> {
    let today = chrono::Utc::now().date_naive();
    if let Some((register, valid_until)) = compliance::expired_registers(config, campaign, today)
        .into_iter()
        .next()
    {
        return Err(SendError::ExpiredRegister {
            register: register.name.clone(),
            valid_until: valid_until.to_string(),
        });
    }
    let campaign_id = store.campaign_id(&campaign.name).await?;
    let worker = worker_id();
    let host = host_name();
    store
        .register_worker(campaign_id, &worker, &host, std::process::id())
        .await?;
    let lease = config.settings.database.lease;
    let counters = Arc::new(Counters::default());
    let heartbeat = (!options.dry_run).then(|| {
        tokio::spawn(heartbeat_loop(
            store.clone(),
            worker.clone(),
            counters.clone(),
            lease,
        ))
    });
    let run = Run {
        config,
        campaign,
        campaign_id,
        composer,
        gate: compliance::Gate::new(composer.settings()),
        store,
        transport,
        options,
        worker: &worker,
        host: &host,
        lease,
        pacer: config
            .settings
            .transport
            .rate_per_second
            .map(|rate| Pacer::per_second(store.clone(), campaign_id, rate)),
        counters,
        done: AtomicU64::new(0),
        today,
        lanes: tokio::sync::Semaphore::new(2 * config.settings.transport.concurrency),
    };
    let result = run.run().await;
    if let Some(heartbeat) = heartbeat {
        heartbeat.abort();
    }
    // A clean exit hands this worker's unstarted rows to the others at once.
    store.release_leases(&worker, true).await?;
    result
}

/// Renews the worker's heartbeat and leases every third of the lease.
async fn heartbeat_loop(store: Store, worker: String, counters: Arc<Counters>, lease: Duration) {
    loop {
        // Often enough for `status` to show live counts, and well inside the lease.
        tokio::time::sleep((lease / 3).min(Duration::from_secs(2))).await;
        let lease_until = crate::now_millis() + lease.as_millis() as i64;
        let claimed = counters.claimed.load(Ordering::Relaxed);
        let sent = counters.sent.load(Ordering::Relaxed);
        if let Err(e) = store.heartbeat(&worker, claimed, sent, lease_until).await {
            tracing::warn!(worker, error = %e, "cannot renew the heartbeat; other workers may take this worker's rows when its lease runs out");
        }
    }
}

/// One run's fixed parts and running counts.
struct Run<'a> {
    config: &'a ConfigDir,
    campaign: &'a Campaign,
    campaign_id: i64,
    composer: &'a Composer,
    /// The compliance gate of every message of the run, its searches made once.
    gate: compliance::Gate,
    store: &'a Store,
    transport: &'a dyn Transport,
    options: &'a SendOptions,
    worker: &'a str,
    host: &'a str,
    lease: Duration,
    pacer: Option<Pacer>,
    counters: Arc<Counters>,
    done: AtomicU64,
    /// The day eligibility is judged on.
    today: chrono::NaiveDate,
    /// Deliveries handed to the transport at once: two per connection (`concurrency`), one
    /// on the wire and the next ready for its commands to go out behind it (the SMTP pool
    /// itself keeps to `concurrency` connections).
    lanes: tokio::sync::Semaphore,
}

impl Run<'_> {
    async fn run(&self) -> Result<SendReport, SendError> {
        let (campaign, store, options) = (self.campaign, self.store, self.options);
        let mut report = SendReport {
            campaign: campaign.name.clone(),
            dry_run: options.dry_run,
            ..Default::default()
        };
        if !options.dry_run {
            self.check_transport_kind().await?;
            self.reap_dead_workers(&mut report).await?;
            if options.resend_uncertain {
                report.uncertain_requeued = store.requeue_uncertain(self.campaign_id).await?;
                if report.uncertain_requeued > 0 {
                    tracing::warn!(campaign = %campaign.name, requeued = report.uncertain_requeued, "requeued uncertain messages (--resend-uncertain): their recipients may receive them twice");
                }
            }
        }
        let assign = campaign.ab.as_ref().filter(|_| !options.dry_run).map(|ab| {
            let (secret, name, fraction, variants) = (
                self.composer.secret(),
                campaign.name.as_str(),
                ab.test_fraction,
                ab.subjects.len(),
            );
            move |rows: &[UngroupedRow]| {
                let (excluded, grouped): (Vec<&UngroupedRow>, Vec<&UngroupedRow>) = rows
                    .iter()
                    .partition(|r| compliance::exclusion(Some(r.status), r.suppressed).is_some());
                let pairs: Vec<(i64, i64)> = grouped
                    .iter()
                    .map(|r| (r.outbox_id, r.contact_id))
                    .collect();
                Grouping {
                    excluded: excluded.iter().map(|r| r.outbox_id).collect(),
                    assigned: crate::abtest::assign(secret, name, &pairs, fraction, variants),
                }
            }
        });
        // Everything this run wrote (the campaign file's contacts) is committed by then: a
        // preparation that another worker begins after that instant includes it.
        let joinable_since = match options.joinable_since {
            Some(since) => since,
            None => store.database_clock().await?,
        };
        let preparation = store
            .prepare_outbox(
                self.campaign_id,
                &compliance::audience_scope(campaign, Some(self.campaign_id), crate::now_millis()),
                assign,
                Some(joinable_since),
            )
            .await?;
        report.added_to_outbox = preparation.added;
        if let Some(at) = preparation.joined_at {
            tracing::info!(campaign = %campaign.name, prepared_at = at, "joined the outbox another worker prepared as this one started");
        }
        if let Some(c) = store.campaign_counts(Some(&campaign.name)).await?.first() {
            report.due_at_start =
                (c.count(OutboxState::Queued) + c.count(OutboxState::Deferred)) as u64;
        }
        match (&campaign.ab, options.dry_run) {
            (Some(ab), false) => run_ab(self, ab, &mut report).await?,
            _ => self.send_phase(&mut report, None).await?,
        }
        fill_counts(&mut report, &self.counters);
        if !options.dry_run {
            clean_up_after(self.transport, &campaign.name, std::process::id());
            let counts = store.campaign_counts(Some(&campaign.name)).await?;
            if let Some(c) = counts.first() {
                report.waiting_for_retry =
                    (c.count(OutboxState::Deferred) + c.count(OutboxState::Queued)) as u64;
            }
            report.next_retry_at = store.next_retry_at(self.campaign_id, None).await?;
        }
        Ok(report)
    }

    /// Refuses to run while rows of the campaign are in flight through another kind of
    /// transport than this run's (their outcome could only be judged by the rule of the
    /// transport they were sent with), unless the operator forces it.
    async fn check_transport_kind(&self) -> Result<(), SendError> {
        if self.options.force_transport {
            return Ok(());
        }
        let current = self.transport.kind();
        let foreign: Vec<Option<TransportKind>> = self
            .store
            .rows_in_sending(self.campaign_id)
            .await?
            .into_iter()
            .map(|row| row.transport)
            .filter(|kind| *kind != Some(current))
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        let mut kinds: Vec<String> = foreign
            .iter()
            .map(|k| match k {
                Some(k) => format!("the {} transport", k.as_str()),
                None => "a transport an older fairsend did not record".into(),
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        Err(SendError::TransportSwitch {
            count: foreign.len(),
            recorded: kinds.join(" and "),
            current: current.as_str(),
        })
    }

    /// Finds the campaign's dead workers: frees the rows they leased and resolves the rows
    /// they left in `sending` (see [`resolve_interrupted`]). Rows in `sending` whose worker
    /// is not a live one are theirs.
    async fn reap_dead_workers(&self, report: &mut SendReport) -> Result<(), SendError> {
        let (store, campaign_id) = (self.store, self.campaign_id);
        let now = crate::now_millis();
        let mut live = std::collections::HashSet::new();
        for worker in store.campaign_workers(campaign_id).await? {
            if worker.worker != self.worker && worker_is_dead(&worker, now, self.lease, self.host) {
                tracing::warn!(campaign = %self.campaign.name, worker = %worker.worker, "a worker of this campaign is dead; taking over its rows");
                store.release_leases(&worker.worker, false).await?;
                store.bury_worker(&worker.worker).await?;
                if worker.host == self.host {
                    clean_up_after(self.transport, &self.campaign.name, worker.pid as u32);
                }
            } else {
                live.insert(worker.worker);
            }
        }
        let orphans: Vec<InFlightRow> = store
            .rows_in_sending(campaign_id)
            .await?
            .into_iter()
            .filter(|row| row.claimed_by.as_ref().is_none_or(|by| !live.contains(by)))
            .collect();
        if !orphans.is_empty() {
            resolve_interrupted(self, &orphans, report).await?;
        }
        Ok(())
    }

    /// Sends every due row (of `phase`, if given), waiting within the run for rows that
    /// come due within `wait_in_run`: deferred rows, and rows other workers hold (which come
    /// back if those workers die).
    async fn send_phase(
        &self,
        report: &mut SendReport,
        phase: Option<Phase>,
    ) -> Result<(), SendError> {
        if self.options.dry_run {
            return self.dry_run_phase(report, phase).await;
        }
        self.pipelined_phase(report, phase).await
    }

    /// A dry run changes no state, so it pages through the rows instead of claiming them.
    async fn dry_run_phase(
        &self,
        report: &SendReport,
        phase: Option<Phase>,
    ) -> Result<(), SendError> {
        let batch = self.batch_size();
        let mut after = 0i64;
        loop {
            if self.options.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let page = self
                .store
                .rows_to_send(self.campaign_id, after, batch, phase)
                .await?;
            let Some(last) = page.last().copied() else {
                return Ok(());
            };
            after = last;
            self.dry_run_batch(report, &page).await?;
        }
    }

    /// Waits while the campaign is paused or outside its send window; false when the run
    /// should end instead (cancelled, stopped, or outside the window with `--no-wait`).
    async fn wait_until_it_may_send(&self, report: &mut SendReport) -> Result<bool, SendError> {
        let mut told = None;
        loop {
            if self.options.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let waiting_for = match self.store.run_state(self.campaign_id).await? {
                RunState::Cancelled => {
                    report.cancelled = true;
                    return Ok(false);
                }
                RunState::Paused => Waiting::Resume,
                RunState::Active => {
                    let now = crate::schedule_now();
                    match self.options.schedule.next_open(now) {
                        Some(opens) if opens <= now => return Ok(true),
                        Some(opens) if self.options.no_wait => {
                            report.window_opens_at = Some(opens.timestamp_millis());
                            report.window_opens_local =
                                Some(self.options.schedule.local_text(opens));
                            return Ok(false);
                        }
                        Some(opens) => Waiting::Window(opens),
                        None => return Ok(false),
                    }
                }
            };
            if told != Some(waiting_for) {
                self.tell_waiting(waiting_for);
                told = Some(waiting_for);
            }
            // A pause or a resume is seen within a second; the window's opening too.
            wait_or_stop(Duration::from_secs(1), &self.options.stop).await;
        }
    }

    fn tell_waiting(&self, waiting_for: Waiting) {
        let name = &self.campaign.name;
        match waiting_for {
            Waiting::Resume => {
                tracing::warn!(campaign = %name, "the campaign is paused: waiting (`fairsend resume {name}` continues, Ctrl-C stops)")
            }
            Waiting::Window(opens) => {
                let opens = self.options.schedule.local_text(opens);
                tracing::info!(campaign = %name, opens = %opens, "outside the send window: waiting for it to open (Ctrl-C stops)");
            }
        }
    }

    /// Enough rows per claim to keep the database out of the way, few enough that a
    /// rate-limited campaign's rows spread over its workers: two seconds' worth per claim.
    /// The pipeline claims again when half a batch is still held, so a worker holds up to a
    /// batch and a half (about three seconds' worth) at a time; the other workers wait for the
    /// rest. Unlimited, 64 rows per lane (a claim is a commit of its own, and it makes every
    /// other connection of the run read its pages again): 512 rows at concurrency 8 ran
    /// 20,000 messages 4–9 % faster than 128 did, in less CPU.
    fn batch_size(&self) -> i64 {
        let transport = &self.config.settings.transport;
        let concurrency = transport.concurrency as i64;
        let batch = (concurrency * 64).clamp(64, 4096);
        match transport.rate_per_second {
            Some(rate) => batch.min(((rate * 2.0) as i64).max(concurrency)),
            None => batch,
        }
    }

    /// Leases the next `batch` due rows, after taking over the rows of dead workers.
    async fn claim(
        &self,
        report: &mut SendReport,
        now: i64,
        batch: i64,
        phase: Option<Phase>,
    ) -> Result<Vec<i64>, SendError> {
        self.reap_dead_workers(report).await?;
        let lease_until = now + self.lease.as_millis() as i64;
        let rows = self
            .store
            .claim_batch(
                self.campaign_id,
                self.worker,
                now,
                lease_until,
                batch,
                phase,
            )
            .await?;
        Ok(rows)
    }

    /// Nothing is due now: waits a little if a row comes due within `wait_in_run`, and says
    /// whether to look again.
    async fn wait_for_due(&self, now: i64, phase: Option<Phase>) -> Result<bool, SendError> {
        let wait_in_run = self.config.settings.retry.wait_in_run.as_millis() as i64;
        match self
            .store
            .next_claimable_at(self.campaign_id, phase)
            .await?
        {
            Some(at) if at - now <= wait_in_run => {
                // Poll at least every second: a worker found dead frees its rows
                // before its lease would run out.
                let wait = (at - now).clamp(0, 1000);
                tracing::debug!(campaign = %self.campaign.name, wait_ms = wait, "waiting for rows to come due");
                wait_or_stop(Duration::from_millis(wait as u64), &self.options.stop).await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Composes and gates one page of rows, `concurrency` at a time, and counts what would
    /// happen to each.
    async fn dry_run_batch(&self, shown: &SendReport, due: &[i64]) -> Result<(), SendError> {
        let concurrency = self.config.settings.transport.concurrency;
        let mut gates = self.store.recipients(due).await?;
        futures_util::stream::iter(due.iter().map(|id| (*id, gates.remove(id))))
            .for_each_concurrent(concurrency, |(outbox_id, gate)| async move {
                if self.options.stop.load(Ordering::SeqCst) {
                    return;
                }
                let outcome = Ok(dry_run_one(self, outbox_id, gate));
                self.tally(shown, outbox_id, outcome);
            })
            .await;
        Ok(())
    }

    /// Counts one row's outcome and shows the progress. A database error stops the run; the
    /// row is left for the next.
    fn tally(
        &self,
        report: &SendReport,
        outbox_id: i64,
        outcome: Result<Option<OutboxState>, StoreError>,
    ) {
        let counters = &self.counters;
        let counter = match outcome {
            Ok(Some(OutboxState::Sent)) => Some(&counters.sent),
            Ok(Some(OutboxState::Deferred)) => Some(&counters.deferred),
            Ok(Some(OutboxState::Failed)) => Some(&counters.failed),
            Ok(Some(OutboxState::Suppressed)) => Some(&counters.suppressed),
            Ok(Some(OutboxState::Uncertain)) => Some(&counters.uncertain),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(outbox_id, error = %e, "database error; the row is left for the next run");
                self.options.stop.store(true, Ordering::SeqCst);
                None
            }
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(progress) = &self.options.on_progress {
            let mut snapshot = report.clone();
            fill_counts(&mut snapshot, counters);
            progress(&snapshot, n);
        }
    }
}

/// When the test that finished at `finished` (Unix ms) is decided: `wait` later, counted in
/// window time when the schedule asks.
fn decision_time(schedule: &crate::model::Schedule, finished: i64, wait: Duration) -> i64 {
    let Some(finished_at) = chrono::DateTime::from_timestamp_millis(finished) else {
        return finished.saturating_add(wait.as_millis() as i64);
    };
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    schedule.decision_time(finished_at, wait).timestamp_millis()
}

/// What a run waits for before it may start transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Resume,
    Window(chrono::DateTime<chrono::Utc>),
}

/// The A/B flow: form the groups once, send the test phase, wait until `wait` has passed
/// since it finished, decide once, then send the rest with the winning subject.
async fn run_ab(
    run: &Run<'_>,
    ab: &crate::config::AbSettings,
    report: &mut SendReport,
) -> Result<(), SendError> {
    let (store, campaign_id, options) = (run.store, run.campaign_id, run.options);
    if store.ab_state(campaign_id).await?.decision.is_none() {
        report.ab_phase = Some("test".into());
        loop {
            run.send_phase(report, Some(Phase::Test)).await?;
            if options.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            // Other workers may still be sending test messages: the phase ends with theirs.
            if store
                .ab_in_flight(campaign_id, Phase::Test, crate::now_millis())
                .await?
                == 0
            {
                break;
            }
            wait_or_stop(Duration::from_millis(200), &options.stop).await;
        }
        if store.ab_pending(campaign_id, Phase::Test).await? > 0 {
            return Ok(()); // test messages deferred beyond this run: a later run continues
        }
        let finished = store.ab_test_finished(campaign_id).await?;
        let decide_at = decision_time(&options.schedule, finished, ab.wait);
        let now = crate::now_millis();
        if now < decide_at {
            report.ab_decision_at = Some(decide_at);
            if options.no_wait {
                return Ok(());
            }
            countdown(decide_at, &options.stop).await;
            if options.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
        let observed = crate::abtest::observe(
            &store.ab_test_messages(campaign_id).await?,
            ab.metric,
            ab.subjects.len(),
        );
        // Taken once: every worker proposes, the first stored decision holds for all.
        let decision = store
            .ab_decide(
                campaign_id,
                &crate::abtest::decide(&observed, ab.confidence, ab.fallback),
            )
            .await?;
        tracing::info!(
            campaign = %run.campaign.name,
            winner = decision.winner,
            subject = %ab.subjects[decision.winner],
            p = decision.p_value_or_probability,
            fallback = decision.fallback_used,
            "A/B decision"
        );
        report.ab_decision_at = None;
    }
    report.ab_phase = Some("remainder".into());
    run.send_phase(report, None).await
}

/// Waits until `at`, saying how long is left every 10 seconds.
async fn countdown(at: i64, stop: &AtomicBool) {
    loop {
        let left = at - crate::now_millis();
        if left <= 0 || stop.load(Ordering::SeqCst) {
            return;
        }
        let secs = left / 1000;
        tracing::info!(
            remaining = format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            "A/B test finished; deciding after the wait"
        );
        wait_or_stop(Duration::from_millis(left.min(10_000) as u64), stop).await;
    }
}

fn clean_up_after(transport: &dyn Transport, campaign: &str, pid: u32) {
    if let Err(e) = transport.clean_up_after(campaign, pid) {
        tracing::warn!(campaign, error = %e, "cannot remove what a worker left behind in the transport");
    }
}

fn fill_counts(report: &mut SendReport, c: &Counters) {
    report.sent = c.sent.load(Ordering::Relaxed);
    report.deferred = c.deferred.load(Ordering::Relaxed);
    report.failed = c.failed.load(Ordering::Relaxed);
    report.suppressed = c.suppressed.load(Ordering::Relaxed);
    report.uncertain = c.uncertain.load(Ordering::Relaxed);
}

async fn wait_or_stop(duration: Duration, stop: &AtomicBool) {
    let deadline = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100).min(deadline - tokio::time::Instant::now()))
            .await;
    }
}

/// Rows a dead worker left in `sending` were in the middle of their transaction. The outbox
/// transport can tell whether the file was written; SMTP cannot tell whether the server
/// accepted the message, so such rows fail as `interrupted` rather than risk a duplicate,
/// unless the operator asked to resend them. A row sent through another kind of transport than
/// this run's (`--force-transport`) cannot be judged by this run's rule: it becomes
/// `uncertain`. Only the first live worker to resolve a row does.
async fn resolve_interrupted(
    run: &Run<'_>,
    orphans: &[InFlightRow],
    report: &mut SendReport,
) -> Result<(), SendError> {
    let (store, transport) = (run.store, run.transport);
    let (mut sent, mut requeued, mut failed, mut uncertain) = (0, 0, 0, 0);
    let foreign_note = format!(
        "interrupted while in flight through another kind of transport than the {} transport \
         of the run that found it: it may have been delivered; not resent (resend with \
         `fairsend send --resend-uncertain`)",
        transport.kind().as_str()
    );
    for row in orphans {
        let (outbox_id, dead) = (row.outbox_id, row.claimed_by.as_deref());
        let (resolution, note) = match transport.in_flight_outcome(&run.campaign.name, outbox_id) {
            _ if row.transport != Some(transport.kind()) => {
                (OutboxState::Uncertain, foreign_note.as_str())
            }
            InFlightOutcome::Delivered(note) => (OutboxState::Sent, note),
            InFlightOutcome::NotDelivered(note) => (OutboxState::Queued, note),
            InFlightOutcome::Unknown if run.options.resend_interrupted => (
                OutboxState::Queued,
                "interrupted; requeued by --resend-interrupted",
            ),
            InFlightOutcome::Unknown => (
                OutboxState::Failed,
                "interrupted: the run was killed during the SMTP transaction and the server may \
                 have accepted the message; not resent, to avoid a duplicate (requeue with \
                 `fairsend send --resend-interrupted`)",
            ),
        };
        if store
            .resolve_interrupted(outbox_id, dead, resolution, note)
            .await?
        {
            match resolution {
                OutboxState::Sent => sent += 1,
                OutboxState::Queued => requeued += 1,
                OutboxState::Uncertain => uncertain += 1,
                _ => failed += 1,
            }
        }
    }
    report.interrupted_sent += sent;
    report.interrupted_requeued += requeued;
    report.interrupted_failed += failed;
    report.interrupted_uncertain += uncertain;
    if sent + requeued + failed + uncertain > 0 {
        tracing::warn!(
            campaign = %run.campaign.name,
            sent,
            requeued,
            failed,
            uncertain,
            "resolved rows left in 'sending' by an interrupted run"
        );
    }
    Ok(())
}

/// Sends one leased outbox row whose recipient was read with its batch; returns the state it
/// ended in, or `None` if the row is no longer this worker's. The message is composed and
/// gated first (while waiting for the pace), then the row moves to `sending` in the statement
/// that reads the contact's status and suppression as of that instant, eligibility is decided
/// on those facts, and only then does a byte go out.
async fn send_one(
    run: &Run<'_>,
    ledger: &Ledger,
    outbox_id: i64,
    gate: Option<RecipientGate>,
    composed: Option<Result<GatedMessage, String>>,
) -> Result<Option<OutboxState>, StoreError> {
    // The rate limit's slot before the move to `sending`: a pause then holds every row not
    // yet due, instead of letting rows committed ahead of their slots trickle out after it.
    if let Some(pacer) = &run.pacer {
        pacer.wait().await?;
    }
    let Some(row) = ledger.begin(outbox_id).await? else {
        return Ok(None);
    };
    let fail = |state: OutboxState, why: String| async move {
        run.store.mark_unsent(outbox_id, state, 0, &why).await?;
        Ok::<_, StoreError>(Some(state))
    };
    let (Some(gate), Some(composed)) = (gate, composed) else {
        return fail(OutboxState::Failed, Exclusion::Gone.to_string()).await;
    };
    let facts = ContactFacts {
        status: row.status,
        suppressed: row.suppressed,
        ..ContactFacts::of_member(run.config, &gate)
    };
    if let Some((state, why)) = refusal(eligibility(&facts, run.today)) {
        return fail(state, why).await;
    }
    let message = match composed {
        Ok(message) => message,
        Err(e) => {
            // A message that cannot be composed, or fails the compliance gate, is never sent.
            tracing::error!(outbox_id, error = %e, "this message cannot be sent");
            return fail(OutboxState::Failed, e).await;
        }
    };
    deliver(run, ledger, &row, message).await
}

/// The recipient's message, through the compliance gate.
fn compose_and_gate(
    composer: &Composer,
    gate: &compliance::Gate,
    recipient: &RecipientGate,
) -> Result<GatedMessage, String> {
    composer
        .compose(&recipient.recipient)
        .map_err(|e| e.to_string())
        .and_then(|m| gate.check(m).map_err(|e| e.to_string()))
}

/// The state a row ends in when its contact may not be sent to, and why.
fn refusal(verdict: Eligibility) -> Option<(OutboxState, String)> {
    match verdict {
        Eligibility::Eligible => None,
        Eligibility::Excluded(Exclusion::Gone) => {
            Some((OutboxState::Failed, Exclusion::Gone.to_string()))
        }
        Eligibility::Excluded(exclusion) => Some((OutboxState::Suppressed, exclusion.to_string())),
        Eligibility::Blocked(blockers) => Some((
            OutboxState::Failed,
            blockers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// One delivery of a row in `sending`, and its outcome recorded: sent, failed for good,
/// uncertain, or deferred with backoff (failed once the attempts are used up).
async fn deliver(
    run: &Run<'_>,
    ledger: &Ledger,
    row: &crate::store::SendingRow,
    message: GatedMessage,
) -> Result<Option<OutboxState>, StoreError> {
    let (store, outbox_id) = (run.store, message.outbox_id());
    let fail = |state: OutboxState, why: String| async move {
        store.mark_unsent(outbox_id, state, 0, &why).await?;
        Ok::<_, StoreError>(Some(state))
    };
    // Committed to `sending` already; now wait for a lane to the server (see pipeline.rs).
    let lane = run.lanes.acquire().await;
    let started = std::time::Instant::now();
    let delivered = run.transport.deliver(&run.campaign.name, &message).await;
    drop(lane);
    match delivered {
        Ok(reply) => {
            ledger.record(SentRecord {
                outbox_id,
                reply,
                message_id: message.message_id().to_string(),
                latency_ms: Some(started.elapsed().as_millis() as i64),
            })?;
            Ok(Some(OutboxState::Sent))
        }
        Err(DeliveryFailure::Permanent(reason)) => {
            tracing::warn!(outbox_id, %reason, "permanent failure for this recipient");
            fail(OutboxState::Failed, reason).await
        }
        Err(DeliveryFailure::Uncertain(reason)) => {
            tracing::warn!(outbox_id, %reason, "delivery uncertain; not resent unless asked (--resend-uncertain)");
            fail(OutboxState::Uncertain, reason).await
        }
        Err(DeliveryFailure::Transient(reason)) => {
            let retry = &run.config.settings.retry;
            let attempts = row.attempts;
            if attempts >= i64::from(retry.max_attempts) {
                let why = format!("gave up after {attempts} attempts: {reason}");
                tracing::warn!(outbox_id, %why, "temporary failures exhausted the retries");
                return fail(OutboxState::Failed, why).await;
            }
            let delay = backoff(retry.base_delay, retry.max_delay, attempts);
            tracing::info!(outbox_id, %reason, retry_in_s = delay.as_secs_f64(), "deferred");
            let at = crate::now_millis() + delay.as_millis() as i64;
            store
                .mark_unsent(outbox_id, OutboxState::Deferred, at, &reason)
                .await?;
            Ok(Some(OutboxState::Deferred))
        }
    }
}

/// Composes and gates a row without claiming it or sending it.
fn dry_run_one(run: &Run<'_>, outbox_id: i64, gate: Option<RecipientGate>) -> Option<OutboxState> {
    let gate = gate?;
    if let Some((state, _)) = refusal(eligibility(
        &ContactFacts::of_member(run.config, &gate),
        run.today,
    )) {
        return Some(state);
    }
    match compose_and_gate(run.composer, &run.gate, &gate) {
        Ok(_) => Some(OutboxState::Sent),
        Err(e) => {
            tracing::error!(outbox_id, error = %e, "this message would not be sent");
            Some(OutboxState::Failed)
        }
    }
}

/// Exponential backoff: base, 2×base, 4×base, … capped at `max`.
pub fn backoff(base: Duration, max: Duration, attempts: i64) -> Duration {
    let exponent = (attempts.max(1) - 1).min(20) as u32;
    base.saturating_mul(2u32.saturating_pow(exponent)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(60);
        let m = Duration::from_secs(3600);
        assert_eq!(backoff(b, m, 1), Duration::from_secs(60));
        assert_eq!(backoff(b, m, 2), Duration::from_secs(120));
        assert_eq!(backoff(b, m, 3), Duration::from_secs(240));
        assert_eq!(backoff(b, m, 10), m);
        assert_eq!(backoff(b, m, 1000), m);
    }

    #[test]
    fn dead_workers() {
        let lease = Duration::from_secs(30);
        let now = 1_000_000;
        let worker = |host: &str, pid: i64, heartbeat_at: i64| WorkerRecord {
            worker: format!("{host}:{pid}:0"),
            host: host.into(),
            pid,
            started_at: 0,
            heartbeat_at,
            claimed: 0,
            sent: 0,
            stopped_at: None,
        };
        let here = host_name();
        let me = std::process::id() as i64;
        assert!(!worker_is_dead(&worker(&here, me, now), now, lease, &here));
        // A process that does not exist on this host is dead at once.
        assert!(worker_is_dead(
            &worker(&here, 4_294_967, now),
            now,
            lease,
            &here
        ));
        // Another host's worker is alive while its heartbeat is fresh, dead after the lease.
        assert!(!worker_is_dead(
            &worker("elsewhere", 1, now - 29_000),
            now,
            lease,
            &here
        ));
        assert!(worker_is_dead(
            &worker("elsewhere", 1, now - 31_000),
            now,
            lease,
            &here
        ));
    }
}
