//! Who may receive a campaign, and if not, why: [`eligibility`] is the one function that
//! decides it, and [`register_expiry`] is the one place of the purchased-register rule. To
//! change who may be mailed, edit this file.
//!
//! The decision is made here over the facts the store reads (the contact's status and
//! suppression as of one instant, its address, legal basis and register), never in SQL: the
//! store streams candidate rows with those facts and marks the rows this module excludes. Why
//! not a typed filter compiled to SQL: the facts are already read with every row the send
//! loop, `check` and the A/B grouping touch (they read the recipient anyway), so deciding in
//! Rust costs nothing measurable, and one function is easier to read and test than a filter
//! and its compiler for two SQL dialects. Materialising the outbox (every member of the
//! campaign's registers, one `INSERT … SELECT`) stays in SQL: it decides nothing — an
//! excluded contact's row becomes `suppressed` when it comes up, with the reason.
//!
//! Two kinds of "no": an [`Exclusion`] leaves one contact out and the campaign goes on to
//! the others; a [`Blocker`] is a contact the campaign may not be sent with at all as
//! recorded (`check` reports it as an error and `send` refuses until it is fixed).
//!
//! This module decides; it neither reads the database nor writes it.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::audience::is_freemail;
use crate::config::{Campaign, ConfigDir, Register, Registers};
use crate::model::{ContactStatus, EmailAddress, LegalBasis, SuppressionReason};
use crate::store::RecipientGate;

/// What the decision about one contact needs, as of one instant.
#[derive(Debug, Clone, Copy)]
pub struct ContactFacts<'a> {
    /// `None`: the contact no longer exists (erased or purged since it was selected).
    pub status: Option<ContactStatus>,
    /// The first reason the address is suppressed for, if any.
    pub suppressed: Option<SuppressionReason>,
    pub email: &'a EmailAddress,
    pub legal_basis: LegalBasis,
    /// The register the contact is mailed through (`None`: not defined in registers.toml).
    pub register: Option<&'a Register>,
}

impl<'a> ContactFacts<'a> {
    /// The facts of an audience member as the store read it with its recipient.
    pub fn of_member(config: &'a ConfigDir, member: &'a RecipientGate) -> Self {
        let contact = &member.recipient.contact;
        Self {
            status: Some(member.status),
            suppressed: member.suppressed,
            email: &contact.email,
            legal_basis: contact.legal_basis,
            register: config.registers.get(&member.recipient.register),
        }
    }
}

/// Why a contact is left out of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// The contact no longer exists.
    Gone,
    /// Opted out, bounced, complained, erased…: suppression wins over everything.
    Suppressed(SuppressionReason),
    /// The person left the role.
    Passive,
    /// The company ceased.
    Ceased,
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone => write!(f, "the contact no longer exists"),
            Self::Suppressed(reason) => write!(f, "suppressed: {}", reason.as_str()),
            Self::Passive => write!(f, "contact is {}", ContactStatus::Passive.as_str()),
            Self::Ceased => write!(f, "contact is {}", ContactStatus::Ceased.as_str()),
        }
    }
}

/// Why a contact may not be mailed as recorded, which stops the whole campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The contact's register is a purchased list whose permission to use has ended.
    RegisterExpired {
        register: String,
        valid_until: NaiveDate,
    },
    /// A consumer (free-mail) address without the person's consent.
    ConsumerWithoutConsent {
        domain: String,
        legal_basis: LegalBasis,
    },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RegisterExpired {
                register,
                valid_until,
            } => write!(
                f,
                "register '{register}' is a purchased list whose permission to use ended on {valid_until}"
            ),
            Self::ConsumerWithoutConsent {
                domain,
                legal_basis,
            } => write!(
                f,
                "{domain} is a consumer (free-mail) domain; marketing to it needs the person's consent, \
                 but the legal basis is {}",
                legal_basis.as_str()
            ),
        }
    }
}

/// The verdict on one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    Eligible,
    /// Left out; the campaign goes on.
    Excluded(Exclusion),
    /// In the audience, but the campaign may not be sent while it is recorded so.
    Blocked(Vec<Blocker>),
}

impl Eligibility {
    pub fn is_excluded(&self) -> bool {
        matches!(self, Self::Excluded(_))
    }
}

/// May this contact receive a campaign on `today`, and if not, why. Exclusions come first: a
/// suppressed or inactive contact is simply left out, whatever else is wrong with it.
pub fn eligibility(facts: &ContactFacts<'_>, today: NaiveDate) -> Eligibility {
    if let Some(exclusion) = exclusion(facts.status, facts.suppressed) {
        return Eligibility::Excluded(exclusion);
    }
    let mut blockers = Vec::new();
    if let Some(register) = facts.register
        && let Some(valid_until) = register_expiry(register, today)
    {
        blockers.push(Blocker::RegisterExpired {
            register: register.name.clone(),
            valid_until,
        });
    }
    if is_freemail(facts.email) && facts.legal_basis != LegalBasis::Consent {
        blockers.push(Blocker::ConsumerWithoutConsent {
            domain: facts.email.domain().to_string(),
            legal_basis: facts.legal_basis,
        });
    }
    if blockers.is_empty() {
        Eligibility::Eligible
    } else {
        Eligibility::Blocked(blockers)
    }
}

/// Gone, suppressed, passive or ceased: decided on status and suppression alone (the A/B
/// grouping, which forms groups before any message exists, needs nothing else).
pub fn exclusion(
    status: Option<ContactStatus>,
    suppressed: Option<SuppressionReason>,
) -> Option<Exclusion> {
    let Some(status) = status else {
        return Some(Exclusion::Gone);
    };
    if let Some(reason) = suppressed {
        return Some(Exclusion::Suppressed(reason));
    }
    match status {
        ContactStatus::Active => None,
        ContactStatus::Passive => Some(Exclusion::Passive),
        ContactStatus::Ceased => Some(Exclusion::Ceased),
    }
}

/// The register-expiry rule: a purchased register may be used only until its `valid_until`
/// date (inclusive). Returns that date once it has passed on `today`.
pub fn register_expiry(register: &Register, today: NaiveDate) -> Option<NaiveDate> {
    register
        .purchased
        .as_ref()
        .map(|p| p.valid_until)
        .filter(|valid_until| *valid_until < today)
}

/// The names of every register that has expired on `today` (what `hygiene purge` deletes).
pub fn expired_register_names(registers: &Registers, today: NaiveDate) -> BTreeSet<String> {
    registers
        .iter()
        .filter(|register| register_expiry(register, today).is_some())
        .map(|register| register.name.clone())
        .collect()
}

/// The registers of `campaign` that have expired on `today`, in campaign order: the campaign
/// may not be sent while it names one.
pub fn expired_registers<'a>(
    config: &'a ConfigDir,
    campaign: &Campaign,
    today: NaiveDate,
) -> Vec<(&'a Register, NaiveDate)> {
    campaign
        .registers
        .iter()
        .filter_map(|name| config.registers.get(name))
        .filter_map(|register| Some((register, register_expiry(register, today)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(email: &'a EmailAddress, basis: LegalBasis) -> ContactFacts<'a> {
        ContactFacts {
            status: Some(ContactStatus::Active),
            suppressed: None,
            email,
            legal_basis: basis,
            register: None,
        }
    }

    #[test]
    fn exclusions_come_before_blockers() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        let work = EmailAddress::parse("maija@firma.example").expect("address");
        let free = EmailAddress::parse("maija@gmail.com").expect("address");
        let active = facts(&work, LegalBasis::JobRole);
        assert_eq!(eligibility(&active, today), Eligibility::Eligible);
        let gone = ContactFacts {
            status: None,
            ..active
        };
        assert_eq!(
            eligibility(&gone, today),
            Eligibility::Excluded(Exclusion::Gone)
        );
        let suppressed = ContactFacts {
            suppressed: Some(SuppressionReason::OptOut),
            status: Some(ContactStatus::Ceased),
            ..facts(&free, LegalBasis::JobRole)
        };
        assert_eq!(
            eligibility(&suppressed, today),
            Eligibility::Excluded(Exclusion::Suppressed(SuppressionReason::OptOut))
        );
        let passive = ContactFacts {
            status: Some(ContactStatus::Passive),
            ..active
        };
        assert_eq!(
            eligibility(&passive, today),
            Eligibility::Excluded(Exclusion::Passive)
        );
        assert!(matches!(
            eligibility(&facts(&free, LegalBasis::JobRole), today),
            Eligibility::Blocked(b) if matches!(b[..], [Blocker::ConsumerWithoutConsent { .. }])
        ));
        assert_eq!(
            eligibility(&facts(&free, LegalBasis::Consent), today),
            Eligibility::Eligible
        );
    }
}
