//! Reading bounces from an IMAP mailbox: one pass (`fairsend bounces poll`) and the loop inside
//! `fairsend serve --poll-bounces SECONDS`. Every message goes through the same ingest as
//! `fairsend bounces ingest`, with the same effects and proof rule; its effects and the record
//! that it was handled commit in one transaction, and only then is it moved (or flagged) on the
//! server. A message found already recorded is only moved: a crash between the commit and the
//! move never counts a bounce twice, and a crash before the commit never loses one.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ImapAfter, ImapSettings, Settings};
use crate::inbound::Kind;
use crate::inbound::imap::{self, Connection, Credentials, ImapError};
use crate::inbound::ingest::{Ingested, ingest_from_mailbox};
use crate::store::{MailboxMessage, Store, StoreError};
use crate::suppress::Secret;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "{file}: [bounces.imap]: the table is missing; it names the mailbox to read (see the \
         README, \"Reading bounces from an IMAP mailbox\")"
    )]
    NotConfigured { file: String },
    #[error("{file}: [bounces.imap] {field}: the environment variable {var} is not set")]
    MissingVariable {
        file: String,
        field: &'static str,
        var: String,
    },
    #[error("{file}: [bounces.imap] ca_file: {reason}")]
    Tls { file: String, reason: String },
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PollError {
    /// Whether the configuration (or the environment) is at fault rather than the server or
    /// the database: the command's exit code 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::NotConfigured { .. } | Self::MissingVariable { .. } | Self::Tls { .. }
        )
    }
}

/// What one pass over the mailbox found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    /// Messages taken from the mailbox in this pass.
    pub messages: usize,
    /// Of those, ingested now (effects applied).
    pub new: usize,
    /// Recorded by an earlier pass that stopped before moving them, or bytes ingested before
    /// by any path: nothing applied again.
    pub already_handled: usize,
    pub dsn: usize,
    pub complaints: usize,
    pub auto_replies: usize,
    pub replies: usize,
    pub unknown: usize,
    pub suppressed_hard: usize,
    pub suppressed_soft_limit: usize,
    pub optouts: usize,
    /// Reports that name no message fairsend sent: recorded, waiting for an operator.
    pub unverified: usize,
    /// Messages moved to the folder (or flagged) on the server.
    pub finished: usize,
}

/// What a pass needs besides the connection.
struct Intake<'a> {
    store: &'a Store,
    secret: &'a Secret,
    settings: &'a Settings,
    mailbox: &'a ImapSettings,
    account: String,
}

/// One pass: connects, ingests every message not yet handled, moves (or flags) each, logs out.
pub async fn poll_once(
    store: &Store,
    secret: &Secret,
    settings: &Settings,
) -> Result<PollSummary, PollError> {
    let (mut conn, intake) = open(store, secret, settings).await?;
    let summary = pass(&mut conn, &intake).await;
    conn.logout().await;
    summary
}

async fn open<'a>(
    store: &'a Store,
    secret: &'a Secret,
    settings: &'a Settings,
) -> Result<(Connection, Intake<'a>), PollError> {
    let file = || settings.file.display().to_string();
    let mailbox = settings
        .bounce_mailbox
        .as_ref()
        .ok_or_else(|| PollError::NotConfigured { file: file() })?;
    let credentials = credentials(mailbox, &file())?;
    let tls = crate::send::tls_config(mailbox.ca_file.as_deref()).map_err(|reason| {
        PollError::Tls {
            file: file(),
            // The shared helper names the transport's field; this file's field is ours.
            reason: reason.replacen("[transport] ca_file ", "", 1),
        }
    })?;
    let conn = imap::connect(mailbox, &credentials, tls).await?;
    let intake = Intake {
        store,
        secret,
        settings,
        mailbox,
        account: format!("{}@{}", credentials.username, conn.server()),
    };
    Ok((conn, intake))
}

fn credentials(mailbox: &ImapSettings, file: &str) -> Result<Credentials, PollError> {
    let read = |field: &'static str, var: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| PollError::MissingVariable {
                file: file.to_string(),
                field,
                var: var.to_string(),
            })
    };
    Ok(Credentials {
        username: read("username_env", &mailbox.username_env)?,
        password: read("password_env", &mailbox.password_env)?,
        username_env: mailbox.username_env.clone(),
        password_env: mailbox.password_env.clone(),
    })
}

async fn pass(conn: &mut Connection, intake: &Intake<'_>) -> Result<PollSummary, PollError> {
    let uidvalidity = conn.select(&intake.mailbox.mailbox).await?;
    if let ImapAfter::MoveTo(folder) = &intake.mailbox.after {
        conn.ensure_folder(folder).await?;
    }
    let mut summary = PollSummary::default();
    for uid in conn.pending(&intake.mailbox.after).await? {
        let message = MailboxMessage {
            account: &intake.account,
            mailbox: &intake.mailbox.mailbox,
            uidvalidity,
            uid,
        };
        if take(conn, intake, &message, &mut summary).await? {
            conn.finish(uid, &intake.mailbox.after).await?;
            summary.finished += 1;
        }
    }
    Ok(summary)
}

/// Ingests one message unless it was handled before; `false` when it vanished meanwhile.
async fn take(
    conn: &mut Connection,
    intake: &Intake<'_>,
    message: &MailboxMessage<'_>,
    summary: &mut PollSummary,
) -> Result<bool, PollError> {
    if intake.store.mailbox_handled(message).await? {
        summary.messages += 1;
        summary.already_handled += 1;
        return Ok(true);
    }
    let Some(raw) = conn.fetch(message.uid).await? else {
        return Ok(false);
    };
    let done = ingest_from_mailbox(
        intake.store,
        intake.secret,
        &intake.settings.bounces,
        &raw,
        message,
    )
    .await?;
    tally(summary, &done);
    crash_after_commit_for_tests(summary.messages);
    Ok(true)
}

fn tally(summary: &mut PollSummary, done: &Ingested) {
    summary.messages += 1;
    if done.applied.duplicate {
        summary.already_handled += 1;
        return;
    }
    summary.new += 1;
    match done.parsed.kind {
        Kind::Dsn => summary.dsn += 1,
        Kind::Complaint => summary.complaints += 1,
        Kind::AutoReply => summary.auto_replies += 1,
        Kind::Reply => summary.replies += 1,
        Kind::Unknown => summary.unknown += 1,
    }
    summary.suppressed_hard += done.applied.suppressed_hard;
    summary.suppressed_soft_limit += done.applied.suppressed_soft_limit;
    summary.optouts += done.applied.optouts;
    summary.unverified += done.applied.unverified;
}

/// The tests' way to stop the process between a commit and the move that follows it: with
/// `FAIRSEND_TEST_CRASH_AFTER_COMMIT=N`, a debug build aborts right after the N-th message of
/// a pass is committed. A release build ignores the variable.
fn crash_after_commit_for_tests(committed: usize) {
    if cfg!(debug_assertions)
        && std::env::var("FAIRSEND_TEST_CRASH_AFTER_COMMIT")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            == Some(committed)
    {
        eprintln!("FAIRSEND_TEST_CRASH_AFTER_COMMIT: aborting after message {committed}");
        std::process::abort();
    }
}

/// How long one IDLE lasts before the mailbox is read again anyway (RFC 2177: under 29 min).
const IDLE_LIMIT: Duration = Duration::from_secs(10 * 60);
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The loop of `serve --poll-bounces`: reads the mailbox, then waits in IDLE when the server
/// offers it, else `every`, and again. It never returns: every failure (server away, wrong
/// password, database busy) is logged and retried with a growing back-off.
pub async fn run(store: Store, secret: Secret, settings: Arc<Settings>, every: Duration) {
    if let Some(m) = &settings.bounce_mailbox {
        tracing::info!(server = %format!("{}:{}", m.host, m.port), mailbox = %m.mailbox, "reading the bounce mailbox");
    }
    let mut backoff = FIRST_BACKOFF;
    loop {
        match session(&store, &secret, &settings, every, &mut backoff).await {
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "reading the bounce mailbox failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One connection's life: passes until the server lacks IDLE (then `Ok` after the wait, to
/// reconnect for the next pass) or something fails.
async fn session(
    store: &Store,
    secret: &Secret,
    settings: &Settings,
    every: Duration,
    backoff: &mut Duration,
) -> Result<(), PollError> {
    let (mut conn, intake) = open(store, secret, settings).await?;
    loop {
        let summary = pass(&mut conn, &intake).await?;
        *backoff = FIRST_BACKOFF;
        if summary.messages > 0 {
            tracing::info!(
                messages = summary.messages,
                new = summary.new,
                already_handled = summary.already_handled,
                suppressed_hard = summary.suppressed_hard,
                optouts = summary.optouts,
                unverified = summary.unverified,
                "bounce mailbox read"
            );
        }
        if !conn.can_idle() {
            conn.logout().await;
            tokio::time::sleep(every).await;
            return Ok(());
        }
        conn = conn
            .idle(IDLE_LIMIT.min(every.max(Duration::from_secs(60))))
            .await?;
    }
}
