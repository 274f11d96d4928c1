//! Use cases, one function (or one small type) per use case, returning data: the CLI and the
//! web call the same code.

pub mod bounce_poll;
pub mod report;
pub mod signup;
pub mod webhooks;
