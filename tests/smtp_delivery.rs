//! Delivery against a real SMTP server process on loopback (aiosmtpd): one transaction per
//! recipient with one RCPT TO and the VERP envelope sender; 4xx is retried, 5xx fails only
//! that recipient.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Scratch, SmtpServer, parse_message, states, stderr};

fn assert_one_transaction_per_recipient(server: &SmtpServer, expected: &[String]) {
    let messages = server.messages();
    let mut per_rcpt: BTreeMap<String, usize> = BTreeMap::new();
    for m in &messages {
        let rcpts = m["rcpt_tos"].as_array().unwrap();
        assert_eq!(
            rcpts.len(),
            1,
            "exactly one RCPT TO per transaction: {rcpts:?}"
        );
        let rcpt = rcpts[0].as_str().unwrap().to_string();
        let mail_from = m["mail_from"].as_str().unwrap();
        let token = mail_from
            .strip_prefix("bounces+")
            .and_then(|r| r.strip_suffix("@bounces.example.com"))
            .unwrap_or_else(|| panic!("MAIL FROM is not VERP: {mail_from}"));
        assert!(
            token.len() >= 30 && token.chars().all(|c| c.is_ascii_alphanumeric()),
            "{token}"
        );
        let parsed = parse_message(m["data"].as_str().unwrap().as_bytes());
        let to = parsed.one("to");
        assert!(
            to.ends_with(&format!("<{rcpt}>")) && !to.contains(','),
            "To: {to} for {rcpt}"
        );
        assert!(parsed.all("cc").is_empty() && parsed.all("bcc").is_empty());
        assert!(
            !m["data"].as_str().unwrap().contains("Return-Path"),
            "no spool headers over SMTP"
        );
        *per_rcpt.entry(rcpt).or_default() += 1;
    }
    for (rcpt, n) in &per_rcpt {
        assert_eq!(*n, 1, "{rcpt} received {n} messages");
    }
    let got: Vec<&String> = per_rcpt.keys().collect();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn n_recipients_make_n_transactions() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let emails = scratch.contacts("config/contacts/customers.csv", 25);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_one_transaction_per_recipient(&server, &emails);
    // Each message's VERP token is distinct (it identifies the outbox row).
    let froms: std::collections::BTreeSet<String> = server
        .messages()
        .iter()
        .map(|m| m["mail_from"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(froms.len(), emails.len());
    assert_eq!(states(&scratch, "test-campaign")["sent"], 25);
    // This server does not offer PIPELINING: one command at a time.
    assert!(server.messages().iter().all(|m| m["pipelined"] == false));
    // Loopback without `tls = "required"`: plain SMTP.
    assert!(server.messages().iter().all(|m| m["tls"] == false));
}

/// `send` through a server that offers PIPELINING and answers 451 to `soft`'s first RCPT TO,
/// 550 to `hard`'s, and drops the connection after the data of each of `dropped` (their first
/// transaction), with `extra` options; the send itself must succeed.
fn send_through_a_faulty_pipelining_server(
    scratch: &Scratch,
    (soft, hard): (&str, &str),
    dropped: &[&String],
    extra: &[&str],
) -> SmtpServer {
    let dropped: Vec<String> = dropped.iter().map(|d| regex_escape(d)).collect();
    let (soft, hard, dropped) = (regex_escape(soft), regex_escape(hard), dropped.join("|"));
    let mut options = vec![
        "--pipelining",
        "--tempfail",
        &soft,
        "--permfail",
        &hard,
        "--drop-after-data",
        &dropped,
    ];
    options.extend_from_slice(extra);
    let server = SmtpServer::start(scratch.dir.path(), &options);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    server
}

#[test]
fn pipelined_transactions_keep_every_rule() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 12);
    let (soft, hard) = (emails[3].clone(), emails[7].clone());
    let server =
        send_through_a_faulty_pipelining_server(&scratch, (&soft, &hard), &[&emails[10]], &[]);
    // MAIL FROM, RCPT TO and DATA went in one write: DATA had arrived before RCPT was answered.
    let messages = server.messages();
    assert!(
        messages.iter().all(|m| m["pipelined"] == true),
        "every transaction pipelined"
    );
    let delivered: Vec<String> = emails.iter().filter(|e| **e != hard).cloned().collect();
    assert_one_transaction_per_recipient(&server, &delivered);
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["sent"], 10, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    assert_eq!(s["uncertain"], 1, "{s}");
    assert_eq!(s["deferred"], 0, "{s}");
}

/// On one busy connection the next transaction's MAIL FROM, RCPT TO and DATA go out behind
/// the message before it (RFC 2920: message content may open a group), one round trip per
/// message; and when the message before fails, the one whose commands rode behind it is sent
/// again on a fresh connection, not lost and not doubled.
#[test]
fn the_next_transaction_goes_out_behind_the_message_before_it() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused").on_one_connection();
    let emails = scratch.contacts("config/contacts/customers.csv", 30);
    let (soft, hard) = (emails[5].clone(), emails[12].clone());
    // The server takes 50 ms to answer each RCPT TO: by then the next message is always in
    // line, so its commands ride behind every message, the dropped ones included.
    let server = send_through_a_faulty_pipelining_server(
        &scratch,
        (&soft, &hard),
        &[&emails[8], &emails[20]],
        &["--rcpt-delay", "0.05"],
    );
    let messages = server.messages();
    let behind = messages
        .iter()
        .filter(|m| m["commands_behind"] == true)
        .count();
    assert!(
        behind >= messages.len() / 2,
        "{behind} of {} messages had the next transaction's commands behind them",
        messages.len()
    );
    // Both dropped messages had commands behind them: the deliveries they belonged to had to
    // start over on a fresh connection (and, as the counts below show, were neither lost nor
    // doubled).
    let dropped_with_commands_behind = messages
        .iter()
        .filter(|m| m["dropped"] == true && m["commands_behind"] == true)
        .count();
    assert_eq!(dropped_with_commands_behind, 2, "{messages:?}");
    let delivered: Vec<String> = emails.iter().filter(|e| **e != hard).cloned().collect();
    assert_one_transaction_per_recipient(&server, &delivered);
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["sent"], 27, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    assert_eq!(s["uncertain"], 2, "{s}");
    assert_eq!(s["deferred"], 0, "{s}");
}

#[test]
fn temporary_failure_is_retried_and_permanent_failure_fails_one_recipient() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 10);
    let soft = emails[3].clone();
    let hard = emails[7].clone();
    let server = SmtpServer::start(
        scratch.dir.path(),
        &[
            "--tempfail",
            &regex_escape(&soft),
            "--permfail",
            &regex_escape(&hard),
        ],
    );
    let started = std::time::Instant::now();
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = server.events();
    assert!(
        events.iter().any(|e| e["event"] == "rcpt_refused"
            && e["code"] == 451
            && e["rcpt"] == soft.as_str()),
        "the server answered 451 once"
    );
    let delivered: Vec<String> = emails.iter().filter(|e| **e != hard).cloned().collect();
    assert_one_transaction_per_recipient(&server, &delivered);
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["sent"], 9, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    assert_eq!(s["deferred"], 0, "{s}");
    // The retry waited for its backoff (1 s) within the run.
    assert!(started.elapsed() >= Duration::from_secs(1));

    // The failed recipient is not retried by a later run.
    let again = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(again.status.success());
    assert_eq!(server.messages().len(), 9);
    assert!(
        !server
            .events()
            .iter()
            .any(|e| e["rcpt"] == hard.as_str() && e["event"] == "message")
    );
}

#[test]
fn deferred_message_is_sent_by_a_later_run() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    // No waiting inside the run: the deferral must survive until the next run.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:unused")
            .replace("wait_in_run = \"30s\"", "wait_in_run = \"0s\""),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 3);
    let server = SmtpServer::start(
        scratch.dir.path(),
        &["--tempfail", &regex_escape(&emails[0])],
    );
    let first = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_i64(), s["deferred"].as_i64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert!(common::stdout(&first).contains("wait for a retry"));
    std::thread::sleep(Duration::from_millis(1100));
    let second = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_one_transaction_per_recipient(&server, &emails);
    assert_eq!(states(&scratch, "test-campaign")["sent"], 3);
}

fn regex_escape(s: &str) -> String {
    let mut out = String::from("^");
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '@' || c == '_' || c == '-' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out.push('$');
    out
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with openssl: (CA
/// certificate, server certificate, server key).
fn test_certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl (see .ci/run)");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (ca_key, ca, key, csr, cert, ext) = (
        path("ca.key"),
        path("ca.pem"),
        path("server.key"),
        path("server.csr"),
        path("server.pem"),
        path("server.ext"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=fairsend test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(&args);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    (ca, cert, key)
}

#[test]
fn starttls_and_authentication_on_a_server_that_requires_both() {
    let scratch = Scratch::new("outbox:unused");
    let (ca, cert, key) = test_certificates(scratch.dir.path());
    let server = SmtpServer::start(
        scratch.dir.path(),
        &[
            "--starttls",
            &cert,
            &key,
            "--auth",
            "mailer:s3cret-pass",
            "--pipelining",
        ],
    );
    let config = |ca_file: Option<&str>| {
        let mut toml = common::fairsend_toml(&server.url())
            .replace(
                "timeout = \"10s\"",
                "timeout = \"10s\"\ntls = \"required\"\nusername_env = \"TEST_SMTP_USER\"\npassword_env = \"TEST_SMTP_PASSWORD\"",
            )
            .replace("wait_in_run = \"30s\"", "wait_in_run = \"0s\"");
        if let Some(ca) = ca_file {
            toml = toml.replace(
                "tls = \"required\"",
                &format!("tls = \"required\"\nca_file = \"{ca}\""),
            );
        }
        scratch.write("config/fairsend.toml", &toml);
    };
    let emails = scratch.contacts("config/contacts/customers.csv", 5);
    let send = |password: &str| {
        scratch
            .command(&["send", "config/campaigns/test.toml"])
            .env("TEST_SMTP_USER", "mailer")
            .env("TEST_SMTP_PASSWORD", password)
            .output()
            .expect("send")
    };

    // The server's certificate is not trusted by the system: nothing is sent, in clear or not.
    config(None);
    let untrusted = send("s3cret-pass");
    assert!(untrusted.status.success(), "{}", stderr(&untrusted));
    assert!(server.messages().is_empty());
    assert!(!server.events().iter().any(|e| e["event"] == "auth"));
    assert_eq!(states(&scratch, "test-campaign")["deferred"], 5);

    // Trusted, but the wrong password: refused, and the password is never shown.
    config(Some(&ca));
    std::thread::sleep(Duration::from_millis(1100));
    let refused = send("wrong-pass");
    assert!(refused.status.success(), "{}", stderr(&refused));
    assert!(server.messages().is_empty());
    assert!(
        stderr(&refused).contains("authentication failed"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !stderr(&refused).contains("wrong-pass")
            && !common::stdout(&refused).contains("wrong-pass")
    );
    assert!(
        server
            .events()
            .iter()
            .any(|e| e["event"] == "auth" && e["ok"] == false)
    );

    // Trusted and the right password: every message over TLS, after AUTH.
    std::thread::sleep(Duration::from_millis(2100));
    let ok = send("s3cret-pass");
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_one_transaction_per_recipient(&server, &emails);
    assert!(
        server
            .messages()
            .iter()
            .all(|m| m["tls"] == true && m["pipelined"] == true)
    );
    assert!(
        server
            .events()
            .iter()
            .any(|e| e["event"] == "auth" && e["ok"] == true && e["user"] == "mailer")
    );
    assert_eq!(states(&scratch, "test-campaign")["sent"], 5);
}

#[test]
fn a_password_never_travels_in_clear_beyond_loopback() {
    let scratch = Scratch::new("smtp://mail.example.com:25");
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("smtp://mail.example.com:25").replace(
            "timeout = \"10s\"",
            "timeout = \"10s\"\ntls = \"none\"\nusername_env = \"TEST_SMTP_USER\"\npassword_env = \"TEST_SMTP_PASSWORD\"",
        ),
    );
    scratch.contacts("config/contacts/customers.csv", 2);
    let out = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--allow-dns-problems",
            "--allow-insecure-links",
        ])
        .env("TEST_SMTP_USER", "mailer")
        .env("TEST_SMTP_PASSWORD", "s3cret-pass")
        .output()
        .expect("send");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("would travel in clear"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret-pass"));
}

#[test]
fn bad_time_outs_and_ca_files_are_named() {
    let scratch = Scratch::new("outbox:unused");
    scratch.contacts("config/contacts/customers.csv", 2);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let with = |extra: &str| {
        scratch.write(
            "config/fairsend.toml",
            &common::fairsend_toml(&server.url())
                .replace("timeout = \"10s\"", &format!("timeout = \"10s\"\n{extra}")),
        );
        scratch.run(&["send", "config/campaigns/test.toml"])
    };
    let zero = with("data_timeout = \"0s\"");
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert!(
        stderr(&zero).contains("fairsend.toml")
            && stderr(&zero).contains("[transport] data_timeout"),
        "{}",
        stderr(&zero)
    );
    let word = with("reply_timeout = \"soon\"");
    assert_eq!(word.status.code(), Some(2), "{}", stderr(&word));
    assert!(
        stderr(&word).contains("[transport] reply_timeout"),
        "{}",
        stderr(&word)
    );
    let missing = with("ca_file = \"no-such-ca.pem\"\ntls = \"required\"");
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("[transport] ca_file")
            && stderr(&missing).contains("no-such-ca.pem"),
        "{}",
        stderr(&missing)
    );
    assert!(server.messages().is_empty());
}

#[test]
fn smtps_speaks_tls_from_the_first_byte() {
    let scratch = Scratch::new("outbox:unused");
    let (ca, cert, key) = test_certificates(scratch.dir.path());
    let server = SmtpServer::start(
        scratch.dir.path(),
        &["--tls-wrapper", &cert, &key, "--auth", "mailer:s3cret-pass"],
    );
    let url = format!("smtps://127.0.0.1:{}", server.port);
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml(&url).replace(
            "timeout = \"10s\"",
            &format!(
                "timeout = \"10s\"\nca_file = \"{ca}\"\nusername_env = \"TEST_SMTP_USER\"\npassword_env = \"TEST_SMTP_PASSWORD\""
            ),
        ),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 4);
    let out = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .env("TEST_SMTP_USER", "mailer")
        .env("TEST_SMTP_PASSWORD", "s3cret-pass")
        .output()
        .expect("send");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_one_transaction_per_recipient(&server, &emails);
    assert!(server.messages().iter().all(|m| m["tls"] == true));
    assert_eq!(states(&scratch, "test-campaign")["sent"], 4);
}
