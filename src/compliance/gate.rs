//! The compliance gate: the one way a composed message becomes a [`GatedMessage`], the only
//! kind of message `send/` and its transports accept. The gate checks the rendered message
//! itself (sender identity, unsubscribe link and privacy contact in both parts, the one-click
//! headers, exactly one recipient header); it never changes the message and never sends it.
//!
//! A `GatedMessage` cannot be built anywhere else — its fields are private and it has no
//! public constructor, no `Default`, no `Deserialize` — so the compiler, not a convention,
//! guarantees that no unchecked message is sent:
//!
//! ```compile_fail,E0451
//! use fairsend::compliance::GatedMessage;
//! fn forge(composed: fairsend::compose::ComposedMessage) -> GatedMessage {
//!     GatedMessage { message: composed }
//! }
//! ```

use crate::compose::ComposedMessage;
use crate::config::Settings;
use crate::model::EmailAddress;

/// A message that must not be sent, with every reason.
#[derive(Debug, thiserror::Error)]
#[error("message for outbox row {outbox_id} fails the compliance check: {}", problems.join("; "))]
pub struct GateError {
    pub outbox_id: i64,
    pub problems: Vec<String>,
}

/// A composed message that passed [`gate`]: read-only from here on.
#[derive(Debug)]
pub struct GatedMessage {
    message: ComposedMessage,
}

impl GatedMessage {
    pub fn outbox_id(&self) -> i64 {
        self.message.outbox_id
    }

    /// `MAIL FROM`: the VERP address whose token identifies the outbox row.
    pub fn envelope_from(&self) -> &EmailAddress {
        &self.message.envelope_from
    }

    /// The one and only `RCPT TO`.
    pub fn recipient(&self) -> &EmailAddress {
        &self.message.recipient
    }

    pub fn message_id(&self) -> &str {
        &self.message.message_id
    }

    pub fn subject(&self) -> &str {
        &self.message.subject
    }

    pub fn unsubscribe_url(&self) -> &str {
        &self.message.unsubscribe_url
    }

    pub fn text(&self) -> &str {
        &self.message.text
    }

    pub fn html(&self) -> &str {
        &self.message.html
    }

    /// The whole message as it goes on the wire (headers, both parts, DKIM signature).
    pub fn bytes(&self) -> &[u8] {
        &self.message.bytes
    }
}

/// Structural check of one rendered message: the sender identity and the unsubscribe link are
/// in both parts, the one-click headers are present, and the message has exactly one recipient
/// header (`To`) and no `Cc`/`Bcc`. The only constructor of [`GatedMessage`] (with
/// [`Gate::check`], the same check with its searches prepared once).
pub fn gate(message: ComposedMessage, settings: &Settings) -> Result<GatedMessage, GateError> {
    Gate::new(settings).check(message)
}

/// The gate of a message a person asked for (a signup's confirmation request), which is not
/// marketing: it names the sender (917/2014 §203: the sender may not be hidden) in both parts
/// and goes to exactly one recipient, but has no unsubscribe link to check (nothing to
/// unsubscribe from until the person confirms). The only other constructor of
/// [`GatedMessage`].
pub fn gate_confirmation(
    message: ComposedMessage,
    settings: &Settings,
) -> Result<GatedMessage, GateError> {
    let gate = Gate::new(settings);
    let mut problems = Vec::new();
    for part in gate.parts(&message) {
        part.missing_identity(&mut problems);
    }
    problems.extend(recipient_problems(&message.bytes));
    verdict(message, problems)
}

/// [`gate`] for every message of a run: the searches for what each message must contain (the
/// sender identity and the privacy contact, as each part prints them) are made once here,
/// instead of once per message — making one cost more than the search it makes.
#[derive(Clone)]
pub struct Gate {
    text: Needles,
    html: Needles,
}

/// What one part must contain, as that part prints it (escaped in the HTML part).
#[derive(Clone)]
struct Needles {
    name: &'static str,
    /// The legal name and the business ID: each as configured, and its searcher.
    identity: Vec<(String, Finder<'static>)>,
    privacy_contact: Finder<'static>,
}

type Finder<'a> = memchr::memmem::Finder<'a>;

impl Gate {
    pub fn new(settings: &Settings) -> Self {
        let needles = |name: &'static str, print: fn(&str) -> std::borrow::Cow<'_, str>| {
            let sender = &settings.sender;
            Needles {
                name,
                identity: [sender.legal_name.as_str(), sender.business_id.as_str()]
                    .into_iter()
                    .map(|item| {
                        let printed = print(item);
                        let finder = Finder::new(printed.as_bytes()).into_owned();
                        (item.to_string(), finder)
                    })
                    .collect(),
                privacy_contact: Finder::new(sender.privacy_contact.as_str().as_bytes())
                    .into_owned(),
            }
        };
        Self {
            text: needles("text", as_is),
            html: needles("HTML", html_escape),
        }
    }

    /// What [`gate`] says of `message`.
    pub fn check(&self, message: ComposedMessage) -> Result<GatedMessage, GateError> {
        let mut problems = Vec::new();
        for part in self.parts(&message) {
            part.body_problems(&mut problems);
        }
        problems.extend(header_problems(&message.bytes));
        verdict(message, problems)
    }

    fn parts<'a>(&'a self, message: &'a ComposedMessage) -> [Part<'a>; 2] {
        let html_url = match message.unsubscribe_url.contains('&') {
            true => std::borrow::Cow::Owned(message.unsubscribe_url.replace('&', "&amp;")),
            false => std::borrow::Cow::Borrowed(message.unsubscribe_url.as_str()),
        };
        [
            Part {
                needles: &self.text,
                body: &message.text,
                url: std::borrow::Cow::Borrowed(message.unsubscribe_url.as_str()),
            },
            Part {
                needles: &self.html,
                body: &message.html,
                url: html_url,
            },
        ]
    }
}

/// One part of a message, with what it must contain.
struct Part<'a> {
    needles: &'a Needles,
    body: &'a str,
    /// The unsubscribe link as the part prints it.
    url: std::borrow::Cow<'a, str>,
}

impl Part<'_> {
    /// The unsubscribe link, the sender identity and the privacy contact.
    fn body_problems(&self, problems: &mut Vec<String>) {
        let name = self.needles.name;
        if !contains(self.body, &self.url) {
            problems.push(format!("the {name} part has no unsubscribe link"));
        }
        self.missing_identity(problems);
        if self
            .needles
            .privacy_contact
            .find(self.body.as_bytes())
            .is_none()
        {
            problems.push(format!("the {name} part lacks the privacy notice contact"));
        }
    }

    /// The sender identity (legal name, business ID) missing from the part.
    fn missing_identity(&self, problems: &mut Vec<String>) {
        for (item, finder) in &self.needles.identity {
            if finder.find(self.body.as_bytes()).is_none() {
                problems.push(format!(
                    "the {} part lacks the sender identity '{item}'",
                    self.needles.name
                ));
            }
        }
    }
}

fn verdict(message: ComposedMessage, problems: Vec<String>) -> Result<GatedMessage, GateError> {
    if problems.is_empty() {
        Ok(GatedMessage { message })
    } else {
        Err(GateError {
            outbox_id: message.outbox_id,
            problems,
        })
    }
}

/// One `To`, no `Cc`/`Bcc`.
fn recipient_problems(bytes: &[u8]) -> Vec<String> {
    recipient_problems_of(&HeaderNames::of(bytes))
}

fn recipient_problems_of(names: &HeaderNames<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    if names.count("to") != 1 {
        problems.push("the message must have exactly one To header".into());
    }
    if names.count("cc") + names.count("bcc") > 0 {
        problems.push("the message must not have Cc or Bcc headers".into());
    }
    problems
}

/// One `To`, no `Cc`/`Bcc`, and the one-click unsubscribe headers once each.
fn header_problems(bytes: &[u8]) -> Vec<String> {
    let names = HeaderNames::of(bytes);
    let mut problems = recipient_problems_of(&names);
    if names.count("list-unsubscribe") != 1 || names.count("list-unsubscribe-post") != 1 {
        problems.push("List-Unsubscribe and List-Unsubscribe-Post must each appear once".into());
    }
    problems
}

/// The field names of a message's header, read once (every message is gated, so the header
/// is not searched again for each name asked about).
struct HeaderNames<'a>(Vec<&'a [u8]>);

impl<'a> HeaderNames<'a> {
    /// Each field's name up to its colon (trailing blanks dropped, as the obsolete syntax of
    /// RFC 5322 §4.5 allows them); folded continuation lines are not fields; the header ends
    /// at the first empty line.
    fn of(bytes: &'a [u8]) -> Self {
        let mut names = Vec::new();
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match line.first() {
                None => break,
                Some(b' ' | b'\t') => continue,
                Some(_) => {}
            }
            if let Some(colon) = memchr::memchr(b':', line) {
                names.push(line[..colon].trim_ascii_end());
            }
        }
        Self(names)
    }

    /// How many fields are called `name` (case-insensitive).
    fn count(&self, name: &str) -> usize {
        self.0
            .iter()
            .filter(|field| field.eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }
}

/// Whether `needle` occurs in `haystack`: the SIMD searcher of `memchr`, since every message
/// is searched eight times and `str::contains` was a tenth of composing one.
fn contains(haystack: &str, needle: &str) -> bool {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes()).is_some()
}

/// `s` as the text part prints it.
fn as_is(s: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(s)
}

/// `s` as the HTML part prints it; borrowed when nothing needs escaping (the usual case: it
/// runs for every message).
fn html_escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut escaped = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: a long\r\n\
        \tsubject folded; To: not a field\r\nLIST-UNSUBSCRIBE: <https://x/u/1>\r\n\
        List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nTo: in the body\r\n";

    #[test]
    fn header_names_are_counted_once_each_case_insensitively() {
        let names = HeaderNames::of(HEAD);
        assert_eq!(
            names.count("to"),
            1,
            "a folded line and the body are not fields"
        );
        assert_eq!(names.count("list-unsubscribe"), 1);
        assert_eq!(names.count("list-unsubscribe-post"), 1);
        assert_eq!(names.count("cc"), 0);
        assert!(header_problems(HEAD).is_empty());
    }

    #[test]
    fn a_second_recipient_header_is_a_problem() {
        let with_cc = [b"Cc : c@example.com\r\n".as_slice(), HEAD].concat();
        assert_eq!(
            header_problems(&with_cc),
            vec!["the message must not have Cc or Bcc headers".to_string()]
        );
        let two_to = [b"to: c@example.com\n".as_slice(), HEAD].concat();
        assert_eq!(
            recipient_problems(&two_to),
            vec!["the message must have exactly one To header".to_string()]
        );
        let no_one_click = b"To: b@example.com\r\n\r\n";
        assert_eq!(header_problems(no_one_click).len(), 1);
    }
}
