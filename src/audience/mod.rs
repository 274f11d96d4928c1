//! Contacts and registers: CSV import, address rules, and the typed contact records the rest of
//! fairsend works with. Parsing and validation live here; persistence is `store`'s.

pub mod hygiene;
mod import;
mod rules;

pub use crate::model::{
    AddressError, BusinessId, BusinessIdError, ContactRecord, ContactStatus, EmailAddress,
    Recipient, STANDARD_FIELDS, y_tunnus_check_digit,
};
pub use import::{
    ContactReader, ImportError, MAX_RECORD_BYTES, ParsedImport, RowError, merge_into,
    parse_contacts_csv, rejected_path,
};
pub use rules::{is_freemail, is_role_account};
