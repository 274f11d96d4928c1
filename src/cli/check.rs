//! `check` and `dns check` on the command line: the findings (text, at most 20 per code, or
//! JSON) and the one-line summary; exit 1 when there is an error. A configuration that does
//! not load is shown as its CFG001 finding.

use std::path::Path;

use fairsend::app::check::{check, config_findings, dns_check};
use fairsend::compliance::{CheckReport, Severity};
use fairsend::config::{ConfigDir, ConfigError};
use fairsend::store::Store;
use fairsend::suppress::Secret;

use super::Problems;
use super::output::{print_findings, print_json, show};

/// `check CAMPAIGN [--skip-invalid] [--resolver] [--json]`.
pub async fn run(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    resolver: Option<&str>,
    skip_invalid: bool,
    json: bool,
) -> anyhow::Result<()> {
    let campaign = match config.load_campaign(file) {
        Ok(c) => c,
        Err(e) => return Err(config_problem(e, json)),
    };
    let report = check(
        config,
        store,
        secret,
        &campaign,
        resolver,
        skip_invalid,
        &mut show,
    )
    .await?;
    if json {
        print_json(&report);
    } else {
        print_findings(&report.findings);
        print_summary(&report);
    }
    if report.errors() > 0 {
        return Err(Problems(format!("{}: not sendable", campaign.name)).into());
    }
    Ok(())
}

fn print_summary(report: &CheckReport) {
    let a = &report.audience;
    let warnings = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    crate::cli::terminal::outln!(
        "check {}: {} selected, {} eligible ({} passive, {} ceased, {} suppressed excluded); {} message(s) rendered and checked; {} footer variant(s); {} error(s), {} warning(s)",
        report.campaign,
        a.selected,
        a.eligible,
        a.excluded_passive,
        a.excluded_ceased,
        a.excluded_suppressed,
        report.messages_checked,
        report.variants,
        report.errors(),
        warnings
    );
}

/// A configuration that does not load, shown as check's one finding: exit 1.
pub fn config_problem(e: ConfigError, json: bool) -> anyhow::Error {
    config_problems(vec![e], json)
}

/// A configuration that does not load, each file's first error one CFG001 finding: exit 1.
pub fn config_problems(problems: Vec<ConfigError>, json: bool) -> anyhow::Error {
    let findings: Vec<_> = problems.into_iter().flat_map(config_findings).collect();
    if json {
        crate::cli::terminal::outln!("{}", serde_json::json!({ "findings": findings }));
    } else {
        print_findings(&findings);
    }
    let n = findings.len();
    Problems(format!(
        "check: the configuration has {n} error(s); nothing else was checked until they are fixed"
    ))
    .into()
}

/// `dns check CAMPAIGN [--resolver] [--json]`: one JSON object per finding with --json.
pub async fn dns(
    config: &ConfigDir,
    file: &Path,
    resolver: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let findings = dns_check(config, file, resolver).await?;
    if json {
        for f in &findings {
            crate::cli::terminal::outln!(
                "{}",
                serde_json::json!({
                    "code": f.code, "severity": f.severity, "subject": f.subject, "result": f.result, "message": f.message,
                })
            );
        }
    } else {
        print_findings(&findings);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        return Err(Problems(format!("dns check: {errors} error(s)")).into());
    }
    Ok(())
}
