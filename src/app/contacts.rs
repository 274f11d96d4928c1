//! The contact use cases: importing a register's CSV file, and the contact files a campaign
//! names (parsed all before any is applied, then imported just before the send).
//!
//! Returns data and never prints: the row errors, the rows refused because the address is
//! suppressed and the rejected-rows file are in the reports for the caller to show. The rules
//! of a row live in `audience/`; what a suppressed address means, in `suppress/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::audience::{ImportError, ParsedImport, RowError, parse_contacts_csv};
use crate::config::{Campaign, ConfigDir, Register};
use crate::model::SuppressionReason;
use crate::store::{ImportOutcome, Store, StoreError};
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
         (--skip-invalid sends to the good rows and writes the bad ones to a file)",
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
/// refused, never resurrected.
pub async fn import(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    file: &Path,
    register_name: &str,
    mode: BadRows,
) -> Result<ImportReport, ContactsError> {
    let register = register(config, register_name)?;
    let parsed = parse_contacts_csv(file, register)?;
    if mode == BadRows::Strict && !parsed.errors.is_empty() {
        return Err(ContactsError::Strict {
            file: file.to_path_buf(),
            errors: parsed.errors,
        });
    }
    let rejected_file = match mode {
        BadRows::SetAside => parsed.write_rejected(file)?,
        _ => None,
    };
    let outcome = store
        .import_contacts(register_name, &parsed.records, |a| address_hash(secret, a))
        .await?;
    Ok(ImportReport {
        file: file.to_path_buf(),
        register: register_name.to_string(),
        errors: parsed.errors,
        merged_duplicates: parsed.merged_duplicates,
        outcome,
        rejected_file,
    })
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

/// One of a campaign's contact files, parsed.
pub struct ContactFile<'a> {
    pub file: &'a Path,
    pub parsed: &'a ParsedImport,
    /// Where its bad rows were set aside (`skip_invalid`).
    pub set_aside: Option<&'a Path>,
}

/// A campaign's contact file parsed and waiting to be applied: (register, rows).
pub type Pending<'c> = (&'c str, ParsedImport);

/// The campaign's own contact files, all parsed before any is applied: one bad row refuses
/// the whole send and changes nothing, unless `skip_invalid` sets the bad rows aside (written
/// to a rejected-rows file beside each contact file). `seen` is shown each file as it is
/// parsed, so that its row errors can be reported even when a later file fails.
pub fn parse_campaign_contacts<'c>(
    config: &ConfigDir,
    campaign: &'c Campaign,
    skip_invalid: bool,
    mut seen: impl FnMut(ContactFile<'_>),
) -> Result<Vec<Pending<'c>>, ContactsError> {
    let mut parsed = Vec::new();
    let mut errors = 0;
    for import in &campaign.imports {
        let register = config
            .registers
            .get(&import.register)
            .ok_or_else(|| ContactsError::UnknownCampaignRegister(import.register.clone()))?;
        let p = parse_contacts_csv(&import.file, register)?;
        let set_aside = if skip_invalid {
            p.write_rejected(&import.file)?
        } else {
            errors += p.errors.len();
            None
        };
        seen(ContactFile {
            file: &import.file,
            parsed: &p,
            set_aside: set_aside.as_deref(),
        });
        parsed.push((import.register.as_str(), p));
    }
    if errors > 0 {
        return Err(ContactsError::CampaignBadRows {
            file: campaign.file.clone(),
            count: errors,
        });
    }
    Ok(parsed)
}

/// The extra fields every recipient will have once `pending` is imported.
pub async fn fields_after_import(
    store: &Store,
    campaign: &Campaign,
    pending: &[Pending<'_>],
) -> Result<BTreeSet<String>, StoreError> {
    let mut common = store.common_fields(&campaign.registers).await?;
    let stored_any = store.has_members(&campaign.registers).await?;
    let mut first = !stored_any;
    for (_, p) in pending {
        for record in &p.records {
            let keys: BTreeSet<String> = record.fields.keys().cloned().collect();
            common = if first {
                keys
            } else {
                common.intersection(&keys).cloned().collect()
            };
            first = false;
        }
    }
    Ok(common)
}

/// Imports the parsed contact files. `refused` is told each row refused because the address
/// is suppressed (`FILE:LINE`, why), as it is found.
pub async fn apply_campaign_contacts(
    store: &Store,
    pending: Vec<Pending<'_>>,
    secret: &Secret,
    mut refused: impl FnMut(&str, SuppressionReason),
) -> Result<(), StoreError> {
    for (register, p) in pending {
        let outcome = store
            .import_contacts(register, &p.records, |a| address_hash(secret, a))
            .await?;
        for (source, reason) in &outcome.refused {
            refused(source, *reason);
        }
        if outcome.inserted + outcome.updated > 0 {
            tracing::info!(
                register,
                inserted = outcome.inserted,
                updated = outcome.updated,
                "imported the campaign's contacts"
            );
        }
    }
    Ok(())
}
