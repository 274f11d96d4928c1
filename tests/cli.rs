//! The command line as a user meets it: error messages that say each cause once, help for
//! every option and environment variable, colour only on a terminal, outside text printed with
//! its control characters escaped, and `bounces ingest` taking the files people have.

mod common;

use common::{Scratch, stderr, stdout};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn an_error_says_each_cause_once() {
    let scratch = Scratch::new("outbox:outbox");

    let out = scratch.run(&["import", "missing.csv", "--register", "customers"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("missing.csv: cannot read the file: No such file or directory"),
        "{err}"
    );
    assert_eq!(count(&err, "No such file or directory"), 1, "{err}");

    let out = std::process::Command::new(common::BIN)
        .current_dir(scratch.dir.path())
        .args(["--config", "nowhere", "status"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "error: nowhere/fairsend.toml: there is no such file; nowhere is not a configuration \
         directory: name yours with `--config DIR` (default ./config), or write a starter one \
         with `fairsend init DIR`"
    );

    let toml = common::fairsend_toml("outbox:outbox")
        .replace("legal_name = \"Testi Yhtiö Oy\"", "legal_name = \"\"");
    scratch.write("config/fairsend.toml", &toml);
    for command in ["check", "send"] {
        let out = scratch.run(&[command, "config/campaigns/test.toml"]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(if command == "check" { 1 } else { 2 })
        );
        assert_eq!(count(&all, "[sender] legal_name"), 1, "{command}: {all}");
        assert_eq!(count(&all, "fairsend.toml"), 1, "{command}: {all}");
        assert!(
            all.contains("fairsend.toml: [sender] legal_name: is empty"),
            "{command}: {all}"
        );
    }
}

/// A DSN for an unknown recipient whose diagnostic tries to clear the screen and set the
/// terminal's title.
const HOSTILE_DSN: &str = "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\n\
    To: bounces@bounces.example.com\r\nSubject: Undelivered\r\nMessage-Id: <esc1@mx.example.net>\r\n\
    MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
    --B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\r\n\
    --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
    Final-Recipient: rfc822; stranger@nowhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
    Diagnostic-Code: smtp; 550 5.1.1 \u{1b}[2J\u{1b}]0;pwned\u{7} user unknown\r\n\r\n--B--\r\n";

#[test]
fn outside_text_is_printed_with_control_characters_escaped() {
    use std::io::Write;
    let scratch = Scratch::new("outbox:outbox");
    let mut ingest = scratch
        .command(&["bounces", "ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ingest
        .stdin
        .take()
        .unwrap()
        .write_all(HOSTILE_DSN.as_bytes())
        .unwrap();
    let out = ingest.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let list = scratch.run(&["bounces", "list"]);
    let text = stdout(&list);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(text.contains("stranger@nowhere.example"), "{text}");
    assert!(
        !text.contains(['\u{1b}', '\u{7}']),
        "raw control characters reach the terminal: {text:?}"
    );
    assert!(
        text.contains("550 5.1.1 \\u{1b}[2J\\u{1b}]0;pwned\\u{7} user unknown"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "one bounce, one line: {text}");

    // JSON keeps the exact text (serde escapes it).
    let json = scratch.run(&["bounces", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(
        rows[0]["diagnostic"]
            .as_str()
            .unwrap()
            .contains("\u{1b}[2J\u{1b}]0;pwned\u{7}")
    );
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3);
    let out = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("INFO"), "the run logs: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in piped logs: {err:?}"
    );
}

/// PostgreSQL only (the NOTICE is PostgreSQL's): runs in `.ci/run`'s PostgreSQL pass and
/// whenever FAIRSEND_TEST_POSTGRES is set.
#[test]
fn postgres_notices_do_not_reach_the_log() {
    if !common::on_postgres() {
        return;
    }
    let scratch = Scratch::new("outbox:outbox");
    for _ in 0..2 {
        let out = scratch.run(&["status"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("_sqlx_migrations"), "{err}");
        assert!(!err.contains("already exists"), "{err}");
    }
}

/// A DSN for an unknown recipient, told apart by its Message-ID.
fn dsn_for(n: usize) -> String {
    HOSTILE_DSN
        .replace("<esc1@mx.example.net>", &format!("<dsn{n}@mx.example.net>"))
        .replace("stranger@", &format!("stranger{n}@"))
}

fn ingest_json(scratch: &Scratch, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bounces", "ingest", "--json"];
    all.extend_from_slice(args);
    let out = scratch.run(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("summary JSON")
}

#[test]
fn bounces_ingest_takes_eml_files_and_detects_maildir_or_mbox() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("in/a.eml", &dsn_for(1));
    scratch.write("in/b.eml", &dsn_for(2));
    let a = scratch.path("in/a.eml").display().to_string();
    let b = scratch.path("in/b.eml").display().to_string();
    let summary = ingest_json(&scratch, &[&a, &b]);
    assert_eq!(
        (summary["messages"].as_u64(), summary["new"].as_u64()),
        (Some(2), Some(2))
    );

    // A missing file refuses the whole run, naming it, before anything is recorded.
    scratch.write("in/c.eml", &dsn_for(3));
    let c = scratch.path("in/c.eml").display().to_string();
    let out = scratch.run(&["bounces", "ingest", &c, "in/missing.eml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("in/missing.eml: cannot read"),
        "{}",
        stderr(&out)
    );
    let listed = scratch.run(&["bounces", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(rows.len(), 2);

    // --mbox with a Maildir: new/ is processed and moved to cur/.
    scratch.write("Maildir/new/1700000000.1.host", &dsn_for(4));
    scratch.write("Maildir/new/1700000000.2.host", &dsn_for(5));
    std::fs::create_dir_all(scratch.path("Maildir/cur")).unwrap();
    let maildir = scratch.path("Maildir").display().to_string();
    let summary = ingest_json(&scratch, &["--mbox", &maildir]);
    assert_eq!(summary["new"].as_u64(), Some(2));
    assert_eq!(
        std::fs::read_dir(scratch.path("Maildir/new"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(scratch.path("Maildir/cur"))
            .unwrap()
            .count(),
        2
    );

    // --mbox with an mbox file: every message in it.
    let mbox = format!(
        "From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n{}\nFrom MAILER-DAEMON Thu Jan  1 00:00:01 2026\n{}\n",
        dsn_for(6).replace("\r\n", "\n"),
        dsn_for(7).replace("\r\n", "\n")
    );
    scratch.write("in/box.mbox", &mbox);
    let path = scratch.path("in/box.mbox").display().to_string();
    let summary = ingest_json(&scratch, &["--mbox", &path]);
    assert_eq!(summary["new"].as_u64(), Some(2));

    let listed = scratch.run(&["bounces", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
}

#[test]
fn help_describes_serve_and_names_the_environment() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        stdout(&out)
    };
    let serve = help(&["serve", "--help"]);
    for needle in [
        "/admin/bounces",
        "FAIRSEND_ADMIN_PASSWORD",
        "FAIRSEND_SECRET",
        "/u/TOKEN",
        "Address to listen on",
    ] {
        assert!(
            serve.contains(needle),
            "serve --help lacks {needle}:\n{serve}"
        );
    }
    let top = help(&["--help"]);
    for needle in [
        "Environment variables:",
        "FAIRSEND_SECRET",
        "FAIRSEND_ADMIN_PASSWORD",
        "FAIRSEND_DATABASE_URL",
        "FAIRSEND_LOG",
        "PGPASSWORD",
        "NO_COLOR",
    ] {
        assert!(top.contains(needle), "--help lacks {needle}:\n{top}");
    }
    let send = help(&["send", "--help"]);
    assert!(
        send.contains("--json  ") && send.contains("as JSON"),
        "{send}"
    );
}

#[test]
fn opt_out_details_from_a_complaint_are_printed_escaped() {
    let scratch = Scratch::new("outbox:outbox");
    let emails = scratch.contacts("config/contacts/customers.csv", 1);
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
    let file = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let message = common::parse_message(&std::fs::read(file).unwrap());
    let verp = message
        .one("return-path")
        .trim_matches(['<', '>'])
        .to_string();
    let mid = message.one("message-id").to_string();
    let arf = format!(
        "From: staff@hotmail.example\r\nTo: {verp}\r\nSubject: complaint\r\nMessage-ID: <arf-esc@hotmail.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\u{1b}]0;owned\u{7}\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: {0}\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {mid}\r\nTo: {0}\r\n\r\n--B--\r\n",
        emails[0]
    );
    scratch.write("arf.eml", &arf);
    let ingest = scratch.run(&["bounces", "ingest", "arf.eml", "--json"]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&ingest)).unwrap();
    assert_eq!(summary["optouts"], 1, "{summary}");

    let list = scratch.run(&["optout", "list"]);
    let text = stdout(&list);
    assert!(text.contains(&emails[0]), "{text}");
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
    assert!(text.contains("abuse\\u{1b}]0;owned\\u{7}"), "{text}");
}

/// The exit codes of the use cases moved to `app/`: a bounce that does not exist is bad input
/// (2), a missing maildir too, a register that does not exist too; each says what it is once.
#[test]
fn data_commands_keep_their_exit_codes_and_messages() {
    let scratch = Scratch::new("outbox:outbox");
    let cases: [(&[&str], &str); 4] = [
        (
            &["bounces", "confirm", "999999"],
            "error: bounce 999999: no such bounce (see `bounces list`)\n",
        ),
        (
            &["bounces", "ingest", "--maildir", "no-maildir"],
            "no-maildir/new: not a maildir: No such file or directory (os error 2)\n",
        ),
        (
            &["bounces", "ingest", "missing.eml"],
            "error: missing.eml: cannot read: No such file or directory (os error 2)\n",
        ),
        (
            &["import", "x.csv", "--register", "nowhere"],
            "error: register 'nowhere' is not defined in ",
        ),
    ];
    for (args, message) in cases {
        let out = scratch.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(count(&err, "error: "), 1, "{args:?}: {err}");
    }
}

/// A bad row in a campaign's contact file refuses every command that imports it, and the
/// advice names only flags that exist, on the commands that have them.
#[test]
fn a_bad_campaign_row_points_to_flags_that_exist() {
    let scratch = Scratch::new("outbox:outbox");
    let good = scratch.contacts("config/contacts/customers.csv", 2);
    let path = scratch.path("config/contacts/customers.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("not-an-address,Bad,Row,Firma Oy,,\n");
    std::fs::write(&path, text).unwrap();
    let campaign = "config/campaigns/test.toml";
    for args in [
        vec!["send", campaign],
        vec!["check", campaign],
        vec!["preview", campaign, "--to", &good[0]],
    ] {
        let out = scratch.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("1 bad row(s)")
                && err.contains("`send --skip-invalid` or `check --skip-invalid`"),
            "{args:?}: {err}"
        );
    }
    let preview = scratch.run(&["preview", "--help"]);
    assert!(!stdout(&preview).contains("--skip-invalid"));
    for command in ["send", "check"] {
        let help = scratch.run(&[command, "--help"]);
        assert!(stdout(&help).contains("--skip-invalid"), "{command}");
    }
}

/// A reader that stops early (`fairsend status --recipients … | head -1`) ends the command
/// quietly, as it ends `cat`: no panic, no error message, success.
#[test]
fn a_reader_that_stops_early_ends_the_output_without_a_panic() {
    use std::io::Read;
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3000);
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
    for args in [
        &["status", "test-campaign", "--recipients"][..],
        &["status", "test-campaign", "--recipients", "--json"],
        &["report", "test-campaign", "--csv"],
        &[
            "preview",
            "config/campaigns/test.toml",
            "--to",
            "person0001@company01.example",
        ],
    ] {
        let mut child = scratch
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = [0u8; 16];
        child
            .stdout
            .take()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("some output");
        // The pipe's reading end is dropped here, with most of the output unread.
        let out = child.wait_with_output().expect("wait");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}
