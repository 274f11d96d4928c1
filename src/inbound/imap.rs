//! The IMAP side of a bounce mailbox, over async-imap and tokio-rustls: connect with the
//! configured security (TLS, required STARTTLS, or plaintext to loopback when allowed), log in,
//! list the messages not yet handled, fetch one, move or flag it, and wait for new mail (IDLE)
//! when the server offers it. It decides nothing about a message: `app::bounce_poll` runs the
//! intake and `ingest` the effects.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::{ImapAfter, ImapSecurity, ImapSettings};

/// The byte stream under the session: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
type Stream = Box<dyn Io>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP {server}: cannot connect: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("IMAP {server}: TLS failed: {source}")]
    Tls {
        server: String,
        source: std::io::Error,
    },
    #[error(
        "IMAP {server}: the server does not offer STARTTLS ({reason}), which imap:// requires; \
         use imaps://, or for a test server on this machine allow_plaintext_on_loopback = true"
    )]
    NoStartTls { server: String, reason: String },
    #[error(
        "IMAP {server}: login refused ({reason}); check the user name in ${username_env} and \
         the password in ${password_env}"
    )]
    Login {
        server: String,
        reason: String,
        username_env: String,
        password_env: String,
    },
    #[error("IMAP {server}: {what}: {source}")]
    Command {
        server: String,
        what: String,
        source: async_imap::error::Error,
    },
    #[error("IMAP {server}: no answer to {what} within {seconds} s")]
    Timeout {
        server: String,
        what: String,
        seconds: u64,
    },
    #[error(
        "IMAP {server}: mailbox '{mailbox}' has no UIDVALIDITY, so its messages cannot be named for good"
    )]
    NoUidValidity { server: String, mailbox: String },
}

/// The login, read from the environment variables the configuration names. The password is
/// never printed: `Debug` shows the variables' names only.
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub username_env: String,
    pub password_env: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials(${}, ${})",
            self.username_env, self.password_env
        )
    }
}

/// A logged-in session and what the server can do.
pub struct Connection {
    session: Session<Stream>,
    server: String,
    timeout: Duration,
    can_idle: bool,
    can_move: bool,
    can_uid_expunge: bool,
}

/// Connects and logs in. Credentials cross the connection only once it is protected (or the
/// configuration allowed plaintext to loopback).
pub async fn connect(
    settings: &ImapSettings,
    credentials: &Credentials,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Connection, ImapError> {
    let server = format!("{}:{}", settings.host, settings.port);
    let within = Within {
        server: &server,
        timeout: settings.timeout,
    };
    let tcp = within
        .run("the connection", async {
            TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(|source| ImapError::Connect {
                    server: server.clone(),
                    source,
                })
        })
        .await?;
    let _ = tcp.set_nodelay(true);
    let stream: Stream = match settings.security {
        ImapSecurity::Tls => Box::new(handshake(&within, &settings.host, tcp, tls).await?),
        ImapSecurity::Plaintext => Box::new(tcp),
        ImapSecurity::StartTls => {
            let mut client = Client::new(tcp);
            greeting(&within, &mut client).await?;
            within
                .run("STARTTLS", async {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| ImapError::NoStartTls {
                            server: server.clone(),
                            reason: e.to_string(),
                        })
                })
                .await?;
            let tls = handshake(&within, &settings.host, client.into_inner(), tls).await?;
            return login(&within, Client::new(Box::new(tls) as Stream), credentials).await;
        }
    };
    let mut client = Client::new(stream);
    greeting(&within, &mut client).await?;
    login(&within, client, credentials).await
}

async fn handshake(
    within: &Within<'_>,
    host: &str,
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let tls_error = |source| ImapError::Tls {
        server: within.server.to_string(),
        source,
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        tls_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            e.to_string(),
        ))
    })?;
    within
        .run("the TLS handshake", async {
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(tls_error)
        })
        .await
}

async fn greeting<T: Io>(within: &Within<'_>, client: &mut Client<T>) -> Result<(), ImapError> {
    let greeting = within
        .run("the greeting", async {
            client
                .read_response()
                .await
                .map_err(|e| within.failed("the greeting", e.into()))
        })
        .await?;
    match greeting {
        Some(_) => Ok(()),
        None => Err(within.failed("the greeting", async_imap::error::Error::ConnectionLost)),
    }
}

async fn login(
    within: &Within<'_>,
    client: Client<Stream>,
    credentials: &Credentials,
) -> Result<Connection, ImapError> {
    let mut session = within
        .run("LOGIN", async {
            client
                .login(&credentials.username, &credentials.password)
                .await
                .map_err(|(e, _)| ImapError::Login {
                    server: within.server.to_string(),
                    reason: e.to_string(),
                    username_env: credentials.username_env.clone(),
                    password_env: credentials.password_env.clone(),
                })
        })
        .await?;
    let capabilities = within
        .run("CAPABILITY", async {
            session
                .capabilities()
                .await
                .map_err(|e| within.failed("CAPABILITY", e))
        })
        .await?;
    Ok(Connection {
        server: within.server.to_string(),
        timeout: within.timeout,
        can_idle: capabilities.has_str("IDLE"),
        can_move: capabilities.has_str("MOVE"),
        can_uid_expunge: capabilities.has_str("UIDPLUS"),
        session,
    })
}

/// Runs one exchange with the server under the configured time limit.
struct Within<'a> {
    server: &'a str,
    timeout: Duration,
}

impl Within<'_> {
    async fn run<T>(
        &self,
        what: &str,
        exchange: impl Future<Output = Result<T, ImapError>>,
    ) -> Result<T, ImapError> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ImapError::Timeout {
                    server: self.server.to_string(),
                    what: what.to_string(),
                    seconds: self.timeout.as_secs(),
                })
            })
    }

    fn failed(&self, what: &str, source: async_imap::error::Error) -> ImapError {
        ImapError::Command {
            server: self.server.to_string(),
            what: what.to_string(),
            source,
        }
    }
}

impl Connection {
    /// The time limit and the session, borrowed apart.
    fn parts(&mut self) -> (Within<'_>, &mut Session<Stream>) {
        (
            Within {
                server: &self.server,
                timeout: self.timeout,
            },
            &mut self.session,
        )
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn can_idle(&self) -> bool {
        self.can_idle
    }

    /// Selects `mailbox` and returns its UIDVALIDITY.
    pub async fn select(&mut self, mailbox: &str) -> Result<u32, ImapError> {
        let what = format!("SELECT {mailbox}");
        let (within, session) = self.parts();
        let selected = within
            .run(&what, async {
                session
                    .select(mailbox)
                    .await
                    .map_err(|e| within.failed(&what, e))
            })
            .await?;
        selected
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity {
                server: self.server.clone(),
                mailbox: mailbox.to_string(),
            })
    }

    /// Creates `folder` unless it exists.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        let (within, session) = self.parts();
        let exists = within
            .run("STATUS", async {
                Ok(session.status(folder, "(UIDNEXT)").await.is_ok())
            })
            .await?;
        if exists {
            return Ok(());
        }
        let what = format!("CREATE {folder}");
        within
            .run(&what, async {
                session
                    .create(folder)
                    .await
                    .map_err(|e| within.failed(&what, e))
            })
            .await
    }

    /// The UIDs of the selected mailbox's messages not yet handled, oldest first.
    pub async fn pending(&mut self, after: &ImapAfter) -> Result<Vec<u32>, ImapError> {
        let query = match after {
            // Without MOVE or UIDPLUS a moved message stays behind marked \Deleted.
            ImapAfter::MoveTo(_) => "UNDELETED".to_string(),
            ImapAfter::Flag(flag) if flag.eq_ignore_ascii_case("\\Seen") => "UNSEEN".into(),
            ImapAfter::Flag(flag) if flag.eq_ignore_ascii_case("\\Flagged") => "UNFLAGGED".into(),
            ImapAfter::Flag(keyword) => format!("UNDELETED UNKEYWORD {keyword}"),
        };
        let (within, session) = self.parts();
        let what = format!("UID SEARCH {query}");
        let found = within
            .run(&what, async {
                session
                    .uid_search(&query)
                    .await
                    .map_err(|e| within.failed(&what, e))
            })
            .await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The whole message `uid`, without setting `\Seen`; `None` when it is gone.
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let (within, session) = self.parts();
        let what = format!("UID FETCH {uid}");
        within
            .run(&what, async {
                let fetched: Vec<_> = session
                    .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                    .await
                    .map_err(|e| within.failed(&what, e))?
                    .try_collect()
                    .await
                    .map_err(|e| within.failed(&what, e))?;
                Ok(fetched
                    .iter()
                    .find(|f| f.uid == Some(uid))
                    .and_then(|f| f.body())
                    .map(<[u8]>::to_vec))
            })
            .await
    }

    /// Moves message `uid` to the folder, or flags it, as configured.
    pub async fn finish(&mut self, uid: u32, after: &ImapAfter) -> Result<(), ImapError> {
        let (can_move, can_uid_expunge) = (self.can_move, self.can_uid_expunge);
        let (within, session) = self.parts();
        let set = uid.to_string();
        let what = format!("finishing message {uid}");
        let failed = |e| within.failed(&what, e);
        within
            .run(&what, async {
                match after {
                    ImapAfter::MoveTo(folder) if can_move => {
                        session.uid_mv(&set, folder).await.map_err(failed)
                    }
                    ImapAfter::MoveTo(folder) => {
                        session.uid_copy(&set, folder).await.map_err(failed)?;
                        store_flag(session, &set, "\\Deleted")
                            .await
                            .map_err(failed)?;
                        if can_uid_expunge {
                            let expunged: Vec<_> = session
                                .uid_expunge(&set)
                                .await
                                .map_err(failed)?
                                .try_collect()
                                .await
                                .map_err(failed)?;
                            drop(expunged);
                        }
                        Ok(())
                    }
                    ImapAfter::Flag(flag) => store_flag(session, &set, flag).await.map_err(failed),
                }
            })
            .await
    }

    /// Waits in IDLE until the mailbox changes or `limit` passes (RFC 2177 asks clients to
    /// re-issue IDLE within 29 minutes).
    pub async fn idle(self, limit: Duration) -> Result<Self, ImapError> {
        let Connection {
            session,
            server,
            timeout,
            can_idle,
            can_move,
            can_uid_expunge,
        } = self;
        let within = Within {
            server: &server,
            timeout,
        };
        let mut handle = session.idle();
        within
            .run("IDLE", async {
                handle.init().await.map_err(|e| within.failed("IDLE", e))
            })
            .await?;
        {
            let (waiting, stop) = handle.wait_with_timeout(limit);
            let outcome = waiting.await;
            drop(stop);
            outcome.map_err(|e| within.failed("IDLE", e))?;
        }
        let session = within
            .run("DONE", async {
                handle.done().await.map_err(|e| within.failed("DONE", e))
            })
            .await?;
        Ok(Connection {
            session,
            server,
            timeout,
            can_idle,
            can_move,
            can_uid_expunge,
        })
    }

    /// Says goodbye; a failure here changes nothing that matters.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.session.logout()).await;
    }
}

async fn store_flag(
    session: &mut Session<Stream>,
    set: &str,
    flag: &str,
) -> Result<(), async_imap::error::Error> {
    let answers: Vec<_> = session
        .uid_store(set, format!("+FLAGS.SILENT ({flag})"))
        .await?
        .try_collect()
        .await?;
    drop(answers);
    Ok(())
}
