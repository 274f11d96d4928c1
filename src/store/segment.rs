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

    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn bind(&mut self, value: Bound) {
        self.values.push(value);
        self.sql.push_str(&format!("${}", self.values.len()));
    }

    fn bind_text(&mut self, value: &str) {
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

    fn bind_list(&mut self, values: &[String]) {
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
        if registers.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = Generated::new(
            self.backend,
            "SELECT DISTINCT m.contact_id FROM memberships m JOIN contacts c ON c.id = m.contact_id
              WHERE m.register IN (",
            Vec::new(),
        );
        statement.bind_list(registers);
        statement.push(")");
        statement.and_segment(segment, campaign_id, now);
        statement.push(" ORDER BY m.contact_id");
        let rows = statement.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from))
            .collect()
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
