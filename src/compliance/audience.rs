//! A campaign's audience as its segment narrows it: the scope every audience reader uses
//! (the outbox, `check`, `review`, `audience`), so they all select the same contacts, and
//! the `check` findings about the segment itself (SEG001 empty, SEG002 a field no contact
//! has, SEG003 empty now but rows were queued before). The segment is evaluated when it is
//! asked, against the clock of that moment.

use std::collections::BTreeSet;

use crate::config::Campaign;
use crate::model::{Finding, SEGMENT_STANDARD_FIELDS, Severity};
use crate::store::{AudienceScope, Store, StoreError};

/// The campaign's registers narrowed by its segment, as of `now` (Unix ms). `campaign_id`
/// is the campaign's own row, whose sends do not count against `not_sent_within`.
pub fn audience_scope(
    campaign: &Campaign,
    campaign_id: Option<i64>,
    now: i64,
) -> AudienceScope<'_> {
    AudienceScope {
        registers: &campaign.registers,
        segment: &campaign.segment,
        campaign_id,
        now,
    }
}

/// The scope as of now, for a reader that must not create the campaign's row.
pub async fn current_scope<'a>(
    store: &Store,
    campaign: &'a Campaign,
) -> Result<AudienceScope<'a>, StoreError> {
    let id = store.find_campaign_id(&campaign.name).await?;
    Ok(audience_scope(campaign, id, crate::now_millis()))
}

/// SEG001 (or SEG003): the segment selects nobody; SEG002: the `where` reads a column no contact of the
/// campaign's registers has (a typo, or a column of another register), with the nearest
/// existing name as a hint.
pub async fn segment_findings(
    store: &Store,
    campaign: &Campaign,
    selected: usize,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let subject = format!("{}: [audience] where", campaign.file.display());
    if let Some(filter) = &campaign.segment.filter {
        let existing = store.custom_field_names(&campaign.registers).await?;
        for field in filter.custom_fields() {
            if !existing.contains(&field) {
                findings.push(unknown_field_finding(&subject, &field, &existing));
            }
        }
    }
    if !campaign.segment.is_everyone() && selected == 0 {
        findings.push(empty_segment_finding(store, campaign).await?);
    }
    Ok(findings)
}

/// SEG001 for a campaign never queued; once rows are queued they are still sent (the segment
/// is evaluated when the outbox is filled), so a resumed run is not refused: SEG003.
async fn empty_segment_finding(store: &Store, campaign: &Campaign) -> Result<Finding, StoreError> {
    let subject = format!("{}: [audience]", campaign.file.display());
    let queued: i64 = store
        .campaign_counts(Some(&campaign.name))
        .await?
        .iter()
        .map(|c| c.total())
        .sum();
    if queued > 0 {
        return Ok(Finding::new(
            "SEG003",
            Severity::Info,
            subject,
            format!(
                "the segment selects no contact now; the {queued} row(s) queued for the campaign \
                 earlier are still sent"
            ),
        ));
    }
    Ok(Finding::new(
        "SEG001",
        Severity::Error,
        subject,
        format!(
            "the segment selects no contact of the registers {}: nothing would be sent. \
             `fairsend audience {}` shows which rule leaves each contact out",
            campaign.registers.join(", "),
            campaign.file.display()
        ),
    ))
}

fn unknown_field_finding(subject: &str, field: &str, existing: &BTreeSet<String>) -> Finding {
    let columns: Vec<&str> = existing.iter().map(String::as_str).collect();
    let hint = nearest(
        field,
        SEGMENT_STANDARD_FIELDS
            .iter()
            .copied()
            .chain(columns.iter().copied()),
    )
    .map(|name| format!(" Did you mean `{name}`?"))
    .unwrap_or_default();
    let columns = if columns.is_empty() {
        "none".to_string()
    } else {
        columns.join(", ")
    };
    Finding::new(
        "SEG002",
        Severity::Warning,
        subject.to_string(),
        format!(
            "no contact of the campaign's registers has the field `{field}`, so it is empty for \
             everyone.{hint} Standard fields: {}; the registers' columns: {columns}",
            SEGMENT_STANDARD_FIELDS.join(", ")
        ),
    )
}

/// The candidate closest to `name` if it is close enough to be a typo: the same letters
/// in another case, or at most two edits (one for short names).
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let allowed = if name.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_matches_are_typos_not_other_words() {
        let names = ["industry", "city", "tier", "company"];
        assert_eq!(nearest("industy", names.into_iter()), Some("industry"));
        assert_eq!(nearest("Industry", names.into_iter()), Some("industry"));
        assert_eq!(nearest("cty", names.into_iter()), Some("city"));
        assert_eq!(nearest("region", names.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
