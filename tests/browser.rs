//! A real headless browser (Debian's Chromium, driven through chromedriver by
//! tests/support/browser.py) opens the unsubscribe link of a rendered message, reads the page
//! in the contact's language, clicks confirm, and the address is suppressed.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Scratch, ServeProcess, stderr, stdout, unsubscribe_url};

#[test]
fn a_person_unsubscribes_in_a_real_browser() {
    if !common::require(&[common::Tool::Browser]) {
        return;
    }
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/contacts/customers.csv",
        "email,first_name,last_name,company,title,locale\nkarin.nyberg@nyberg.example,Karin,Nyberg,Nyberg Ab,VD,sv\n",
    );
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let serve = ServeProcess::start(&scratch);
    let url = unsubscribe_url(&std::fs::read(file).unwrap())
        .replace("http://127.0.0.1:8080", &serve.base);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let run = Command::new("python3")
        .arg(script)
        .args(["unsubscribe", &url])
        .output()
        .expect("python3");
    assert!(
        run.status.success(),
        "browser failed (are chromium, chromium-driver and selenium installed? see .ci/run): {}",
        stderr(&run)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();

    let before = &seen["before"];
    assert_eq!(before["lang"], "sv");
    assert_eq!(before["h1"], "Avsluta marknadsföringsutskick");
    assert!(
        before["text"]
            .as_str()
            .unwrap()
            .contains("inte längre ska få marknadsföring från Testi Yhtiö Oy"),
        "{before}"
    );
    assert_eq!(before["button"], "Bekräfta avregistrering");
    let after = &seen["after"];
    assert_eq!(after["h1"], "Avregistreringen är bekräftad");
    assert!(
        after["text"]
            .as_str()
            .unwrap()
            .contains("får inte längre marknadsföring"),
        "{after}"
    );
    assert_eq!(after["erase_button"], "Radera mina uppgifter");

    let list = scratch.run(&["optout", "list", "--json"]);
    let optouts: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(optouts.len(), 1);
    assert_eq!(optouts[0]["email"], "karin.nyberg@nyberg.example");
    assert_eq!(optouts[0]["source"], "page");
}

/// An operator in real headless Chromium: logs in, sees a running campaign's counts change,
/// re-classifies an ingested bounce, opts an address out from the page, approves the footers.
#[test]
fn an_operator_uses_the_admin_pages() {
    if !common::require(&[common::Tool::Aiosmtpd, common::Tool::Browser]) {
        return;
    }
    use std::io::Write;

    let scratch = Scratch::new("outbox:unused").on_one_connection();
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace("require_approval = false", "require_approval = true"),
    );
    scratch.contacts("config/contacts/customers.csv", 60);
    // Approve once through the CLI so the campaign may start; the page approves again later.
    assert!(
        scratch
            .run(&[
                "approve",
                "config/campaigns/test.toml",
                "--by",
                "First Approver"
            ])
            .status
            .success()
    );
    let dsn = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@bounces.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
        failed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; stranger@nowhere.example\r\n\
        Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--B--\r\n";
    let mut ingest = scratch
        .command(&["bounces", "ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    ingest
        .stdin
        .take()
        .unwrap()
        .write_all(dsn.as_bytes())
        .unwrap();
    assert!(ingest.wait().unwrap().success());

    let server = common::SmtpServer::start(scratch.dir.path(), &["--delay", "0.15"]);
    let mut send = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--transport",
            &server.url(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(server.wait_for_messages(2, std::time::Duration::from_secs(30)) >= 2);
    let password = "correct horse battery staple";
    // The admin pages refuse the development signing secret.
    let serve = ServeProcess::start_with_env(
        &scratch,
        &[
            ("FAIRSEND_ADMIN_PASSWORD", password),
            ("FAIRSEND_SECRET", common::TEST_SECRET),
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(["admin", &serve.base, password, "test-campaign", "test"]);
    if let Ok(dir) = std::env::var("FAIRSEND_SCREENSHOTS") {
        cmd.arg(dir);
    }
    let run = cmd.output().expect("python3");
    let _ = send.kill();
    let _ = send.wait();
    assert!(run.status.success(), "browser failed: {}", stderr(&run));
    let seen: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();

    assert!(
        seen["login_url"]
            .as_str()
            .unwrap()
            .ends_with("/admin/login")
    );
    assert_eq!(
        seen["refreshing"], true,
        "the page refreshes itself while the campaign runs"
    );
    assert!(
        seen["sent_later"].as_i64().unwrap() > seen["sent_first"].as_i64().unwrap(),
        "{seen}"
    );
    assert_eq!(seen["bounce_before"]["class"], "hard");
    assert_eq!(
        seen["bounce_before"]["recipient"],
        "stranger@nowhere.example"
    );
    assert_eq!(seen["bounce_after"]["class"], "soft");
    assert_eq!(seen["bounce_after"]["reason"], "mailbox_full");
    // The report named no message fairsend sent (no VERP token): it suppressed no one, so
    // re-classifying it lifts nothing.
    assert_eq!(seen["bounce_after"]["action"], "reclassified");
    assert_eq!(seen["optout"]["email"], "walkin@firma.example");
    assert_eq!(seen["optout"]["source"], "manual");
    assert_eq!(seen["variants"], 1);
    assert!(
        seen["approval_after"]
            .as_str()
            .unwrap()
            .starts_with("Approved by Liisa Lakimies"),
        "{seen}"
    );

    // The same records the CLI reads.
    let optouts: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&scratch.run(&["optout", "list", "--json"]))).unwrap();
    assert_eq!(optouts[0]["email"], "walkin@firma.example");
    let bounces: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&scratch.run(&["bounces", "list", "--json"]))).unwrap();
    assert_eq!(
        (bounces[0]["class"].as_str(), bounces[0]["reason"].as_str()),
        (Some("soft"), Some("mailbox_full"))
    );
}
