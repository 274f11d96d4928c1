//! The opt-out (GDPR art. 21) and erasure (art. 17) use cases an operator starts, from the CLI
//! or the admin pages: both record the same audit entry, naming the keyed hash or no one,
//! never the address (the audit log outlives an erasure).
//!
//! Returns data and never prints; what suppresses and what an erasure deletes is decided in
//! `suppress/`.

use crate::model::{EmailAddress, OptOutSource};
use crate::store::{ErasureReport, OptOutEntry, Store, StoreError};
use crate::suppress::{Secret, address_hash};

/// Records an operator's opt-out for `email` (suppressed at once in every campaign) and
/// audits it under `actor`. Returns false if the address had already opted out.
///
/// The audit record does not copy `reason`: free text about a person, it stays with the
/// opt-out record, which an erasure anonymises, while the audit log outlives the erasure.
pub async fn add(
    store: &Store,
    secret: &Secret,
    email: &EmailAddress,
    reason: Option<&str>,
    actor: &str,
) -> Result<bool, StoreError> {
    let created =
        crate::suppress::opt_out(store, secret, email, OptOutSource::Manual, None, reason).await?;
    let hash = address_hash(secret, email);
    store
        .audit(
            actor,
            "optout",
            &format!("address {}", hash.get(..16).unwrap_or(&hash)),
            None,
        )
        .await?;
    Ok(created)
}

/// The opt-out queue, newest first.
pub async fn list(store: &Store) -> Result<Vec<OptOutEntry>, StoreError> {
    store.optouts().await
}

/// Erases the person's data, keeping only the keyed hash (suppressed, refused on import),
/// and audits it under `actor` without naming anyone.
pub async fn erase(
    store: &Store,
    secret: &Secret,
    email: &EmailAddress,
    actor: &str,
) -> Result<ErasureReport, StoreError> {
    let report = crate::suppress::erase(store, secret, email).await?;
    store
        .audit(actor, "erase", "(erased address)", None)
        .await?;
    Ok(report)
}
