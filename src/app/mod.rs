//! Use cases, one function (or one small type) per use case, returning data: the CLI and the
//! web call the same functions, so a use case behaves (and audits) the same from both. Nothing
//! here prints.

pub mod bounce_poll;
pub mod bounces;
pub mod contacts;
pub mod hygiene;
pub mod optout;
pub mod report;
pub mod signup;
pub mod webhooks;
