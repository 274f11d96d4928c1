//! Transports: SMTP (plain with STARTTLS, or TLS from the start) through our own client and
//! its connection pool in `smtp.rs`, and the `outbox:DIR` spool that writes one `.eml` per message atomically.

use std::path::{Path, PathBuf};

use super::smtp::{Credentials, Security, SmtpPool, Timeouts};

use crate::compose::ComposedMessage;
use crate::config::{TlsMode, TransportSettings, TransportUrl};
use crate::store::TransportKind;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport {url}: {message}")]
    Setup { url: String, message: String },
}

/// How one delivery attempt ended without delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// 4xx, or the connection dropped / timed out before the message data was sent: try
    /// again later.
    Transient(String),
    /// 5xx: this recipient will not be retried.
    Permanent(String),
    /// The connection dropped or timed out after the message data was sent, before the
    /// server's reply (RFC 5321 §6.1): it may have been delivered; never retried unasked.
    Uncertain(String),
}

pub enum Transport {
    Smtp(SmtpPool),
    Outbox(PathBuf),
}

impl Transport {
    /// Builds the transport. Credentials are read from the environment variables that
    /// `settings` names; their values are never logged.
    pub fn new(url: &TransportUrl, settings: &TransportSettings) -> Result<Self, TransportError> {
        let setup = |message: String| TransportError::Setup {
            url: url.to_string(),
            message,
        };
        let (host, port, security) = match url {
            TransportUrl::Outbox(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
                return Ok(Self::Outbox(dir.clone()));
            }
            TransportUrl::Smtps { host, port } => (
                host,
                *port,
                Security::Wrapper(
                    super::smtp::tls_config(settings.ca_file.as_deref()).map_err(setup)?,
                ),
            ),
            TransportUrl::Smtp { host, port } => {
                let starttls = match settings.tls {
                    TlsMode::Required => true,
                    TlsMode::Auto => !url.is_loopback(),
                    TlsMode::None => false,
                };
                let security = if starttls {
                    Security::StartTls(
                        super::smtp::tls_config(settings.ca_file.as_deref()).map_err(setup)?,
                    )
                } else {
                    Security::None
                };
                (host, *port, security)
            }
        };
        let credentials = credentials(settings).map_err(setup)?;
        if credentials.is_some() && matches!(security, Security::None) && !url.is_loopback() {
            return Err(setup(
                "the SMTP password would travel in clear (tls = \"none\"): authentication \
                 without TLS is refused except on loopback"
                    .into(),
            ));
        }
        Ok(Self::Smtp(SmtpPool::new(
            host.clone(),
            port,
            security,
            credentials,
            Timeouts {
                connect: settings.timeout,
                reply: settings.reply_timeout,
                data: settings.data_timeout,
            },
            settings.concurrency,
        )))
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Self::Outbox(_))
    }

    /// The kind recorded with each row sent through this transport.
    pub fn kind(&self) -> TransportKind {
        match self {
            Self::Smtp(_) => TransportKind::Smtp,
            Self::Outbox(_) => TransportKind::Outbox,
        }
    }

    /// Where the outbox transport puts a row's message; `None` for SMTP.
    pub fn outbox_file(&self, campaign: &str, outbox_id: i64) -> Option<PathBuf> {
        match self {
            Self::Outbox(dir) => Some(dir.join(format!("{campaign}-{outbox_id:09}.eml"))),
            Self::Smtp(_) => None,
        }
    }

    /// The outbox transport stages each file in a hidden directory of the campaign and the
    /// process (workers on one campaign never share one) before renaming it into place; a
    /// killed worker can leave partial files there. Removes the staging directory of the
    /// process `pid`: a worker's own at the end of its run, a dead worker's when it is found.
    pub fn clear_staging(&self, campaign: &str, pid: u32) -> std::io::Result<()> {
        if let Self::Outbox(dir) = self {
            let staging = staging_dir(dir, campaign, pid);
            if staging.exists() {
                std::fs::remove_dir_all(staging)?;
            }
        }
        Ok(())
    }

    /// One transaction: `MAIL FROM` the message's VERP address, one `RCPT TO`, the bytes.
    /// Returns the server's reply.
    pub async fn deliver(
        &self,
        campaign: &str,
        message: &ComposedMessage,
    ) -> Result<String, DeliveryFailure> {
        match self {
            Self::Smtp(smtp) => {
                let reply = smtp
                    .send(
                        message.envelope_from.as_str(),
                        message.recipient.as_str(),
                        &message.bytes,
                    )
                    .await?;
                Ok(reply.one_line())
            }
            Self::Outbox(_) => {
                let path = self
                    .outbox_file(campaign, message.outbox_id)
                    .ok_or_else(|| DeliveryFailure::Permanent("no outbox file".into()))?;
                write_atomically(
                    &path,
                    &staging_dir(
                        path.parent().unwrap_or(Path::new(".")),
                        campaign,
                        std::process::id(),
                    ),
                    message,
                )
                .map(|()| format!("written to {}", path.display()))
                .map_err(|e| {
                    DeliveryFailure::Transient(format!("cannot write {}: {e}", path.display()))
                })
            }
        }
    }
}

fn credentials(settings: &TransportSettings) -> Result<Option<Credentials>, String> {
    match (&settings.username_env, &settings.password_env) {
        (None, None) => Ok(None),
        (Some(user_var), Some(pass_var)) => {
            let user = std::env::var(user_var).map_err(|_| {
                format!("environment variable {user_var} (SMTP user name) is not set")
            })?;
            let pass = std::env::var(pass_var).map_err(|_| {
                format!("environment variable {pass_var} (SMTP password) is not set")
            })?;
            Ok(Some(Credentials {
                user,
                password: pass,
            }))
        }
        _ => Err("set both username_env and password_env, or neither".into()),
    }
}

fn staging_dir(outbox: &Path, campaign: &str, pid: u32) -> PathBuf {
    outbox.join(format!(".staging-{campaign}-{pid}"))
}

/// Writes to a temporary file in the staging directory (same file system), syncs it, then renames it into place:
/// a reader (or a crash) sees either the whole message or none.
fn write_atomically(path: &Path, staging: &Path, message: &ComposedMessage) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(staging)?;
    let mut file = tempfile::NamedTempFile::new_in(staging)?;
    // The envelope travels with the spooled message as delivery agents record it.
    write!(
        file,
        "Return-Path: <{}>\r\nX-Fairsend-Envelope-To: <{}>\r\n",
        message.envelope_from, message.recipient
    )?;
    file.write_all(&message.bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
