//! Several `send` workers on one campaign: they share the outbox through leases, keep one
//! campaign-wide rate limit, and a worker killed with SIGKILL neither loses rows nor causes a
//! duplicate. Runs against SQLite by default and PostgreSQL with FAIRSEND_TEST_POSTGRES.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, SmtpServer};

const RECIPIENTS: usize = 5000;
const RATE: f64 = 200.0;

fn spawn_worker(scratch: &Scratch) -> Child {
    scratch
        .command(&["send", "--json", "config/campaigns/test.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a send worker")
}

fn accepted(server: &SmtpServer) -> usize {
    server.messages().len()
}

#[test]
fn three_workers_one_killed_every_recipient_once_under_one_rate_limit() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let server_dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = Scratch::new(&server.url());
    scratch.write(
        "config/fairsend.toml",
        &(common::fairsend_toml(&server.url())
            .replace("rate_per_second = 0", &format!("rate_per_second = {RATE}"))
            + "\n[database]\nlease = \"3s\"\n"),
    );
    let emails = scratch.contacts("config/contacts/customers.csv", RECIPIENTS);
    // Import once, so that the workers start on the same audience at the same moment.
    scratch.import_customers();

    let mut workers: Vec<Child> = (0..3).map(|_| spawn_worker(&scratch)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted(&server) < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    for worker in &mut workers {
        if let Some(status) = worker.try_wait().expect("try_wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(worker.stderr.as_mut().expect("stderr"), &mut err).ok();
            panic!("a worker exited early ({status}): {err}");
        }
    }
    // `status` shows the three live workers with their counts.
    let status = scratch.run(&["status", "test-campaign", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let live: Vec<&serde_json::Value> = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["live"] == true)
        .collect();
    assert_eq!(live.len(), 3, "{status:#}");
    assert!(
        live.iter()
            .all(|w| w["pid"].as_i64().unwrap_or(0) > 0 && w["host"].is_string())
    );

    // SIGKILL one worker mid-run: no handler, no lease release, rows left as they are.
    let mut killed = workers.remove(1);
    killed.kill().expect("kill -9");
    killed.wait().expect("reap");
    let killed_at = accepted(&server);

    let mut sent_by_survivors = 0;
    for worker in workers {
        let out = worker.wait_with_output().expect("worker exit");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        sent_by_survivors += report["sent"].as_u64().unwrap_or(0);
    }
    assert!(sent_by_survivors > 0);

    let messages = server.messages();
    let mut per_rcpt: BTreeMap<String, usize> = BTreeMap::new();
    let mut times: Vec<f64> = Vec::new();
    for m in &messages {
        for rcpt in m["rcpt_tos"].as_array().expect("rcpt_tos") {
            *per_rcpt
                .entry(rcpt.as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        times.push(m["at"].as_f64().expect("at"));
    }
    let duplicates: Vec<_> = per_rcpt.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");

    // Every row is final: sent, or failed as `interrupted` (the killed worker's transactions in
    // flight, which are never resent blindly). Every sent row was received exactly once.
    let states = common::states(&scratch, "test-campaign");
    let (sent, failed) = (
        states["sent"].as_u64().unwrap_or(0) as usize,
        states["failed"].as_u64().unwrap_or(0) as usize,
    );
    assert_eq!(sent + failed, RECIPIENTS, "{states}");
    assert!(
        failed <= 3 * 4,
        "at most three times the killed worker's concurrency (per lane its transaction on the \
         wire, the next row, and the last delivered row until its record is committed) is \
         interrupted: {states}"
    );
    assert!(per_rcpt.len() >= sent && per_rcpt.len() <= RECIPIENTS);
    assert!(per_rcpt.keys().all(|r| emails.contains(r)));

    // The limit held for the three workers together: overall, and in every one-second window
    // of the server's own timestamps. Slots are kept at the source; what arrives at the server
    // also carries each transaction's own latency, so a window may see up to a tenth more
    // (100 ms of jitter), never a burst.
    times.sort_by(f64::total_cmp);
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1.0 {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    let overall = (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
    eprintln!(
        "workers: {} messages, {sent} sent, {failed} interrupted, killed after {killed_at}; \
         overall {overall:.1}/s, busiest second {busiest} (limit {RATE}/s)",
        messages.len()
    );
    assert!(
        busiest as f64 <= RATE * 1.1,
        "busiest second held {busiest} messages"
    );
    assert!(overall <= RATE * 1.01, "overall {overall:.1} messages/s");
}

/// One worker's preparation of the campaign's outbox over `registers`, as `send` makes it; with
/// `grouped`, as an A/B campaign's, each row it is handed to group going to the test phase and
/// counted there.
async fn prepare(
    store: &fairsend::store::Store,
    campaign: i64,
    registers: &[String],
    started: i64,
    grouped: Option<&std::cell::Cell<usize>>,
) -> fairsend::store::Preparation {
    use fairsend::model::Phase;
    use fairsend::store::{AudienceScope, Grouping, UngroupedRow};
    let assign = grouped.map(|count| {
        move |rows: &[UngroupedRow]| {
            count.set(count.get() + rows.len());
            Grouping {
                excluded: Vec::new(),
                assigned: rows
                    .iter()
                    .map(|r| (r.outbox_id, Phase::Test, Some(0)))
                    .collect(),
            }
        }
    });
    store
        .prepare_outbox(
            campaign,
            &AudienceScope::everyone(registers),
            assign,
            Some(started),
        )
        .await
        .expect("prepare the outbox")
}

/// Workers starting together evaluate the audience once: a worker whose start (its clock read
/// once its own writes were committed) precedes another's preparation of the same audience
/// joins it (and still groups rows that preparation left without an A/B group, as a preview's
/// does); one that started after contacts changed, or that selects another audience, prepares
/// again and adds what the first could not have seen.
#[test]
fn a_worker_joins_a_preparation_begun_after_its_start_and_only_that() {
    let scratch = Scratch::new("outbox:outbox");
    let import = |n: usize| {
        scratch.contacts("config/contacts/customers.csv", n);
        scratch.import_customers();
    };
    import(50);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = fairsend::store::Store::open(&scratch.db_url())
            .await
            .expect("open the store");
        let campaign = store.campaign_id("test").await.expect("campaign");
        let customers = ["customers".to_string()];
        let clock = || async { store.database_clock().await.expect("clock") };
        let pause = || tokio::time::sleep(Duration::from_millis(5));

        // B starts; then A (a preview, forming no groups) starts and prepares; then B reaches
        // its preparation: it joins A's, and groups the rows A left ungrouped.
        let b_started = clock().await;
        pause().await;
        let a_started = clock().await;
        pause().await;
        let a = prepare(&store, campaign, &customers, a_started, None).await;
        assert_eq!((a.added, a.joined_at), (50, None));
        let grouped = std::cell::Cell::new(0);
        let b = prepare(&store, campaign, &customers, b_started, Some(&grouped)).await;
        assert_eq!(b.added, 0);
        assert!(b.joined_at.is_some(), "B started before A prepared: {b:?}");
        assert_eq!(
            grouped.get(),
            50,
            "B groups the rows A's preparation left ungrouped"
        );

        // Five contacts arrive after A's preparation began: C, starting after them, adds them.
        pause().await;
        import(55);
        let c = prepare(&store, campaign, &customers, clock().await, None).await;
        assert_eq!((c.added, c.joined_at), (5, None));

        // D started before C prepared, but selects by another definition: it prepares its own.
        let other = ["customers".to_string(), "partners".to_string()];
        let d = prepare(&store, campaign, &other, b_started, None).await;
        assert_eq!((d.added, d.joined_at), (0, None));
    });
}
