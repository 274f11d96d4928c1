//! What a test needs from outside Rust, found in one place, so that `cargo test` passes on a
//! machine with only Rust installed and never skips silently on CI.
//!
//! A test that starts a tool or reads the shared corpora begins with
//!
//! ```ignore
//! if !common::require(&[Tool::Aiosmtpd]) {
//!     return;
//! }
//! ```
//!
//! When everything is there, `require` returns `true` and the test runs. When something is
//! missing it prints ONE line to stderr — `skipped TEST: missing X; install: COMMAND` — and
//! returns `false`, so the test returns early and passes; but when the `CI` environment variable
//! is set (to anything but `0` or `false`), the same line is a panic: CI never skips. `bash
//! .ci/run` installs every tool and sets `CI=1`. Each check runs once per test binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Something a test may need that `cargo` does not provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `../shared/corpora/` beside the checkout (the bounce corpus and the RFC 7208 SPF suite).
    SharedCorpora,
    /// Python 3 with aiosmtpd: the SMTP server of tests/support/smtp_server.py.
    Aiosmtpd,
    /// Python 3 with selenium and axe-selenium-python (axe-core), Chromium and chromedriver:
    /// tests/support/browser.py.
    Browser,
    /// Debian's dnsmasq: a real DNS server for the DNS pre-flight tests.
    Dnsmasq,
    /// Python 3 with dkimpy and PyNaCl: the independent DKIM verifier.
    Dkimpy,
    /// The openssl command: test DKIM keys.
    Openssl,
    /// git, and a checkout to archive (the fresh-clone test).
    Git,
    /// Debian's Dovecot IMAP server (`dovecot-imapd`): the bounce mailbox of the IMAP tests.
    Dovecot,
    /// The PostgreSQL server named by `FAIRSEND_TEST_POSTGRES`, answering: see
    /// [`postgres_wanted_and_answering`]. Without the variable the tests run on SQLite.
    Postgres,
}

impl Tool {
    const ALL: [Tool; 9] = [
        Tool::SharedCorpora,
        Tool::Aiosmtpd,
        Tool::Browser,
        Tool::Dnsmasq,
        Tool::Dkimpy,
        Tool::Openssl,
        Tool::Git,
        Tool::Dovecot,
        Tool::Postgres,
    ];

    /// What is looked for, as the skip line names it.
    pub fn what(self) -> &'static str {
        match self {
            Tool::SharedCorpora => {
                "the shared test corpora (../shared/corpora beside the checkout)"
            }
            Tool::Aiosmtpd => "python3 with aiosmtpd",
            Tool::Browser => {
                "chromium, chromedriver and python3 with selenium and axe-selenium-python"
            }
            Tool::Dnsmasq => "dnsmasq",
            Tool::Dkimpy => "python3 with dkimpy and pynacl",
            Tool::Openssl => "openssl",
            Tool::Git => "git and a git checkout",
            Tool::Dovecot => "dovecot (Debian's dovecot-imapd)",
            Tool::Postgres => "the PostgreSQL server that FAIRSEND_TEST_POSTGRES names",
        }
    }

    /// The command that installs it (on Debian; `bash .ci/run` installs them all).
    pub fn install(self) -> &'static str {
        match self {
            Tool::SharedCorpora => {
                "put the project's shared/ folder beside the checkout (../shared/corpora/bounces, ../shared/corpora/spf)"
            }
            Tool::Aiosmtpd => "python3 -m pip install 'aiosmtpd==1.4.6'",
            Tool::Browser => {
                "apt-get install chromium chromium-driver && python3 -m pip install 'selenium>=4.20,<5' 'axe-selenium-python>=2.1,<3'"
            }
            Tool::Dnsmasq => "apt-get install dnsmasq-base",
            Tool::Dkimpy => "python3 -m pip install 'dkimpy>=1.1,<2' 'pynacl>=1.5'",
            Tool::Openssl => "apt-get install openssl",
            Tool::Git => "apt-get install git (and run the tests in a git clone)",
            Tool::Dovecot => "apt-get install dovecot-imapd",
            Tool::Postgres => {
                "apt-get install postgresql and start it (or unset FAIRSEND_TEST_POSTGRES to test on SQLite only)"
            }
        }
    }

    fn index(self) -> usize {
        Tool::ALL
            .iter()
            .position(|t| *t == self)
            .unwrap_or_default()
    }

    fn present(self) -> bool {
        static FOUND: [OnceLock<bool>; 9] = [const { OnceLock::new() }; 9];
        *FOUND[self.index()].get_or_init(|| self.probe())
    }

    fn probe(self) -> bool {
        match self {
            Tool::SharedCorpora => {
                let corpora = shared_corpora();
                corpora.join("bounces/expected.tsv").is_file()
                    && corpora.join("spf/rfc7208-tests.yml").is_file()
            }
            Tool::Aiosmtpd => python_imports("aiosmtpd"),
            Tool::Browser => {
                runs("chromium", &["--version"])
                    && runs("chromedriver", &["--version"])
                    && python_imports("selenium, axe_selenium_python")
            }
            Tool::Dnsmasq => runs("dnsmasq", &["--version"]),
            Tool::Dkimpy => python_imports("dkim, nacl"),
            Tool::Openssl => runs("openssl", &["version"]),
            Tool::Git => {
                runs("git", &["--version"])
                    && Command::new("git")
                        .args(["rev-parse", "--verify", "HEAD"])
                        .current_dir(env!("CARGO_MANIFEST_DIR"))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
            }
            Tool::Dovecot => dovecot_binary().is_some(),
            Tool::Postgres => postgres_answers(),
        }
    }
}

/// Where the shared corpora are: `../shared/corpora` relative to the checkout.
pub fn shared_corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora")
}

/// Whether the tests run on CI, where a missing tool is a failure rather than a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `true` when every tool in `tools` is there. Otherwise prints one line naming what is
/// missing and how to install it and returns `false` (the test should return), or panics with
/// that line when [`on_ci`].
pub fn require(tools: &[Tool]) -> bool {
    require_or(tools, "skipped")
}

/// Whether the tests' database is PostgreSQL: `FAIRSEND_TEST_POSTGRES` is set and the server
/// answers. When it is set but the server does not answer, the test runs on SQLite after one
/// line saying so (a failure under CI).
pub fn postgres_wanted_and_answering() -> bool {
    std::env::var("FAIRSEND_TEST_POSTGRES").is_ok_and(|v| !v.is_empty())
        && require_or(&[Tool::Postgres], "on SQLite, not PostgreSQL:")
}

/// [`require`], saying `what_happens` to the test when a tool is missing.
fn require_or(tools: &[Tool], what_happens: &str) -> bool {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.present()).collect();
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    let what: Vec<&str> = missing.iter().map(|t| t.what()).collect();
    let how: Vec<&str> = missing.iter().map(|t| t.install()).collect();
    let line = format!(
        "{what_happens} {test}: missing {}; install: {} (or `bash .ci/run` for everything)",
        what.join(", "),
        how.join(" && ")
    );
    if on_ci() {
        panic!("CI is set, so a missing tool fails instead of skipping: {line}");
    }
    // Straight to the process's stderr: `eprintln!` would be captured by the test harness
    // and hidden, since the skipped test passes. Once per test, however often it asks.
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&line) {
        let _ = writeln!(std::io::stderr(), "{line}");
        said.push(line);
    }
    false
}

/// Dovecot's master binary: on PATH, or in /usr/sbin, which a user's PATH may lack.
pub fn dovecot_binary() -> Option<&'static str> {
    ["dovecot", "/usr/sbin/dovecot"]
        .into_iter()
        .find(|program| runs(program, &["--version"]))
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python_imports(modules: &str) -> bool {
    runs("python3", &["-c", &format!("import {modules}")])
}

fn postgres_answers() -> bool {
    use sqlx::Connection;
    let Ok(url) = std::env::var("FAIRSEND_TEST_POSTGRES") else {
        return false;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    runtime.block_on(async {
        let connect = sqlx::PgConnection::connect(&url);
        match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
            Ok(Ok(conn)) => conn.close().await.is_ok(),
            _ => false,
        }
    })
}
