//! Bounce classification: a reason for each failed recipient, and from the reason whether the
//! failure is hard (the address will never work: suppress at once) or soft (it may work later:
//! suppress only after repeated soft bounces).
//!
//! The evidence is weighed in one fixed order (also in the README's bounce section):
//!
//! 1. `Action: delivered|relayed|expanded` or a `2.x.x` code: a success report, not a failure.
//! 2. The enhanced status code (RFC 3463): the code in the remote server's own reply
//!    (`Diagnostic-Code`, or the SMTP reply quoted in the text) when it is specific, else the
//!    per-recipient `Status:` field when specific, else the first specific code in the text. A
//!    generic code (`X.0.0`, `X.y.0`) never beats a specific one, wherever it stands.
//! 3. The diagnostic text's meaning, from the one pattern table below ([`PATTERNS`]).
//! 4. Code and text together ([`decide`]): a policy or content rejection in the text beats a
//!    user-unknown code and any generic code, so a spam filter whose reply also says "unknown
//!    user" never becomes hard; text that says the user is unknown never turns a `5.7.x` policy
//!    code hard; an ambiguous code (`5.1.10`, `5.4.1`, `5.5.x`) lets the text decide.
//! 5. A temporary failure that the reporting MTA gave up on (`4.x.x` with `Action: failed`, or
//!    `Action: delayed`) is `expired` unless the text names something more precise.
//! 6. Only then the SMTP reply code alone (`552` full, `421`/`450`/`451`/`452` rate limited).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    UserUnknown,
    MailboxFull,
    HostUnknown,
    /// Closed, deleted or terminated for good (hard).
    MailboxDisabled,
    /// Suspended, disabled or inactive, often for a while only (soft: repeated soft bounces
    /// still suppress it).
    Suspended,
    /// The domain accepts no mail at all: null MX (RFC 7505) or an explicit "does not accept mail".
    DomainNoMail,
    MessageTooLarge,
    /// The receiving side's filter refused the message itself: spam, virus, content or the
    /// recipient's own filter settings.
    ContentRejected,
    /// The sender (IP, domain or envelope address) is refused: block lists, reputation, missing
    /// PTR, failed SPF/DKIM/DMARC, TLS required, sender address rejected.
    SenderBlocked,
    /// Other policy refusals: relaying denied, administrative prohibition.
    PolicyOrSpamBlock,
    RateLimited,
    Expired,
    Network,
    Other,
    /// A success notification (RFC 3464 `Action: delivered|relayed|expanded`), not a failure.
    Delivered,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Self::UserUnknown,
        Self::MailboxFull,
        Self::HostUnknown,
        Self::MailboxDisabled,
        Self::Suspended,
        Self::DomainNoMail,
        Self::MessageTooLarge,
        Self::ContentRejected,
        Self::SenderBlocked,
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
            Self::Suspended => "suspended",
            Self::DomainNoMail => "domain_no_mail",
            Self::MessageTooLarge => "message_too_large",
            Self::ContentRejected => "content_rejected",
            Self::SenderBlocked => "sender_blocked",
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

    /// Hard reasons say the address or its domain cannot receive mail, whoever sends it.
    /// Everything that depends on the sender, the content, the moment or a state the recipient
    /// can change (full, suspended) is soft.
    pub fn class(self) -> Option<BounceClass> {
        match self {
            Self::UserUnknown | Self::HostUnknown | Self::MailboxDisabled | Self::DomainNoMail => {
                Some(BounceClass::Hard)
            }
            Self::Delivered => None,
            _ => Some(BounceClass::Soft),
        }
    }

    /// Refusals that concern the sender or the message, not the address.
    fn is_policy(self) -> bool {
        matches!(
            self,
            Self::ContentRejected | Self::SenderBlocked | Self::PolicyOrSpamBlock
        )
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

/// Everything known about one failed recipient, before weighing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Evidence<'a> {
    /// The per-recipient `Status:` field of a `message/delivery-status` part.
    pub status_field: Option<&'a str>,
    /// The enhanced code inside the remote server's reply (`Diagnostic-Code` or quoted reply).
    pub reply_status: Option<&'a str>,
    /// The first specific enhanced code anywhere else in the recipient's text.
    pub text_status: Option<&'a str>,
    pub reply_code: Option<u16>,
    pub diagnostic: &'a str,
    pub action: Option<&'a str>,
}

impl Evidence<'_> {
    /// The code that counts (step 2 of the module's order).
    pub fn status(&self) -> Option<&str> {
        let candidates = [self.reply_status, self.status_field, self.text_status];
        candidates
            .iter()
            .flatten()
            .find(|s| !is_generic_status(s))
            .or_else(|| candidates.iter().flatten().next())
            .copied()
    }
}

/// `X.0.0`, `X.y.0` and sisimai-style pseudo codes (`X.0.9xx`) say only "failed".
pub fn is_generic_status(status: &str) -> bool {
    let mut it = status.split('.');
    let (_, subject, detail) = (it.next(), it.next(), it.next());
    detail == Some("0") || subject == Some("0")
}

/// Classifies one failed recipient from its evidence, in the module's order.
pub fn classify_evidence(e: &Evidence<'_>) -> Reason {
    classify_with_text(e, by_text(e.diagnostic))
}

/// [`classify_evidence`] with the diagnostic's pattern match already made.
pub fn classify_with_text(e: &Evidence<'_>, text: Option<Reason>) -> Reason {
    let action = e.action.map(str::to_ascii_lowercase);
    let status = e.status();
    if matches!(
        action.as_deref(),
        Some("delivered" | "relayed" | "expanded")
    ) || status.is_some_and(|s| s.starts_with("2."))
    {
        return Reason::Delivered;
    }
    let by_code = status.and_then(by_specific_status);
    let mut reason = decide(by_code, text);
    let temporary = status.is_some_and(|s| s.starts_with("4."))
        || (status.is_none() && e.reply_code.is_some_and(|c| (400..500).contains(&c)));
    let gave_up = action.as_deref() == Some("delayed")
        || (temporary && action.as_deref().is_none_or(|a| a == "failed"));
    if gave_up
        && matches!(
            reason,
            Some(Reason::Network | Reason::Other | Reason::HostUnknown) | None
        )
    {
        // The MTA retried a temporary condition until its queue lifetime ran out.
        reason = Some(Reason::Expired);
    }
    if let Some(r) = reason {
        return r;
    }
    if let Some(r) = status.and_then(by_status_class) {
        return r;
    }
    match e.reply_code {
        Some(552) => Reason::MailboxFull,
        Some(551) => Reason::UserUnknown,
        Some(421 | 450 | 451 | 452) => Reason::RateLimited,
        _ => Reason::Other,
    }
}

/// Classifies one failed recipient (the older entry point: one status, one text).
pub fn classify(
    status: Option<&str>,
    reply_code: Option<u16>,
    diagnostic: &str,
    action: Option<&str>,
) -> Reason {
    classify_evidence(&Evidence {
        status_field: status,
        reply_code,
        diagnostic,
        action,
        ..Evidence::default()
    })
}

/// Step 4: the code's reason and the text's reason together.
fn decide(code: Option<(Reason, Weight)>, text: Option<Reason>) -> Option<Reason> {
    let Some((by_code, weight)) = code else {
        return text;
    };
    let Some(by_text) = text else {
        return Some(by_code);
    };
    let chosen = if by_text.is_policy() {
        // A filter's refusal stays a refusal, whatever address words the reply also has.
        if matches!(weight, Weight::Strong) && !by_code.is_policy() {
            by_code
        } else {
            by_text
        }
    } else if by_code.is_policy() {
        // Text cannot make a policy code hard; it may still say it was only a rate limit.
        if by_text == Reason::RateLimited {
            by_text
        } else {
            by_code
        }
    } else if matches!(weight, Weight::Ambiguous) {
        by_text
    } else if by_code == Reason::UserUnknown
        && matches!(
            by_text,
            Reason::MailboxFull
                | Reason::MessageTooLarge
                | Reason::Suspended
                | Reason::MailboxDisabled
                | Reason::DomainNoMail
        )
    {
        // `5.1.1` is the code many servers give for any refusal at RCPT.
        by_text
    } else {
        by_code
    };
    Some(chosen)
}

/// How far a code's own meaning holds against the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weight {
    /// Means exactly one thing (`5.2.2`, `5.3.4`, `4.4.7`, `5.7.26`).
    Strong,
    /// Usually right, but servers reuse it for other refusals (`5.1.1`, `5.7.1`).
    Usual,
    /// Used by different MTAs for different things (`5.1.10`, `5.4.1`, `5.5.x`).
    Ambiguous,
}

/// The reason a specific enhanced status code gives, if it gives one.
pub fn specific_reason(status: &str) -> Option<Reason> {
    by_specific_status(status).map(|(r, _)| r)
}

/// RFC 3463 and its registry (IANA "SMTP Enhanced Status Codes").
fn by_specific_status(status: &str) -> Option<(Reason, Weight)> {
    use Weight::*;
    let mut it = status.split('.');
    let (class, subject, detail) = (it.next()?, it.next()?, it.next()?);
    let permanent = class == "5";
    Some(match (subject, detail) {
        ("1", "1") | ("1", "3") => (Reason::UserUnknown, Usual),
        // X.1.6 "destination mailbox has moved, no forwarding address".
        ("1", "6") => (Reason::UserUnknown, Strong),
        ("1", "2") => (Reason::HostUnknown, Usual),
        // X.1.7 / X.1.8: the sender's address is bad or its domain unknown.
        ("1", "7") | ("1", "8") => (Reason::SenderBlocked, Strong),
        // RFC 7505 null MX; Exchange reuses 5.1.10 for "recipient not found".
        ("1", "10") => (Reason::DomainNoMail, Ambiguous),
        ("4", "4") if permanent => (Reason::HostUnknown, Usual),
        // X.2.1 is "mailbox disabled", but GMX, Mail.ru and others answer it for unknown users.
        ("2", "1") => (Reason::Suspended, Ambiguous),
        ("2", "2") => (Reason::MailboxFull, Strong),
        ("2", "3") | ("3", "4") => (Reason::MessageTooLarge, Strong),
        ("4", "1") | ("4", "2") => (Reason::Network, Ambiguous),
        ("4", "6") => (Reason::Network, Usual),
        ("4", "7") => (Reason::Expired, Strong),
        ("4", "5") | ("4", "3") => (Reason::RateLimited, Usual),
        ("3", "2") => (Reason::RateLimited, Ambiguous),
        ("5", "3") => (Reason::RateLimited, Usual),
        ("7", "25" | "26" | "27" | "7" | "23" | "24" | "8" | "9" | "10" | "11") => {
            (Reason::SenderBlocked, Strong)
        }
        ("7", "28") => (Reason::RateLimited, Strong),
        ("7", d) if d != "0" => (Reason::PolicyOrSpamBlock, Usual),
        ("6", d) if d != "0" => (Reason::ContentRejected, Usual),
        _ => return None,
    })
}

/// What the status's subject digit alone says, when nothing else did.
fn by_status_class(status: &str) -> Option<Reason> {
    let mut it = status.split('.');
    let (_, subject) = (it.next()?, it.next()?);
    Some(match subject {
        "1" => Reason::UserUnknown,
        "2" => Reason::MailboxFull,
        "4" => Reason::Network,
        "6" => Reason::ContentRejected,
        "7" => Reason::PolicyOrSpamBlock,
        _ => return None,
    })
}

/// One wording → reason. `example` is a diagnostic as the named MTA or provider words it; the
/// unit test `every_pattern_has_a_working_example` checks each one.
pub struct Pattern {
    pub needle: &'static str,
    pub reason: Reason,
    pub example: &'static str,
}

const fn p(needle: &'static str, reason: Reason, example: &'static str) -> Pattern {
    Pattern {
        needle,
        reason,
        example,
    }
}

use Reason::{
    ContentRejected as Content, DomainNoMail as NoMail, Expired as Exp, HostUnknown as Host,
    MailboxDisabled as Closed, MailboxFull as Full, MessageTooLarge as Big, Network as Net, Other,
    PolicyOrSpamBlock as Policy, RateLimited as Rate, SenderBlocked as Sender, Suspended as Susp,
    UserUnknown as User,
};

/// The diagnostic wording table, lower case, matched on whitespace-squeezed lower-case text and
/// checked in order: the first needle found decides. Order matters where wordings overlap:
/// block lists before the word "spam", spam and policy before "unknown user" (a filter's reply
/// that also names the user is still a filter), Postfix's "delivery temporarily suspended"
/// before the mailbox "suspended", "domain does not exist" before "does not exist".
#[rustfmt::skip]
pub const PATTERNS: &[Pattern] = &[
    // — Sender refused by block lists and reputation (Spamhaus/SpamCop/Barracuda texts quoted
    //   by Postfix, Exim and Sendmail; Microsoft "banned sending IP"/"IP reputation"; Yahoo
    //   "[TSS04]"/"[BL21]"; Proofpoint "blocked using").
    // — URI block lists judge the links in the message, not the sender (SURBL/URIBL texts).
    p("uribl", Content, "550-REJECTED - Blacklisted URL in message. See http://lookup.uribl.com"),
    p("surbl", Content, "554 5.7.1 Message rejected: URL listed in multi.surbl.org"),
    p("url in message", Content, "550 Rejected: blacklisted URL in message"),
    // — Retries used up, said before anything else: product names such as "VirusWall" must
    //   not turn a retry report into a content refusal (InterScan, Exim warnings, SMTP32).
    p("maximum delivery attempts", Exp, "Reason: Exceeded Maximum Delivery Attempts."),
    p("attempt(s) to deliver", Exp, "This condition occurred after 30 attempt(s) to deliver over a period of 92 hour(s)"),
    p("not yet been delivered", Exp, "A message that you sent has not yet been delivered to one or more of its recipients after more than 24 hours on the queue"),
    p("spamhaus", Sender, "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
    p("spamcop", Sender, "553 Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1"),
    p("barracuda", Sender, "554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation"),
    p("blacklist", Sender, "550 5.7.1 Mail from IP 192.0.2.1 was rejected: IP blacklisted"),
    p("blocklist", Sender, "550 5.7.1 Your IP address is on our blocklist"),
    p("block list", Sender, "554 Your access to this mail system has been rejected due to the sending MTA's poor reputation. If you believe that this failure is in error, please contact the intended recipient via alternate means. (block list)"),
    p("dnsbl", Sender, "550 Rejected: 192.0.2.1 listed in dnsbl"),
    p("is listed", Sender, "550 5.7.1 Your IP 192.0.2.1 is listed at bl.example.net"),
    p("listed at", Sender, "554 Rejected because 192.0.2.1 listed at sbl.example.org"),
    p("listed on", Sender, "550 Sending address listed on a block service"),
    p("reputation", Sender, "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation."),
    p("banned sending ip", Sender, "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus; banned sending IP"),
    p("[ts0", Sender, "421 4.7.0 [TS03] All messages from 192.0.2.1 will be permanently deferred"),
    p("[bl2", Sender, "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1"),
    // — Content refused by the receiving filter (SpamAssassin/Amavis via Postfix "Message
    //   content rejected"; Gmail "likely unsolicited mail"; Exchange "Content filter";
    //   Sophos/ClamAV "virus"; Mimecast "spam detected"; carriers' "rejected by the recipient's
    //   settings" and the Japanese wording 受信拒否 "reception refused").
    p("spam", Content, "550 5.7.1 Message rejected as spam by Content Filtering."),
    p("unsolicited", Content, "550-5.7.1 Our system has detected that this message is likely unsolicited mail."),
    p("virus", Content, "554 5.7.1 Message rejected: a virus was found (Eicar-Test-Signature)"),
    p("malware", Content, "550 5.7.1 Message rejected: contains malware"),
    p("infected", Content, "554 5.6.0 Message infected with Worm.Example"),
    p("phish", Content, "550 5.7.1 Message rejected because of phishing content"),
    p("content rejected", Content, "550 5.7.1 Message content rejected, UCE"),
    p("content filter", Content, "550 5.7.1 Rejected by content filter"),
    p("message content", Content, "554 5.7.1 Rejected by policy: message content not accepted"),
    p("filtered", Content, "550 Message filtered. Please see the FAQs section on spam"),
    p("suspicious", Content, "554 5.7.1 Message contains suspicious attachment"),
    p("attachment type", Content, "552 5.7.0 This message was blocked because its content presents a potential security issue: attachment type not allowed"),
    p("bulk mail", Content, "554 Bulk mail not accepted"),
    p("not accepting mail from", Content, "they are not accepting mail from a@example.com"),
    p("recipient preferences", Content, "550 5.7.1 Delivery refused due to recipient preferences"),
    p("blocked by the recipient", Content, "550 You have been blocked by the recipient"),
    p("refuse to receive", Content, "550 The recipient has chosen to refuse to receive your mail"),
    p("rejected by recipient", Content, "550 Message rejected by recipient's filter"),
    p("受信拒否", Content, "受信拒否設定により送信できませんでした"),
    p("拒否", Content, "指定された宛先への送信は拒否されました"),
    // — Sender refused: authentication, PTR, TLS and envelope sender (Gmail "5.7.26
    //   unauthenticated", "DMARC policy"; Postfix "Client host rejected: cannot find your
    //   hostname"; Exim "sender verify failed"; Microsoft "Sender not authorized").
    p("unauthenticated", Sender, "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users"),
    p("authentication", Sender, "550 5.7.1 Email rejected per DMARC authentication failure"),
    p("dmarc", Sender, "550 5.7.1 Rejected by DMARC policy for example.com"),
    p("spf", Sender, "550 5.7.23 SPF validation failed"),
    p("dkim", Sender, "550 5.7.20 No passing DKIM signature found"),
    p("reverse dns", Sender, "550 5.7.25 The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP (reverse DNS)."),
    p("ptr record", Sender, "550 5.7.25 The sending IP does not have a PTR record"),
    p("cannot find your hostname", Sender, "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]"),
    p("cannot find your reverse hostname", Sender, "550 5.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]"),
    p("client host rejected", Sender, "554 5.7.1 <mail.example.com[192.0.2.1]>: Client host rejected: Access denied"),
    p("sender address rejected", Sender, "553 5.1.8 <a@example.com>: Sender address rejected: Domain not found"),
    p("sender verify failed", Sender, "550 Sender verify failed"),
    p("sender rejected", Sender, "550 5.7.1 Sender rejected"),
    p("sender denied", Sender, "550 5.7.1 Sender denied"),
    p("sender not authorized", Sender, "550 5.7.1 Sender not authorized"),
    p("not authorized to send", Sender, "550 5.7.1 You are not authorized to send mail"),
    p("starttls", Sender, "530 5.7.0 Must issue a STARTTLS command first"),
    p("tls required", Sender, "550 5.7.10 TLS required for this recipient"),
    p("encryption required", Sender, "530 5.7.11 Encryption required for requested authentication mechanism"),
    p("blocked", Sender, "550 5.7.1 Connection from 192.0.2.1 blocked"),
    p("purported responsible address", Sender, "550 5.7.1 can't determine Purported Responsible Address"),
    p("unroutable sender", Sender, "550 Unroutable sender address"),
    p("not a member", Sender, "Your message was rejected: you are not a member of the mailing list."),
    p("permission to post", Sender, "the group you tried to contact may not exist, or you may not have permission to post messages to the group"),
    p("recipient address rejected: access denied", User, "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"),
    p("rejected by the gateway", Sender, "550 Your message has been rejected by the gateway"),
    // — Relay and other policy refusals (Postfix "Relay access denied", Sendmail "Relaying
    //   denied", Exim "administrative prohibition", Exchange "not permitted to relay").
    p("relay access denied", Policy, "554 5.7.1 <a@example.org>: Relay access denied"),
    p("relaying denied", Policy, "550 5.7.1 <a@example.org>... Relaying denied"),
    p("relay not permitted", Policy, "550 relay not permitted"),
    p("not permitted to relay", Policy, "550 5.7.1 Unable to relay: not permitted to relay"),
    p("unable to relay", Policy, "550 5.7.1 Unable to relay for a@example.org"),
    p("we do not relay", Policy, "553 sorry, that domain isn't in my list of allowed rcpthosts; we do not relay"),
    p("allowed rcpthosts", Policy, "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
    p("administrative prohibition", Policy, "550 Administrative prohibition"),
    p("policy", Policy, "550 5.7.1 Rejected for policy reasons"),
    p("prohibited", Policy, "550 Mail prohibited"),
    // Bare refusals of the sender, after the relay wordings that contain them.
    p("access denied", Sender, "550 5.7.1 Access denied"),
    p("not authorized", Sender, "550 5.7.1 Not authorized"),
    // — Mailbox over quota (Postfix/Dovecot "Mailbox full", "Quota exceeded"; Exchange
    //   "mailbox is full"; Gmail "out of storage space"/"over quota"; Sendmail "exceeded
    //   storage allocation"; the Japanese 容量 "capacity").
    p("mailbox full", Full, "552 5.2.2 <a@example.org>: Mailbox full"),
    p("mailbox is full", Full, "554 5.2.2 mailbox is full"),
    p("mailbox size limit", Full, "552 5.2.2 Mailbox size limit exceeded"),
    p("quota exceed", Full, "452 4.2.2 Quota exceeded (mailbox for user is full)"),
    p("over quota", Full, "552-5.2.2 The email account that you tried to reach is over quota."),
    p("over the quota", Full, "552 User is over the quota"),
    p("exceeded storage", Full, "552 5.2.2 Exceeded storage allocation"),
    p("out of storage space", Full, "452-4.2.2 The recipient's inbox is out of storage space."),
    p("insufficient storage", Full, "452 4.3.1 Insufficient storage"),
    p("disk quota", Full, "552 recipient reached disk quota"),
    p("exceeds its quota", Full, "552 Message exceeds its quota"),
    p("exceeded its quota", Full, "552 Mailbox has exceeded its quota"),
    p("exceed the quota", Full, "552 Message would exceed the quota"),
    p("quota full", Full, "522 Mailbox quota full"),
    p("mailfolder is full", Full, "552 Requested mail action aborted: mailfolder is full"),
    p("mailbox has exceeded", Full, "552 Mailbox has exceeded the limit"),
    p("not enough space", Full, "452 Not enough space on the disk for this mailbox"),
    p("account is full", Full, "552 Account is full"),
    p("full mailbox", Full, "550 Full mailbox"),
    p("overquota", Full, "550 User account is overquota"),
    p("exceeding their quota", Full, "This person's account is exceeding their quota."),
    p("space not enough", Full, "ErrMsg=mail box space not enough"),
    p("容量", Full, "受信者のメールボックスの容量が一杯です"),
    // — Size limits (Postfix "message size exceeds fixed limit", Exim "message too big",
    //   Exchange "exceeds the maximum size", Sendmail "Message is too large", KDDI "your mail
    //   was too large").
    p("message too large", Big, "552 5.3.4 Message too large"),
    p("message is too large", Big, "552 5.2.3 Message is too large"),
    p("message too big", Big, "552 Message too big"),
    p("message size exceeds", Big, "552 5.3.4 Message size exceeds fixed limit"),
    p("exceeded the maximum incoming", Big, "This mail message has exceeded the maximum incoming message size."),
    p("exceeds the maximum", Big, "552 5.3.4 Message exceeds the maximum size allowed"),
    p("maximum message size", Big, "552 Maximum message size exceeded"),
    p("size limit", Big, "552 Message exceeds size limit"),
    p("message length exceeds", Big, "552 5.3.4 Message length exceeds administrative limit"),
    p("was too large", Big, "because your mail was too large, hence rejected by the system"),
    p("larger than", Big, "552 Message is larger than allowed"),
    // — Gave up after retries (Postfix "delivery temporarily suspended" at queue expiry, Exim
    //   "retry timeout exceeded", Sendmail "Cannot send message for 5 days", Exchange
    //   "message has expired", Gmail "has been delayed"/"will be retried").
    p("delivery temporarily suspended", Exp, "delivery temporarily suspended: connect to mx.example.org[192.0.2.1]:25: Connection timed out"),
    p("retry timeout exceeded", Exp, "retry timeout exceeded"),
    p("retry time not reached", Exp, "retry time not reached for any host after a long failure period"),
    p("delivery time expired", Exp, "Delivery time expired"),
    p("message expired", Exp, "Message expired"),
    p("message has expired", Exp, "Message has expired"),
    p("cannot send message for", Exp, "Cannot send message for 5 days"),
    p("could not be delivered for", Exp, "Your message could not be delivered for more than 5 day(s)"),
    p("in the queue too long", Exp, "This message has been in the queue too long."),
    p("queue period", Exp, "host was not reachable within the allowed queue period"),
    p("has been delayed", Exp, "Delivery to the following recipient has been delayed"),
    p("will be retried", Exp, "Message will be retried for 2 more day(s)"),
    p("multiple retries", Exp, "Unable to deliver message after multiple retries"),
    p("still trying", Exp, "The mail system will continue delivery attempts; still trying"),
    p("could not send message for past", Exp, "Warning: could not send message for past 4 hours"),
    p("timed out while", Exp, "Message timed out while waiting for response"),
    // — Suspended and disabled mailboxes (Gmail "account that you tried to reach is
    //   disabled", Yahoo "This account has been disabled or discontinued", Microsoft
    //   "mailbox is disabled", generic "suspended"/"inactive").
    p("is disabled", Susp, "550-5.2.1 The email account that you tried to reach is disabled."),
    p("been disabled", Susp, "Sorry your message cannot be delivered. This account has been disabled or discontinued."),
    p("account disabled", Susp, "550 5.2.1 Account disabled"),
    p("mailbox disabled", Susp, "550 5.2.1 Mailbox disabled, not accepting messages"),
    p("suspended", Susp, "550 5.2.1 This mailbox has been suspended"),
    p("suspend", Susp, "550 Account suspend"),
    p("inactive", Susp, "550 5.2.1 Mailbox is inactive"),
    p("deactivated", Susp, "550 This account has been deactivated"),
    p("is locked", Susp, "550 Mailbox is locked"),
    p("frozen", Susp, "550 Account frozen"),
    p("not active", Susp, "550 Recipient mailbox not active"),
    // — Closed for good (ISP wordings "account has been closed", "terminated").
    p("account closed", Closed, "550 Account closed"),
    p("been closed", Closed, "550 This account has been closed"),
    p("account terminated", Closed, "550 Account terminated"),
    p("been terminated", Closed, "550 This account has been terminated"),
    p("no longer in use", Closed, "550 This address is no longer in use"),
    // — Domains that accept no mail (Postfix "does not accept mail (nullMX)", RFC 7505).
    p("does not accept mail", NoMail, "556 5.1.10 Domain example.org does not accept mail (nullMX)"),
    p("null mx", NoMail, "550 5.1.10 Recipient address has null MX"),
    p("nullmx", NoMail, "556 5.1.10 example.org does not accept mail (nullMX)"),
    p("accepts no mail", NoMail, "550 Domain accepts no mail"),
    p("not accept any mail", NoMail, "550 This domain does not accept any mail"),
    // — Unknown hosts and domains (Postfix "Host or domain name not found", Exim
    //   "Unrouteable address", "all relevant MX records point to non-existent hosts", Sendmail
    //   "Host unknown", Outlook.com "the domain is not reachable").
    p("host not found, try again", Net, "Name service error for domain example.org: Host not found, try again"),
    p("host or domain name not found", Host, "Host or domain name not found. Name service error for name=example.invalid type=A: Host not found"),
    p("host unknown", Host, "550 5.1.2 Host unknown (Name server: example.invalid: host not found)"),
    p("unknown host", Host, "Unknown host example.invalid"),
    p("host not found", Host, "Host not found"),
    p("domain not found", Host, "550 5.1.2 Domain not found"),
    p("no such domain", Host, "550 No such domain"),
    p("domain does not exist", Host, "550 5.1.2 The domain does not exist"),
    p("unknown domain", Host, "550 5.1.2 Recipient address rejected: unknown domain"),
    p("unrouteable", Host, "Unrouteable address"),
    p("non-existent host", Host, "all relevant MX records point to non-existent hosts"),
    p("name or service not known", Host, "Name or service not known"),
    p("domain is not reachable", Host, "554 5.5.0 The domain is not reachable"),
    p("nxdomain", Host, "DNS lookup returned NXDOMAIN"),
    p("no such host", Host, "no such host"),
    p("domain must exist", Host, "553 Recipient domain must exist"),
    p("domain name not found", Host, "DNS Error: Domain name not found"),
    // — Unknown users (Postfix "User unknown in local recipient table", qmail "no mailbox here
    //   by that name"/"does not like recipient", Exchange "RESOLVER.ADR.RecipNotFound"/"couldn't
    //   be found", Office 365 "Recipient address rejected: Access denied", Gmail "does not
    //   exist", Exim/Courier "No such user", Yahoo "doesn't have a … account", Lotus "not
    //   listed in Domino Directory", carriers' 宛先不明 "address unknown").
    p("user unknown", User, "550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in local recipient table"),
    p("unknown user", User, "550 5.1.1 unknown user"),
    p("user is unknown", User, "550 User is unknown"),
    p("no such user", User, "550 No such user here"),
    p("user not found", User, "550 5.1.1 User not found"),
    p("recipient not found", User, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
    p("recipnotfound", User, "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found"),
    p("unknown recipient", User, "550 5.1.1 Unknown recipient"),
    p("recipient unknown", User, "550 Recipient unknown"),
    p("invalid recipient", User, "550 Invalid recipient <a@example.org>"),
    p("invalid mailbox", User, "550 Invalid mailbox"),
    p("no such mailbox", User, "550 No such mailbox"),
    p("mailbox not found", User, "550 Mailbox not found"),
    p("no mailbox here", User, "Sorry, no mailbox here by that name. (#5.1.1)"),
    p("does not like recipient", User, "Remote host said: 550 sorry, no mailbox here by that name (#5.7.17); does not like recipient"),
    p("couldn't be found", User, "The email address you entered couldn't be found."),
    p("wasn't found", User, "The email address wasn't found at the destination domain."),
    p("not listed in", User, "User kijitora not listed in Domino Directory"),
    p("does not exist", User, "550-5.1.1 The email account that you tried to reach does not exist."),
    p("user not exist", User, "550 <a@example.org>... User not exist"),
    p("doesn't exist", User, "550 Address doesn't exist"),
    p("doesn't have a", User, "This user doesn't have a example.com account"),
    p("address unknown", User, "550 Address unknown"),
    p("addressee unknown", User, "550 Addressee unknown"),
    p("unknown address", User, "550 Unknown address"),
    p("unknown local part", User, "550 Unknown local part a in <a@example.org>"),
    p("unknown mailbox", User, "550 Unknown mailbox"),
    p("user not local", User, "551 User not local; please try <a@example.net>"),
    p("bad destination mailbox", User, "550 5.1.1 Bad destination mailbox address"),
    p("not a valid mailbox", User, "550 Not a valid mailbox"),
    p("not a valid user", User, "550 Not a valid user"),
    p("no such recipient", User, "550 No such recipient"),
    p("no such account", User, "550 No such account"),
    p("not our customer", User, "554 delivery error: dd Not a valid recipient - not our customer"),
    p("not a valid recipient", User, "554 delivery error: dd Not a valid recipient"),
    p("invalid address", User, "550 Invalid address"),
    p("unknown or illegal alias", User, "550 Unknown or illegal alias"),
    p("has moved", User, "551 5.1.6 Mailbox has moved"),
    p("no longer valid", User, "this email address is wrong or no longer valid"),
    p("recipient name is not recognized", User, "The recipient name is not recognized"),
    p("user not known", User, "Your message has encountered delivery problems to local user a. User not known"),
    p("invalid final delivery", User, "Invalid final delivery userid: a@example.org"),
    p("n'existe pas", User, "L'adresse de messagerie référencée ci-dessus n'existe pas."),
    p("宛先不明", User, "宛先不明のため送信できませんでした"),
    p("存在しない", User, "指定されたアドレスは存在しないメールアドレスです"),
    // — Rate limits and connection limits (Gmail "rate limit exceeded", Microsoft
    //   "temporarily rate limited", Postfix/Exim "too many connections", Yahoo "temporarily
    //   deferred").
    p("rate limit", Rate, "421 4.7.28 Rate limit exceeded for 192.0.2.1"),
    p("rate-limit", Rate, "450 4.7.1 rate-limited"),
    p("unusual rate", Rate, "421 4.7.0 Our system has detected an unusual rate of mail originating from your IP address"),
    p("too many connections", Rate, "421 4.7.0 Too many connections from your host"),
    p("too many concurrent", Rate, "421 Too many concurrent SMTP connections"),
    p("too many messages", Rate, "452 4.5.3 Too many messages in this session"),
    p("too many recipients", Rate, "452 4.5.3 Too many recipients"),
    p("too many sessions", Rate, "421 Too many sessions"),
    p("connection limit", Rate, "421 Connection limit reached"),
    p("throttl", Rate, "451 Throttled: too much mail"),
    p("temporarily deferred", Rate, "421 Messages from 192.0.2.1 temporarily deferred"),
    p("sending limit", Rate, "550 5.4.5 Daily sending limit exceeded"),
    p("try again later", Rate, "451 4.3.2 Please try again later"),
    // — Network failures (Postfix "Connection refused"/"Connection timed out", OpenSMTPD
    //   "Network error", Gmail "did not accept our requests to connect", Exim "lost connection").
    p("connection refused", Net, "connect to mx.example.org[192.0.2.1]:25: Connection refused"),
    p("connection timed out", Net, "connect to mx.example.org[192.0.2.1]:25: Connection timed out"),
    p("connection reset", Net, "Connection reset by peer"),
    p("lost connection", Net, "lost connection with mx.example.org[192.0.2.1] while receiving the initial server greeting"),
    p("network error", Net, "Network error on destination MXs"),
    p("network is unreachable", Net, "Network is unreachable"),
    p("no route to host", Net, "No route to host"),
    p("could not connect", Net, "Could not connect to mx.example.org"),
    p("requests to connect", Net, "The recipient server did not accept our requests to connect."),
    p("socket error", Net, "Socket error"),
    p("timed out", Net, "SMTP timed out"),
    p("host is unreachable", Net, "host is unreachable"),
    p("host name lookup failure", Net, "host name lookup failure"),
    p("mail loop", Net, "Mail loop detected"),
    p("loops back to myself", Net, "mail for example.org loops back to myself"),
    p("looping", Net, "554 Message looping (received 6 times)"),
    p("too many hops", Net, "554 Too many hops"),
    p("routing loop", Net, "554 5.4.6 Message probably in a routing loop"),
    // — The receiving system's own trouble (Sendmail "Local configuration error", Postfix
    //   "mail system configuration error", procmail/maildrop "Command died with status"):
    //   nothing to do with the address, so neither hard nor a policy.
    p("configuration error", Other, "451 4.3.0 Local configuration error"),
    p("local error in processing", Other, "451 4.3.0 Requested action aborted: local error in processing"),
    p("command died with status", Other, "Command died with status 1: \"/usr/bin/procmail\""),
    p("internal error", Other, "451 4.3.0 Internal error, please try again"),
    // — Refusals whose meaning is only "no" (RFC 5321's 550 wording and sender-side
    //   refusals); last, so anything more precise above wins.
    p("refused", Sender, "554 Transaction refused"),
    p("mailbox unavailable", User, "550 Requested action not taken: mailbox unavailable"),
    p("mailbox not available", User, "550 Mailbox not available"),
];

/// The first pattern that matches the diagnostic text.
pub fn by_text(diagnostic: &str) -> Option<Reason> {
    if diagnostic.is_empty() {
        return None;
    }
    let text = squeeze_lower(diagnostic);
    PATTERNS
        .iter()
        .find(|p| text.contains(p.needle))
        .map(|p| p.reason)
}

/// Lower case with runs of whitespace as one space: folded lines break phrases otherwise.
fn squeeze_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_has_a_working_example() {
        for p in PATTERNS {
            assert!(
                squeeze_lower(p.example).contains(p.needle),
                "example for {:?} does not contain it",
                p.needle
            );
            assert_eq!(
                by_text(p.example),
                Some(p.reason),
                "pattern {:?}: its example {:?} is taken by an earlier pattern",
                p.needle,
                p.example
            );
        }
    }

    #[test]
    fn evidence_order() {
        // A specific code in the reply beats the Status field's.
        let e = Evidence {
            status_field: Some("5.1.1"),
            reply_status: Some("5.7.1"),
            diagnostic: "550 5.7.1 Mail from 192.0.2.1 refused: IP blacklisted",
            ..Evidence::default()
        };
        assert_eq!(classify_evidence(&e), Reason::SenderBlocked);
        // A generic code never beats a specific one.
        let e = Evidence {
            status_field: Some("5.0.0"),
            text_status: Some("5.2.2"),
            ..Evidence::default()
        };
        assert_eq!(classify_evidence(&e), Reason::MailboxFull);
        // A filter that also says "unknown user" is not hard.
        assert_eq!(
            classify(
                Some("5.1.1"),
                Some(550),
                "550 5.1.1 unknown user or message looks like spam",
                None
            ),
            Reason::ContentRejected
        );
        // Text saying "unknown user" does not make a 5.7 policy code hard.
        assert_eq!(
            classify(Some("5.7.1"), Some(550), "user unknown", None),
            Reason::PolicyOrSpamBlock
        );
        // Exchange's 5.1.10 with "recipient not found" is an unknown user, not null MX.
        assert_eq!(
            classify(
                Some("5.1.10"),
                Some(550),
                "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
                None
            ),
            Reason::UserUnknown
        );
        assert_eq!(
            classify(Some("5.1.10"), Some(556), "", None),
            Reason::DomainNoMail
        );
        // A temporary failure the MTA gave up on.
        assert_eq!(
            classify(
                Some("4.4.1"),
                None,
                "connect to mx.example.org: Connection timed out",
                Some("failed")
            ),
            Reason::Expired
        );
        assert_eq!(
            classify(
                Some("5.0.0"),
                None,
                "Network error on destination MXs",
                Some("failed")
            ),
            Reason::Network
        );
        assert_eq!(
            classify(Some("4.4.1"), None, "", Some("failed")),
            Reason::Expired
        );
        assert_eq!(classify(None, None, "", Some("delayed")), Reason::Expired);
        assert_eq!(
            classify(Some("2.0.0"), Some(250), "", Some("delivered")),
            Reason::Delivered
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
            classify(
                Some("5.2.1"),
                Some(550),
                "The email account that you tried to reach is disabled.",
                None
            ),
            Reason::Suspended
        );
    }

    #[test]
    fn classes() {
        assert_eq!(Reason::UserUnknown.class(), Some(BounceClass::Hard));
        assert_eq!(Reason::DomainNoMail.class(), Some(BounceClass::Hard));
        assert_eq!(Reason::MailboxDisabled.class(), Some(BounceClass::Hard));
        assert_eq!(Reason::Suspended.class(), Some(BounceClass::Soft));
        assert_eq!(Reason::ContentRejected.class(), Some(BounceClass::Soft));
        assert_eq!(Reason::SenderBlocked.class(), Some(BounceClass::Soft));
        assert_eq!(Reason::MailboxFull.class(), Some(BounceClass::Soft));
        assert_eq!(Reason::Delivered.class(), None);
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }
}
