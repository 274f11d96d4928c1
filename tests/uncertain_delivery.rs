//! Faults on the wire, injected by a real SMTP server process on loopback (aiosmtpd): a
//! connection that drops or goes silent after the end-of-data dot leaves the outcome unknown
//! (RFC 5321 §6.1), so the row becomes `uncertain` and is resent only on request; a drop before
//! the data was sent is retried; a pooled connection the server closed while idle is replaced
//! at once; a campaign resumed with another kind of transport is refused unless forced.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Scratch, SmtpServer, states, stderr, stdout};

/// Messages the server accepted, per recipient.
fn received(server: &SmtpServer) -> BTreeMap<String, usize> {
    let mut per_rcpt = BTreeMap::new();
    for m in server.messages() {
        let rcpts = m["rcpt_tos"].as_array().expect("rcpt_tos");
        assert_eq!(rcpts.len(), 1, "one RCPT TO per transaction");
        *per_rcpt
            .entry(rcpts[0].as_str().expect("rcpt").to_string())
            .or_default() += 1;
    }
    per_rcpt
}

fn alternation(addresses: &[&String]) -> String {
    let escaped: Vec<String> = addresses
        .iter()
        .map(|a| a.replace('.', "\\.").replace('+', "\\+"))
        .collect();
    format!("^({})$", escaped.join("|"))
}

fn send(scratch: &Scratch, server: &SmtpServer, extra: &[&str]) -> std::process::Output {
    let url = server.url();
    let mut args = vec![
        "send",
        "config/campaigns/test.toml",
        "--transport",
        url.as_str(),
    ];
    args.extend_from_slice(extra);
    scratch.run(&args)
}

fn status_json(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["status", "test-campaign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn a_drop_after_the_data_is_uncertain_and_resent_only_on_request() {
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 12);
    let dropped = [&emails[2], &emails[9]];
    let server = SmtpServer::start(
        scratch.dir.path(),
        &["--drop-after-data", &alternation(&dropped)],
    );
    let first = send(&scratch, &server, &["--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).expect("report");
    assert_eq!(report["uncertain"], 2, "{report}");
    assert_eq!(report["deferred"], 0, "{report}");

    // The server has every message once: the two whose reply was lost too.
    let got = received(&server);
    assert_eq!(got.len(), emails.len());
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["sent"], 10, "{s}");
    assert_eq!(s["uncertain"], 2, "{s}");
    assert_eq!(s["deferred"], 0, "{s}");

    // `status` lists them, per recipient, with the way to resend them.
    let listed: BTreeSet<String> = status_json(&scratch)["uncertain"]
        .as_array()
        .expect("uncertain list")
        .iter()
        .map(|r| r["email"].as_str().expect("email").to_string())
        .collect();
    let want: BTreeSet<String> = dropped.iter().map(|e| e.to_string()).collect();
    assert_eq!(listed, want);
    let human = stdout(&scratch.run(&["status", "test-campaign"]));
    assert!(
        human.contains("uncertain 2") && human.contains("--resend-uncertain"),
        "{human}"
    );
    for email in &dropped {
        assert!(human.contains(email.as_str()), "{human}");
    }

    // A later run, after every retry delay has passed, does not resend them.
    std::thread::sleep(Duration::from_millis(2100));
    let again = send(&scratch, &server, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.messages().len(), emails.len(), "nothing was resent");
    assert_eq!(states(&scratch, "test-campaign")["uncertain"], 2);

    // --resend-uncertain resends exactly them.
    let resend = send(&scratch, &server, &["--resend-uncertain", "--json"]);
    assert!(resend.status.success(), "{}", stderr(&resend));
    let report: serde_json::Value = serde_json::from_slice(&resend.stdout).expect("report");
    assert_eq!(report["uncertain_requeued"], 2, "{report}");
    assert_eq!(report["sent"], 2, "{report}");
    let got = received(&server);
    for email in &emails {
        let want = if dropped.contains(&email) { 2 } else { 1 };
        assert_eq!(got[email], want, "{email}");
    }
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_i64(), s["uncertain"].as_i64()),
        (Some(12), Some(0)),
        "{s}"
    );
}

#[test]
fn no_reply_to_the_end_of_data_within_the_timeout_is_uncertain() {
    let scratch = Scratch::new("outbox:unused");
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:unused").replace(
            "timeout = \"10s\"",
            "timeout = \"10s\"\ndata_timeout = \"1s\"",
        ),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 6);
    let server = SmtpServer::start(
        scratch.dir.path(),
        &["--hang-after-data", &alternation(&[&emails[4]])],
    );
    let out = send(&scratch, &server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 message(s) uncertain"),
        "{}",
        stdout(&out)
    );
    let got = received(&server);
    assert_eq!(got.len(), emails.len());
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_i64(), s["uncertain"].as_i64()),
        (Some(5), Some(1)),
        "{s}"
    );
    let rows = status_json(&scratch)["uncertain"].clone();
    assert_eq!(rows[0]["email"], emails[4].as_str(), "{rows}");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no reply within"),
        "{rows}"
    );
}

#[test]
fn a_drop_before_the_data_is_retried_and_delivered_once() {
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 5);
    let server = SmtpServer::start(
        scratch.dir.path(),
        &["--drop-at-rcpt", &alternation(&[&emails[1]])],
    );
    let out = send(&scratch, &server, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        server
            .events()
            .iter()
            .any(|e| e["event"] == "dropped_at_rcpt" && e["rcpt"] == emails[1].as_str()),
        "the fault was injected"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["uncertain"], 0, "{report}");
    let got = received(&server);
    assert_eq!(got.len(), emails.len());
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_i64(), s["uncertain"].as_i64()),
        (Some(5), Some(0)),
        "{s}"
    );
}

#[test]
fn a_pooled_connection_closed_while_idle_is_replaced_at_once() {
    let scratch = Scratch::new("outbox:unused");
    // One connection, two messages a second: the connection idles 500 ms between messages,
    // and the server closes connections idle for 200 ms.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:unused")
            .replace("concurrency = 4", "concurrency = 1")
            .replace("rate_per_second = 0", "rate_per_second = 2"),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 4);
    let server = SmtpServer::start(scratch.dir.path(), &["--idle-timeout", "0.2"]);
    let out = send(&scratch, &server, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(
        report["deferred"], 0,
        "no message waited for a retry: {report}"
    );
    assert_eq!(report["sent"], 4, "{report}");
    let got = received(&server);
    assert_eq!(got.len(), emails.len());
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    assert!(
        stderr(&out).contains("trying once more on a fresh connection"),
        "the stale connection was met: {}",
        stderr(&out)
    );
}

#[test]
fn a_campaign_resumed_with_another_transport_kind_is_refused_unless_forced() {
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 60);
    // A slow server: each DATA takes 200 ms, so transactions are in flight when the run dies.
    let server = SmtpServer::start(scratch.dir.path(), &["--delay", "0.2"]);
    let mut child = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--transport",
            &server.url(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn send");
    server.wait_for_messages(8, Duration::from_secs(60));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let at_kill = states(&scratch, "test-campaign");
    let in_flight = at_kill["sending"].as_i64().unwrap_or(0);
    assert!(in_flight > 0, "rows were in flight: {at_kill}");

    let refused = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        "outbox:outbox",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--force-transport"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        states(&scratch, "test-campaign"),
        at_kill,
        "nothing changed"
    );
    assert!(
        !scratch.path("outbox").exists()
            || std::fs::read_dir(scratch.path("outbox")).unwrap().count() == 0
    );

    let forced = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        "outbox:outbox",
        "--force-transport",
        "--json",
    ]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let report: serde_json::Value = serde_json::from_slice(&forced.stdout).expect("report");
    assert_eq!(report["interrupted_uncertain"], in_flight, "{report}");

    // No recipient has the campaign both from the SMTP server and in the outbox.
    let by_smtp: BTreeSet<String> = received(&server).into_keys().collect();
    let mut by_outbox = BTreeSet::new();
    for entry in std::fs::read_dir(scratch.path("outbox")).expect("outbox") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("read");
        let to = common::parse_message(&raw)
            .one("x-fairsend-envelope-to")
            .to_string();
        assert!(by_outbox.insert(to.clone()), "{to} twice in the outbox");
    }
    let twice: Vec<&String> = by_smtp.intersection(&by_outbox).collect();
    assert!(twice.is_empty(), "received twice: {twice:?}");
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["uncertain"], in_flight, "{s}");
    assert_eq!(s["sending"], 0, "{s}");
    assert_eq!(
        s["sent"].as_i64().unwrap() + in_flight,
        emails.len() as i64,
        "{s}"
    );
}
