//! The suppression list and the tokens that lead to it.
//!
//! Owns the signing secret, the HMAC tokens (unsubscribe links, VERP envelope senders) and the
//! keyed address hash under which suppressions are stored. Suppression is global: every
//! campaign, every register. This module decides nothing about sending; `send` asks the store,
//! immediately before each SMTP transaction, whether an address is suppressed.

mod keys;
mod token;

pub use keys::{KeyError, fingerprint, rotate as rotate_keys, unlock};
pub use token::{
    DEVELOPMENT_SECRET, MasterSecret, Secret, SecretOrigin, TokenPurpose, WeakSecret, address_hash,
    mac_hex, sign, sign_timed, verify, verify_mac_hex, verify_timed,
};

/// Why an address is suppressed. An address may have several reasons at once; the order
/// here is their weight (the last is the weightiest), used where one must be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    SoftBounceLimit,
    HardBounce,
    Complaint,
    OptOut,
    Erased,
}

impl SuppressionReason {
    /// Why an import refuses the address, for the person maintaining the register.
    pub fn import_refusal(self) -> &'static str {
        match self {
            Self::Erased => {
                "this person's data was erased on request (GDPR art. 17); the address may not be imported again"
            }
            Self::OptOut => "this address opted out of marketing; it is not imported again",
            Self::Complaint => "this address reported our mail as spam; it is not imported again",
            Self::HardBounce | Self::SoftBounceLimit => {
                "this address bounced and is suppressed; it is not imported again"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptOut => "optout",
            Self::HardBounce => "hard_bounce",
            Self::SoftBounceLimit => "soft_bounce_limit",
            Self::Complaint => "complaint",
            Self::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::OptOut,
            Self::HardBounce,
            Self::SoftBounceLimit,
            Self::Complaint,
            Self::Erased,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// How a person refused marketing: shown in the opt-out queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    /// Confirmed on the unsubscribe page.
    Page,
    /// RFC 8058 one-click POST from the mailbox provider.
    OneClick,
    /// Mail to the tokenized `mailto:` address of `List-Unsubscribe`.
    Mailto,
    /// A reply whose first lines ask to be removed.
    Reply,
    /// A feedback-loop (ARF) spam complaint.
    Complaint,
    /// `fairsend optout add` or an operator.
    Manual,
}

impl OptOutSource {
    pub const ALL: [OptOutSource; 6] = [
        Self::Page,
        Self::OneClick,
        Self::Mailto,
        Self::Reply,
        Self::Complaint,
        Self::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::OneClick => "one_click",
            Self::Mailto => "mailto",
            Self::Reply => "reply",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

use crate::audience::EmailAddress;
use crate::store::{ErasureReport, Store, StoreError};

/// Records that `email` refuses marketing (GDPR art. 21): suppressed at once for every
/// campaign and register. Returns false if it had already opted out.
pub async fn opt_out(
    store: &Store,
    secret: &Secret,
    email: &EmailAddress,
    source: OptOutSource,
    campaign_id: Option<i64>,
    detail: Option<&str>,
) -> Result<bool, StoreError> {
    let created = store
        .record_optout(
            &address_hash(secret, email),
            Some(email),
            source,
            campaign_id,
            detail,
        )
        .await?;
    if created {
        tracing::info!(source = source.as_str(), campaign_id, "opt-out recorded");
    }
    Ok(created)
}

/// Erases the person's data (GDPR art. 17), keeping only the keyed hash so that the address
/// stays suppressed and cannot be imported again.
pub async fn erase(
    store: &Store,
    secret: &Secret,
    email: &EmailAddress,
) -> Result<ErasureReport, StoreError> {
    let report = store.erase(email, &address_hash(secret, email)).await?;
    tracing::info!(contact_found = report.contact_found, "personal data erased");
    Ok(report)
}
