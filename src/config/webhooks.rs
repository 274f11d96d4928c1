//! The `[webhooks]` section of fairsend.toml: which provider callbacks `serve` accepts, and the
//! names of the environment variables that hold their secrets (the secrets never sit in a file).
//! A provider is on when its table is present. Two options exist only for the tests (a private
//! CA for the SNS signing certificate and a fixed address for its host); `serve` refuses to
//! start with them unless the environment says this is a test (`TEST_ONLY_ENV`), so a
//! production configuration cannot loosen the certificate check.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, optional_text, parse_duration, required_text};

/// Set to `1` by tests only: allows the `test_*` options of `[webhooks.ses]`.
pub const TEST_ONLY_ENV: &str = "FAIRSEND_WEBHOOK_TEST_ONLY";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookSettings {
    /// Events and signatures older (or newer) than this are refused: 15 minutes by default.
    pub window: Duration,
    pub ses: Option<SesHook>,
    pub sendgrid: Option<SendGridHook>,
    pub mailgun: Option<MailgunHook>,
    pub postmark: Option<PostmarkHook>,
}

impl WebhookSettings {
    pub fn any(&self) -> bool {
        self.ses.is_some()
            || self.sendgrid.is_some()
            || self.mailgun.is_some()
            || self.postmark.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SesHook {
    /// Only notifications of these SNS topics are accepted: a signature proves the message came
    /// from SNS, not from the operator's topic.
    pub topic_arns: Vec<String>,
    /// Fetch a subscription's `SubscribeURL` (same host rule as certificates) when one arrives.
    pub auto_confirm: bool,
    /// Test only (refused by `serve` unless `TEST_ONLY_ENV=1`): the CA that signs the test's SNS certificate and its HTTPS server.
    pub test_ca_file: Option<PathBuf>,
    /// Test only: connect here for every `sns.<region>.amazonaws.com` host.
    pub test_connect: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendGridHook {
    /// Holds the Event Webhook verification key (base64 of the DER public key, as SendGrid
    /// shows it).
    pub public_key_env: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MailgunHook {
    pub signing_key_env: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostmarkHook {
    pub username_env: String,
    pub password_env: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhooks {
    window: Option<String>,
    ses: Option<RawSes>,
    sendgrid: Option<RawSendGrid>,
    mailgun: Option<RawMailgun>,
    postmark: Option<RawPostmark>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSes {
    topic_arns: Option<Vec<String>>,
    auto_confirm: Option<bool>,
    test_ca_file: Option<String>,
    test_connect: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSendGrid {
    public_key_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMailgun {
    signing_key_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPostmark {
    username_env: Option<String>,
    password_env: Option<String>,
}

pub(crate) fn parse_webhooks(
    file: &Path,
    raw: Option<RawWebhooks>,
) -> Result<WebhookSettings, ConfigError> {
    let Some(raw) = raw else {
        return Ok(WebhookSettings {
            window: DEFAULT_WINDOW,
            ..Default::default()
        });
    };
    let window = match optional_text(file, "[webhooks] window", raw.window)? {
        None => DEFAULT_WINDOW,
        Some(text) => parse_duration(&text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ConfigError::field(
                    file,
                    "[webhooks] window",
                    format!("'{text}' is not a duration such as 15m"),
                )
            })?,
    };
    Ok(WebhookSettings {
        window,
        ses: raw.ses.map(|s| parse_ses(file, s)).transpose()?,
        sendgrid: raw
            .sendgrid
            .map(|s| {
                env_name(file, "[webhooks.sendgrid] public_key_env", s.public_key_env)
                    .map(|public_key_env| SendGridHook { public_key_env })
            })
            .transpose()?,
        mailgun: raw
            .mailgun
            .map(|m| {
                env_name(
                    file,
                    "[webhooks.mailgun] signing_key_env",
                    m.signing_key_env,
                )
                .map(|signing_key_env| MailgunHook { signing_key_env })
            })
            .transpose()?,
        postmark: raw
            .postmark
            .map(|p| {
                Ok::<_, ConfigError>(PostmarkHook {
                    username_env: env_name(
                        file,
                        "[webhooks.postmark] username_env",
                        p.username_env,
                    )?,
                    password_env: env_name(
                        file,
                        "[webhooks.postmark] password_env",
                        p.password_env,
                    )?,
                })
            })
            .transpose()?,
    })
}

const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

fn parse_ses(file: &Path, raw: RawSes) -> Result<SesHook, ConfigError> {
    let field = "[webhooks.ses] topic_arns";
    let topic_arns = raw.topic_arns.unwrap_or_default();
    if topic_arns.is_empty() {
        return Err(ConfigError::field(
            file,
            field,
            "is missing: list the ARNs of your SNS topics (any AWS account can make SNS sign a \
             message; only your topics are yours)",
        ));
    }
    for arn in &topic_arns {
        if !arn.starts_with("arn:aws") || arn.chars().any(char::is_whitespace) {
            return Err(ConfigError::field(
                file,
                field,
                format!("'{arn}' is not a topic ARN"),
            ));
        }
    }
    let test_ca_file = optional_text(file, "[webhooks.ses] test_ca_file", raw.test_ca_file)?
        .map(|p| resolve(file, &p));
    let test_connect = match optional_text(file, "[webhooks.ses] test_connect", raw.test_connect)? {
        Some(text) => Some(text.parse().map_err(|_| {
            ConfigError::field(
                file,
                "[webhooks.ses] test_connect",
                format!("'{text}' is not IP:PORT"),
            )
        })?),
        None => None,
    };
    Ok(SesHook {
        topic_arns,
        auto_confirm: raw.auto_confirm.unwrap_or(false),
        test_ca_file,
        test_connect,
    })
}

/// A relative path is relative to the configuration file's directory.
fn resolve(file: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    match file.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }
}

fn env_name(file: &Path, field: &str, value: Option<String>) -> Result<String, ConfigError> {
    let name = required_text(file, field, value)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::field(
            file,
            field,
            format!(
                "'{name}' is not an environment variable name (the secret itself belongs in the environment)"
            ),
        ));
    }
    Ok(name)
}
