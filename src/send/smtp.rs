//! The SMTP client side: a pool of reusable connections built on lettre's `AsyncSmtpConnection`
//! (lettre speaks the protocol; this module owns the sockets, the pool, the time-outs, and the
//! judgement of a failure by the phase of the transaction it happened in: before `MAIL FROM`
//! is accepted → one fresh connection at once; before the data → retry later; after the
//! end-of-data dot without a reply → uncertain).
//!
//! Why not lettre's own pooled transport: it cannot set `TCP_NODELAY`, and lettre writes the
//! message and the final `.` in two writes, so Nagle's algorithm holds the `.` until the server
//! acknowledges the message, and the server delays that acknowledgement (40 ms on Linux).
//! Measured into postfix's smtp-sink on loopback, a whole `send` at concurrency 1: 22
//! messages/s before, about 800 after (bench/run.sh). Every socket here has `TCP_NODELAY`; TLS
//! (STARTTLS, or from the first byte for `smtps://`) runs on top of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::transport::DeliveryFailure;

/// How a connection is secured.
pub enum Security {
    /// Plain SMTP (loopback, or `tls = "none"`).
    None,
    /// STARTTLS, required.
    StartTls(TlsParameters),
    /// TLS from the first byte (`smtps://`), with this client configuration.
    Wrapper(Arc<rustls::ClientConfig>),
}

/// How long to wait for the server, per RFC 5321 §4.5.3.2 (configurable in `[transport]`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Setting up a connection: TCP, TLS, greeting, EHLO, authentication.
    pub connect: Duration,
    /// The reply to MAIL FROM, RCPT TO and DATA.
    pub reply: Duration,
    /// The reply to the end of the message data.
    pub data: Duration,
}

pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeouts: Timeouts,
    hello: ClientId,
    /// Idle connections, ready for the next transaction.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

/// How one attempt of a transaction ended without delivery. What matters is the phase: until
/// MAIL FROM is accepted nothing of the message is committed to this connection, so a fresh
/// connection may take over at once; after the end-of-data dot, silence means nobody knows.
enum Attempt {
    /// The connection failed before MAIL FROM was accepted (a pooled connection the server
    /// closed while idle, a refused connection, 421): worth one fresh connection at once.
    Fresh(String),
    /// Anything else, as the send loop sees it.
    Ended(DeliveryFailure),
}

impl SmtpPool {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        timeouts: Timeouts,
        max_idle: usize,
    ) -> Self {
        let hello = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(ClientId::Domain)
            .unwrap_or_default();
        Self {
            host,
            port,
            security,
            credentials,
            timeouts,
            hello,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// One transaction on a pooled connection (a new one if none is idle). A connection that
    /// saw any error is dropped, not reused. A failure before MAIL FROM is accepted is tried
    /// again at once on a fresh connection, once: it says nothing about the message.
    pub async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, DeliveryFailure> {
        let pooled = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let first = match pooled {
            Some(conn) => self.transaction(conn, envelope, bytes).await,
            None => self.fresh_transaction(envelope, bytes).await,
        };
        let reason = match first {
            Ok(response) => return Ok(response),
            Err(Attempt::Ended(failure)) => return Err(failure),
            Err(Attempt::Fresh(reason)) => reason,
        };
        tracing::info!(%reason, "the connection failed before MAIL FROM was accepted; trying once more on a fresh connection");
        match self.fresh_transaction(envelope, bytes).await {
            Ok(response) => Ok(response),
            Err(Attempt::Ended(failure)) => Err(failure),
            Err(Attempt::Fresh(again)) => Err(DeliveryFailure::Transient(format!(
                "{again} (on a fresh connection, after: {reason})"
            ))),
        }
    }

    async fn fresh_transaction(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, Attempt> {
        let conn = self.connect().await.map_err(Attempt::Fresh)?;
        self.transaction(conn, envelope, bytes).await
    }

    /// MAIL FROM, RCPT TO, DATA, the message: each step's failure judged by its phase.
    async fn transaction(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, Attempt> {
        let Timeouts { reply, data, .. } = self.timeouts;
        let mail = self.mail_command(&conn, envelope, bytes)?;
        match self.step(reply, "MAIL FROM", conn.command(mail)).await {
            Ok(_) => {}
            // 421: the server is closing this connection (an idle one, typically).
            Err(Step::Replied(e)) if e.status().is_some_and(|c| c.to_string() == "421") => {
                return Err(Attempt::Fresh(e.to_string()));
            }
            Err(Step::Replied(e)) => return Err(Attempt::Ended(by_reply(&e))),
            Err(Step::Silent(reason)) => return Err(Attempt::Fresh(reason)),
        }
        let before_data = |step: Step| match step {
            Step::Replied(e) => Attempt::Ended(by_reply(&e)),
            // Nothing of the message was sent: the server cannot have accepted it.
            Step::Silent(reason) => Attempt::Ended(DeliveryFailure::Transient(reason)),
        };
        for to in envelope.to() {
            let rcpt = Rcpt::new(to.clone(), vec![]);
            self.step(reply, "RCPT TO", conn.command(rcpt))
                .await
                .map_err(before_data)?;
        }
        self.step(reply, "DATA", conn.command(Data))
            .await
            .map_err(before_data)?;
        let response = match self.step(data, "end of data", conn.message(bytes)).await {
            Ok(response) => response,
            Err(Step::Replied(e)) => return Err(Attempt::Ended(by_reply(&e))),
            // lettre does not say whether the final dot left before the connection failed, so
            // any failure of this step counts as after it: possibly delivered.
            Err(Step::Silent(reason)) => {
                return Err(Attempt::Ended(DeliveryFailure::Uncertain(format!(
                    "{reason}, after the message data was sent: the server may have accepted it"
                ))));
            }
        };
        if !conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
        Ok(response)
    }

    /// MAIL FROM with the parameters the message needs (8BITMIME, SMTPUTF8), refused here if
    /// the server does not offer them.
    fn mail_command(
        &self,
        conn: &AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Mail, Attempt> {
        let info = conn.server_info();
        let mut parameters = Vec::new();
        let ascii_addresses = envelope
            .from()
            .is_none_or(|a| AsRef::<str>::as_ref(a).is_ascii())
            && envelope
                .to()
                .iter()
                .all(|a| AsRef::<str>::as_ref(a).is_ascii());
        if !ascii_addresses {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Attempt::Ended(DeliveryFailure::Permanent(
                    "the address is not ASCII and the server does not offer SMTPUTF8".into(),
                )));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Attempt::Ended(DeliveryFailure::Permanent(
                    "the message is not ASCII and the server does not offer 8BITMIME".into(),
                )));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(Mail::new(envelope.from().cloned(), parameters))
    }

    /// One command and its reply within `limit`: a reply of the server, or silence (the
    /// connection failed or the time ran out).
    async fn step(
        &self,
        limit: Duration,
        what: &str,
        command: impl std::future::Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    ) -> Result<Response, Step> {
        match tokio::time::timeout(limit, command).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.status().is_some() => Err(Step::Replied(e)),
            Ok(Err(e)) => Err(Step::Silent(format!(
                "{what} on {}:{}: {e}",
                self.host, self.port
            ))),
            Err(_) => Err(Step::Silent(format!(
                "{what} on {}:{}: no reply within {limit:?}",
                self.host, self.port
            ))),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            format!("{what} {}:{}: {e}", self.host, self.port)
        };
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| failed("cannot connect to", &e))?;
            tcp.set_nodelay(true)
                .map_err(|e| failed("cannot set TCP_NODELAY on", &e))?;
            let mut conn = match &self.security {
                Security::Wrapper(config) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| failed("invalid TLS server name", &e))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| failed("TLS handshake failed with", &e))?;
                    AsyncSmtpConnection::connect_with_transport(
                        Box::new(TlsSocket(tls)),
                        &self.hello,
                    )
                    .await
                }
                _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await,
            }
            .map_err(|e| failed("SMTP greeting failed from", &e))?;
            if let Security::StartTls(params) = &self.security {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(|e| failed("STARTTLS failed with", &e))?;
            }
            if let Some(credentials) = &self.credentials {
                // Wrong credentials are a configuration problem, retried later like any
                // refusal of the whole connection; the message is not at fault.
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| failed("authentication failed at", &e))?;
            }
            Ok(conn)
        };
        tokio::time::timeout(self.timeouts.connect, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "cannot connect to {}:{} within {:?}",
                    self.host, self.port, self.timeouts.connect
                ))
            })
    }
}

/// How a step of the transaction failed.
enum Step {
    /// The server answered with a negative reply.
    Replied(lettre::transport::smtp::Error),
    /// No reply: the connection failed or the time ran out.
    Silent(String),
}

/// A negative reply of the server: 5xx is permanent for this recipient, the rest is retried.
fn by_reply(e: &lettre::transport::smtp::Error) -> DeliveryFailure {
    if e.is_permanent() {
        DeliveryFailure::Permanent(e.to_string())
    } else {
        DeliveryFailure::Transient(e.to_string())
    }
}

/// A TLS session over a `TCP_NODELAY` socket, as lettre's connection wants its stream.
#[derive(Debug)]
struct TlsSocket(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl lettre::transport::smtp::client::AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsSocket {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The client configuration for `smtps://`: the system's trusted roots (as lettre uses for
/// STARTTLS), aws-lc-rs as the provider.
pub fn wrapper_tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A certificate the store cannot use is skipped, as lettre does.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no trusted root certificates found on this system".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
