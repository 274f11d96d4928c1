//! The use cases, one function each, shared by the command line and the web: each takes the
//! loaded configuration and the store, does the whole job, and returns data (a struct the
//! caller renders) or an error enum saying what went wrong. Nothing here prints, reads the
//! command line or answers HTTP; the shells (`main.rs` with `src/cli/`, and `web/`) do that,
//! so a use case behaves (and audits) the same from both.

pub mod approve;
pub mod audience;
pub mod bounce_poll;
pub mod bounces;
pub mod campaign;
pub mod check;
pub mod contacts;
mod error;
pub mod hygiene;
pub mod keys;
pub mod lifecycle;
pub mod optout;
pub mod report;
pub mod review;
pub mod send;
pub mod serve;
pub mod session;
pub mod signup;
pub mod status;
pub mod webhooks;

pub use error::AppError;
