//! Persistence with sqlx: the only module that speaks SQL.
//!
//! SQLite is the embedded default: the database file is created and migrated on first use.
//! PostgreSQL is the engine for several workers on one campaign. Both run the same statements
//! through sqlx's `Any` driver (`$N` placeholders, portable SQL); what differs between them is
//! in [`Backend`] alone. Every statement binds its parameters; no value is ever formatted into
//! SQL text. This module stores and fetches; it makes no sending or compliance decisions.

mod ab;
mod campaign_report;
mod consent;
mod hygiene;
mod import;
mod inbound;
mod keys;
mod lifecycle;
mod mailbox;
mod ops;
mod optout;
mod outbox;
mod outbox_writer;
mod recipients;
mod report;
mod segment;
mod sessions;
mod sqlite_ledger;
mod sqlite_memory;
mod suppressions;
mod webhooks;
mod workers;

use sqlx::AnyPool;
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Connection, Executor, Row};

pub use ab::{AbState, Grouping, UngroupedRow};
pub use campaign_report::{GroupCount, SentCount};
pub use consent::{Confirmation, ConsentProof, NewSignup, PendingSignup, Reservation};
pub use hygiene::{EntryAge, PurgeOutcome, RegisterCounts};
pub use import::{DuplicateGroup, ImportStaging};
pub use inbound::{
    AppliedInbound, BounceDecision, BounceEntry, BounceRecord, DecisionOutcome, InboundEffects,
    InboundTx, OptOutRecord, SoftBounceHistory, StoredBounce,
};
pub use keys::KeyPin;
pub use lifecycle::{RunStateChange, RunStateError};
pub use mailbox::MailboxMessage;
pub use ops::{LATENCY_BUCKETS_MS, Metrics};
pub use optout::{ErasureReport, OptOutEntry, UnsubscribeTarget};
pub use outbox::{
    Approval, CampaignCounts, InFlightRow, OutboxState, Preparation, SendingRow, SentRecord,
    TransportKind, UncertainRow,
};
pub use outbox_writer::OutboxWriter;
pub use recipients::{NativeRecipientReader, RecipientGate};
pub use report::RecipientOutcome;
pub use segment::AudienceScope;
pub use sessions::LoginFailures;
pub use sqlite_ledger::NativeOutboxWriter;
pub use suppressions::NewReason;
pub use workers::WorkerRecord;

use crate::model::SuppressionReason;
use crate::model::{ContactRecord, EmailAddress};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate database {url}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    /// Not a `source()`: the one cause is in the message, because these errors are logged one
    /// line each (`error = %e`) at the places that survive them.
    #[error("database error: {0}")]
    Sql(sqlx::Error),
    /// An error of the send loop's own SQLite connection (store/sqlite_ledger.rs).
    #[error("database error: {0}")]
    Native(String),
    #[error("database holds an invalid value in {table}.{column} (row {id}): '{value}'")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        id: i64,
        value: String,
    },
    #[error(
        "unsupported database URL '{0}': use sqlite://FILE or postgres://USER@HOST[:PORT]/DATABASE"
    )]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
    }
}

/// The database engine behind a [`Store`]: the one place where their SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// The row-locking clause of a claim: PostgreSQL workers skip rows another worker is
    /// claiming at this instant; SQLite has one writer at a time, so the claim's own UPDATE
    /// already excludes the others.
    fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// How a transaction that writes begins. SQLite must take its write lock at BEGIN: a
    /// deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no
    /// waiting) when another process wrote in between.
    fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// The placeholder for the `n`th (1-based) bound value of a generated statement whose
    /// values are bound in the order their placeholders appear. sqlx looks up each numbered
    /// SQLite parameter by name, a linear search in SQLite, so a statement with n numbered
    /// parameters costs n² there (perf: 60% of an import in sqlite3_bind_parameter_name);
    /// anonymous `?` costs nothing.
    fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => "?".to_string(),
            Self::Postgres => format!("${n}"),
        }
    }

    fn default_max_connections(self) -> u32 {
        match self {
            Self::Sqlite => 8,
            Self::Postgres => 10,
        }
    }
}

/// The settings of every SQLite connection, the pool's and the send loop's own
/// (`sqlite_ledger`): NORMAL synchronous is durable across process crashes, which is what the
/// outbox state machine relies on; secure_delete overwrites deleted records, so an erased
/// address does not linger in free pages.
const SQLITE_CONNECTION_PRAGMAS: &str = "PRAGMA busy_timeout = 30000; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

/// How to open a [`Store`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Pool size; `None` takes the engine's default (SQLite 8, PostgreSQL 10).
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The send path's writes of one process take turns. On SQLite they would otherwise
    /// collide on the file lock and the loser sleep in SQLite's busy handler (measured: a send
    /// at concurrency 1 spent most of its time in those sleeps); on PostgreSQL, the heartbeat's
    /// lease renewal, the group-committed `sending` update and the batched `sent` update lock
    /// overlapping rows in different orders, and PostgreSQL ended one of them as a deadlock
    /// (seen in the benchmark). Workers never touch each other's rows: they need no turns.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// What an import changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows refused because the address is suppressed: (`FILE:LINE`, why).
    pub refused: Vec<(String, SuppressionReason)>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl(redact(url)))?;
        let open_error = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        if backend == Backend::Sqlite {
            sqlite_memory::use_global_allocator();
        }
        let connect_url = match backend {
            // Create the file on first use (the embedded default needs no setup).
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(
                options
                    .max_connections
                    .unwrap_or(backend.default_max_connections()),
            )
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (serve, status) work during a send.
                        conn.execute("PRAGMA journal_mode = WAL;").await?;
                        conn.execute(SQLITE_CONNECTION_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(
                // A streaming read lasts as long as its consumer takes: not worth a warning.
                AnyConnectOptions::from_str(&connect_url)
                    .map_err(open_error)?
                    .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1)),
            )
            .await
            .map_err(open_error)?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // On PostgreSQL the migrator holds an advisory lock: workers starting together
        // migrate once.
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redact(url),
                source,
            })?;
        Ok(Self {
            pool,
            backend,
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }

    /// Held around each write on the send path: this process's writes take turns.
    pub(crate) async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// Applies validated contact records to `register` in one transaction. A record identical
    /// to what is stored changes nothing, so re-importing a file is a no-op. Records go in
    /// batches, a few statements per batch rather than per contact.
    pub async fn import_contacts(
        &self,
        register: &str,
        records: &[ContactRecord],
        address_hash: impl Fn(&EmailAddress) -> String,
    ) -> Result<ImportOutcome, StoreError> {
        let now = crate::now_millis();
        let mut outcome = ImportOutcome::default();
        let mut tx = self.begin_write().await?;
        let backend = self.backend;
        for chunk in records.chunks(IMPORT_BATCH) {
            let hashes: Vec<String> = chunk.iter().map(|r| address_hash(&r.email)).collect();
            // A suppressed address is not (re-)imported: erased, opted out, complained or
            // dead addresses stay out of the registers, not only out of the sends.
            let sql = format!(
                "SELECT email_hash, reason FROM suppression_reasons WHERE email_hash IN ({})",
                placeholders(backend, 1, hashes.len())
            );
            let mut query = sqlx::query(&sql);
            for hash in &hashes {
                query = query.bind(hash);
            }
            // The weightiest reason is the one the register maintainer is told.
            let mut suppressed: std::collections::HashMap<String, SuppressionReason> =
                std::collections::HashMap::new();
            for row in query.fetch_all(&mut *tx).await? {
                let reason = SuppressionReason::parse(&row.get::<String, _>("reason"))
                    .unwrap_or(SuppressionReason::OptOut);
                suppressed
                    .entry(row.get("email_hash"))
                    .and_modify(|r| *r = (*r).max(reason))
                    .or_insert(reason);
            }
            let mut batch: Vec<(&ContactRecord, &String)> = Vec::with_capacity(chunk.len());
            for (record, hash) in chunk.iter().zip(&hashes) {
                match suppressed.get(hash) {
                    Some(reason) => outcome.refused.push((record.source.clone(), *reason)),
                    None => batch.push((record, hash)),
                }
            }
            if batch.is_empty() {
                continue;
            }
            let ids = upsert_contacts(backend, &mut tx, &batch, now).await?;
            let sql = format!(
                "SELECT contact_id FROM memberships WHERE register = {} AND contact_id IN ({})",
                backend.placeholder(1),
                placeholders(backend, 2, ids.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(register);
            for id in ids.values() {
                query = query.bind(id);
            }
            let existed: std::collections::HashSet<i64> =
                query.fetch_all(&mut *tx).await?.into_iter().collect();
            let changed = upsert_memberships(backend, &mut tx, register, &batch, &ids, now).await?;
            for (record, _) in &batch {
                let id = ids.get(record.email.as_str()).copied().unwrap_or(0);
                match (existed.contains(&id), changed.contains(&id)) {
                    (false, _) => outcome.inserted += 1,
                    (true, true) => outcome.updated += 1,
                    (true, false) => outcome.unchanged += 1,
                }
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Sets a contact's status (`passive`, `ceased`, `active`); returns whether it exists.
    pub async fn set_contact_status(
        &self,
        email: &EmailAddress,
        status: crate::model::ContactStatus,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE contacts SET status = $1, updated_at = $2 WHERE email = $3")
            .bind(status.as_str())
            .bind(crate::now_millis())
            .bind(email.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds one suppression reason to an address (other reasons are kept as they are).
    /// Returns false when the address already had that reason.
    pub async fn add_suppression(&self, new: &NewReason<'_>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let added = suppressions::add_reason(&mut tx, new, crate::now_millis()).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Every reason an address is suppressed for, oldest first (empty: not suppressed).
    pub async fn suppression_reasons(
        &self,
        email_hash: &str,
    ) -> Result<Vec<SuppressionReason>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        suppressions::reasons_of(&mut conn, email_hash).await
    }

    /// Makes deleted personal data unrecoverable from the database files after an erasure
    /// or purge has committed: SQLite overwrites deleted records (`secure_delete`, set on
    /// every connection) and here moves the write-ahead log back into the main file and
    /// truncates it; PostgreSQL vacuums the tables that held the data, so the dead row
    /// versions are removed from the table files (backups and archived WAL still hold them
    /// until they expire: see the README).
    pub async fn scrub_deleted(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.pool)
                    .await?;
            }
            Backend::Postgres => {
                sqlx::query(
                    "VACUUM contacts, memberships, outbox, suppressions, suppression_reasons, \
                     optouts, bounces, engagements, audit_log, message_events, signup_requests, \
                     consent_proofs",
                )
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The addresses of a campaign's rows whose delivery is unknown (interrupted or
    /// uncertain): the rows `send --resend-interrupted` / `--resend-uncertain` would send again.
    pub async fn uncertain_recipients(&self, campaign_id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT c.email FROM outbox o JOIN contacts c ON c.id = o.contact_id
              WHERE o.campaign_id = $1
                AND (o.state = 'uncertain' OR (o.state = 'failed' AND o.last_error LIKE 'interrupted%'))
              ORDER BY o.id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The id of a campaign that has been started, without creating one (for read paths).
    pub async fn find_campaign_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM campaigns WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Registers a campaign by name (idempotent) and returns its id. A campaign already
    /// registered is only read: the upsert locks its row, so every `send` worker starting
    /// beside another waited here until the other had prepared the whole outbox (it holds the
    /// row for that transaction).
    pub async fn campaign_id(&self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.find_campaign_id(name).await? {
            return Ok(id);
        }
        let id = sqlx::query_scalar(
            "INSERT INTO campaigns (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(crate::now_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database file, on SQLite: what the send loop's own connections open. `None` on
    /// PostgreSQL and for a database in memory (which another connection could not open).
    async fn sqlite_file(&self) -> Result<Option<std::path::PathBuf>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let file: Option<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_optional(self.pool())
                .await?;
        Ok(file.filter(|f| !f.is_empty()).map(std::path::PathBuf::from))
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.acquire().await?.ping().await?;
        Ok(())
    }
}

/// Contacts per statement in an import (14 bound values per membership row).
const IMPORT_BATCH: usize = 500;

/// Placeholders for `count` values bound in order, the first being the `from`th.
fn placeholders(backend: Backend, from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| backend.placeholder(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$from, …` for `count` values: numbered placeholders, on both engines, for statements that
/// also use one parameter twice (SQLite's `?` of [`placeholders`] cannot be repeated). SQLite
/// numbers `$n` in the order of first appearance, so the numbers must first appear in order.
fn numbered_placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts the batch's contacts that are new; returns every contact's id by address.
async fn upsert_contacts(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    batch: &[(&ContactRecord, &String)],
    now: i64,
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    let values = (0..batch.len())
        .map(|i| format!("({})", placeholders(backend, 4 * i + 1, 4)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO contacts (email, email_hash, created_at, updated_at) VALUES {values}
         ON CONFLICT (email) DO UPDATE SET email = excluded.email
         RETURNING id, email"
    );
    let mut query = sqlx::query(&sql);
    for (record, hash) in batch {
        query = query
            .bind(record.email.as_str())
            .bind(hash.as_str())
            .bind(now)
            .bind(now);
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| (r.get("email"), r.get("id")))
        .collect())
}

/// The membership columns an import compares: an entry whose values all equal the file's is
/// unchanged (`source` and `updated_at` are written with a change but do not make one).
const MEMBERSHIP_COMPARED: [&str; 9] = [
    "first_name",
    "last_name",
    "company",
    "business_id",
    "title",
    "locale",
    "legal_basis",
    "consent_at",
    "fields",
];

/// `old.column IS DISTINCT FROM new.column OR …` over the compared membership columns: the
/// one test of "this entry changed", for the upsert and for the import's counts alike.
pub(super) fn membership_differs(old: &str, new: &str) -> String {
    MEMBERSHIP_COMPARED
        .iter()
        .map(|column| format!("{old}.{column} IS DISTINCT FROM {new}.{column}"))
        .collect::<Vec<_>>()
        .join("\n        OR ")
}

/// The conflict clause of every membership upsert: an existing entry is updated only where a
/// compared field differs, so re-importing a file changes nothing (and counts nothing as
/// updated).
pub(super) fn membership_changes_only() -> String {
    format!(
        "ON CONFLICT (contact_id, register) DO UPDATE SET
        first_name = excluded.first_name, last_name = excluded.last_name,
        company = excluded.company, business_id = excluded.business_id,
        title = excluded.title, locale = excluded.locale,
        legal_basis = excluded.legal_basis, consent_at = excluded.consent_at,
        fields = excluded.fields, source = excluded.source,
        updated_at = excluded.updated_at
     WHERE {}",
        membership_differs("memberships", "excluded")
    )
}

/// Upserts the batch's memberships of `register`. The WHERE leaves an identical row untouched,
/// so re-importing the same file changes nothing; returns the contact ids whose row was
/// inserted or changed.
async fn upsert_memberships(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    register: &str,
    batch: &[(&ContactRecord, &String)],
    ids: &std::collections::HashMap<String, i64>,
    now: i64,
) -> Result<std::collections::HashSet<i64>, StoreError> {
    const COLUMNS: usize = 14;
    let values = (0..batch.len())
        .map(|i| format!("({})", placeholders(backend, COLUMNS * i + 1, COLUMNS)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO memberships (contact_id, register, first_name, last_name, company,
            business_id, title, locale, legal_basis, consent_at, fields, source,
            created_at, updated_at)
         VALUES {values}
         {}
         RETURNING contact_id",
        membership_changes_only()
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for (record, _) in batch {
        let fields = serde_json::to_string(&record.fields).unwrap_or_else(|_| "{}".into());
        query = query
            .bind(ids.get(record.email.as_str()).copied().unwrap_or(0))
            .bind(register)
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
            .bind(now)
            .bind(now);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// `url` with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// The extra fields every contact of `registers` has: what a body template may use
    /// beyond the standard fields without failing for some recipient.
    pub async fn common_fields(
        &self,
        registers: &[String],
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut common: Option<std::collections::BTreeSet<String>> = None;
        for register in registers {
            // Streamed, not DISTINCT: the values differ per contact, so DISTINCT would only
            // make the database sort every row.
            let mut rows = sqlx::query_scalar::<_, String>(
                "SELECT fields FROM memberships WHERE register = $1",
            )
            .bind(register)
            .fetch(&self.pool);
            use futures_util::TryStreamExt;
            while let Some(json) = rows.try_next().await? {
                let fields: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
                    serde_json::from_str(&json).unwrap_or_default();
                let keys: std::collections::BTreeSet<String> = fields.into_keys().collect();
                if common.as_ref().is_some_and(|c| c.is_subset(&keys)) {
                    continue;
                }
                common = Some(match common {
                    None => keys,
                    Some(c) => c.intersection(&keys).cloned().collect(),
                });
            }
        }
        Ok(common.unwrap_or_default())
    }
}

impl Store {
    /// Whether any of `registers` has at least one contact.
    pub async fn has_members(&self, registers: &[String]) -> Result<bool, StoreError> {
        for register in registers {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM memberships WHERE register = $1 LIMIT 1")
                    .bind(register)
                    .fetch_optional(&self.pool)
                    .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
