//! The register-hygiene use cases: ceased companies and departed persons (contacts stop being
//! mailed), the retention purge, and the per-register health report.
//!
//! Returns data and never prints. Which rows a file holds and when retention ends are decided
//! in `audience/hygiene.rs`; what a purge deletes is executed by `store/`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::audience::hygiene::{
    Departed, PurgeItem, parse_ceased_file, parse_departed_file, plan_purge, retention_end,
};
use crate::audience::{ImportError, RowError};
use crate::config::ConfigDir;
use crate::model::EmailAddress;
use crate::store::{EntryAge, PurgeOutcome, RegisterCounts, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HygieneError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    File(#[from] ImportError),
}

/// What `hygiene ceased` changed.
#[derive(Debug)]
pub struct CeasedReport {
    pub file: PathBuf,
    /// Business IDs in the file.
    pub ids: usize,
    pub newly_ceased: u64,
    pub already_ceased: u64,
    /// Business IDs that match no contact.
    pub unknown: usize,
    pub errors: Vec<RowError>,
}

/// Marks `ceased` every contact of the companies in `file` (a business_id column).
pub async fn ceased(store: &Store, file: &Path) -> Result<CeasedReport, HygieneError> {
    let (ids, errors) = parse_ceased_file(file)?;
    let (mut changed, mut matched, mut unknown) = (0, 0, 0);
    for id in &ids {
        let (c, m) = store.mark_ceased(id.as_str()).await?;
        changed += c;
        matched += m;
        if m == 0 {
            unknown += 1;
        }
    }
    Ok(CeasedReport {
        file: file.to_path_buf(),
        ids: ids.len(),
        newly_ceased: changed,
        already_ceased: matched - changed,
        unknown,
        errors,
    })
}

/// What `hygiene passivate` changed.
#[derive(Debug)]
pub struct PassivateReport {
    pub file: PathBuf,
    pub made_passive: usize,
    /// Already passive or ceased.
    pub already: usize,
    pub not_found: usize,
    pub errors: Vec<RowError>,
}

/// Marks `passive` the persons in `file` who left their role (by address, or by business
/// ID and name).
pub async fn passivate(store: &Store, file: &Path) -> Result<PassivateReport, HygieneError> {
    let (people, errors) = parse_departed_file(file)?;
    let mut report = PassivateReport {
        file: file.to_path_buf(),
        made_passive: 0,
        already: 0,
        not_found: 0,
        errors,
    };
    for person in &people {
        let addresses = addresses_of(store, person).await?;
        if addresses.is_empty() {
            report.not_found += 1;
        }
        for address in addresses {
            match store.mark_passive(&address).await? {
                (true, _) => report.made_passive += 1,
                (false, true) => report.already += 1,
                (false, false) => report.not_found += 1,
            }
        }
    }
    Ok(report)
}

/// The contacts a departed-person row names.
async fn addresses_of(store: &Store, person: &Departed) -> Result<Vec<EmailAddress>, StoreError> {
    match person {
        Departed::Email(a) => Ok(vec![a.clone()]),
        Departed::Name {
            business_id,
            first_name,
            last_name,
        } => {
            store
                .contacts_by_name(business_id.as_str(), first_name, last_name)
                .await
        }
    }
}

/// What a purge deletes (or would delete, on a dry run) and what it did.
#[derive(Debug)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub plan: Vec<PurgeItem>,
    /// `None` on a dry run.
    pub outcome: Option<PurgeOutcome>,
}

/// Deletes the register entries past retention and those of expired purchased registers;
/// contacts left with no entry go too, their suppressions keeping only keyed hashes.
pub async fn purge(
    config: &ConfigDir,
    store: &Store,
    dry_run: bool,
) -> Result<PurgeReport, StoreError> {
    let entries = store.entry_ages().await?;
    let now = Utc::now();
    let expired =
        crate::compliance::eligibility::expired_register_names(&config.registers, now.date_naive());
    let plan = plan_purge(
        &entries,
        &config.registers,
        &expired,
        config.settings.privacy.retention_months,
        now,
    );
    let outcome = if dry_run {
        None
    } else {
        let ids: Vec<i64> = plan.iter().map(|p| p.membership_id).collect();
        Some(store.purge_entries(&ids).await?)
    };
    Ok(PurgeReport {
        dry_run,
        plan,
        outcome,
    })
}

/// One register's health.
#[derive(Debug)]
pub struct RegisterHealth {
    pub register: String,
    pub kind: Option<&'static str>,
    pub counts: RegisterCounts,
    /// Entries whose retention ends within 30 days.
    pub near_retention_end: usize,
    pub past_retention: usize,
}

impl RegisterHealth {
    pub fn contacts(&self) -> i64 {
        self.counts.active + self.counts.passive + self.counts.ceased
    }

    pub fn ceased_share(&self) -> f64 {
        let total = self.contacts();
        if total > 0 {
            self.counts.ceased as f64 / total as f64
        } else {
            0.0
        }
    }
}

/// Per register: contacts by status, never sent to, unengaged after `unengaged_after` sends,
/// and retention ending soon or past.
pub async fn report(
    config: &ConfigDir,
    store: &Store,
    unengaged_after: i64,
) -> Result<Vec<RegisterHealth>, StoreError> {
    let counts = store.register_counts(unengaged_after).await?;
    let entries = store.entry_ages().await?;
    let now = Utc::now();
    Ok(counts
        .into_iter()
        .map(|(register, counts)| {
            let (near, past) = retention_counts(config, &entries, &register, now);
            RegisterHealth {
                kind: config.registers.get(&register).map(|r| r.kind.as_str()),
                register,
                counts,
                near_retention_end: near,
                past_retention: past,
            }
        })
        .collect())
}

/// A register's entries whose retention ends within 30 days of `now`, and those past it.
fn retention_counts(
    config: &ConfigDir,
    entries: &[EntryAge],
    register: &str,
    now: DateTime<Utc>,
) -> (usize, usize) {
    let soon = now + chrono::Duration::days(30);
    let (mut near, mut past) = (0, 0);
    for e in entries.iter().filter(|e| e.register == register) {
        match retention_end(
            e,
            &config.registers,
            config.settings.privacy.retention_months,
        ) {
            Some(end) if end <= now => past += 1,
            Some(end) if end <= soon => near += 1,
            _ => {}
        }
    }
    (near, past)
}
