//! The signing keys of a database: which master secret it is pinned to, and moving it to a
//! new master secret (rotation). The master secrets come only from environment variables;
//! only their fingerprints leave this module.

use super::AppError;
use crate::config::ConfigDir;
use crate::store::Store;
use crate::suppress::{MasterSecret, fingerprint};

/// The variable that holds the previous master secret during a rotation.
const OLD_SECRET_VAR: &str = "FAIRSEND_SECRET_OLD";

/// The pin of the database and the master secret of the environment, as fingerprints.
pub struct KeyFingerprints {
    /// The variable the current master secret is read from.
    pub var: String,
    /// None until the first command pins the database.
    pub pinned: Option<String>,
    pub current: String,
}

impl KeyFingerprints {
    /// Whether the current master secret opens the database (a database not yet pinned
    /// takes any).
    pub fn opens(&self) -> bool {
        self.pinned.as_ref().is_none_or(|p| *p == self.current)
    }
}

/// `keys show`.
pub async fn show(config: &ConfigDir, store: &Store) -> Result<KeyFingerprints, AppError> {
    let var = config.settings.signing_secret_env.clone();
    let pinned = store.key_pin().await?.map(|p| p.fingerprint);
    let current = fingerprint(&MasterSecret::from_env(&var)?);
    Ok(KeyFingerprints {
        var,
        pinned,
        current,
    })
}

/// `keys rotate`: re-keys the database from the old master secret (FAIRSEND_SECRET_OLD, or
/// the development key) to the one in the secret's variable; returns the new fingerprint.
pub async fn rotate(
    config: &ConfigDir,
    store: &Store,
    from_development_key: bool,
) -> Result<String, AppError> {
    let var = &config.settings.signing_secret_env;
    let new = MasterSecret::from_env(var)?;
    if new.is_development() {
        return Err(AppError::BadInput(format!(
            "keys rotate: set {var} to the new secret (32+ random bytes); the development key cannot be a rotation target"
        )));
    }
    let old = if from_development_key {
        MasterSecret::development()
    } else {
        match std::env::var(OLD_SECRET_VAR) {
            Ok(value) if !value.is_empty() => MasterSecret::from_value(OLD_SECRET_VAR, value)?,
            _ => {
                return Err(AppError::BadInput(format!(
                    "keys rotate: set {OLD_SECRET_VAR} to the secret the database was used with, or pass --from-development-key"
                )));
            }
        }
    };
    Ok(crate::suppress::rotate_keys(store, &old, &new).await?)
}
