//! A/B subject test end to end: the test phase goes to a real SMTP server in two exactly
//! balanced groups; clicks through real HTTP requests to `fairsend serve`'s tracked links
//! decide the winner (machine-made clicks are recorded but not counted); the remainder gets
//! only the winning subject and nobody gets two variants. The redirect never leaves the
//! campaign's own links.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Scratch, ServeProcess, SmtpServer, http, parse_message, stderr, stdout};

const CAMPAIGN: &str = r#"name = "ab-campaign"
registers = ["customers"]
from = "Sales <sales@example.com>"
reply_to = "sales@example.com"
body = "content/body.md"
require_approval = false

[ab]
subjects = ["A: an offer for {{ company }}", "B: {{ first_name }}, your offer"]
test_fraction = 0.5
metric = "clicks"
wait = "1s"
confidence = 0.95
fallback = "first"

[[import]]
file = "contacts/customers.csv"
register = "customers"
"#;

fn scratch(declares_tracking: bool) -> Scratch {
    let scratch = Scratch::new("outbox:unused");
    let toml = common::fairsend_toml("outbox:unused").replace(
        "retention_months = 24",
        &format!("retention_months = 24\ndeclares_tracking = {declares_tracking}"),
    );
    scratch.write("config/fairsend.toml", &toml);
    scratch.write("config/campaigns/ab.toml", CAMPAIGN);
    scratch.write(
        "config/content/body.md",
        "Hello {{ first_name }},\n\nsee [our offer](https://www.example.com/offer) and [the agenda](https://www.example.com/agenda?day=1&room=2).\n",
    );
    scratch.contacts("config/contacts/customers.csv", 20);
    scratch
}

fn status(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["status", "ab-campaign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// (recipient, subject, tracked link URLs) of every message the server accepted.
fn received(server: &SmtpServer) -> Vec<(String, String, Vec<String>)> {
    server
        .messages()
        .iter()
        .map(|m| {
            let parsed = parse_message(m["data"].as_str().unwrap().as_bytes());
            let links = parsed
                .html
                .split("href=\"")
                .skip(1)
                .filter_map(|s| s.split('"').next())
                .filter(|u| u.contains("/c/"))
                .map(str::to_string)
                .collect();
            (
                m["rcpt_tos"][0].as_str().unwrap().to_string(),
                parsed.one("subject").to_string(),
                links,
            )
        })
        .collect()
}

#[test]
fn clicks_decide_the_winner_and_the_remainder_gets_only_it() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = scratch(true);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let serve = ServeProcess::start(&scratch);
    let base = |url: &str| url.replace("http://127.0.0.1:8080", &serve.base);

    // Test phase only.
    let out = scratch.run(&[
        "send",
        "config/campaigns/ab.toml",
        "--transport",
        &server.url(),
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("A/B test phase sent"),
        "{}",
        stdout(&out)
    );
    let test = received(&server);
    assert_eq!(test.len(), 10, "test_fraction 0.5 of 20");
    let a: Vec<_> = test
        .iter()
        .filter(|(_, s, _)| s.starts_with("A: "))
        .collect();
    let b: Vec<_> = test
        .iter()
        .filter(|(_, s, _)| s.starts_with("B: "))
        .collect();
    assert_eq!((a.len(), b.len()), (5, 5), "exactly balanced");
    assert!(
        test.iter().all(|(_, _, links)| links.len() == 2),
        "both body links tracked"
    );
    let s = status(&scratch);
    assert_eq!(s["ab"]["phase"], "waiting");
    assert_eq!(
        (
            s["ab"]["variants"][0]["group_size"].as_i64(),
            s["ab"]["variants"][1]["group_size"].as_i64()
        ),
        (Some(5), Some(5))
    );

    // A link scanner hits every link of an A message at once, right after delivery: recorded,
    // not counted.
    for link in &a[0].2 {
        assert_eq!(http("GET", &base(link), None).0, 303);
    }
    // People click later: four of the five B messages.
    std::thread::sleep(Duration::from_millis(5_200));
    for (_, _, links) in b.iter().take(4) {
        let (code, head, _) = http("GET", &base(&links[0]), None);
        assert_eq!(code, 303);
        assert!(
            head.to_ascii_lowercase()
                .contains("location: https://www.example.com/offer"),
            "{head}"
        );
    }
    // The agenda link keeps its query string through the redirect. (Clicked more than a
    // second after the offer link: every link within a second would be a scanner.)
    std::thread::sleep(Duration::from_millis(1_100));
    let (_, head, _) = http("GET", &base(&b[0].2[1]), None);
    assert!(
        head.contains("https://www.example.com/agenda?day=1&room=2"),
        "{head}"
    );

    // The redirect is never open: a tampered token, and a request that names another URL.
    let token = b[1].2[0].rsplit('/').next().unwrap().to_string();
    let mut tampered = token.clone().into_bytes();
    tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
    let tampered_url = format!("{}/c/{}", serve.base, String::from_utf8(tampered).unwrap());
    assert_eq!(http("GET", &tampered_url, None).0, 404);
    let (code, head, _) = http(
        "GET",
        &format!("{}?url=https://evil.example/", base(&b[1].2[0])),
        None,
    );
    assert_eq!(code, 303);
    assert!(
        !head.contains("evil.example") && head.contains("https://www.example.com/offer"),
        "{head}"
    );

    // Decide and send the remainder.
    let out = scratch.run(&[
        "send",
        "config/campaigns/ab.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = received(&server);
    assert_eq!(all.len(), 20);
    let mut per_rcpt: BTreeMap<&str, usize> = BTreeMap::new();
    for (rcpt, _, _) in &all {
        *per_rcpt.entry(rcpt).or_default() += 1;
    }
    assert!(
        per_rcpt.values().all(|n| *n == 1),
        "nobody receives two variants"
    );
    assert!(
        all[10..]
            .iter()
            .all(|(_, subject, _)| subject.starts_with("B: ")),
        "the remainder gets only the winner"
    );

    let s = status(&scratch);
    let ab = &s["ab"];
    assert_eq!(ab["phase"], "remainder");
    assert_eq!(
        (
            ab["variants"][0]["events"].as_i64(),
            ab["variants"][1]["events"].as_i64()
        ),
        (Some(0), Some(4)),
        "{ab}"
    );
    assert_eq!(ab["variants"][1]["rate"], 0.8);
    let d = &ab["decision"];
    assert_eq!(
        (d["winner"].as_i64(), d["fallback_used"].as_bool()),
        (Some(1), Some(false)),
        "{d}"
    );
    // Independently (Python): p = 4/10; z = 0.8 / sqrt(p(1-p)(1/5 + 1/5)) = 2.581988897471611;
    // math.erfc(z / sqrt(2)) = 0.009823274507519254.
    assert!(
        (d["statistic"].as_f64().unwrap() - 2.581_988_897_471_611).abs() < 1e-6,
        "{d}"
    );
    assert!(
        (d["p_value_or_probability"].as_f64().unwrap() - 0.009_823_274_507_519_254).abs() < 1e-6,
        "{d}"
    );

    // Running again changes nothing.
    let again = scratch.run(&[
        "send",
        "config/campaigns/ab.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(again.status.success());
    assert_eq!(server.messages().len(), 20);
}

#[test]
fn tracking_needs_the_privacy_notice_to_declare_it() {
    let scratch = scratch(false);
    let out = scratch.run(&["send", "config/campaigns/ab.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error[CNT002]"), "{}", stdout(&out));
}

/// The groups are formed over the contacts that may be mailed: an address opted out after the
/// import is left out of both groups (its row ends `suppressed` with the reason), and it gets
/// no message of either subject.
#[test]
fn groups_leave_out_the_contacts_that_may_not_be_mailed() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = scratch(true);
    let emails = scratch.contacts("config/contacts/customers.csv", 20);
    scratch.import_customers();
    let opted: Vec<&String> = emails.iter().step_by(7).collect();
    for email in &opted {
        let out = scratch.run(&["optout", "add", email]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/ab.toml",
        "--transport",
        &server.url(),
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let test = received(&server);
    assert!(
        test.iter().all(|(to, _, _)| !opted.contains(&to)),
        "an opted-out address got a test message: {test:?}"
    );
    let s = status(&scratch);
    let sizes: Vec<i64> = s["ab"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["group_size"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sizes.iter().sum::<i64>(),
        test.len() as i64,
        "the groups hold exactly the messages sent: {s}"
    );
    let eligible = (emails.len() - opted.len()) as i64;
    assert_eq!(
        s["states"]["sent"].as_i64().unwrap() + s["states"]["queued"].as_i64().unwrap(),
        eligible,
        "the test phase and the remainder hold the {eligible} contacts that may be mailed: {s}"
    );
    assert!(
        (test.len() as i64 - eligible / 2).abs() <= 1,
        "test_fraction 0.5 of {eligible}: {s}"
    );
    assert_eq!(
        s["states"]["suppressed"].as_i64(),
        Some(opted.len() as i64),
        "{s}"
    );
    let out = scratch.run(&["status", "ab-campaign", "--state", "suppressed", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains("not eligible when the A/B groups were formed"),
        "{listed}"
    );
    for email in &opted {
        assert!(
            listed.contains(email.as_str()),
            "{email} not listed: {listed}"
        );
    }
}
