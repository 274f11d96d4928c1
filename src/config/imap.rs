//! `[bounces.imap]`: the IMAP mailbox that bounces, complaints and replies are read from. The
//! URL's scheme decides the security (`imaps://`: TLS from the first byte; `imap://`: STARTTLS,
//! required); plaintext is possible only to a loopback host and only when the file says so.
//! The file names the environment variables holding the credentials, never the credentials.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, optional_text};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    url: Option<String>,
    mailbox: Option<String>,
    move_to: Option<String>,
    flag: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
    allow_plaintext_on_loopback: Option<bool>,
    ca_file: Option<String>,
    timeout: Option<String>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// `imaps://`: TLS from the first byte (port 993).
    Tls,
    /// `imap://`: STARTTLS before anything else; a server that does not offer it is refused.
    StartTls,
    /// `imap://` to a loopback host with `allow_plaintext_on_loopback = true`.
    Plaintext,
}

/// What is done to a message once its effects are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapAfter {
    /// Moved into this folder (created when missing).
    MoveTo(String),
    /// Left in place with this flag (a keyword such as `$FairsendDone`, or `\Seen`/`\Flagged`);
    /// messages with it are not read again.
    Flag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub mailbox: String,
    pub after: ImapAfter,
    /// Names of the environment variables holding the login (never the values).
    pub username_env: String,
    pub password_env: String,
    /// Certificates to trust besides the system's roots, resolved against the configuration
    /// directory.
    pub ca_file: Option<PathBuf>,
    /// The TCP connection, each TLS handshake and each command's answer.
    pub timeout: Duration,
}

const URL_FIELD: &str = "[bounces.imap] url";

pub(super) fn parse(
    file: &Path,
    raw: RawImap,
    timeout: impl FnOnce(Option<String>) -> Result<Duration, ConfigError>,
) -> Result<ImapSettings, ConfigError> {
    let text = |field: &str, v| optional_text(file, &format!("[bounces.imap] {field}"), v);
    let url = text("url", raw.url)?
        .ok_or_else(|| ConfigError::field(file, URL_FIELD, "is missing (imaps://HOST:993)"))?;
    let (tls, host, port) =
        parse_url(&url).map_err(|why| ConfigError::field(file, URL_FIELD, why))?;
    let security = security(file, tls, &host, raw.allow_plaintext_on_loopback)?;
    let after = match (text("move_to", raw.move_to)?, text("flag", raw.flag)?) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::field(
                file,
                "[bounces.imap] flag",
                "give move_to or flag, not both",
            ));
        }
        (None, Some(flag)) => ImapAfter::Flag(valid_flag(file, flag)?),
        (folder, None) => ImapAfter::MoveTo(mailbox_name(
            file,
            "move_to",
            folder.unwrap_or_else(|| "fairsend-processed".into()),
        )?),
    };
    let mailbox = mailbox_name(
        file,
        "mailbox",
        text("mailbox", raw.mailbox)?.unwrap_or_else(|| "INBOX".into()),
    )?;
    if after == ImapAfter::MoveTo(mailbox.clone()) {
        return Err(ConfigError::field(
            file,
            "[bounces.imap] move_to",
            "is the mailbox that is read: handled messages must go elsewhere",
        ));
    }
    let env = |field: &str, v| {
        text(field, v)?.ok_or_else(|| {
            ConfigError::field(
                file,
                format!("[bounces.imap] {field}"),
                "is missing: the name of the environment variable that holds it",
            )
        })
    };
    Ok(ImapSettings {
        host,
        port,
        security,
        mailbox,
        after,
        username_env: env("username_env", raw.username_env)?,
        password_env: env("password_env", raw.password_env)?,
        ca_file: text("ca_file", raw.ca_file)?
            .map(|path| file.parent().unwrap_or(Path::new(".")).join(path)),
        timeout: timeout(raw.timeout)?,
    })
}

fn security(
    file: &Path,
    tls: bool,
    host: &str,
    allow_plaintext: Option<bool>,
) -> Result<ImapSecurity, ConfigError> {
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match (tls, allow_plaintext.unwrap_or(false)) {
        (true, _) => Ok(ImapSecurity::Tls),
        (false, false) => Ok(ImapSecurity::StartTls),
        (false, true) if loopback => Ok(ImapSecurity::Plaintext),
        (false, true) => Err(ConfigError::field(
            file,
            "[bounces.imap] allow_plaintext_on_loopback",
            format!(
                "plaintext IMAP is allowed only to a loopback host, and '{host}' is not one: \
                 the password would cross the network readable; use imaps:// or imap:// with \
                 STARTTLS"
            ),
        )),
    }
}

/// `imaps://HOST[:PORT]` or `imap://HOST[:PORT]` (an IPv6 address in brackets) → (TLS, host,
/// port).
fn parse_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest, default_port) = if let Some(rest) = url.strip_prefix("imaps://") {
        (true, rest, 993)
    } else if let Some(rest) = url.strip_prefix("imap://") {
        (false, rest, 143)
    } else {
        return Err(format!(
            "'{url}' must start with imaps:// (TLS) or imap:// (STARTTLS)"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '@', '?', '#']) {
        return Err(format!(
            "'{url}' must be only a scheme, a host and a port (the mailbox is `mailbox`, the \
             login comes from username_env and password_env)"
        ));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{url}': an IPv6 address needs its closing ']'"))?;
            (host, after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if host.is_empty() {
        return Err(format!("'{url}' names no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{url}': '{p}' is not a port number"))?,
    };
    Ok((tls, host.to_ascii_lowercase(), port))
}

/// Mailbox names travel as quoted IMAP strings; names outside printable ASCII would need
/// modified UTF-7 (RFC 3501 §5.1.3), which fairsend does not write.
fn mailbox_name(file: &Path, field: &str, name: String) -> Result<String, ConfigError> {
    if name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        Ok(name)
    } else {
        Err(ConfigError::field(
            file,
            format!("[bounces.imap] {field}"),
            format!("'{name}': use a folder name of printable ASCII characters"),
        ))
    }
}

fn valid_flag(file: &Path, flag: String) -> Result<String, ConfigError> {
    let keyword = !flag.starts_with('\\')
        && flag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "$_-.".contains(c));
    if keyword || flag.eq_ignore_ascii_case("\\Seen") || flag.eq_ignore_ascii_case("\\Flagged") {
        Ok(flag)
    } else {
        Err(ConfigError::field(
            file,
            "[bounces.imap] flag",
            format!("'{flag}' is not a keyword (letters, digits, $ _ - .) nor \\Seen or \\Flagged"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("imaps://mail.example.com"),
            Ok((true, "mail.example.com".into(), 993))
        );
        assert_eq!(
            parse_url("imap://127.0.0.1:1143/"),
            Ok((false, "127.0.0.1".into(), 1143))
        );
        assert_eq!(
            parse_url("imap://[::1]:143"),
            Ok((false, "::1".into(), 143))
        );
        assert!(parse_url("pop3://mail.example.com").is_err());
        assert!(parse_url("imaps://user:pw@mail.example.com").is_err());
        assert!(parse_url("imaps://mail.example.com:0").is_err());
        assert!(parse_url("imaps://:993").is_err());
    }

    #[test]
    fn plaintext_only_on_loopback_and_only_when_said() {
        let f = Path::new("fairsend.toml");
        assert_eq!(
            security(f, false, "127.0.0.1", Some(true)).ok(),
            Some(ImapSecurity::Plaintext)
        );
        assert_eq!(
            security(f, false, "127.0.0.1", None).ok(),
            Some(ImapSecurity::StartTls)
        );
        let refused = security(f, false, "mail.example.com", Some(true)).unwrap_err();
        assert!(refused.to_string().contains("allow_plaintext_on_loopback"));
        assert_eq!(
            security(f, true, "mail.example.com", Some(true)).ok(),
            Some(ImapSecurity::Tls)
        );
    }

    #[test]
    fn flags() {
        let f = Path::new("fairsend.toml");
        assert!(valid_flag(f, "$FairsendDone".into()).is_ok());
        assert!(valid_flag(f, "\\Seen".into()).is_ok());
        assert!(valid_flag(f, "\\Deleted".into()).is_err());
        assert!(valid_flag(f, "a b".into()).is_err());
        assert!(valid_flag(f, "x)".into()).is_err());
    }
}
