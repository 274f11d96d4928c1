//! The binary's own presentation modules: how each command prints what app/ returns.

pub mod report;
