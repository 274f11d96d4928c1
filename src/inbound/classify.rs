//! Bounce classification: hard (the address will never work) or soft (it may work later), with
//! a reason. The RFC 3463 enhanced status code decides when it is specific; the diagnostic text
//! decides when the code is absent or only says "other" (X.0.0 and the like). The text patterns
//! are one table, each with the MTA or provider whose wording it matches.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    UserUnknown,
    MailboxFull,
    HostUnknown,
    MailboxDisabled,
    MessageTooLarge,
    PolicyOrSpamBlock,
    RateLimited,
    Expired,
    Network,
    Other,
    /// A success notification (RFC 3464 `Action: delivered|relayed|expanded`), not a failure.
    Delivered,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Self::UserUnknown,
        Self::MailboxFull,
        Self::HostUnknown,
        Self::MailboxDisabled,
        Self::MessageTooLarge,
        Self::PolicyOrSpamBlock,
        Self::RateLimited,
        Self::Expired,
        Self::Network,
        Self::Other,
        Self::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserUnknown => "user_unknown",
            Self::MailboxFull => "mailbox_full",
            Self::HostUnknown => "host_unknown",
            Self::MailboxDisabled => "mailbox_disabled",
            Self::MessageTooLarge => "message_too_large",
            Self::PolicyOrSpamBlock => "policy_or_spam_block",
            Self::RateLimited => "rate_limited",
            Self::Expired => "expired",
            Self::Network => "network",
            Self::Other => "other",
            Self::Delivered => "delivered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Hard reasons: the address will never work. Everything else may pass later.
    pub fn class(self) -> Option<BounceClass> {
        match self {
            Self::UserUnknown | Self::HostUnknown | Self::MailboxDisabled => {
                Some(BounceClass::Hard)
            }
            Self::Delivered => None,
            _ => Some(BounceClass::Soft),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceClass {
    Hard,
    Soft,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }
}

/// Classifies one failed recipient.
pub fn classify(
    status: Option<&str>,
    reply_code: Option<u16>,
    diagnostic: &str,
    action: Option<&str>,
) -> Reason {
    let action = action.map(str::to_ascii_lowercase);
    if matches!(
        action.as_deref(),
        Some("delivered" | "relayed" | "expanded")
    ) || status.is_some_and(|s| s.starts_with("2."))
    {
        return Reason::Delivered;
    }
    if let Some(reason) = status.and_then(by_specific_status) {
        return reason;
    }
    if let Some(reason) = by_text(diagnostic) {
        return reason;
    }
    if let Some(reason) = status.and_then(by_status_class) {
        return reason;
    }
    if action.as_deref() == Some("delayed") {
        return Reason::Expired;
    }
    match reply_code {
        Some(552) => Reason::MailboxFull,
        Some(421) | Some(450) | Some(451) | Some(452) => Reason::RateLimited,
        _ => Reason::Other,
    }
}

/// The reason a specific enhanced status code gives, if it gives one.
pub fn specific_reason(status: &str) -> Option<Reason> {
    by_specific_status(status)
}

/// RFC 3463 / RFC 3463bis codes that say exactly what happened.
fn by_specific_status(status: &str) -> Option<Reason> {
    let mut it = status.split('.');
    let (class, subject, detail) = (it.next()?, it.next()?, it.next()?);
    let permanent = class == "5";
    Some(match (subject, detail) {
        ("1", "1") | ("1", "3") | ("1", "6") => Reason::UserUnknown,
        ("1", "2") | ("1", "10") => Reason::HostUnknown,
        ("4", "4") if permanent => Reason::HostUnknown,
        ("2", "1") => Reason::MailboxDisabled,
        ("2", "2") => Reason::MailboxFull,
        ("2", "3") | ("3", "4") => Reason::MessageTooLarge,
        ("4", "1") | ("4", "2") => Reason::Network,
        ("4", "5") => Reason::RateLimited,
        ("4", "7") => Reason::Expired,
        ("7", d) if d != "0" => Reason::PolicyOrSpamBlock,
        _ => return None,
    })
}

/// What the status's subject digit alone says, when the text said nothing.
fn by_status_class(status: &str) -> Option<Reason> {
    let mut it = status.split('.');
    let (_, subject) = (it.next()?, it.next()?);
    Some(match subject {
        "1" => Reason::UserUnknown,
        "2" => Reason::MailboxFull,
        "4" => Reason::Network,
        "7" => Reason::PolicyOrSpamBlock,
        _ => return None,
    })
}

struct Pattern {
    needle: &'static str,
    reason: Reason,
}

/// Diagnostic wording → reason, lower case, checked in order (specific reasons before the
/// broad policy words). The comment on each group names where the wording comes from.
const PATTERNS: &[Pattern] = &[
    // Mailbox over quota: Postfix/Dovecot ("mailbox full", "quota exceeded"), Exchange
    // ("mailbox is full"), Gmail ("over quota", "out of storage space"), Yahoo ("over quota").
    Pattern {
        needle: "mailbox full",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "mailbox is full",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "mailbox size limit",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "quota exceeded",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "over quota",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "exceeded storage",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "out of storage space",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "insufficient storage",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "disk quota",
        reason: Reason::MailboxFull,
    },
    Pattern {
        needle: "exceeds its quota",
        reason: Reason::MailboxFull,
    },
    // Size limits: Postfix ("message size exceeds"), Exim ("message too big"), Exchange
    // ("message exceeds the maximum size"), Sendmail ("message is too large").
    Pattern {
        needle: "message too large",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "message is too large",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "message too big",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "message size exceeds",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "exceeds the maximum size",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "size limit",
        reason: Reason::MessageTooLarge,
    },
    Pattern {
        needle: "message length exceeds",
        reason: Reason::MessageTooLarge,
    },
    // Disabled accounts: Gmail ("account that you tried to reach is disabled"), Yahoo
    // ("account is disabled"), Microsoft ("mailbox is disabled"), generic "suspended".
    Pattern {
        needle: "is disabled",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "been disabled",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "account disabled",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "mailbox disabled",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "suspended",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "deactivated",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "account is inactive",
        reason: Reason::MailboxDisabled,
    },
    Pattern {
        needle: "mailbox is inactive",
        reason: Reason::MailboxDisabled,
    },
    // Unknown hosts and domains: Postfix ("Host or domain name not found"), Exim
    // ("Unrouteable address"/"all relevant MX records point to non-existent hosts"),
    // Sendmail ("Host unknown"), null MX (RFC 7505, "does not accept mail").
    Pattern {
        needle: "host or domain name not found",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "host unknown",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "unknown host",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "host not found",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "domain not found",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "no such domain",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "domain does not exist",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "unrouteable",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "non-existent host",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "name or service not known",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "does not accept mail",
        reason: Reason::HostUnknown,
    },
    // Outlook.com / Hotmail: "the domain is not reachable".
    Pattern {
        needle: "domain is not reachable",
        reason: Reason::HostUnknown,
    },
    Pattern {
        needle: "nxdomain",
        reason: Reason::HostUnknown,
    },
    // Unknown users: Postfix ("User unknown in local recipient table"), qmail ("no mailbox
    // here by that name", "does not like recipient"), Exchange ("Recipient not found",
    // "RESOLVER.ADR.RecipNotFound"), Gmail ("does not exist"), Exim ("No such user"),
    // Sendmail ("User unknown"), Courier ("No such user"), Yahoo ("user doesn't have a").
    Pattern {
        needle: "user unknown",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "unknown user",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "no such user",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "user not found",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "recipient not found",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "recipnotfound",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "unknown recipient",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "recipient unknown",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "invalid recipient",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "invalid mailbox",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "no such mailbox",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "mailbox not found",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "no mailbox here",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "does not exist",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "doesn't exist",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "doesn't have a",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "address unknown",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "user not local",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "bad destination mailbox",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "not a valid mailbox",
        reason: Reason::UserUnknown,
    },
    // Rate limits: Gmail ("rate limit exceeded"), Microsoft ("temporarily rate limited"),
    // Postfix ("too many connections"), Yahoo ("[TS01] Messages from … temporarily deferred").
    Pattern {
        needle: "rate limit",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "rate-limit",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "too many connections",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "too many messages",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "too many recipients",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "throttl",
        reason: Reason::RateLimited,
    },
    Pattern {
        needle: "temporarily deferred",
        reason: Reason::RateLimited,
    },
    // Gave up after retries: Postfix ("delivery temporarily suspended" then expiry), Exim
    // ("retry timeout exceeded"), Sendmail ("Cannot send message for 5 days"), Gmail
    // ("has been delayed", "will be retried").
    Pattern {
        needle: "retry timeout exceeded",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "retry time not reached",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "delivery time expired",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "message expired",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "cannot send message for",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "could not be delivered for",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "giving up",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "has been delayed",
        reason: Reason::Expired,
    },
    Pattern {
        needle: "will be retried",
        reason: Reason::Expired,
    },
    // Network failures: Postfix ("Connection refused", "Connection timed out"), Gmail
    // ("did not accept our requests to connect"), OpenSMTPD ("Network error").
    Pattern {
        needle: "connection refused",
        reason: Reason::Network,
    },
    Pattern {
        needle: "connection timed out",
        reason: Reason::Network,
    },
    Pattern {
        needle: "connection reset",
        reason: Reason::Network,
    },
    Pattern {
        needle: "lost connection",
        reason: Reason::Network,
    },
    Pattern {
        needle: "network error",
        reason: Reason::Network,
    },
    Pattern {
        needle: "network is unreachable",
        reason: Reason::Network,
    },
    Pattern {
        needle: "no route to host",
        reason: Reason::Network,
    },
    Pattern {
        needle: "could not connect",
        reason: Reason::Network,
    },
    Pattern {
        needle: "requests to connect",
        reason: Reason::Network,
    },
    Pattern {
        needle: "socket error",
        reason: Reason::Network,
    },
    Pattern {
        needle: "timed out",
        reason: Reason::Network,
    },
    // Policy and spam blocks: Spamhaus/RBL listings, Gmail ("unsolicited", "5.7.26
    // authentication"), Microsoft ("blocked using", "reputation"), Postfix ("Relay access
    // denied", "Client host rejected"), Exim ("rejected by ACL"), Yahoo ("[BL21]").
    Pattern {
        needle: "spam",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "unsolicited",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "blocked",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "blacklist",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "blocklist",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "block list",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "listed",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "reputation",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "policy",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "relay access denied",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "relaying denied",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "relay not permitted",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "not permitted to relay",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "access denied",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "not authorized",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "authentication",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "dmarc",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "reverse dns",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "ptr record",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "client host rejected",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "sender address rejected",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "virus",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "content rejected",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "rejected by",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "filtered",
        reason: Reason::PolicyOrSpamBlock,
    },
    Pattern {
        needle: "refused",
        reason: Reason::PolicyOrSpamBlock,
    },
    // Generic "mailbox unavailable" (RFC 5321's 550 text): most often an unknown user.
    Pattern {
        needle: "mailbox unavailable",
        reason: Reason::UserUnknown,
    },
    Pattern {
        needle: "mailbox not available",
        reason: Reason::UserUnknown,
    },
];

/// The first pattern that matches the diagnostic text.
pub fn by_text(diagnostic: &str) -> Option<Reason> {
    let text = diagnostic.to_lowercase();
    PATTERNS
        .iter()
        .find(|p| text.contains(p.needle))
        .map(|p| p.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_status_wins() {
        assert_eq!(
            classify(Some("5.1.1"), Some(550), "blocked", None),
            Reason::UserUnknown
        );
        assert_eq!(
            classify(Some("4.2.2"), Some(452), "", None),
            Reason::MailboxFull
        );
        assert_eq!(
            classify(Some("5.7.1"), Some(550), "user unknown", None),
            Reason::PolicyOrSpamBlock
        );
    }

    #[test]
    fn text_decides_for_generic_codes() {
        assert_eq!(
            classify(
                Some("5.0.0"),
                Some(550),
                "Recipient address rejected: User unknown",
                None
            ),
            Reason::UserUnknown
        );
        assert_eq!(
            classify(None, None, "Mailbox is full", None),
            Reason::MailboxFull
        );
        assert_eq!(
            classify(None, Some(554), "Sorry, message looks like SPAM", None),
            Reason::PolicyOrSpamBlock
        );
        assert_eq!(classify(None, None, "", Some("delayed")), Reason::Expired);
        assert_eq!(
            classify(Some("2.0.0"), Some(250), "", Some("delivered")),
            Reason::Delivered
        );
    }

    #[test]
    fn classes() {
        assert_eq!(Reason::UserUnknown.class(), Some(BounceClass::Hard));
        assert_eq!(Reason::MailboxDisabled.class(), Some(BounceClass::Hard));
        assert_eq!(Reason::MailboxFull.class(), Some(BounceClass::Soft));
        assert_eq!(Reason::Delivered.class(), None);
    }
}
