//! Business IDs. A Finnish Y-tunnus (`1234567-1`, or the VAT form `FI12345671`) is checked by
//! its check digit; other countries' IDs are kept as given.

/// A business ID as a register holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusinessIdError {
    #[error("'{0}' looks like a Finnish business ID (Y-tunnus) but its check digit is wrong")]
    CheckDigit(String),
    #[error("'{0}' is not a business ID (a Finnish Y-tunnus is 1234567-8)")]
    Malformed(String),
}

impl BusinessId {
    /// Normalises and validates. Finnish forms become `NNNNNNN-C`; IDs with a country prefix
    /// other than FI (`SE5561234567`) or other shapes are kept as given, upper-cased.
    pub fn parse(raw: &str) -> Result<Self, BusinessIdError> {
        let text = raw.trim().to_ascii_uppercase();
        if text.is_empty() || text.chars().any(|c| c.is_control() || c == ',') {
            return Err(BusinessIdError::Malformed(raw.to_string()));
        }
        let finnish = text.strip_prefix("FI").map(str::trim).unwrap_or(&text);
        let digits: String = finnish.chars().filter(|c| *c != '-').collect();
        let looks_finnish = digits.len() == 8
            && digits.chars().all(|c| c.is_ascii_digit())
            && (finnish.len() == 8 || finnish.as_bytes().get(7) == Some(&b'-'));
        if looks_finnish {
            let (body, check) = digits.split_at(7);
            return match y_tunnus_check_digit(body) {
                Some(expected) if check == expected.to_string() => {
                    Ok(Self(format!("{body}-{check}")))
                }
                _ => Err(BusinessIdError::CheckDigit(raw.trim().to_string())),
            };
        }
        if text.len() < 4
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-. /".contains(c))
        {
            return Err(BusinessIdError::Malformed(raw.to_string()));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Y-tunnus check digit of seven digits: weights 7, 9, 10, 5, 8, 4, 2; remainder 0 gives 0,
/// remainder 1 is never issued, otherwise 11 − remainder.
pub fn y_tunnus_check_digit(seven: &str) -> Option<u32> {
    const WEIGHTS: [u32; 7] = [7, 9, 10, 5, 8, 4, 2];
    if seven.len() != 7 {
        return None;
    }
    let sum: u32 = seven
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).map(|d| d * w))
        .sum::<Option<u32>>()?;
    match sum % 11 {
        0 => Some(0),
        1 => None,
        r => Some(11 - r),
    }
}

impl std::fmt::Display for BusinessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_y_tunnus() {
        // IDs whose check digit is right (computed independently of this code).
        for id in [
            "0112038-9",
            "1927400-1",
            "0109862-8",
            "2331972-7",
            "0201256-6",
            "1234567-1",
        ] {
            assert_eq!(BusinessId::parse(id).unwrap().as_str(), id, "{id}");
        }
        assert_eq!(
            BusinessId::parse("FI01120389").unwrap().as_str(),
            "0112038-9"
        );
        assert_eq!(
            BusinessId::parse(" 0112038-9 ").unwrap().as_str(),
            "0112038-9"
        );
    }

    #[test]
    fn invalid_y_tunnus() {
        for id in ["0112038-8", "1234567-2", "0000001-0", "1927400-0"] {
            assert!(
                matches!(BusinessId::parse(id), Err(BusinessIdError::CheckDigit(_))),
                "{id}"
            );
        }
        for id in ["", "12", "x,y", "123\n4"] {
            assert!(BusinessId::parse(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn remainder_one_is_never_valid() {
        // 0000005: 5 × 2 = 10 → remainder 10 → check 1; 0000030: 3×4=12 → remainder 1 → none.
        assert_eq!(y_tunnus_check_digit("0000005"), Some(1));
        assert_eq!(y_tunnus_check_digit("0000030"), None);
    }

    #[test]
    fn foreign_ids_are_kept() {
        assert_eq!(
            BusinessId::parse("se556123-4567").unwrap().as_str(),
            "SE556123-4567"
        );
    }
}
