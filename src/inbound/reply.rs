//! Replies: automatic ones (RFC 3834, out-of-office) are recorded and nothing else; a human
//! reply whose first lines ask to be removed becomes an opt-out.

use mail_parser::Message;

/// RFC 3834 `Auto-Submitted`, the de-facto auto-responder headers, and out-of-office subjects
/// in the languages fairsend's recipients write.
pub fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("auto-submitted").is_some_and(|v| !v.is_empty() && !v.starts_with("no")) {
        return true;
    }
    if header("x-autoreply").is_some()
        || header("x-autorespond").is_some()
        || header("x-autoresponder").is_some()
        || header("x-auto-response-suppress")
            .is_some_and(|v| v.contains("all") || v.contains("oof"))
    {
        return true;
    }
    if header("precedence").is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk")) {
        return true;
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    const OUT_OF_OFFICE: [&str; 16] = [
        "out of office",
        "out of the office",
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "vacation",
        "on leave",
        "automaattinen vastaus",
        "poissa toimistolta",
        "lomalla",
        "poissaolo",
        "frånvaro",
        "autosvar",
        "automatiskt svar",
        "abwesenheit",
    ];
    OUT_OF_OFFICE.iter().any(|s| subject.contains(s))
}

/// Words that ask to stop the messages, in fi, sv and en.
const UNSUBSCRIBE_WORDS: [&str; 16] = [
    "poista",
    "poistakaa",
    "peruuta",
    "peru",
    "lopeta",
    "lopettakaa",
    "avregistrera",
    "avsluta",
    "ta bort",
    "sluta",
    "unsubscribe",
    "remove",
    "stop",
    "opt out",
    "opt-out",
    "optout",
];

/// The unsubscribe word in the first lines the person wrote (quoted lines and the quoted
/// original are ignored), or in a subject that is nothing but the word.
pub fn unsubscribe_request(message: &Message<'_>) -> Option<&'static str> {
    let body = message
        .body_text(0)
        .map(|b| b.into_owned())
        .unwrap_or_default();
    let own_lines: Vec<String> = body
        .lines()
        .map(str::trim)
        .take_while(|l| !is_quote_header(l))
        .filter(|l| !l.is_empty() && !l.starts_with('>'))
        .take(3)
        .map(str::to_lowercase)
        .collect();
    for line in &own_lines {
        if let Some(word) = UNSUBSCRIBE_WORDS.iter().find(|w| has_word(line, w)) {
            return Some(word);
        }
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    let subject = strip_reply_prefixes(&subject);
    UNSUBSCRIBE_WORDS
        .iter()
        .find(|w| subject.trim_matches(|c: char| !c.is_alphanumeric()) == **w)
        .copied()
}

fn is_quote_header(line: &str) -> bool {
    let l = line.to_lowercase();
    (l.starts_with("on ") && l.ends_with("wrote:"))
        || l.ends_with("kirjoitti:")
        || l.ends_with("skrev:")
        || l.starts_with("-----original message")
        || l.starts_with("from:")
        || l.starts_with("lähettäjä:")
        || l.starts_with("från:")
}

fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let before = s;
        for prefix in ["re:", "vs:", "sv:", "aw:", "vast:", "fw:", "fwd:"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.trim();
            }
        }
        if s == before {
            return s;
        }
    }
}

/// `word` as a whole word (or phrase) in `text`.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        boundary(before) && boundary(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Message<'_> {
        mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap()
    }

    #[test]
    fn words_in_first_lines() {
        let m = parse(
            "From: a@b.fi\r\nSubject: Re: Seminaari\r\n\r\nPoista minut listalta, kiitos.\r\n\r\n> Hei, tervetuloa\r\n",
        );
        assert_eq!(unsubscribe_request(&m), Some("poista"));
        let m = parse(
            "From: a@b.fi\r\nSubject: Re: Seminaari\r\n\r\nKiitos, tulen mielelläni!\r\n\r\n> ... voit myös vastata sanalla POISTA\r\n",
        );
        assert_eq!(
            unsubscribe_request(&m),
            None,
            "the quoted footer does not count"
        );
        let m = parse("From: a@b.fi\r\nSubject: UNSUBSCRIBE\r\n\r\n\r\n");
        assert_eq!(unsubscribe_request(&m), Some("unsubscribe"));
        let m = parse("From: a@b.fi\r\nSubject: Re: Stop the presses\r\n\r\nGreat news\r\n");
        assert_eq!(unsubscribe_request(&m), None);
        let m = parse("From: a@b.fi\r\nSubject: Re: x\r\n\r\nPlease remove me.\r\n");
        assert_eq!(unsubscribe_request(&m), Some("remove"));
        let m = parse("From: a@b.fi\r\nSubject: Re: x\r\n\r\nWe removed the old page.\r\n");
        assert_eq!(unsubscribe_request(&m), None, "whole words only");
    }

    #[test]
    fn auto_replies() {
        assert!(is_auto_reply(&parse(
            "Auto-Submitted: auto-replied\r\nSubject: Re: x\r\n\r\nPoissa\r\n"
        )));
        assert!(is_auto_reply(&parse(
            "Subject: Automaattinen vastaus: Seminaari\r\n\r\nOlen lomalla\r\n"
        )));
        assert!(!is_auto_reply(&parse(
            "Auto-Submitted: no\r\nSubject: Re: x\r\n\r\nhei\r\n"
        )));
    }
}
