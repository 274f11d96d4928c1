//! Segments in SQL: a campaign's `[audience]` ([`Segment`]) compiled to one boolean SQL
//! condition over a membership `m` and its contact `c`, every value bound as a parameter.
//!
//! The two engines differ only in how a CSV column is read out of the membership's JSON and
//! in the substring function; everything else is the same statement. What a segment *means*
//! is defined in `model::segment`; whether a contact may be mailed at all is compliance's
//! (eligibility), not this module's: a segment only narrows the eligible.

use std::collections::BTreeSet;

use sqlx::Row;

use super::{Backend, Store, StoreError};
use crate::model::{Field, Filter, Segment, Test};

/// A value bound to a generated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bound {
    Text(String),
    Int(i64),
}

/// A statement being generated: SQL text with `$n` placeholders numbered in the order their
/// values are pushed.
#[derive(Debug)]
pub(crate) struct Generated {
    backend: Backend,
    pub(crate) sql: String,
    pub(crate) values: Vec<Bound>,
}

impl Generated {
    pub(crate) fn new(backend: Backend, sql: &str, values: Vec<Bound>) -> Self {
        Self {
            backend,
            sql: sql.to_string(),
            values,
        }
    }

    pub(super) fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    pub(super) fn bind(&mut self, value: Bound) {
        self.values.push(value);
        self.sql.push_str(&format!("${}", self.values.len()));
    }

    pub(super) fn bind_text(&mut self, value: &str) {
        self.bind(Bound::Text(value.to_string()));
    }

    pub(crate) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        self.values
            .iter()
            .fold(sqlx::query(&self.sql), |query, value| match value {
                Bound::Text(text) => query.bind(text.as_str()),
                Bound::Int(n) => query.bind(*n),
            })
    }

    /// Appends ` AND (…)` for every part of `segment` (nothing for an empty one). `now` and
    /// `campaign_id` place the history parts: "sent within" looks back from `now` and leaves
    /// the campaign's own sends out.
    pub(crate) fn and_segment(&mut self, segment: &Segment, campaign_id: Option<i64>, now: i64) {
        if let Some(filter) = &segment.filter {
            self.push(" AND ");
            self.filter(filter);
        }
        if let Some(span) = segment.not_sent_within {
            self.push(
                " AND NOT EXISTS (SELECT 1 FROM outbox o_recent WHERE o_recent.contact_id = m.contact_id
                    AND o_recent.sent_at IS NOT NULL AND o_recent.sent_at >= ",
            );
            self.bind(Bound::Int(now - millis(span)));
            if let Some(id) = campaign_id {
                self.push(" AND o_recent.campaign_id <> ");
                self.bind(Bound::Int(id));
            }
            self.push(")");
        }
        if let Some(span) = segment.engaged_within {
            let since = now - millis(span);
            self.push(
                " AND (EXISTS (SELECT 1 FROM engagements e WHERE e.email_hash = c.email_hash
                    AND e.kind IN ('click', 'reply') AND e.created_at >= ",
            );
            self.bind(Bound::Int(since));
            self.push(
                ") OR EXISTS (SELECT 1 FROM message_events me JOIN outbox o_clicked
                    ON o_clicked.id = me.outbox_id WHERE o_clicked.contact_id = m.contact_id
                    AND me.kind = 'click' AND me.created_at >= ",
            );
            self.bind(Bound::Int(since));
            self.push("))");
        }
        if !segment.exclude_campaigns.is_empty() {
            self.push(
                " AND NOT EXISTS (SELECT 1 FROM outbox o_excluded JOIN campaigns k
                    ON k.id = o_excluded.campaign_id WHERE o_excluded.contact_id = m.contact_id
                    AND o_excluded.sent_at IS NOT NULL AND k.name IN (",
            );
            self.bind_list(&segment.exclude_campaigns);
            self.push("))");
        }
    }

    fn filter(&mut self, filter: &Filter) {
        match filter {
            Filter::And(parts) => self.joined(parts, " AND "),
            Filter::Or(parts) => self.joined(parts, " OR "),
            Filter::Not(inner) => {
                self.push("NOT (");
                self.filter(inner);
                self.push(")");
            }
            Filter::Condition(condition) => self.condition(&condition.field, &condition.test),
        }
    }

    fn joined(&mut self, parts: &[Filter], separator: &str) {
        self.push("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.push(separator);
            }
            self.filter(part);
        }
        self.push(")");
    }

    fn condition(&mut self, field: &Field, test: &Test) {
        self.push("(");
        match test {
            Test::Equals(value) | Test::NotEquals(value) => {
                self.field(field);
                self.push(if matches!(test, Test::Equals(_)) {
                    " = "
                } else {
                    " <> "
                });
                self.bind_text(value);
            }
            Test::In(values) | Test::NotIn(values) => {
                self.field(field);
                self.push(if matches!(test, Test::In(_)) {
                    " IN ("
                } else {
                    " NOT IN ("
                });
                self.bind_list(values);
                self.push(")");
            }
            Test::Contains(value) => {
                self.push(match self.backend {
                    Backend::Sqlite => "instr(",
                    Backend::Postgres => "strpos(",
                });
                self.field(field);
                self.push(", ");
                self.bind_text(value);
                self.push(") > 0");
            }
            Test::StartsWith(value) => {
                self.push("substr(");
                self.field(field);
                self.push(", 1, length(");
                self.bind_text(value);
                self.push(")) = ");
                self.bind_text(value);
            }
            Test::IsEmpty | Test::IsNotEmpty => {
                self.field(field);
                self.push(if matches!(test, Test::IsEmpty) {
                    " = ''"
                } else {
                    " <> ''"
                });
            }
        }
        self.push(")");
    }

    pub(super) fn bind_list(&mut self, values: &[String]) {
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_text(value);
        }
    }

    /// The field's value as text, empty where the contact has none.
    fn field(&mut self, field: &Field) {
        match field {
            Field::Standard("email") => self.push("c.email"),
            Field::Standard("domain") => self.push(match self.backend {
                Backend::Sqlite => "substr(c.email, instr(c.email, '@') + 1)",
                Backend::Postgres => "split_part(c.email, '@', 2)",
            }),
            Field::Standard("locale") => self.push("COALESCE(m.locale, '')"),
            Field::Standard("register") => self.push("m.register"),
            Field::Standard(column) => {
                // The remaining standard fields are membership columns of the same name.
                self.push("m.");
                self.push(column);
            }
            Field::Custom(name) => match self.backend {
                Backend::Sqlite => {
                    self.push("COALESCE(json_extract(m.fields, ");
                    self.bind(Bound::Text(format!("$.\"{name}\"")));
                    self.push("), '')");
                }
                Backend::Postgres => {
                    self.push("COALESCE(CAST(m.fields AS jsonb) ->> CAST(");
                    self.bind_text(name);
                    self.push(" AS TEXT), '')");
                }
            },
        }
    }
}

fn millis(span: std::time::Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A campaign's audience as the store selects it: the contacts of its registers that its
/// segment selects as of `now`. A contact in several registers is taken through the first
/// register listed whose membership the segment selects (a `where` reads that register's
/// columns).
#[derive(Debug, Clone, Copy)]
pub struct AudienceScope<'a> {
    pub registers: &'a [String],
    pub segment: &'a Segment,
    /// The campaign itself, whose own sends do not count against `not_sent_within` (a resumed
    /// run keeps its audience); `None` before it has ever been prepared.
    pub campaign_id: Option<i64>,
    /// Unix ms: where the "within" spans look back from.
    pub now: i64,
}

static EVERYONE: Segment = Segment {
    filter: None,
    not_sent_within: None,
    engaged_within: None,
    exclude_campaigns: Vec::new(),
};

impl<'a> AudienceScope<'a> {
    /// A digest of what the scope selects by (its registers and segment; not the instant it
    /// is evaluated at): two workers prepare the same audience only if their digests match.
    /// Debug output is this build's own, so workers of different builds never match — they
    /// then each evaluate the audience, as before any joining.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let definition = format!("{:?}\n{:?}", self.registers, self.segment);
        data_encoding::HEXLOWER.encode(&Sha256::digest(definition.as_bytes()))
    }

    /// Every contact of `registers`, no segment.
    pub fn everyone(registers: &'a [String]) -> Self {
        Self {
            registers,
            segment: &EVERYONE,
            campaign_id: None,
            now: 0,
        }
    }

    /// The same registers and clock with another segment (one part of this one, say).
    pub fn with_segment(self, segment: &'a Segment) -> Self {
        Self { segment, ..self }
    }
}

/// `SELECT columns` of the members the scope takes through its `index`-th register, by
/// contact id: those the segment selects there and did not select through an earlier one.
/// The subquery reuses the aliases `m` and `c`, which hide the outer ones inside it, so the
/// segment's condition reads the earlier membership.
pub(super) fn members_through(
    scope: &AudienceScope<'_>,
    backend: Backend,
    index: usize,
    columns: &str,
) -> Generated {
    let mut statement = Generated::new(
        backend,
        &format!(
            "SELECT {columns} FROM memberships m JOIN contacts c ON c.id = m.contact_id
               LEFT JOIN suppressions s ON s.email_hash = c.email_hash
              WHERE m.register = "
        ),
        Vec::new(),
    );
    statement.bind_text(&scope.registers[index]);
    statement.and_segment(scope.segment, scope.campaign_id, scope.now);
    if index > 0 {
        statement.push(
            " AND m.contact_id NOT IN (SELECT m.contact_id FROM memberships m
                JOIN contacts c ON c.id = m.contact_id WHERE m.register IN (",
        );
        statement.bind_list(&scope.registers[..index]);
        statement.push(")");
        statement.and_segment(scope.segment, scope.campaign_id, scope.now);
        statement.push(")");
    }
    statement.push(" ORDER BY c.id");
    statement
}

/// Queues, in campaign `campaign_id`, the members of the scope's `index`-th register that
/// its segment selects and that have no row yet: run register by register in campaign order,
/// a contact in several lands in the first whose membership the segment selects.
pub(super) fn materialise_through(
    scope: &AudienceScope<'_>,
    backend: Backend,
    campaign_id: i64,
    index: usize,
    now: i64,
) -> Generated {
    let mut statement = Generated::new(
        backend,
        "INSERT INTO outbox (campaign_id, contact_id, register, state, updated_at)
         SELECT $1, m.contact_id, m.register, 'queued', $2
           FROM memberships m JOIN contacts c ON c.id = m.contact_id
          WHERE m.register = ",
        vec![Bound::Int(campaign_id), Bound::Int(now)],
    );
    statement.bind_text(&scope.registers[index]);
    statement.and_segment(scope.segment, scope.campaign_id, scope.now);
    statement.push(" ORDER BY m.contact_id ON CONFLICT (campaign_id, contact_id) DO NOTHING");
    statement
}

impl Store {
    /// The contacts of `registers` a segment selects, by id (each once), before eligibility:
    /// what `audience` compares with the eligible to count who the segment left out.
    pub async fn segment_contact_ids(
        &self,
        registers: &[String],
        segment: &Segment,
        campaign_id: Option<i64>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let scope = AudienceScope {
            registers,
            segment,
            campaign_id,
            now,
        };
        let rows = self.selection(&scope, "m.contact_id").await?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// The addresses of the contacts a scope selects (each once), before eligibility.
    pub async fn segment_emails(
        &self,
        scope: &AudienceScope<'_>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let rows = self.selection(scope, "c.email").await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// `SELECT DISTINCT column` over the contacts a scope selects, in any of its registers.
    async fn selection(
        &self,
        scope: &AudienceScope<'_>,
        column: &str,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        if scope.registers.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = Generated::new(
            self.backend,
            &format!(
                "SELECT DISTINCT {column} FROM memberships m JOIN contacts c ON c.id = m.contact_id
                  WHERE m.register IN ("
            ),
            Vec::new(),
        );
        statement.bind_list(scope.registers);
        statement.push(")");
        statement.and_segment(scope.segment, scope.campaign_id, scope.now);
        statement.push(&format!(" ORDER BY {column}"));
        Ok(statement.query().fetch_all(&self.pool).await?)
    }

    /// The CSV column names that contacts of `registers` have: what `check` compares a
    /// segment's fields with.
    pub async fn custom_field_names(
        &self,
        registers: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut names = BTreeSet::new();
        for register in registers {
            let sql = match self.backend {
                Backend::Sqlite => {
                    "SELECT DISTINCT j.key FROM memberships m, json_each(m.fields) j
                      WHERE m.register = $1"
                }
                Backend::Postgres => {
                    "SELECT DISTINCT jsonb_object_keys(CAST(m.fields AS jsonb)) FROM memberships m
                      WHERE m.register = $1"
                }
            };
            let rows = sqlx::query(sql)
                .bind(register)
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                names.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(names)
    }
}
