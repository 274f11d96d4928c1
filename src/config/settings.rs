//! `fairsend.toml`: who sends, how, from where, and with which secrets (by variable name only).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, optional_text, parse_duration, read_toml, required_address, required_text,
};
use crate::model::EmailAddress;

/// The sender identity that 917/2014 §203(1) forbids hiding; compiled into every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderIdentity {
    pub legal_name: String,
    pub business_id: String,
    pub postal_address: String,
    pub contact_email: EmailAddress,
    pub privacy_contact: EmailAddress,
    pub dpo_contact: Option<String>,
    pub website: Option<String>,
}

/// What the GDPR art. 14 notice states beyond the identity and the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacySettings {
    /// How long contact data is kept, in months, counted from the last message.
    pub retention_months: u32,
    /// `None` means the Finnish Data Protection Ombudsman, named in each locale.
    pub supervisory_authority: Option<String>,
    pub supervisory_authority_url: String,
    pub policy_url: Option<String>,
    /// The notice says that link clicks and opens may be recorded (required for tracking).
    pub declares_tracking: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportUrl {
    /// `smtp://host:port` — plain SMTP, upgraded with STARTTLS as `tls` says.
    Smtp { host: String, port: u16 },
    /// `smtps://host:port` — TLS from the first byte.
    Smtps { host: String, port: u16 },
    /// `outbox:DIR` — one `.eml` file per message, written atomically.
    Outbox(PathBuf),
}

impl TransportUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(dir) = url.strip_prefix("outbox:") {
            if dir.is_empty() {
                return Err("outbox: needs a directory, for example outbox:outbox".into());
            }
            return Ok(Self::Outbox(PathBuf::from(dir)));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("'{url}' is not smtp://HOST:PORT, smtps://HOST:PORT or outbox:DIR")
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("'{p}' is not a port number"))?,
                ),
            ),
            _ => (
                rest.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                None,
            ),
        };
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(format!("'{url}' has no valid host"));
        }
        match scheme {
            "smtp" => Ok(Self::Smtp {
                host,
                port: port.unwrap_or(25),
            }),
            "smtps" => Ok(Self::Smtps {
                host,
                port: port.unwrap_or(465),
            }),
            other => Err(format!(
                "unknown transport scheme '{other}' (use smtp, smtps or outbox)"
            )),
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Self::Outbox(_))
    }

    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Smtp { host, .. } | Self::Smtps { host, .. } => {
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Self::Outbox(_) => true,
        }
    }
}

impl std::fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp { host, port } => write!(f, "smtp://{host}:{port}"),
            Self::Smtps { host, port } => write!(f, "smtps://{host}:{port}"),
            Self::Outbox(dir) => write!(f, "outbox:{}", dir.display()),
        }
    }
}

/// When plain `smtp://` must upgrade to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS required, except on loopback where the connection never leaves the machine.
    Auto,
    /// STARTTLS required everywhere.
    Required,
    /// No TLS at all; must be said explicitly.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransportSettings {
    pub url: TransportUrl,
    pub tls: TlsMode,
    /// Names of the environment variables that hold SMTP credentials (never the values).
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// Simultaneous SMTP connections.
    pub concurrency: usize,
    /// Messages per second for the whole run; `None` is unlimited.
    pub rate_per_second: Option<f64>,
    /// The TCP connection and each TLS handshake.
    pub timeout: Duration,
    /// Every reply of the server but the last: greeting, EHLO, STARTTLS, AUTH, MAIL FROM,
    /// RCPT TO and DATA (RFC 5321 §4.5.3.2: 5 minutes).
    pub reply_timeout: Duration,
    /// The server's reply to the end of the message data (RFC 5321 §4.5.3.2: 10 minutes);
    /// without it the outcome is uncertain.
    pub data_timeout: Duration,
    /// A PEM file of certificates to trust besides the system's roots (the private CA of an
    /// internal relay), resolved against the configuration directory.
    pub ca_file: Option<PathBuf>,
    /// The addresses mail leaves from, for the SPF pre-flight; empty means "the transport
    /// host's addresses".
    pub sending_ips: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceSettings {
    /// The envelope domain: `MAIL FROM:<local_part+TOKEN@domain>`.
    pub domain: String,
    pub local_part: String,
    /// Local part of the `mailto:` unsubscribe address on the same domain.
    pub unsubscribe_local_part: String,
    /// Soft bounces suppress an address once there are this many…
    pub soft_bounce_limit: u32,
    /// …spanning at least this many days.
    pub soft_bounce_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long one `send` run waits for deferred messages to come due before it exits.
    pub wait_in_run: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimKeySource {
    /// A PEM file outside the repository.
    File(PathBuf),
    /// An environment variable holding the PEM text.
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub key: DkimKeySource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// A resolver to ask instead of the system's (`IP:PORT`).
    pub resolver: Option<std::net::SocketAddr>,
    pub timeout: Duration,
}

/// How signup forms (`/s/REGISTER` on `serve`) confirm and what they keep as proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupSettings {
    /// How long a confirmation link is valid after its mail was sent.
    pub link_validity: Duration,
    /// A confirmation mail to the same address and register is not sent again within this.
    pub resend_after: Duration,
    /// The client address kept with a consent, as a network prefix.
    pub ip_truncation: IpTruncation,
    /// `From:` of the confirmation mail; `None`: the sender's legal name and contact address.
    pub from: Option<String>,
}

/// How much of a client's IP address a consent proof keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpTruncation {
    /// None of it.
    None,
    /// The first `v4` bits of an IPv4 address and the first `v6` bits of an IPv6 address.
    Prefix { v4: u8, v6: u8 },
}

impl IpTruncation {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text == "none" {
            return Some(Self::None);
        }
        let (v4, v6) = text.split_once('/')?;
        let (v4, v6): (u8, u8) = (v4.trim().parse().ok()?, v6.trim().parse().ok()?);
        (v4 <= 32 && v6 <= 128).then_some(Self::Prefix { v4, v6 })
    }

    /// `ip` cut to its prefix, as `ADDRESS/BITS`; `None` when no address is kept.
    pub fn apply(self, ip: std::net::IpAddr) -> Option<String> {
        let Self::Prefix { v4, v6 } = self else {
            return None;
        };
        Some(match ip.to_canonical() {
            std::net::IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
                format!("{}/{v4}", std::net::Ipv4Addr::from(u32::from(a) & mask))
            }
            std::net::IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
                format!("{}/{v6}", std::net::Ipv6Addr::from(u128::from(a) & mask))
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub file: PathBuf,
    pub sender: SenderIdentity,
    pub privacy: PrivacySettings,
    pub transport: TransportSettings,
    pub database: DatabaseSettings,
    pub public_base_url: String,
    pub bounces: BounceSettings,
    /// `[report] delivered_after` (default 3 days): a sent message with no proven bounce
    /// this long after sending counts as delivered in `fairsend report`; most bounces arrive
    /// within minutes, late ones within the receiving MTA's retry period of a few days.
    pub delivered_after: Duration,
    pub signing_secret_env: String,
    pub retry: RetrySettings,
    pub dkim: Option<DkimSettings>,
    pub dns: DnsSettings,
    pub signup: SignupSettings,
    /// `[bounces.imap]`: the mailbox `bounces poll` and `serve --poll-bounces` read.
    pub bounce_mailbox: Option<super::imap::ImapSettings>,
    pub webhooks: super::WebhookSettings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    sender: Option<RawSender>,
    #[serde(default)]
    privacy: RawPrivacy,
    transport: Option<RawTransport>,
    #[serde(default)]
    database: RawDatabase,
    links: Option<RawLinks>,
    bounces: Option<RawBounces>,
    #[serde(default)]
    secrets: RawSecrets,
    #[serde(default)]
    retry: RawRetry,
    dkim: Option<RawDkim>,
    #[serde(default)]
    dns: RawDns,
    webhooks: Option<super::webhooks::RawWebhooks>,
    #[serde(default)]
    signup: RawSignup,
    #[serde(default)]
    report: RawReport,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSignup {
    link_validity: Option<String>,
    resend_after: Option<String>,
    ip_truncation: Option<String>,
    from: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    delivered_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    algorithm: Option<String>,
    private_key_file: Option<String>,
    private_key_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    resolver: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSender {
    legal_name: Option<String>,
    business_id: Option<String>,
    postal_address: Option<String>,
    contact_email: Option<String>,
    privacy_contact: Option<String>,
    dpo_contact: Option<String>,
    website: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    retention_months: Option<u32>,
    supervisory_authority: Option<String>,
    supervisory_authority_url: Option<String>,
    policy_url: Option<String>,
    declares_tracking: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransport {
    url: Option<String>,
    tls: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
    concurrency: Option<usize>,
    rate_per_second: Option<f64>,
    timeout: Option<String>,
    reply_timeout: Option<String>,
    data_timeout: Option<String>,
    ca_file: Option<String>,
    sending_ips: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
    lease: Option<String>,
}

/// Where the state lives and how `send` workers share a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSettings {
    /// `sqlite://FILE` (embedded default) or `postgres://USER@HOST/DB` (password from
    /// `PGPASSWORD`, never from the file).
    pub url: String,
    /// Connections per process; `None` takes the engine's default.
    pub max_connections: Option<u32>,
    /// How long a worker's claim on a batch of outbox rows lasts without a heartbeat: after
    /// it, a dead worker's unsent rows go to the others.
    pub lease: Duration,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    public_base_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBounces {
    domain: Option<String>,
    soft_bounce_limit: Option<u32>,
    soft_bounce_days: Option<u32>,
    local_part: Option<String>,
    unsubscribe_local_part: Option<String>,
    imap: Option<super::imap::RawImap>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    signing_secret_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_delay: Option<String>,
    max_delay: Option<String>,
    wait_in_run: Option<String>,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://fairsend.db";
const FINNISH_DPO_URL: &str = "https://tietosuoja.fi";

impl Settings {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let raw: Raw = read_toml(file)?;
        // The required tables are checked together, so that a new configuration's blanks
        // are all listed at once.
        let sender = raw
            .sender
            .ok_or_else(|| ConfigError::field(file, "[sender]", "the table is missing"))
            .and_then(|s| sender_identity(file, s).map_err(identity_reason));
        let privacy = privacy_settings(file, raw.privacy);
        let transport = raw
            .transport
            .ok_or_else(|| ConfigError::field(file, "[transport]", "the table is missing"))
            .and_then(|t| parse_transport(file, t));
        let public_base_url = raw
            .links
            .ok_or_else(|| ConfigError::field(file, "[links]", "the table is missing"))
            .and_then(|l| public_base_url(file, l));
        let bounces = raw
            .bounces
            .ok_or_else(|| ConfigError::field(file, "[bounces]", "the table is missing"))
            .and_then(|b| bounce_tables(file, b));
        let (sender, privacy, transport, public_base_url, (bounces, bounce_mailbox)) =
            match (sender, privacy, transport, public_base_url, bounces) {
                (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)) => (a, b, c, d, e),
                (a, b, c, d, e) => {
                    let errors = [a.err(), b.err(), c.err(), d.err(), e.err()];
                    return Err(ConfigError::gather(errors));
                }
            };
        let retry = RetrySettings {
            max_attempts: raw.retry.max_attempts.unwrap_or(5).max(1),
            base_delay: duration_field(file, "[retry] base_delay", raw.retry.base_delay, "5m")?,
            max_delay: duration_field(file, "[retry] max_delay", raw.retry.max_delay, "6h")?,
            wait_in_run: duration_field(file, "[retry] wait_in_run", raw.retry.wait_in_run, "2m")?,
        };
        Ok(Self {
            file: file.to_path_buf(),
            sender,
            privacy,
            transport,
            database: database_settings(file, raw.database)?,
            public_base_url,
            bounces,
            delivered_after: duration_field(
                file,
                "[report] delivered_after",
                raw.report.delivered_after,
                "3d",
            )?,
            signing_secret_env: optional_text(
                file,
                "[secrets] signing_secret_env",
                raw.secrets.signing_secret_env,
            )?
            .unwrap_or_else(|| "FAIRSEND_SECRET".into()),
            retry,
            dkim: raw.dkim.map(|d| parse_dkim(file, d)).transpose()?,
            dns: dns_settings(file, raw.dns)?,
            signup: signup_settings(file, raw.signup)?,
            bounce_mailbox,
            webhooks: super::webhooks::parse_webhooks(file, raw.webhooks)?,
        })
    }
}

/// `[bounces]` and its optional `[bounces.imap]`.
fn bounce_tables(
    file: &Path,
    mut bounces: RawBounces,
) -> Result<(BounceSettings, Option<super::imap::ImapSettings>), ConfigError> {
    let mailbox = bounces
        .imap
        .take()
        .map(|raw| {
            super::imap::parse(file, raw, |timeout| {
                nonzero_duration(file, "[bounces.imap] timeout", timeout, "60s")
            })
        })
        .transpose()?;
    Ok((bounce_settings(file, bounces)?, mailbox))
}

fn signup_settings(file: &Path, raw: RawSignup) -> Result<SignupSettings, ConfigError> {
    let link_validity = nonzero_duration(file, "[signup] link_validity", raw.link_validity, "48h")?;
    let resend_after = duration_field(file, "[signup] resend_after", raw.resend_after, "24h")?;
    if resend_after > link_validity {
        // The request that holds back a new mail is deleted when its link expires, as the
        // notice promises; it cannot hold it back for longer.
        return Err(ConfigError::field(
            file,
            "[signup] resend_after",
            "must not be longer than link_validity (an unconfirmed signup is deleted when its link expires)",
        ));
    }
    let text = optional_text(file, "[signup] ip_truncation", raw.ip_truncation)?
        .unwrap_or_else(|| "24/48".into());
    let ip_truncation = IpTruncation::parse(&text).ok_or_else(|| {
        ConfigError::field(
            file,
            "[signup] ip_truncation",
            format!(
                "'{text}' is not \"none\" or IPv4/IPv6 prefix lengths such as \"24/48\" (at most 32/128)"
            ),
        )
    })?;
    let from = optional_text(file, "[signup] from", raw.from)?;
    if let Some(from) = &from {
        super::campaign::Mailbox::parse(from)
            .map_err(|e| ConfigError::field(file, "[signup] from", e))?;
    }
    Ok(SignupSettings {
        link_validity,
        resend_after,
        ip_truncation,
        from,
    })
}

/// A sender-identity error says why the field matters.
fn identity_reason(e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Field {
            file,
            field,
            reason,
        } => ConfigError::Field {
            file,
            field,
            reason: format!(
                "{reason} (the sender identity is shown in every message: 917/2014 §203)"
            ),
        },
        ConfigError::Several(each) => {
            ConfigError::Several(each.into_iter().map(identity_reason).collect())
        }
        other => other,
    }
}

fn sender_identity(file: &Path, sender: RawSender) -> Result<SenderIdentity, ConfigError> {
    // Every field is checked before any error is returned: `init` leaves them all blank.
    match (
        required_text(file, "[sender] legal_name", sender.legal_name),
        business_id(file, sender.business_id),
        required_text(file, "[sender] postal_address", sender.postal_address),
        required_address(file, "[sender] contact_email", sender.contact_email),
        required_address(file, "[sender] privacy_contact", sender.privacy_contact),
        optional_text(file, "[sender] dpo_contact", sender.dpo_contact),
        optional_text(file, "[sender] website", sender.website),
    ) {
        (
            Ok(legal_name),
            Ok(business_id),
            Ok(postal_address),
            Ok(contact_email),
            Ok(privacy_contact),
            Ok(dpo_contact),
            Ok(website),
        ) => Ok(SenderIdentity {
            legal_name,
            business_id,
            postal_address,
            contact_email,
            privacy_contact,
            dpo_contact,
            website,
        }),
        (a, b, c, d, e, f, g) => Err(ConfigError::gather([
            a.err(),
            b.err(),
            c.err(),
            d.err(),
            e.err(),
            f.err(),
            g.err(),
        ])),
    }
}

/// What the art. 14 notice states that only the operator knows.
fn privacy_settings(file: &Path, raw: RawPrivacy) -> Result<PrivacySettings, ConfigError> {
    let privacy = PrivacySettings {
        retention_months: raw.retention_months.ok_or_else(|| {
            ConfigError::field(
                file,
                "[privacy] retention_months",
                "is missing: the art. 14 notice must state how long data is kept",
            )
        })?,
        supervisory_authority: optional_text(
            file,
            "[privacy] supervisory_authority",
            raw.supervisory_authority,
        )?,
        supervisory_authority_url: optional_text(
            file,
            "[privacy] supervisory_authority_url",
            raw.supervisory_authority_url,
        )?
        .unwrap_or_else(|| FINNISH_DPO_URL.to_string()),
        policy_url: optional_text(file, "[privacy] policy_url", raw.policy_url)?,
        declares_tracking: raw.declares_tracking.unwrap_or(false),
    };
    if privacy.supervisory_authority.is_some()
        && privacy.supervisory_authority_url == FINNISH_DPO_URL
    {
        return Err(ConfigError::field(
            file,
            "[privacy] supervisory_authority_url",
            "must be set when supervisory_authority names another authority",
        ));
    }
    Ok(privacy)
}

/// The base of unsubscribe and click links, without a trailing slash.
fn public_base_url(file: &Path, links: RawLinks) -> Result<String, ConfigError> {
    let url = required_text(file, "[links] public_base_url", links.public_base_url)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::field(
            file,
            "[links] public_base_url",
            format!("'{url}' must start with https:// (or http:// for a test)"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn bounce_settings(file: &Path, bounces: RawBounces) -> Result<BounceSettings, ConfigError> {
    let bounce_domain = required_text(file, "[bounces] domain", bounces.domain)?;
    let local_part = optional_text(file, "[bounces] local_part", bounces.local_part)?
        .unwrap_or_else(|| "bounces".into());
    let unsubscribe_local_part = optional_text(
        file,
        "[bounces] unsubscribe_local_part",
        bounces.unsubscribe_local_part,
    )?
    .unwrap_or_else(|| "unsubscribe".into());
    // Both addresses must be valid once a token is appended.
    for (field, local) in [
        ("[bounces] local_part", &local_part),
        ("[bounces] unsubscribe_local_part", &unsubscribe_local_part),
    ] {
        EmailAddress::parse(&format!("{local}+token@{bounce_domain}"))
            .map_err(|e| ConfigError::field(file, field, e.to_string()))?;
    }
    Ok(BounceSettings {
        domain: bounce_domain.to_lowercase(),
        local_part,
        unsubscribe_local_part,
        soft_bounce_limit: bounces.soft_bounce_limit.unwrap_or(3).max(1),
        soft_bounce_days: bounces.soft_bounce_days.unwrap_or(7),
    })
}

fn dns_settings(file: &Path, dns: RawDns) -> Result<DnsSettings, ConfigError> {
    Ok(DnsSettings {
        resolver: match optional_text(file, "[dns] resolver", dns.resolver)? {
            None => None,
            Some(text) => Some(parse_socket_addr(&text).ok_or_else(|| {
                ConfigError::field(
                    file,
                    "[dns] resolver",
                    format!("'{text}' is not IP:PORT (for example 127.0.0.1:53)"),
                )
            })?),
        },
        timeout: duration_field(file, "[dns] timeout", dns.timeout, "5s")?,
    })
}

/// `IP:PORT`, or a bare IP meaning port 53.
/// The sender's business ID, validated as contacts' are (a Finnish Y-tunnus by its check
/// digit) and normalised: it is printed in every footer.
fn business_id(file: &Path, raw: Option<String>) -> Result<String, ConfigError> {
    let text = required_text(file, "[sender] business_id", raw)?;
    crate::model::BusinessId::parse(&text)
        .map(|id| id.to_string())
        .map_err(|e| ConfigError::field(file, "[sender] business_id", e.to_string()))
}

pub fn parse_socket_addr(text: &str) -> Option<std::net::SocketAddr> {
    let text = text.trim();
    text.parse().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

fn parse_dkim(file: &Path, raw: RawDkim) -> Result<DkimSettings, ConfigError> {
    let algorithm = match optional_text(file, "[dkim] algorithm", raw.algorithm)?.as_deref() {
        None | Some("rsa-sha256") => DkimAlgorithm::RsaSha256,
        Some("ed25519-sha256") | Some("ed25519") => DkimAlgorithm::Ed25519Sha256,
        Some(other) => {
            return Err(ConfigError::field(
                file,
                "[dkim] algorithm",
                format!("'{other}' is not rsa-sha256 or ed25519-sha256"),
            ));
        }
    };
    let key = match (
        optional_text(file, "[dkim] private_key_file", raw.private_key_file)?,
        optional_text(file, "[dkim] private_key_env", raw.private_key_env)?,
    ) {
        (Some(path), None) => {
            let path = PathBuf::from(path);
            // A key inside the configuration directory would end up in the repository.
            let config_dir = file.parent().unwrap_or(Path::new("."));
            let inside = std::fs::canonicalize(&path)
                .ok()
                .zip(std::fs::canonicalize(config_dir).ok())
                .is_some_and(|(key, dir)| key.starts_with(dir));
            if path.is_relative() || inside {
                return Err(ConfigError::field(
                    file,
                    "[dkim] private_key_file",
                    "must be an absolute path outside the configuration directory (private keys never go into the repository); or use private_key_env",
                ));
            }
            DkimKeySource::File(path)
        }
        (None, Some(var)) => DkimKeySource::Env(var),
        _ => {
            return Err(ConfigError::field(
                file,
                "[dkim] private_key_file",
                "give exactly one of private_key_file and private_key_env",
            ));
        }
    };
    Ok(DkimSettings {
        domain: required_text(file, "[dkim] domain", raw.domain)?.to_lowercase(),
        selector: required_text(file, "[dkim] selector", raw.selector)?,
        algorithm,
        key,
    })
}

fn parse_transport(file: &Path, raw: RawTransport) -> Result<TransportSettings, ConfigError> {
    let url = required_text(file, "[transport] url", raw.url)?;
    let url =
        TransportUrl::parse(&url).map_err(|e| ConfigError::field(file, "[transport] url", e))?;
    let tls = match raw.tls.as_deref().map(str::trim) {
        None | Some("auto") => TlsMode::Auto,
        Some("required") | Some("starttls") => TlsMode::Required,
        Some("none") => TlsMode::None,
        Some(other) => {
            return Err(ConfigError::field(
                file,
                "[transport] tls",
                format!("'{other}' is not one of auto, required, none"),
            ));
        }
    };
    let concurrency = raw.concurrency.unwrap_or(4);
    if !(1..=256).contains(&concurrency) {
        return Err(ConfigError::field(
            file,
            "[transport] concurrency",
            "must be between 1 and 256",
        ));
    }
    let rate_per_second = match raw.rate_per_second {
        None => None,
        Some(0.0) => None,
        Some(r) if r.is_finite() && r > 0.0 => Some(r),
        Some(r) => {
            return Err(ConfigError::field(
                file,
                "[transport] rate_per_second",
                format!("{r} is not a positive number (0 means unlimited)"),
            ));
        }
    };
    Ok(TransportSettings {
        url,
        tls,
        username_env: optional_text(file, "[transport] username_env", raw.username_env)?,
        password_env: optional_text(file, "[transport] password_env", raw.password_env)?,
        concurrency,
        rate_per_second,
        timeout: duration_field(file, "[transport] timeout", raw.timeout, "60s")?,
        reply_timeout: nonzero_duration(
            file,
            "[transport] reply_timeout",
            raw.reply_timeout,
            "5m",
        )?,
        data_timeout: nonzero_duration(file, "[transport] data_timeout", raw.data_timeout, "10m")?,
        ca_file: optional_text(file, "[transport] ca_file", raw.ca_file)?
            .map(|path| file.parent().unwrap_or(Path::new(".")).join(path)),
        sending_ips: raw
            .sending_ips
            .unwrap_or_default()
            .iter()
            .map(|ip| {
                ip.trim().parse().map_err(|_| {
                    ConfigError::field(
                        file,
                        "[transport] sending_ips",
                        format!("'{ip}' is not an IP address"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    })
}

fn database_settings(file: &Path, raw: RawDatabase) -> Result<DatabaseSettings, ConfigError> {
    let url = optional_text(file, "[database] url", raw.url)?
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    if url_has_password(&url) {
        return Err(ConfigError::field(
            file,
            "[database] url",
            "the URL contains a password; configuration files hold no secrets: remove it and set \
             the PGPASSWORD environment variable (or pass the whole URL in FAIRSEND_DATABASE_URL)",
        ));
    }
    if raw.max_connections == Some(0) {
        return Err(ConfigError::field(
            file,
            "[database] max_connections",
            "must be at least 1",
        ));
    }
    let lease = duration_field(file, "[database] lease", raw.lease, "30s")?;
    if lease < Duration::from_secs(1) {
        return Err(ConfigError::field(
            file,
            "[database] lease",
            "must be at least 1s: workers renew their leases every third of it",
        ));
    }
    Ok(DatabaseSettings {
        url,
        max_connections: raw.max_connections,
        lease,
    })
}

/// Whether a `scheme://user:password@host/…` URL carries a password.
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

fn duration_field(
    file: &Path,
    field: &str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    parse_duration(&text).ok_or_else(|| {
        ConfigError::field(
            file,
            field,
            format!("'{text}' is not a duration such as \"30s\", \"5m\", \"4h\" or \"7d\""),
        )
    })
}

/// A time-out: zero would fail every transaction before the server could answer.
fn nonzero_duration(
    file: &Path,
    field: &str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let duration = duration_field(file, field, value, default)?;
    if duration.is_zero() {
        return Err(ConfigError::field(file, field, "must be longer than 0s"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_truncation() {
        let t = IpTruncation::parse("24/48").unwrap();
        assert_eq!(
            t.apply("203.0.113.77".parse().unwrap()).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            t.apply("2001:db8:1:2:3::9".parse().unwrap()).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(
            t.apply("::ffff:192.0.2.5".parse().unwrap()).as_deref(),
            Some("192.0.2.0/24"),
            "an IPv4-mapped address is truncated as IPv4"
        );
        assert_eq!(
            IpTruncation::parse("none")
                .unwrap()
                .apply("192.0.2.1".parse().unwrap()),
            None
        );
        assert_eq!(
            IpTruncation::parse("0/0")
                .unwrap()
                .apply("192.0.2.1".parse().unwrap())
                .as_deref(),
            Some("0.0.0.0/0")
        );
        assert!(IpTruncation::parse("33/48").is_none());
        assert!(IpTruncation::parse("24").is_none());
    }

    #[test]
    fn transport_urls() {
        assert_eq!(
            TransportUrl::parse("smtp://127.0.0.1:2525").unwrap(),
            TransportUrl::Smtp {
                host: "127.0.0.1".into(),
                port: 2525
            }
        );
        assert_eq!(
            TransportUrl::parse("smtps://mail.example.com").unwrap(),
            TransportUrl::Smtps {
                host: "mail.example.com".into(),
                port: 465
            }
        );
        assert_eq!(
            TransportUrl::parse("outbox:out/dir").unwrap(),
            TransportUrl::Outbox("out/dir".into())
        );
        assert!(
            TransportUrl::parse("smtp://[::1]:25")
                .unwrap()
                .is_loopback()
        );
        assert!(
            !TransportUrl::parse("smtp://mail.example.com:25")
                .unwrap()
                .is_loopback()
        );
        assert!(TransportUrl::parse("http://x").is_err());
        assert!(TransportUrl::parse("smtp://host:notaport").is_err());
    }
}
