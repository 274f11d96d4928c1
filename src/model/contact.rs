//! A contact as a register holds it and as a campaign selects it.

use std::collections::BTreeMap;

use super::{EmailAddress, LegalBasis, Locale};

/// Whether a contact may be sent to at all; `passive` (left the role) and `ceased` (company
/// ceased trading) are never sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    Active,
    Passive,
    Ceased,
}

impl ContactStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Ceased => "ceased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "ceased" => Some(Self::Ceased),
            _ => None,
        }
    }
}

/// One person as one register holds them: what an import row becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub business_id: String,
    pub title: String,
    pub locale: Option<Locale>,
    pub legal_basis: LegalBasis,
    /// RFC 3339 time of consent; present exactly when `legal_basis` is consent.
    pub consent_at: Option<String>,
    /// Extra CSV columns, usable in the body template by their column name.
    pub fields: BTreeMap<String, String>,
    /// `FILE:LINE` of the row this came from, kept as provenance.
    pub source: String,
}

/// The standard fields a body template may use, besides a register's extra columns.
pub const STANDARD_FIELDS: [&str; 9] = [
    "email",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "business_id",
    "title",
    "locale",
    "register",
];

/// A contact as selected for one campaign: its outbox row and the register it was selected
/// through, whose data (names, legal basis, address source) the message uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub outbox_id: i64,
    pub register: String,
    pub contact: ContactRecord,
    /// The A/B subject variant (0 without a test, or before the winner is known).
    pub variant: usize,
}
