//! Bounces read from an IMAP mailbox (`bounces poll`, `serve --poll-bounces`) against a real
//! Dovecot that each test starts as its own process on a loopback port: real bounce messages
//! from the shared corpus, re-addressed to a campaign the test sent through a real SMTP server,
//! are appended to the mailbox, ingested with the same effects as `bounces ingest`, and moved;
//! a crash between a message's commit and its move counts nothing twice; a wrong password, a
//! missing variable and plaintext to another host are refused with messages naming the cause.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, SmtpServer, Tool, json_list, stderr, stdout};
use fairsend::audience::EmailAddress;
use fairsend::store::Store;
use fairsend::suppress::{SuppressionReason, address_hash};

const USER_VAR: &str = "FAIRSEND_TEST_IMAP_USER";
const PASSWORD_VAR: &str = "FAIRSEND_TEST_IMAP_PASSWORD";
const PASSWORD: &str = "imap-test-Secret-4711";

/// A Dovecot master process with its own configuration, state and mail in a temporary
/// directory, serving one user whose mail is a Maildir the test can count.
struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    /// The plain IMAP port (STARTTLS offered when the instance has a certificate).
    port: u16,
    /// The IMAPS port, when the instance has a certificate.
    tls_port: Option<u16>,
}

/// Who Dovecot's own processes run as: the current user, or `nobody` when the tests run as
/// root (Dovecot refuses to run its login processes as root).
fn service_user() -> (String, String, String) {
    let id = |arg: &str, user: Option<&str>| {
        let out = Command::new("id").arg(arg).args(user).output().expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    if id("-u", None) == "0" {
        let name = "nobody".to_string();
        (id("-u", Some(&name)), id("-g", Some(&name)), name)
    } else {
        (id("-u", None), id("-g", None), id("-un", None))
    }
}

impl Dovecot {
    /// Plaintext IMAP on loopback (`ssl = no`).
    fn start() -> Self {
        Self::start_with(false)
    }

    /// IMAPS and STARTTLS with a certificate for `localhost` issued by a test CA (`ca.pem`).
    fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let (uid, gid, user) = service_user();
        // Dovecot's unprivileged processes must reach their sockets and the mail under it.
        chmod(base, 0o755);
        let home = base.join("home");
        std::fs::create_dir_all(&home).expect("home");
        if uid != current_uid() {
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&home)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        std::fs::write(
            base.join("passwd"),
            format!(
                "bounces:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}\n",
                home.display()
            ),
        )
        .expect("passwd");
        let port = common::net::free_port();
        let tls_port = tls.then(common::net::free_port);
        let ssl = match tls_port {
            Some(_) => {
                make_certificates(base);
                format!(
                    "ssl = yes\nssl_cert = <{0}/leaf.pem\nssl_key = <{0}/leaf.key\n",
                    base.display()
                )
            }
            None => "ssl = no\n".to_string(),
        };
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {b}/run\nstate_dir = {b}/state\n\
             instance_name = fairsend-test-{port}\nlog_path = {b}/dovecot.log\n\
             default_internal_user = {user}\ndefault_internal_group = {group}\n\
             default_login_user = {user}\nmail_location = maildir:~/Maildir\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\n{ssl}\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {b}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {b}/passwd\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n\
               inet_listener imaps {{\n    port = {tls_port}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            b = base.display(),
            group = if user == "nobody" {
                "nogroup".to_string()
            } else {
                user.clone()
            },
            tls_port = tls_port.unwrap_or(0),
        );
        std::fs::write(base.join("dovecot.conf"), conf).expect("dovecot.conf");
        let child = Self::spawn(base);
        let dovecot = Self {
            dir,
            child,
            port,
            tls_port,
        };
        dovecot.wait_ready();
        dovecot
    }

    /// Stops the server, keeping its configuration and mail.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "dovecot did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the stopped server again on the same ports, with the same mail.
    fn restart(&mut self) {
        self.child = Self::spawn(self.dir.path());
        self.wait_ready();
    }

    fn spawn(base: &Path) -> Child {
        Command::new(common::dovecot_binary().expect("dovecot"))
            .arg("-F")
            .arg("-c")
            .arg(base.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let mut greeting = [0u8; 4];
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"* OK" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Appends a message to INBOX over IMAP (Python's imaplib, another client than ours).
    fn append(&self, raw: &[u8]) {
        let file = self.dir.path().join("append.eml");
        std::fs::write(&file, raw).expect("write message");
        let script = format!(
            "import imaplib, sys\nm = imaplib.IMAP4('127.0.0.1', {})\nm.login('bounces', {PASSWORD:?})\n\
             typ, _ = m.append('INBOX', None, None, open(sys.argv[1], 'rb').read())\n\
             assert typ == 'OK', typ\nm.logout()\n",
            self.port
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .arg(&file)
            .output()
            .expect("python3");
        assert!(out.status.success(), "append: {}", stderr(&out));
    }

    /// How many messages a folder of the user holds (INBOX when `folder` is `None`).
    fn count(&self, folder: Option<&str>) -> usize {
        let mut maildir = self.dir.path().join("home/Maildir");
        if let Some(folder) = folder {
            maildir = maildir.join(format!(".{folder}"));
        }
        ["cur", "new"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
            .map(|entries| entries.filter_map(Result::ok).count())
            .sum()
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login, auth and imap processes with it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn current_uid() -> String {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A test CA and a certificate it issued for `localhost` and 127.0.0.1.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=fairsend test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("leaf.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    // Dovecot's config process reads the key as the service user.
    chmod(&dir.join("leaf.key"), 0o644);
}

/// The `[bounces.imap]` table appended to the scratch's fairsend.toml.
fn configure(scratch: &Scratch, table: &str) {
    let path = scratch.path("config/fairsend.toml");
    let mut toml = std::fs::read_to_string(&path).expect("fairsend.toml");
    toml.push_str("\n[bounces.imap]\n");
    toml.push_str(table);
    std::fs::write(path, toml).expect("fairsend.toml");
}

fn plaintext_table(dovecot: &Dovecot) -> String {
    format!(
        "url = \"imap://127.0.0.1:{}\"\nallow_plaintext_on_loopback = true\n\
         username_env = \"{USER_VAR}\"\npassword_env = \"{PASSWORD_VAR}\"\ntimeout = \"10s\"\n",
        dovecot.port
    )
}

fn poll(scratch: &Scratch, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = scratch.command(&["bounces", "poll", "--json"]);
    cmd.env(USER_VAR, "bounces")
        .env(PASSWORD_VAR, PASSWORD)
        .env_remove("FAIRSEND_TEST_CRASH_AFTER_COMMIT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run fairsend")
}

fn poll_ok(scratch: &Scratch) -> serde_json::Value {
    let out = poll(scratch, &[]);
    assert!(out.status.success(), "poll: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("poll JSON")
}

/// A real bounce from the corpus, re-addressed: the reporting MTA sent it to our VERP address
/// (in place of the corpus' own bounce address) about our recipient (in place of its own).
fn corpus_bounce(file: &str, verp: &str, recipient: &str) -> Vec<u8> {
    let dir = common::shared_corpora().join("bounces");
    let raw = std::fs::read_to_string(dir.join(file)).expect("corpus message");
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let original_recipient = expected
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols[0] == file)
        .map(|cols| cols[1].to_string())
        .expect("listed in expected.tsv");
    let bounce_address = raw
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix("To:"))
        .map(|to| {
            to.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .expect("To: header");
    raw.replace(&bounce_address, verp)
        .replace(&original_recipient, recipient)
        .into_bytes()
}

const CORPUS: [&str; 3] = [
    "lhost-exchange2007-07.eml",
    "lhost-sendmail-15.eml",
    "rhost-outlook-03.eml",
];

/// A campaign sent to `n` recipients through a real SMTP server, and one corpus bounce for
/// each of the first three: (scratch, server, recipients, bounces).
fn sent_and_bounced(n: usize) -> (Scratch, SmtpServer, Vec<String>, Vec<Vec<u8>>) {
    let (scratch, server, emails) = common::sent_via_smtp(n);
    let bounces = CORPUS
        .iter()
        .zip(&emails)
        .map(|(file, email)| {
            let (verp, _, _) = common::delivered(&server, email);
            corpus_bounce(file, &verp, email)
        })
        .collect();
    (scratch, server, emails, bounces)
}

fn bounces_of(scratch: &Scratch, email: &str) -> Vec<serde_json::Value> {
    json_list(scratch, &["bounces", "list", "--json"])
        .into_iter()
        .filter(|b| b["recipient"] == email)
        .collect()
}

/// The address's suppression reasons, read from the database as `send` reads them.
fn reasons(scratch: &Scratch, email: &str) -> Vec<SuppressionReason> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        let secret = common::unlock(scratch, &store).await;
        let address = EmailAddress::parse(email).unwrap();
        store
            .suppression_reasons(&address_hash(&secret, &address))
            .await
            .unwrap()
    })
}

fn wanted() -> bool {
    common::require(&[Tool::Aiosmtpd, Tool::SharedCorpora, Tool::Dovecot])
}

#[test]
fn appended_bounces_are_ingested_and_moved_and_a_crash_before_the_move_counts_nothing_twice() {
    if !wanted() {
        return;
    }
    let (scratch, _server, emails, bounces) = sent_and_bounced(4);
    let dovecot = Dovecot::start();
    configure(&scratch, &plaintext_table(&dovecot));
    for raw in &bounces {
        dovecot.append(raw);
    }
    assert_eq!(dovecot.count(None), 3);

    // The first message's effects are committed, then the process dies before moving it.
    let crashed = poll(&scratch, &[("FAIRSEND_TEST_CRASH_AFTER_COMMIT", "1")]);
    assert!(!crashed.status.success(), "the crash hook did not fire");
    assert!(stderr(&crashed).contains("aborting after message 1"));
    assert_eq!(
        dovecot.count(None),
        3,
        "nothing may be moved by the crashed pass"
    );
    assert_eq!(bounces_of(&scratch, &emails[0]).len(), 1);

    // The next pass finds the first one recorded: it only moves it, and ingests the others.
    let summary = poll_ok(&scratch);
    assert_eq!(summary["messages"], 3, "{summary}");
    assert_eq!(summary["new"], 2, "{summary}");
    assert_eq!(summary["already_handled"], 1, "{summary}");
    assert_eq!(summary["dsn"], 2, "{summary}");
    assert_eq!(summary["suppressed_hard"], 2, "{summary}");
    assert_eq!(summary["finished"], 3, "{summary}");
    assert_eq!(dovecot.count(None), 0);
    assert_eq!(dovecot.count(Some("fairsend-processed")), 3);

    for email in &emails[..3] {
        let found = bounces_of(&scratch, email);
        assert_eq!(found.len(), 1, "{email}: {found:?}");
        assert_eq!(found[0]["verification"], "proven", "{email}: {found:?}");
        assert_eq!(found[0]["class"], "hard", "{email}: {found:?}");
        assert_eq!(found[0]["campaign"], "test-campaign");
        assert_eq!(
            reasons(&scratch, email),
            [SuppressionReason::HardBounce],
            "{email}"
        );
    }
    assert!(bounces_of(&scratch, &emails[3]).is_empty());
    assert!(reasons(&scratch, &emails[3]).is_empty());

    // An empty mailbox: nothing to do.
    let again = poll_ok(&scratch);
    assert_eq!(again["messages"], 0, "{again}");

    // The same bytes piped to `bounces ingest` are the same message to fairsend.
    let piped = common::ingest_stdin(
        &scratch,
        &String::from_utf8_lossy(&bounces[1])
            .replace("\r\n", "\n")
            .replace('\n', "\r\n"),
    );
    assert_eq!(piped["duplicates"], 1, "{piped}");
    assert_eq!(bounces_of(&scratch, &emails[1]).len(), 1);
}

#[test]
fn flag_mode_leaves_messages_in_place_and_reads_each_once() {
    if !wanted() {
        return;
    }
    let (scratch, _server, emails, bounces) = sent_and_bounced(3);
    let dovecot = Dovecot::start();
    configure(
        &scratch,
        &format!("{}flag = \"$FairsendDone\"\n", plaintext_table(&dovecot)),
    );
    dovecot.append(&bounces[0]);
    let first = poll_ok(&scratch);
    assert_eq!(
        (first["new"].as_u64(), first["finished"].as_u64()),
        (Some(1), Some(1))
    );
    dovecot.append(&bounces[1]);
    let second = poll_ok(&scratch);
    assert_eq!(
        second["messages"], 1,
        "the flagged message was read again: {second}"
    );
    assert_eq!(second["new"], 1, "{second}");
    assert_eq!(dovecot.count(None), 2, "flag mode moves nothing");
    for email in &emails[..2] {
        assert_eq!(bounces_of(&scratch, email).len(), 1, "{email}");
    }

    // The proof rule holds as for `ingest`: a bounce about our recipient that carries no VERP
    // token of ours (sent to some other address) is recorded unverified and suppresses no one.
    let forged = corpus_bounce(CORPUS[2], "someone@elsewhere.example", &emails[2]);
    dovecot.append(&forged);
    let third = poll_ok(&scratch);
    assert_eq!(third["unverified"], 1, "{third}");
    assert_eq!(third["suppressed_hard"], 0, "{third}");
    let found = bounces_of(&scratch, &emails[2]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["verification"], "unverified", "{found:?}");
    assert!(reasons(&scratch, &emails[2]).is_empty());
}

#[test]
fn imaps_and_starttls_with_a_private_ca() {
    if !wanted() || !common::require(&[Tool::Openssl]) {
        return;
    }
    let (scratch, _server, emails, bounces) = sent_and_bounced(3);
    let dovecot = Dovecot::start_tls();
    std::fs::copy(dovecot.ca_file(), scratch.path("config/imap-ca.pem")).expect("ca");
    let table = |url: String| {
        format!(
            "url = \"{url}\"\nca_file = \"imap-ca.pem\"\nusername_env = \"{USER_VAR}\"\n\
             password_env = \"{PASSWORD_VAR}\"\nmove_to = \"Done\"\ntimeout = \"10s\"\n"
        )
    };
    let tls_port = dovecot.tls_port.expect("imaps port");
    configure(&scratch, &table(format!("imaps://localhost:{tls_port}")));
    dovecot.append(&bounces[0]);
    let summary = poll_ok(&scratch);
    assert_eq!(summary["new"], 1, "{summary}");
    assert_eq!(dovecot.count(Some("Done")), 1);

    // imap:// without the plaintext permission: STARTTLS, verified against the same CA.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:unused"),
    );
    configure(
        &scratch,
        &table(format!("imap://localhost:{}", dovecot.port)),
    );
    dovecot.append(&bounces[1]);
    let summary = poll_ok(&scratch);
    assert_eq!(summary["new"], 1, "{summary}");
    assert_eq!(dovecot.count(Some("Done")), 2);
    assert_eq!(bounces_of(&scratch, &emails[1]).len(), 1);
    let log = dovecot.log();
    assert!(log.contains("TLS"), "no TLS login in Dovecot's log: {log}");

    // Without the CA the server's certificate is not trusted, and no password is sent.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:unused"),
    );
    configure(
        &scratch,
        &table(format!("imaps://localhost:{tls_port}")).replace("ca_file = \"imap-ca.pem\"\n", ""),
    );
    let out = poll(&scratch, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("TLS failed"), "{}", stderr(&out));
}

#[test]
fn a_wrong_password_or_a_missing_variable_is_named_and_the_password_never_printed() {
    if !wanted() {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let dovecot = Dovecot::start();
    configure(&scratch, &plaintext_table(&dovecot));

    let wrong = "not-the-Password-8152";
    let out = poll(&scratch, &[(PASSWORD_VAR, wrong)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("login refused"), "{err}");
    assert!(
        err.contains(PASSWORD_VAR),
        "the message must name the variable: {err}"
    );
    assert!(
        !err.contains(wrong) && !stdout(&out).contains(wrong),
        "{err}"
    );

    let mut cmd = scratch.command(&["bounces", "poll"]);
    cmd.env(USER_VAR, "bounces").env_remove(PASSWORD_VAR);
    let out = cmd.output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("fairsend.toml") && err.contains("password_env") && err.contains(PASSWORD_VAR),
        "{err}"
    );
}

#[test]
fn plaintext_to_another_host_and_other_configuration_errors_name_the_file_and_field() {
    let scratch = Scratch::new("outbox:unused");
    let refused = |table: Option<&str>, field: &str, words: &str| {
        scratch.write(
            "config/fairsend.toml",
            &common::fairsend_toml("outbox:unused"),
        );
        if let Some(table) = table {
            configure(&scratch, table);
        }
        let out = poll(&scratch, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("fairsend.toml") && err.contains(field) && err.contains(words),
            "{err}"
        );
    };
    let names = format!("username_env = \"{USER_VAR}\"\npassword_env = \"{PASSWORD_VAR}\"\n");
    refused(
        Some(&format!(
            "url = \"imap://mail.example.com\"\nallow_plaintext_on_loopback = true\n{names}"
        )),
        "[bounces.imap] allow_plaintext_on_loopback",
        "'mail.example.com' is not one",
    );
    refused(None, "[bounces.imap]", "the table is missing");
    refused(
        Some(&format!(
            "url = \"imaps://mail.example.com\"\nmove_to = \"INBOX\"\n{names}"
        )),
        "[bounces.imap] move_to",
        "is the mailbox that is read",
    );
    refused(
        Some(&format!("url = \"pop3://mail.example.com\"\n{names}")),
        "[bounces.imap] url",
        "must start with imaps://",
    );
}

#[test]
fn imap_without_the_plaintext_permission_requires_starttls() {
    if !common::require(&[Tool::Dovecot]) {
        return;
    }
    // This server offers no STARTTLS: refused before any login.
    let scratch = Scratch::new("outbox:unused");
    let dovecot = Dovecot::start();
    configure(
        &scratch,
        &plaintext_table(&dovecot).replace("allow_plaintext_on_loopback = true\n", ""),
    );
    let out = poll(&scratch, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(
        !dovecot.log().contains("Login: user=<bounces>"),
        "{}",
        dovecot.log()
    );
}

#[test]
fn serve_reads_the_mailbox_as_mail_arrives() {
    if !wanted() {
        return;
    }
    let (scratch, _server, emails, bounces) = sent_and_bounced(3);
    let dovecot = Dovecot::start();
    configure(&scratch, &plaintext_table(&dovecot));
    let _serve = common::ServeProcess::start_with(
        &scratch,
        &[(USER_VAR, "bounces"), (PASSWORD_VAR, PASSWORD)],
        &["--poll-bounces", "3600"],
    );
    // The poll interval is an hour: only IDLE can bring these in within the test's patience.
    for (i, raw) in bounces.iter().enumerate().take(2) {
        // The first pass may run before or after the append; either way it is read once.
        dovecot.append(raw);
        let deadline = Instant::now() + Duration::from_secs(30);
        while dovecot.count(Some("fairsend-processed")) < i + 1 {
            assert!(Instant::now() < deadline, "not moved: {}", dovecot.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(bounces_of(&scratch, &emails[i]).len(), 1);
    }
    assert_eq!(dovecot.count(None), 0);
}

#[test]
fn serve_keeps_serving_while_the_mailbox_is_away_and_reads_it_when_it_is_back() {
    if !wanted() {
        return;
    }
    let (scratch, _server, emails, bounces) = sent_and_bounced(3);
    let mut dovecot = Dovecot::start();
    configure(&scratch, &plaintext_table(&dovecot));
    dovecot.append(&bounces[0]);
    dovecot.stop();

    let log = scratch.path("serve.log");
    let mut child = scratch
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "none",
            "--poll-bounces",
            "3600",
        ])
        .env(USER_VAR, "bounces")
        .env(PASSWORD_VAR, PASSWORD)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let guard = KillOnDrop(&mut child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(guard.0.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening")
        .to_string();

    // The mailbox is away: the failure is logged, and serve answers meanwhile.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("reading the bounce mailbox failed")
    {
        assert!(Instant::now() < deadline, "no failure logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, body) = common::http("GET", &format!("{base}/healthz"), None);
    assert_eq!((status, body.trim()), (200, "ok"));

    // Back again: the retry (5 s after the failure) reads and moves the waiting bounce.
    dovecot.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dovecot.count(Some("fairsend-processed")) < 1 {
        assert!(
            Instant::now() < deadline,
            "not read after the server came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bounces_of(&scratch, &emails[0]).len(), 1);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("cannot connect"), "{logged}");
    assert!(!logged.contains(PASSWORD), "the password reached the log");
}

struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
