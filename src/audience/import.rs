//! Contacts CSV → validated [`ContactRecord`]s, with every bad row reported by line and column.
//! Nothing here writes anything: the caller decides whether to apply the valid rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{ContactRecord, EmailAddress, STANDARD_FIELDS};
use crate::config::{LegalBasis, Locale, Register};

/// A problem with the file as a whole: nothing in it can be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: cannot read the file")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: line 1: {message}")]
    Header { file: PathBuf, message: String },
}

/// A row that cannot be imported; the other rows are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(
                f,
                "{}: line {}: column {}: {}",
                self.file, self.line, c, self.message
            ),
            None => write!(f, "{}: line {}: {}", self.file, self.line, self.message),
        }
    }
}

#[derive(Debug, Default)]
pub struct ParsedImport {
    /// Valid rows, one per distinct address (duplicates merged).
    pub records: Vec<ContactRecord>,
    pub errors: Vec<RowError>,
    /// Rows that repeated an address already seen in the file and were merged into it.
    pub merged_duplicates: usize,
}

const KNOWN: [&str; 9] = [
    "email",
    "first_name",
    "last_name",
    "company",
    "business_id",
    "title",
    "locale",
    "legal_basis",
    "consent_at",
];

/// Reads a contacts CSV for `register`. Rows take the register's default legal basis when
/// their own `legal_basis` cell is empty.
pub fn parse_contacts_csv(file: &Path, register: &Register) -> Result<ParsedImport, ImportError> {
    let bytes = std::fs::read(file).map_err(|source| ImportError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let display = file.display().to_string();
    let header_error = |message: String| ImportError::Header {
        file: file.to_path_buf(),
        message,
    };
    // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| header_error(format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut column_of: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if column_of.insert(h.as_str(), i).is_some() {
            return Err(header_error(format!("column '{h}' appears twice")));
        }
        if !KNOWN.contains(&h.as_str()) {
            if !is_template_identifier(h) {
                return Err(header_error(format!(
                    "column '{h}' is not a usable field name (letters a-z, digits and '_', \
                     starting with a letter)"
                )));
            }
            if STANDARD_FIELDS.contains(&h.as_str()) {
                return Err(header_error(format!(
                    "column '{h}' would hide the standard template field of the same name"
                )));
            }
        }
    }
    if !column_of.contains_key("email") {
        return Err(header_error("there is no 'email' column".into()));
    }

    let mut parsed = ParsedImport::default();
    let mut index_of: HashMap<EmailAddress, usize> = HashMap::new();
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields; the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8 text".to_string(),
                    _ => e.to_string(),
                };
                parsed.errors.push(RowError {
                    file: display.clone(),
                    line,
                    column: None,
                    message,
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row_error = |column: &str, message: String| RowError {
            file: display.clone(),
            line,
            column: Some(column.to_string()),
            message,
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        match parse_row(
            &headers,
            &column_of,
            &record,
            register,
            &format!("{display}:{line}"),
        ) {
            Ok(contact) => {
                if let Some(&existing) = index_of.get(&contact.email) {
                    merge_into(&mut parsed.records[existing], contact);
                    parsed.merged_duplicates += 1;
                } else {
                    index_of.insert(contact.email.clone(), parsed.records.len());
                    parsed.records.push(contact);
                }
            }
            Err((column, message)) => parsed.errors.push(row_error(column, message)),
        }
    }
    Ok(parsed)
}

type CellError = (&'static str, String);

fn parse_row(
    headers: &[String],
    column_of: &HashMap<&str, usize>,
    record: &csv::StringRecord,
    register: &Register,
    source: &str,
) -> Result<ContactRecord, CellError> {
    let cell = |name: &str| -> &str {
        column_of
            .get(name)
            .and_then(|&i| record.get(i))
            .unwrap_or("")
    };
    for (name, value) in headers.iter().zip(record.iter()) {
        if value.chars().any(char::is_control) {
            let column: &'static str = KNOWN
                .iter()
                .find(|k| **k == name.as_str())
                .copied()
                .unwrap_or("(extra column)");
            return Err((
                column,
                "contains a line break or control character, which could reach a mail header"
                    .to_string(),
            ));
        }
    }
    let email = EmailAddress::parse(cell("email")).map_err(|e| ("email", e.to_string()))?;
    let locale = match cell("locale") {
        "" => None,
        text => Some(
            Locale::parse(text).ok_or(("locale", format!("'{text}' is not one of fi, sv, en")))?,
        ),
    };
    let legal_basis = match cell("legal_basis") {
        "" => register.default_legal_basis.ok_or((
            "legal_basis",
            format!(
                "is empty and register '{}' has no default_legal_basis; every contact needs one \
                 (consent, customer_relationship or job_role)",
                register.name
            ),
        ))?,
        text => LegalBasis::parse(text).ok_or((
            "legal_basis",
            format!("'{text}' is not one of consent, customer_relationship, job_role"),
        ))?,
    };
    let consent_at = match (legal_basis, cell("consent_at")) {
        (LegalBasis::Consent, "") => {
            return Err((
                "consent_at",
                "is empty; consent must be recorded with its time".into(),
            ));
        }
        (LegalBasis::Consent, text) => Some(parse_timestamp(text).ok_or((
            "consent_at",
            format!("'{text}' is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        ))?),
        (_, "") => None,
        (_, _) => {
            return Err((
                "consent_at",
                format!(
                    "is set but legal_basis is {}, not consent",
                    legal_basis.as_str()
                ),
            ));
        }
    };
    let fields = headers
        .iter()
        .zip(record.iter())
        .filter(|(name, _)| !KNOWN.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.to_string()))
        .collect();
    Ok(ContactRecord {
        email,
        first_name: cell("first_name").to_string(),
        last_name: cell("last_name").to_string(),
        company: cell("company").to_string(),
        business_id: match cell("business_id") {
            "" => String::new(),
            text => super::BusinessId::parse(text)
                .map_err(|e| ("business_id", e.to_string()))?
                .to_string(),
        },
        title: cell("title").to_string(),
        locale,
        legal_basis,
        consent_at,
        fields,
        source: source.to_string(),
    })
}

/// A later row for the same address fills in and overrides what the earlier one said.
fn merge_into(target: &mut ContactRecord, later: ContactRecord) {
    fn take(into: &mut String, from: String) {
        if !from.is_empty() {
            *into = from;
        }
    }
    take(&mut target.first_name, later.first_name);
    take(&mut target.last_name, later.last_name);
    take(&mut target.company, later.company);
    take(&mut target.business_id, later.business_id);
    take(&mut target.title, later.title);
    target.locale = later.locale.or(target.locale);
    target.legal_basis = later.legal_basis;
    target.consent_at = later.consent_at.or(target.consent_at.take());
    for (k, v) in later.fields {
        if !v.is_empty() || !target.fields.contains_key(&k) {
            target.fields.insert(k, v);
        }
    }
}

fn parse_timestamp(text: &str) -> Option<String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        );
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(
        date.and_hms_opt(0, 0, 0)?
            .and_utc()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn is_template_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
