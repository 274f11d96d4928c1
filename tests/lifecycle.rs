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
    scratch.import_customers();
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

/// A run of `fairsend ARGS` whose clock for send windows reads `now` (FAIRSEND_TEST_NOW, which
/// only debug builds honour): the schedule is tested at a chosen moment, without sleeping.
fn at_moment(scratch: &Scratch, now: &str, args: &[&str]) -> std::process::Output {
    let out = scratch
        .command(args)
        .env("FAIRSEND_TEST_NOW", now)
        .output()
        .expect("run fairsend");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

fn status_json(scratch: &Scratch, now: &str) -> serde_json::Value {
    let out = at_moment(scratch, now, &["status", "test-campaign", "--json"]);
    serde_json::from_str(&stdout(&out)).expect("status JSON")
}

/// Saturday 10:00 in Helsinki (winter time, +02:00), and the Monday after it.
const SATURDAY: &str = "2026-12-05T10:00:00+02:00";
const MONDAY_0830: &str = "2026-12-07T08:30:00+02:00";

#[test]
fn outside_its_window_a_campaign_sends_nothing_and_status_says_when_it_opens() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = rate_limited(&server, 5);
    let campaign = format!(
        "{}\n[schedule]\ntimezone = \"Europe/Helsinki\"\nwindow = \"Mon-Fri 08:00-17:00\"\n",
        common::CAMPAIGN
    );
    scratch.write("config/campaigns/test.toml", &campaign);

    // Saturday morning: nothing goes out; the run says when the window opens, in the
    // campaign's zone, named.
    let send = ["send", "--no-wait", "config/campaigns/test.toml"];
    let out = at_moment(&scratch, SATURDAY, &send);
    let text = stdout(&out);
    assert!(
        text.contains("outside the campaign's send window")
            && text.contains("until Mon 2026-12-07 08:00 EET (Europe/Helsinki)")
            && !text.contains("retry"),
        "{text}"
    );
    assert_eq!(server.messages().len(), 0);
    assert_eq!(common::states(&scratch, "test-campaign")["queued"], 5);

    // `status` at the same moment: the run state and the next opening.
    let human = stdout(&at_moment(&scratch, SATURDAY, &["status", "test-campaign"]));
    assert!(
        human.contains(
            "sending: active; window Mon-Fri 08:00-17:00: closed now, next opens Mon 2026-12-07 08:00 EET (Europe/Helsinki)"
        ),
        "{human}"
    );
    let json = status_json(&scratch, SATURDAY);
    assert_eq!(json["run_state"], "active", "{json:#}");
    let schedule = &json["schedule"];
    assert_eq!(schedule["timezone"], "Europe/Helsinki");
    assert_eq!(schedule["window"], "Mon-Fri 08:00-17:00");
    assert_eq!(schedule["open_now"], false);
    assert_eq!(schedule["next_open"], "2026-12-07T08:00:00+02:00");
    assert!(schedule["open_until"].is_null(), "{schedule:#}");

    // Paused, status says so (and still when the window opens); resumed, active again.
    assert!(scratch.run(&["pause", "test-campaign"]).status.success());
    let human = stdout(&at_moment(&scratch, SATURDAY, &["status", "test-campaign"]));
    assert!(
        human.contains("sending: paused (`fairsend resume test-campaign` lets it go on); window"),
        "{human}"
    );
    assert_eq!(status_json(&scratch, SATURDAY)["run_state"], "paused");
    assert!(scratch.run(&["resume", "test-campaign"]).status.success());

    // Monday 08:30 with --at 09:00: still nothing, until 09:00.
    let at = [
        "send",
        "--no-wait",
        "--at",
        "2026-12-07T09:00",
        "config/campaigns/test.toml",
    ];
    let text = stdout(&at_moment(&scratch, MONDAY_0830, &at));
    assert!(
        text.contains("until Mon 2026-12-07 09:00 EET (Europe/Helsinki)"),
        "{text}"
    );
    assert_eq!(server.messages().len(), 0);

    // Monday 08:30: the window is open; everything goes, and status says until when.
    at_moment(&scratch, MONDAY_0830, &send);
    assert_eq!(server.messages().len(), 5);
    assert_eq!(common::states(&scratch, "test-campaign")["sent"], 5);
    let human = stdout(&at_moment(
        &scratch,
        MONDAY_0830,
        &["status", "test-campaign"],
    ));
    assert!(
        human.contains("sending: active; window Mon-Fri 08:00-17:00: now, window open until 17:00 EET (Europe/Helsinki)"),
        "{human}"
    );
    let json = status_json(&scratch, MONDAY_0830);
    assert_eq!(json["schedule"]["open_now"], true);
    assert_eq!(json["schedule"]["open_until"], "2026-12-07T17:00:00+02:00");

    let bad = scratch.run(&["send", "--at", "tomorrow 9", "config/campaigns/test.toml"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--at"), "{}", stderr(&bad));
}

/// A campaign without a [schedule]: status shows the run state only, and a cancel.
#[test]
fn status_shows_a_cancelled_campaign() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3);
    let out = scratch.run(&["send", "--dry-run", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let human = stdout(&scratch.run(&["status", "test-campaign"]));
    assert!(human.contains("\n  sending: active\n"), "{human}");
    let json = status_json(&scratch, SATURDAY);
    assert_eq!(json["run_state"], "active");
    assert!(json["schedule"].is_null(), "{json:#}");
    assert!(scratch.run(&["cancel", "test-campaign"]).status.success());
    let human = stdout(&scratch.run(&["status", "test-campaign"]));
    assert!(
        human.contains("sending: cancelled (the messages not yet sent will never be sent)"),
        "{human}"
    );
    let json = status_json(&scratch, SATURDAY);
    assert_eq!(json["run_state"], "cancelled");
    assert_eq!(json["states"]["cancelled"], 3, "{json:#}");
}

/// Ctrl-C ends a run that waits for its window even when nothing reads its stderr any more
/// (a closed pipe): the stop is not lost to a failed write.
#[test]
fn ctrl_c_ends_a_run_waiting_for_its_window_with_stderr_closed() {
    use std::io::BufRead;
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 2);
    let campaign = format!(
        "{}\n[schedule]\ntimezone = \"Europe/Helsinki\"\nwindow = \"Mon-Fri 08:00-17:00\"\n",
        common::CAMPAIGN
    );
    scratch.write("config/campaigns/test.toml", &campaign);
    let mut send = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .env("FAIRSEND_TEST_NOW", SATURDAY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    let mut stderr = std::io::BufReader::new(send.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("waiting for it to open") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "send ended early"
        );
    }
    drop(stderr);
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &send.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while send.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = send.kill();
            panic!("Ctrl-C did not end the waiting run");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(common::states(&scratch, "test-campaign")["queued"], 2);
}
