//! Delivery-status notifications: the RFC 3464 `message/delivery-status` fields when the
//! report has them, else the human-readable text that qmail, Exchange, Gmail and many others
//! send instead. Never panics on any input.

use mail_parser::{Message, MimeHeaders};

use super::classify::{BounceClass, Reason, classify};

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

/// Whether the message presents itself as a delivery report.
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
        .to_ascii_lowercase();
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    let daemon = [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "mail administrator",
        "mailerdaemon",
    ]
    .iter()
    .any(|d| from.starts_with(d) || from_name.contains(d));
    let bounce_subject = [
        "undeliver",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "delivery has failed",
        "failure notice",
        "returned mail",
        "mail delivery failed",
        "delivery notification",
        "non remis",
        "unzustellbar",
        "could not be delivered",
        "not delivered",
        "warning: message",
        "delayed mail",
        "mail could not be delivered",
        "returned to sender",
    ]
    .iter()
    .any(|s| subject.contains(s));
    daemon || bounce_subject
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

/// The recipients of a delivery report, each classified.
pub fn recipients(
    message: &Message<'_>,
    own_addresses: &dyn Fn(&str) -> bool,
) -> Vec<DsnRecipient> {
    let from_fields = structured(message);
    let text = bounce_text(message);
    if !from_fields.is_empty() {
        return from_fields
            .into_iter()
            .map(|mut r| {
                if r.diagnostic.is_none() && r.status.is_none() && !text.trim().is_empty() {
                    // Some MTAs put the reason only in the human-readable part.
                    r.diagnostic = Some(excerpt(&text));
                }
                finish(r)
            })
            .collect();
    }
    from_text(message, &text, own_addresses)
}

fn finish(mut r: DsnRecipient) -> DsnRecipient {
    r.reason = classify(
        r.status.as_deref(),
        r.reply_code,
        r.diagnostic.as_deref().unwrap_or(""),
        r.action.as_deref(),
    );
    if r.reason == Reason::UserUnknown
        && r.status
            .as_deref()
            .and_then(super::classify::specific_reason)
            .is_none()
        && r.diagnostic.as_deref().is_some_and(rejected_after_data)
    {
        // The server accepted RCPT TO, so the mailbox exists: a refusal at DATA is a filter.
        r.reason = Reason::PolicyOrSpamBlock;
    }
    r.class = r.reason.class();
    r
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

/// The per-recipient blocks of `message/delivery-status` parts.
fn structured(message: &Message<'_>) -> Vec<DsnRecipient> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    status_parts(message, 0, &mut parts);
    for contents in parts {
        let text = String::from_utf8_lossy(contents).into_owned();
        for block in field_blocks(&text) {
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
                .or_else(|| original_header(message, "to"));
            let action = get("action").map(|a| a.trim().to_ascii_lowercase());
            let diagnostic = get("diagnostic-code")
                .map(|d| strip_address_type(&d))
                .filter(|d| !d.is_empty());
            let mut status = get("status").and_then(|s| enhanced_status(&s));
            let from_diagnostic = diagnostic.as_deref().and_then(enhanced_status);
            if status.as_deref().is_none_or(is_generic_status)
                && let Some(specific) = from_diagnostic.filter(|s| !is_generic_status(s))
            {
                status = Some(specific);
            }
            out.push(DsnRecipient {
                address,
                action,
                status,
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
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
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
            if current.iter().any(|(k, _)| *k == name) {
                blocks.push(std::mem::take(&mut current));
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
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
            continue;
        }
        if i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
            continue;
        }
        let rest = &text[i + 2..];
        let subject: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if subject.is_empty() || subject.len() > 3 {
            continue;
        }
        let after = &rest[subject.len()..];
        let Some(after) = after.strip_prefix('.') else {
            continue;
        };
        let detail: String = after.chars().take_while(char::is_ascii_digit).collect();
        if detail.is_empty() || detail.len() > 3 {
            continue;
        }
        let next = after[detail.len()..].chars().next();
        if next.is_some_and(|c| c.is_ascii_digit() || c == '.') {
            continue;
        }
        return Some(format!("{}.{subject}.{detail}", b as char));
    }
    None
}

fn is_generic_status(status: &str) -> bool {
    status.ends_with(".0.0") || status.ends_with(".0")
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
    "the original message was received",
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

/// Whether the text says the refusal came in reply to DATA or the end of the message data.
fn rejected_after_data(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let squeezed = t.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        "end of data",
        "after data",
        "in reply to data",
        "after end of",
        "smtp command data",
        "command: data",
        "-smtp command data",
    ]
    .iter()
    .any(|m| squeezed.contains(m))
}

fn excerpt(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.chars().take(500).collect()
}

/// Recipients found in the human-readable text, each with the text that follows it.
fn from_text(message: &Message<'_>, text: &str, own: &dyn Fn(&str) -> bool) -> Vec<DsnRecipient> {
    let original_from = original_header(message, "from");
    let report_from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase);
    let candidates: Vec<(usize, String)> = addresses(text)
        .into_iter()
        .filter(|(_, a)| {
            let local = a.split('@').next().unwrap_or("");
            !own(a)
                && !matches!(
                    local,
                    "mailer-daemon" | "postmaster" | "mailerdaemon" | "double-bounce"
                )
                && Some(a) != report_from.as_ref()
                && Some(a) != original_from.as_ref()
        })
        .fold(Vec::new(), |mut acc, (at, a)| {
            if !acc.iter().any(|(_, seen)| *seen == a) {
                acc.push((at, a));
            }
            acc
        });
    let whole = excerpt(text);
    if candidates.is_empty() {
        let address = original_header(message, "to");
        let status = enhanced_status(text);
        return vec![finish(DsnRecipient {
            address,
            action: None,
            status,
            reply_code: reply_code(text),
            diagnostic: (!whole.is_empty()).then_some(whole),
            class: None,
            reason: Reason::Other,
        })];
    }
    let mut out = Vec::new();
    for (i, (at, address)) in candidates.iter().enumerate() {
        let end = candidates
            .get(i + 1)
            .map(|(next, _)| *next)
            .unwrap_or(text.len());
        let segment = &text[*at..end];
        let has_detail = enhanced_status(segment).is_some()
            || reply_code(segment).is_some()
            || super::classify::by_text(segment).is_some();
        let context = if has_detail { segment } else { text };
        let diagnostic = excerpt(context);
        let mut status = enhanced_status(context);
        if status.as_deref().is_some_and(is_generic_status)
            && let Some(specific) = enhanced_status_all(context)
                .into_iter()
                .find(|s| !is_generic_status(s))
        {
            status = Some(specific);
        }
        out.push(finish(DsnRecipient {
            address: Some(address.clone()),
            action: None,
            status,
            reply_code: reply_code(context),
            diagnostic: (!diagnostic.is_empty()).then_some(diagnostic),
            class: None,
            reason: Reason::Other,
        }));
    }
    out
}

fn enhanced_status_all(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(s) = enhanced_status(rest) {
        let at = rest.find(&s).unwrap_or(0) + s.len();
        found.push(s);
        rest = &rest[at.min(rest.len())..];
    }
    found
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
            let candidate = text[start..end].trim_matches('.').to_ascii_lowercase();
            let local = candidate.split('@').next().unwrap_or("");
            if !local.is_empty()
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
