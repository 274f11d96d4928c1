//! `fairsend import` and the campaign contact files of `send`/`check`: calls
//! `app::contacts` and prints its reports (human or `--json`). No rule of a row is decided here.

use std::path::Path;

use fairsend::app::contacts::{self, BadRows, ContactsError, ImportReport};
use fairsend::config::ConfigDir;
use fairsend::store::Store;

use crate::cli::BadInput;
use crate::cli::Problems;
use crate::cli::setup::load_secret;
use crate::cli::terminal::tell;

/// The exit code an app error deserves: 2 for the user's input, 1 otherwise.
fn exit_code(e: ContactsError) -> anyhow::Error {
    match e {
        // Its own type stays in the chain: `main` knows it as bad input.
        ContactsError::File(e) => e.into(),
        e if e.is_bad_input() => BadInput(e.to_string()).into(),
        e => e.into(),
    }
}

pub async fn import(
    config: &ConfigDir,
    store: &Store,
    file: &Path,
    register: &str,
    mode: BadRows,
    json: bool,
) -> anyhow::Result<()> {
    let secret = load_secret(config, store).await?;
    let report = match contacts::import(config, store, &secret, file, register, mode).await {
        Ok(report) => report,
        Err(ContactsError::Strict { file, errors }) => {
            for error in &errors {
                tell!("{error}");
            }
            return Err(exit_code(ContactsError::Strict { file, errors }));
        }
        Err(e) => return Err(exit_code(e)),
    };
    print_import(&report, json);
    let not_imported = report.not_imported();
    if report.rejected_file.is_some() && report.outcome.refused.is_empty() {
        return Ok(());
    }
    if not_imported > 0 {
        return Err(Problems(format!(
            "{not_imported} row(s) were not imported; the other rows were"
        ))
        .into());
    }
    Ok(())
}

fn print_import(report: &ImportReport, json: bool) {
    let (outcome, file) = (&report.outcome, report.file.display());
    for error in &report.errors {
        tell!("{error}");
    }
    for (source, reason) in &outcome.refused {
        tell!("{source}: email: {}", reason.import_refusal());
    }
    if json {
        crate::cli::terminal::outln!(
            "{}",
            serde_json::json!({
                "file": file.to_string(),
                "register": report.register,
                "inserted": outcome.inserted,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "merged_duplicates": report.merged_duplicates,
                "refused_suppressed": outcome.refused.len(),
                "errors": report.errors,
                "rejected_file": report.rejected_file.as_ref().map(|p| p.display().to_string()),
            })
        );
    } else {
        crate::cli::terminal::outln!(
            "{file}: register {}: {} inserted, {} updated, {} unchanged, {} duplicate row(s) merged, {} rejected",
            report.register,
            outcome.inserted,
            outcome.updated,
            outcome.unchanged,
            report.merged_duplicates,
            report.not_imported()
        );
    }
    if let Some(path) = &report.rejected_file {
        eprintln!(
            "{} rejected row(s) written, with the reason for each, to {}",
            report.errors.len(),
            path.display()
        );
    }
}
