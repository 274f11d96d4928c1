//! The ground floor: the vocabulary every other module speaks — validated addresses and
//! business ids, locales and legal bases, contacts, segments, send windows, suppression reasons, A/B phases,
//! findings.
//!
//! Owns only types and their parsing/validation. It imports nothing else of the crate (a test
//! in tests/architecture.rs holds it to that), touches no file, database or network.

mod ab;
mod address;
mod business_id;
mod contact;
mod finding;
mod lifecycle;
mod locale;
mod schedule;
mod segment;
mod suppression;

pub use ab::{AbMetric, Decision, Fallback, Phase, TestMessage};
pub use address::{AddressError, EmailAddress};
pub use business_id::{BusinessId, BusinessIdError, y_tunnus_check_digit};
pub use contact::{ContactRecord, ContactStatus, Recipient, STANDARD_FIELDS};
pub use finding::{Finding, Severity};
pub use lifecycle::RunState;
pub use locale::{LegalBasis, Locale};
pub use schedule::{Schedule, ScheduleError, SendTime, SendWindow, parse_timezone};
pub use segment::{Condition, Field, Filter, SEGMENT_STANDARD_FIELDS, Segment, SegmentError, Test};
pub use suppression::{OptOutSource, SuppressionReason};
