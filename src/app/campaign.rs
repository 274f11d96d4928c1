//! The steps every campaign-side use case shares: the campaign's own contact files parsed
//! (all before any is applied) and imported, the composer prepared with tracking and DKIM,
//! the transport chosen and the development key refused for real mail, the DNS pre-flight.
//! What a step finds on the way (bad rows, suppressed rows, findings, overrides) goes to the
//! caller's [`Notice`] callback at once, so the shell shows it in order; nothing prints here.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::AppError;
use crate::audience::{ParsedImport, RowError, parse_contacts_csv};
use crate::compose::Composer;
use crate::config::{Campaign, ConfigDir, TransportUrl};
use crate::dns::{DkimSigning, Dns};
use crate::model::SuppressionReason;
use crate::model::{Finding, Severity};
use crate::store::Store;
use crate::suppress::{Secret, address_hash};

/// Something a use case reports while it runs, for the shell to show at once.
pub enum Notice<'a> {
    /// A bad row of one of the campaign's contact files.
    BadRow(&'a RowError),
    /// `--skip-invalid` set a file's bad rows aside, written with their reasons to `written`.
    RowsSetAside {
        file: &'a Path,
        rows: usize,
        written: &'a Path,
    },
    /// A contact row not imported because its address is suppressed (`FILE:LINE`).
    SuppressedRow {
        source: &'a str,
        reason: SuppressionReason,
    },
    /// Findings the operator must see before the run goes on or stops.
    Findings(&'a [Finding]),
    /// Sending on although the unsubscribe links are unusable (`--allow-insecure-links`).
    InsecureLinksAllowed,
    /// Sending on despite DNS errors (`--allow-dns-problems`).
    DnsProblemsAllowed { errors: usize },
    /// The run is about to start: setting `stop` makes it claim no more messages.
    RunStarts {
        stop: &'a std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
}

/// Where a use case sends its [`Notice`]s.
pub type Notify<'n> = &'n mut dyn FnMut(Notice<'_>);

/// `--transport URL` for this run, else `[transport] url`.
pub fn chosen_transport(config: &ConfigDir, over: Option<&str>) -> Result<TransportUrl, AppError> {
    match over {
        Some(url) => {
            TransportUrl::parse(url).map_err(|e| AppError::BadInput(format!("--transport: {e}")))
        }
        None => Ok(config.settings.transport.url.clone()),
    }
}

/// The development key signs links anyone with fairsend's source can forge: it may write into
/// an outbox directory, never send real mail.
pub fn refuse_development_key(
    config: &ConfigDir,
    secret: &Secret,
    transport_url: &TransportUrl,
) -> Result<(), AppError> {
    if secret.is_development() && !transport_url.is_outbox() {
        return Err(AppError::BadInput(format!(
            "refusing to send through {transport_url} with the development signing secret: its \
             links and bounce addresses are forgeable by anyone who has fairsend's source. Set \
             {} to 32+ random bytes (e.g. `openssl rand -hex 32`); the development key works \
             with the outbox: transport only",
            config.settings.signing_secret_env
        )));
    }
    Ok(())
}

/// The campaign's own contact files, all parsed before any is applied: one bad row refuses
/// the whole send and changes nothing, unless `skip_invalid` sets the bad rows aside (written
/// to a rejected-rows file beside each contact file).
pub fn parse_campaign_contacts<'c>(
    config: &ConfigDir,
    campaign: &'c Campaign,
    skip_invalid: bool,
    notify: Notify<'_>,
) -> Result<Vec<(&'c str, ParsedImport)>, AppError> {
    let mut parsed = Vec::new();
    let mut errors = 0;
    for import in &campaign.imports {
        let register = config.registers.get(&import.register).ok_or_else(|| {
            AppError::BadInput(format!("register '{}' is not defined", import.register))
        })?;
        let p = parse_contacts_csv(&import.file, register)?;
        for e in &p.errors {
            notify(Notice::BadRow(e));
        }
        if skip_invalid {
            if let Some(path) = p.write_rejected(&import.file)? {
                notify(Notice::RowsSetAside {
                    file: &import.file,
                    rows: p.errors.len(),
                    written: &path,
                });
            }
        } else {
            errors += p.errors.len();
        }
        parsed.push((import.register.as_str(), p));
    }
    if errors > 0 {
        return Err(AppError::BadInput(format!(
            "{}: {errors} bad row(s) in the campaign's contact files; nothing was imported or sent \
             (correct them, or let `send --skip-invalid` or `check --skip-invalid` set them aside \
             in FILE.rejected.csv beside each contact file)",
            campaign.file.display()
        )));
    }
    Ok(parsed)
}

/// The extra fields every recipient will have once `pending` is imported.
pub async fn fields_after_import(
    store: &Store,
    campaign: &Campaign,
    pending: &[(&str, ParsedImport)],
) -> Result<BTreeSet<String>, AppError> {
    let mut common = store.common_fields(&campaign.registers).await?;
    let stored_any = store.has_members(&campaign.registers).await?;
    let mut first = !stored_any;
    for (_, p) in pending {
        for record in &p.records {
            let keys: BTreeSet<String> = record.fields.keys().cloned().collect();
            common = if first {
                keys
            } else {
                common.intersection(&keys).cloned().collect()
            };
            first = false;
        }
    }
    Ok(common)
}

/// Imports the parsed contact files into their registers (suppressed addresses refused).
pub async fn apply_campaign_contacts(
    store: &Store,
    pending: Vec<(&str, ParsedImport)>,
    secret: &Secret,
    notify: Notify<'_>,
) -> Result<(), AppError> {
    for (register, p) in pending {
        let outcome = store
            .import_contacts(register, &p.records, |a| address_hash(secret, a))
            .await?;
        for (source, reason) in &outcome.refused {
            notify(Notice::SuppressedRow {
                source,
                reason: *reason,
            });
        }
        if outcome.inserted + outcome.updated > 0 {
            tracing::info!(
                register,
                inserted = outcome.inserted,
                updated = outcome.updated,
                "imported the campaign's contacts"
            );
        }
    }
    Ok(())
}

/// Imports the campaign's contact files (as `send` would) and prepares its composer.
pub async fn prepare(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
    secret: &Secret,
    skip_invalid: bool,
    notify: Notify<'_>,
) -> Result<Composer, AppError> {
    let pending = parse_campaign_contacts(config, campaign, skip_invalid, notify)?;
    let composer = Composer::new(config, campaign, secret.clone())?;
    apply_campaign_contacts(store, pending, secret, notify).await?;
    Ok(composer)
}

/// Fixes the campaign's trackable links (the first send stores them; the redirect endpoint
/// allows only these) and makes the composer rewrite them.
pub async fn with_tracking(
    composer: Composer,
    store: &Store,
    campaign: &Campaign,
) -> Result<Composer, AppError> {
    if !campaign.tracks_clicks() {
        return Ok(composer);
    }
    let campaign_id = store.campaign_id(&campaign.name).await?;
    let links = store
        .set_campaign_links(campaign_id, &composer.trackable_links())
        .await?;
    Ok(composer.with_click_tracking(links))
}

/// The DKIM signing key of `[dkim]`, if one is configured.
pub fn load_dkim(config: &ConfigDir) -> Result<Option<Arc<DkimSigning>>, AppError> {
    Ok(config
        .settings
        .dkim
        .as_ref()
        .map(DkimSigning::load)
        .transpose()?
        .map(Arc::new))
}

/// The resolver `--resolver` names, else `[dns] resolver`, else the system's.
pub fn resolver_for(config: &ConfigDir, flag: Option<&str>) -> Result<Dns, AppError> {
    let server =
        match flag {
            Some(text) => Some(crate::config::parse_socket_addr(text).ok_or_else(|| {
                AppError::BadInput(format!("--resolver: '{text}' is not IP:PORT"))
            })?),
            None => config.settings.dns.resolver,
        };
    Ok(Dns::new(server, config.settings.dns.timeout)?)
}

/// The DNS pre-flight as `check` and `send` run it: for mail that goes out over SMTP, or when
/// a resolver is named; an outbox transport reaches no one, so DNS is skipped (and said so).
pub async fn dns_preflight(
    config: &ConfigDir,
    campaign: &Campaign,
    transport: &TransportUrl,
    resolver: Option<&str>,
    dkim: Option<&DkimSigning>,
) -> Result<Vec<Finding>, AppError> {
    let asked = resolver.is_some() || config.settings.dns.resolver.is_some();
    if matches!(transport, TransportUrl::Outbox(_)) && !asked {
        return Ok(vec![Finding::new(
            "DNS000",
            Severity::Info,
            "[transport] url",
            format!(
                "DNS checks skipped: {transport} delivers nowhere (run `fairsend dns check` to check anyway)"
            ),
        )]);
    }
    let dns = resolver_for(config, resolver)?;
    Ok(crate::dns::preflight(&config.settings, campaign, transport, &dns, dkim).await)
}
