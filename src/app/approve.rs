//! Approving a campaign's compliance footers: the approver signs off every distinct footer
//! variant the eligible audience will receive, and the sign-off is recorded with its hashes
//! and written to the audit log. The CLI's `approve` and the admin page's approve button both
//! call [`approve`], so both leave the same record. It does not import contacts (the CLI
//! does that first, as `send` would) and it renders nothing for review.

use crate::compliance::footer_variants;
use crate::compliance::review::{ReviewError, combined_hash, variant_hashes};
use crate::config::{Campaign, ConfigDir};
use crate::store::{Store, StoreError};

/// A recorded approval.
#[derive(Debug, Clone)]
pub struct Approval {
    pub campaign: String,
    pub by: String,
    /// How many distinct footer variants were approved.
    pub variants: usize,
    /// The SHA-256 over every variant, as recorded.
    pub combined_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The approver's name is empty or holds control characters: the record must name someone.
    #[error("the approver's name is missing")]
    NoApprover,
    #[error("nothing to approve: the campaign has no eligible recipient")]
    NothingToApprove,
    #[error("{0}")]
    Variants(#[from] ReviewError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The approver's name as it will be recorded, refused when there is none.
pub fn approver_name(by: &str) -> Result<&str, ApproveError> {
    let by = by.trim();
    if by.is_empty() || by.chars().any(char::is_control) {
        return Err(ApproveError::NoApprover);
    }
    Ok(by)
}

/// Records `by`'s approval of the footers `campaign` would send today, and audits it.
pub async fn approve(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
    by: &str,
) -> Result<Approval, ApproveError> {
    let by = approver_name(by)?;
    let variants = footer_variants(config, campaign, store).await?;
    if variants.is_empty() {
        return Err(ApproveError::NothingToApprove);
    }
    let combined = combined_hash(&variants);
    store
        .record_approval(&campaign.name, by, &combined, &variant_hashes(&variants))
        .await?;
    store.audit(by, "approve", &campaign.name, None).await?;
    Ok(Approval {
        campaign: campaign.name.clone(),
        by: by.to_string(),
        variants: variants.len(),
        combined_hash: combined,
    })
}

#[cfg(test)]
mod tests {
    use super::{ApproveError, approver_name};

    #[test]
    fn an_approval_names_someone() {
        assert_eq!(
            approver_name("  Liisa Lakimies ").ok(),
            Some("Liisa Lakimies")
        );
        for nobody in ["", "   ", "Liisa\nLakimies", "\u{1b}[2J"] {
            assert!(
                matches!(approver_name(nobody), Err(ApproveError::NoApprover)),
                "{nobody:?}"
            );
        }
    }
}
