//! The results report against an independent count. A campaign with an A/B subject split over
//! two registers goes to a real SMTP server; then real traffic comes back: verified DSNs (hard
//! and soft), a forged bounce (which must not count), an ARF complaint, opt-outs from the page
//! and by mailto, clicks through `serve`'s tracked links, replies. `fairsend report --json`
//! (and `--csv`) must give, per variant and per register, exactly the counts this test
//! computes itself from the SMTP server's log and what it sent back. In real Chromium, the
//! admin campaign page draws its charts as SVG with one bar per figure, carries the same
//! numbers in tables, and passes axe-core without serious or critical violations; and, while a
//! `send` runs, its Pause, Resume and Cancel buttons stop, restart and end the run, the
//! database agreeing after each click.
//! On PostgreSQL too when FAIRSEND_TEST_POSTGRES is set.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Scratch, ServeProcess, SmtpServer, dsn, http, ingest_stdin, parse_message, stderr};
use common::{json_list, stdout};

const CAMPAIGN: &str = r#"name = "report-campaign"
registers = ["customers", "partners"]
from = "Sales <sales@example.com>"
reply_to = "sales@example.com"
body = "content/body.md"
require_approval = false

[ab]
subjects = ["A: an offer for {{ company }}", "B: {{ first_name }}, your offer"]
test_fraction = 1.0
metric = "clicks"
wait = "1h"
confidence = 0.95
fallback = "first"

[[import]]
file = "contacts/customers.csv"
register = "customers"

[[import]]
file = "contacts/partners.csv"
register = "partners"
"#;

const PARTNERS: &str = r#"
[registers.partners]
title = "Testi Yhtiö Oy:n kumppanirekisteri"
kind = "marketing"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "job_role"
default_locale = "en"
"#;

const OFFER: &str = "https://www.example.com/offer";
const AGENDA: &str = "https://www.example.com/agenda";
const ADMIN_PASSWORD: &str = "report-admin-password-1";

/// What the test knows about each message the server accepted.
struct Received {
    rcpt: String,
    variant: String,
    register: String,
    verp: String,
    message_id: String,
    subject: String,
    /// Tracked link URL by target ("offer", "agenda").
    links: BTreeMap<&'static str, String>,
    unsubscribe: String,
    mailto: String,
}

fn write_contacts(scratch: &Scratch, rel: &str, local: &str, domain: &str, n: usize) {
    let mut csv = String::from("email,first_name,last_name,company,title\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{local}{i:02}@{domain},First{i},Last{i},{domain} Oy,Manager\n"
        ));
    }
    scratch.write(rel, &csv);
}

fn setup() -> Scratch {
    let scratch = Scratch::new("outbox:unused");
    let toml = common::fairsend_toml("outbox:unused")
        .replace(
            "retention_months = 24",
            "retention_months = 24\ndeclares_tracking = true",
        )
        // Delivered = no verified bounce so far: the test cannot wait three days.
        + "\n[report]\ndelivered_after = \"0s\"\n";
    scratch.write("config/fairsend.toml", &toml);
    scratch.write(
        "config/registers.toml",
        &format!("{}{PARTNERS}", common::REGISTERS),
    );
    scratch.write("config/campaigns/report.toml", CAMPAIGN);
    scratch.write(
        "config/content/body.md",
        &format!(
            "Hello {{{{ first_name }}}},\n\nsee [our offer]({OFFER}) and [the agenda]({AGENDA}).\n"
        ),
    );
    write_contacts(
        &scratch,
        "config/contacts/customers.csv",
        "buyer",
        "alpha.example",
        12,
    );
    write_contacts(
        &scratch,
        "config/contacts/partners.csv",
        "partner",
        "beta.example",
        8,
    );
    scratch
}

fn received(server: &SmtpServer) -> Vec<Received> {
    server
        .messages()
        .iter()
        .map(|m| {
            let parsed = parse_message(m["data"].as_str().unwrap().as_bytes());
            let rcpt = m["rcpt_tos"][0].as_str().unwrap().to_string();
            let subject = parsed.one("subject").to_string();
            let mut links = BTreeMap::new();
            for (i, url) in parsed
                .html
                .split("href=\"")
                .skip(1)
                .filter_map(|s| s.split('"').next())
                .filter(|u| u.contains("/c/"))
                .enumerate()
            {
                // The body's links in order: the offer, then the agenda.
                links.insert(if i == 0 { "offer" } else { "agenda" }, url.to_string());
            }
            let list_unsubscribe = parsed.one("list-unsubscribe").to_string();
            let mailto = list_unsubscribe
                .split("mailto:")
                .nth(1)
                .and_then(|s| s.split(['?', '>']).next())
                .unwrap()
                .to_string();
            Received {
                variant: subject[..1].to_string(),
                register: if rcpt.ends_with("@alpha.example") {
                    "customers".into()
                } else {
                    "partners".into()
                },
                verp: m["mail_from"].as_str().unwrap().to_string(),
                message_id: parsed.one("message-id").to_string(),
                unsubscribe: common::unsubscribe_url(m["data"].as_str().unwrap().as_bytes()),
                subject,
                links,
                mailto,
                rcpt,
            }
        })
        .collect()
}

/// Counts of messages by the group `key` gives them.
fn tally<'a>(
    messages: impl IntoIterator<Item = &'a Received>,
    key: impl Fn(&Received) -> &str,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for m in messages {
        *out.entry(key(m).to_string()).or_insert(0) += 1;
    }
    out
}

fn arf(verp: &str, rcpt: &str, mid: &str) -> String {
    format!(
        "From: staff@hotmail.example\r\nTo: {verp}\r\nSubject: complaint about message\r\nMessage-ID: <arf-1@hotmail.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: {rcpt}\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {mid}\r\nTo: {rcpt}\r\n\r\n--B--\r\n"
    )
}

/// What came back, by recipient, as the test sent it.
#[derive(Default)]
struct Traffic {
    hard: Vec<usize>,
    soft: Vec<usize>,
    complaint: Vec<usize>,
    page: Vec<usize>,
    mailto: Vec<usize>,
    offer_clicks: Vec<usize>,
    agenda_clicks: Vec<usize>,
    replies: Vec<usize>,
}

/// Sends the campaign and plays the traffic back; returns the server (kept alive), what it
/// received and what the test sent back.
fn run_campaign(scratch: &Scratch, serve: &ServeProcess) -> (SmtpServer, Vec<Received>, Traffic) {
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/report.toml",
        "--transport",
        &server.url(),
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent_at = std::time::Instant::now();
    let msgs = received(&server);
    assert_eq!(msgs.len(), 20, "every contact got the test phase");
    let variants: BTreeSet<&str> = msgs.iter().map(|m| m.variant.as_str()).collect();
    assert_eq!(
        variants,
        BTreeSet::from(["A", "B"]),
        "both subjects went out"
    );

    // Spread the traffic over both variants and both registers: recipient i gets event e
    // when its index lands there; each recipient does at most one opt-out-like thing.
    let t = Traffic {
        hard: vec![0, 13, 5],
        soft: vec![7, 18],
        complaint: vec![14],
        page: vec![2, 15],
        mailto: vec![9],
        offer_clicks: vec![1, 3, 16, 19],
        agenda_clicks: vec![3, 19],
        replies: vec![4, 17],
    };
    for (list, status, code, text) in [
        (&t.hard[..2], "5.1.1", 550, "User unknown"),
        (&t.hard[2..], "5.1.1", 550, "User unknown"),
        (&t.soft[..], "4.2.2", 452, "Mailbox full"),
    ] {
        for &i in list {
            let m = &msgs[i];
            let dsn = dsn(
                &m.verp,
                &m.rcpt,
                &m.message_id,
                status,
                code,
                text,
                "failed",
            );
            ingest_stdin(scratch, &dsn);
        }
    }
    // A forged bounce naming recipient 6 (no token of ours): listed, never counted.
    let forged = format!(
        "From: MAILER-DAEMON@attacker.example\r\nTo: bounces@bounces.example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged@attacker.example>\r\n\r\n\
         This is the mail system at host attacker.example.\r\n\r\n<{}>: host mx.example said: 550 5.1.1 User unknown\r\n",
        msgs[6].rcpt
    );
    ingest_stdin(scratch, &forged);
    for &i in &t.complaint {
        ingest_stdin(
            scratch,
            &arf(&msgs[i].verp, &msgs[i].rcpt, &msgs[i].message_id),
        );
    }
    for &i in &t.page {
        let url = msgs[i]
            .unsubscribe
            .replace("http://127.0.0.1:8080", &serve.base);
        let body = Some(("application/x-www-form-urlencoded", "confirm=unsubscribe"));
        assert_eq!(http("POST", &url, body).0, 200);
    }
    for &i in &t.mailto {
        let mail = format!(
            "From: {}\r\nTo: {}\r\nSubject: unsubscribe\r\nMessage-ID: <u{i}@example.net>\r\n\r\n\r\n",
            msgs[i].rcpt, msgs[i].mailto
        );
        assert_eq!(ingest_stdin(scratch, &mail)["optouts"], 1);
    }
    for &i in &t.replies {
        let reply = format!(
            "From: {}\r\nTo: sales@example.com\r\nSubject: Re: {}\r\nIn-Reply-To: {}\r\n\
             Message-ID: <reply-{i}@example.net>\r\n\r\nThanks, I'll join!\r\n",
            msgs[i].rcpt, msgs[i].subject, msgs[i].message_id
        );
        assert_eq!(ingest_stdin(scratch, &reply)["replies"], 1);
    }
    // Clicks within 5 s of sending are link scanners: people click later.
    std::thread::sleep(Duration::from_millis(5_500).saturating_sub(sent_at.elapsed()));
    for (list, link) in [(&t.offer_clicks, "offer"), (&t.agenda_clicks, "agenda")] {
        for &i in list {
            let url = msgs[i].links[link].replace("http://127.0.0.1:8080", &serve.base);
            assert_eq!(http("GET", &url, None).0, 303, "{url}");
            std::thread::sleep(Duration::from_millis(1_100));
        }
    }
    (server, msgs, t)
}

fn report_json(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["report", "report-campaign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The breakdown named `name` of the report's `list` ("variants" or "registers").
fn group<'a>(report: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .map(|b| &b["results"])
        .unwrap_or_else(|| panic!("no {list} {name} in {report}"))
}

fn check_group(results: &serde_json::Value, msgs: &[&Received], all: &[Received], t: &Traffic) {
    let count = |list: &[usize]| {
        list.iter()
            .filter(|&&i| msgs.iter().any(|m| m.rcpt == all[i].rcpt))
            .count() as i64
    };
    let get = |k: &str| results[k].as_i64().unwrap();
    assert_eq!(get("sent"), msgs.len() as i64, "{results}");
    let bounced = count(&t.hard) + count(&t.soft);
    assert_eq!(get("delivered"), msgs.len() as i64 - bounced, "{results}");
    assert_eq!(get("hard_bounces"), count(&t.hard), "{results}");
    assert_eq!(get("soft_bounces"), count(&t.soft), "{results}");
    assert_eq!(get("complaints"), count(&t.complaint), "{results}");
    let (page, mailto, complaint) = (count(&t.page), count(&t.mailto), count(&t.complaint));
    assert_eq!(get("optouts"), page + mailto + complaint, "{results}");
    for (source, n) in [("page", page), ("mailto", mailto), ("complaint", complaint)] {
        assert_eq!(
            results["optouts_by_source"][source].as_i64().unwrap_or(0),
            n,
            "{source}: {results}"
        );
    }
    let clickers: BTreeSet<usize> = t
        .offer_clicks
        .iter()
        .chain(&t.agenda_clicks)
        .copied()
        .collect();
    assert_eq!(
        get("clicks"),
        count(&clickers.into_iter().collect::<Vec<_>>()),
        "{results}"
    );
    assert_eq!(get("replies"), count(&t.replies), "{results}");
    assert_eq!(get("opens"), 0, "nobody loaded an image: {results}");
}

#[test]
fn report_counts_equal_the_servers_log_and_the_traffic_sent_back() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = setup();
    let serve = ServeProcess::start(&scratch);
    let (_server, msgs, t) = run_campaign(&scratch, &serve);
    let report = report_json(&scratch);

    // The whole campaign, each variant and each register, against the test's own tally.
    let everyone: Vec<&Received> = msgs.iter().collect();
    check_group(&report["total"], &everyone, &msgs, &t);
    for (name, n) in tally(&msgs, |m| &m.variant) {
        let members: Vec<&Received> = msgs.iter().filter(|m| m.variant == name).collect();
        assert_eq!(members.len() as i64, n);
        check_group(group(&report, "variants", &name), &members, &msgs, &t);
    }
    for (name, _) in tally(&msgs, |m| &m.register) {
        let members: Vec<&Received> = msgs.iter().filter(|m| m.register == name).collect();
        check_group(group(&report, "registers", &name), &members, &msgs, &t);
    }
    assert_eq!(report["variants"].as_array().unwrap().len(), 2);
    assert_eq!(report["registers"].as_array().unwrap().len(), 2);

    // Bounces by reason: fairsend's own classification of each verified bounce, tallied.
    let listed = json_list(&scratch, &["bounces", "list", "--json"]);
    let mut reasons: BTreeMap<(String, String), i64> = BTreeMap::new();
    for b in listed.iter().filter(|b| b["kind"] == "dsn") {
        if b["verification"] == "proven" {
            let key = (
                b["class"].as_str().unwrap().to_string(),
                b["reason"].as_str().unwrap().to_string(),
            );
            *reasons.entry(key).or_default() += 1;
        }
    }
    assert!(
        listed.iter().any(|b| b["verification"] == "unverified"),
        "the forged bounce is listed"
    );
    let by_reason: BTreeMap<(String, String), i64> = report["total"]["bounces_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                (
                    b["class"].as_str().unwrap().to_string(),
                    b["reason"].as_str().unwrap().to_string(),
                ),
                b["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_reason, reasons);
    assert_eq!(
        by_reason.values().sum::<i64>(),
        (t.hard.len() + t.soft.len()) as i64
    );

    // Unique clicks per link, and the click rate of sent.
    for (url, clickers) in [(OFFER, &t.offer_clicks), (AGENDA, &t.agenda_clicks)] {
        let link = report["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["url"] == url)
            .unwrap_or_else(|| panic!("{url} in {report}"));
        assert_eq!(link["unique_clicks"], clickers.len() as i64, "{link}");
        let rate = link["click_rate"].as_f64().unwrap();
        assert!((rate - clickers.len() as f64 / 20.0).abs() < 1e-9, "{link}");
    }

    // 1 complaint in 20 (5 %) and 4 opt-outs in 20 cross the limits: warned.
    let warnings = report["warnings"].as_array().unwrap();
    let campaign_warnings: Vec<&str> = warnings
        .iter()
        .filter(|w| w["scope"] == "campaign")
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert_eq!(campaign_warnings.len(), 2, "{warnings:?}");
    assert!(
        campaign_warnings[0].contains("complaint rate 5.00 %")
            && campaign_warnings[0].contains("0.3 %")
    );
    assert!(campaign_warnings[1].contains("opt-out rate 20.00 %"));

    // The timeline holds every send and every verified bounce.
    let points = report["timeline"]["points"].as_array().unwrap();
    let sum = |k: &str| points.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!((sum("sends"), sum("bounces")), (20, 5));

    // CSV and text say the same.
    let out = scratch.run(&["report", "config/campaigns/report.toml", "--csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("scope,name,metric,key,value\n"), "{csv}");
    assert!(csv.contains("campaign,report-campaign,sent,,20\n"), "{csv}");
    for b in report["variants"].as_array().unwrap() {
        let line = format!(
            "variant,{},sent,,{}\n",
            b["name"].as_str().unwrap(),
            b["results"]["sent"]
        );
        assert!(csv.contains(&line), "{line} in {csv}");
    }
    assert!(csv.contains("register,partners,optouts,page,"), "{csv}");
    let out = scratch.run(&["report", "report-campaign"]);
    let text = stdout(&out);
    assert!(
        text.contains("Only verified bounces and complaints count"),
        "{text}"
    );
    assert!(
        text.contains("WARNING (campaign): complaint rate 5.00 %"),
        "{text}"
    );
    assert!(text.contains("opens are unreliable"), "{text}");

    // Three days (the default) after a send a moment ago, nothing is delivered yet; a value
    // that is no duration is bad input naming the file and the field.
    let toml = std::fs::read_to_string(scratch.path("config/fairsend.toml")).unwrap();
    let with = |value: &str| {
        toml.replace(
            "delivered_after = \"0s\"",
            &format!("delivered_after = \"{value}\""),
        )
    };
    scratch.write("config/fairsend.toml", &with("3d"));
    let later = report_json(&scratch);
    assert_eq!(
        (
            later["total"]["sent"].as_i64(),
            later["total"]["delivered"].as_i64()
        ),
        (Some(20), Some(0))
    );
    assert_eq!(later["delivered_after_hours"], 72.0);
    scratch.write("config/fairsend.toml", &with("soon"));
    let out = scratch.run(&["report", "report-campaign"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fairsend.toml") && stderr(&out).contains("[report] delivered_after"),
        "{}",
        stderr(&out)
    );
    scratch.write("config/fairsend.toml", &toml);

    // An unknown campaign is bad input, named.
    let out = scratch.run(&["report", "no-such-campaign"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no-such-campaign"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_campaign_page_charts_its_results_and_passes_axe() {
    if !common::require(&[common::Tool::Aiosmtpd, common::Tool::Browser]) {
        return;
    }
    let scratch = setup();
    let serve =
        ServeProcess::start_with_env(&scratch, &[("FAIRSEND_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let (_server, _msgs, _t) = run_campaign(&scratch, &serve);
    let report = report_json(&scratch);

    // Without a session the page is closed.
    let (status, head, _) = http(
        "GET",
        &format!("{}/admin/campaigns/report-campaign", serve.base),
        None,
    );
    assert_eq!(status, 303, "{head}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args(["report", &serve.base, ADMIN_PASSWORD, "report-campaign"]);
    // FAIRSEND_SCREENSHOTS=DIR keeps a picture of the page (as tests/browser.rs does).
    if let Ok(dir) = std::env::var("FAIRSEND_SCREENSHOTS") {
        command.arg(Path::new(&dir).join("campaign-report.png"));
    }
    let run = command.output().expect("python3");
    assert!(run.status.success(), "browser failed: {}", stderr(&run));
    let seen: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();

    assert!(
        seen["login_url"]
            .as_str()
            .unwrap()
            .ends_with("/admin/login"),
        "{seen}"
    );
    assert_eq!(seen["h1"], "Campaign report-campaign: results");
    assert_eq!(seen["scripts"], 0, "the page needs no JavaScript");
    // Timeline: one sends bar and one bounces bar per bucket, as many as the table has rows,
    // and the table's numbers are the report's.
    let timeline = &seen["timeline"];
    assert_eq!(timeline["role"], "img");
    assert!(
        timeline["title"]
            .as_str()
            .unwrap()
            .starts_with("Sends and bounces per")
    );
    assert!(!timeline["desc"].as_str().unwrap().is_empty());
    let points = report["timeline"]["points"].as_array().unwrap();
    let rows = seen["timeline_table"].as_array().unwrap();
    assert_eq!(rows.len(), points.len());
    assert_eq!(timeline["bars"]["#1D4ED8"], points.len(), "{timeline}");
    assert_eq!(timeline["bars"]["#B91C1C"], points.len(), "{timeline}");
    for (row, point) in rows.iter().zip(points) {
        assert_eq!(row[1], point["sends"].to_string());
        assert_eq!(row[2], point["bounces"].to_string());
    }
    // Per variant: five series (bounces, complaints, opt-outs, clicks, replies) × 2 variants.
    let variants = &seen["variants"];
    let bars: i64 = variants["bars"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(fill, _)| *fill != "#FFFFFF")
        .map(|(_, n)| n.as_i64().unwrap())
        .sum();
    assert_eq!(bars, 10, "{variants}");
    assert!(
        variants["width"].as_f64().unwrap() > 200.0,
        "the chart is drawn: {variants}"
    );
    let table = seen["variants_table"].as_array().unwrap();
    assert_eq!(table.len(), 2);
    for (row, b) in table.iter().zip(report["variants"].as_array().unwrap()) {
        assert_eq!(row[0], format!("Variant {}", b["name"].as_str().unwrap()));
        assert_eq!(row[1], b["results"]["sent"].to_string());
    }
    assert_eq!(seen["results_table"].as_array().unwrap().len(), 1 + 2 + 2);
    assert!(
        seen["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("complaint rate 5.00 %")),
        "{seen}"
    );
    // axe-core: no serious or critical accessibility violation.
    let serious: Vec<&serde_json::Value> = seen["axe_violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .collect();
    assert!(serious.is_empty(), "axe-core: {serious:?}");
    eprintln!("axe-core, minor and moderate: {}", seen["axe_violations"]);
    assert!(seen["axe_passes"].as_i64().unwrap() > 10, "axe ran: {seen}");
}

/// `browser.py lifecycle`: one JSON line per step of the page; the test checks the database
/// between steps, then lets the browser go on.
struct BrowserSteps {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl BrowserSteps {
    fn start(base: &str, campaign: &str) -> Self {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["lifecycle", base, ADMIN_PASSWORD, campaign])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().expect("browser stdout");
        Self {
            child,
            lines: std::io::BufReader::new(stdout).lines(),
        }
    }

    /// What the page showed after step `name`, with no serious or critical axe-core finding.
    fn seen(&mut self, name: &str) -> serde_json::Value {
        let line = self
            .lines
            .next()
            .unwrap_or_else(|| {
                panic!("the browser stopped before step {name} (its stderr is above)")
            })
            .expect("browser output");
        let seen: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(seen["step"], name, "{seen}");
        let serious: Vec<&serde_json::Value> = seen["axe"]["violations"]
            .as_array()
            .expect("axe violations")
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(serious.is_empty(), "axe-core after {name}: {serious:?}");
        assert!(
            seen["axe"]["passes"].as_i64().unwrap_or(0) > 10,
            "axe ran: {seen}"
        );
        seen
    }

    fn go_on(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("browser stdin");
        stdin.write_all(b"\n").expect("tell the browser to go on");
        stdin.flush().expect("flush");
    }
}

impl Drop for BrowserSteps {
    fn drop(&mut self) {
        // A failed assertion leaves the browser waiting for its next line: end it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_of(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["status", "test-campaign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("status JSON")
}

/// In real Chromium, while a rate-limited `send` is running: the campaign page draws its
/// charts, Pause stops the worker (the database says paused, no message arrives), Resume lets
/// it go on, Cancel asks for its confirmation and then leaves no row sendable; axe-core finds
/// nothing serious after any of it. On PostgreSQL too when FAIRSEND_TEST_POSTGRES is set.
#[test]
fn in_a_browser_the_campaign_page_pauses_resumes_and_cancels_a_running_campaign() {
    if !common::require(&[common::Tool::Aiosmtpd, common::Tool::Browser]) {
        return;
    }
    const RECIPIENTS: u64 = 200;
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), &[]);
    let scratch = Scratch::new(&server.url());
    // Slow enough that the run is still going when the browser has started.
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml(&server.url()).replace("rate_per_second = 0", "rate_per_second = 2"),
    );
    scratch.contacts("config/contacts/customers.csv", RECIPIENTS as usize);
    let worker = scratch
        .command(&["send", "--json", "config/campaigns/test.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn send");
    assert!(server.wait_for_messages(3, Duration::from_secs(60)) >= 3);
    let serve =
        ServeProcess::start_with_env(&scratch, &[("FAIRSEND_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let mut browser = BrowserSteps::start(&serve.base, "test-campaign");

    let loaded = browser.seen("loaded");
    assert!(
        loaded["login_url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/admin/login"),
        "{loaded}"
    );
    assert_eq!(loaded["h1"], "Campaign test-campaign: results");
    assert_eq!(loaded["run_state"], "active");
    assert_eq!(loaded["buttons"], serde_json::json!(["pause", "cancel"]));
    let charts = loaded["svgs"].as_array().expect("svgs");
    let ids: Vec<&str> = charts.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["chart-timeline", "chart-variants"], "{loaded}");
    assert!(
        charts
            .iter()
            .all(|c| c["role"] == "img" && c["width"].as_f64() > Some(200.0))
    );
    assert!(
        charts[0]["sends_bars"].as_i64() >= Some(1),
        "sends are drawn: {loaded}"
    );
    browser.go_on();

    let paused = browser.seen("paused");
    assert_eq!(paused["run_state"], "paused", "{paused}");
    assert_eq!(paused["buttons"], serde_json::json!(["resume", "cancel"]));
    assert_eq!(status_of(&scratch)["run_state"], "paused");
    // The worker waits: once what was on the wire has landed, nothing more arrives.
    std::thread::sleep(Duration::from_millis(1500));
    let during_pause = server.messages().len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.messages().len(), during_pause, "sent while paused");
    assert!((during_pause as u64) < RECIPIENTS);
    browser.go_on();

    let resumed = browser.seen("resumed");
    assert_eq!(resumed["run_state"], "active", "{resumed}");
    assert_eq!(status_of(&scratch)["run_state"], "active");
    assert!(
        server.wait_for_messages(during_pause + 2, Duration::from_secs(20)) >= during_pause + 2,
        "the worker went on after the resume"
    );
    browser.go_on();

    let unconfirmed = browser.seen("cancel_unconfirmed");
    assert_eq!(unconfirmed["confirm_missing"], true, "{unconfirmed}");
    assert_eq!(unconfirmed["still_here"], true, "{unconfirmed}");
    assert_eq!(unconfirmed["run_state"], "active");
    assert!(
        unconfirmed["confirm_label"]
            .as_str()
            .unwrap_or("")
            .contains("never be sent"),
        "{unconfirmed}"
    );
    let status = status_of(&scratch);
    assert_eq!(
        (
            status["run_state"].as_str(),
            status["states"]["cancelled"].as_u64()
        ),
        (Some("active"), Some(0))
    );
    browser.go_on();

    let cancelled = browser.seen("cancelled");
    assert_eq!(cancelled["run_state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["forms"], 0, "nothing to click after a cancel");
    assert!(
        cancelled["sending"]
            .as_str()
            .unwrap_or("")
            .contains("will never be sent")
    );
    let out = worker.wait_with_output().expect("the worker ends");
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("send report");
    assert_eq!(report["cancelled"], true, "{report}");
    let status = status_of(&scratch);
    let states = &status["states"];
    assert_eq!(status["run_state"], "cancelled");
    for unsent in ["queued", "deferred", "sending"] {
        assert_eq!(states[unsent], 0, "{unsent}: {states}");
    }
    let received = server.messages().len() as u64;
    assert_eq!(states["sent"], received, "{states}");
    assert_eq!(
        states["cancelled"].as_u64(),
        Some(RECIPIENTS - received),
        "{states}"
    );
    // Each click is in the audit log under the operator's name.
    let audited = common::text_occurrences(&scratch.db_url(), "Maija Markkinoija");
    assert!(
        audited.contains(&("audit_log".to_string(), "actor".to_string())),
        "{audited:?}"
    );
    // The report counts what was sent, not what was cancelled.
    assert_eq!(report_of(&scratch)["total"]["sent"], received);
}

fn report_of(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["report", "test-campaign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("report JSON")
}
