//! `fairsend bounces …`: turns the arguments into a call of `app::bounces` and prints what it
//! returns (human or `--json`). No decisions about bounces are made here.

use std::path::{Path, PathBuf};

use fairsend::app::bounces::{self, BounceFilter, BouncesError, IngestSummary, Source};
use fairsend::config::ConfigDir;
use fairsend::inbound::Inbound;
use fairsend::store::{BounceDecision, BounceEntry, Store};

use crate::cli::BadInput;
use crate::cli::Problems;
use crate::cli::args::BouncesAction;
use crate::cli::output::format_millis;
use crate::cli::output::print_json;
use crate::cli::setup::load_secret;
use crate::cli::terminal::say;

pub async fn run(config: &ConfigDir, store: &Store, action: BouncesAction) -> anyhow::Result<()> {
    let settings = &config.settings.bounces;
    match action {
        BouncesAction::Ingest {
            files,
            mbox,
            maildir,
            json,
        } => {
            let secret = load_secret(config, store).await?;
            let source = source_of(files, mbox, maildir)?;
            let summary = bounces::ingest_from(store, &secret, settings, source)
                .await
                .map_err(exit_code)?;
            print_summary(&summary, json);
        }
        BouncesAction::Poll { json } => poll(config, store, json).await?,
        BouncesAction::List { limit, json } => {
            let entries = bounces::list(store, limit, &BounceFilter::default()).await?;
            print_list(&entries, json);
        }
        BouncesAction::Confirm { id, by } => decide(config, store, id, &by, true).await?,
        BouncesAction::Dismiss { id, by } => decide(config, store, id, &by, false).await?,
        BouncesAction::Parse { files, json } => {
            let secret = load_secret(config, store).await?;
            for file in files {
                let parsed = bounces::parse_file(&secret, settings, &file).map_err(exit_code)?;
                print_parsed(&file, &parsed, json);
            }
        }
    }
    Ok(())
}

/// The exit code an app error deserves: 2 for the user's input, 1 otherwise.
fn exit_code(e: BouncesError) -> anyhow::Error {
    match e {
        BouncesError::NotUnverified(_) => Problems(e.to_string()).into(),
        e if e.is_bad_input() => BadInput(e.to_string()).into(),
        e => e.into(),
    }
}

/// Which messages the arguments name: files, `-` alone (stdin), `--mbox` or `--maildir`.
fn source_of(
    files: Vec<PathBuf>,
    mbox: Option<PathBuf>,
    maildir: Option<PathBuf>,
) -> anyhow::Result<Source> {
    let dash = |f: &PathBuf| f == Path::new("-");
    let stdin = files.len() == 1 && dash(&files[0]);
    Ok(match (files.as_slice(), mbox, maildir) {
        ([], None, Some(dir)) => Source::Maildir(dir),
        ([], Some(path), None) => Source::Mbox(path),
        (_, None, None) if stdin => {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)?;
            Source::Messages(vec![raw])
        }
        ([_, ..], None, None) if !files.iter().any(dash) => Source::Files(files),
        _ => {
            return Err(BadInput(
                "give message files (FILE.eml …), `-` alone (stdin), --mbox PATH or --maildir DIR"
                    .into(),
            )
            .into());
        }
    })
}

fn print_summary(summary: &IngestSummary, json: bool) {
    if json {
        print_json(summary);
        return;
    }
    crate::cli::terminal::outln!(
        "{} message(s): {} new, {} already seen; {} DSN, {} complaint(s), {} auto-reply(ies), {} reply(ies), {} unknown; {} hard-bounced address(es) suppressed, {} after repeated soft bounces, {} opt-out(s); {} unverified report(s) waiting for `bounces confirm|dismiss`",
        summary.messages,
        summary.new,
        summary.duplicates,
        summary.dsn,
        summary.complaints,
        summary.auto_replies,
        summary.replies,
        summary.unknown,
        summary.suppressed_hard,
        summary.suppressed_soft_limit,
        summary.optouts,
        summary.unverified
    );
}

fn print_list(entries: &[BounceEntry], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|b| {
                serde_json::json!({
                    "id": b.id, "verification": b.verification,
                    "at": format_millis(b.at), "recipient": b.recipient, "campaign": b.campaign,
                    "kind": b.kind, "class": b.class, "reason": b.reason, "status": b.status,
                    "reply_code": b.reply_code, "diagnostic": b.diagnostic, "action": b.action,
                })
            })
            .collect();
        print_json(&rows);
        return;
    }
    if entries.is_empty() {
        say!("no bounces");
    }
    for b in entries {
        say!(
            "{:>6} {}  {:<10} {:<36} {:<20} {:<4} {:<20} {:<7} {:<22} {}",
            b.id,
            format_millis(b.at),
            b.verification,
            b.recipient.as_deref().unwrap_or("(unknown)"),
            b.campaign.as_deref().unwrap_or("-"),
            b.class.as_deref().unwrap_or("-"),
            b.reason,
            b.status.as_deref().unwrap_or("-"),
            b.action,
            b.diagnostic
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>()
        );
    }
}

async fn decide(
    config: &ConfigDir,
    store: &Store,
    id: i64,
    by: &str,
    confirm: bool,
) -> anyhow::Result<()> {
    let decision = if confirm {
        BounceDecision::Confirm
    } else {
        BounceDecision::Dismiss
    };
    let suppressed = bounces::decide(store, &config.settings.bounces, id, decision, by)
        .await
        .map_err(exit_code)?;
    let what = match (confirm, suppressed) {
        (true, true) => "confirmed; the address is suppressed",
        (true, false) => "confirmed; recorded (no suppression follows from it yet)",
        (false, _) => "dismissed; it changes nothing",
    };
    crate::cli::terminal::outln!("bounce {id} {what}");
    Ok(())
}

fn print_parsed(file: &Path, parsed: &Inbound, json: bool) {
    if json {
        crate::cli::terminal::outln!(
            "{}",
            serde_json::json!({
                "file": file.display().to_string(),
                "kind": parsed.kind,
                "recipients": parsed.recipients.iter().map(|r| serde_json::json!({
                    "address": r.address, "action": r.action, "status": r.status,
                    "reply_code": r.reply_code, "diagnostic": r.diagnostic,
                    "class": r.class, "reason": r.reason,
                })).collect::<Vec<_>>(),
            })
        );
        return;
    }
    say!("{}: {}", file.display(), parsed.kind.as_str());
    for r in &parsed.recipients {
        say!(
            "  {} {} status={} code={} {}",
            r.address.as_deref().unwrap_or("(unknown recipient)"),
            r.class.map(|c| c.as_str()).unwrap_or("-"),
            r.status.as_deref().unwrap_or("-"),
            r.reply_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.reason.as_str()
        );
    }
}

/// `bounces poll`: one pass over the IMAP bounce mailbox.
async fn poll(config: &ConfigDir, store: &Store, json: bool) -> anyhow::Result<()> {
    let secret = load_secret(config, store).await?;
    let s = fairsend::app::bounce_poll::poll_once(store, &secret, &config.settings).await?;
    if json {
        print_json(&s);
    } else {
        crate::cli::terminal::outln!(
            "{} message(s): {} new, {} already handled; {} DSN, {} complaint(s), {} auto-reply(ies), {} reply(ies), {} unknown; {} hard-bounced address(es) suppressed, {} after repeated soft bounces, {} opt-out(s); {} unverified report(s) waiting for `bounces confirm|dismiss`; {} moved or flagged",
            s.messages,
            s.new,
            s.already_handled,
            s.dsn,
            s.complaints,
            s.auto_replies,
            s.replies,
            s.unknown,
            s.suppressed_hard,
            s.suppressed_soft_limit,
            s.optouts,
            s.unverified,
            s.finished
        );
    }
    Ok(())
}
