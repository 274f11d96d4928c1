//! Quoted-printable (RFC 2045 §6.7) for the text and HTML parts, written for the send path:
//! one pass, one allocation. lettre's general encoder (the quoted_printable crate, after a
//! pass choosing the encoding and one normalising line ends) took a third of the time of
//! composing a message (measured with perf on `cargo bench --bench render`).
//!
//! Input lines may end in LF or CRLF; output lines end in CRLF and are at most 76 characters,
//! soft line breaks (`=` CRLF) included. Printable ASCII other than `=` is literal, as is a
//! space or tab that is not at the end of a line; everything else is `=XX`.

const MAX_LINE: usize = 76;
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bytes written as themselves: printable ASCII but `=`, and space and tab (which are encoded
/// instead when they end a line).
const LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'!'..=b'<' | b'>'..=b'~' | b' ' | b'\t');
        b += 1;
    }
    table
};

pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8 + 16);
    encode_into(text.as_bytes(), &mut out);
    out
}

fn encode_into(text: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    // Lines found with memchr's vector search: `str::split` paid more per line than the
    // encoding itself on short HTML lines.
    for newline in memchr::memchr_iter(b'\n', text) {
        // A CR ends a line only before an LF; at the very end it is text like any other.
        let line = &text[start..newline];
        encode_line(line.strip_suffix(b"\r").unwrap_or(line), out);
        out.extend_from_slice(b"\r\n");
        start = newline + 1;
    }
    encode_line(&text[start..], out);
}

/// A piece of text with its encoding, made once: the compliance blocks a campaign's messages
/// share.
#[derive(Debug, Clone)]
pub struct Encoded {
    text: String,
    encoded: Vec<u8>,
    /// A searcher for the text's first bytes, made once (making one costs as much as a
    /// search): a match of them is then compared whole. memmem's own check of a match of the
    /// whole block, hundreds of bytes, went byte by byte and cost more than the search.
    finder: memchr::memmem::Finder<'static>,
}

/// The bytes of a piece searched for; a match of them is compared whole.
const SEARCHED_PREFIX: usize = 32;

impl Encoded {
    pub fn new(text: String) -> Self {
        let encoded = encode(&text);
        let prefix = &text.as_bytes()[..text.len().min(SEARCHED_PREFIX)];
        let finder = memchr::memmem::Finder::new(prefix).into_owned();
        Self {
            text,
            encoded,
            finder,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the text first occurs in `bytes` at or after `from`.
    fn find_in(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let whole = self.text.as_bytes();
        let mut at = from;
        while let Some(found) = self.finder.find(&bytes[at..]) {
            let start = at + found;
            if bytes[start..].starts_with(whole) {
                return Some(start);
            }
            at = start + 1;
        }
        None
    }
}

/// What [`encode`] returns for `text`, with the `known` pieces (in the order they occur, each
/// whole lines of `text`) copied from their encodings instead of encoded again. Encoding is
/// line by line, so a piece's encoding is the same wherever a line starts; a piece not found
/// at a line boundary is encoded with the text around it, as `encode` would. The pieces are
/// looked for from byte `search_from` on: a caller that knows they come after a body says so,
/// and the search does not read the body (reading it was a tenth of composing a message).
/// Anywhere they are, the bytes are those of `encode`; only the time differs.
pub fn encode_with(text: &str, known: &[&Encoded], search_from: usize) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 16);
    let mut done = 0;
    let mut from = search_from.min(bytes.len());
    for piece in known {
        let Some(start) = piece.find_in(bytes, from) else {
            continue;
        };
        let end = start + piece.text.len();
        if piece.text.is_empty() || !splits_cleanly(bytes, start) || !splits_cleanly(bytes, end) {
            continue;
        }
        encode_into(&bytes[done..start], &mut out);
        out.extend_from_slice(&piece.encoded);
        (done, from) = (end, end);
    }
    encode_into(&bytes[done..], &mut out);
    out
}

/// Whether encoding `bytes` in two parts split at `at` gives the encoding of the whole: at either
/// end, just after a line end, or just before one whose line does not end in a CR (which the
/// whole would take as part of the line end, and the first part as text).
fn splits_cleanly(bytes: &[u8], at: usize) -> bool {
    at == 0
        || at == bytes.len()
        || bytes[at - 1] == b'\n'
        || (bytes[at] == b'\n' && bytes[at - 1] != b'\r')
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// Whether all eight bytes of `word` are printable ASCII other than `=` (bytes 0x20–0x7E but
/// 0x3D): each test is exact for the word as a whole, as in "Bit Twiddling Hacks" (hasless,
/// hasmore, haszero). A tab is literal too, but rare: the byte-wise loop takes it.
fn all_printable(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    // hasmore(word, 0x7E): adding 127 − 0x7E = 1 to each byte sets the high bit of 0x7F.
    let above_tilde = (word.wrapping_add(ONES) | word) & HIGHS;
    let equals = word ^ (ONES * u64::from(b'='));
    let has_equals = equals.wrapping_sub(ONES) & !equals & HIGHS;
    below_space | above_tilde | has_equals == 0
}

/// One line without its end: runs of literal bytes are copied whole.
fn encode_line(line: &[u8], out: &mut Vec<u8>) {
    let n = line.len();
    let is_blank = |b: u8| b == b' ' || b == b'\t';
    let (mut i, mut len) = (0, 0);
    while i < n {
        let last = i + 1 == n;
        let b = line[i];
        if LITERAL[b as usize] && !(last && is_blank(b)) {
            // The longest run that fits before a soft break's `=`, never ending the line on
            // a space or tab.
            let end = n.min(i + (MAX_LINE - 1 - len));
            let mut j = i;
            // Eight bytes at a time while all are printable: most of a message.
            while let Some(word) = line.get(j..j + 8).filter(|_| j + 8 <= end) {
                let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                if !all_printable(word) {
                    break;
                }
                j += 8;
            }
            while j < end && LITERAL[line[j] as usize] {
                j += 1;
            }
            if j == n && is_blank(line[j - 1]) {
                j -= 1;
            }
            if j == i {
                out.extend_from_slice(b"=\r\n");
                len = 0;
                continue;
            }
            out.extend_from_slice(&line[i..j]);
            len += j - i;
            i = j;
        } else {
            let needed = if last { 3 } else { 4 };
            if len + needed > MAX_LINE {
                out.extend_from_slice(b"=\r\n");
                len = 0;
            }
            out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            len += 3;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoded: &[u8]) -> String {
        let mut message = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".to_vec();
        message.extend_from_slice(encoded);
        let parsed = mail_parser::MessageParser::default()
            .parse(&message)
            .expect("parse");
        parsed.body_text(0).expect("text").into_owned()
    }

    #[test]
    fn a_word_is_printable_exactly_when_each_byte_is() {
        let printable = |b: u8| (0x20..=0x7E).contains(&b) && b != b'=';
        for b in 0..=255u8 {
            for position in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[position] = b;
                assert_eq!(
                    all_printable(u64::from_le_bytes(bytes)),
                    printable(b),
                    "byte {b:#04x} at {position}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_in_short_lines(text in "[ -~\t\r\näöÅ€=]{0,400}") {
            assert_encoded_well(&text);
        }
    }

    proptest::proptest! {
        /// Pieces cut from the text anywhere (at line boundaries or not, with CRs, repeated),
        /// looked for from anywhere, change nothing in the encoding.
        #[test]
        fn known_pieces_encode_as_the_whole_text(
            text in "[a =\r\nä]{0,300}",
            cuts in proptest::collection::vec((0usize..300, 0usize..80), 0..4),
            search_from in 0usize..320,
        ) {
            let chars: Vec<char> = text.chars().collect();
            let pieces: Vec<Encoded> = cuts
                .iter()
                .map(|&(at, len)| {
                    let at = at.min(chars.len());
                    let end = (at + len).min(chars.len());
                    Encoded::new(chars[at..end].iter().collect())
                })
                .collect();
            let known: Vec<&Encoded> = pieces.iter().collect();
            proptest::prop_assert_eq!(encode_with(&text, &known, search_from), encode(&text));
        }
    }

    #[test]
    fn a_piece_on_whole_lines_or_inside_a_line_encodes_as_the_whole_text() {
        let block = Encoded::new("Yritys Oy\nY-tunnus 1234567-8".into());
        let text = "Hei,\n\nYritys Oy\nY-tunnus 1234567-8\n\n--\n";
        assert_eq!(encode_with(text, &[&block], 0), encode(text));
        let inside = "xYritys Oy\nY-tunnus 1234567-8";
        assert!(!splits_cleanly(inside.as_bytes(), 1));
        assert_eq!(encode_with(inside, &[&block], 0), encode(inside));
    }

    fn assert_encoded_well(sample: &str) {
        let encoded = encode(sample);
        for line in encoded.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(
                line.len() <= MAX_LINE,
                "{:?}",
                String::from_utf8_lossy(line)
            );
            assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"));
            assert!(line.iter().all(|b| (32..127).contains(b) || *b == b'\t'));
        }
        // A lone CR is not a line end: it is encoded, and decodes as itself.
        assert_eq!(
            decode(&encoded).replace("\r\n", "\n"),
            sample.replace("\r\n", "\n")
        );
    }

    #[test]
    fn round_trips_and_keeps_lines_short() {
        let long_word = "ä".repeat(60);
        let samples = [
            "Hei Äijö,\n\ntervetuloa = seminaariin!\n".to_string(),
            format!("{long_word}\n{}", "x".repeat(200)),
            "trailing space \nand tab\t\nend".to_string(),
            "crlf\r\nlines\r\n".to_string(),
            "<a href=\"https://example.com/?a=1&b=2\">link</a>".to_string(),
            "=".repeat(100),
            format!("{} \n{}\t", "y".repeat(75), "z".repeat(74)),
            String::new(),
            "\n\n".to_string(),
        ];
        for sample in samples {
            assert_encoded_well(&sample);
        }
    }
}
