//! One function per use case, returning data; the CLI and the web call the same functions.

pub mod bounce_poll;
