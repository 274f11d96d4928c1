//! The marketer's body template, rendered at run time with minijinja: no file system, no
//! globals, strict undefined — only the recipient's fields are in scope, and a field the
//! audience does not have is an error found before anything is sent.
//!
//! Three limits keep a body from doing more than a body should: every execution has a fuel
//! budget (a loop that would hang `send` is a template error instead); a contact's values are
//! always literal text in the message (escaped for HTML, and for Markdown before it becomes
//! HTML, so a company named `[Click](https://evil.example)` is not a link); and an empty
//! value used without a `default` fallback is found per contact before sending.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use super::ComposeError;
use crate::config::BodySource;

const SUBJECTS: [&str; 5] = ["subject0", "subject1", "subject2", "subject3", "subject4"];
const TEXT: &str = "text";
const HTML: &str = "html";

/// Instructions one rendering may execute. A long personalised body takes a few thousand;
/// three nested loops of a thousand would take a billion.
pub const FUEL: u64 = 200_000;

/// The escaping of a Markdown body's values: Markdown syntax first, HTML after (pulldown-cmark
/// escapes the text it emits).
const MARKDOWN_ESCAPE: AutoEscape = AutoEscape::Custom("markdown");

/// A field a recipient has empty, used where it would print nothing (no `default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyField {
    pub field: String,
    /// The subject line (of the campaign file) rather than the body.
    pub in_subject: bool,
    pub file: PathBuf,
    /// The body's line; a subject is one line of the campaign file.
    pub line: Option<usize>,
}

/// The compiled body (and subject) of one campaign: parsed once, rendered per recipient.
#[derive(Clone)]
pub struct BodyTemplate {
    env: Environment<'static>,
    /// The same templates with undefined values allowed in tests (`{% if field %}`): rendering
    /// without a field shows whether every use of it has a fallback.
    probe: Environment<'static>,
    markdown: bool,
    /// (template name, source file, source text) for error messages.
    sources: Vec<(&'static str, PathBuf, String)>,
    used: BTreeSet<String>,
}

/// One environment over `sources`: sandboxed, fuelled, with the escaping and the `default`
/// filter of fairsend bodies.
fn environment(
    sources: &[(&'static str, PathBuf, String)],
    markdown: bool,
    undefined: UndefinedBehavior,
) -> Result<Environment<'static>, ComposeError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
    env.set_fuel(Some(FUEL));
    // The HTML rendering escapes every value; a Markdown body is escaped for Markdown,
    // because it becomes HTML afterwards and a value must never become markup.
    env.set_auto_escape_callback(move |name| match (name, markdown) {
        (HTML, true) => MARKDOWN_ESCAPE,
        (HTML, false) => AutoEscape::Html,
        _ => AutoEscape::None,
    });
    env.set_formatter(format_value);
    env.add_filter("default", default_filter);
    env.add_filter("safe", refuse_safe);
    for (name, file, source) in sources {
        env.add_template_owned(*name, source.clone())
            .map_err(|e| template_error(file, &e))?;
    }
    Ok(env)
}

fn format_value(out: &mut minijinja::Output, state: &State, value: &Value) -> Result<(), Error> {
    if state.auto_escape() != MARKDOWN_ESCAPE {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_safe() {
        return write!(out, "{value}").map_err(Error::from);
    }
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    out.write_str(&escape_markdown(&value.to_string()))
        .map_err(Error::from)
}

/// Every ASCII punctuation character backslash-escaped: CommonMark then shows it literally,
/// so no value can open a link, an image, emphasis, a heading or raw HTML.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `|safe` would let a contact's value through as markup: a value is always text here.
fn refuse_safe(_value: &Value) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "the safe filter is not available in a body: a contact's value is always shown as \
         text (write markup in the template itself)",
    ))
}

/// `{{ field | default("fallback") }}`: the fallback when the field is missing, empty or only
/// spaces (Jinja's own `default` ignores empty strings, which is the case that matters here).
fn default_filter(value: &Value, fallback: Option<Value>) -> Value {
    let missing = value.is_undefined()
        || value.is_none()
        || value.as_str().is_some_and(|s| s.trim().is_empty());
    if missing {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

impl BodyTemplate {
    /// `subjects`: the subject template of each A/B variant (one without a test).
    pub fn load(
        body: &BodySource,
        subjects: &[&str],
        campaign_file: &Path,
    ) -> Result<Self, ComposeError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| ComposeError::Template {
                file: path.to_path_buf(),
                message: format!("cannot read: {e}"),
            })
        };
        let (markdown, text_file, text_source, html_file, html_source) = match body {
            BodySource::Markdown(path) => {
                let source = read(path)?;
                (true, path.clone(), source.clone(), path.clone(), source)
            }
            BodySource::HtmlAndText { html, text } => {
                (false, text.clone(), read(text)?, html.clone(), read(html)?)
            }
        };
        let mut sources: Vec<(&'static str, PathBuf, String)> = subjects
            .iter()
            .zip(SUBJECTS)
            .map(|(subject, name)| (name, campaign_file.to_path_buf(), subject.to_string()))
            .collect();
        sources.push((TEXT, text_file, text_source));
        sources.push((HTML, html_file, html_source));
        let env = environment(&sources, markdown, UndefinedBehavior::Strict)?;
        let probe = environment(&sources, markdown, UndefinedBehavior::SemiStrict)?;
        let mut used = BTreeSet::new();
        for (name, _, _) in &sources {
            if let Ok(t) = env.get_template(name) {
                used.extend(t.undeclared_variables(false));
            }
        }
        Ok(Self {
            env,
            probe,
            markdown,
            sources,
            used,
        })
    }

    /// Every top-level field the subject and body refer to.
    pub fn fields_used(&self) -> BTreeSet<String> {
        self.used.clone()
    }

    /// The fields this recipient has empty and that a subject (any A/B variant: the recipient
    /// may be dealt any of them) or the body would print as nothing: each is rendered without
    /// the field, and a use with no `default` (or `{% if %}` around it) fails there, naming the
    /// file and line.
    pub fn empty_fields(&self, fields: &BTreeMap<String, String>) -> Vec<EmptyField> {
        let mut found = Vec::new();
        for field in &self.used {
            if !fields.get(field).is_some_and(|v| v.trim().is_empty()) {
                continue;
            }
            let mut without = fields.clone();
            without.remove(field);
            let context = Value::from_serialize(&without);
            for (name, file, _) in &self.sources {
                let Ok(template) = self.probe.get_template(name) else {
                    continue;
                };
                if let Err(e) = template.render(&context)
                    && e.kind() == ErrorKind::UndefinedError
                {
                    let in_subject = SUBJECTS.contains(name);
                    found.push(EmptyField {
                        field: field.clone(),
                        in_subject,
                        file: file.clone(),
                        line: e.line().filter(|_| !in_subject),
                    });
                    break;
                }
            }
        }
        found
    }

    fn subject_name(&self, variant: usize) -> &'static str {
        SUBJECTS
            .get(variant)
            .copied()
            .filter(|n| self.sources.iter().any(|(s, _, _)| s == n))
            .unwrap_or(SUBJECTS[0])
    }

    /// Fails on the first field the templates use that is not in `available`, naming the file
    /// and line where it is used.
    pub fn check_fields(&self, available: &BTreeSet<String>) -> Result<(), ComposeError> {
        for (name, file, source) in &self.sources {
            let Ok(template) = self.env.get_template(name) else {
                continue;
            };
            let mut unknown: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|f| !available.contains(f))
                .collect();
            unknown.sort();
            if let Some(field) = unknown.into_iter().next() {
                return Err(ComposeError::UnknownField {
                    file: file.clone(),
                    line: line_of(source, &field),
                    field,
                    available: available.iter().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// The absolute http(s) links of the body that hold no template expression: the only
    /// targets a tracked link may redirect to.
    pub fn static_links(&self) -> Vec<String> {
        let mut links: Vec<String> = Vec::new();
        for (name, _, source) in &self.sources {
            if !matches!(*name, TEXT | HTML) {
                continue;
            }
            for start in ["](", "href=\"", "href='"] {
                for (at, _) in source.match_indices(start) {
                    let rest = &source[at + start.len()..];
                    let end = rest.find([')', '"', '\'', ' ', '>']).unwrap_or(rest.len());
                    let url = rest[..end].trim();
                    if (url.starts_with("https://") || url.starts_with("http://"))
                        && !url.contains("{{")
                        && !url.contains("{%")
                        && !links.iter().any(|l| l == url)
                    {
                        links.push(url.to_string());
                    }
                }
            }
        }
        links
    }

    /// Renders (subject, text, html) for one recipient's fields and subject variant.
    pub fn render(
        &self,
        fields: &Value,
        variant: usize,
    ) -> Result<(String, String, String), ComposeError> {
        let render = |name: &str| -> Result<String, ComposeError> {
            let (file, _) = self.source(name);
            let template = self
                .env
                .get_template(name)
                .map_err(|e| template_error(file, &e))?;
            template
                .render(fields)
                .map_err(|e| template_error(file, &e))
        };
        let subject = render(self.subject_name(variant))?;
        let text = render(TEXT)?;
        let html_source = render(HTML)?;
        let html = if self.markdown {
            let mut html = String::with_capacity(html_source.len() * 2);
            let options = pulldown_cmark::Options::ENABLE_TABLES
                | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
            pulldown_cmark::html::push_html(
                &mut html,
                pulldown_cmark::Parser::new_ext(&html_source, options),
            );
            html
        } else {
            html_source
        };
        Ok((subject, text, html))
    }

    fn source(&self, name: &str) -> (&Path, &str) {
        self.sources
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, f, s)| (f.as_path(), s.as_str()))
            .unwrap_or((Path::new("?"), ""))
    }
}

fn template_error(file: &Path, e: &minijinja::Error) -> ComposeError {
    let mut message = e.kind().to_string();
    if e.kind() == ErrorKind::OutOfFuel {
        message = format!(
            "the template ran longer than its limit of {FUEL} steps (a loop too large, or \
             nested too deep); a body must render in a moment"
        );
    }
    if let Some(detail) = e.detail() {
        message = format!("{message}: {detail}");
    }
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    ComposeError::Template {
        file: file.to_path_buf(),
        message,
    }
}

fn line_of(source: &str, field: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| {
            l.match_indices(field).any(|(i, _)| {
                let before = l[..i].chars().next_back();
                let after = l[i + field.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                !word(before) && !word(after)
            })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(subject: &str, body: &str) -> (tempfile::TempDir, BodyTemplate) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.md");
        std::fs::write(&path, body).unwrap();
        let t = BodyTemplate::load(
            &BodySource::Markdown(path),
            &[subject],
            &dir.path().join("c.toml"),
        )
        .unwrap();
        (dir, t)
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_ab_subject_is_probed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.md");
        std::fs::write(&path, "x\n").unwrap();
        let t = BodyTemplate::load(
            &BodySource::Markdown(path),
            &["Offer", "{{ first_name }}, an offer"],
            &dir.path().join("c.toml"),
        )
        .unwrap();
        let empty = t.empty_fields(&fields(&[("first_name", "")]));
        assert_eq!(empty.len(), 1, "{empty:?}");
        assert!(empty[0].in_subject);
    }

    #[test]
    fn markdown_escaping_leaves_no_syntax() {
        assert_eq!(escape_markdown("a_b*c [d](e)"), r"a\_b\*c \[d\]\(e\)");
        assert_eq!(escape_markdown("Äö 1. x"), r"Äö 1\. x");
    }

    #[test]
    fn default_applies_to_empty_and_blank_values_only() {
        let (_dir, t) = template("{{ first_name | default('Hei') }}", "x\n");
        for (value, subject) in [("", "Hei"), ("  ", "Hei"), ("Anna", "Anna")] {
            let v = Value::from_serialize(fields(&[("first_name", value)]));
            assert_eq!(t.render(&v, 0).unwrap().0, subject, "{value:?}");
        }
    }

    #[test]
    fn empty_fields_are_those_printed_without_a_fallback() {
        let (_dir, t) = template(
            "{{ company | default('you') }}",
            "Hei {{ first_name }}\n{% if title %}{{ title }}{% endif %}\n",
        );
        let f = fields(&[("first_name", ""), ("company", ""), ("title", "")]);
        let empty = t.empty_fields(&f);
        assert_eq!(empty.len(), 1, "{empty:?}");
        assert_eq!(empty[0].field, "first_name");
        assert_eq!(empty[0].line, Some(1));
        assert!(!empty[0].in_subject);
        let full = fields(&[("first_name", "Anna"), ("company", ""), ("title", "")]);
        assert!(t.empty_fields(&full).is_empty());
    }
}
