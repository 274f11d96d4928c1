//! The campaign run: outbox materialisation, per-recipient SMTP transactions, rate limit,
//! retries, and the resolution of rows a killed run left behind.
//!
//! Every message goes through the same steps: claim the row (`sending`, committed), read the
//! recipient fresh and stop if suppressed or inactive, compose, pass the compliance gate,
//! deliver, record the outcome. This module decides what happens to a row; `store` records it.

mod pacer;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

pub use pacer::Pacer;
pub use transport::{DeliveryFailure, Transport, TransportError};

use crate::abtest::Phase;
use crate::compliance;
use crate::compose::{ComposeError, Composer};
use crate::config::{Campaign, ConfigDir};
use crate::store::{OutboxState, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("campaign '{campaign}' is already being sent by {holder}; wait for it to finish")]
    Locked { campaign: String, holder: String },
    #[error(
        "register '{register}' is a purchased list whose permission to use ended on {valid_until}; sending to it is refused"
    )]
    ExpiredRegister {
        register: String,
        valid_until: String,
    },
}

/// What one run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SendReport {
    pub campaign: String,
    pub added_to_outbox: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub suppressed: u64,
    /// Rows a killed run left in `sending`, and how they were resolved.
    pub interrupted_sent: u64,
    pub interrupted_requeued: u64,
    pub interrupted_failed: u64,
    /// Rows still waiting for a retry when the run ended, and when the first is due.
    pub waiting_for_retry: u64,
    pub next_retry_at: Option<i64>,
    pub dry_run: bool,
    /// The A/B phase the run ended in, and when the decision is due if it is still waiting.
    pub ab_phase: Option<String>,
    pub ab_decision_at: Option<i64>,
}

/// Called after each message with the running report and the number of rows processed.
pub type ProgressFn = Box<dyn Fn(&SendReport, u64) + Send + Sync>;

pub struct SendOptions {
    pub dry_run: bool,
    /// Requeue rows a killed SMTP run left in `sending` (risking a duplicate) instead of
    /// failing them.
    pub resend_interrupted: bool,
    /// Called after each message with the running report; drives the progress display.
    pub on_progress: Option<ProgressFn>,
    /// Set to stop claiming new rows (Ctrl-C); messages in flight finish.
    pub stop: Arc<AtomicBool>,
    /// After an A/B test phase, exit instead of waiting for the decision time.
    pub no_wait: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            resend_interrupted: false,
            on_progress: None,
            stop: Arc::new(AtomicBool::new(false)),
            no_wait: false,
        }
    }
}

/// The `host:pid` that identifies this run in locks and claims.
pub fn holder_id() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// A lock holder on this host whose process no longer exists is dead; one on another host is
/// presumed alive.
fn holder_is_dead(holder: &str) -> bool {
    let this_host = holder_id();
    let this_host = this_host.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    match holder.rsplit_once(':') {
        Some((host, pid)) if host == this_host => pid
            .parse::<u32>()
            .map(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            .unwrap_or(true),
        _ => false,
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    suppressed: AtomicU64,
}

/// Runs (or resumes) `campaign`: sends every due outbox row once.
pub async fn run_campaign(
    config: &ConfigDir,
    campaign: &Campaign,
    composer: &Composer<'_>,
    store: &Store,
    transport: &Transport,
    options: &SendOptions,
) -> Result<SendReport, SendError> {
    let today = chrono::Utc::now().date_naive();
    for name in &campaign.registers {
        if let Some(register) = config.registers.get(name)
            && register.is_expired_on(today)
            && let Some(p) = &register.purchased
        {
            return Err(SendError::ExpiredRegister {
                register: name.clone(),
                valid_until: p.valid_until.to_string(),
            });
        }
    }
    let campaign_id = store.campaign_id(&campaign.name).await?;
    let holder = holder_id();
    if let Err(current) = store
        .acquire_send_lock(campaign_id, &holder, holder_is_dead)
        .await?
    {
        return Err(SendError::Locked {
            campaign: campaign.name.clone(),
            holder: current,
        });
    }
    let result = run_locked(
        config,
        campaign,
        campaign_id,
        composer,
        store,
        transport,
        options,
        &holder,
    )
    .await;
    store.release_send_lock(campaign_id, &holder).await?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_locked(
    config: &ConfigDir,
    campaign: &Campaign,
    campaign_id: i64,
    composer: &Composer<'_>,
    store: &Store,
    transport: &Transport,
    options: &SendOptions,
    holder: &str,
) -> Result<SendReport, SendError> {
    let mut report = SendReport {
        campaign: campaign.name.clone(),
        dry_run: options.dry_run,
        ..Default::default()
    };
    if !options.dry_run {
        resolve_interrupted(
            campaign,
            campaign_id,
            store,
            transport,
            options,
            &mut report,
        )
        .await?;
    }
    report.added_to_outbox = store
        .materialise_outbox(campaign_id, &campaign.registers)
        .await?;

    let run = Run {
        config,
        campaign,
        campaign_id,
        composer,
        store,
        transport,
        options,
        holder,
        pacer: config
            .settings
            .transport
            .rate_per_second
            .map(Pacer::per_second),
        counters: Counters::default(),
        done: AtomicU64::new(0),
    };
    match (&campaign.ab, options.dry_run) {
        (Some(ab), false) => run_ab(&run, ab, &mut report).await?,
        _ => run.send_phase(&report, None).await?,
    }
    let counters = run.counters;
    fill_counts(&mut report, &counters);
    if !options.dry_run {
        clear_staging(transport, &campaign.name);
        let counts = store.campaign_counts(Some(&campaign.name)).await?;
        if let Some(c) = counts.first() {
            report.waiting_for_retry =
                (c.count(OutboxState::Deferred) + c.count(OutboxState::Queued)) as u64;
        }
        report.next_retry_at = store.next_retry_at(campaign_id, None).await?;
    }
    Ok(report)
}

/// One run's fixed parts and running counts.
struct Run<'a> {
    config: &'a ConfigDir,
    campaign: &'a Campaign,
    campaign_id: i64,
    composer: &'a Composer<'a>,
    store: &'a Store,
    transport: &'a Transport,
    options: &'a SendOptions,
    holder: &'a str,
    pacer: Option<Pacer>,
    counters: Counters,
    done: AtomicU64,
}

impl Run<'_> {
    /// Sends every due row (of `phase`, if given), waiting within the run for deferred rows
    /// that come due within `wait_in_run`.
    async fn send_phase(&self, report: &SendReport, phase: Option<Phase>) -> Result<(), SendError> {
        let Run {
            config,
            campaign,
            campaign_id,
            composer,
            store,
            transport,
            options,
            holder,
            ..
        } = *self;
        let settings = &config.settings;
        let mut seen_in_dry_run = 0i64;
        loop {
            if options.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = crate::now_millis();
            let due = if options.dry_run {
                // A dry run changes no state, so it pages through the due rows instead.
                let all = store
                    .due_rows(campaign_id, i64::MAX, seen_in_dry_run + 512, phase)
                    .await?;
                let page: Vec<i64> = all.into_iter().skip(seen_in_dry_run as usize).collect();
                seen_in_dry_run += page.len() as i64;
                page
            } else {
                store.due_rows(campaign_id, now, 512, phase).await?
            };
            if due.is_empty() {
                if options.dry_run {
                    return Ok(());
                }
                match store.next_retry_at(campaign_id, phase).await? {
                    Some(at) if at - now <= settings.retry.wait_in_run.as_millis() as i64 => {
                        tracing::info!(campaign = %campaign.name, wait_ms = at - now, "waiting for deferred messages to come due");
                        wait_or_stop(
                            Duration::from_millis((at - now).max(0) as u64),
                            &options.stop,
                        )
                        .await;
                        continue;
                    }
                    _ => return Ok(()),
                }
            }
            futures_util::stream::iter(due)
                .for_each_concurrent(settings.transport.concurrency, |outbox_id| async move {
                    if options.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let outcome = if options.dry_run {
                        dry_run_one(config, composer, store, outbox_id).await
                    } else {
                        send_one(config, campaign, composer, store, transport, self.pacer.as_ref(), holder, outbox_id).await
                    };
                    let counters = &self.counters;
                    match outcome {
                        Ok(Some(OutboxState::Sent)) => counters.sent.fetch_add(1, Ordering::Relaxed),
                        Ok(Some(OutboxState::Deferred)) => counters.deferred.fetch_add(1, Ordering::Relaxed),
                        Ok(Some(OutboxState::Failed)) => counters.failed.fetch_add(1, Ordering::Relaxed),
                        Ok(Some(OutboxState::Suppressed)) => counters.suppressed.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => 0,
                        Err(e) => {
                            tracing::error!(outbox_id, error = %e, "database error; the row is left for the next run");
                            options.stop.store(true, Ordering::SeqCst);
                            0
                        }
                    };
                    let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(progress) = &options.on_progress {
                        let mut snapshot = report.clone();
                        fill_counts(&mut snapshot, counters);
                        progress(&snapshot, n);
                    }
                })
                .await;
        }
    }
}

/// The A/B flow: form the groups once, send the test phase, wait until `wait` has passed
/// since it finished, decide once, then send the rest with the winning subject.
async fn run_ab(
    run: &Run<'_>,
    ab: &crate::config::AbSettings,
    report: &mut SendReport,
) -> Result<(), SendError> {
    let (store, campaign_id, options) = (run.store, run.campaign_id, run.options);
    let unassigned = store.ab_unassigned(campaign_id).await?;
    if !unassigned.is_empty() {
        let assignments = crate::abtest::assign(
            run.composer.secret(),
            &run.campaign.name,
            &unassigned,
            ab.test_fraction,
            ab.subjects.len(),
        );
        store.ab_assign(&assignments).await?;
    }
    if store.ab_state(campaign_id).await?.decision.is_none() {
        report.ab_phase = Some("test".into());
        run.send_phase(report, Some(Phase::Test)).await?;
        if options.stop.load(Ordering::SeqCst)
            || store.ab_pending(campaign_id, Phase::Test).await? > 0
        {
            return Ok(()); // test messages still queued or deferred: a later run continues
        }
        let finished = store.ab_test_finished(campaign_id).await?;
        let decide_at = finished + ab.wait.as_millis() as i64;
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

fn clear_staging(transport: &Transport, campaign: &str) {
    if let Err(e) = transport.clear_staging(campaign) {
        tracing::warn!(campaign, error = %e, "cannot remove the outbox staging directory");
    }
}

fn fill_counts(report: &mut SendReport, c: &Counters) {
    report.sent = c.sent.load(Ordering::Relaxed);
    report.deferred = c.deferred.load(Ordering::Relaxed);
    report.failed = c.failed.load(Ordering::Relaxed);
    report.suppressed = c.suppressed.load(Ordering::Relaxed);
}

async fn wait_or_stop(duration: Duration, stop: &AtomicBool) {
    let deadline = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100).min(deadline - tokio::time::Instant::now()))
            .await;
    }
}

/// Rows in `sending` belong to a run that was killed mid-transaction (the lock guarantees no
/// live run holds them). The outbox transport can tell whether the file was written; SMTP
/// cannot tell whether the server accepted the message, so such rows fail as `interrupted`
/// rather than risk a duplicate, unless the operator asked to resend them.
async fn resolve_interrupted(
    campaign: &Campaign,
    campaign_id: i64,
    store: &Store,
    transport: &Transport,
    options: &SendOptions,
    report: &mut SendReport,
) -> Result<(), SendError> {
    for outbox_id in store.rows_in_sending(campaign_id).await? {
        if let Some(file) = transport.outbox_file(&campaign.name, outbox_id) {
            if file.exists() {
                store
                    .mark_sent(
                        outbox_id,
                        "found in the outbox after an interrupted run",
                        "",
                        None,
                    )
                    .await?;
                report.interrupted_sent += 1;
            } else {
                store
                    .mark_unsent(
                        outbox_id,
                        OutboxState::Queued,
                        0,
                        "interrupted before the file was written",
                    )
                    .await?;
                report.interrupted_requeued += 1;
            }
        } else if options.resend_interrupted {
            store
                .mark_unsent(
                    outbox_id,
                    OutboxState::Queued,
                    0,
                    "interrupted; requeued by --resend-interrupted",
                )
                .await?;
            report.interrupted_requeued += 1;
        } else {
            store
                .mark_unsent(
                    outbox_id,
                    OutboxState::Failed,
                    0,
                    "interrupted: the run was killed during the SMTP transaction and the server may \
                     have accepted the message; not resent, to avoid a duplicate (requeue with \
                     `fairsend send --resend-interrupted`)",
                )
                .await?;
            report.interrupted_failed += 1;
        }
    }
    if report.interrupted_failed + report.interrupted_requeued + report.interrupted_sent > 0 {
        tracing::warn!(
            campaign = %campaign.name,
            sent = report.interrupted_sent,
            requeued = report.interrupted_requeued,
            failed = report.interrupted_failed,
            "resolved rows left in 'sending' by an interrupted run"
        );
    }
    Ok(())
}

/// Sends one outbox row; returns the state it ended in, or `None` if another run had it.
#[allow(clippy::too_many_arguments)]
async fn send_one(
    config: &ConfigDir,
    campaign: &Campaign,
    composer: &Composer<'_>,
    store: &Store,
    transport: &Transport,
    pacer: Option<&Pacer>,
    holder: &str,
    outbox_id: i64,
) -> Result<Option<OutboxState>, StoreError> {
    if let Some(pacer) = pacer {
        pacer.wait().await;
    }
    if !store.claim(outbox_id, holder).await? {
        return Ok(None);
    }
    // Read immediately before the transaction: an opt-out committed a moment ago counts.
    let Some(gate) = store.recipient(outbox_id).await? else {
        store
            .mark_unsent(
                outbox_id,
                OutboxState::Failed,
                0,
                "the contact no longer exists",
            )
            .await?;
        return Ok(Some(OutboxState::Failed));
    };
    if let Some(reason) = gate.suppressed {
        store
            .mark_unsent(
                outbox_id,
                OutboxState::Suppressed,
                0,
                &format!("suppressed: {}", reason.as_str()),
            )
            .await?;
        return Ok(Some(OutboxState::Suppressed));
    }
    if gate.status != crate::audience::ContactStatus::Active {
        store
            .mark_unsent(
                outbox_id,
                OutboxState::Suppressed,
                0,
                &format!("contact is {}", gate.status.as_str()),
            )
            .await?;
        return Ok(Some(OutboxState::Suppressed));
    }
    let message = match composer.compose(&gate.recipient) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(outbox_id, error = %e, "cannot compose the message");
            store
                .mark_unsent(outbox_id, OutboxState::Failed, 0, &e.to_string())
                .await?;
            return Ok(Some(OutboxState::Failed));
        }
    };
    if let Err(e) = compliance::gate(&message, &config.settings) {
        tracing::error!(outbox_id, error = %e, "compliance gate refused the message");
        store
            .mark_unsent(outbox_id, OutboxState::Failed, 0, &e.to_string())
            .await?;
        return Ok(Some(OutboxState::Failed));
    }
    let started = std::time::Instant::now();
    match transport.deliver(&campaign.name, &message).await {
        Ok(reply) => {
            store
                .mark_sent(
                    outbox_id,
                    &reply,
                    &message.message_id,
                    Some(started.elapsed().as_millis() as i64),
                )
                .await?;
            tracing::debug!(outbox_id, ms = started.elapsed().as_millis() as u64, "sent");
            Ok(Some(OutboxState::Sent))
        }
        Err(DeliveryFailure::Permanent(reason)) => {
            tracing::warn!(outbox_id, %reason, "permanent failure for this recipient");
            store
                .mark_unsent(outbox_id, OutboxState::Failed, 0, &reason)
                .await?;
            Ok(Some(OutboxState::Failed))
        }
        Err(DeliveryFailure::Transient(reason)) => {
            let retry = &config.settings.retry;
            let attempts = store.attempts(outbox_id).await?;
            if attempts >= i64::from(retry.max_attempts) {
                let why = format!("gave up after {attempts} attempts: {reason}");
                tracing::warn!(outbox_id, %why, "temporary failures exhausted the retries");
                store
                    .mark_unsent(outbox_id, OutboxState::Failed, 0, &why)
                    .await?;
                return Ok(Some(OutboxState::Failed));
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
async fn dry_run_one(
    config: &ConfigDir,
    composer: &Composer<'_>,
    store: &Store,
    outbox_id: i64,
) -> Result<Option<OutboxState>, StoreError> {
    let Some(gate) = store.recipient(outbox_id).await? else {
        return Ok(None);
    };
    if gate.suppressed.is_some() || gate.status != crate::audience::ContactStatus::Active {
        return Ok(Some(OutboxState::Suppressed));
    }
    let ok = composer
        .compose(&gate.recipient)
        .map_err(|e| e.to_string())
        .and_then(|m| compliance::gate(&m, &config.settings).map_err(|e| e.to_string()));
    match ok {
        Ok(()) => Ok(Some(OutboxState::Sent)),
        Err(e) => {
            tracing::error!(outbox_id, error = %e, "this message would not be sent");
            Ok(Some(OutboxState::Failed))
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
    fn dead_holders() {
        let me = holder_id();
        assert!(!holder_is_dead(&me));
        let host = me.rsplit_once(':').unwrap().0;
        assert!(holder_is_dead(&format!("{host}:4294967")));
        assert!(!holder_is_dead("some-other-host:1"));
    }
}
