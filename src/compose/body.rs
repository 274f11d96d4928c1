//! The marketer's body template, rendered at run time with minijinja: no file system, no
//! globals, strict undefined — only the recipient's fields are in scope, and a field the
//! audience does not have is an error found before anything is sent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::ComposeError;
use crate::config::BodySource;

const SUBJECTS: [&str; 5] = ["subject0", "subject1", "subject2", "subject3", "subject4"];
const TEXT: &str = "text";
const HTML: &str = "html";

/// The compiled body (and subject) of one campaign: parsed once, rendered per recipient.
pub struct BodyTemplate {
    env: Environment<'static>,
    markdown: bool,
    /// (template name, source file, source text) for error messages.
    sources: Vec<(&'static str, PathBuf, String)>,
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
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // The HTML rendering escapes every value; Markdown is escaped too, because it becomes
        // HTML afterwards and a value must never become markup.
        env.set_auto_escape_callback(|name| {
            if name == HTML {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut sources: Vec<(&'static str, PathBuf, String)> = subjects
            .iter()
            .zip(SUBJECTS)
            .map(|(subject, name)| (name, campaign_file.to_path_buf(), subject.to_string()))
            .collect();
        sources.push((TEXT, text_file, text_source));
        sources.push((HTML, html_file, html_source));
        for (name, file, source) in &sources {
            env.add_template_owned(*name, source.clone())
                .map_err(|e| template_error(file, &e))?;
        }
        Ok(Self {
            env,
            markdown,
            sources,
        })
    }

    /// Every top-level field the subject and body refer to.
    pub fn fields_used(&self) -> BTreeSet<String> {
        let mut used = BTreeSet::new();
        for (name, _, _) in &self.sources {
            if let Ok(t) = self.env.get_template(name) {
                used.extend(t.undeclared_variables(false));
            }
        }
        used
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
        let subject_template = SUBJECTS
            .get(variant)
            .filter(|n| self.sources.iter().any(|(s, _, _)| s == *n))
            .unwrap_or(&SUBJECTS[0]);
        let subject = render(subject_template)?;
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
