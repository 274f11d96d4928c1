//! The binary's own modules: the command line's grammar (`args`), the printers of each
//! command's result (human text or `--json`) and the terminal-safe output macros. It parses
//! and prints; the use cases themselves live in the library's `app/`.

pub mod args;
pub mod audience;
pub mod bounces;
pub mod campaign;
pub mod check;
pub mod consent;
pub mod contacts;
pub mod hygiene;
pub mod lifecycle;
pub mod optout;
pub mod output;
pub mod report;
pub mod review;
pub mod send;
pub mod setup;
pub mod status;
pub mod terminal;

/// An error that is the user's input, not the program's situation: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The command ran and found problems: exit code 1, the problems already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Problems(pub String);
