//! What every command does before its own work: find the database (the --db URL, else
//! `[database] url`), open it, and open its signing keys with the master secret of the
//! environment (refusing a master the database is not pinned to). It says whether a
//! relative SQLite path would create a new, empty file, and whether the development key is in
//! use; the shell tells the operator.

use std::path::{Path, PathBuf};

use super::AppError;
use crate::config::ConfigDir;
use crate::store::{Store, StoreOptions};
use crate::suppress::{MasterSecret, Secret};

/// The database URL: `--db` (or FAIRSEND_DATABASE_URL), else `[database] url`.
pub fn database_url(config: &ConfigDir, over: Option<&str>) -> String {
    over.map_or_else(|| config.settings.database.url.clone(), str::to_string)
}

/// The file a SQLite `url` would create because it does not exist yet (as the current
/// directory resolves it): a command run from another directory would silently start an
/// empty database, without the suppressions of the real one.
pub fn new_sqlite_file(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = Path::new(path.split('?').next().unwrap_or(path));
    if path.as_os_str().is_empty() || path == Path::new(":memory:") || path.exists() {
        return None;
    }
    Some(
        std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.to_path_buf()),
    )
}

/// Opens (creating and migrating if needed) the database at `url`.
pub async fn open_store(config: &ConfigDir, url: &str) -> Result<Store, AppError> {
    let options = StoreOptions {
        max_connections: config.settings.database.max_connections,
    };
    Ok(Store::open_with(url, &options).await?)
}

/// The master secret of the environment (the development key when the variable is unset).
pub fn master_secret(config: &ConfigDir) -> Result<MasterSecret, AppError> {
    Ok(MasterSecret::from_env(&config.settings.signing_secret_env)?)
}

/// The working key: `master` opens the data key pinned in the database.
pub async fn unlock(store: &Store, master: &MasterSecret) -> Result<Secret, AppError> {
    Ok(crate::suppress::unlock(store, master).await?)
}

#[cfg(test)]
mod tests {
    use super::new_sqlite_file;

    #[test]
    fn only_a_missing_sqlite_file_is_new() {
        let dir = std::env::temp_dir().join(format!("fairsend-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let existing = dir.join("there.db");
        std::fs::write(&existing, b"").expect("write");
        let missing = dir.join("missing.db");
        assert_eq!(
            new_sqlite_file(&format!("sqlite://{}?mode=rwc", missing.display())),
            Some(missing.clone())
        );
        assert_eq!(
            new_sqlite_file(&format!("sqlite:{}", existing.display())),
            None
        );
        assert_eq!(new_sqlite_file("sqlite::memory:"), None);
        assert_eq!(new_sqlite_file("postgres://fairsend@localhost/db"), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
