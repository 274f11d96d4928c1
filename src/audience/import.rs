//! Contacts CSV → validated [`ContactRecord`]s, with every bad row reported by line and column.
//! Nothing here writes to the database: the caller decides whether to apply the valid rows.
//! The one file written here is the optional CSV of rejected rows, beside the input.
//!
//! Line numbers are what an editor shows: they are counted from the bytes themselves (LF,
//! CRLF, quoted fields spanning lines), not from the csv crate's record count, which lags by
//! one after each CRLF. The file is streamed, and a record longer than
//! [`MAX_RECORD_BYTES`] stops the import, so a file with a 1 GB line costs kilobytes.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{ContactRecord, EmailAddress, STANDARD_FIELDS};
use crate::config::Register;
use crate::model::{LegalBasis, Locale};

/// The longest record (row) accepted. A contact row is a few hundred bytes; anything near
/// this is not a contacts file, and reading on would only grow memory.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// The columns of a rejected-rows file that are not contact data: an import ignores them,
/// so the file can be corrected and imported as it is.
pub const REJECTED_LINE_COLUMN: &str = "rejected_line";
pub const REJECTED_REASON_COLUMN: &str = "rejected_reason";

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
    #[error(
        "{file}: line {line}: the row is longer than {max} bytes, so this is not a contacts \
         file (or a quote is never closed); nothing was imported",
        max = MAX_RECORD_BYTES
    )]
    RecordTooLong { file: PathBuf, line: u64 },
    #[error("{file}: cannot write the rejected rows: {source}")]
    WriteRejected {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// A row that cannot be imported; the other rows are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
    /// The row's cells as read, for the rejected-rows file.
    #[serde(skip)]
    pub cells: Vec<String>,
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
    /// The header row as written in the file, for the rejected-rows file.
    pub headers: Vec<String>,
}

impl ParsedImport {
    /// Writes the rejected rows, each with its line and the reason, to `FILE.rejected.csv`
    /// beside `input`, and returns that path. When no row was rejected there is no such file:
    /// one left by an earlier run would list rows that are no longer rejected.
    pub fn write_rejected(&self, input: &Path) -> Result<Option<PathBuf>, ImportError> {
        let out = rejected_path(input);
        let write_error = |source: std::io::Error| ImportError::WriteRejected {
            file: out.clone(),
            source,
        };
        if self.errors.is_empty() {
            return match std::fs::remove_file(&out) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_error(e)),
                _ => Ok(None),
            };
        }
        let mut writer = csv::Writer::from_path(&out).map_err(|e| write_error(e.into()))?;
        let mut header: Vec<&str> = self
            .headers
            .iter()
            .map(String::as_str)
            .filter(|h| !is_rejected_column(h))
            .collect();
        header.extend([REJECTED_LINE_COLUMN, REJECTED_REASON_COLUMN]);
        writer
            .write_record(&header)
            .map_err(|e| write_error(e.into()))?;
        let width = header.len() - 2;
        for error in &self.errors {
            let mut row: Vec<String> = self
                .headers
                .iter()
                .zip(
                    error
                        .cells
                        .iter()
                        .map(String::as_str)
                        .chain(std::iter::repeat("")),
                )
                .filter(|(h, _)| !is_rejected_column(h))
                .map(|(_, cell)| cell.to_string())
                .collect();
            // A row with more cells than the header keeps the extra ones in its reason.
            let extra = error.cells.len().saturating_sub(self.headers.len());
            let mut reason = match &error.column {
                Some(c) => format!("column {c}: {}", error.message),
                None => error.message.clone(),
            };
            if extra > 0 {
                reason.push_str(&format!(
                    " (extra cells: {})",
                    error.cells[self.headers.len()..].join(", ")
                ));
            }
            row.resize(width, String::new());
            row.push(error.line.to_string());
            row.push(reason);
            writer
                .write_record(&row)
                .map_err(|e| write_error(e.into()))?;
        }
        writer.flush().map_err(write_error)?;
        Ok(Some(out))
    }
}

/// `contacts/customers.csv` → `contacts/customers.rejected.csv`.
pub fn rejected_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "contacts".into());
    input.with_file_name(format!("{stem}.rejected.csv"))
}

fn is_rejected_column(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case(REJECTED_LINE_COLUMN)
        || name.trim().eq_ignore_ascii_case(REJECTED_REASON_COLUMN)
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

/// What the byte counter has seen: the offsets of line-break bytes not yet passed by a
/// record, and where the record being read began.
#[derive(Default)]
struct Lines {
    /// Bytes handed to the csv reader so far.
    offset: u64,
    /// Offsets of `\r` and `\n` bytes at or after the last record start asked about.
    breaks: VecDeque<(u64, u8)>,
    /// `\n` bytes before the first entry of `breaks`.
    newlines_before: u64,
    /// Where the record being read began; the reader may run at most one buffer ahead of
    /// it, plus [`MAX_RECORD_BYTES`].
    record_start: u64,
}

impl Lines {
    /// The editor line of the record that the csv reader says begins at `start`. The
    /// reader's start may sit on the `\n` of the previous CRLF or on blank lines it skips.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut start = start;
        while let Some(&(at, byte)) = self.breaks.front() {
            if at < start {
                self.newlines_before += u64::from(byte == b'\n');
                self.breaks.pop_front();
            } else if at == start {
                self.newlines_before += u64::from(byte == b'\n');
                self.breaks.pop_front();
                start += 1;
            } else {
                break;
            }
        }
        self.newlines_before + 1
    }
}

/// Hands the file to the csv reader, noting line breaks and refusing to read further than
/// one record's worth past the current record start.
struct Counted<R> {
    inner: R,
    lines: Rc<RefCell<Lines>>,
}

/// The marker inside the io error that stops an over-long record.
#[derive(Debug, thiserror::Error)]
#[error("record too long")]
struct TooLong;

/// The csv reader reads ahead by at most its buffer; allow that much beyond the limit.
const READ_AHEAD: u64 = 16 * 1024;

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut lines = self.lines.borrow_mut();
        let limit = lines.record_start + MAX_RECORD_BYTES + READ_AHEAD;
        let allowed = limit.saturating_sub(lines.offset);
        if allowed == 0 {
            return Err(std::io::Error::other(TooLong));
        }
        let want = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let base = lines.offset;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                lines.breaks.push_back((base + i as u64, b));
            }
        }
        lines.offset += n as u64;
        Ok(n)
    }
}

/// A CSV file read as a stream: its header, then each record with the editor line it starts
/// on; a record longer than [`MAX_RECORD_BYTES`] ends the file with an error.
pub(super) struct CsvStream {
    file: PathBuf,
    reader: csv::Reader<Counted<BufReader<std::fs::File>>>,
    lines: Rc<RefCell<Lines>>,
    record: csv::ByteRecord,
}

impl CsvStream {
    /// Opens `file` and reads its header row (cells trimmed, as written).
    pub(super) fn open(file: &Path) -> Result<(Self, Vec<String>), ImportError> {
        let read_error = |source: std::io::Error| ImportError::Read {
            file: file.to_path_buf(),
            source,
        };
        let mut input = BufReader::new(std::fs::File::open(file).map_err(read_error)?);
        // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
        if input
            .fill_buf()
            .map_err(read_error)?
            .starts_with(b"\xEF\xBB\xBF")
        {
            input.consume(3);
        }
        let delimiter = sniff_delimiter(input.fill_buf().map_err(read_error)?);
        let lines = Rc::new(RefCell::new(Lines::default()));
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            // Rows with the wrong number of cells are the caller's to report, cells and all.
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(Counted {
                inner: input,
                lines: Rc::clone(&lines),
            });
        let mut stream = Self {
            file: file.to_path_buf(),
            reader,
            lines,
            record: csv::ByteRecord::new(),
        };
        let header_error = |message: String| ImportError::Header {
            file: file.to_path_buf(),
            message,
        };
        let headers = match stream.reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(stream.error(e, header_error)),
        };
        let headers = csv::StringRecord::from_byte_record(headers)
            .map_err(|_| header_error("the header row is not valid UTF-8 text".into()))?;
        Ok((stream, headers.iter().map(str::to_string).collect()))
    }

    /// The next record and its line; `None` at the end of the file.
    pub(super) fn next_record(&mut self) -> Result<Option<(u64, &csv::ByteRecord)>, ImportError> {
        self.lines.borrow_mut().record_start = self.reader.position().byte();
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                let file = self.file.clone();
                return Err(self.error(e, |message| ImportError::Read {
                    file,
                    source: std::io::Error::other(message),
                }));
            }
        }
        let start = self.record.position().map(|p| p.byte()).unwrap_or(0);
        let line = self.lines.borrow_mut().line_at(start);
        // The reader stops a record one buffer past the cap; this catches the ones between.
        if self.reader.position().byte().saturating_sub(start) > MAX_RECORD_BYTES {
            return Err(ImportError::RecordTooLong {
                file: self.file.clone(),
                line,
            });
        }
        Ok(Some((line, &self.record)))
    }

    /// An over-long record becomes [`ImportError::RecordTooLong`]; anything else `other`.
    fn error(&self, e: csv::Error, other: impl FnOnce(String) -> ImportError) -> ImportError {
        let too_long = matches!(e.kind(), csv::ErrorKind::Io(io)
            if io.get_ref().is_some_and(|inner| inner.is::<TooLong>()));
        if too_long {
            let mut lines = self.lines.borrow_mut();
            let start = lines.record_start;
            ImportError::RecordTooLong {
                file: self.file.clone(),
                line: lines.line_at(start),
            }
        } else {
            other(e.to_string())
        }
    }
}

/// Reads a contacts CSV for `register` into memory, duplicates merged. Rows take the
/// register's default legal basis when their own `legal_basis` cell is empty. For files too
/// large to hold, [`ContactReader`] hands out the rows in batches instead.
pub fn parse_contacts_csv(file: &Path, register: &Register) -> Result<ParsedImport, ImportError> {
    let mut reader = ContactReader::open(file, register)?;
    let mut records: Vec<ContactRecord> = Vec::new();
    let mut merged_duplicates = 0;
    let mut index_of: HashMap<EmailAddress, usize> = HashMap::new();
    loop {
        let batch = reader.next_batch(READ_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for contact in batch {
            if let Some(&existing) = index_of.get(&contact.email) {
                merge_into(&mut records[existing], contact);
                merged_duplicates += 1;
            } else {
                index_of.insert(contact.email.clone(), records.len());
                records.push(contact);
            }
        }
    }
    Ok(ParsedImport {
        records,
        merged_duplicates,
        ..reader.finish()
    })
}

/// Rows parsed per [`ContactReader::next_batch`] call of [`parse_contacts_csv`].
const READ_BATCH: usize = 10_000;

/// A contacts CSV read as a stream of valid rows, in file order and with duplicates as they
/// are (see [`merge_into`]); the bad rows are kept for [`ContactReader::finish`].
pub struct ContactReader<'r> {
    rows: CsvStream,
    register: &'r Register,
    display: String,
    headers: Vec<String>,
    column_of: HashMap<String, usize>,
    parsed: ParsedImport,
}

impl<'r> ContactReader<'r> {
    /// Opens `file` and checks its header row.
    pub fn open(file: &Path, register: &'r Register) -> Result<Self, ImportError> {
        let (rows, raw_headers) = CsvStream::open(file)?;
        let headers: Vec<String> = raw_headers.iter().map(|h| h.to_lowercase()).collect();
        let column_of = column_index(&headers).map_err(|message| ImportError::Header {
            file: file.to_path_buf(),
            message,
        })?;
        Ok(Self {
            rows,
            register,
            display: file.display().to_string(),
            headers,
            column_of,
            parsed: ParsedImport {
                headers: raw_headers,
                ..Default::default()
            },
        })
    }

    /// Up to `max` more valid rows; empty at the end of the file. Bad rows are set aside.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<ContactRecord>, ImportError> {
        let mut batch = Vec::with_capacity(max.min(READ_BATCH));
        while batch.len() < max {
            let Some((line, raw)) = self.rows.next_record()? else {
                break;
            };
            match row_of(
                &self.headers,
                &self.column_of,
                self.register,
                &self.display,
                line,
                raw,
            ) {
                Ok(Some(contact)) => batch.push(contact),
                Ok(None) => {}
                Err(error) => self.parsed.errors.push(error),
            }
        }
        Ok(batch)
    }

    /// The bad rows and the header, with no records: what is left once every batch is read.
    pub fn finish(self) -> ParsedImport {
        self.parsed
    }
}

/// One record as a contact; `None` for a blank row.
fn row_of(
    headers: &[String],
    column_of: &HashMap<String, usize>,
    register: &Register,
    display: &str,
    line: u64,
    raw: &csv::ByteRecord,
) -> Result<Option<ContactRecord>, RowError> {
    // The cells as text are needed only for a rejected row's line in the rejected file.
    let cells = |raw: &csv::ByteRecord| -> Vec<String> {
        raw.iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    };
    let reject = |column: Option<&str>, message: String, cells: Vec<String>| RowError {
        file: display.to_string(),
        line,
        column: column.map(str::to_string),
        message,
        cells,
    };
    if raw.iter().all(<[u8]>::is_empty) {
        return Ok(None);
    }
    if raw.len() != headers.len() {
        let (len, expected) = (raw.len(), headers.len());
        return Err(reject(
            None,
            format!("has {len} fields; the header has {expected}"),
            cells(raw),
        ));
    }
    let record = csv::StringRecord::from_byte_record(raw.clone()).map_err(|e| {
        reject(
            None,
            "is not valid UTF-8 text".to_string(),
            cells(&e.into_byte_record()),
        )
    })?;
    parse_row(
        headers,
        column_of,
        &record,
        register,
        &format!("{display}:{line}"),
    )
    .map(Some)
    .map_err(|(column, message)| {
        let cells = record.iter().map(str::to_string).collect();
        reject(Some(column), message, cells)
    })
}

/// The column separator of a contact file, from its header line: `;` when the header has
/// semicolons and no commas (what Excel writes where the decimal separator is a comma, as in
/// Finland and Sweden), else `,`.
fn sniff_delimiter(start: &[u8]) -> u8 {
    let header = start.split(|b| *b == b'\n').next().unwrap_or(start);
    if header.contains(&b';') && !header.contains(&b',') {
        b';'
    } else {
        b','
    }
}

/// Each column's index by its (lower-cased) name; refuses duplicates, names a template
/// cannot use, and names that would hide a standard field.
fn column_index(headers: &[String]) -> Result<HashMap<String, usize>, String> {
    let mut column_of: HashMap<String, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if column_of.insert(h.clone(), i).is_some() {
            return Err(format!("column '{h}' appears twice"));
        }
        if !KNOWN.contains(&h.as_str()) && !is_rejected_column(h) {
            if !is_template_identifier(h) {
                return Err(format!(
                    "column '{h}' is not a usable field name (letters a-z, digits and '_', \
                     starting with a letter)"
                ));
            }
            if STANDARD_FIELDS.contains(&h.as_str()) {
                return Err(format!(
                    "column '{h}' would hide the standard template field of the same name"
                ));
            }
        }
    }
    if !column_of.contains_key("email") {
        return Err("there is no 'email' column".into());
    }
    Ok(column_of)
}

type CellError = (&'static str, String);

fn parse_row(
    headers: &[String],
    column_of: &HashMap<String, usize>,
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
    refuse_control_characters(headers, record)?;
    let email = EmailAddress::parse(cell("email")).map_err(|e| ("email", e.to_string()))?;
    let locale = match cell("locale") {
        "" => None,
        text => Some(
            Locale::parse(text).ok_or(("locale", format!("'{text}' is not one of fi, sv, en")))?,
        ),
    };
    let legal_basis = legal_basis(cell("legal_basis"), register)?;
    let consent_at = consent_at(legal_basis, cell("consent_at"))?;
    let fields = headers
        .iter()
        .zip(record.iter())
        .filter(|(name, _)| !KNOWN.contains(&name.as_str()) && !is_rejected_column(name))
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

/// A line break or control character in any cell could reach a mail header.
fn refuse_control_characters(
    headers: &[String],
    record: &csv::StringRecord,
) -> Result<(), CellError> {
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
    Ok(())
}

/// The row's legal basis, else the register's default; every contact needs one.
fn legal_basis(text: &str, register: &Register) -> Result<LegalBasis, CellError> {
    match text {
        "" => register.default_legal_basis.ok_or((
            "legal_basis",
            format!(
                "is empty and register '{}' has no default_legal_basis; every contact needs one \
                 (consent, customer_relationship or job_role)",
                register.name
            ),
        )),
        text => LegalBasis::parse(text).ok_or((
            "legal_basis",
            format!("'{text}' is not one of consent, customer_relationship, job_role"),
        )),
    }
}

/// Consent is recorded with its time; no other basis has one.
fn consent_at(legal_basis: LegalBasis, text: &str) -> Result<Option<String>, CellError> {
    match (legal_basis, text) {
        (LegalBasis::Consent, "") => Err((
            "consent_at",
            "is empty; consent must be recorded with its time".into(),
        )),
        (LegalBasis::Consent, text) => Ok(Some(parse_timestamp(text).ok_or((
            "consent_at",
            format!("'{text}' is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        ))?)),
        (_, "") => Ok(None),
        (_, _) => Err((
            "consent_at",
            format!(
                "is set but legal_basis is {}, not consent",
                legal_basis.as_str()
            ),
        )),
    }
}

/// A later row for the same address fills in and overrides what the earlier one said: what
/// an import keeps of an address that repeats, however the file is read.
pub fn merge_into(target: &mut ContactRecord, later: ContactRecord) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolon_files_are_read_as_excel_writes_them() {
        assert_eq!(
            sniff_delimiter(b"email;first_name;company\r\na@b.fi;A;B Oy\r\n"),
            b';'
        );
        assert_eq!(sniff_delimiter(b"email,first_name\n"), b',');
        assert_eq!(sniff_delimiter(b"email\n"), b',');
        // A comma in the header wins: a comma file whose column names happen to have ';' is odd
        // but stays a comma file.
        assert_eq!(sniff_delimiter(b"email,note;x\n"), b',');
    }

    /// Each record's line from a stream over `text`.
    fn lines_of(text: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, text).unwrap();
        let (mut stream, _) = CsvStream::open(&path).unwrap();
        let mut lines = Vec::new();
        while let Some((line, _)) = stream.next_record().unwrap() {
            lines.push(line);
        }
        lines
    }

    #[test]
    fn lines_are_the_editors() {
        assert_eq!(lines_of("h\na\nb\n"), [2, 3]);
        assert_eq!(lines_of("h\r\na\r\nb\r\n"), [2, 3]);
        assert_eq!(
            lines_of("\u{feff}h\r\n\r\n\r\na\r\n\"b\r\nc\"\r\nd"),
            [4, 5, 7]
        );
        assert_eq!(lines_of("h\n\"a\n\nb\"\nc\n"), [2, 5]);
    }

    #[test]
    fn a_record_over_the_cap_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        let long = "x".repeat(MAX_RECORD_BYTES as usize + 1);
        std::fs::write(&path, format!("h\r\nok\r\n\"{long}\"\r\n")).unwrap();
        let (mut stream, _) = CsvStream::open(&path).unwrap();
        assert_eq!(stream.next_record().unwrap().map(|(l, _)| l), Some(2));
        match stream.next_record() {
            Err(ImportError::RecordTooLong { line, .. }) => assert_eq!(line, 3),
            other => panic!("{:?}", other.map(|r| r.map(|(l, _)| l))),
        }
    }
}
