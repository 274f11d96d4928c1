//! The SMTP client of the send path, our own over tokio (lettre still builds the messages): a
//! pool of reusable connections, EHLO, STARTTLS or TLS from the first byte (tokio-rustls,
//! aws-lc-rs), AUTH PLAIN/LOGIN, ESMTP PIPELINING (RFC 2920) within a transaction and from
//! one transaction to the next (the next envelope behind the end-of-data dot), the message
//! written in one buffered write with its dot-stuffing done in the same pass, and the
//! time-outs of RFC 5321 §4.5.3.2.
//!
//! Why our own: a failure is judged by the phase of the transaction it happened in, and only
//! the client that does the writes knows that phase exactly — before `MAIL FROM` is accepted
//! (one fresh connection at once: nothing of the message is committed), before the end-of-data
//! dot has left (retry later: the server cannot have the message), or after it without a reply
//! (uncertain, RFC 5321 §6.1). lettre reports a failed write of the message and a lost reply
//! alike, and it neither pipelines nor writes a message in one piece. Every socket has
//! `TCP_NODELAY`: commands are written whole, so Nagle's algorithm would only delay them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use futures_util::future::BoxFuture;

use super::{DeliveryFailure, InFlightOutcome, Transport};
use crate::compliance::GatedMessage;
use crate::store::TransportKind;

/// How a connection is secured.
pub enum Security {
    /// Plain SMTP (loopback, or `tls = "none"`).
    None,
    /// STARTTLS, required: a server that does not offer it is refused.
    StartTls(Arc<rustls::ClientConfig>),
    /// TLS from the first byte (`smtps://`).
    Wrapper(Arc<rustls::ClientConfig>),
}

/// SMTP credentials, from the environment; never logged.
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// How long to wait for the server, per RFC 5321 §4.5.3.2 (configurable in `[transport]`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The TCP connection and each TLS handshake.
    pub connect: Duration,
    /// Every reply but the last (greeting, EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA),
    /// and writing the message.
    pub reply: Duration,
    /// The reply to the end of the message data.
    pub data: Duration,
}

/// The server's final answer to a delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// `CODE text text…` on one line, as the outbox records it.
    pub fn one_line(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
}

/// Delivery through the pool: the server's reply is the outcome. SMTP cannot tell whether a
/// server accepted a message whose sender died mid-transaction, and leaves nothing behind.
impl Transport for SmtpPool {
    fn kind(&self) -> TransportKind {
        TransportKind::Smtp
    }

    fn deliver<'a>(
        &'a self,
        _campaign: &'a str,
        message: &'a GatedMessage,
    ) -> BoxFuture<'a, Result<String, DeliveryFailure>> {
        Box::pin(async move {
            let from = message.envelope_from().as_str();
            let reply = self
                .send(from, message.recipient().as_str(), message.bytes())
                .await?;
            Ok(reply.one_line())
        })
    }

    fn in_flight_outcome(&self, _campaign: &str, _outbox_id: i64) -> InFlightOutcome {
        InFlightOutcome::Unknown
    }

    fn clean_up_after(&self, _campaign: &str, _pid: u32) -> std::io::Result<()> {
        Ok(())
    }
}

/// The connections to one server, at most `max_connections` of them. A delivery takes an
/// idle connection, opens one while there is room, or waits in line for one to be handed on.
/// A message whose connection has a delivery waiting in line goes out with that delivery's
/// MAIL FROM, RCPT TO and DATA behind its end-of-data dot (RFC 2920 allows the message
/// content as the first command of a group), so a busy connection carries one round trip
/// per message instead of two.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeouts: Timeouts,
    hello: String,
    places: Mutex<Places>,
    max_connections: usize,
}

/// Who has which of the pool's places (a place: the right to hold one connection).
#[derive(Default)]
struct Places {
    /// Connections ready for the next transaction.
    idle: Vec<Connection>,
    /// Places taken: idle connections, connections in use, connections being opened.
    taken: usize,
    /// Deliveries waiting for a place, first come first served.
    waiting: std::collections::VecDeque<Waiter>,
}

/// A delivery in line for a place: what its MAIL FROM needs, and where its place goes.
struct Waiter {
    from: String,
    to: String,
    ascii_message: bool,
    handoff: oneshot::Sender<Handoff>,
}

/// A place handed to a waiting delivery.
enum Handoff {
    /// A connection with nothing of this delivery written on it yet.
    Ready(Connection),
    /// A connection on which this delivery's MAIL FROM, RCPT TO and DATA went out behind the
    /// previous message: their replies are the next to read.
    Pipelined(Connection),
    /// No connection: open one.
    Connect,
    /// This delivery's MAIL FROM, RCPT TO and DATA went out behind the previous message on a
    /// connection that then failed, before any of this message: open a fresh one.
    Lost(String),
}

/// How one attempt of a transaction ended without delivery.
enum Attempt {
    /// The connection failed before MAIL FROM was accepted (a pooled connection the server
    /// closed while idle, a refused connection, 421): worth one fresh connection at once.
    Fresh(String),
    /// Anything else, as the send loop sees it.
    Ended(DeliveryFailure),
}

/// The envelope of one transaction.
struct Envelope<'a> {
    from: &'a str,
    to: &'a str,
    message: &'a [u8],
}

/// A place held by one delivery, with its connection once there is one. Dropped without
/// handing its connection on (an error, a cancelled delivery), it gives the place to the
/// next delivery in line, which opens a connection of its own.
struct Lease<'a> {
    pool: &'a SmtpPool,
    conn: Option<Connection>,
    /// False once the place itself has been handed on.
    holds_place: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.holds_place {
            self.conn = None;
            self.pool.place_freed(None);
        }
    }
}

/// A delivery's wait in line. Dropped before the handoff is read (the delivery was
/// cancelled), it gives back whatever was handed to it, so no place is lost.
struct InLine<'a> {
    pool: &'a SmtpPool,
    handed: oneshot::Receiver<Handoff>,
}

impl InLine<'_> {
    /// The handoff, or `None` if the transaction that took it in stopped without one.
    async fn wait(mut self) -> Option<Handoff> {
        (&mut self.handed).await.ok()
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.handed.close();
        match self.handed.try_recv() {
            Ok(Handoff::Ready(conn)) => self.pool.place_freed(Some(conn)),
            // A connection with this delivery's DATA open is only ever closed.
            Ok(Handoff::Pipelined(_) | Handoff::Connect | Handoff::Lost(_)) => {
                self.pool.place_freed(None)
            }
            Err(_) => {}
        }
    }
}

impl SmtpPool {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        timeouts: Timeouts,
        max_connections: usize,
    ) -> Self {
        let hello = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or_else(|| "localhost".into());
        Self {
            host,
            port,
            security,
            credentials,
            timeouts,
            hello,
            places: Mutex::new(Places::default()),
            max_connections: max_connections.max(1),
        }
    }

    /// One transaction, `MAIL FROM:<from>`, one `RCPT TO:<to>`, the message, on a pooled
    /// connection (a new one if none is idle and there is room). A connection that saw any
    /// error is dropped, not reused. A failure before MAIL FROM is accepted is tried again at
    /// once on a fresh connection, once: it says nothing about the message.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> Result<Reply, DeliveryFailure> {
        for address in [from, to] {
            if address.is_empty()
                || address
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
            {
                return Err(DeliveryFailure::Permanent(format!(
                    "'{}' cannot be an SMTP envelope address",
                    address.escape_debug()
                )));
            }
        }
        let envelope = Envelope { from, to, message };
        let handoff = self.place(&envelope).await;
        let mut lease = Lease {
            pool: self,
            conn: None,
            holds_place: true,
        };
        let first = match handoff {
            Handoff::Ready(conn) => {
                lease.conn = Some(conn);
                self.transaction(&mut lease, &envelope, false).await
            }
            Handoff::Pipelined(conn) => {
                lease.conn = Some(conn);
                self.transaction(&mut lease, &envelope, true).await
            }
            Handoff::Connect => self.fresh_transaction(&mut lease, &envelope).await,
            Handoff::Lost(reason) => Err(Attempt::Fresh(reason)),
        };
        let reason = match first {
            Ok(reply) => return Ok(reply),
            Err(Attempt::Ended(failure)) => return Err(failure),
            Err(Attempt::Fresh(reason)) => reason,
        };
        tracing::info!(%reason, "the connection failed before MAIL FROM was accepted; trying once more on a fresh connection");
        match self.fresh_transaction(&mut lease, &envelope).await {
            Ok(reply) => Ok(reply),
            Err(Attempt::Ended(failure)) => Err(failure),
            Err(Attempt::Fresh(again)) => Err(DeliveryFailure::Transient(format!(
                "{again} (on a fresh connection, after: {reason})"
            ))),
        }
    }

    /// A place for `envelope`'s transaction: an idle connection, room for a new one, or a
    /// place handed on by a transaction that ends. A transaction that took this delivery's
    /// commands and then stopped without a word (its own delivery was cancelled) puts it
    /// back in line.
    async fn place(&self, envelope: &Envelope<'_>) -> Handoff {
        loop {
            let handed = {
                let mut places = self.lock();
                if let Some(conn) = places.idle.pop() {
                    return Handoff::Ready(conn);
                }
                if places.taken < self.max_connections {
                    places.taken += 1;
                    return Handoff::Connect;
                }
                let (handoff, handed) = oneshot::channel();
                places.waiting.push_back(Waiter {
                    from: envelope.from.to_string(),
                    to: envelope.to.to_string(),
                    ascii_message: envelope.message.is_ascii(),
                    handoff,
                });
                InLine { pool: self, handed }
            };
            if let Some(handoff) = handed.wait().await {
                return handoff;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Places> {
        // A panic while the lock was held cannot leave the places inconsistent: every change
        // under it is one push, pop or count.
        self.places.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives a place up: its connection (if still good) to the first in line or to the idle
    /// ones, else the place itself to the first in line, else back to the pool.
    fn place_freed(&self, conn: Option<Connection>) {
        let mut places = self.lock();
        let mut conn = conn;
        while let Some(waiter) = places.waiting.pop_front() {
            let handoff = match conn.take() {
                Some(conn) => Handoff::Ready(conn),
                None => Handoff::Connect,
            };
            match waiter.handoff.send(handoff) {
                Ok(()) => return,
                // That delivery is gone; the next in line gets the place.
                Err(Handoff::Ready(back)) => conn = Some(back),
                Err(_) => {}
            }
        }
        match conn {
            Some(conn) => places.idle.push(conn),
            None => places.taken -= 1,
        }
    }

    /// The first delivery in line whose MAIL FROM this connection can carry, to go out behind
    /// the message about to be written. Deliveries no longer waiting are dropped from the
    /// line; one this connection cannot carry (no SMTPUTF8 or 8BITMIME) keeps its place.
    fn next_in_line(&self, conn: &Connection) -> Option<(Waiter, String)> {
        if !conn.pipelining {
            return None;
        }
        let mut places = self.lock();
        places.waiting.retain(|waiter| !waiter.handoff.is_closed());
        let (index, mail) = places
            .waiting
            .iter()
            .enumerate()
            .find_map(|(index, waiter)| {
                let mail = conn.mail_line(&waiter.from, &waiter.to, waiter.ascii_message);
                mail.ok().map(|mail| (index, mail))
            })?;
        let waiter = places.waiting.remove(index)?;
        let commands = envelope_group(&mail, &rcpt_line(&waiter.to));
        Some((waiter, commands))
    }

    async fn fresh_transaction(
        &self,
        lease: &mut Lease<'_>,
        envelope: &Envelope<'_>,
    ) -> Result<Reply, Attempt> {
        lease.conn = None;
        lease.conn = Some(self.connect().await.map_err(Attempt::Fresh)?);
        self.transaction(lease, envelope, false).await
    }

    fn peer(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// MAIL FROM, RCPT TO and DATA (in one write when the server offers PIPELINING; already
    /// written if `pipelined`), then the message and its end-of-data dot in one write, with
    /// the next delivery's MAIL FROM, RCPT TO and DATA behind it when one is waiting; each
    /// failure judged by its phase. The connection is handed on only after a clean
    /// transaction.
    async fn transaction(
        &self,
        lease: &mut Lease<'_>,
        envelope: &Envelope<'_>,
        pipelined: bool,
    ) -> Result<Reply, Attempt> {
        let peer = self.peer();
        let Some(conn) = lease.conn.as_mut() else {
            return Err(Attempt::Fresh(format!("no connection to {peer}")));
        };
        let mail = if pipelined {
            None
        } else {
            match conn.mail_line(envelope.from, envelope.to, envelope.message.is_ascii()) {
                Ok(mail) => Some(mail),
                Err(refusal) => {
                    // Nothing was written: the connection is as good as it was, for the next
                    // in line.
                    lease.holds_place = false;
                    self.place_freed(lease.conn.take());
                    return Err(refusal);
                }
            }
        };
        self.envelope(conn, &peer, envelope.to, mail).await?;
        let next = self.next_in_line(conn);
        let commands = next.as_ref().map(|(_, commands)| commands.as_str());
        let outcome = self
            .message_data(conn, &peer, envelope.message, commands)
            .await;
        let conn = lease.conn.take();
        let Some((waiter, _)) = next else {
            let answer = outcome?;
            lease.holds_place = false;
            self.place_freed(conn);
            return Ok(answer);
        };
        // The place goes to the delivery whose commands went out on this connection: with the
        // connection after a clean transaction, else without it.
        lease.holds_place = false;
        let handoff = match (conn, &outcome) {
            (Some(conn), Ok(_)) => Handoff::Pipelined(conn),
            _ => Handoff::Lost(format!(
                "MAIL FROM on {peer}: written behind a message whose transaction failed; \
                 no byte of this message went out"
            )),
        };
        if waiter.handoff.send(handoff).is_err() {
            // That delivery is gone. Its DATA may have been accepted with no message behind
            // it: only closing the connection ends that transaction without a message.
            self.place_freed(None);
        }
        outcome
    }

    /// MAIL FROM (the line `mail`), RCPT TO and DATA, up to the server's go-ahead (354).
    /// Without `mail`, the commands already went out behind the previous message; only their
    /// replies are read.
    async fn envelope(
        &self,
        conn: &mut Connection,
        peer: &str,
        to: &str,
        mail: Option<String>,
    ) -> Result<(), Attempt> {
        let reply = self.timeouts.reply;
        let rcpt = rcpt_line(to);
        // Until MAIL FROM is accepted, a silent connection is a stale one.
        let stale = |e: String| Attempt::Fresh(silent(peer, "MAIL FROM", e));
        if let Some(mail) = mail {
            let commands = if conn.pipelining {
                envelope_group(&mail, &rcpt)
            } else {
                mail
            };
            conn.write(commands.as_bytes(), reply)
                .await
                .map_err(stale)?;
        }
        let answer = conn.read_reply(reply).await.map_err(stale)?;
        match answer.code {
            250 => {}
            // The server is closing this connection (an idle one, typically).
            421 => return Err(Attempt::Fresh(silent(peer, "MAIL FROM", answer.one_line()))),
            _ => return Err(refused(peer, "MAIL FROM", answer)),
        }
        for (what, line, accepted) in [
            ("RCPT TO", rcpt.as_str(), &[250, 251][..]),
            ("DATA", "DATA\r\n", &[354][..]),
        ] {
            if !conn.pipelining {
                conn.write(line.as_bytes(), reply)
                    .await
                    .map_err(|e| not_sent(peer, what, e))?;
            }
            let answer = conn
                .read_reply(reply)
                .await
                .map_err(|e| not_sent(peer, what, e))?;
            if !accepted.contains(&answer.code) {
                return Err(refused(peer, what, answer));
            }
        }
        Ok(())
    }

    /// The message and its end-of-data dot in one write (with the next transaction's
    /// `commands` behind it), then the server's verdict.
    async fn message_data(
        &self,
        conn: &mut Connection,
        peer: &str,
        message: &[u8],
        commands: Option<&str>,
    ) -> Result<Reply, Attempt> {
        let mut wire = dot_stuffed(message);
        let content = wire.len();
        if let Some(commands) = commands {
            wire.extend_from_slice(commands.as_bytes());
        }
        if let Err((written, e)) = conn.write_counted(&wire, self.timeouts.reply).await {
            // Until the end-of-data dot has left, the server cannot have the message.
            return Err(if written < content {
                not_sent(peer, "the message data", e)
            } else {
                uncertain(peer, e)
            });
        }
        // The dot has left: from here on, silence means nobody knows.
        let answer = conn
            .read_reply(self.timeouts.data)
            .await
            .map_err(|e| uncertain(peer, e))?;
        if !answer.is_positive() {
            return Err(refused(peer, "the message", answer));
        }
        Ok(answer)
    }

    /// TCP (`TCP_NODELAY`), TLS, greeting, EHLO, STARTTLS and EHLO again, authentication.
    async fn connect(&self) -> Result<Connection, String> {
        let peer = self.peer();
        let failed = |what: &str, e: &dyn std::fmt::Display| format!("{what} {peer}: {e}");
        // The greeting, EHLO, STARTTLS and AUTH are replies like any other (RFC 5321 §4.5.3.2:
        // 5 minutes); only the TCP connection and the TLS handshakes have `timeout`.
        let limit = self.timeouts.reply;
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = tokio::time::timeout(self.timeouts.connect, connecting)
            .await
            .map_err(|_| {
                failed(
                    "cannot connect to",
                    &format!("no answer within {:?}", self.timeouts.connect),
                )
            })?
            .map_err(|e| failed("cannot connect to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| failed("cannot set TCP_NODELAY on", &e))?;
        let socket = match &self.security {
            Security::Wrapper(config) => self.tls(config, tcp).await?,
            _ => Socket::Plain(tcp),
        };
        let mut conn = Connection::new(socket);
        let greeting = conn
            .read_reply(limit)
            .await
            .map_err(|e| failed("no greeting from", &e))?;
        if greeting.code != 220 {
            return Err(failed("refused by", &greeting.one_line()));
        }
        conn.hello(&self.hello, limit)
            .await
            .map_err(|e| failed("EHLO failed with", &e))?;
        if let Security::StartTls(config) = &self.security {
            if !conn.has("STARTTLS") {
                return Err(failed(
                    "STARTTLS is required and not offered by",
                    &"set tls = \"none\" in [transport] only if the connection never leaves a trusted network",
                ));
            }
            let answer = conn
                .command("STARTTLS\r\n", limit)
                .await
                .map_err(|e| failed("STARTTLS failed with", &e))?;
            if answer.code != 220 {
                return Err(failed("STARTTLS refused by", &answer.one_line()));
            }
            let Socket::Plain(tcp) = conn.into_socket() else {
                return Err(failed("STARTTLS on an encrypted connection to", &"refused"));
            };
            conn = Connection::new(self.tls(config, tcp).await?);
            // RFC 3207: forget what was learnt before TLS and ask again.
            conn.hello(&self.hello, limit)
                .await
                .map_err(|e| failed("EHLO failed with", &e))?;
        }
        if let Some(credentials) = &self.credentials {
            // Wrong credentials are a configuration problem, retried later like any refusal
            // of the whole connection; the message is not at fault.
            conn.authenticate(credentials, limit)
                .await
                .map_err(|e| failed("authentication failed at", &e))?;
        }
        Ok(conn)
    }

    async fn tls(
        &self,
        config: &Arc<rustls::ClientConfig>,
        tcp: TcpStream,
    ) -> Result<Socket, String> {
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("invalid TLS server name {}: {e}", self.host))?;
        let handshake = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp);
        let tls = tokio::time::timeout(self.timeouts.connect, handshake)
            .await
            .map_err(|_| {
                format!(
                    "TLS handshake with {} not done within {:?}",
                    self.peer(),
                    self.timeouts.connect
                )
            })?
            .map_err(|e| format!("TLS handshake failed with {}: {e}", self.peer()))?;
        Ok(Socket::Tls(Box::new(tls)))
    }
}

fn silent(peer: &str, what: &str, e: String) -> String {
    format!("{what} on {peer}: {e}")
}

/// `RCPT TO:<to>` as written.
fn rcpt_line(to: &str) -> String {
    format!("RCPT TO:<{to}>\r\n")
}

/// MAIL FROM, RCPT TO and DATA as one pipelined group (RFC 2920: DATA ends a group).
fn envelope_group(mail: &str, rcpt: &str) -> String {
    format!("{mail}{rcpt}DATA\r\n")
}

/// The end-of-data dot has left and no verdict came back: nobody knows (RFC 5321 §6.1).
fn uncertain(peer: &str, e: String) -> Attempt {
    Attempt::Ended(DeliveryFailure::Uncertain(format!(
        "{}, after the message data was sent: the server may have accepted it",
        silent(peer, "end of data", e)
    )))
}

/// Until the end-of-data dot has left, the server cannot have the message: try again later.
fn not_sent(peer: &str, what: &str, e: String) -> Attempt {
    Attempt::Ended(DeliveryFailure::Transient(silent(peer, what, e)))
}

/// A refusal: 5xx is permanent for this recipient, anything else temporary.
fn refused(peer: &str, what: &str, r: Reply) -> Attempt {
    let text = format!("{what} refused by {peer}: {}", r.one_line());
    Attempt::Ended(if r.code >= 500 {
        DeliveryFailure::Permanent(text)
    } else {
        DeliveryFailure::Transient(text)
    })
}

/// The message as it goes on the wire after DATA, in one buffer: every line that starts with
/// a dot gets another (RFC 5321 §4.5.2), the last line ends with CRLF, then `.` CRLF.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    // Copied a line-run at a time between the rare lines that start with a dot (found with
    // memchr), not byte by byte: this runs once per message on the send path.
    let dots = memchr::memmem::find_iter(message, b"\n.").count() + 1;
    let mut out = Vec::with_capacity(message.len() + dots + 5);
    let mut from = 0;
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    for newline in memchr::memmem::find_iter(message, b"\n.") {
        out.extend_from_slice(&message[from..=newline]);
        out.push(b'.');
        from = newline + 1;
    }
    out.extend_from_slice(&message[from..]);
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A plain or TLS socket.
enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Limits on what a server may send in one reply, so a broken one cannot exhaust memory.
const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// One SMTP connection after EHLO, with the extensions the server offered.
struct Connection {
    stream: BufReader<Socket>,
    /// The EHLO keywords (upper case) with their parameters.
    extensions: Vec<(String, String)>,
    pipelining: bool,
}

impl Connection {
    fn new(socket: Socket) -> Self {
        Self {
            stream: BufReader::new(socket),
            extensions: Vec::new(),
            pipelining: false,
        }
    }

    fn into_socket(self) -> Socket {
        self.stream.into_inner()
    }

    fn has(&self, keyword: &str) -> bool {
        self.extensions.iter().any(|(k, _)| k == keyword)
    }

    /// EHLO, or HELO from a server that does not know EHLO (then no extensions).
    async fn hello(&mut self, name: &str, limit: Duration) -> Result<(), String> {
        let answer = self.command(&format!("EHLO {name}\r\n"), limit).await?;
        self.extensions.clear();
        if answer.code == 250 {
            self.extensions = answer
                .lines
                .iter()
                .skip(1)
                .map(|line| {
                    let (keyword, params) = line.split_once(' ').unwrap_or((line, ""));
                    (keyword.to_ascii_uppercase(), params.to_string())
                })
                .collect();
        } else {
            let answer = self.command(&format!("HELO {name}\r\n"), limit).await?;
            if answer.code != 250 {
                return Err(answer.one_line());
            }
        }
        self.pipelining = self.has("PIPELINING");
        Ok(())
    }

    /// AUTH PLAIN if offered, else AUTH LOGIN (both only over TLS or loopback, which the
    /// transport's STARTTLS rule already ensures). The secret never reaches a log: errors
    /// carry the server's reply only.
    async fn authenticate(
        &mut self,
        credentials: &Credentials,
        limit: Duration,
    ) -> Result<(), String> {
        let mechanisms: Vec<String> = self
            .extensions
            .iter()
            .filter(|(k, _)| k == "AUTH")
            .flat_map(|(_, params)| params.split_whitespace().map(str::to_ascii_uppercase))
            .collect();
        let accepted = if mechanisms.iter().any(|m| m == "PLAIN") {
            let token =
                base64(format!("\0{}\0{}", credentials.user, credentials.password).as_bytes());
            self.command(&format!("AUTH PLAIN {token}\r\n"), limit)
                .await?
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            let answer = self.command("AUTH LOGIN\r\n", limit).await?;
            if answer.code != 334 {
                return Err(answer.one_line());
            }
            let answer = self
                .command(
                    &format!("{}\r\n", base64(credentials.user.as_bytes())),
                    limit,
                )
                .await?;
            if answer.code != 334 {
                return Err(answer.one_line());
            }
            self.command(
                &format!("{}\r\n", base64(credentials.password.as_bytes())),
                limit,
            )
            .await?
        } else {
            return Err("the server offers neither AUTH PLAIN nor AUTH LOGIN".into());
        };
        if accepted.code != 235 {
            return Err(accepted.one_line());
        }
        Ok(())
    }

    /// MAIL FROM with the parameters the message needs (8BITMIME, SMTPUTF8), refused here if
    /// the server does not offer them.
    fn mail_line(&self, from: &str, to: &str, ascii_message: bool) -> Result<String, Attempt> {
        let mut command = format!("MAIL FROM:<{from}>");
        if !(from.is_ascii() && to.is_ascii()) {
            if !self.has("SMTPUTF8") {
                return Err(Attempt::Ended(DeliveryFailure::Permanent(
                    "the address is not ASCII and the server does not offer SMTPUTF8".into(),
                )));
            }
            command.push_str(" SMTPUTF8");
        }
        if !ascii_message {
            if !self.has("8BITMIME") {
                return Err(Attempt::Ended(DeliveryFailure::Permanent(
                    "the message is not ASCII and the server does not offer 8BITMIME".into(),
                )));
            }
            command.push_str(" BODY=8BITMIME");
        }
        command.push_str("\r\n");
        Ok(command)
    }

    async fn command(&mut self, line: &str, limit: Duration) -> Result<Reply, String> {
        self.write(line.as_bytes(), limit).await?;
        self.read_reply(limit).await
    }

    /// Writes and flushes `bytes` within `limit`: once this returns `Ok`, they have left
    /// this process.
    async fn write(&mut self, bytes: &[u8], limit: Duration) -> Result<(), String> {
        self.write_counted(bytes, limit).await.map_err(|(_, e)| e)
    }

    /// Writes and flushes `bytes` within `limit`; on failure, also how many of them may have
    /// left this process. On plain TCP that is what the socket took; TLS can put bytes on the
    /// wire in a write that then fails, so after any failure on TLS every byte may have left.
    async fn write_counted(
        &mut self,
        bytes: &[u8],
        limit: Duration,
    ) -> Result<(), (usize, String)> {
        let tls = matches!(self.stream.get_ref(), Socket::Tls(_));
        let socket = self.stream.get_mut();
        let mut written = 0;
        let writing = async {
            while written < bytes.len() {
                match socket.write(&bytes[written..]).await {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(e) => return Err(e),
                }
            }
            socket.flush().await
        };
        let outcome = tokio::time::timeout(limit, writing).await;
        let may_have_left = if tls { bytes.len() } else { written };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err((may_have_left, format!("cannot write: {e}"))),
            Err(_) => Err((may_have_left, format!("cannot write within {limit:?}"))),
        }
    }

    /// One reply, single- or multi-line, within `limit`.
    async fn read_reply(&mut self, limit: Duration) -> Result<Reply, String> {
        match tokio::time::timeout(limit, self.read_reply_lines()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no reply within {limit:?}")),
        }
    }

    async fn read_reply_lines(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let mut line = Vec::new();
            let n = (&mut self.stream)
                .take(MAX_REPLY_LINE as u64)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| format!("cannot read the reply: {e}"))?;
            if n == 0 {
                return Err("the connection was closed without a reply".into());
            }
            if !line.ends_with(b"\n") {
                return Err("a reply line is too long".into());
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let (this_code, last, rest) = parse_reply_line(text)
                .ok_or_else(|| format!("not an SMTP reply: {}", text.escape_debug()))?;
            if !lines.is_empty() && this_code != code {
                return Err(format!("a multi-line reply changed its code: {text}"));
            }
            code = this_code;
            lines.push(rest.to_string());
            if last {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err("a reply has too many lines".into());
            }
        }
    }
}

/// `250-text` (more lines follow), `250 text` or `250` (the last line): the code, whether it
/// is the last line, and the text.
fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&digits.as_bytes()[0])
    {
        return None;
    }
    let code = digits.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

/// Standard base64 with padding (RFC 4648), for AUTH only.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The client configuration for TLS (STARTTLS and `smtps://`): the system's trusted roots and
/// those of `ca_file`, aws-lc-rs as the provider.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A certificate the store cannot use is skipped.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let bad =
            |e: &dyn std::fmt::Display| format!("[transport] ca_file {}: {e}", path.display());
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(&"no certificate in this file"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_the_end_of_data() {
        assert_eq!(dot_stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuffed(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuffed(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuffed(b"x.y\r\n..\r\n"), b"x.y\r\n...\r\n.\r\n");
    }

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line("250-PIPELINING"),
            Some((250, false, "PIPELINING"))
        );
        assert_eq!(parse_reply_line("250 OK"), Some((250, true, "OK")));
        assert_eq!(parse_reply_line("354"), Some((354, true, "")));
        assert_eq!(parse_reply_line("25O OK"), None);
        assert_eq!(parse_reply_line("hello"), None);
        assert_eq!(parse_reply_line("250xOK"), None);
    }

    #[test]
    fn base64_of_auth_plain() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
    }
}
