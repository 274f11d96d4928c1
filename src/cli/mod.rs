//! The binary's own modules: argument handling and printing over `fairsend::app`.

pub mod bounces;
pub mod consent;
pub mod contacts;
pub mod hygiene;
pub mod optout;
pub mod report;
