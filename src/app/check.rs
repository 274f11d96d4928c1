//! `check` and `dns check`: every pre-flight check of a campaign without sending — the
//! audience and approval, every message rendered through the compliance checks, the
//! unsubscribe links against the transport, SPF/DKIM/DMARC — returned as findings. A
//! configuration error becomes one finding (CFG001) naming its file and field. The verdict
//! (sendable or not) is the report's; showing it is the shell's.

use super::AppError;
use super::campaign::{Notify, dns_preflight, load_dkim, prepare, resolver_for};
use crate::compliance::insecure_link_findings;
use crate::compliance::{CheckReport, Depth, check_campaign};
use crate::config::{Campaign, ConfigDir, ConfigError};
use crate::model::{Finding, Severity};
use crate::store::Store;
use crate::suppress::Secret;

/// Checks `campaign` as `send` would send it today, each message rendered.
pub async fn check(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign: &Campaign,
    resolver: Option<&str>,
    skip_invalid: bool,
    notify: Notify<'_>,
) -> Result<CheckReport, AppError> {
    let dkim = load_dkim(config)?;
    let composer = prepare(config, store, campaign, secret, skip_invalid, notify)
        .await?
        .with_dkim(dkim.clone());
    let mut report =
        check_campaign(config, campaign, &composer, store, Depth::EveryMessage).await?;
    let transport = &config.settings.transport.url;
    report
        .findings
        .extend(insecure_link_findings(&config.settings, transport));
    report
        .findings
        .extend(dns_preflight(config, campaign, transport, resolver, dkim.as_deref()).await?);
    Ok(report)
}

/// Configuration files that do not load: one finding per problem.
pub fn config_findings(e: ConfigError) -> Vec<Finding> {
    e.into_each().iter().map(config_finding).collect()
}

/// A configuration file that does not load, as the one finding `check` reports.
pub fn config_finding(e: &ConfigError) -> Finding {
    Finding {
        code: "CFG001",
        severity: Severity::Error,
        result: None,
        subject: match e {
            ConfigError::Field { file, field, .. } => format!("{}: {field}", file.display()),
            ConfigError::Read { file, .. }
            | ConfigError::Syntax { file, .. }
            | ConfigError::NoConfig { file, .. } => file.display().to_string(),
            ConfigError::Several(_) => String::new(),
        },
        // The subject already names the file and field: the message adds only the reason.
        message: match e {
            ConfigError::Field { reason, .. } => reason.clone(),
            ConfigError::Syntax { message, .. } => message.clone(),
            ConfigError::Read { source, .. } => format!("cannot read the file: {source}"),
            ConfigError::NoConfig { hint, .. } => format!("there is no such file; {hint}"),
            ConfigError::Several(_) => e.to_string(),
        },
    }
}

/// SPF of the envelope domain for every sending IP, DMARC, alignment, the DKIM key — always
/// asked, whatever the transport.
pub async fn dns_check(
    config: &ConfigDir,
    campaign_file: &std::path::Path,
    resolver: Option<&str>,
) -> Result<Vec<Finding>, AppError> {
    let campaign = config.load_campaign(campaign_file)?;
    let dkim = load_dkim(config)?;
    let dns = resolver_for(config, resolver)?;
    Ok(crate::dns::preflight(
        &config.settings,
        &campaign,
        &config.settings.transport.url,
        &dns,
        dkim.as_deref(),
    )
    .await)
}

#[cfg(test)]
mod tests {
    use super::config_finding;
    use crate::config::ConfigError;

    #[test]
    fn a_configuration_error_is_one_finding_naming_file_and_field() {
        let e = ConfigError::Field {
            file: "config/campaigns/spring.toml".into(),
            field: "from".into(),
            reason: "not an address".into(),
        };
        let f = config_finding(&e);
        assert_eq!(f.code, "CFG001");
        assert_eq!(f.subject, "config/campaigns/spring.toml: from");
        assert_eq!(f.message, "not an address");
    }
}
