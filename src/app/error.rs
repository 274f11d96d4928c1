//! What can stop a campaign-side use case, as one enum the shells map to their answers: the
//! CLI's exit codes (2 for the user's input, 1 for a refusal or a failure), the web's status
//! codes. Each library error is kept whole as the source, so a shell can still tell a bad
//! configuration from a broken database. It decides nothing and prints nothing.

use crate::audience::ImportError;
use crate::compliance::review::{ReviewError, ReviewWriteError};
use crate::compose::ComposeError;
use crate::config::ConfigError;
use crate::dns::{DkimError, DnsError};
use crate::send::{SendError, TransportError};
use crate::store::StoreError;
use crate::suppress::{KeyError, WeakSecret};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The user's input is wrong (a flag, an address, a name): they must change the command.
    #[error("{0}")]
    BadInput(String),
    /// The use case ran and refuses to go on (what it found was already reported): the
    /// command was right, the campaign or the data is not.
    #[error("{0}")]
    Refused(String),
    #[error("cannot read campaign status")]
    StatusCounts(#[source] StoreError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Import(#[from] ImportError),
    #[error("{0}")]
    Compose(#[from] ComposeError),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Send(#[from] SendError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Review(#[from] ReviewError),
    #[error("{0}")]
    ReviewWrite(#[from] ReviewWriteError),
    #[error("{0}")]
    Dkim(#[from] DkimError),
    #[error("{0}")]
    Dns(#[from] DnsError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    WeakSecret(#[from] WeakSecret),
}

impl AppError {
    /// Whether the user's input is at fault (the CLI's exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::BadInput(_))
    }
}
