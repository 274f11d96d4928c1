//! Shared test support: a scratch configuration directory, the `fairsend` binary, a real
//! SMTP server process (aiosmtpd) on loopback, and [`require`]: a test that needs anything
//! beyond Rust (a Python package, a Debian program, the shared corpora) starts with
//! `if !common::require(&[common::Tool::Aiosmtpd]) { return; }` — it skips with one line naming
//! what is missing and how to install it, and fails instead when `CI` is set (see require.rs).
#![allow(dead_code)]

mod require;
#[allow(unused_imports)] // each test binary uses its own part
pub use require::{
    Tool, dovecot_binary, on_ci, postgres_wanted_and_answering, require, shared_corpora,
};
pub mod net;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_fairsend");

/// A scratch directory holding a configuration directory and a database: a SQLite file in the
/// directory, or, when `FAIRSEND_TEST_POSTGRES` names a PostgreSQL server (an admin URL such as
/// `postgres://fairsend:fairsend@127.0.0.1/postgres`), a fresh database there, dropped at the end.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    db: TestDatabase,
    /// The master secret its commands run with (`FAIRSEND_SECRET`); `None` runs them with the
    /// built-in development key, as a new user's first run does.
    secret: Option<&'static str>,
}

/// The master secret of test configurations (SMTP sending refuses the development key).
pub const TEST_SECRET: &str = "fairsend-test-master-secret-0123456789abcdef";

/// The working key of a scratch database, as the commands run on it see it.
pub async fn unlock(
    scratch: &Scratch,
    store: &fairsend::store::Store,
) -> fairsend::suppress::Secret {
    let master = match scratch.secret {
        Some(value) => {
            fairsend::suppress::MasterSecret::from_value("FAIRSEND_SECRET", value.to_string())
                .expect("test secret is long enough")
        }
        None => fairsend::suppress::MasterSecret::development(),
    };
    fairsend::suppress::unlock(store, &master)
        .await
        .expect("the scratch database opens with its own secret")
}

enum TestDatabase {
    Sqlite(String),
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    fn new(dir: &Path) -> Self {
        match std::env::var("FAIRSEND_TEST_POSTGRES") {
            Ok(admin) if postgres_wanted_and_answering() => {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let name = format!(
                    "fairsend_test_{}_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos()
                );
                pg_admin(
                    &admin,
                    &format!("CREATE DATABASE {name} TEMPLATE template0"),
                );
                let (base, _) = admin
                    .rsplit_once('/')
                    .expect("admin URL ends with /DATABASE");
                let url = format!("{base}/{name}");
                Self::Postgres { admin, name, url }
            }
            _ => Self::Sqlite(format!("sqlite://{}", dir.join("fairsend.db").display())),
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite(url) => url,
            Self::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { admin, name, .. } = self {
            pg_admin(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Runs one statement on the PostgreSQL server's admin database (names are generated here,
/// never taken from input).
fn pg_admin(admin: &str, sql: &str) {
    use sqlx::Connection;
    let run = || async {
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::Executor::execute(&mut conn, sql).await?;
        conn.close().await
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Tests running in parallel create databases at once; PostgreSQL refuses a CREATE
    // DATABASE while another one copies the same template, so try again after a moment.
    let mut attempt = 0;
    loop {
        match runtime.block_on(run()) {
            Ok(()) => return,
            Err(e) if attempt < 10 => {
                attempt += 1;
                eprintln!("PostgreSQL test database ({sql}): {e}; retrying");
                std::thread::sleep(Duration::from_millis(100 * attempt));
            }
            Err(e) => panic!(
                "PostgreSQL test database ({sql}): {e} — FAIRSEND_TEST_POSTGRES asks for \
                 PostgreSQL: start the server (`bash .ci/run` sets one up) or unset the variable \
                 to test on SQLite only"
            ),
        }
    }
}

/// Whether the tests run against PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_wanted_and_answering()
}

impl Scratch {
    /// A configuration with one customer register and a campaign over it.
    pub fn new(transport: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDatabase::new(dir.path());
        let s = Self {
            dir,
            db,
            secret: Some(TEST_SECRET),
        };
        s.write("config/fairsend.toml", &fairsend_toml(transport));
        s.write("config/registers.toml", REGISTERS);
        s.write("config/content/body.md", "Hello {{ first_name }} at {{ company }},\n\nsee [our offer](https://www.example.com/offer).\n");
        s.write("config/campaigns/test.toml", CAMPAIGN);
        s
    }

    /// A copy of the repository's own example configuration.
    pub fn example() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            &dir.path().join("config"),
        );
        let db = TestDatabase::new(dir.path());
        Self {
            dir,
            db,
            secret: None,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// This scratch with `concurrency = 1`: one connection to the mail server, messages in
    /// the order they are sent.
    pub fn on_one_connection(self) -> Self {
        let settings = std::fs::read_to_string(self.path("config/fairsend.toml")).expect("read");
        assert!(settings.contains("concurrency = 4"), "{settings}");
        self.write(
            "config/fairsend.toml",
            &settings.replace("concurrency = 4", "concurrency = 1"),
        );
        self
    }

    /// Runs this scratch's commands with the development key (no `FAIRSEND_SECRET`).
    pub fn with_development_key(mut self) -> Self {
        self.secret = None;
        self
    }

    pub fn db_url(&self) -> String {
        self.db.url().to_string()
    }

    /// `fairsend --config DIR --db URL ARGS…`, run to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run fairsend")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.path("config"))
            .arg("--db")
            .arg(self.db_url())
            .args(args)
            .env_remove("FAIRSEND_SECRET")
            .env_remove("FAIRSEND_SECRET_OLD")
            .env("FAIRSEND_LOG", "info");
        if let Some(secret) = self.secret {
            cmd.env("FAIRSEND_SECRET", secret);
        }
        cmd
    }

    /// Imports `config/contacts/customers.csv` into the `customers` register, as a marketer
    /// would, and asserts that the import succeeded.
    pub fn import_customers(&self) {
        let import = self.run(&[
            "import",
            "config/contacts/customers.csv",
            "--register",
            "customers",
        ]);
        assert!(import.status.success(), "{}", stderr(&import));
    }

    /// Writes a contacts CSV with `n` generated B2B contacts and returns their addresses.
    pub fn contacts(&self, rel: &str, n: usize) -> Vec<String> {
        let mut csv = String::from("email,first_name,last_name,company,title\n");
        let mut emails = Vec::new();
        for i in 0..n {
            let email = format!("person{i:04}@company{:02}.example", i % 37);
            csv.push_str(&format!(
                "{email},First{i},Last{i},Company {i} Oy,Manager\n"
            ));
            emails.push(email);
        }
        self.write(rel, &csv);
        emails
    }
}

pub fn fairsend_toml(transport: &str) -> String {
    format!(
        r#"[sender]
legal_name = "Testi Yhtiö Oy"
business_id = "1234567-1"
postal_address = "Testikatu 1, 00100 Helsinki"
contact_email = "hello@example.com"
privacy_contact = "privacy@example.com"

[privacy]
retention_months = 24

[transport]
url = "{transport}"
concurrency = 4
rate_per_second = 0
timeout = "10s"

[links]
public_base_url = "http://127.0.0.1:8080"

[bounces]
domain = "bounces.example.com"

[dns]
# Tests never leave loopback: nothing listens here, so DNS checks end as temperror at once.
resolver = "127.0.0.1:9"
timeout = "100ms"

[retry]
max_attempts = 3
base_delay = "1s"
max_delay = "2s"
wait_in_run = "30s"
"#
    )
}

pub const REGISTERS: &str = r#"[registers.customers]
title = "Testi Yhtiö Oy:n asiakasrekisteri"
kind = "customer"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "customer_relationship"
default_locale = "fi"
"#;

pub const CAMPAIGN: &str = r#"name = "test-campaign"
registers = ["customers"]
subject = "Offer for {{ company }}"
from = "Sales <sales@example.com>"
reply_to = "sales@example.com"
body = "content/body.md"
require_approval = false

[[import]]
file = "contacts/customers.csv"
register = "customers"
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fairsend status CAMPAIGN --json` → the per-state counts.
pub fn states(scratch: &Scratch, campaign: &str) -> serde_json::Value {
    let out = scratch.run(&["status", campaign, "--json"]);
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    v["states"].clone()
}

/// A real SMTP server process (tests/support/smtp_server.py, aiosmtpd) on 127.0.0.1. A test
/// that starts one first calls `require(&[Tool::Aiosmtpd])`.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let log = dir.join(format!("smtp-{}.jsonl", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "start python3 tests/support/smtp_server.py (is aiosmtpd installed? see .ci/run)",
            );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("SMTP server did not start: {line:?}"));
        Self { child, port, log }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every event logged so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Accepted messages only.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "message")
            .collect()
    }

    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> usize {
        let start = Instant::now();
        loop {
            let count = self.messages().len();
            if count >= n || start.elapsed() > timeout {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The headers and decoded text/HTML parts of a raw message.
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
}

pub fn parse_message(raw: &[u8]) -> Parsed {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse message");
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]).replace("\r\n ", " ");
    let headers = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Parsed {
        headers,
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

impl Parsed {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, name: &str) -> &str {
        let all = self.all(name);
        assert_eq!(
            all.len(),
            1,
            "expected exactly one {name} header, found {all:?}"
        );
        all[0]
    }
}

/// `fairsend serve` on an ephemeral loopback port.
pub struct ServeProcess {
    child: Child,
    pub base: String,
}

impl ServeProcess {
    pub fn start(scratch: &Scratch) -> Self {
        Self::start_with_env(scratch, &[])
    }

    pub fn start_with_env(scratch: &Scratch, env: &[(&str, &str)]) -> Self {
        Self::start_with(scratch, env, &[])
    }

    /// With more `serve` flags; the metrics listener takes an ephemeral port unless `args`
    /// names one.
    pub fn start_with(scratch: &Scratch, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        if !args.contains(&"--metrics-listen") {
            all.extend(["--metrics-listen", "127.0.0.1:0"]);
        }
        all.extend(args);
        let mut command = scratch.command(&all);
        command.env_remove("FAIRSEND_ADMIN_PASSWORD");
        command.env_remove("FAIRSEND_METRICS_TOKEN");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fairsend serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_string();
        Self { child, base }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client over loopback: (status, headers, body).
pub fn http(method: &str, url: &str, body: Option<(&str, &str)>) -> (u16, String, String) {
    http_with(method, url, body, None)
}

/// As [`http`], sending a `Cookie` header.
pub fn http_with(
    method: &str,
    url: &str,
    body: Option<(&str, &str)>,
    cookie: Option<&str>,
) -> (u16, String, String) {
    let host = url
        .strip_prefix("http://")
        .expect("http URL")
        .split('/')
        .next()
        .expect("host");
    let stream = std::net::TcpStream::connect(host).expect("connect");
    http_on(stream, method, url, body, cookie)
}

/// As [`http_with`], over a connection made already (from another source address, say).
pub fn http_on(
    mut stream: std::net::TcpStream,
    method: &str,
    url: &str,
    body: Option<(&str, &str)>,
    cookie: Option<&str>,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    match body {
        Some((content_type, data)) => request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{data}",
            data.len()
        )),
        None => request.push_str("\r\n"),
    }
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Every (table, column) of the database whose text contains `needle` (case-insensitive):
/// the check that erased personal data is gone from every table.
pub fn text_occurrences(db_url: &str, needle: &str) -> Vec<(String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::AnyPool::connect(db_url).await.expect("open db");
        let columns: Vec<(String, String)> = if db_url.starts_with("sqlite:") {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            let mut columns = Vec::new();
            for table in tables {
                for column in sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                {
                    columns.push((table.clone(), column.get::<String, _>("name")));
                }
            }
            columns
        } else {
            sqlx::query(
                "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
                  WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("t"), r.get("c")))
            .collect()
        };
        let mut found = Vec::new();
        for (table, name) in columns {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM \"{table}\" WHERE lower(CAST(\"{name}\" AS TEXT)) LIKE '%' || lower($1) || '%'"
            ))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > 0 {
                found.push((table.clone(), name));
            }
        }
        found
    })
}

/// The unsubscribe URL of a message in the outbox or received by the SMTP server.
pub fn unsubscribe_url(raw: &[u8]) -> String {
    let m = parse_message(raw);
    let header = m.one("list-unsubscribe");
    header
        .split(['<', '>'])
        .find(|p| p.starts_with("http"))
        .expect("https URL in List-Unsubscribe")
        .to_string()
}

// Inbound mail: a campaign sent to a real SMTP server, and the reports that come back.

pub fn ingest_stdin(scratch: &Scratch, raw: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = scratch
        .command(&["bounces", "ingest", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

pub fn json_list(scratch: &Scratch, args: &[&str]) -> Vec<serde_json::Value> {
    let out = scratch.run(args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// A campaign sent to a real SMTP server; returns (scratch, server, recipients).
pub fn sent_via_smtp(n: usize) -> (Scratch, SmtpServer, Vec<String>) {
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", n);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (scratch, server, emails)
}

/// (VERP envelope sender, Message-ID, Subject) of what the server received for `rcpt`.
pub fn delivered(server: &SmtpServer, rcpt: &str) -> (String, String, String) {
    let m = server
        .messages()
        .into_iter()
        .find(|m| m["rcpt_tos"][0] == rcpt)
        .expect("delivered");
    let parsed = parse_message(m["data"].as_str().unwrap().as_bytes());
    (
        m["mail_from"].as_str().unwrap().to_string(),
        parsed.one("message-id").to_string(),
        parsed.one("subject").to_string(),
    )
}

/// An RFC 3464 report, as Postfix writes one, sent to the VERP address.
pub fn dsn(
    verp: &str,
    rcpt: &str,
    message_id: &str,
    status: &str,
    code: u16,
    text: &str,
    action: &str,
) -> String {
    format!(
        "Return-Path: <>\r\nDelivered-To: {verp}\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n\
         Message-Id: <{}.dsn@mx.example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"\r\n\r\n\
         --BOUNDARY\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n\
         <{rcpt}>: host mail.example said: {code} {status} {text}\r\n\r\n\
         --BOUNDARY\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; {code} {status} {text}\r\n\r\n\
         --BOUNDARY\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Sales <sales@example.com>\r\nTo: {rcpt}\r\n\
         Message-ID: {message_id}\r\nSubject: Offer\r\n\r\n--BOUNDARY--\r\n",
        status.replace('.', "")
    )
}

/// The database files (SQLite: the main file, its write-ahead log and shared-memory index)
/// whose raw bytes contain `needle`, free pages included. Empty on PostgreSQL, whose files
/// the tests cannot read.
pub fn raw_file_occurrences(scratch: &Scratch, needle: &str) -> Vec<PathBuf> {
    let url = scratch.db_url();
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Vec::new();
    };
    let needle = needle.as_bytes();
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{path}{suffix}")))
        .filter(|file| {
            std::fs::read(file).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
            })
        })
        .collect()
}

/// What the README asks a new user to do after `fairsend init`: fill in every `FILL IN`
/// placeholder and add a contact. DNS lookups are pointed at a closed loopback port: tests stay
/// off the network. Panics if a placeholder is left.
pub fn fill_in_the_starter(config: &Path) {
    let values = [
        ("legal_name", "Testi Oy"),
        ("business_id", "1234567-1"),
        ("postal_address", "Katu 1, 00100 Helsinki"),
        ("contact_email", "hello@testi.example"),
        ("privacy_contact", "privacy@testi.example"),
        ("domain", "bounces.testi.example"),
        ("title", "Testi Oy:n asiakasrekisteri"),
        ("controller", "Testi Oy"),
        ("controller_contact", "privacy@testi.example"),
        ("from", "Myynti <myynti@testi.example>"),
        ("reply_to", "myynti@testi.example"),
    ];
    for file in ["fairsend.toml", "registers.toml", "campaigns/first.toml"] {
        let path = config.join(file);
        let text = std::fs::read_to_string(&path).expect("starter file");
        let mut filled: Vec<String> = text
            .lines()
            .map(|line| {
                values
                    .iter()
                    .find(|(key, _)| line.starts_with(&format!("{key} ")) && line.contains("\"\""))
                    .map(|(_, value)| line.replacen("\"\"", &format!("\"{value}\""), 1))
                    .unwrap_or_else(|| line.to_string())
            })
            .collect();
        assert!(
            !filled
                .iter()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("= \"\"")),
            "{file} still has a placeholder"
        );
        if file == "fairsend.toml" {
            filled.push("\n[dns]\nresolver = \"127.0.0.1:9\"\ntimeout = \"100ms\"".to_string());
        }
        std::fs::write(&path, filled.join("\n")).expect("write starter file");
    }
    let contacts = config.join("contacts/customers.csv");
    let mut csv = std::fs::read_to_string(&contacts).expect("contacts");
    csv.push_str("anna@asiakas.example,Anna,Asiakas,Asiakas Oy,CEO,fi\n");
    std::fs::write(&contacts, csv).expect("write contacts");
}

/// Sends a second campaign, `next-campaign` (the test campaign under another name), through
/// `server`, and returns the recipients this send reached.
pub fn send_next_campaign(scratch: &Scratch, server: &SmtpServer) -> Vec<String> {
    let before = server.messages().len();
    scratch.write(
        "config/campaigns/next.toml",
        &CAMPAIGN.replace("test-campaign", "next-campaign"),
    );
    let out = scratch.run(&[
        "send",
        "config/campaigns/next.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    server
        .messages()
        .iter()
        .skip(before)
        .map(|m| m["rcpt_tos"][0].as_str().unwrap_or_default().to_string())
        .collect()
}
