//! fairsend — a compliance-aware B2B email campaign sender.
//!
//! Data flows one way: [`config`] → [`audience`] → [`compose`] → [`compliance`] gate →
//! [`send`] → (SMTP) → … → [`suppress`] → the next send; [`web`] serves the unsubscribe pages.
//! [`store`] is the only module that speaks SQL; the binary (`main.rs`) and [`web`] are thin
//! shells over these modules.

pub mod abtest;
pub mod app;
pub mod audience;
pub mod compliance;
pub mod compose;
pub mod config;
pub mod dns;
pub mod inbound;
pub mod model;
pub mod send;
pub mod store;
pub mod suppress;
pub mod web;

/// Current time as Unix milliseconds: the one clock every stored timestamp uses.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
