//! A contacts import too large to hold in memory: its rows are staged in a temporary table of
//! one connection, the rows of an address that repeats are merged there (the caller decides
//! how), and the result is applied to a register in one transaction with set-based statements.
//!
//! The staging table lives and dies with its connection, which is closed rather than returned
//! to the pool: no staged personal data outlives the import, whatever way it ends. Staging
//! writes only the temporary table, so on SQLite the database's write lock is taken for the
//! final merge alone, not for the reading of the file.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Executor, Row};

use super::{Backend, ImportOutcome, Store, StoreError, placeholders};
use crate::model::{ContactRecord, EmailAddress, LegalBasis, Locale, SuppressionReason};

/// Rows per staging INSERT (13 bound values each; SQLite allows 32,766 per statement).
const STAGE_ROWS: usize = 1_000;

/// Staged rows by address, with the staging order of each row. `seq` orders the rows as the
/// file did, and the final inserts follow it, so contact ids are given in file order.
const CREATE: &str = "CREATE TEMP TABLE import_staging (
    seq INTEGER PRIMARY KEY, email TEXT NOT NULL, email_hash TEXT NOT NULL,
    first_name TEXT NOT NULL, last_name TEXT NOT NULL, company TEXT NOT NULL,
    business_id TEXT NOT NULL, title TEXT NOT NULL, locale TEXT NULL,
    legal_basis TEXT NOT NULL, consent_at TEXT NULL, fields TEXT NOT NULL, source TEXT NOT NULL)";

/// SQLite's page cache for the import's connection: 32 MiB (negative: in KiB).
const IMPORT_CACHE: &str = "PRAGMA cache_size = -32768";

const COLUMNS: &str = "seq, email, email_hash, first_name, last_name, company, business_id, \
                       title, locale, legal_basis, consent_at, fields, source";

/// The staged rows of an import, on a connection of their own.
pub struct ImportStaging {
    conn: PoolConnection<Any>,
    backend: Backend,
    /// Rows staged so far: the next row's `seq`.
    staged: i64,
}

/// The rows of one address staged more than once, merged into one.
#[derive(Debug)]
pub struct DuplicateGroup {
    /// The first row's place: the merged row takes it.
    pub first_seq: i64,
    pub email_hash: String,
    pub merged: ContactRecord,
    /// How many rows were merged.
    pub rows: usize,
}

impl Store {
    /// Starts an import: an empty staging table on a connection held until the import ends.
    pub async fn stage_import(&self) -> Result<ImportStaging, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // Never back to the pool: the staging table, and the data in it, go with it.
        conn.close_on_drop();
        if self.backend == Backend::Sqlite {
            // The final inserts grow two unique indexes of contacts in random order; with
            // SQLite's default 2 MB cache they read and write the same pages again and again
            // (that INSERT took 6 s of a 1M import's 15). The connection is closed afterwards.
            conn.execute(IMPORT_CACHE).await?;
        }
        conn.execute(CREATE).await?;
        Ok(ImportStaging {
            conn,
            backend: self.backend,
            staged: 0,
        })
    }
}

impl ImportStaging {
    /// Stages valid rows, in file order, each with its address's keyed hash.
    pub async fn add(&mut self, records: &[(ContactRecord, String)]) -> Result<(), StoreError> {
        for chunk in records.chunks(STAGE_ROWS) {
            let values = (0..chunk.len())
                .map(|i| format!("({})", placeholders(self.backend, 13 * i + 1, 13)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO import_staging ({COLUMNS}) VALUES {values}");
            let mut query = sqlx::query(&sql);
            for (record, hash) in chunk {
                query = bind_record(query, self.staged, record, hash.clone());
                self.staged += 1;
            }
            query.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Ends the staging: indexes the rows by address for the merges that follow, and gives
    /// the planner the table's statistics (nothing analyses a temporary table by itself).
    pub async fn index(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("CREATE INDEX import_staging_email ON import_staging (email, seq)")
            .await?;
        self.conn.execute("ANALYZE import_staging").await?;
        Ok(())
    }

    /// Up to `max` addresses staged more than once, those after `after` in address order,
    /// each with its rows folded into one by `merge` (earlier row, later row) in file order.
    /// Empty when there are no more. The rows are streamed: memory holds one row per address.
    pub async fn duplicates(
        &mut self,
        after: &str,
        max: usize,
        merge: impl Fn(&mut ContactRecord, ContactRecord),
    ) -> Result<Vec<DuplicateGroup>, StoreError> {
        let emails: Vec<String> = sqlx::query_scalar(
            "SELECT email FROM import_staging WHERE email > $1
              GROUP BY email HAVING COUNT(*) > 1 ORDER BY email LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn)
        .await?;
        let Some(last) = emails.last() else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM import_staging s
              WHERE email > $1 AND email <= $2
                AND EXISTS (SELECT 1 FROM import_staging d WHERE d.email = s.email AND d.seq <> s.seq)
              ORDER BY email, seq"
        );
        let mut rows = sqlx::query(&sql)
            .bind(after)
            .bind(last.as_str())
            .fetch(&mut *self.conn);
        let mut groups: Vec<DuplicateGroup> = Vec::with_capacity(emails.len());
        use futures_util::TryStreamExt;
        while let Some(row) = rows.try_next().await? {
            let (seq, record) = record_of(&row)?;
            match groups.last_mut() {
                Some(group) if group.merged.email == record.email => {
                    merge(&mut group.merged, record);
                    group.rows += 1;
                }
                _ => groups.push(DuplicateGroup {
                    first_seq: seq,
                    email_hash: row.get("email_hash"),
                    merged: record,
                    rows: 1,
                }),
            }
        }
        Ok(groups)
    }

    /// Replaces the rows of each address of `groups` by its one merged row, in the place of
    /// its first row.
    pub async fn replace(&mut self, groups: &[DuplicateGroup]) -> Result<(), StoreError> {
        for chunk in groups.chunks(STAGE_ROWS) {
            let sql = format!(
                "DELETE FROM import_staging WHERE email IN ({})",
                placeholders(self.backend, 1, chunk.len())
            );
            let mut delete = sqlx::query(&sql);
            for group in chunk {
                delete = delete.bind(group.merged.email.as_str());
            }
            delete.execute(&mut *self.conn).await?;
            let values = (0..chunk.len())
                .map(|i| format!("({})", placeholders(self.backend, 13 * i + 1, 13)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO import_staging ({COLUMNS}) VALUES {values}");
            let mut insert = sqlx::query(&sql);
            for group in chunk {
                insert = bind_record(
                    insert,
                    group.first_seq,
                    &group.merged,
                    group.email_hash.clone(),
                );
            }
            insert.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// Applies the staged rows (one per address by now) to `register` in one transaction:
    /// suppressed addresses refused, new contacts inserted, memberships inserted or updated.
    /// A row identical to what is stored changes nothing.
    pub async fn apply(mut self, register: &str) -> Result<ImportOutcome, StoreError> {
        let now = crate::now_millis();
        let mut tx = self.conn.begin_with(self.backend.begin_write()).await?;
        let refused = refuse_suppressed(&mut tx).await?;
        let (inserted, updated, unchanged) = count_changes(&mut tx, register).await?;
        tx.execute(
            sqlx::query(
                "INSERT INTO contacts (email, email_hash, created_at, updated_at)
                 SELECT email, email_hash, $1, $1 FROM import_staging WHERE true ORDER BY seq
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(now),
        )
        .await?;
        tx.execute(sqlx::query(&upsert_memberships()).bind(register).bind(now))
            .await?;
        tx.commit().await?;
        Ok(ImportOutcome {
            inserted,
            updated,
            unchanged,
            refused,
        })
    }
}

/// The memberships of the staged rows, upserted as [`super::membership_changes_only`] says.
fn upsert_memberships() -> String {
    format!(
        "INSERT INTO memberships (contact_id, register, first_name,
            last_name, company, business_id, title, locale, legal_basis, consent_at, fields, source,
            created_at, updated_at)
         SELECT c.id, $1, s.first_name, s.last_name, s.company, s.business_id, s.title, s.locale,
                s.legal_basis, s.consent_at, s.fields, s.source, $2, $2
           FROM import_staging s JOIN contacts c ON c.email = s.email
          WHERE true ORDER BY s.seq
         {}",
        super::membership_changes_only()
    )
}

/// Takes the suppressed addresses out of the staging table and returns their rows'
/// `FILE:LINE`, in file order, each with its weightiest reason: erased, opted-out, complained
/// or dead addresses stay out of the registers, not only out of the sends.
async fn refuse_suppressed(
    tx: &mut sqlx::Transaction<'_, Any>,
) -> Result<Vec<(String, SuppressionReason)>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.source, r.reason FROM import_staging s
           JOIN suppression_reasons r ON r.email_hash = s.email_hash
          ORDER BY s.seq",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut refused: Vec<(String, SuppressionReason)> = Vec::new();
    for row in &rows {
        let source: String = row.get("source");
        let reason = SuppressionReason::parse(&row.get::<String, _>("reason"))
            .unwrap_or(SuppressionReason::OptOut);
        match refused.last_mut() {
            Some((last, weightiest)) if *last == source => *weightiest = (*weightiest).max(reason),
            _ => refused.push((source, reason)),
        }
    }
    if !refused.is_empty() {
        tx.execute(
            "DELETE FROM import_staging
              WHERE email_hash IN (SELECT email_hash FROM suppression_reasons)",
        )
        .await?;
    }
    Ok(refused)
}

/// How many staged rows are new to `register`, change its row, or match it exactly.
async fn count_changes(
    tx: &mut sqlx::Transaction<'_, Any>,
    register: &str,
) -> Result<(usize, usize, usize), StoreError> {
    let sql = format!(
        "SELECT COUNT(*) AS total,
                COUNT(m.contact_id) AS existing,
                COUNT(CASE WHEN {} THEN 1 END) AS changed
           FROM import_staging s
           LEFT JOIN contacts c ON c.email = s.email
           LEFT JOIN memberships m ON m.contact_id = c.id AND m.register = $1",
        super::membership_differs("m", "s")
    );
    let row = sqlx::query(&sql)
        .bind(register)
        .fetch_one(&mut **tx)
        .await?;
    let count = |name: &str| usize::try_from(row.get::<i64, _>(name)).unwrap_or(0);
    let (total, existing) = (count("total"), count("existing"));
    // A new membership differs from its (missing) row too: changed counts it.
    let updated = count("changed").saturating_sub(total - existing);
    Ok((total - existing, updated, existing - updated))
}

fn bind_record<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    seq: i64,
    record: &ContactRecord,
    hash: String,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    let fields = serde_json::to_string(&record.fields).unwrap_or_else(|_| "{}".into());
    query
        .bind(seq)
        .bind(record.email.as_str().to_string())
        .bind(hash)
        .bind(record.first_name.clone())
        .bind(record.last_name.clone())
        .bind(record.company.clone())
        .bind(record.business_id.clone())
        .bind(record.title.clone())
        .bind(record.locale.map(|l| l.as_str()))
        .bind(record.legal_basis.as_str())
        .bind(record.consent_at.clone())
        .bind(fields)
        .bind(record.source.clone())
}

/// A staged row back as the record it was staged from.
fn record_of(row: &sqlx::any::AnyRow) -> Result<(i64, ContactRecord), StoreError> {
    let seq: i64 = row.get("seq");
    let text = |column: &str| -> String { row.get(column) };
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        table: "import_staging",
        column,
        id: seq,
        value,
    };
    let email = EmailAddress::parse(&text("email")).map_err(|_| corrupt("email", text("email")))?;
    let locale = match row.get::<Option<String>, _>("locale") {
        None => None,
        Some(l) => Some(Locale::parse(&l).ok_or_else(|| corrupt("locale", l.clone()))?),
    };
    let basis = text("legal_basis");
    let legal_basis = LegalBasis::parse(&basis).ok_or_else(|| corrupt("legal_basis", basis))?;
    let fields: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text("fields")).map_err(|_| corrupt("fields", text("fields")))?;
    Ok((
        seq,
        ContactRecord {
            email,
            first_name: text("first_name"),
            last_name: text("last_name"),
            company: text("company"),
            business_id: text("business_id"),
            title: text("title"),
            locale,
            legal_basis,
            consent_at: row.get("consent_at"),
            fields,
            source: text("source"),
        },
    ))
}
