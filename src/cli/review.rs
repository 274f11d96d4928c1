//! `review`, `approve` and `preview` on the command line: the footer variants written for the
//! approver (listed, or as JSON), the recorded approval, one recipient's exact message (the
//! whole .eml, or its text or HTML part).

use std::path::Path;

use fairsend::app::approve::{ApproveError, approve, approver_name};
use fairsend::app::review::{Review, preview, review};
use fairsend::config::ConfigDir;
use fairsend::model::EmailAddress;
use fairsend::store::Store;
use fairsend::suppress::Secret;

use super::args::PreviewFormat;
use super::campaign::prepare;
use super::output::show;
use super::{BadInput, Problems};

/// `review CAMPAIGN [--out DIR] [--json]`.
pub async fn run_review(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    out: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let written = review(config, store, secret, file, out, &mut show).await?;
    if json {
        crate::cli::terminal::outln!("{}", review_json(&written));
        return Ok(());
    }
    for v in &written.variants {
        crate::cli::terminal::outln!(
            "{:<50} {:>6} recipient(s)  {}",
            v.key.id(),
            v.recipients,
            &v.hash[..12]
        );
    }
    crate::cli::terminal::outln!(
        "{} variant(s) written; open {}",
        written.variants.len(),
        written.index.display()
    );
    Ok(())
}

fn review_json(r: &Review) -> serde_json::Value {
    serde_json::json!({
        "campaign": r.campaign,
        "index": r.index.display().to_string(),
        "combined_hash": r.combined_hash,
        "variants": r.variants.iter().map(|v| serde_json::json!({
            "id": v.key.id(), "register": v.key.register, "locale": v.key.locale,
            "legal_basis": v.key.legal_basis, "recipients": v.recipients, "sha256": v.hash,
        })).collect::<Vec<_>>(),
    })
}

/// `approve CAMPAIGN --by NAME`: the campaign's contact files are imported first (as `send`
/// would), then the same use case as the admin page's approve button.
pub async fn run_approve(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    by: &str,
) -> anyhow::Result<()> {
    approver_name(by).map_err(|_| BadInput("--by needs the approver's name".into()))?;
    let campaign = config.load_campaign(file)?;
    prepare(config, store, &campaign, secret, false).await?;
    let approval = match approve(config, store, &campaign, by).await {
        Ok(approval) => approval,
        Err(e @ ApproveError::NothingToApprove) => return Err(Problems(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    crate::cli::terminal::outln!(
        "approved {} ({} footer variant(s), sha256 {}) by {}",
        approval.campaign,
        approval.variants,
        &approval.combined_hash[..16],
        approval.by
    );
    Ok(())
}

/// `preview CAMPAIGN --to ADDRESS [--format eml|text|html]`.
pub async fn run_preview(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    to: &str,
    format: PreviewFormat,
) -> anyhow::Result<()> {
    let address = EmailAddress::parse(to).map_err(|e| BadInput(format!("--to: {e}")))?;
    let message = preview(config, store, secret, file, &address, &mut show).await?;
    match format {
        PreviewFormat::Eml => crate::cli::terminal::write_bytes(&message.bytes),
        PreviewFormat::Text => crate::cli::terminal::write_bytes(message.text.as_bytes()),
        PreviewFormat::Html => crate::cli::terminal::write_bytes(message.html.as_bytes()),
    }
    Ok(())
}
