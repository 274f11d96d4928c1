//! Sending a campaign, and sending a test of it: the preconditions (the development key never
//! sends real mail, usable unsubscribe links, every pre-flight check including approval and
//! DNS, the register expiry the send loop enforces), then the run itself through `send/`.
//! A refusal is an [`AppError::Refused`] after its findings went to the caller's notices;
//! progress and the final report are the caller's to show.

use std::path::Path;

use super::AppError;
use super::campaign::{
    Notice, Notify, apply_campaign_contacts, chosen_transport, dns_preflight, fields_after_import,
    load_dkim, parse_campaign_contacts, prepare, refuse_development_key, with_tracking,
};
use crate::compliance::{Depth, check_campaign, insecure_link_findings};
use crate::compose::Composer;
use crate::config::{Campaign, ConfigDir, TransportUrl};
use crate::dns::DkimSigning;
use crate::model::{EmailAddress, Recipient, RunState, Schedule};
use crate::model::{Finding, Severity};
use crate::send::{SendError, SendOptions, SendReport, run_campaign};
use crate::store::Store;
use crate::suppress::Secret;

/// What `send` may override or change in its preconditions (the run's own options are in
/// [`SendOptions`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SendRequest<'a> {
    /// `--transport`: this transport instead of `[transport] url`.
    pub transport: Option<&'a str>,
    /// `--resolver`: this DNS server for the pre-flight.
    pub resolver: Option<&'a str>,
    pub allow_dns_problems: bool,
    pub allow_insecure_links: bool,
    /// Send to the good rows of the contact files, setting the bad ones aside.
    pub skip_invalid: bool,
    /// `--at`: start no earlier than this local time of the campaign's time zone.
    pub at: Option<&'a str>,
}

/// A finished (or dry) run and the transport it went through.
pub struct Sent {
    pub report: SendReport,
    pub transport: TransportUrl,
}

/// Runs (or resumes) the campaign of `campaign_file` once every precondition holds.
pub async fn send(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign_file: &Path,
    request: SendRequest<'_>,
    mut options: SendOptions,
    notify: Notify<'_>,
) -> Result<Sent, AppError> {
    let campaign = config.load_campaign(campaign_file)?;
    options.schedule = schedule_of(&campaign, request.at)?;
    refuse_cancelled(store, &campaign.name).await?;
    let transport_url = chosen_transport(config, request.transport)?;
    if !options.dry_run {
        refuse_development_key(config, secret, &transport_url)?;
        refuse_insecure_links(config, &transport_url, request.allow_insecure_links, notify)?;
    }
    let dkim = load_dkim(config)?;
    let pending = parse_campaign_contacts(config, &campaign, request.skip_invalid, notify)?;
    let composer = Composer::new(config, &campaign, secret.clone())?.with_dkim(dkim.clone());
    composer.check_fields(&fields_after_import(store, &campaign, &pending).await?)?;
    apply_campaign_contacts(store, pending, secret, notify).await?;
    options.joinable_since = Some(store.database_clock().await?);
    let composer = with_tracking(composer, store, &campaign).await?;
    let preflight = Preflight {
        transport: &transport_url,
        dkim: dkim.as_deref(),
        request,
    };
    refuse_unsendable(config, store, &campaign, &composer, preflight, notify).await?;
    let transport = crate::send::open(&transport_url, &config.settings.transport)?;
    notify(Notice::RunStarts {
        stop: &options.stop,
    });
    let report = run_campaign(config, &campaign, &composer, store, &*transport, &options)
        .await
        .map_err(|e| match e {
            SendError::ExpiredRegister { .. } | SendError::TransportSwitch { .. } => {
                AppError::Refused(format!("send refused: {e}"))
            }
            other => other.into(),
        })?;
    Ok(Sent {
        report,
        transport: transport_url,
    })
}

/// The campaign's `[schedule]`, its start moved to `--at` when given.
fn schedule_of(campaign: &Campaign, at: Option<&str>) -> Result<Schedule, AppError> {
    let mut schedule = campaign.schedule.clone();
    if let Some(at) = at {
        let start = schedule
            .local_time(at)
            .map_err(|e| AppError::BadInput(format!("--at: {e}")))?;
        schedule.start = Some(start);
    }
    Ok(schedule)
}

/// A cancelled campaign sends nothing again (its unsent rows are `cancelled`).
async fn refuse_cancelled(store: &Store, name: &str) -> Result<(), AppError> {
    let Some(id) = store.find_campaign_id(name).await? else {
        return Ok(());
    };
    if store.run_state(id).await? == RunState::Cancelled {
        return Err(AppError::Refused(format!(
            "send refused: campaign '{name}' was cancelled; a cancelled campaign cannot be sent              again (copy it under a new name to send it)"
        )));
    }
    Ok(())
}

/// Unsubscribe links pointing at loopback or plain http, while the transport reaches real
/// mailboxes: refused unless the operator allowed them (and then said loudly).
fn refuse_insecure_links(
    config: &ConfigDir,
    transport_url: &TransportUrl,
    allowed: bool,
    notify: Notify<'_>,
) -> Result<(), AppError> {
    let findings = insecure_link_findings(&config.settings, transport_url);
    if findings.is_empty() {
        return Ok(());
    }
    notify(Notice::Findings(&findings));
    if !allowed {
        return Err(AppError::Refused(format!(
            "send refused: recipients could not use the unsubscribe links of {}; set \
             [links] public_base_url to the public https address of `fairsend serve` \
             (or pass --allow-insecure-links)",
            config.settings.public_base_url
        )));
    }
    notify(Notice::InsecureLinksAllowed);
    Ok(())
}

/// What the DNS part of the pre-flight needs.
struct Preflight<'a> {
    transport: &'a TransportUrl,
    dkim: Option<&'a DkimSigning>,
    request: SendRequest<'a>,
}

/// Every check of `fairsend check` (audience and approval) plus DNS: an error refuses the
/// send, except DNS errors the operator overrode.
async fn refuse_unsendable(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
    composer: &Composer,
    preflight: Preflight<'_>,
    notify: Notify<'_>,
) -> Result<(), AppError> {
    // The DNS lookups wait on the network while the audience pass reads the database.
    let (report, dns_findings) = tokio::join!(
        check_campaign(
            config,
            campaign,
            composer,
            store,
            Depth::ErrorsBeforeSending,
        ),
        dns_preflight(
            config,
            campaign,
            preflight.transport,
            preflight.request.resolver,
            preflight.dkim,
        ),
    );
    let (mut report, dns_findings) = (report?, dns_findings?);
    let dns_errors = errors_in(&dns_findings);
    if dns_errors > 0 && preflight.request.allow_dns_problems {
        notify(Notice::Findings(&dns_findings));
        notify(Notice::DnsProblemsAllowed { errors: dns_errors });
        tracing::warn!(
            dns_errors,
            "sending despite DNS problems (--allow-dns-problems)"
        );
    } else {
        report.findings.extend(dns_findings);
    }
    if report.errors() == 0 {
        return Ok(());
    }
    notify(Notice::Findings(&report.findings));
    Err(AppError::Refused(format!(
        "send refused: `fairsend check {}` finds {} error(s){}",
        campaign.file.display(),
        report.errors(),
        if dns_errors > 0 {
            " (DNS problems can be overridden with --allow-dns-problems)"
        } else {
            ""
        }
    )))
}

fn errors_in(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count()
}

/// One test message sent by [`send_test`].
pub struct TestSent {
    /// 1, 2, … in the order sent.
    pub number: usize,
    /// The contact whose message it is.
    pub as_contact: EmailAddress,
    /// The transport's answer.
    pub reply: String,
}

/// What `send --test-to` sends, and where.
pub struct TestRequest<'a> {
    pub campaign_file: &'a Path,
    /// The address every test message goes to.
    pub to: &'a EmailAddress,
    /// How many contacts' messages (the first eligible ones).
    pub sample: usize,
    /// `--transport`: this transport instead of `[transport] url`.
    pub transport: Option<&'a str>,
}

/// `send --test-to`: the messages of the first `sample` eligible contacts, to `to`, marked
/// [TEST], through the campaign's transport, each passed through the compliance gate. No
/// outbox row is created and no state changes. `on_sent` hears of each message as it goes.
pub async fn send_test(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    request: TestRequest<'_>,
    notify: Notify<'_>,
    on_sent: &mut dyn FnMut(TestSent),
) -> Result<(), AppError> {
    let TestRequest {
        campaign_file,
        to,
        sample,
        transport,
    } = request;
    let campaign = config.load_campaign(campaign_file)?;
    let transport_url = chosen_transport(config, transport)?;
    refuse_development_key(config, secret, &transport_url)?;
    let composer = prepare(config, store, &campaign, secret, false, notify).await?;
    let composer = with_tracking(composer, store, &campaign).await?;
    let chosen = first_eligible(config, store, &campaign, sample).await?;
    let transport = crate::send::open(&transport_url, &config.settings.transport)?;
    for (n, recipient) in chosen.iter().enumerate() {
        let message = composer.compose_test(recipient, to)?;
        let message = crate::compliance::gate(message, &config.settings).map_err(|e| {
            AppError::Refused(format!("the test message fails the compliance gate: {e}"))
        })?;
        let label = format!("{}-test{}", campaign.name, n + 1);
        let reply = transport
            .deliver(&label, &message)
            .await
            .map_err(|e| AppError::Refused(format!("test message {}: {e:?}", n + 1)))?;
        // The outbox transport stages files in a directory of its own per run.
        let _ = transport.clean_up_after(&label, std::process::id());
        on_sent(TestSent {
            number: n + 1,
            as_contact: recipient.contact.email.clone(),
            reply: reply.to_string(),
        });
    }
    Ok(())
}

/// The first `sample` contacts of the audience that would receive the campaign.
async fn first_eligible(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
    sample: usize,
) -> Result<Vec<Recipient>, AppError> {
    let mut chosen = Vec::new();
    let today = chrono::Utc::now().date_naive();
    let scope = crate::compliance::current_scope(store, campaign).await?;
    store
        .for_each_member(&scope, |gate| {
            let facts = crate::compliance::ContactFacts::of_member(config, &gate);
            if chosen.len() < sample && !crate::compliance::eligibility(&facts, today).is_excluded()
            {
                chosen.push(gate.recipient);
            }
        })
        .await?;
    if chosen.is_empty() {
        return Err(AppError::Refused(format!(
            "{}: no eligible contact to take a test message from",
            campaign.name
        )));
    }
    Ok(chosen)
}
