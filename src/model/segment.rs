//! Segments: which contacts of a campaign's registers it is meant for, as a typed filter.
//!
//! The `where` expression of a campaign's `[audience]` is parsed here once into a [`Filter`];
//! the store compiles a filter to SQL with bound parameters (never pasting a value into the
//! statement), the same on SQLite and PostgreSQL. The language is small on purpose:
//!
//! ```text
//! expr       := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | condition
//! condition  := FIELD "=" TEXT | FIELD "!=" TEXT
//!             | FIELD ["not"] "in" "[" TEXT ("," TEXT)* "]"
//!             | FIELD "contains" TEXT | FIELD "starts_with" TEXT
//!             | FIELD "is" ["not"] "empty"
//! FIELD      := a name of letters, digits, "_" and "-": a standard field (email, domain,
//!               first_name, last_name, company, business_id, title, locale, register) or a
//!               column of the register's CSV
//! TEXT       := "double-quoted", with \" and \\ as the only escapes
//! ```
//!
//! Values are text and comparisons exact (case matters): the same answer on both databases.
//! A field a contact does not have is empty.

use std::fmt;

/// The fields every contact has; any other name is a CSV column of the register.
pub const SEGMENT_STANDARD_FIELDS: [&str; 9] = [
    "email",
    "domain",
    "first_name",
    "last_name",
    "company",
    "business_id",
    "title",
    "locale",
    "register",
];

/// A campaign's `[audience]`: whom of its registers' eligible contacts it is meant for.
/// Every part narrows the selection; an empty segment selects everyone eligible.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    /// The `where` expression, parsed.
    pub filter: Option<Filter>,
    /// Leave out contacts sent any other campaign within this span.
    pub not_sent_within: Option<std::time::Duration>,
    /// Keep only contacts who clicked or replied within this span.
    pub engaged_within: Option<std::time::Duration>,
    /// Leave out contacts these campaigns (by name) were sent to.
    pub exclude_campaigns: Vec<String>,
}

impl Segment {
    pub fn is_everyone(&self) -> bool {
        *self == Self::default()
    }
}

/// A filter over contacts, as parsed from a `where` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Condition(Condition),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: Field,
    pub test: Test,
}

/// Which value a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// One of [`SEGMENT_STANDARD_FIELDS`].
    Standard(&'static str),
    /// A column of the register's CSV, kept with the contact's membership.
    Custom(String),
}

impl Field {
    fn named(name: &str) -> Self {
        match SEGMENT_STANDARD_FIELDS.iter().find(|f| **f == name) {
            Some(standard) => Self::Standard(standard),
            None => Self::Custom(name.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Standard(name) => name,
            Self::Custom(name) => name,
        }
    }
}

/// What a condition asks of the field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Contains(String),
    StartsWith(String),
    IsEmpty,
    IsNotEmpty,
}

/// Why a `where` expression could not be read: the column (1-based character position) and
/// what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {column}: {message}")]
pub struct SegmentError {
    pub column: usize,
    pub message: String,
}

/// Longest expression accepted: a segment is a sentence, not a data file.
const MAX_EXPRESSION_CHARS: usize = 4096;
/// Deepest nesting of parentheses and `not`, so that parsing cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

impl Filter {
    /// Parses a `where` expression.
    ///
    /// ```
    /// use fairsend::model::{Filter, Test};
    ///
    /// let f = Filter::parse(r#"industry = "logistics" and city in ["Tampere", "Turku"]"#).unwrap();
    /// assert_eq!(f.fields(), ["city", "industry"]);
    /// assert!(Filter::parse(r#"city = Tampere"#).is_err()); // values are quoted
    /// ```
    pub fn parse(text: &str) -> Result<Self, SegmentError> {
        if text.chars().count() > MAX_EXPRESSION_CHARS {
            return Err(SegmentError {
                column: MAX_EXPRESSION_CHARS,
                message: format!("the expression is longer than {MAX_EXPRESSION_CHARS} characters"),
            });
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            depth: 0,
            end: text.chars().count() + 1,
        };
        let filter = parser.or()?;
        match parser.peek() {
            None => Ok(filter),
            Some(token) => Err(parser.error_at(
                token.column,
                format!("expected `and`, `or` or the end, found {}", token.kind),
            )),
        }
    }

    /// The names of the fields the filter reads, sorted, each once.
    pub fn fields(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.collect_fields(&mut names);
        names.sort();
        names.dedup();
        names
    }

    /// The CSV columns (not standard fields) the filter reads.
    pub fn custom_fields(&self) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|name| !SEGMENT_STANDARD_FIELDS.contains(&name.as_str()))
            .collect()
    }

    fn collect_fields(&self, names: &mut Vec<String>) {
        match self {
            Self::And(parts) | Self::Or(parts) => {
                parts.iter().for_each(|p| p.collect_fields(names));
            }
            Self::Not(inner) => inner.collect_fields(names),
            Self::Condition(c) => names.push(c.field.name().to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
    Word(String),
    Text(String),
    Equals,
    NotEquals,
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(w) => write!(f, "`{w}`"),
            Self::Text(t) => write!(f, "the text \"{t}\""),
            Self::Equals => f.write_str("`=`"),
            Self::NotEquals => f.write_str("`!=`"),
            Self::Open => f.write_str("`(`"),
            Self::Close => f.write_str("`)`"),
            Self::OpenList => f.write_str("`[`"),
            Self::CloseList => f.write_str("`]`"),
            Self::Comma => f.write_str("`,`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    column: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, SegmentError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let single = match c {
            '(' => Some(TokenKind::Open),
            ')' => Some(TokenKind::Close),
            '[' => Some(TokenKind::OpenList),
            ']' => Some(TokenKind::CloseList),
            ',' => Some(TokenKind::Comma),
            '=' => Some(TokenKind::Equals),
            _ => None,
        };
        if let Some(kind) = single {
            tokens.push(Token { kind, column });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            tokens.push(Token {
                kind: TokenKind::NotEquals,
                column,
            });
            i += 2;
        } else if c == '"' {
            let (value, next) = quoted(&chars, i)?;
            tokens.push(Token {
                kind: TokenKind::Text(value),
                column,
            });
            i = next;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            tokens.push(Token {
                kind: TokenKind::Word(chars[start..i].iter().collect()),
                column,
            });
        } else {
            return Err(SegmentError {
                column,
                message: format!("unexpected character {c:?}"),
            });
        }
    }
    Ok(tokens)
}

/// Reads a double-quoted text starting at `start`; returns it and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), SegmentError> {
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((value, i + 1)),
            '\\' => match chars.get(i + 1) {
                Some(&escaped @ ('"' | '\\')) => {
                    value.push(escaped);
                    i += 2;
                }
                _ => {
                    return Err(SegmentError {
                        column: i + 1,
                        message: "only \\\" and \\\\ may follow a backslash".into(),
                    });
                }
            },
            c if c.is_control() => {
                return Err(SegmentError {
                    column: i + 1,
                    message: "a control character is not allowed in a value".into(),
                });
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(SegmentError {
        column: start + 1,
        message: "this text has no closing quote".into(),
    })
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    /// The column just past the expression, for "expected … at the end" errors.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |t| t.column)
    }

    fn error_at(&self, column: usize, message: String) -> SegmentError {
        SegmentError { column, message }
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Filter, SegmentError> {
        let mut parts = vec![self.and()?];
        while self.at_word("or") {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, SegmentError> {
        let mut parts = vec![self.unary()?];
        while self.at_word("and") {
            self.at += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Filter, SegmentError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                self.column(),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let filter = if self.at_word("not") {
            self.at += 1;
            Filter::Not(Box::new(self.unary()?))
        } else if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Open)) {
            let open = self.column();
            self.at += 1;
            let inner = self.or()?;
            match self.next() {
                Some(Token {
                    kind: TokenKind::Close,
                    ..
                }) => inner,
                _ => return Err(self.error_at(open, "this `(` is never closed".into())),
            }
        } else {
            Filter::Condition(self.condition()?)
        };
        self.depth -= 1;
        Ok(filter)
    }

    fn condition(&mut self) -> Result<Condition, SegmentError> {
        let column = self.column();
        let field = match self.next() {
            Some(Token {
                kind: TokenKind::Word(name),
                ..
            }) if !is_keyword(&name) => Field::named(&name),
            Some(token) => {
                return Err(self.error_at(
                    token.column,
                    format!("expected a field name, found {}", token.kind),
                ));
            }
            None => return Err(self.error_at(column, "expected a field name".into())),
        };
        let test = self.test(field.name())?;
        Ok(Condition { field, test })
    }

    fn test(&mut self, field: &str) -> Result<Test, SegmentError> {
        let column = self.column();
        let Some(token) = self.next() else {
            return Err(self.error_at(
                column,
                format!(
                    "expected `=`, `!=`, `in`, `contains`, `starts_with` or `is` after `{field}`"
                ),
            ));
        };
        match token.kind {
            TokenKind::Equals => Ok(Test::Equals(self.text()?)),
            TokenKind::NotEquals => Ok(Test::NotEquals(self.text()?)),
            TokenKind::Word(w) => match w.to_ascii_lowercase().as_str() {
                "in" => Ok(Test::In(self.list()?)),
                "not" if self.at_word("in") => {
                    self.at += 1;
                    Ok(Test::NotIn(self.list()?))
                }
                "contains" => Ok(Test::Contains(self.text()?)),
                "starts_with" => Ok(Test::StartsWith(self.text()?)),
                "is" if self.at_word("empty") => {
                    self.at += 1;
                    Ok(Test::IsEmpty)
                }
                "is" if self.at_word("not") => {
                    self.at += 1;
                    if !self.at_word("empty") {
                        return Err(self.error_at(self.column(), "expected `empty`".into()));
                    }
                    self.at += 1;
                    Ok(Test::IsNotEmpty)
                }
                _ => Err(self.error_at(
                    token.column,
                    format!("`{w}` is not a test: use =, !=, in, not in, contains, starts_with, is empty"),
                )),
            },
            other => Err(self.error_at(
                token.column,
                format!("expected a test (=, !=, in, …) after `{field}`, found {other}"),
            )),
        }
    }

    fn text(&mut self) -> Result<String, SegmentError> {
        let column = self.column();
        match self.next() {
            Some(Token {
                kind: TokenKind::Text(value),
                ..
            }) => Ok(value),
            Some(Token {
                kind: TokenKind::Word(w),
                column,
            }) => Err(self.error_at(column, format!("values are quoted: write \"{w}\""))),
            Some(token) => Err(self.error_at(
                token.column,
                format!("expected a quoted value, found {}", token.kind),
            )),
            None => Err(self.error_at(column, "expected a quoted value".into())),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, SegmentError> {
        let column = self.column();
        if !matches!(self.next().map(|t| t.kind), Some(TokenKind::OpenList)) {
            return Err(self.error_at(column, "expected a list: [\"a\", \"b\"]".into()));
        }
        let mut values = vec![self.text()?];
        loop {
            let column = self.column();
            match self.next().map(|t| t.kind) {
                Some(TokenKind::Comma) => values.push(self.text()?),
                Some(TokenKind::CloseList) => return Ok(values),
                _ => return Err(self.error_at(column, "expected `,` or `]` in the list".into())),
            }
        }
    }
}

fn is_keyword(word: &str) -> bool {
    [
        "and",
        "or",
        "not",
        "in",
        "is",
        "empty",
        "contains",
        "starts_with",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, test: Test) -> Filter {
        Filter::Condition(Condition {
            field: Field::named(field),
            test,
        })
    }

    #[test]
    fn parses_the_documented_example() {
        let f = Filter::parse(r#"industry = "logistics" and city in ["Tampere", "Turku"]"#)
            .expect("valid");
        assert_eq!(
            f,
            Filter::And(vec![
                cond("industry", Test::Equals("logistics".into())),
                cond("city", Test::In(vec!["Tampere".into(), "Turku".into()])),
            ])
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tightest() {
        let f = Filter::parse(r#"a = "1" or b = "2" and not c is empty"#).expect("valid");
        assert_eq!(
            f,
            Filter::Or(vec![
                cond("a", Test::Equals("1".into())),
                Filter::And(vec![
                    cond("b", Test::Equals("2".into())),
                    Filter::Not(Box::new(cond("c", Test::IsEmpty))),
                ]),
            ])
        );
        let grouped = Filter::parse(r#"(a = "1" or b = "2") and title starts_with "CTO""#);
        assert!(matches!(grouped, Ok(Filter::And(_))));
    }

    #[test]
    fn standard_and_custom_fields_are_told_apart() {
        let f = Filter::parse(r#"domain = "example.fi" and kunta != "Oulu""#).expect("valid");
        assert_eq!(f.custom_fields(), ["kunta"]);
        assert_eq!(f.fields(), ["domain", "kunta"]);
    }

    #[test]
    fn errors_name_the_column_and_what_was_expected() {
        let e = Filter::parse(r#"city = Tampere"#).unwrap_err();
        assert_eq!(e.column, 8);
        assert!(e.message.contains("quoted"), "{e}");
        let e = Filter::parse(r#"city in ["Tampere" "Turku"]"#).unwrap_err();
        assert!(e.message.contains("`,` or `]`"), "{e}");
        let e = Filter::parse(r#"(city = "x""#).unwrap_err();
        assert_eq!(e.column, 1);
        let e = Filter::parse(r#"city = "x" city = "y""#).unwrap_err();
        assert!(e.message.contains("expected `and`"), "{e}");
        let e = Filter::parse(r#"city ~ "x""#).unwrap_err();
        assert!(e.message.contains("unexpected character"), "{e}");
        assert!(Filter::parse("").is_err());
        assert!(Filter::parse("city = \"a\nb\"").is_err());
        assert!(Filter::parse(r#"and = "x""#).is_err());
    }

    #[test]
    fn escapes_in_values() {
        let f = Filter::parse(r#"company = "A \"B\" \\ C""#).expect("valid");
        assert_eq!(f, cond("company", Test::Equals(r#"A "B" \ C"#.into())));
    }

    #[test]
    fn hostile_input_is_refused_not_overflowed() {
        let deep = format!("{}a = \"1\"{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&deep).is_err());
        let nots = format!("{}a = \"1\"", "not ".repeat(1000));
        assert!(Filter::parse(&nots).is_err());
        assert!(Filter::parse(&"a".repeat(100_000)).is_err());
    }
}
