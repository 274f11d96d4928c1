//! `fairsend consent show EMAIL`: the proof of a consent given through a signup form.

use fairsend::config::ConfigDir;
use fairsend::model::EmailAddress;
use fairsend::store::Store;

use crate::cli::BadInput;
use crate::cli::output::format_millis;
use crate::cli::setup::load_secret;

fn parse_address(text: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(text).map_err(|e| BadInput(format!("{text}: {e}")).into())
}

pub async fn show(
    config: &ConfigDir,
    store: &Store,
    email: &str,
    json: bool,
) -> anyhow::Result<()> {
    let address = parse_address(email)?;
    let secret = load_secret(config, store).await?;
    let proofs = fairsend::app::signup::consent_proofs(store, &secret, &address).await?;
    if json {
        crate::cli::terminal::outln!("{}", serde_json::to_string_pretty(&proofs)?);
        return Ok(());
    }
    if proofs.is_empty() {
        crate::cli::terminal::outln!("{address}: no consent recorded through a signup form");
    }
    for p in &proofs {
        crate::cli::terminal::outln!("{address} in register {}:", p.register);
        crate::cli::terminal::outln!("  requested:      {}", format_millis(p.requested_at));
        crate::cli::terminal::outln!("  confirmed:      {}", format_millis(p.confirmed_at));
        crate::cli::terminal::outln!("  language:       {}", p.locale);
        crate::cli::terminal::outln!("  notice version: {}", p.notice_version);
        crate::cli::terminal::outln!("  notice sha256:  {}", p.notice_sha256);
        let ip = |ip: &Option<String>| ip.clone().unwrap_or_else(|| "not kept".into());
        crate::cli::terminal::outln!("  request from:   {}", ip(&p.request_ip));
        crate::cli::terminal::outln!("  confirmed from: {}", ip(&p.confirm_ip));
        if let Some(text) = &p.notice_text {
            crate::cli::terminal::outln!("  notice (HTML, as shown):\n{text}");
        }
    }
    Ok(())
}
