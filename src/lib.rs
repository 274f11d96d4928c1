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

/// "Now" for send-window and start decisions (`send`, `status`). Tests can move it: a debug
/// build given `FAIRSEND_TEST_NOW` (RFC 3339) starts its clock there, and it runs on in real
/// time, so a run shown a Saturday waits as it would. A release build ignores the variable,
/// so no deployment can have its windows moved by its environment.
pub fn schedule_now() -> chrono::DateTime<chrono::Utc> {
    static STARTED: std::sync::OnceLock<
        Option<(chrono::DateTime<chrono::Utc>, std::time::Instant)>,
    > = std::sync::OnceLock::new();
    let injected = STARTED.get_or_init(|| {
        let text = std::env::var("FAIRSEND_TEST_NOW").ok().filter(|_| cfg!(debug_assertions))?;
        match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(at) => Some((at.with_timezone(&chrono::Utc), std::time::Instant::now())),
            Err(e) => {
                tracing::warn!(value = %text, error = %e, "FAIRSEND_TEST_NOW is no RFC 3339 time; ignored");
                None
            }
        }
    });
    match injected {
        Some((at, since)) => *at + chrono::Duration::from_std(since.elapsed()).unwrap_or_default(),
        None => chrono::Utc::now(),
    }
}
