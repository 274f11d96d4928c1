//! The `outbox:DIR` transport: one `.eml` file per message, written atomically, named after
//! the campaign and the outbox row. It owns the file names and the staging directories; it
//! never decides what becomes of a row (the send loop does, from what it answers).

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use super::{DeliveryFailure, InFlightOutcome, Transport};
use crate::compliance::GatedMessage;
use crate::store::TransportKind;

pub struct OutboxTransport {
    dir: PathBuf,
}

impl OutboxTransport {
    /// The transport into `dir`, created if missing.
    pub fn create(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Where a row's message goes.
    fn file(&self, campaign: &str, outbox_id: i64) -> PathBuf {
        self.dir.join(format!("{campaign}-{outbox_id:09}.eml"))
    }

    /// Each file is staged in a hidden directory of the campaign and the process (workers on
    /// one campaign never share one) before it is renamed into place; a killed worker can
    /// leave partial files there.
    fn staging_dir(&self, campaign: &str, pid: u32) -> PathBuf {
        self.dir.join(format!(".staging-{campaign}-{pid}"))
    }

    fn write(&self, campaign: &str, message: &GatedMessage) -> Result<String, DeliveryFailure> {
        let path = self.file(campaign, message.outbox_id());
        write_atomically(
            &path,
            &self.staging_dir(campaign, std::process::id()),
            message,
        )
        .map(|()| format!("written to {}", path.display()))
        .map_err(|e| DeliveryFailure::Transient(format!("cannot write {}: {e}", path.display())))
    }
}

impl Transport for OutboxTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Outbox
    }

    fn deliver<'a>(
        &'a self,
        campaign: &'a str,
        message: &'a GatedMessage,
    ) -> BoxFuture<'a, Result<String, DeliveryFailure>> {
        Box::pin(async move { self.write(campaign, message) })
    }

    /// The rename into place is atomic: the file is there whole, or the message was not
    /// written.
    fn in_flight_outcome(&self, campaign: &str, outbox_id: i64) -> InFlightOutcome {
        if self.file(campaign, outbox_id).exists() {
            InFlightOutcome::Delivered("found in the outbox after an interrupted run")
        } else {
            InFlightOutcome::NotDelivered("interrupted before the file was written")
        }
    }

    fn clean_up_after(&self, campaign: &str, pid: u32) -> std::io::Result<()> {
        let staging = self.staging_dir(campaign, pid);
        if staging.exists() {
            std::fs::remove_dir_all(staging)?;
        }
        Ok(())
    }
}

/// Writes to a temporary file in the staging directory (same file system), syncs it, then renames it into place:
/// a reader (or a crash) sees either the whole message or none.
fn write_atomically(path: &Path, staging: &Path, message: &GatedMessage) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(staging)?;
    let mut file = tempfile::NamedTempFile::new_in(staging)?;
    // The envelope travels with the spooled message as delivery agents record it.
    write!(
        file,
        "Return-Path: <{}>\r\nX-Fairsend-Envelope-To: <{}>\r\n",
        message.envelope_from(),
        message.recipient()
    )?;
    file.write_all(message.bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
