//! A send killed with SIGKILL in the middle of a campaign, then resumed: the campaign
//! completes and no recipient receives it twice.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Scratch, SmtpServer, states, stderr, stdout};

fn kill_9(child: &mut std::process::Child) {
    // SIGKILL: no destructor, no signal handler, no lock release runs.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

#[test]
fn killed_smtp_send_resumes_without_duplicates() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 60);
    // A slow server: each DATA takes 50 ms, so the kill lands mid-transaction.
    let server = SmtpServer::start(scratch.dir.path(), &["--delay", "0.05"]);
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
    let before_kill = server.wait_for_messages(15, Duration::from_secs(60));
    kill_9(&mut child);
    assert!(
        before_kill >= 15 && before_kill < emails.len(),
        "killed mid-run after {before_kill}"
    );
    let at_kill = states(&scratch, "test-campaign");
    assert!(
        at_kill["queued"].as_i64().unwrap() > 0,
        "work was left: {at_kill}"
    );

    let resumed = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        stderr(&resumed)
    );

    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for m in server.messages() {
        *received
            .entry(m["rcpt_tos"][0].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for (rcpt, n) in &received {
        assert_eq!(*n, 1, "{rcpt} received the campaign {n} times");
    }
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["queued"], 0, "{s}");
    assert_eq!(s["sending"], 0, "{s}");
    assert_eq!(s["deferred"], 0, "{s}");
    let sent = s["sent"].as_u64().unwrap() as usize;
    let failed = s["failed"].as_u64().unwrap() as usize;
    assert_eq!(sent + failed, emails.len(), "every row ended: {s}");
    // Rows caught in `sending` are failed as interrupted, never resent: at most three times
    // the concurrency (4) — per lane the transaction on the wire, the next row, committed to
    // `sending` while it was on the wire, and the last delivered row until its record is
    // committed (a row keeps its place in the pipeline until then).
    assert!(failed <= 3 * 4, "{s}");
    assert!(received.len() >= sent, "every row marked sent was received");
    if failed > 0 {
        assert!(
            stdout(&resumed).contains("interrupted"),
            "{}",
            stdout(&resumed)
        );
    }
}

#[test]
fn killed_outbox_send_resumes_exactly_once_per_recipient() {
    let scratch = Scratch::new("outbox:outbox");
    // 40 messages per second: the run lasts long enough to be killed in the middle.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:outbox")
            .replace("rate_per_second = 0", "rate_per_second = 40"),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 80);
    let outbox = scratch.path("outbox");
    let mut child = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn send");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0) < 20
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_9(&mut child);
    let at_kill = std::fs::read_dir(&outbox).unwrap().count();
    assert!(
        at_kill < emails.len(),
        "killed mid-run after {at_kill} files"
    );

    let resumed = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // The outbox transport can tell whether a message was written: every recipient ends with
    // exactly one file, and every row is sent.
    let mut per_rcpt: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            path.extension().unwrap(),
            "eml",
            "no temporary file left: {}",
            path.display()
        );
        let raw = std::fs::read(&path).unwrap();
        let to = common::parse_message(&raw)
            .one("x-fairsend-envelope-to")
            .to_string();
        *per_rcpt.entry(to).or_default() += 1;
    }
    assert_eq!(per_rcpt.len(), emails.len());
    assert!(per_rcpt.values().all(|n| *n == 1));
    let s = states(&scratch, "test-campaign");
    assert_eq!(s["sent"], emails.len(), "{s}");
}

#[test]
fn a_second_send_of_the_same_campaign_joins_the_first_under_one_rate_limit() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:outbox")
            .replace("rate_per_second = 0", "rate_per_second = 20"),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", 60);
    let first = scratch
        .command(&["send", "--json", "config/campaigns/test.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let outbox = scratch.path("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0) < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = scratch.run(&["send", "--json", "config/campaigns/test.toml"]);
    let first = first.wait_with_output().expect("first worker");
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(first.status.success());
    let sent = |out: &std::process::Output| -> u64 {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        report["sent"].as_u64().expect("sent")
    };
    let (a, b) = (sent(&first), sent(&second));
    assert!(b > 0, "the second worker sent nothing");
    assert_eq!(a + b, emails.len() as u64, "first {a}, second {b}");
    // Every recipient exactly once, and the two workers together kept to 20 messages/s.
    let mut per_rcpt: BTreeMap<String, usize> = BTreeMap::new();
    let mut times = Vec::new();
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let to = common::parse_message(&raw)
            .one("x-fairsend-envelope-to")
            .to_string();
        *per_rcpt.entry(to).or_default() += 1;
        times.push(std::fs::metadata(&path).unwrap().modified().unwrap());
    }
    assert_eq!(per_rcpt.len(), emails.len());
    assert!(per_rcpt.values().all(|n| *n == 1), "{per_rcpt:?}");
    times.sort();
    let span = times[times.len() - 1]
        .duration_since(times[0])
        .unwrap()
        .as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    assert!(
        rate <= 20.0 * 1.1,
        "{rate:.1} messages/s across both workers"
    );
}
