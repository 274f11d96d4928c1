//! The validated, normalised email address. Every address that enters fairsend — from a CSV,
//! the CLI or a config file — passes through [`EmailAddress::parse`] once; everything downstream
//! takes the type, never a raw string.

use std::fmt;

/// An address that is syntactically valid for SMTP (RFC 5321 dot-atom local part, a DNS domain
/// with at least two labels) and normalised to lower case, which is how fairsend identifies
/// a person across registers and suppression lists.
///
/// ```
/// use fairsend::model::EmailAddress;
///
/// let a = EmailAddress::parse(" Maija.Meikalainen@Example.FI ").unwrap();
/// assert_eq!(a.as_str(), "maija.meikalainen@example.fi");
/// assert_eq!(a.domain(), "example.fi");
/// // A line break could smuggle a header into a message: refused.
/// assert!(EmailAddress::parse("a@example.com\r\nBcc: b@example.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("'{0}' has no '@'")]
    NoAt(String),
    #[error("'{0}' contains a line break or control character")]
    ControlCharacter(String),
    #[error("'{0}' has an invalid local part (before the '@')")]
    LocalPart(String),
    #[error("'{0}' has an invalid domain (after the '@')")]
    Domain(String),
    #[error("'{0}' is longer than the 254 characters SMTP allows")]
    TooLong(String),
}

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        if raw.chars().any(|c| c.is_control()) {
            return Err(AddressError::ControlCharacter(
                raw.escape_debug().to_string(),
            ));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        let normalised = trimmed.to_lowercase();
        if normalised.len() > 254 {
            return Err(AddressError::TooLong(trimmed.to_string()));
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err(AddressError::NoAt(trimmed.to_string()));
        };
        if !valid_local_part(local) {
            return Err(AddressError::LocalPart(trimmed.to_string()));
        }
        if !valid_domain(domain) {
            return Err(AddressError::Domain(trimmed.to_string()));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()))
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let a = EmailAddress::parse("  Maija.Meikalainen@Example.FI ").unwrap();
        assert_eq!(a.as_str(), "maija.meikalainen@example.fi");
        assert_eq!(a.local_part(), "maija.meikalainen");
        assert_eq!(a.domain(), "example.fi");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@exa mple.com",
            "a b@example.com",
            "a@example.123",
            "a@example.com\r\nBcc: victim@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn accepts_plus_and_specials() {
        assert!(EmailAddress::parse("first.last+tag@sub.example.co.uk").is_ok());
        assert!(EmailAddress::parse("o'brien@example.ie").is_ok());
    }
}
