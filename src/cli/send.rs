//! `send` and `send --test-to` on the command line: builds the run's options from the flags,
//! calls `app::send`, and shows the progress (a bar on a terminal, a log line every 100
//! messages otherwise) and the final report (text or --json).

use std::io::IsTerminal;
use std::path::Path;

use fairsend::app::send::{SendRequest, TestRequest, TestSent};
use fairsend::config::{ConfigDir, TransportUrl};
use fairsend::model::EmailAddress;
use fairsend::send::{ProgressFn, SendOptions, SendReport};
use fairsend::store::Store;
use fairsend::suppress::Secret;

use super::BadInput;
use super::args::SendArgs;
use super::output::{plural, show};

/// `send`, or `send --test-to` when an address is given.
pub async fn run(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    args: SendArgs,
) -> anyhow::Result<()> {
    if let Some(to) = &args.test_to {
        let over = args.transport.as_deref();
        return send_test(config, store, secret, &args.campaign, to, args.sample, over).await;
    }
    let request = SendRequest {
        transport: args.transport.as_deref(),
        resolver: args.resolver.as_deref(),
        allow_dns_problems: args.allow_dns_problems,
        allow_insecure_links: args.allow_insecure_links,
        skip_invalid: args.skip_invalid,
        at: args.at.as_deref(),
    };
    let flags = RunFlags {
        dry_run: args.dry_run,
        resend_interrupted: args.resend_interrupted,
        resend_uncertain: args.resend_uncertain,
        force_transport: args.force_transport,
        no_wait: args.no_wait,
        json: args.json,
    };
    send(config, store, secret, &args.campaign, request, flags).await
}

/// The flags of `send` that shape the run itself.
struct RunFlags {
    dry_run: bool,
    resend_interrupted: bool,
    resend_uncertain: bool,
    force_transport: bool,
    no_wait: bool,
    json: bool,
}

/// `send`: every precondition, the run, the report.
async fn send(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign_file: &Path,
    request: SendRequest<'_>,
    flags: RunFlags,
) -> anyhow::Result<()> {
    let options = SendOptions {
        dry_run: flags.dry_run,
        resend_interrupted: flags.resend_interrupted,
        resend_uncertain: flags.resend_uncertain,
        force_transport: flags.force_transport,
        no_wait: flags.no_wait,
        on_progress: Some(progress_display()),
        ..Default::default()
    };
    let sent = fairsend::app::send::send(
        config,
        store,
        secret,
        campaign_file,
        request,
        options,
        &mut show,
    )
    .await?;
    print_report(&sent.report, &sent.transport, flags.json);
    Ok(())
}

/// `send --test-to`: the test messages, one line each as it is sent.
async fn send_test(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign_file: &Path,
    to: &str,
    sample: usize,
    transport_override: Option<&str>,
) -> anyhow::Result<()> {
    let to = EmailAddress::parse(to).map_err(|e| BadInput(format!("--test-to {to}: {e}")))?;
    let mut on_sent = |sent: TestSent| {
        crate::cli::terminal::outln!(
            "test message {} (as {}) sent to {to}: {}",
            sent.number,
            sent.as_contact,
            sent.reply
        );
    };
    let request = TestRequest {
        campaign_file,
        to: &to,
        sample,
        transport: transport_override,
    };
    fairsend::app::send::send_test(config, store, secret, request, &mut show, &mut on_sent).await?;
    Ok(())
}

/// A progress bar with sent/total, rate and ETA on a terminal; a log line every 100 messages
/// otherwise.
fn progress_display() -> ProgressFn {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(move |r: &SendReport, n: u64| {
            let total = r.due_at_start.max(n);
            bar.set_length(total);
            bar.set_position(n);
            let eta = bar.eta().as_secs();
            bar.set_message(format!(
                "{n}/{} · {:.0}/s · ETA {}m{:02}s · sent {}, deferred {}, failed {}, suppressed {}",
                plural(total, "message", "messages"),
                bar.per_sec(),
                eta / 60,
                eta % 60,
                r.sent,
                r.deferred,
                r.failed,
                r.suppressed
            ));
        })
    } else {
        Box::new(|r: &SendReport, n: u64| {
            if n.is_multiple_of(100) {
                tracing::info!(
                    processed = n,
                    total = r.due_at_start.max(n),
                    sent = r.sent,
                    deferred = r.deferred,
                    failed = r.failed,
                    suppressed = r.suppressed,
                    "progress"
                );
            }
        })
    }
}

fn print_report(report: &SendReport, transport: &TransportUrl, json: bool) {
    if json {
        crate::cli::terminal::outln!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let verb = if report.dry_run { "would send" } else { "sent" };
    crate::cli::terminal::outln!(
        "campaign {} via {transport}: {verb} {}, deferred {}, failed {}, suppressed {}",
        report.campaign,
        plural(report.sent, "message", "messages"),
        report.deferred,
        report.failed,
        report.suppressed
    );
    if nothing_was_due(report) {
        crate::cli::terminal::outln!(
            "  nothing was due: every eligible recipient already has this campaign, or there is \
             none (`fairsend status {}` counts them; `fairsend check` says who is excluded and why)",
            report.campaign
        );
    }
    if report.cancelled {
        crate::cli::terminal::outln!(
            "  the campaign was cancelled: the messages not yet sent will never be sent"
        );
    }
    if let Some(at) = report.window_opens_at {
        let when = report
            .window_opens_local
            .clone()
            .unwrap_or_else(|| crate::cli::output::format_millis(at));
        crate::cli::terminal::outln!(
            "  outside the campaign's send window: nothing more is sent until {when} (run `send` again then, or without --no-wait to wait)"
        );
    }
    print_interruptions(report);
    print_what_comes_next(report);
}

/// What an earlier, interrupted run left and how this one resolved it.
fn print_interruptions(report: &SendReport) {
    if report.interrupted_sent
        + report.interrupted_requeued
        + report.interrupted_failed
        + report.interrupted_uncertain
        > 0
    {
        crate::cli::terminal::outln!(
            "  an earlier run was interrupted: {} found delivered, {} requeued, {} marked failed (not resent), {} uncertain (another transport kind)",
            report.interrupted_sent,
            report.interrupted_requeued,
            report.interrupted_failed,
            report.interrupted_uncertain
        );
    }
    if report.uncertain_requeued > 0 {
        crate::cli::terminal::outln!(
            "  {} uncertain message(s) requeued by --resend-uncertain",
            report.uncertain_requeued
        );
    }
    if report.uncertain + report.interrupted_uncertain > 0 {
        crate::cli::terminal::outln!(
            "  {} message(s) uncertain: the connection failed after the data was sent, so the server may have accepted them; \
             they are not resent (list them with `fairsend status {}`, resend with `fairsend send --resend-uncertain`)",
            report.uncertain + report.interrupted_uncertain,
            report.campaign
        );
    }
}

/// When the campaign goes on: the A/B decision, or the next retry.
fn print_what_comes_next(report: &SendReport) {
    if let Some(at) = report.ab_decision_at {
        let when = chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        crate::cli::terminal::outln!(
            "  A/B test phase sent; the winner is chosen at {when}: run `fairsend send` again then (without --no-wait it waits)"
        );
    } else if report.waiting_for_retry > 0 && report.window_opens_at.is_none() {
        // (Outside the window, the window's line already says when the rest goes.)
        match report
            .next_retry_at
            .filter(|at| *at > fairsend::now_millis())
            .and_then(chrono::DateTime::from_timestamp_millis)
        {
            Some(t) => crate::cli::terminal::outln!(
                "  {} message(s) wait for a retry (next due {}); run `fairsend send` again then",
                report.waiting_for_retry,
                t.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            // Due already: the run was stopped (Ctrl-C) or is paused, not waiting for a retry.
            None => crate::cli::terminal::outln!(
                "  {} message(s) not sent yet; `fairsend send` goes on with them",
                report.waiting_for_retry
            ),
        }
    }
}

/// A run that found no message to send, which a new user with an empty contact file would
/// otherwise read as a silent success.
fn nothing_was_due(r: &SendReport) -> bool {
    r.added_to_outbox == 0
        && r.due_at_start == 0
        && r.sent + r.deferred + r.failed + r.suppressed + r.uncertain == 0
        && r.interrupted_sent + r.interrupted_requeued + r.interrupted_failed == 0
        && r.interrupted_uncertain + r.uncertain_requeued + r.waiting_for_retry == 0
        && r.ab_decision_at.is_none()
        && !r.cancelled
        && r.window_opens_at.is_none()
}
