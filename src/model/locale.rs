//! Languages and legal bases: how fairsend speaks to a contact and on what ground it may.

/// The legal basis on which a contact may receive B2B marketing (917/2014 §200–201, GDPR 6(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The person opted in; the consent time is kept.
    Consent,
    /// An existing customer relationship (legitimate interest).
    CustomerRelationship,
    /// The message is relevant to the person's job role (legitimate interest, B2B only).
    JobRole,
}

impl LegalBasis {
    pub const ALL: [LegalBasis; 3] = [Self::Consent, Self::CustomerRelationship, Self::JobRole];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::CustomerRelationship => "customer_relationship",
            Self::JobRole => "job_role",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s.trim())
    }
}

/// The languages every compliance block exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    Fi,
    Sv,
    En,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Self::Fi, Self::Sv, Self::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fi => "fi",
            Self::Sv => "sv",
            Self::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}
