//! The use cases, one function each, shared by the command line and the web: each takes the
//! loaded configuration and the store, does the whole job, and returns data (a struct the
//! caller renders) or an error enum saying what went wrong. Nothing here prints, reads the
//! command line or answers HTTP; the shells (`main.rs` with `src/cli/`, and `web/`) do that.

pub mod approve;
pub mod campaign;
pub mod check;
mod error;
pub mod keys;
pub mod review;
pub mod send;
pub mod serve;
pub mod session;
pub mod status;

pub use error::AppError;
