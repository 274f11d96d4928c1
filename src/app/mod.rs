//! Use cases: one function per thing a person does with fairsend, returning data that the
//! command line and the web pages present.

pub mod report;
