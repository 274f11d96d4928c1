//! Transports behind one trait: how a gated message leaves fairsend. [`smtp`] is our own
//! pipelining SMTP client and its connection pool; [`outbox`] writes one `.eml` per message
//! atomically into a directory. [`open`] picks one from the `[transport] url`.
//!
//! The send loop knows only [`Transport`]: it never names a file, a socket or a server. What
//! a transport must answer is what the loop's delivery guarantees need — deliver one message
//! (with an outcome that may be uncertain), say whether a message interrupted in flight was
//! delivered (when it can tell), and clean up after a worker. A transport accepts only a
//! [`GatedMessage`]: nothing that has not passed the compliance gate can be handed to it.

mod outbox;
pub(crate) mod smtp;

use futures_util::future::BoxFuture;

use crate::compliance::GatedMessage;
use crate::config::{TlsMode, TransportSettings, TransportUrl};
use crate::store::TransportKind;

pub use outbox::OutboxTransport;
pub use smtp::SmtpPool;

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

/// What a transport can say about a message whose sender died in the middle of delivering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightOutcome {
    /// It was delivered; the note says how the transport knows.
    Delivered(&'static str),
    /// It was not delivered; the note says how the transport knows.
    NotDelivered(&'static str),
    /// The transport cannot tell (an SMTP server may have accepted it).
    Unknown,
}

/// A way of delivering messages. `campaign` names the run a message belongs to (a campaign,
/// or a test send's label): the outbox names its files after it.
pub trait Transport: Send + Sync {
    /// The kind recorded with each row sent through this transport.
    fn kind(&self) -> TransportKind;

    /// One delivery: the message's envelope (`MAIL FROM` its VERP address, one `RCPT TO`) and
    /// its bytes. Returns the receiving side's answer, as the outbox row records it.
    fn deliver<'a>(
        &'a self,
        campaign: &'a str,
        message: &'a GatedMessage,
    ) -> BoxFuture<'a, Result<String, DeliveryFailure>>;

    /// Whether the message of `outbox_id`, interrupted in flight by a dead worker, was
    /// delivered.
    fn in_flight_outcome(&self, campaign: &str, outbox_id: i64) -> InFlightOutcome;

    /// Removes what the worker of process `pid` left behind for `campaign`: a worker's own at
    /// the end of its run, a dead worker's when it is found.
    fn clean_up_after(&self, campaign: &str, pid: u32) -> std::io::Result<()>;
}

/// Builds the transport `url` names. Credentials are read from the environment variables that
/// `settings` names; their values are never logged.
pub fn open(
    url: &TransportUrl,
    settings: &TransportSettings,
) -> Result<Box<dyn Transport>, TransportError> {
    let setup = |message: String| TransportError::Setup {
        url: url.to_string(),
        message,
    };
    let (host, port, security) = match url {
        TransportUrl::Outbox(dir) => {
            return Ok(Box::new(OutboxTransport::create(dir).map_err(setup)?));
        }
        TransportUrl::Smtps { host, port } => (
            host,
            *port,
            smtp::Security::Wrapper(smtp::tls_config(settings.ca_file.as_deref()).map_err(setup)?),
        ),
        TransportUrl::Smtp { host, port } => (host, *port, starttls(url, settings).map_err(setup)?),
    };
    let credentials = credentials(settings).map_err(setup)?;
    if credentials.is_some() && matches!(security, smtp::Security::None) && !url.is_loopback() {
        return Err(setup(
            "the SMTP password would travel in clear (tls = \"none\"): authentication \
             without TLS is refused except on loopback"
                .into(),
        ));
    }
    Ok(Box::new(SmtpPool::new(
        host.clone(),
        port,
        security,
        credentials,
        smtp::Timeouts {
            connect: settings.timeout,
            reply: settings.reply_timeout,
            data: settings.data_timeout,
        },
        settings.concurrency,
    )))
}

/// `smtp://`: STARTTLS when required, or by default off loopback.
fn starttls(url: &TransportUrl, settings: &TransportSettings) -> Result<smtp::Security, String> {
    let starttls = match settings.tls {
        TlsMode::Required => true,
        TlsMode::Auto => !url.is_loopback(),
        TlsMode::None => false,
    };
    Ok(if starttls {
        smtp::Security::StartTls(smtp::tls_config(settings.ca_file.as_deref())?)
    } else {
        smtp::Security::None
    })
}

fn credentials(settings: &TransportSettings) -> Result<Option<smtp::Credentials>, String> {
    match (&settings.username_env, &settings.password_env) {
        (None, None) => Ok(None),
        (Some(user_var), Some(pass_var)) => {
            let user = std::env::var(user_var).map_err(|_| {
                format!("environment variable {user_var} (SMTP user name) is not set")
            })?;
            let pass = std::env::var(pass_var).map_err(|_| {
                format!("environment variable {pass_var} (SMTP password) is not set")
            })?;
            Ok(Some(smtp::Credentials {
                user,
                password: pass,
            }))
        }
        _ => Err("set both username_env and password_env, or neither".into()),
    }
}
