//! `fairsend optout …` and `fairsend erase`: calls `app::optout` and prints what it returns
//! (human or `--json`). The CLI's records in the audit log name the actor `cli`.

use fairsend::app::optout;
use fairsend::config::ConfigDir;
use fairsend::model::EmailAddress;
use fairsend::store::{OptOutEntry, Store};

use crate::cli::BadInput;
use crate::cli::args::OptoutAction;
use crate::cli::output::format_millis;
use crate::cli::output::print_json;
use crate::cli::setup::load_secret;
use crate::cli::terminal::say;

/// Who the audit log names for what the command line does.
const ACTOR: &str = "cli";

fn parse_address(text: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(text).map_err(|e| BadInput(format!("{text}: {e}")).into())
}

pub async fn run(config: &ConfigDir, store: &Store, action: OptoutAction) -> anyhow::Result<()> {
    match action {
        OptoutAction::Add { email, reason } => {
            let address = parse_address(&email)?;
            if reason
                .as_deref()
                .is_some_and(|r| r.chars().any(char::is_control))
            {
                return Err(BadInput("--reason may not contain line breaks".into()).into());
            }
            let secret = load_secret(config, store).await?;
            if optout::add(store, &secret, &address, reason.as_deref(), ACTOR).await? {
                crate::cli::terminal::outln!(
                    "{address} opted out: suppressed in every campaign from now on"
                );
            } else {
                crate::cli::terminal::outln!("{address} had already opted out; nothing changed");
            }
        }
        OptoutAction::List { json } => print_list(&optout::list(store).await?, json),
    }
    Ok(())
}

fn print_list(entries: &[OptOutEntry], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "at": format_millis(e.at), "email": e.email, "source": e.source,
                    "campaign": e.campaign, "detail": e.detail,
                })
            })
            .collect();
        print_json(&rows);
        return;
    }
    if entries.is_empty() {
        say!("no opt-outs");
    }
    for e in entries {
        say!(
            "{}  {:<40} {:<10} {}{}",
            format_millis(e.at),
            e.email.as_deref().unwrap_or("(erased)"),
            e.source.as_str(),
            e.campaign.as_deref().unwrap_or("-"),
            e.detail
                .as_deref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        );
    }
}

pub async fn erase(config: &ConfigDir, store: &Store, email: &str) -> anyhow::Result<()> {
    let address = parse_address(email)?;
    let secret = load_secret(config, store).await?;
    let report = optout::erase(store, &secret, &address, ACTOR).await?;
    if report.contact_found {
        crate::cli::terminal::outln!(
            "erased {address}: contact, {} register entr(ies), {} outbox row(s), {} signup/consent record(s) deleted; only a keyed hash remains, suppressed",
            report.memberships_deleted,
            report.outbox_rows_deleted,
            report.consent_records_deleted
        );
    } else {
        crate::cli::terminal::outln!(
            "{address} was not a contact ({} signup record(s) deleted); its keyed hash is now suppressed so that it can never be imported",
            report.consent_records_deleted
        );
    }
    Ok(())
}
