//! The suppression list and the tokens that lead to it.
//!
//! Owns the signing secret, the HMAC tokens (unsubscribe links, VERP envelope senders) and the
//! keyed address hash under which suppressions are stored. Suppression is global: every
//! campaign, every register. This module decides nothing about sending; `send` asks the store,
//! immediately before each SMTP transaction, whether an address is suppressed.

mod token;

pub use token::{
    DEVELOPMENT_SECRET, Secret, SecretOrigin, TokenPurpose, WeakSecret, address_hash, sign, verify,
};

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    OptOut,
    HardBounce,
    SoftBounceLimit,
    Complaint,
    Erased,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptOut => "optout",
            Self::HardBounce => "hard_bounce",
            Self::SoftBounceLimit => "soft_bounce_limit",
            Self::Complaint => "complaint",
            Self::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::OptOut,
            Self::HardBounce,
            Self::SoftBounceLimit,
            Self::Complaint,
            Self::Erased,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}
