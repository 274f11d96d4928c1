//! `fairsend init`: a commented starter configuration (sender, one register, one campaign,
//! one body, an empty contact file) that passes `check` once its placeholders are filled.
//! It writes files only into a directory that is new or empty, and never overwrites one.

use std::path::{Path, PathBuf};

/// (path inside the configuration directory, contents)
const FILES: [(&str, &str); 5] = [
    ("fairsend.toml", include_str!("starter/fairsend.toml")),
    ("registers.toml", include_str!("starter/registers.toml")),
    (
        "campaigns/first.toml",
        include_str!("starter/campaigns/first.toml"),
    ),
    ("content/first.md", include_str!("starter/content/first.md")),
    (
        "contacts/customers.csv",
        include_str!("starter/contacts/customers.csv"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    #[error(
        "{0}: the directory is not empty; `fairsend init` writes only into a new or empty directory"
    )]
    NotEmpty(PathBuf),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the starter configuration into `dir`; returns the files written.
pub fn write_starter(dir: &Path) -> Result<Vec<PathBuf>, StarterError> {
    let write_error = |path: &Path, source| StarterError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(StarterError::NotEmpty(dir.to_path_buf()));
    }
    let mut written = Vec::new();
    for (relative, contents) in FILES {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, contents.as_bytes()))
            .map_err(|e| write_error(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
