//! The suppression list and the tokens that lead to it.
//!
//! Owns the signing secret, the HMAC tokens (unsubscribe links, VERP envelope senders) and the
//! keyed address hash under which suppressions are stored, and (in `policy`) the rules of what
//! suppresses an address and what lifts a reason; `store` executes them. Suppression is global:
//! every campaign, every register. This module decides nothing about sending; `send` asks the
//! store, immediately before each SMTP transaction, whether an address is suppressed.

mod keys;
pub mod policy;
mod token;

pub use crate::model::{OptOutSource, SuppressionReason};
pub use keys::{KeyError, fingerprint, rotate as rotate_keys, unlock};
pub use token::{
    DEVELOPMENT_SECRET, MasterSecret, Secret, SecretOrigin, TokenPurpose, WeakSecret, address_hash,
    mac_hex, sign, sign_timed, verify, verify_mac_hex, verify_timed,
};

use crate::model::EmailAddress;
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
            policy::reason_for_optout(source),
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
