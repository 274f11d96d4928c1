//! Delivery-status notifications: recognising a report (RFC 3464 parts, daemon senders, bounce
//! subjects, the opening words of qmail, Postfix, Exim, Exchange, James, fml and the Japanese
//! carriers), its recipients (the `message/delivery-status` fields when the report has them,
//! else the human-readable text, decoded from its charset), the evidence for each recipient
//! that `classify` weighs, and the returned message's identity. Never panics on any input, and
//! reads each message in one pass: at most [`MAX_RECIPIENTS`] recipients per report.

use mail_parser::{Message, MimeHeaders};

use super::classify::{BounceClass, Evidence, Reason};

/// One recipient of a delivery-status notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DsnRecipient {
    pub address: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub reply_code: Option<u16>,
    pub diagnostic: Option<String>,
    pub class: Option<BounceClass>,
    pub reason: Reason,
}

impl DsnRecipient {
    /// A report that is not a DSN (an automatic reply): only who sent it and its note.
    pub fn reported_by(address: Option<String>, diagnostic: Option<String>) -> Self {
        Self {
            address,
            action: None,
            status: None,
            reply_code: None,
            diagnostic,
            class: None,
            reason: Reason::Other,
        }
    }
}

/// Whether the message presents itself as a delivery report: a `multipart/report` or
/// `message/delivery-status` part, a daemon sender, a bounce subject, an Exim
/// `X-Failed-Recipients` header, or the opening words of a known MTA's plain-text report.
pub fn looks_like_dsn(message: &Message<'_>) -> bool {
    if has_part(message, "message", "delivery-status") {
        return true;
    }
    if let Some(ct) = message.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
    {
        return true;
    }
    if message.header_raw("x-failed-recipients").is_some() {
        return true;
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_name = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .unwrap_or("")
        .to_lowercase();
    let subject = message.subject().unwrap_or("").to_lowercase();
    let null_sender = message.from().is_some() && from.is_empty();
    let daemon = null_sender
        || DAEMON_SENDERS
            .iter()
            .any(|d| from.starts_with(d) || from_name.contains(d));
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    // The envelope sender of a report is null (`Return-Path: <>` or `<MAILER-DAEMON>`, as the
    // final MTA records it); auto-replies share that, so they are told apart first.
    let null_envelope = message.header_raw("return-path").is_some_and(|v| {
        let v = v
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        v.is_empty() || v.eq_ignore_ascii_case("mailer-daemon")
    }) && !super::reply::is_auto_reply(message)
        && !super::reply::reads_like_auto_reply(message);
    // fml (Japanese mailing-list manager) reports refusals under its own headers.
    let fml_report = message.header_raw("x-mlserver").is_some()
        && ["report", "error", "reject", "not member", "deny"]
            .iter()
            .any(|w| subject.contains(w));
    daemon || bounce_subject || null_envelope || fml_report || opens_like_a_report(message)
}

/// Sender local parts and display names of delivery reports.
const DAEMON_SENDERS: [&str; 10] = [
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "mail delivery",
    "mail administrator",
    "mail delivery subsystem",
    "mail.delivery",
    "maildelivery",
    "mdaemon@",
];

/// Subjects of delivery reports (Sendmail, Postfix, Exim, qmail, Exchange, Gmail, KDDI/au
/// "Mail System Error - Returned Mail", Apache James "[BOUNCE]", fml "fml status report", Amazon
/// SNS "AWS Notification Message", French, German, Japanese 不達/配信エラー).
const BOUNCE_SUBJECTS: [&str; 34] = [
    "undeliver",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failure notice",
    "failure delivery",
    "returned mail",
    "mail delivery failed",
    "delivery notification",
    "non remis",
    "unzustellbar",
    "could not be delivered",
    "not delivered",
    "warning: message",
    "warning: could not send",
    "delayed mail",
    "mail could not be delivered",
    "returned to sender",
    "mail system error",
    "[bounce]",
    "fml status report",
    "aws notification message",
    "nondeliverable",
    "non-deliverable",
    "non-delivery",
    "delivery report",
    "message delivery failure",
    "delivery problem",
    "mail error",
    "user unknown",
    "不達",
    "配信エラー",
    "送信エラー",
];

/// Opening words that only MTAs write (qmail, Apache James, Postfix, Exim, Exchange, Gmail,
/// KDDI/au, DoCoMo, fml, Amazon SES JSON), looked for at the start of the text only.
const REPORT_OPENINGS: [&str; 17] = [
    "this is the qmail-send program",
    "i'm afraid i wasn't able to deliver your message",
    "this is the mail system at host",
    "this message was created automatically by mail delivery software",
    "delivery has failed to these recipients",
    "your message wasn't delivered",
    "the following addresses had permanent fatal errors",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "the following recipients did not receive this message",
    "your mail sent on:",
    "could not be delivered to:",
    "unable to deliver message to the following address",
    "\"notificationtype\"",
    "\"bouncedrecipients\"",
    "failed recipient(s):",
    "was not delivered to:",
];

fn opens_like_a_report(message: &Message<'_>) -> bool {
    let Some(body) = message.body_text(0) else {
        return false;
    };
    let mut end = body.len().min(4096);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let head = body[..end].to_lowercase();
    REPORT_OPENINGS.iter().any(|o| head.contains(o))
}

pub fn has_part(message: &Message<'_>, ctype: &str, subtype: &str) -> bool {
    message.parts.iter().any(|p| is_type(p, ctype, subtype))
}

fn is_type(part: &mail_parser::MessagePart<'_>, ctype: &str, subtype: &str) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
    })
}

/// At most this many recipients are read from one report: fairsend sends one recipient per
/// transaction, so a report naming thousands is either a relay's digest or an attack.
pub const MAX_RECIPIENTS: usize = 1_000;

/// The recipients of a delivery report, each classified.
pub fn recipients(
    message: &Message<'_>,
    own_addresses: &dyn Fn(&str) -> bool,
) -> Vec<DsnRecipient> {
    let from_fields = structured(message);
    let text = bounce_text(message);
    if !from_fields.is_empty() {
        let single = from_fields.len() == 1;
        // The human text speaks for the recipient only when there is one.
        let (text_status, text_excerpt) = if single {
            (best_status(&text), excerpt(&text))
        } else {
            (None, String::new())
        };
        return from_fields
            .into_iter()
            .map(|f| {
                let diagnostic = f.diagnostic.clone().unwrap_or_default();
                let use_text = single && super::classify::by_text(&diagnostic).is_none();
                let combined;
                let words = if use_text && !text_excerpt.is_empty() {
                    combined = format!("{diagnostic} {text_excerpt}");
                    combined.as_str()
                } else {
                    diagnostic.as_str()
                };
                let reply_status = best_status(&diagnostic);
                let (status, action) = (f.status.clone(), f.action.clone());
                let evidence = Evidence {
                    status_field: status.as_deref(),
                    reply_status: reply_status.as_deref(),
                    text_status: if use_text {
                        text_status.as_deref()
                    } else {
                        None
                    },
                    reply_code: f
                        .reply_code
                        .or_else(|| use_text.then(|| reply_code(&text)).flatten()),
                    diagnostic: words,
                    action: action.as_deref(),
                };
                let shown = f.diagnostic.clone().or_else(|| {
                    (f.status.is_none() && !text_excerpt.is_empty()).then(|| text_excerpt.clone())
                });
                finish(f, &evidence, shown)
            })
            .collect();
    }
    from_text(message, &text, own_addresses)
}

/// The first specific enhanced code in `text`, else its first code.
pub fn best_status(text: &str) -> Option<String> {
    let mut first = None;
    // A `2.x.x` in a failure's text is a version number or a quoted earlier success.
    for s in enhanced_status_iter(text)
        .filter(|s| !s.starts_with("2."))
        .take(32)
    {
        if !super::classify::is_generic_status(&s) {
            return Some(s);
        }
        first.get_or_insert(s);
    }
    first
}

/// Weighs the evidence (see `classify`) and fills in the recipient's reason and class, then
/// applies what the SMTP stage of the refusal says (step 4b of the evidence order).
fn finish(mut r: DsnRecipient, e: &Evidence<'_>, shown: Option<String>) -> DsnRecipient {
    let by_text = super::classify::by_text(e.diagnostic);
    r.reason = super::classify::classify_with_text(e, by_text);
    let specific_code = e.status().is_some_and(|s| {
        !super::classify::is_generic_status(s) && super::classify::specific_reason(s).is_some()
    });
    let stage = smtp_stage(e.diagnostic);
    if r.reason == Reason::UserUnknown
        && !address_code(e.status())
        && !matches!(stage, Some(Stage::Rcpt | Stage::MailFrom))
    {
        // Hard needs proof: an address status code (X.1.x) or a refusal known to answer RCPT
        // TO. "Unknown user" wording alone is what filters at DATA answer too, so it is a
        // content refusal until proven otherwise (sisimai's `filtered` draws the same line).
        r.reason = Reason::ContentRejected;
    }
    match stage {
        // The server accepted RCPT TO, so the mailbox exists: a refusal at DATA is a filter.
        Some(Stage::Data)
            if !specific_code
                && matches!(by_text, None | Some(Reason::UserUnknown))
                && r.reason != Reason::Delivered =>
        {
            r.reason = Reason::ContentRejected;
        }
        // A refusal of MAIL FROM concerns the sender, whatever else the reply says.
        Some(Stage::MailFrom)
            if matches!(
                r.reason,
                Reason::UserUnknown | Reason::HostUnknown | Reason::Other
            ) =>
        {
            r.reason = Reason::SenderBlocked;
        }
        _ => {}
    }
    if r.reason == Reason::Other
        && by_text.is_none()
        && r.address
            .as_deref()
            .is_some_and(|a| a.ends_with("@googlegroups.com"))
    {
        // Google Groups refuses posts from non-members in whatever language the group uses.
        r.reason = Reason::SenderBlocked;
    }
    r.status = e.status().map(str::to_string);
    if r.reply_code.is_none() {
        r.reply_code = e.reply_code;
    }
    r.diagnostic = shown.filter(|d| !d.is_empty());
    r.class = r.reason.class();
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    MailFrom,
    Rcpt,
    Data,
}

/// Whether the status is an address status (`X.1.x`, or `X.2.1` that many servers give for
/// unknown users): the code itself says the address is wrong.
fn address_code(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        let mut it = s.split('.');
        let (_, subject, detail) = (it.next(), it.next(), it.next());
        (subject == Some("1") && detail.is_some_and(|d| d != "0"))
            || (subject == Some("2") && detail == Some("1"))
    })
}

/// The SMTP command the refusal answered, when the report says (Postfix "in reply to end of
/// DATA command", Exim "SMTP error from remote mail server after MAIL FROM:", Sendmail ">>>
/// DATA").
fn smtp_stage(text: &str) -> Option<Stage> {
    let t = text.to_ascii_lowercase();
    let squeezed = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // Yahoo's qmail-derived reports tag the stage: `[RCPT_TO]`, `[MAIL_FROM]`, `[BODY]`.
    const DATA: [&str; 8] = [
        "end of data",
        "after data",
        "in reply to data",
        "after end of",
        "smtp command data",
        "command: data",
        ">>> data",
        "[body]",
    ];
    const MAIL_FROM: [&str; 5] = [
        "after mail from",
        "in reply to mail from",
        "command: mail from",
        ">>> mail from",
        "[mail_from]",
    ];
    // Wordings that only a refusal at RCPT TO or a directory lookup produces: Postfix's
    // recipient restrictions, qmail's "does not like recipient", Exchange's directory
    // ("RESOLVER.ADR", "The recipient name is not recognized"), Exim's "unknown local part",
    // Lotus Domino's directory, qmail's "no mailbox here by that name", Sendmail's "No such
    // user here", IMail's "Invalid final delivery userid".
    const RCPT: [&str; 14] = [
        "rcpt to",
        "after rcpt",
        "command: rcpt",
        "does not like recipient",
        "recipient address rejected",
        "resolver.adr",
        "recipnotfound",
        "unknown local part",
        "not listed in",
        "no mailbox here by that name",
        "recipient name is not recognized",
        "no such user here",
        "invalid final delivery userid",
        "[rcpt_to]",
    ];
    if DATA.iter().any(|m| squeezed.contains(m)) {
        Some(Stage::Data)
    } else if MAIL_FROM.iter().any(|m| squeezed.contains(m)) {
        Some(Stage::MailFrom)
    } else if RCPT.iter().any(|m| squeezed.contains(m)) {
        Some(Stage::Rcpt)
    } else {
        None
    }
}

/// Every `message/delivery-status` part, including those of reports nested in a returned
/// message (some relays wrap one report in another).
fn status_parts<'m>(message: &'m Message<'m>, depth: usize, out: &mut Vec<&'m [u8]>) {
    for part in &message.parts {
        if is_type(part, "message", "delivery-status") {
            out.push(part.contents());
        } else if let Some(nested) = part.message()
            && depth < 3
        {
            status_parts(nested, depth + 1, out);
        }
    }
}

/// The per-recipient blocks of `message/delivery-status` parts, not yet classified.
fn structured(message: &Message<'_>) -> Vec<DsnRecipient> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    // Read once however many blocks lack an address.
    let original_to = std::cell::OnceCell::new();
    status_parts(message, 0, &mut parts);
    for contents in parts {
        let text = String::from_utf8_lossy(contents).into_owned();
        for block in field_blocks(&text) {
            if out.len() >= MAX_RECIPIENTS {
                return out;
            }
            let get = |name: &str| {
                block
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            const RECIPIENT_FIELDS: [&str; 3] = [
                "final-recipient",
                "original-recipient",
                "x-actual-recipient",
            ];
            let is_recipient_block = block.iter().any(|(k, _)| {
                RECIPIENT_FIELDS.contains(&k.as_str()) || k == "action" || k == "status"
            });
            if !is_recipient_block {
                continue; // the per-message fields (Reporting-MTA, Arrival-Date, …)
            }
            // A Final-Recipient can be broken (a bare source route such as `@mx.example.org`);
            // take the first field that holds a usable address.
            let address = RECIPIENT_FIELDS
                .iter()
                .filter_map(|f| get(f))
                .find_map(|v| addresses(&v).into_iter().next().map(|(_, a)| a))
                .or_else(|| {
                    original_to
                        .get_or_init(|| original_header(message, "to"))
                        .clone()
                });
            let action = get("action").map(|a| a.trim().to_ascii_lowercase());
            let diagnostic = get("diagnostic-code")
                .map(|d| strip_address_type(&d))
                .filter(|d| !d.is_empty());
            out.push(DsnRecipient {
                address,
                action,
                status: get("status").and_then(|s| enhanced_status(&s)),
                reply_code: diagnostic.as_deref().and_then(reply_code),
                diagnostic,
                class: None,
                reason: Reason::Other,
            });
        }
    }
    out
}

/// Header-like blocks separated by blank lines, with folded lines joined; names lower-cased.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
                names.clear();
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            // Some MTAs (AOL) run recipient blocks together; a field that repeats starts the
            // next block.
            if !names.insert(name.clone()) {
                blocks.push(std::mem::take(&mut current));
                names.clear();
                names.insert(name.clone());
            }
            current.push((name, value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// `rfc822; <a@b>` → `a@b`; `smtp; 550 …` → `550 …`.
fn strip_address_type(value: &str) -> String {
    let v = match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') && kind.len() < 16 => rest,
        _ => value,
    };
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// The first RFC 3463 code (`5.1.1`) in `text`.
pub fn enhanced_status(text: &str) -> Option<String> {
    enhanced_status_iter(text).next()
}

/// Every RFC 3463 code in `text`, in order, in one pass.
fn enhanced_status_iter(text: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = text.as_bytes();
    (0..bytes.len()).filter_map(move |i| status_at(bytes, i))
}

fn status_at(bytes: &[u8], i: usize) -> Option<String> {
    let b = bytes[i];
    if !matches!(b, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
        return None;
    }
    if i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
        return None;
    }
    let digits = |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let subject_len = digits(i + 2);
    if subject_len == 0 || subject_len > 3 || bytes.get(i + 2 + subject_len) != Some(&b'.') {
        return None;
    }
    let detail_at = i + 3 + subject_len;
    let detail_len = digits(detail_at);
    if detail_len == 0 || detail_len > 3 {
        return None;
    }
    let end = detail_at + detail_len;
    if bytes
        .get(end)
        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
    {
        return None;
    }
    std::str::from_utf8(&bytes[i..end]).ok().map(str::to_string)
}

/// The first SMTP reply code (`550`) that starts the text or follows a space, `(` or `#`.
pub fn reply_code(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|i| {
        let starts = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'(' | b'#' | b':' | b'\t' | b'\n' | b'"' | b'['
            );
        let code = &bytes[i..i + 3];
        let ends = bytes
            .get(i + 3)
            .is_none_or(|b| matches!(b, b' ' | b'-' | b')' | b'\r' | b'\n' | b'.' | b','));
        (starts
            && ends
            && matches!(code[0], b'4' | b'5')
            && code[1..].iter().all(u8::is_ascii_digit)
            && code[1] <= b'5')
            .then(|| std::str::from_utf8(code).ok()?.parse().ok())
            .flatten()
    })
}

/// The human-readable part of the report, without the returned original message.
pub fn bounce_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for part in message.text_bodies() {
        if let Some(t) = part.text_contents() {
            text.push_str(t);
            text.push('\n');
        }
    }
    if text.trim().is_empty()
        && let Some(t) = message.body_text(0)
    {
        text.push_str(&t);
    }
    cut_original(&text).to_string()
}

const ORIGINAL_MARKERS: [&str; 12] = [
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "----- original message -----",
    "-----original message-----",
    "--- original message ---",
    "original message headers",
    "unsent message below",
    "content-type: message/rfc822",
    "original message:",
    "------ this is a copy",
    "--- the header of the original message",
];

fn cut_original(text: &str) -> &str {
    let lower = text.to_lowercase();
    let cut = ORIGINAL_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(text.len());
    // `to_lowercase` can change byte lengths for a few characters; stay on a boundary.
    let mut cut = cut.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The first 500 characters of `text` with whitespace runs as one space; reads no further.
fn excerpt(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if count >= 500 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars().take(500 - count.min(500)) {
            out.push(c);
            count += 1;
        }
    }
    out
}

/// Local parts of addresses that are the reporting system, never a failed recipient.
const SYSTEM_LOCAL_PARTS: [&str; 6] = [
    "mailer-daemon",
    "postmaster",
    "mailerdaemon",
    "double-bounce",
    "mail-daemon",
    "root",
];

/// Recipients found in the human-readable text, each with the text that follows it up to the
/// next recipient. One pass over the text; at most [`MAX_RECIPIENTS`] recipients.
fn from_text(message: &Message<'_>, text: &str, own: &dyn Fn(&str) -> bool) -> Vec<DsnRecipient> {
    let original_from = original_header(message, "from");
    let report_from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase);
    // The report goes to the original sender, who is never the failed recipient.
    let report_to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase);
    let mut seen = std::collections::HashSet::new();
    let candidates: Vec<(usize, String)> = addresses(text)
        .into_iter()
        .filter(|(at, a)| {
            let local = a.split('@').next().unwrap_or("");
            !own(a)
                && !SYSTEM_LOCAL_PARTS.contains(&local)
                && Some(a) != report_from.as_ref()
                && Some(a) != original_from.as_ref()
                && Some(a) != report_to.as_ref()
                && !in_quoted_header(text, *at)
        })
        .filter(|(_, a)| seen.insert(a.clone()))
        .take(MAX_RECIPIENTS)
        .collect();
    // The whole text's evidence, for recipients whose own lines say nothing.
    let whole = excerpt(text);
    let whole_status = best_status(text);
    let whole_code = reply_code(text);
    if candidates.is_empty() {
        let evidence = Evidence {
            text_status: whole_status.as_deref(),
            reply_code: whole_code,
            diagnostic: &whole,
            ..Evidence::default()
        };
        let r = blank(original_header(message, "to"));
        return vec![finish(r, &evidence, Some(whole.clone()))];
    }
    let mut out = Vec::with_capacity(candidates.len());
    for (i, (at, address)) in candidates.iter().enumerate() {
        let end = candidates
            .get(i + 1)
            .map(|(next, _)| *next)
            .unwrap_or(text.len());
        let segment = excerpt(&text[*at..end]);
        let status = best_status(&segment);
        let code = reply_code(&segment);
        let has_detail =
            status.is_some() || code.is_some() || super::classify::by_text(&segment).is_some();
        let evidence = if has_detail {
            Evidence {
                reply_status: status.as_deref(),
                reply_code: code,
                diagnostic: &segment,
                ..Evidence::default()
            }
        } else {
            Evidence {
                text_status: whole_status.as_deref(),
                reply_code: whole_code,
                diagnostic: &whole,
                ..Evidence::default()
            }
        };
        let shown = if has_detail { &segment } else { &whole };
        out.push(finish(
            blank(Some(address.clone())),
            &evidence,
            Some(shown.clone()),
        ));
    }
    out
}

/// Whether the address at `at` stands in a quoted header line that never names the failed
/// recipient (`Message-ID:`, `From:`, `Received:` …), as in reports that quote the original
/// headers without a marker.
fn in_quoted_header(text: &str, at: usize) -> bool {
    const NOT_RECIPIENT: [&str; 9] = [
        "message-id:",
        "in-reply-to:",
        "references:",
        "received:",
        "from:",
        "return-path:",
        "sender:",
        "reply-to:",
        "envelope-from",
    ];
    let mut start = at.saturating_sub(200);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[start..at];
    let line = before.rsplit('\n').next().unwrap_or(before);
    let line = line.trim_start().to_ascii_lowercase();
    NOT_RECIPIENT.iter().any(|h| line.starts_with(h))
}

fn blank(address: Option<String>) -> DsnRecipient {
    DsnRecipient {
        address,
        action: None,
        status: None,
        reply_code: None,
        diagnostic: None,
        class: None,
        reason: Reason::Other,
    }
}

/// Every email address in `text` with its byte position, lower-cased.
pub fn addresses(text: &str) -> Vec<(usize, String)> {
    let is_atom = |c: char| c.is_ascii_alphanumeric() || "._%+-=".contains(c);
    let mut out = Vec::new();
    for (at, _) in text.match_indices('@') {
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_atom(*c))
            .last()
            .map(|(i, _)| i);
        let end = text[at + 1..]
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .last()
            .map(|(i, c)| at + 1 + i + c.len_utf8());
        if let (Some(start), Some(end)) = (start, end) {
            let mut candidate = text[start..end].trim_matches('.').to_ascii_lowercase();
            // Exchange writes `[SMTP=user@example.com]` in some reports.
            if let Some(rest) = candidate.strip_prefix("smtp=") {
                candidate = rest.to_string();
            }
            let local = candidate.split('@').next().unwrap_or("");
            if !local.is_empty()
                && !candidate.contains("..")
                && candidate.rsplit('@').next().is_some_and(|d| {
                    d.contains('.')
                        && d.rsplit('.').next().is_some_and(|tld| {
                            tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
                        })
                })
            {
                out.push((start, candidate));
            }
        }
    }
    out
}

/// A header of the returned original message (`message/rfc822` or `text/rfc822-headers`
/// part, or the copy after a marker in a plain-text bounce).
pub fn original_header(message: &Message<'_>, name: &str) -> Option<String> {
    let mut sources: Vec<String> = Vec::new();
    for part in &message.parts {
        if is_type(part, "message", "rfc822")
            || is_type(part, "text", "rfc822-headers")
            || is_type(part, "message", "rfc822-headers")
        {
            sources.push(String::from_utf8_lossy(part.contents()).into_owned());
        }
    }
    if let Some(body) = message.body_text(0) {
        let lower = body.to_lowercase();
        if let Some(at) = ORIGINAL_MARKERS.iter().filter_map(|m| lower.find(m)).min()
            && body.is_char_boundary(at)
        {
            sources.push(body[at..].to_string());
        }
    }
    let prefix = format!("{name}:");
    for source in sources {
        for line in source.lines() {
            let trimmed = line.trim_start();
            if let Some(head) = trimmed.get(..prefix.len())
                && head.eq_ignore_ascii_case(&prefix)
                && let Some((_, address)) = addresses(&trimmed[prefix.len()..]).into_iter().next()
            {
                return Some(address);
            }
        }
    }
    None
}

/// The header section of the returned original message: the `message/rfc822` or
/// `text/rfc822-headers` part, else the copy after a marker in a plain-text report. Folded
/// lines are joined; at most 200 fields and 64 KiB are read.
pub fn returned_header_fields(message: &Message<'_>) -> Vec<(String, String)> {
    let mut source: Option<String> = None;
    for part in &message.parts {
        if is_type(part, "message", "rfc822")
            || is_type(part, "text", "rfc822-headers")
            || is_type(part, "message", "rfc822-headers")
        {
            let bytes = part.contents();
            source = Some(String::from_utf8_lossy(&bytes[..bytes.len().min(65_536)]).into_owned());
            break;
        }
    }
    if source.is_none()
        && let Some(body) = message.body_text(0)
    {
        let lower = body.to_lowercase();
        if let Some(at) = ORIGINAL_MARKERS.iter().filter_map(|m| lower.find(m)).min()
            && body.is_char_boundary(at)
        {
            let rest = &body[at..];
            // Skip the marker line itself.
            let rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
            let mut end = rest.len().min(65_536);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            source = Some(rest[..end].to_string());
        }
    }
    let Some(source) = source else {
        return Vec::new();
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in source.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue; // blank lines between the marker and the headers
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') =>
            {
                if fields.len() >= 200 {
                    break;
                }
                fields.push((name.to_string(), value.trim().to_string()));
            }
            _ if fields.is_empty() => continue,
            _ => break,
        }
    }
    fields
}

/// The returned message's `Message-ID` (without angle brackets) and its `X-Fairsend-*`
/// headers (names as written, values with CR/LF removed).
pub fn returned_identity(message: &Message<'_>) -> (Option<String>, Vec<(String, String)>) {
    let fields = returned_header_fields(message);
    let message_id = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("message-id"))
        .map(|(_, v)| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|v| !v.is_empty());
    let fairsend = fields
        .into_iter()
        .filter(|(k, _)| k.len() > 11 && k[..11].eq_ignore_ascii_case("x-fairsend-"))
        .map(|(k, v)| (k, v.replace(['\r', '\n'], " ")))
        .collect();
    (message_id, fairsend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_text() {
        assert_eq!(
            enhanced_status("550 5.1.1 <a@b.c>: user unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status("host 192.0.2.1 said").as_deref(), None);
        assert_eq!(
            enhanced_status("#5.7.26 unauthenticated").as_deref(),
            Some("5.7.26")
        );
        assert_eq!(reply_code("Remote host said: 550 5.1.1 unknown"), Some(550));
        assert_eq!(reply_code("(#5.1.1) 421-"), Some(421));
        assert_eq!(reply_code("port 25025 open"), None);
    }

    #[test]
    fn addresses_in_text() {
        let found = addresses("<Kijitora@Example.JP>: host said: 550 for postmaster@example.net.");
        assert_eq!(
            found.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>(),
            ["kijitora@example.jp", "postmaster@example.net"]
        );
        assert!(addresses("mail@ and @domain only").is_empty());
    }
}
