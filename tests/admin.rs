//! The admin pages and /metrics over HTTP: disabled without FAIRSEND_ADMIN_PASSWORD and
//! showing no data; refused with the development secret; refusing without credentials and
//! with a forged CSRF token; login attempts limited per client and globally; sessions ended by
//! logout and by a new password; /metrics in Prometheus exposition format with counts equal to
//! the database's, on its own listener or behind a bearer token.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use common::net::{free_port, http_from};
use common::{Scratch, ServeProcess, SmtpServer, http, http_with, stderr, stdout};

const PASSWORD: &str = "correct horse battery staple";
/// The admin pages need a signing secret of the operator's own.
const SECRET: &str = common::TEST_SECRET;
const ADMIN: [(&str, &str); 2] = [
    ("FAIRSEND_ADMIN_PASSWORD", PASSWORD),
    ("FAIRSEND_SECRET", SECRET),
];

fn sent(n: usize) -> (Scratch, SmtpServer) {
    let scratch = Scratch::new("outbox:unused");
    scratch.contacts("config/contacts/customers.csv", n);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (scratch, server)
}

fn login(serve: &ServeProcess) -> String {
    let (status, head, _) = http(
        "POST",
        &format!("{}/admin/login", serve.base),
        Some((
            "application/x-www-form-urlencoded",
            "password=correct+horse+battery+staple",
        )),
    );
    assert_eq!(status, 303);
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

fn csrf_from(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field")
        .to_string()
}

#[test]
fn admin_is_disabled_without_the_variable_and_shows_no_data() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = sent(2);
    let serve = ServeProcess::start_with_env(&scratch, &[]);
    for path in [
        "/admin",
        "/admin/login",
        "/admin/bounces",
        "/admin/optouts",
        "/admin/review",
        "/admin/review/test",
    ] {
        let (status, _, body) = http("GET", &format!("{}{path}", serve.base), None);
        assert_eq!(status, 503, "{path}");
        assert!(
            body.contains("FAIRSEND_ADMIN_PASSWORD"),
            "says how to enable it"
        );
        assert!(
            !body.contains("test-campaign") && !body.contains("company0"),
            "{path} shows no data"
        );
    }
    let (status, _, _) = http(
        "POST",
        &format!("{}/admin/login", serve.base),
        Some(("application/x-www-form-urlencoded", "password=anything")),
    );
    assert_eq!(status, 503);
    // Public pages work without it.
    assert_eq!(http("GET", &format!("{}/healthz", serve.base), None).0, 200);
}

#[test]
fn admin_refuses_without_credentials_and_with_a_forged_csrf_token() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = sent(2);
    let serve = ServeProcess::start_with_env(&scratch, &ADMIN);
    let base = &serve.base;
    for path in [
        "/admin",
        "/admin/bounces",
        "/admin/optouts",
        "/admin/review",
    ] {
        let (status, head, body) = http("GET", &format!("{base}{path}"), None);
        assert_eq!(status, 303, "{path}");
        assert!(head.to_ascii_lowercase().contains("location: /admin/login"));
        assert!(!body.contains("test-campaign"));
    }
    let form = (
        "application/x-www-form-urlencoded",
        "csrf=x&email=victim%40example.com",
    );
    assert_eq!(
        http("POST", &format!("{base}/admin/optouts"), Some(form)).0,
        303,
        "no session: to the login page"
    );
    let (status, _, body) = http(
        "POST",
        &format!("{base}/admin/login"),
        Some(("application/x-www-form-urlencoded", "password=wrong")),
    );
    assert_eq!(status, 401);
    assert!(body.contains("Wrong password"));
    // A forged session cookie is no session.
    let forged = format!(
        "fs_admin={}.{}",
        chrono_now_ms() + 3_600_000,
        "00".repeat(32)
    );
    assert_eq!(
        http_with("GET", &format!("{base}/admin"), None, Some(&forged)).0,
        303
    );

    let cookie = login(&serve);
    let (status, _, page) = http_with("GET", &format!("{base}/admin/optouts"), None, Some(&cookie));
    assert_eq!(status, 200);
    let (status, _, _) = http_with(
        "POST",
        &format!("{base}/admin/optouts"),
        Some(form),
        Some(&cookie),
    );
    assert_eq!(status, 403, "forged CSRF token");
    let list = |s: &Scratch| -> Vec<serde_json::Value> {
        serde_json::from_str(&stdout(&s.run(&["optout", "list", "--json"]))).unwrap()
    };
    assert!(list(&scratch).is_empty(), "nothing changed");
    let body = format!(
        "csrf={}&email=walkin%40firma.example&reason=asked+at+a+fair",
        csrf_from(&page)
    );
    let (status, _, _) = http_with(
        "POST",
        &format!("{base}/admin/optouts"),
        Some(("application/x-www-form-urlencoded", &body)),
        Some(&cookie),
    );
    assert_eq!(status, 303);
    let optouts = list(&scratch);
    assert_eq!(
        (optouts[0]["email"].as_str(), optouts[0]["source"].as_str()),
        (Some("walkin@firma.example"), Some("manual"))
    );
    // Another session's CSRF token does not fit this session.
    let other = login(&serve);
    let (_, _, other_page) = http_with("GET", &format!("{base}/admin/optouts"), None, Some(&other));
    if other != cookie {
        let body = format!("csrf={}&email=x%40y.example", csrf_from(&other_page));
        assert_eq!(
            http_with(
                "POST",
                &format!("{base}/admin/optouts"),
                Some(("application/x-www-form-urlencoded", &body)),
                Some(&cookie)
            )
            .0,
            403
        );
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Parses the text exposition format strictly: every sample line is `name{labels} value` of a
/// metric whose TYPE came before it. Returns (name with labels) → value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["gauge", "counter", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && v.starts_with('"')
                        && v.ends_with('"'),
                    "{line}"
                );
            }
        }
        samples.insert(
            series.to_string(),
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value in {line}")),
        );
    }
    samples
}

#[test]
fn metrics_parse_and_equal_the_database() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server) = sent(6);
    // One hard and one soft bounce, and one opt-out.
    let rcpt = |i: usize| {
        server.messages()[i]["rcpt_tos"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    let verp = |i: usize| {
        server.messages()[i]["mail_from"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (i, status, action) in [(0, "5.1.1", "failed"), (1, "4.2.2", "delayed")] {
        let dsn = format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: {}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n--B--\r\n",
            verp(i),
            rcpt(i)
        );
        let mut child = scratch
            .command(&["bounces", "ingest", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dsn.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    assert!(scratch.run(&["optout", "add", &rcpt(2)]).status.success());

    let metrics = format!("127.0.0.1:{}", free_port());
    let _serve = ServeProcess::start_with(&scratch, &[], &["--metrics-listen", &metrics]);
    let (status, head, body) = http("GET", &format!("http://{metrics}/metrics"), None);
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4")
    );
    let m = parse_exposition(&body);

    let states: serde_json::Value = serde_json::from_str(&stdout(&scratch.run(&[
        "status",
        "test-campaign",
        "--json",
    ])))
    .unwrap();
    for state in ["sent", "failed"] {
        let db = states["states"][state].as_f64().unwrap();
        let metric = m
            .get(&format!(
                "fairsend_messages{{campaign=\"test-campaign\",state=\"{state}\"}}"
            ))
            .copied()
            .unwrap_or(0.0);
        assert_eq!(metric, db, "{state}");
    }
    assert_eq!(m["fairsend_bounces{class=\"hard\"}"], 1.0);
    assert_eq!(m["fairsend_bounces{class=\"soft\"}"], 1.0);
    assert_eq!(m["fairsend_optouts{source=\"manual\"}"], 1.0);
    assert_eq!(m["fairsend_queue_depth"], 0.0);
    // Every message ever sent has a latency; the histogram is cumulative.
    assert_eq!(m["fairsend_smtp_latency_seconds_count"], 6.0);
    assert_eq!(m["fairsend_smtp_latency_seconds_bucket{le=\"+Inf\"}"], 6.0);
    let buckets: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("fairsend_smtp_latency_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.iter().all(|v| *v <= 6.0));
    assert!(m["fairsend_smtp_latency_seconds_sum"] > 0.0);
}

#[test]
fn two_serve_instances_share_nothing_but_the_database() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = sent(2);
    let a = ServeProcess::start_with_env(&scratch, &ADMIN);
    let b = ServeProcess::start_with_env(&scratch, &ADMIN);
    for serve in [&a, &b] {
        let (status, _, body) = http("GET", &format!("{}/healthz", serve.base), None);
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    // A session opened on one instance works on the other, CSRF token included: behind a
    // load balancer, requests of one operator land on either.
    let cookie = login(&a);
    let (status, _, page) = http_with(
        "GET",
        &format!("{}/admin/optouts", a.base),
        None,
        Some(&cookie),
    );
    assert_eq!(status, 200);
    let body = format!(
        "csrf={}&email=walkin%40firma.example&reason=asked+at+a+fair",
        csrf_from(&page)
    );
    let (status, _, _) = http_with(
        "POST",
        &format!("{}/admin/optouts", b.base),
        Some(("application/x-www-form-urlencoded", &body)),
        Some(&cookie),
    );
    assert_eq!(
        status, 303,
        "instance B accepts instance A's session and CSRF token"
    );
    // What one instance recorded, the other shows.
    let (status, _, page) = http_with(
        "GET",
        &format!("{}/admin/optouts", a.base),
        None,
        Some(&cookie),
    );
    assert_eq!(status, 200);
    assert!(page.contains("walkin@firma.example"), "{page}");
}

/// `fairsend serve ARGS` with `env`: its exit status and stderr when it stops by itself within
/// 20 s, `None` (after killing it) when it keeps serving.
fn serve_outcome(scratch: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Option<(i32, String)> {
    let mut command = scratch.command(&[&["serve"], args].concat());
    command
        .env_remove("FAIRSEND_ADMIN_PASSWORD")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start serve");
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn serve_refuses_the_development_secret_for_the_admin_pages_and_beyond_loopback() {
    let scratch = Scratch::new("outbox:unused").with_development_key();
    let loopback = ["--listen", "127.0.0.1:0", "--metrics-listen", "none"];
    let (code, err) = serve_outcome(
        &scratch,
        &loopback,
        &[("FAIRSEND_ADMIN_PASSWORD", PASSWORD)],
    )
    .expect("serve must refuse the admin pages with the development secret");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("admin pages") && err.contains("set FAIRSEND_SECRET"),
        "{err}"
    );
    let everywhere = ["--listen", "0.0.0.0:0", "--metrics-listen", "none"];
    let (code, err) = serve_outcome(&scratch, &everywhere, &[])
        .expect("serve must refuse a public address with the development secret");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("0.0.0.0") && err.contains("set FAIRSEND_SECRET"),
        "{err}"
    );
    // With a secret of the operator's own (a database set up with it), both are allowed.
    let scratch = Scratch::new("outbox:unused");
    for (args, env) in [(&loopback, &ADMIN[..]), (&everywhere, &ADMIN[1..])] {
        assert_eq!(
            serve_outcome(&scratch, args, env),
            None,
            "serve keeps serving"
        );
    }
}

fn post_password(serve: &ServeProcess, from: &str, password: &str) -> (u16, String) {
    let body = format!("password={}", password.replace(' ', "+"));
    let (status, head, _) = http_from(
        from,
        "POST",
        &format!("{}/admin/login", serve.base),
        Some(("application/x-www-form-urlencoded", &body)),
        None,
    );
    (status, head)
}

fn retry_after(head: &str) -> u64 {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().parse().expect("seconds"))
        })
        .expect("Retry-After header")
}

#[test]
fn failed_logins_lock_a_client_out_with_growing_delays() {
    let scratch = Scratch::new("outbox:unused");
    let serve = ServeProcess::start_with(&scratch, &ADMIN, &["--login-attempts-per-client", "3"]);
    for _ in 0..3 {
        assert_eq!(post_password(&serve, "127.0.0.2", "wrong guess").0, 401);
    }
    // Locked out: even the right password is not looked at.
    let (status, head) = post_password(&serve, "127.0.0.2", PASSWORD);
    assert_eq!(status, 429);
    let first_wait = retry_after(&head);
    assert!((1..=2).contains(&first_wait), "{head}");
    // Other clients are not locked out by this one.
    assert_eq!(post_password(&serve, "127.0.0.3", PASSWORD).0, 303);
    // After the delay, one more attempt; failing it doubles the delay.
    std::thread::sleep(std::time::Duration::from_millis(first_wait * 1000 + 100));
    assert_eq!(post_password(&serve, "127.0.0.2", "another guess").0, 401);
    let (status, head) = post_password(&serve, "127.0.0.2", PASSWORD);
    assert_eq!(status, 429);
    assert!(retry_after(&head) >= 2, "{head}");
    std::thread::sleep(std::time::Duration::from_millis(
        retry_after(&head) * 1000 + 100,
    ));
    assert_eq!(post_password(&serve, "127.0.0.2", PASSWORD).0, 303);
}

#[test]
fn failed_logins_of_many_clients_together_lock_everyone_out() {
    let scratch = Scratch::new("outbox:unused");
    let serve = ServeProcess::start_with(
        &scratch,
        &ADMIN,
        &[
            "--login-attempts-per-client",
            "100",
            "--login-attempts-global",
            "4",
        ],
    );
    for i in 2..6 {
        let from = format!("127.0.0.{i}");
        assert_eq!(post_password(&serve, &from, "wrong guess").0, 401);
    }
    // A fresh client, with the right password: the global limit holds it back too.
    assert_eq!(post_password(&serve, "127.0.0.9", PASSWORD).0, 429);
    // Another `serve` process on the same database counts the same failures.
    let other = ServeProcess::start_with(
        &scratch,
        &ADMIN,
        &[
            "--login-attempts-per-client",
            "100",
            "--login-attempts-global",
            "4",
        ],
    );
    assert_eq!(post_password(&other, "127.0.0.10", PASSWORD).0, 429);
}

fn logout(serve: &ServeProcess, cookie: &str) {
    let (_, _, page) = http_with("GET", &format!("{}/admin", serve.base), None, Some(cookie));
    let body = format!("csrf={}", csrf_from(&page));
    let (status, head, _) = http_with(
        "POST",
        &format!("{}/admin/logout", serve.base),
        Some(("application/x-www-form-urlencoded", &body)),
        Some(cookie),
    );
    assert_eq!(status, 303);
    assert!(head.to_ascii_lowercase().contains("location: /admin/login"));
}

fn admin_status(serve: &ServeProcess, cookie: &str) -> u16 {
    http_with("GET", &format!("{}/admin", serve.base), None, Some(cookie)).0
}

#[test]
fn logout_ends_the_session_and_a_new_password_ends_them_all() {
    let scratch = Scratch::new("outbox:unused");
    let a = ServeProcess::start_with_env(&scratch, &ADMIN);
    let cookie = login(&a);
    assert_eq!(admin_status(&a, &cookie), 200);
    logout(&a, &cookie);
    assert_eq!(
        admin_status(&a, &cookie),
        303,
        "a copy of the cookie kept from before the logout opens nothing"
    );

    // Two sessions, then the operator restarts one instance with a new password.
    let first = login(&a);
    let second = login(&a);
    assert_eq!(
        (admin_status(&a, &first), admin_status(&a, &second)),
        (200, 200)
    );
    let new_password = "a different, longer passphrase";
    let b = ServeProcess::start_with_env(
        &scratch,
        &[
            ("FAIRSEND_ADMIN_PASSWORD", new_password),
            ("FAIRSEND_SECRET", SECRET),
        ],
    );
    for (serve, cookie) in [(&a, &first), (&a, &second), (&b, &first)] {
        assert_eq!(
            admin_status(serve, cookie),
            303,
            "sessions of the old password end on every instance"
        );
    }
    let (status, head, _) = http(
        "POST",
        &format!("{}/admin/login", b.base),
        Some((
            "application/x-www-form-urlencoded",
            "password=a+different%2C+longer+passphrase",
        )),
    );
    assert_eq!(status, 303);
    let fresh = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: ")
                .then(|| l[12..].to_string())
        })
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("cookie");
    assert_eq!(admin_status(&b, &fresh), 200);
    assert_eq!(
        admin_status(&a, &fresh),
        303,
        "an instance still on the old password does not take the new password's session"
    );
}

#[test]
fn metrics_are_not_on_the_public_listener_without_a_bearer_token() {
    let scratch = Scratch::new("outbox:unused");
    let metrics = format!("127.0.0.1:{}", free_port());
    let serve = ServeProcess::start_with(&scratch, &[], &["--metrics-listen", &metrics]);
    let (status, _, body) = http("GET", &format!("{}/metrics", serve.base), None);
    assert_eq!(status, 404);
    assert!(!body.contains("fairsend_"), "{body}");
    let (status, _, body) = http("GET", &format!("http://{metrics}/metrics"), None);
    assert_eq!(status, 200);
    assert!(body.contains("fairsend_queue_depth 0"), "{body}");

    // Behind a bearer token on the public listener, with the metrics listener turned off.
    let token = "metrics-token-0123456789abcdef";
    let serve = ServeProcess::start_with(
        &scratch,
        &[("FAIRSEND_METRICS_TOKEN", token)],
        &["--metrics-listen", "none"],
    );
    let url = format!("{}/metrics", serve.base);
    let with_header = |value: &str| {
        let host = serve.base.strip_prefix("http://").unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {host}\r\nAuthorization: {value}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        response
    };
    let (status, head, _) = http("GET", &url, None);
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    assert!(with_header("Bearer metrics-token-0123456789abcdeX").starts_with("HTTP/1.1 401"));
    let ok = with_header(&format!("Bearer {token}"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("fairsend_queue_depth 0"), "{ok}");
}

#[test]
fn an_operator_confirms_or_dismisses_unverified_bounces_on_the_bounce_page() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server) = sent(3);
    let emails: Vec<String> = (0..3)
        .map(|i| format!("person{i:04}@company{:02}.example", i % 37))
        .collect();
    // A plain-text "bounce" without a token: recorded unverified, suppresses no one.
    let forged = format!(
        "From: MAILER-DAEMON@elsewhere.example\r\nTo: bounces@bounces.example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\r\nThis is the mail system.\r\n\r\n\
         <{}>: 550 5.1.1 User unknown\r\n<{}>: 550 5.1.1 User unknown\r\n",
        emails[0], emails[1]
    );
    let summary = common::ingest_stdin(&scratch, &forged);
    assert_eq!(summary["unverified"], 2, "{summary}");
    let serve = ServeProcess::start_with_env(&scratch, &ADMIN);
    let base = &serve.base;
    let cookie = login(&serve);
    let (status, _, page) = http_with("GET", &format!("{base}/admin/bounces"), None, Some(&cookie));
    assert_eq!(status, 200);
    assert!(page.contains(">unverified"), "{page}");
    let csrf = csrf_from(&page);
    let queue = common::json_list(&scratch, &["bounces", "list", "--json"]);
    let id_of = |email: &str| {
        queue.iter().find(|b| b["recipient"] == email).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let post = |path: String, csrf: &str| {
        http_with(
            "POST",
            &format!("{base}{path}"),
            Some(("application/x-www-form-urlencoded", &format!("csrf={csrf}"))),
            Some(&cookie),
        )
        .0
    };
    assert_eq!(
        post(
            format!("/admin/bounces/{}/confirm", id_of(&emails[0])),
            "forged"
        ),
        403
    );
    assert_eq!(
        post(
            format!("/admin/bounces/{}/confirm", id_of(&emails[0])),
            &csrf
        ),
        303
    );
    assert_eq!(
        post(
            format!("/admin/bounces/{}/dismiss", id_of(&emails[1])),
            &csrf
        ),
        303
    );
    assert_eq!(
        post(
            format!("/admin/bounces/{}/confirm", id_of(&emails[1])),
            &csrf
        ),
        409,
        "a decided bounce is not decided again"
    );
    let queue = common::json_list(&scratch, &["bounces", "list", "--json"]);
    let verification = |email: &str| {
        queue.iter().find(|b| b["recipient"] == email).unwrap()["verification"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verification(&emails[0]), "confirmed");
    assert_eq!(verification(&emails[1]), "dismissed");
    // The next campaign skips the confirmed hard bounce only.
    scratch.write(
        "config/campaigns/next.toml",
        &common::CAMPAIGN.replace("test-campaign", "next-campaign"),
    );
    let next = scratch.run(&[
        "send",
        "config/campaigns/next.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(next.status.success(), "{}", stderr(&next));
    assert_eq!(common::states(&scratch, "next-campaign")["suppressed"], 1);
}

/// The audit log's rows as (actor, action, subject, detail), oldest first.
fn audit_rows(db_url: &str) -> Vec<(String, String, String, Option<String>)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::AnyPool::connect(db_url).await.expect("open db");
        sqlx::query("SELECT actor, action, subject, detail FROM audit_log ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit_log")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    })
}

/// An opt-out and an erasure are one use case each: the command line and the admin pages
/// write the same audit record (by keyed hash, or naming no one), differing only in the actor,
/// and the erasure leaves nothing of the person in the audit log.
#[test]
fn optout_and_erase_audit_alike_from_the_cli_and_the_admin_pages() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = sent(2);
    let serve = ServeProcess::start_with_env(&scratch, &ADMIN);
    let base = &serve.base;
    let cookie = login(&serve);
    let (_, _, page) = http_with("GET", &format!("{base}/admin/optouts"), None, Some(&cookie));
    let csrf = csrf_from(&page);
    let post = |path: &str, body: String| {
        let form = Some(("application/x-www-form-urlencoded", body.as_str()));
        http_with("POST", &format!("{base}{path}"), form, Some(&cookie)).0
    };
    let body = format!("csrf={csrf}&email=web-person%40firma.example&reason=asked+at+a+fair");
    assert_eq!(post("/admin/optouts", body), 303);
    let body = format!("csrf={csrf}&email=web-person%40firma.example&confirm=yes");
    assert_eq!(post("/admin/erase", body), 303);
    let cli = |args: &[&str]| {
        let out = scratch.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    cli(&[
        "optout",
        "add",
        "cli-person@firma.example",
        "--reason",
        "asked at a fair",
    ]);
    cli(&["erase", "cli-person@firma.example"]);

    let rows = audit_rows(&scratch.db_url());
    let of = |actor: &str, action: &str| {
        rows.iter()
            .filter(|r| r.0 == actor && r.1 == action)
            .map(|r| (r.2.clone(), r.3.clone()))
            .collect::<Vec<_>>()
    };
    for action in ["optout", "erase"] {
        let (web, cli) = (of("admin", action), of("cli", action));
        assert_eq!((web.len(), cli.len()), (1, 1), "{action}: {rows:?}");
        let shape = |(subject, detail): &(String, Option<String>)| {
            let hex = subject.strip_prefix("address ").map(|h| h.len());
            (hex, subject.starts_with("address "), detail.clone())
        };
        assert_eq!(shape(&web[0]), shape(&cli[0]), "{action}: {rows:?}");
    }
    assert_eq!(of("cli", "erase")[0].0, "(erased address)");
    // After the erasure nothing of either person is left: not the address, not the reason
    // (free text about the person) that came with the opt-out.
    for text in ["web-person@", "cli-person@", "asked at a fair"] {
        let found = common::text_occurrences(&scratch.db_url(), text);
        assert!(found.is_empty(), "{text} is still in {found:?}: {rows:?}");
    }
}

/// The bounce operations refuse what they cannot do with the same answers since they moved
/// to `app::bounces`: an unknown reason or class, a bounce that does not exist.
#[test]
fn bounce_operations_refuse_unknown_reasons_classes_and_bounces() {
    let scratch = Scratch::new("outbox:unused");
    let serve = ServeProcess::start_with_env(&scratch, &ADMIN);
    let base = &serve.base;
    let cookie = login(&serve);
    let (_, _, page) = http_with("GET", &format!("{base}/admin/bounces"), None, Some(&cookie));
    let csrf = csrf_from(&page);
    let post = |path: &str, fields: &str| {
        let body = format!("csrf={csrf}&{fields}");
        let form = Some(("application/x-www-form-urlencoded", body.as_str()));
        let (status, _, text) = http_with("POST", &format!("{base}{path}"), form, Some(&cookie));
        (status, text)
    };
    let reclassify = "/admin/bounces/999999/reclassify";
    assert_eq!(
        post(reclassify, "class=hard&reason=no_such_reason"),
        (400, "unknown reason\n".to_string())
    );
    assert_eq!(
        post(reclassify, "class=medium&reason=user_unknown"),
        (400, "class must be hard or soft\n".to_string())
    );
    assert_eq!(
        post(reclassify, "class=hard&reason=user_unknown"),
        (404, "no such bounce\n".to_string())
    );
    assert_eq!(
        post("/admin/bounces/999999/confirm", ""),
        (404, "no such bounce\n".to_string())
    );
    assert_eq!(
        post("/admin/bounces/999999/maybe", ""),
        (404, "no such decision\n".to_string())
    );
}

/// The campaign page's Pause, Resume and Cancel: the same use case as the command line,
/// behind the session and its CSRF token, audited with the operator's name; a cancel needs
/// its confirmation and cannot be undone.
#[test]
fn the_campaign_page_pauses_resumes_and_cancels_with_csrf_and_audit() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = sent(3);
    let serve = ServeProcess::start_with_env(&scratch, &ADMIN);
    let cookie = login(&serve);
    let page_url = format!("{}/admin/campaigns/test-campaign", serve.base);
    let page = || http_with("GET", &page_url, None, Some(&cookie)).2;
    let first = page();
    assert!(first.contains("id=\"run-state\">active<"), "{first}");
    let csrf = csrf_from(&first);
    let post = |action: &str, body: String| {
        http_with(
            "POST",
            &format!("{page_url}/{action}"),
            Some(("application/x-www-form-urlencoded", &body)),
            Some(&cookie),
        )
        .0
    };
    assert_eq!(post("pause", "csrf=forged&by=Maija".to_string()), 403);
    assert!(page().contains("id=\"run-state\">active<"));
    assert_eq!(post("pause", format!("csrf={csrf}&by=")), 400);
    assert_eq!(post("pause", format!("csrf={csrf}&by=Maija")), 303);
    assert!(page().contains("id=\"run-state\">paused<"));
    let cli = scratch.run(&["pause", "test-campaign"]);
    assert!(stdout(&cli).contains("already paused"), "{}", stdout(&cli));
    assert_eq!(post("resume", format!("csrf={csrf}&by=Maija")), 303);
    assert!(page().contains("id=\"run-state\">active<"));
    assert_eq!(
        post("cancel", format!("csrf={csrf}&by=Maija")),
        400,
        "unconfirmed"
    );
    assert!(page().contains("id=\"run-state\">active<"));
    assert_eq!(
        post("cancel", format!("csrf={csrf}&by=Maija&confirm=yes")),
        303
    );
    assert!(page().contains("id=\"run-state\">cancelled<"));
    assert_eq!(
        post("resume", format!("csrf={csrf}&by=Maija")),
        409,
        "a cancel is final"
    );
    assert_eq!(post("dance", format!("csrf={csrf}&by=Maija")), 404);
    let audited = common::text_occurrences(&scratch.db_url(), "admin: Maija");
    assert!(
        audited.contains(&("audit_log".to_string(), "actor".to_string())),
        "{audited:?}"
    );
}
