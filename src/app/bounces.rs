//! The bounce use cases: ingesting inbound mail (DSNs, complaints, replies) from any source,
//! the bounce queue, an operator's confirm/dismiss decision and re-classification.
//!
//! [`ingest`] is the one entry for a message's effects: the CLI (files, stdin, mbox, Maildir)
//! and any later intake (IMAP polling, webhooks) call it. These functions return data and
//! never print; what a message does is decided in `inbound/`, what suppresses in `suppress/`.

use std::path::{Path, PathBuf};

use crate::config::BounceSettings;
use crate::inbound::ingest::Ingested;
use crate::inbound::{Inbound, Keys, Kind, Reason};
use crate::store::{BounceDecision, BounceEntry, DecisionOutcome, Store, StoreError};
use crate::suppress::Secret;

#[derive(Debug, thiserror::Error)]
pub enum BouncesError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A message file or mbox named by the user cannot be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Unreadable {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{}: not a maildir: {reason}", path.display())]
    NotMaildir {
        path: PathBuf,
        reason: std::io::Error,
    },
    /// The Maildir itself fails while it is processed (not the user's input).
    #[error("{action}")]
    Maildir {
        action: String,
        source: std::io::Error,
    },
    #[error("bounce {0}: no such bounce (see `bounces list`)")]
    NoSuchBounce(i64),
    #[error(
        "bounce {0} is not waiting for a decision (only unverified bounces are confirmed or dismissed)"
    )]
    NotUnverified(i64),
    #[error("unknown reason '{0}'")]
    UnknownReason(String),
    #[error("class must be hard or soft, not '{0}'")]
    UnknownClass(String),
}

impl BouncesError {
    /// The user's input is at fault (exit code 2), not the program's situation.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Unreadable { .. }
                | Self::NotMaildir { .. }
                | Self::NoSuchBounce(_)
                | Self::UnknownReason(_)
                | Self::UnknownClass(_)
        )
    }
}

/// What a batch of inbound messages was and did, in total.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IngestSummary {
    pub messages: usize,
    pub new: usize,
    pub duplicates: usize,
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
}

impl IngestSummary {
    /// Adds one ingested message; a message seen before counts only as a duplicate.
    pub fn count(&mut self, done: &Ingested) {
        self.messages += 1;
        if done.applied.duplicate {
            self.duplicates += 1;
            return;
        }
        self.new += 1;
        match done.parsed.kind {
            Kind::Dsn => self.dsn += 1,
            Kind::Complaint => self.complaints += 1,
            Kind::AutoReply => self.auto_replies += 1,
            Kind::Reply => self.replies += 1,
            Kind::Unknown => self.unknown += 1,
        }
        self.suppressed_hard += done.applied.suppressed_hard;
        self.suppressed_soft_limit += done.applied.suppressed_soft_limit;
        self.optouts += done.applied.optouts;
        self.unverified += done.applied.unverified;
    }
}

/// Where inbound messages come from.
#[derive(Debug)]
pub enum Source {
    /// Messages already read (one from standard input, a webhook's body…).
    Messages(Vec<Vec<u8>>),
    /// Message files; an mbox file among them is split.
    Files(Vec<PathBuf>),
    /// An mbox file, or a Maildir if the path is a directory.
    Mbox(PathBuf),
    /// A Maildir: `new/` is processed and each handled message moved to `cur/`.
    Maildir(PathBuf),
}

/// One inbound message and all its effects (bounce queue, suppressions, opt-outs), applied
/// in one transaction; a message ingested twice counts once.
pub async fn ingest(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    raw: &[u8],
) -> Result<Ingested, StoreError> {
    crate::inbound::ingest::ingest(store, secret, settings, raw).await
}

/// Every message of `source`. Files are all read before any is ingested: a missing file
/// refuses the run before anything is recorded.
pub async fn ingest_from(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    source: Source,
) -> Result<IngestSummary, BouncesError> {
    let messages = match source {
        Source::Maildir(dir) => return ingest_maildir(store, secret, settings, &dir).await,
        Source::Mbox(path) if is_maildir(&path) => {
            return ingest_maildir(store, secret, settings, &path).await;
        }
        Source::Mbox(file) => read_messages(&file)?,
        Source::Files(files) => {
            let mut messages = Vec::new();
            for file in &files {
                messages.extend(read_messages(file)?);
            }
            messages
        }
        Source::Messages(messages) => messages,
    };
    ingest_all(store, secret, settings, messages).await
}

async fn ingest_all(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    messages: Vec<Vec<u8>>,
) -> Result<IngestSummary, BouncesError> {
    let mut summary = IngestSummary::default();
    for raw in messages {
        summary.count(&ingest(store, secret, settings, &raw).await?);
    }
    Ok(summary)
}

/// What `--mbox` was given: a directory is a Maildir (its `new/` is required), a file an mbox.
fn is_maildir(path: &Path) -> bool {
    path.is_dir()
}

/// The messages of one file: an mbox is split, any other file is one message.
fn read_messages(file: &Path) -> Result<Vec<Vec<u8>>, BouncesError> {
    let raw = read_file(file)?;
    Ok(crate::inbound::split_mbox(&raw)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect())
}

fn read_file(file: &Path) -> Result<Vec<u8>, BouncesError> {
    std::fs::read(file).map_err(|reason| BouncesError::Unreadable {
        path: file.to_path_buf(),
        reason,
    })
}

/// Processes `DIR/new/*` in name order and moves each handled file to `DIR/cur/` (maildir
/// convention), so that a run stopped midway resumes where it stopped.
async fn ingest_maildir(
    store: &Store,
    secret: &Secret,
    settings: &BounceSettings,
    dir: &Path,
) -> Result<IngestSummary, BouncesError> {
    let cur = dir.join("cur");
    let files = maildir_new(dir)?;
    std::fs::create_dir_all(&cur).map_err(|source| BouncesError::Maildir {
        action: format!("cannot create {}", cur.display()),
        source,
    })?;
    let mut total = IngestSummary::default();
    for file in files {
        let raw = std::fs::read(&file).map_err(|source| BouncesError::Maildir {
            action: format!("cannot read {}", file.display()),
            source,
        })?;
        total.count(&ingest(store, secret, settings, &raw).await?);
        move_to_cur(&file, &cur)?;
    }
    Ok(total)
}

/// The files of `DIR/new`, sorted.
fn maildir_new(dir: &Path) -> Result<Vec<PathBuf>, BouncesError> {
    let new = dir.join("new");
    let entries = std::fs::read_dir(&new).map_err(|reason| BouncesError::NotMaildir {
        path: new.clone(),
        reason,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Moves a handled message to `cur/`, with the `:2,` info suffix a Maildir reader expects.
fn move_to_cur(file: &Path, cur: &Path) -> Result<(), BouncesError> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = if name.contains(":2,") {
        cur.join(&name)
    } else {
        cur.join(format!("{name}:2,"))
    };
    std::fs::rename(file, &target).map_err(|source| BouncesError::Maildir {
        action: format!("cannot move {} to {}", file.display(), target.display()),
        source,
    })
}

/// What a message file is, changing nothing.
pub fn parse_file(
    secret: &Secret,
    settings: &BounceSettings,
    file: &Path,
) -> Result<Inbound, BouncesError> {
    let raw = read_file(file)?;
    let keys = Keys {
        secret,
        bounces: settings,
    };
    Ok(crate::inbound::parse(&raw, &keys))
}

/// Which bounces a listing shows; an empty field matches every bounce.
#[derive(Debug, Default, Clone)]
pub struct BounceFilter {
    pub class: String,
    pub reason: String,
    pub campaign: String,
}

impl BounceFilter {
    fn admits(&self, b: &BounceEntry) -> bool {
        (self.class.is_empty() || b.class.as_deref() == Some(self.class.as_str()))
            && (self.reason.is_empty() || b.reason == self.reason)
            && (self.campaign.is_empty() || b.campaign.as_deref() == Some(self.campaign.as_str()))
    }
}

/// The bounce queue, newest first: at most `limit` rows, then filtered.
pub async fn list(
    store: &Store,
    limit: i64,
    filter: &BounceFilter,
) -> Result<Vec<BounceEntry>, StoreError> {
    let mut entries = store.bounces(limit).await?;
    entries.retain(|b| filter.admits(b));
    Ok(entries)
}

/// The reasons an operator may give a bounce when re-classifying it.
pub fn reasons() -> Vec<&'static str> {
    Reason::ALL
        .iter()
        .filter(|r| **r != Reason::Delivered)
        .map(|r| r.as_str())
        .collect()
}

/// An operator's decision on an unverified bounce: confirmed, it acts as a proven one
/// (returns whether the address is now suppressed); dismissed, it stays recorded and changes
/// nothing. The store writes the audit record.
pub async fn decide(
    store: &Store,
    settings: &BounceSettings,
    id: i64,
    decision: BounceDecision,
    by: &str,
) -> Result<bool, BouncesError> {
    let soft_limit = (
        i64::from(settings.soft_bounce_limit),
        i64::from(settings.soft_bounce_days),
    );
    match crate::inbound::apply::decide_bounce(store, id, decision, by, soft_limit).await? {
        DecisionOutcome::NoSuchBounce => Err(BouncesError::NoSuchBounce(id)),
        DecisionOutcome::NotUnverified => Err(BouncesError::NotUnverified(id)),
        DecisionOutcome::Done { suppressed } => Ok(suppressed),
    }
}

/// An operator corrects a bounce's class and reason; a hard-bounce suppression it no longer
/// supports is lifted in the same transaction, and the change is audited.
pub async fn reclassify(
    store: &Store,
    id: i64,
    class: &str,
    reason: &str,
    by: &str,
) -> Result<(), BouncesError> {
    let Some(reason) = Reason::parse(reason) else {
        return Err(BouncesError::UnknownReason(reason.to_string()));
    };
    if !matches!(class, "hard" | "soft") {
        return Err(BouncesError::UnknownClass(class.to_string()));
    }
    if crate::inbound::apply::reclassify_bounce(store, id, class, reason.as_str(), by).await? {
        Ok(())
    } else {
        Err(BouncesError::NoSuchBounce(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(class: Option<&str>, reason: &str, campaign: Option<&str>) -> BounceEntry {
        BounceEntry {
            id: 1,
            at: 0,
            recipient: None,
            campaign: campaign.map(str::to_string),
            kind: "dsn".into(),
            class: class.map(str::to_string),
            reason: reason.into(),
            status: None,
            reply_code: None,
            diagnostic: None,
            action: "none".into(),
            verification: "proven".into(),
        }
    }

    #[test]
    fn an_empty_filter_admits_everything_and_each_field_narrows() {
        let hard = entry(Some("hard"), "user_unknown", Some("spring"));
        let complaint = entry(None, "complaint", None);
        assert!(BounceFilter::default().admits(&hard));
        assert!(BounceFilter::default().admits(&complaint));
        let only = |class: &str, reason: &str, campaign: &str| BounceFilter {
            class: class.into(),
            reason: reason.into(),
            campaign: campaign.into(),
        };
        assert!(only("hard", "", "").admits(&hard));
        assert!(!only("soft", "", "").admits(&hard));
        assert!(!only("hard", "", "").admits(&complaint));
        assert!(only("", "user_unknown", "spring").admits(&hard));
        assert!(!only("", "user_unknown", "autumn").admits(&hard));
        assert!(!only("", "", "spring").admits(&complaint));
    }

    #[test]
    fn delivered_is_no_reason_an_operator_may_give() {
        let reasons = reasons();
        assert!(!reasons.contains(&Reason::Delivered.as_str()));
        assert!(reasons.contains(&Reason::UserUnknown.as_str()));
        assert_eq!(reasons.len(), Reason::ALL.len() - 1);
    }
}
