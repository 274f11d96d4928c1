//! What the CLI prints for people: text from outside (bounce diagnostics, reply text, names and
//! cells from contact files, database values) goes through [`printable`] before it reaches a
//! terminal, so a crafted bounce cannot move the cursor, rewrite earlier lines or set the
//! window title. Every human-readable printer uses [`say!`] (listings on stdout: one record,
//! one line) or [`tell!`] (messages on stderr and findings, whose own line breaks — a TOML
//! syntax error's excerpt — are kept); JSON output is escaped by serde and raw message output
//! (`preview`) is the message itself.

use std::borrow::Cow;

/// `text` with every control character (ESC, CR, LF, BEL, DEL, C1 …) and every Unicode
/// bidirectional override written as a Rust escape (`\u{1b}`, `\n`), so it prints as one
/// visible line that says exactly what was there.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// [`printable`], keeping line feeds: for messages whose lines are the message's own.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs_escape = |c: char| {
        // The bidi embeddings, overrides and isolates reorder what follows them on screen.
        !keep(c)
            && (c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    };
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `println!` for a line that may hold outside text: the whole line goes through
/// [`printable`], so no field can be forgotten.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::terminal::write_line(format_args!("{}", $crate::cli::terminal::printable(&format!($($arg)*))))
    };
}

/// `println!` that does not panic when the reader of standard output has gone (`fairsend
/// status --json | head`): the command ends quietly, as `cat` or `grep` would.
macro_rules! outln {
    () => {
        $crate::cli::terminal::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::terminal::write_line(format_args!($($arg)*))
    };
}

/// Bytes to standard output as they are, with [`write_line`]'s handling of a closed pipe.
pub fn write_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        ended_output(e);
    }
}

fn ended_output(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// One line to standard output; a closed pipe ends the process with success (nothing is left
/// to tell anyone), any other write error is reported on standard error.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        ended_output(e);
    }
}

/// `eprintln!` through [`printable_lines`].
macro_rules! tell {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cli::terminal::printable_lines(&format!($($arg)*)))
    };
}

pub(crate) use {outln, say, tell};

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_untouched() {
        assert_eq!(printable("Mäkinen Oy, 550 5.1.1"), "Mäkinen Oy, 550 5.1.1");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{1b}[2J\u{1b}]0;title\u{7}b\r\nc\td\u{7f}\u{9b}"),
            "a\\u{1b}[2J\\u{1b}]0;title\\u{7}b\\r\\nc\\td\\u{7f}\\u{9b}"
        );
        assert_eq!(printable("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(
            super::printable_lines("line 1\nline\u{1b}[1A 2\r"),
            "line 1\nline\\u{1b}[1A 2\\r"
        );
    }
}
