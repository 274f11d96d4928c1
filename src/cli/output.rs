//! Printing shared by the commands: findings (at most 20 per code, the rest with --json),
//! pretty JSON, timestamps, counted nouns, and the notices a use case reports while it runs
//! (bad rows, suppressed rows, findings, overrides). Human text goes through the terminal
//! module's escaping; nothing here decides anything.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fairsend::app::campaign::Notice;
use fairsend::compliance::Finding;

use super::terminal::{printable_lines, tell};

pub fn print_findings(findings: &[Finding]) {
    const SHOWN_PER_CODE: usize = 20;
    let mut shown: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in findings {
        let n = shown.entry(f.code).or_default();
        *n += 1;
        if *n <= SHOWN_PER_CODE {
            crate::cli::terminal::outln!(
                "{}",
                printable_lines(&format!(
                    "{}[{}] {}: {}",
                    f.severity.as_str(),
                    f.code,
                    f.subject,
                    f.message
                ))
            );
        }
    }
    for (code, n) in shown {
        if n > SHOWN_PER_CODE {
            crate::cli::terminal::outln!(
                "… and {} more {code} finding(s) (all of them with --json)",
                n - SHOWN_PER_CODE
            );
        }
    }
}

pub fn print_json(value: &impl serde::Serialize) {
    crate::cli::terminal::outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A stored timestamp as RFC 3339 (UTC, seconds).
pub fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// "1 message", "2 messages".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Shows a use case's notice the moment it happens.
pub fn show(notice: Notice<'_>) {
    match notice {
        Notice::BadRow(e) => tell!("{e}"),
        Notice::RowsSetAside {
            file,
            rows,
            written,
        } => eprintln!(
            "{}: {rows} bad row(s) set aside (--skip-invalid), written with the reason for each to {}",
            file.display(),
            written.display()
        ),
        Notice::SuppressedRow { source, reason } => {
            tell!("{source}: skipped: {}", reason.import_refusal())
        }
        Notice::Findings(findings) => print_findings(findings),
        Notice::InsecureLinksAllowed => eprintln!(
            "WARNING: sending with unusable unsubscribe links because of --allow-insecure-links"
        ),
        Notice::DnsProblemsAllowed { errors } => eprintln!(
            "WARNING: sending despite {errors} DNS problem(s) because of --allow-dns-problems: receivers are likely to reject or junk this campaign"
        ),
        Notice::RunStarts { stop } => stop_on_ctrl_c(Arc::clone(stop)),
    }
}

/// Ctrl-C stops claiming new messages; those in flight finish.
fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            // Stop first: eprintln! would panic on a closed stderr, and the run would then
            // never stop.
            stop.store(true, Ordering::SeqCst);
            let _ = writeln!(
                std::io::stderr(),
                "stopping: finishing the messages in flight (run `fairsend send` again to resume)"
            );
        }
    });
}
