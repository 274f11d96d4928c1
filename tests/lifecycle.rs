//! Pause, resume, cancel and send windows, against a real SMTP server with several `send`
//! processes: a pause stops new transactions within a second in every worker, a resume lets
//! the waiting workers go on without a duplicate, a cancel leaves no row sendable, and a run
//! outside its window sends nothing. SQLite by default, PostgreSQL with FAIRSEND_TEST_POSTGRES.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Scratch, SmtpServer, stderr, stdout};

const RATE: f64 = 40.0;

fn rate_limited(server: &SmtpServer, recipients: usize) -> Scratch {
    let scratch = Scratch::new(&server.url());
    scratch.write(
        "config/fairsend.toml",
        &(common::fairsend_toml(&server.url())
            .replace("rate_per_second = 0", &format!("rate_per_second = {RATE}"))
            + "\n[database]\nlease = \"3s\"\n"),
    );
    scratch.contacts("config/contacts/customers.csv", recipients);
    let import = scratch.run(&[
        "import",
        "config/contacts/customers.csv",
        "--register",
        "customers",
    ]);
    assert!(import.status.success(), "{}", stderr(&import));
    scratch
}

fn spawn_worker(scratch: &Scratch) -> Child {
    scratch
        .command(&["send", "--json", "config/campaigns/test.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a send worker")
}

fn wait_for(server: &SmtpServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.messages().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.messages().len() >= n, "the workers sent too little");
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn received_per_recipient(server: &SmtpServer) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for m in server.messages() {
        let rcpt = m["rcpt_tos"][0].as_str().unwrap_or_default().to_string();
        *seen.entry(rcpt).or_insert(0) += 1;
    }
    seen
}

fn finish(workers: Vec<Child>) -> Vec<std::process::Output> {
    workers
        .into_iter()
        .map(|w| w.wait_with_output().expect("worker output"))
        .collect()
}

#[test]
fn a_pause_stops_every_worker_within_a_second_and_a_resume_goes_on_without_duplicates() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    const RECIPIENTS: usize = 300;
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = rate_limited(&server, RECIPIENTS);
    let workers: Vec<Child> = (0..2).map(|_| spawn_worker(&scratch)).collect();
    wait_for(&server, 40);

    let paused = scratch.run(&["pause", "test-campaign", "--by", "Maija"]);
    let paused_at = unix_now();
    assert!(paused.status.success(), "{}", stderr(&paused));
    assert!(stdout(&paused).contains("paused"), "{}", stdout(&paused));
    std::thread::sleep(Duration::from_secs(3));
    let during_pause = server.messages();
    let late: Vec<f64> = during_pause
        .iter()
        .filter_map(|m| m["at"].as_f64())
        .filter(|at| *at > paused_at + 1.0)
        .collect();
    assert!(
        late.is_empty(),
        "{} message(s) arrived more than a second after the pause",
        late.len()
    );
    assert!(
        during_pause.len() < RECIPIENTS,
        "the pause came too late to show anything"
    );
    // The workers wait (they do not exit) while the campaign is paused.
    let again = scratch.run(&["pause", "test-campaign"]);
    assert!(
        stdout(&again).contains("already paused"),
        "{}",
        stdout(&again)
    );

    let resumed = scratch.run(&["resume", "test-campaign"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    for out in finish(workers) {
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let per_recipient = received_per_recipient(&server);
    assert_eq!(
        per_recipient.len(),
        RECIPIENTS,
        "every recipient got the campaign"
    );
    assert!(
        per_recipient.values().all(|n| *n == 1),
        "a recipient got a duplicate"
    );
    let states = common::states(&scratch, "test-campaign");
    assert_eq!(states["sent"], RECIPIENTS as u64, "{states:#}");
}

#[test]
fn a_cancel_leaves_no_row_sendable_and_cannot_be_undone() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    const RECIPIENTS: usize = 300;
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = rate_limited(&server, RECIPIENTS);
    let workers: Vec<Child> = (0..2).map(|_| spawn_worker(&scratch)).collect();
    wait_for(&server, 30);

    let cancelled = scratch.run(&["cancel", "test-campaign", "--by", "Maija"]);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    for out in finish(workers) {
        assert!(out.status.success(), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        assert_eq!(report["cancelled"], true, "{report:#}");
    }
    let states = common::states(&scratch, "test-campaign");
    let received = server.messages().len() as u64;
    assert_eq!(states["sent"], received, "{states:#}");
    assert_eq!(
        states["sent"].as_u64().unwrap_or(0) + states["cancelled"].as_u64().unwrap_or(0),
        RECIPIENTS as u64,
        "{states:#}"
    );
    assert_eq!(states["queued"], 0, "{states:#}");
    assert_eq!(states["deferred"], 0, "{states:#}");
    assert!(received < RECIPIENTS as u64);

    // Nothing resumes it: neither `resume` nor a new `send`.
    let resume = scratch.run(&["resume", "test-campaign"]);
    assert_eq!(resume.status.code(), Some(1), "{}", stderr(&resume));
    assert!(stderr(&resume).contains("cancelled"), "{}", stderr(&resume));
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    assert!(stderr(&send).contains("was cancelled"), "{}", stderr(&send));
    assert_eq!(server.messages().len() as u64, received);
}

/// Today's weekday in Helsinki and another one, as the window language writes them.
fn helsinki_weekdays() -> (String, String) {
    use chrono::Datelike;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .weekday();
    let name = |d: chrono::Weekday| format!("{d}");
    (name(today), name(today.succ().succ()))
}

#[test]
fn outside_its_window_a_campaign_sends_nothing_and_says_when_it_opens() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = rate_limited(&server, 5);
    let (_, other_day) = helsinki_weekdays();
    let campaign = format!(
        "{}\n[schedule]\ntimezone = \"Europe/Helsinki\"\nwindow = \"{other_day} 08:00-17:00\"\n",
        common::CAMPAIGN
    );
    scratch.write("config/campaigns/test.toml", &campaign);
    let out = scratch.run(&["send", "--no-wait", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("outside the campaign's send window"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.messages().len(), 0);
    let states = common::states(&scratch, "test-campaign");
    assert_eq!(states["queued"], 5, "{states:#}");

    // Around the clock but not before --at: the run waits for it, then sends.
    scratch.write("config/campaigns/test.toml", common::CAMPAIGN);
    let start = chrono::Utc::now() + chrono::Duration::seconds(3);
    let at = start
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let out = scratch.run(&["send", "--at", &at, "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = server
        .messages()
        .iter()
        .filter_map(|m| m["at"].as_f64())
        .fold(f64::MAX, f64::min);
    assert!(first >= start.timestamp() as f64, "sent before --at");
    assert_eq!(server.messages().len(), 5);
    let bad = scratch.run(&["send", "--at", "tomorrow 9", "config/campaigns/test.toml"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--at"), "{}", stderr(&bad));
}
