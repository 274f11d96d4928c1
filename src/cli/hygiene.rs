//! `fairsend hygiene …`: calls `app::hygiene` and prints its reports (human or `--json`).

use fairsend::app::hygiene::{
    self, CeasedReport, HygieneError, PassivateReport, PurgeReport, RegisterHealth,
};
use fairsend::audience::RowError;
use fairsend::audience::hygiene::PurgeReason;
use fairsend::config::ConfigDir;
use fairsend::store::Store;

use crate::cli::Problems;
use crate::cli::args::HygieneAction;
use crate::cli::output::print_json;
use crate::cli::terminal::tell;

pub async fn run(config: &ConfigDir, store: &Store, action: HygieneAction) -> anyhow::Result<()> {
    match action {
        HygieneAction::Ceased { file } => {
            let report = hygiene::ceased(store, &file).await.map_err(exit_code)?;
            print_ceased(&report);
            rows_not_applied(&report.errors)
        }
        HygieneAction::Passivate { file } => {
            let report = hygiene::passivate(store, &file).await.map_err(exit_code)?;
            print_passivated(&report);
            rows_not_applied(&report.errors)
        }
        HygieneAction::Purge { dry_run, json } => {
            let report = hygiene::purge(config, store, dry_run).await?;
            print_purge(&report, json);
            Ok(())
        }
        HygieneAction::Report {
            unengaged_after,
            json,
        } => {
            let rows = hygiene::report(config, store, unengaged_after).await?;
            print_report(&rows, unengaged_after, json);
            Ok(())
        }
    }
}

/// A file problem keeps its own type in the chain: `main` knows it as bad input.
fn exit_code(e: HygieneError) -> anyhow::Error {
    match e {
        HygieneError::File(e) => e.into(),
        HygieneError::Store(e) => e.into(),
    }
}

/// Exit code 1 when some rows of the file were rejected (the others were applied).
fn rows_not_applied(errors: &[RowError]) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(Problems(format!(
        "{} row(s) were not applied; the others were",
        errors.len()
    ))
    .into())
}

fn print_row_errors(errors: &[RowError]) {
    for e in errors {
        tell!("{e}");
    }
}

fn print_ceased(r: &CeasedReport) {
    print_row_errors(&r.errors);
    crate::cli::terminal::outln!(
        "{}: {} ceased business ID(s): {} contact(s) newly ceased, {} already ceased; {} ID(s) match no contact; {} row(s) rejected",
        r.file.display(),
        r.ids,
        r.newly_ceased,
        r.already_ceased,
        r.unknown,
        r.errors.len()
    );
}

fn print_passivated(r: &PassivateReport) {
    print_row_errors(&r.errors);
    crate::cli::terminal::outln!(
        "{}: {} contact(s) made passive, {} already passive or ceased, {} not found; {} row(s) rejected",
        r.file.display(),
        r.made_passive,
        r.already,
        r.not_found,
        r.errors.len()
    );
}

fn print_purge(r: &PurgeReport, json: bool) {
    if json {
        print_json(
            &serde_json::json!({"dry_run": r.dry_run, "entries": r.plan, "deleted": r.outcome}),
        );
        return;
    }
    for item in &r.plan {
        crate::cli::terminal::outln!(
            "{} {:<40} register {:<16} {}",
            if r.dry_run { "would delete" } else { "deleted" },
            item.email,
            item.register,
            match item.reason {
                PurgeReason::PastRetention => format!(
                    "retention ended {}",
                    item.retention_end.as_deref().unwrap_or("?")
                ),
                PurgeReason::PurchasedRegisterExpired => "purchased register expired".into(),
            }
        );
    }
    match &r.outcome {
        None => crate::cli::terminal::outln!(
            "dry run: {} register entr(ies) would be deleted; nothing was changed",
            r.plan.len()
        ),
        Some(o) => crate::cli::terminal::outln!(
            "{} register entr(ies) deleted; {} contact(s) left with no entry were deleted ({} outbox row(s)); suppressions keep only keyed hashes",
            o.entries_deleted,
            o.contacts_deleted,
            o.outbox_rows_deleted
        ),
    }
}

fn print_report(health: &[RegisterHealth], unengaged_after: i64, json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = health
            .iter()
            .map(|h| report_json(h, unengaged_after))
            .collect();
        print_json(&rows);
        return;
    }
    for h in health {
        let c = &h.counts;
        crate::cli::terminal::outln!(
            "{:<16} {} contacts: {} active, {} passive, {} ceased ({:.1}% ceased); {} never sent to; {} unengaged after {} sends; retention: {} within 30 days, {} past",
            h.register,
            h.contacts(),
            c.active,
            c.passive,
            c.ceased,
            h.ceased_share() * 100.0,
            c.never_sent,
            c.unengaged,
            unengaged_after,
            h.near_retention_end,
            h.past_retention
        );
    }
}

fn report_json(h: &RegisterHealth, unengaged_after: i64) -> serde_json::Value {
    let c = &h.counts;
    serde_json::json!({
        "register": h.register,
        "kind": h.kind,
        "contacts": h.contacts(),
        "by_status": {"active": c.active, "passive": c.passive, "ceased": c.ceased},
        "ceased_share": h.ceased_share(),
        "never_sent": c.never_sent,
        "unengaged": c.unengaged,
        "unengaged_after_sends": unengaged_after,
        "near_retention_end": h.near_retention_end,
        "past_retention": h.past_retention,
    })
}
