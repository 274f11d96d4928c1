//! Configuration: TOML files → typed, validated structs.
//!
//! Owns `fairsend.toml` (sender identity, transport, database, links, bounce domain, secrets),
//! `registers.toml` and campaign files. Every value is checked here, once, with errors that name
//! the file and the field; nothing downstream re-validates a config string. This module reads
//! files but never touches the database or the network.

mod campaign;
mod imap;
mod registers;
mod settings;
mod starter;
mod webhooks;

pub use starter::{StarterError, write_starter};
pub use webhooks::{
    MailgunHook, PostmarkHook, SendGridHook, SesHook, TEST_ONLY_ENV as WEBHOOK_TEST_ONLY_ENV,
    WebhookSettings,
};

use std::path::{Path, PathBuf};

pub use crate::model::{AbMetric, LegalBasis, Locale};
pub use campaign::{AbSettings, BodySource, Campaign, ContactImport, Mailbox};
pub use imap::{ImapAfter, ImapSecurity, ImapSettings};
pub use registers::{PurchasedList, Register, RegisterKind, Registers, SignupForm};
pub use settings::{
    BounceSettings, DkimAlgorithm, DkimKeySource, DkimSettings, DnsSettings, IpTruncation,
    PrivacySettings, RetrySettings, SenderIdentity, Settings, SignupSettings, TlsMode,
    TransportSettings, TransportUrl, parse_socket_addr,
};

/// A problem in a configuration file, always naming the file and, where there is one, the
/// field (`[table] key`) and the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the file")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Several problems found together (a new configuration's blanks): each names its file
    /// and field, and `check` shows each as a finding of its own.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nerror: "))]
    Several(Vec<ConfigError>),
    /// A file that is not there where a user easily looks for it in the wrong place (a
    /// forgotten `--config`, a campaign path taken from the configuration directory): the hint
    /// says where the right one is.
    #[error("{file}: there is no such file; {hint}")]
    NoConfig { file: PathBuf, hint: String },
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: {field}: {reason}")]
    Field {
        file: PathBuf,
        field: String,
        reason: String,
    },
}

impl ConfigError {
    /// The errors among `errors` (at least one) as one error: several are `Several`.
    pub(crate) fn gather(errors: impl IntoIterator<Item = Option<ConfigError>>) -> Self {
        let mut each: Vec<Self> = errors
            .into_iter()
            .flatten()
            .flat_map(Self::into_each)
            .collect();
        if each.len() == 1 {
            return each.remove(0);
        }
        Self::Several(each)
    }

    /// Each problem on its own.
    pub fn into_each(self) -> Vec<Self> {
        match self {
            Self::Several(each) => each,
            one => vec![one],
        }
    }

    /// A `fairsend.toml` that is not there is most often a forgotten `--config`: say so, and
    /// name the directory the campaign file sits in when that one holds a configuration.
    pub fn hint_config_dir(self, dir: &Path, campaign: Option<&Path>) -> Self {
        let file = dir.join("fairsend.toml");
        match self {
            Self::Read { file: f, source }
                if f == file && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Self::NoConfig {
                    hint: missing_config_hint(dir, campaign),
                    file: f,
                }
            }
            other => other,
        }
    }

    /// A campaign file named relative to the configuration directory instead of the current
    /// one (`campaigns/first.toml` with `--config myconfig`): name the path that exists.
    pub(crate) fn hint_campaign_path(self, config_dir: &Path) -> Self {
        let Self::Read { file, source } = self else {
            return self;
        };
        let candidates = [
            config_dir.join(&file),
            config_dir.join("campaigns").join(&file),
        ];
        match candidates
            .into_iter()
            .find(|c| file.is_relative() && c.is_file())
        {
            Some(there) if source.kind() == std::io::ErrorKind::NotFound => Self::NoConfig {
                hint: format!(
                    "a path on the command line is taken from the current directory: did you \
                     mean {}?",
                    there.display()
                ),
                file,
            },
            _ => Self::Read { file, source },
        }
    }

    pub(crate) fn field(file: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            file: file.to_path_buf(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything `--config DIR` holds, loaded and validated.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    pub dir: PathBuf,
    pub settings: Settings,
    pub registers: Registers,
}

impl ConfigDir {
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let settings = Settings::load(&dir.join("fairsend.toml"))?;
        let registers = Registers::load(&dir.join("registers.toml"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            settings,
            registers,
        })
    }

    /// The first error of each configuration file, for `check`: a new configuration has
    /// blanks in every file, and one round of `check` per file would be tedious. The campaign
    /// is read only when the registers it names could be.
    pub fn problems(dir: &Path, campaign: &Path) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if let Err(e) = Settings::load(&dir.join("fairsend.toml")) {
            let e = e.hint_config_dir(dir, Some(campaign));
            if matches!(e, ConfigError::NoConfig { .. }) {
                return vec![e];
            }
            problems.extend(e.into_each());
        }
        match Registers::load(&dir.join("registers.toml")) {
            Ok(registers) => {
                let campaign = Campaign::load(campaign, dir, &registers).err();
                problems.extend(campaign.into_iter().flat_map(ConfigError::into_each));
            }
            Err(e) => problems.extend(e.into_each()),
        }
        problems
    }

    /// Loads a campaign file and checks that every register it names exists.
    pub fn load_campaign(&self, file: &Path) -> Result<Campaign, ConfigError> {
        Campaign::load(file, &self.dir, &self.registers)
    }
}

fn missing_config_hint(dir: &Path, campaign: Option<&Path>) -> String {
    // campaigns/NAME.toml inside a configuration directory, as `init` writes it.
    let home = campaign
        .and_then(Path::parent)
        .filter(|p| p.file_name().is_some_and(|n| n == "campaigns"))
        .and_then(Path::parent)
        .filter(|p| p.join("fairsend.toml").is_file());
    match home {
        Some(home) => format!(
            "the campaign file is in the configuration directory {}: run with `--config {}`",
            display_dir(home),
            display_dir(home)
        ),
        None => format!(
            "{} is not a configuration directory: name yours with `--config DIR` (default ./config), \
             or write a starter one with `fairsend init DIR`",
            display_dir(dir)
        ),
    }
}

fn display_dir(dir: &Path) -> String {
    match dir.display().to_string() {
        empty if empty.is_empty() => ".".into(),
        text => text,
    }
}

pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        file: file.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// A required single-line text value: present, not blank, and free of control characters
/// (CR/LF in a value that reaches a header would be header injection).
pub(crate) fn required_text(
    file: &Path,
    field: &str,
    value: Option<String>,
) -> Result<String, ConfigError> {
    match value {
        None => Err(ConfigError::field(file, field, "is missing")),
        Some(v) if v.trim().is_empty() => Err(ConfigError::field(file, field, "is empty")),
        Some(v) => single_line(file, field, v),
    }
}

pub(crate) fn optional_text(
    file: &Path,
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if !v.trim().is_empty() => single_line(file, field, v).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn single_line(file: &Path, field: &str, v: String) -> Result<String, ConfigError> {
    if v.chars().any(|c| c.is_control()) {
        return Err(ConfigError::field(
            file,
            field,
            "contains a line break or control character, which is not allowed in a value that \
             may reach a mail header",
        ));
    }
    Ok(v.trim().to_string())
}

pub(crate) fn required_address(
    file: &Path,
    field: &str,
    value: Option<String>,
) -> Result<crate::model::EmailAddress, ConfigError> {
    let text = required_text(file, field, value)?;
    crate::model::EmailAddress::parse(&text)
        .map_err(|e| ConfigError::field(file, field, e.to_string()))
}

/// Parses durations such as `"250ms"`, `"90s"`, `"5m"`, `"4h"`, `"7d"`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    if unit.trim() == "ms" {
        return Some(std::time::Duration::from_millis(n));
    }
    let seconds = match unit.trim() {
        "s" | "sec" | "secs" | "seconds" => n,
        "m" | "min" | "mins" | "minutes" => n.checked_mul(60)?,
        "h" | "hour" | "hours" => n.checked_mul(3600)?,
        "d" | "day" | "days" => n.checked_mul(86_400)?,
        "w" | "week" | "weeks" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("4h").unwrap().as_secs(), 14_400);
        assert_eq!(parse_duration("2 days").unwrap().as_secs(), 172_800);
        assert!(parse_duration("soon").is_none());
        assert!(parse_duration("10").is_none());
    }
}
