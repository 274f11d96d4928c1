//! The contact use cases: importing a register's CSV file, and the contact files a campaign
//! names (parsed all before any is applied, then imported just before the send).
//!
//! Returns data and never prints: the row errors, the rows refused because the address is
//! suppressed and the rejected-rows file are in the reports for the caller to show. The rules
//! of a row live in `audience/`; what a suppressed address means, in `suppress/`.

use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use crate::audience::{
    ContactReader, ContactRecord, ImportError, ParsedImport, RowError, merge_into,
};
use crate::config::{ConfigDir, Register};
use crate::store::{ImportOutcome, ImportStaging, Store, StoreError};
use crate::suppress::{Secret, address_hash};

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    File(#[from] ImportError),
    #[error("register '{name}' is not defined in {} (defined: {})", file.display(), defined.join(", "))]
    UnknownRegister {
        name: String,
        file: PathBuf,
        defined: Vec<String>,
    },
    #[error("register '{0}' is not defined")]
    UnknownCampaignRegister(String),
    /// `--strict` and bad rows: nothing was imported. The rows are here to be shown.
    #[error("{}: {} bad row(s); --strict: nothing was imported", file.display(), errors.len())]
    Strict {
        file: PathBuf,
        errors: Vec<RowError>,
    },
    #[error(
        "{}: {count} bad row(s) in the campaign's contact files; nothing was imported or sent \
         (correct them, or let `send --skip-invalid` or `check --skip-invalid` set them aside \
         in FILE.rejected.csv beside each contact file)",
        file.display()
    )]
    CampaignBadRows { file: PathBuf, count: usize },
}

impl ContactsError {
    /// The user's input is at fault (exit code 2), not the program's situation.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Store(_))
    }
}

/// What an import does with bad rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// Any bad row refuses the whole file.
    Strict,
    /// The good rows are imported, the bad ones reported.
    Report,
    /// The good rows are imported, the bad ones written to a rejected-rows file.
    SetAside,
}

/// What an import of one file did.
#[derive(Debug)]
pub struct ImportReport {
    pub file: PathBuf,
    pub register: String,
    pub errors: Vec<RowError>,
    pub merged_duplicates: usize,
    pub outcome: ImportOutcome,
    /// The rejected-rows file written (`BadRows::SetAside` with bad rows).
    pub rejected_file: Option<PathBuf>,
}

impl ImportReport {
    /// Rows not imported: bad ones and suppressed addresses.
    pub fn not_imported(&self) -> usize {
        self.errors.len() + self.outcome.refused.len()
    }
}

/// Imports or updates the contacts of `file` into a register; a suppressed address is
/// refused, never resurrected. The file is read as a stream and staged in the database in
/// batches, so memory does not grow with the file; nothing is applied until all of it is read.
pub async fn import(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    register_name: &str,
    mode: BadRows,
) -> Result<ImportReport, ContactsError> {
    import_in_batches(
        config,
        store,
        secret,
        file,
        register_name,
        mode,
        batch_rows(),
    )
    .await
}

/// Rows read and staged at a time: enough that a statement's cost is shared by many rows,
/// few enough that a batch is a few megabytes.
const BATCH_ROWS: usize = 10_000;

/// [`BATCH_ROWS`]; a debug build takes `FAIRSEND_IMPORT_BATCH_ROWS` instead, so that tests can
/// spread an address's rows over several batches with a small file.
fn batch_rows() -> usize {
    let from_env = || {
        std::env::var("FAIRSEND_IMPORT_BATCH_ROWS")
            .ok()?
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
    };
    match cfg!(debug_assertions) {
        true => from_env().unwrap_or(BATCH_ROWS),
        false => BATCH_ROWS,
    }
}

/// [`import`], reading and staging `batch` rows at a time (and merging as many addresses).
pub async fn import_in_batches(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    register_name: &str,
    mode: BadRows,
    batch: usize,
) -> Result<ImportReport, ContactsError> {
    let register = register(config, register_name)?;
    let (mut batches, reader) = read_in_background(file, register, secret, batch);
    let mut staging = store.stage_import().await?;
    while let Some(rows) = batches.recv().await {
        staging.add(&rows).await?;
    }
    let parsed = reader
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    if mode == BadRows::Strict && !parsed.errors.is_empty() {
        return Err(ContactsError::Strict {
            file: file.to_path_buf(),
            errors: parsed.errors,
        });
    }
    staging.index().await?;
    let merged_duplicates = merge_duplicates(&mut staging, batch).await?;
    let rejected_file = match mode {
        BadRows::SetAside => parsed.write_rejected(file)?,
        _ => None,
    };
    let outcome = staging.apply(register_name).await?;
    Ok(ImportReport {
        file: file.to_path_buf(),
        register: register_name.to_string(),
        errors: parsed.errors,
        merged_duplicates,
        outcome,
        rejected_file,
    })
}

/// Valid rows, each with its address's keyed hash, `batch` at a time.
type Batches = tokio::sync::mpsc::Receiver<Vec<(ContactRecord, String)>>;

/// Reads `file` on a thread of its own and hands over its valid rows `batch` at a time, each
/// with its address's keyed hash: the parsing and hashing take one core while the database
/// takes the other. Two batches wait at most, so memory stays a few batches whatever the
/// file's size. The thread ends with the bad rows, or the file's error.
fn read_in_background(
    file: &Path,
    register: &Register,
    secret: &Secret,
    batch: usize,
) -> (Batches, JoinHandle<Result<ParsedImport, ImportError>>) {
    let (sender, batches) = tokio::sync::mpsc::channel(2);
    let (file, register, secret) = (file.to_path_buf(), register.clone(), secret.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let mut reader = ContactReader::open(&file, &register)?;
        loop {
            let rows = reader.next_batch(batch)?;
            if rows.is_empty() {
                return Ok(reader.finish());
            }
            let hashed = rows
                .into_iter()
                .map(|row| {
                    let hash = address_hash(&secret, &row.email);
                    (row, hash)
                })
                .collect();
            // A closed channel: the import failed on the database side and says so itself.
            if sender.blocking_send(hashed).is_err() {
                return Ok(reader.finish());
            }
        }
    });
    (batches, reader)
}

/// Merges the staged rows of each address that repeats into one, `page` addresses at a time,
/// as an in-memory import merges them; returns how many rows were merged into another.
async fn merge_duplicates(staging: &mut ImportStaging, page: usize) -> Result<usize, StoreError> {
    let mut merged_rows = 0;
    let mut after = String::new();
    loop {
        let groups = staging.duplicates(&after, page, merge_into).await?;
        let Some(last) = groups.last() else {
            return Ok(merged_rows);
        };
        after = last.merged.email.as_str().to_string();
        merged_rows += groups.iter().map(|g| g.rows - 1).sum::<usize>();
        staging.replace(&groups).await?;
    }
}

fn register<'c>(config: &'c ConfigDir, name: &str) -> Result<&'c Register, ContactsError> {
    config
        .registers
        .get(name)
        .ok_or_else(|| ContactsError::UnknownRegister {
            name: name.to_string(),
            file: config.registers.file.clone(),
            defined: config
                .registers
                .names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
        })
}
