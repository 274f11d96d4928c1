//! Why an address is suppressed, and how a person refused marketing.

/// Why an address is suppressed. An address may have several reasons at once; the order
/// here is their weight (the last is the weightiest), used where one must be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    SoftBounceLimit,
    HardBounce,
    Complaint,
    OptOut,
    Erased,
}

impl SuppressionReason {
    /// Why an import refuses the address, for the person maintaining the register.
    pub fn import_refusal(self) -> &'static str {
        match self {
            Self::Erased => {
                "this person's data was erased on request (GDPR art. 17); the address may not be imported again"
            }
            Self::OptOut => "this address opted out of marketing; it is not imported again",
            Self::Complaint => "this address reported our mail as spam; it is not imported again",
            Self::HardBounce | Self::SoftBounceLimit => {
                "this address bounced and is suppressed; it is not imported again"
            }
        }
    }

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

/// How a person refused marketing: shown in the opt-out queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    /// Confirmed on the unsubscribe page.
    Page,
    /// RFC 8058 one-click POST from the mailbox provider.
    OneClick,
    /// Mail to the tokenized `mailto:` address of `List-Unsubscribe`.
    Mailto,
    /// A reply whose first lines ask to be removed.
    Reply,
    /// A feedback-loop (ARF) spam complaint.
    Complaint,
    /// `fairsend optout add` or an operator.
    Manual,
}

impl OptOutSource {
    pub const ALL: [OptOutSource; 6] = [
        Self::Page,
        Self::OneClick,
        Self::Mailto,
        Self::Reply,
        Self::Complaint,
        Self::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::OneClick => "one_click",
            Self::Mailto => "mailto",
            Self::Reply => "reply",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}
