//! Register hygiene decisions: which business IDs ceased, which persons left, which register
//! entries are past their retention. Reads files and computes; the store applies.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Months, Utc};

use super::{BusinessId, EmailAddress, ImportError, RowError};
use crate::config::Registers;
use crate::store::EntryAge;

/// A person who left their role, as a data-maintenance provider identifies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departed {
    Email(EmailAddress),
    Name {
        business_id: BusinessId,
        first_name: String,
        last_name: String,
    },
}

/// A CSV's normalised header names, its non-empty rows with their line numbers, and the rows
/// that could not be read.
type CsvRows = (Vec<String>, Vec<(u64, csv::StringRecord)>, Vec<RowError>);

fn read_rows(file: &Path) -> Result<CsvRows, ImportError> {
    let (mut stream, headers) = super::import::CsvStream::open(file)?;
    let headers: Vec<String> = headers
        .iter()
        .map(|h| h.trim().to_lowercase().replace(['-', ' '], "_"))
        .collect();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let error = |line: u64, message: String| RowError {
        file: file.display().to_string(),
        line,
        column: None,
        message,
        cells: Vec::new(),
    };
    while let Some((line, raw)) = stream.next_record()? {
        if raw.iter().all(<[u8]>::is_empty) {
            continue;
        }
        if raw.len() != headers.len() {
            let message = format!("has {} fields; the header has {}", raw.len(), headers.len());
            errors.push(error(line, message));
            continue;
        }
        match csv::StringRecord::from_byte_record(raw.clone()) {
            Ok(record) => rows.push((line, record)),
            Err(_) => errors.push(error(line, "is not valid UTF-8 text".into())),
        }
    }
    Ok((headers, rows, errors))
}

/// A trade-register export of ceased companies: a `business_id` (or `y_tunnus`) column.
pub fn parse_ceased_file(file: &Path) -> Result<(Vec<BusinessId>, Vec<RowError>), ImportError> {
    let (headers, rows, mut errors) = read_rows(file)?;
    let column = headers
        .iter()
        .position(|h| matches!(h.as_str(), "business_id" | "y_tunnus" | "ytunnus"))
        .ok_or_else(|| ImportError::Header {
            file: file.to_path_buf(),
            message: "there is no 'business_id' column".into(),
        })?;
    let mut ids = Vec::new();
    for (line, row) in rows {
        match BusinessId::parse(row.get(column).unwrap_or("")) {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(RowError {
                file: file.display().to_string(),
                line,
                column: Some(headers[column].clone()),
                message: e.to_string(),
                cells: Vec::new(),
            }),
        }
    }
    ids.sort();
    ids.dedup();
    Ok((ids, errors))
}

/// Persons who left their role: an `email` column, or `business_id`, `first_name`, `last_name`.
pub fn parse_departed_file(file: &Path) -> Result<(Vec<Departed>, Vec<RowError>), ImportError> {
    let (headers, rows, mut errors) = read_rows(file)?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let by_email = col("email");
    let by_name = (col("business_id"), col("first_name"), col("last_name"));
    if by_email.is_none() && !matches!(by_name, (Some(_), Some(_), Some(_))) {
        return Err(ImportError::Header {
            file: file.to_path_buf(),
            message:
                "give an 'email' column, or 'business_id', 'first_name' and 'last_name' columns"
                    .into(),
        });
    }
    let mut out = Vec::new();
    for (line, row) in rows {
        let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).unwrap_or("").to_string();
        let error = |column: &str, message: String| RowError {
            file: file.display().to_string(),
            line,
            column: Some(column.to_string()),
            message,
            cells: Vec::new(),
        };
        let email = cell(by_email);
        if !email.is_empty() {
            match EmailAddress::parse(&email) {
                Ok(a) => out.push(Departed::Email(a)),
                Err(e) => errors.push(error("email", e.to_string())),
            }
            continue;
        }
        let (b, f, l) = (cell(by_name.0), cell(by_name.1), cell(by_name.2));
        if b.is_empty() || f.is_empty() || l.is_empty() {
            errors.push(error(
                "email",
                "is empty, and business_id, first_name and last_name are not all given".into(),
            ));
            continue;
        }
        match BusinessId::parse(&b) {
            Ok(business_id) => out.push(Departed::Name {
                business_id,
                first_name: f,
                last_name: l,
            }),
            Err(e) => errors.push(error("business_id", e.to_string())),
        }
    }
    Ok((out, errors))
}

/// When a register entry's retention ends: months after the last message sent to the
/// contact (or after the entry was added, if never sent to); for a purchased register, months
/// after the data was acquired.
pub fn retention_end(
    entry: &EntryAge,
    registers: &Registers,
    default_months: u32,
) -> Option<DateTime<Utc>> {
    let register = registers.get(&entry.register);
    let months = register
        .and_then(|r| r.retention_months)
        .unwrap_or(default_months);
    let start = match register.and_then(|r| r.purchased.as_ref()) {
        Some(p) => p.acquired_on.and_hms_opt(0, 0, 0)?.and_utc(),
        None => DateTime::from_timestamp_millis(entry.last_sent_at.unwrap_or(entry.created_at))?,
    };
    start.checked_add_months(Months::new(months))
}

/// Why an entry is due for purging.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeReason {
    PastRetention,
    PurchasedRegisterExpired,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PurgeItem {
    pub membership_id: i64,
    pub email: String,
    pub register: String,
    pub reason: PurgeReason,
    pub retention_end: Option<String>,
}

/// The entries past retention, or in a purchased register whose licence has ended
/// (`expired`: the names of those registers, by the rule of `compliance::eligibility`).
pub fn plan_purge(
    entries: &[EntryAge],
    registers: &Registers,
    expired: &BTreeSet<String>,
    default_months: u32,
    now: DateTime<Utc>,
) -> Vec<PurgeItem> {
    entries
        .iter()
        .filter_map(|e| {
            let end = retention_end(e, registers, default_months);
            let reason = if expired.contains(&e.register) {
                PurgeReason::PurchasedRegisterExpired
            } else if end.is_some_and(|end| end <= now) {
                PurgeReason::PastRetention
            } else {
                return None;
            };
            Some(PurgeItem {
                membership_id: e.membership_id,
                email: e.email.clone(),
                register: e.register.clone(),
                reason,
                retention_end: end.map(|d| d.date_naive().to_string()),
            })
        })
        .collect()
}
