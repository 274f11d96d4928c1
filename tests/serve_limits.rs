//! `serve` under hostile clients, over real sockets: a client that sends its header or body
//! slowly is dropped; connections are capped per client address while the unsubscribe page
//! keeps answering others; the public pages are rate-limited per client; a flood of tracking
//! requests counts one open and one click per (message, link) per minute, and an unknown or
//! invalid token writes nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::net::{connect_from, http_from};
use common::{Scratch, ServeProcess, SmtpServer, http, parse_message, stderr, unsubscribe_url};

/// A scratch with one message sent into the outbox directory; its unsubscribe path.
fn one_message() -> (Scratch, String) {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 1);
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entry = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "eml"))
        .expect("a message in the outbox");
    let url = unsubscribe_url(&std::fs::read(entry).unwrap());
    let path = url.replace("http://127.0.0.1:8080", "");
    (scratch, path)
}

/// Whether the server closed `stream` (or answered and closed) within `within`, while the
/// client keeps sending one more header line every half second.
fn closed_by_server_while_trickling(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let mut i = 0;
    while started.elapsed() < within {
        if stream
            .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .is_err()
        {
            return Some(started.elapsed());
        }
        i += 1;
        match stream.read(&mut buf) {
            Ok(_) => return Some(started.elapsed()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn a_client_sending_its_header_or_body_slowly_is_dropped() {
    let scratch = Scratch::new("outbox:unused");
    let serve = ServeProcess::start_with(
        &scratch,
        &[],
        &["--header-timeout", "2", "--request-timeout", "2"],
    );
    let mut slow = connect_from("127.0.0.2", &serve.base);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let closed = closed_by_server_while_trickling(&mut slow, Duration::from_secs(8))
        .expect("the server keeps a client that never finishes its header");
    assert!(closed >= Duration::from_millis(1500), "{closed:?}");

    // A body announced but sent slowly: answered with 408 once the request time is up.
    let mut slow = connect_from("127.0.0.3", &serve.base);
    slow.write_all(
        b"POST /u/whatever HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 1000\r\n\r\nconfirm=",
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let _ = slow.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "after {:?}: {response:?}",
        started.elapsed()
    );
}

/// Whether the server closed the connection (it sent nothing else on it).
fn is_closed(mut stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    match stream.read(&mut [0u8; 64]) {
        // End of stream, or an answer (the server answers nothing to a request line alone).
        Ok(0..) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn connections_are_capped_per_client_and_the_page_keeps_answering_others() {
    let (scratch, path) = one_message();
    let serve = ServeProcess::start_with(
        &scratch,
        &[],
        &[
            "--max-connections-per-client",
            "10",
            "--header-timeout",
            "30",
        ],
    );
    // 60 stalled connections from one address: a request line and nothing more.
    let stalled: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = connect_from("127.0.0.2", &serve.base);
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed = stalled.iter().filter(|s| is_closed(s)).count();
    assert_eq!(closed, 50, "all but the client's 10 connections are closed");
    // Meanwhile the unsubscribe page answers another client at once.
    let started = Instant::now();
    let (status, _, body) = http_from(
        "127.0.0.3",
        "GET",
        &format!("{}{path}", serve.base),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(stalled);
}

#[test]
fn at_the_connection_cap_a_new_client_takes_the_place_of_the_oldest_stalled_one() {
    let (scratch, path) = one_message();
    let serve = ServeProcess::start_with(
        &scratch,
        &[],
        &[
            "--max-connections",
            "10",
            "--max-connections-per-client",
            "100",
            "--header-timeout",
            "30",
        ],
    );
    // Ten stalled connections, each from its own address, fill the cap.
    let stalled: Vec<TcpStream> = (0..10)
        .map(|i| {
            let mut s = connect_from(&format!("127.0.1.{}", i + 1), &serve.base);
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stalled.iter().filter(|s| is_closed(s)).count(), 0);
    let started = Instant::now();
    for i in 0..3 {
        let (status, _, body) = http_from(
            &format!("127.0.2.{}", i + 1),
            "GET",
            &format!("{}{path}", serve.base),
            None,
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once, not after the header timeout: {:?}",
        started.elapsed()
    );
    // Each request made room, unless the previous one's slot was already free again.
    let closed: Vec<bool> = stalled.iter().map(is_closed).collect();
    let n = closed.iter().filter(|c| **c).count();
    assert!(
        (1..=3).contains(&n) && closed[..n].iter().all(|c| *c),
        "the oldest stalled connections made room: {closed:?}"
    );
}

#[test]
fn the_public_pages_are_rate_limited_per_client() {
    let (scratch, path) = one_message();
    let serve = ServeProcess::start_with(&scratch, &[], &["--public-rate-limit", "2"]);
    let url = format!("{}{path}", serve.base);
    let statuses: Vec<(u16, String)> = (0..30)
        .map(|_| {
            let (status, head, _) = http_from("127.0.0.2", "GET", &url, None, None);
            (status, head)
        })
        .collect();
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<&String> = statuses
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, h)| h)
        .collect();
    assert_eq!(ok + limited.len(), 30);
    assert!(
        (8..=12).contains(&ok),
        "the burst of 8, and a few at 2/s: {ok}"
    );
    assert!(
        limited
            .iter()
            .all(|h| h.to_ascii_lowercase().contains("retry-after: ")),
        "{limited:?}"
    );
    // The opt-out itself is never refused for load (mailbox providers send their users'
    // one-click requests from a few addresses).
    let (status, _, body) = http_from(
        "127.0.0.2",
        "POST",
        &url,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
        None,
    );
    assert_eq!((status, body.as_str()), (200, "unsubscribed\n"));
    // Other clients, and the health check, are not held back by this one.
    assert_eq!(http_from("127.0.0.3", "GET", &url, None, None).0, 200);
    assert_eq!(
        http_from(
            "127.0.0.2",
            "GET",
            &format!("{}/healthz", serve.base),
            None,
            None
        )
        .0,
        200
    );
}

const AB_CAMPAIGN: &str = r#"name = "ab-campaign"
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

/// (kind, link) → rows of message_events.
fn events(db_url: &str) -> Vec<(String, Option<i64>, i64)> {
    sqlx::any::install_default_drivers();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::AnyPool::connect(db_url).await.expect("open db");
        sqlx::query_as(
            "SELECT kind, link, COUNT(*) FROM message_events GROUP BY kind, link ORDER BY kind, link",
        )
        .fetch_all(&pool)
        .await
        .expect("events")
    })
}

#[test]
fn a_tracking_flood_counts_once_a_minute_and_bad_tokens_write_nothing() {
    let scratch = Scratch::new("outbox:unused");
    let toml = common::fairsend_toml("outbox:unused").replace(
        "retention_months = 24",
        "retention_months = 24\ndeclares_tracking = true",
    );
    scratch.write("config/fairsend.toml", &toml);
    scratch.write("config/campaigns/ab.toml", AB_CAMPAIGN);
    scratch.write(
        "config/content/body.md",
        "Hello {{ first_name }},\n\nsee [our offer](https://www.example.com/offer) and [the agenda](https://www.example.com/agenda).\n",
    );
    scratch.contacts("config/contacts/customers.csv", 2);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/ab.toml",
        "--transport",
        &server.url(),
        "--no-wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let serve = ServeProcess::start_with(&scratch, &[], &["--public-rate-limit", "0"]);
    let message = &server.messages()[0];
    let links: Vec<String> = parse_message(message["data"].as_str().unwrap().as_bytes())
        .html
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| u.contains("/c/"))
        .map(|u| u.replace("http://127.0.0.1:8080", &serve.base))
        .collect();
    assert_eq!(links.len(), 2);

    // The outbox row of the message, from its click token; its open pixel, signed alike.
    let secret = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = fairsend::store::Store::open(&scratch.db_url())
            .await
            .unwrap();
        common::unlock(&scratch, &store).await
    });
    let click_token = links[0].rsplit('/').next().unwrap();
    let signed = fairsend::suppress::verify(
        &secret,
        fairsend::suppress::TokenPurpose::Click,
        click_token,
    )
    .expect("a valid click token");
    let outbox_id = signed.div_euclid(64);
    let pixel = format!(
        "{}/o/{}",
        serve.base,
        fairsend::suppress::sign(&secret, fairsend::suppress::TokenPurpose::Open, outbox_id)
    );

    for _ in 0..40 {
        assert_eq!(http("GET", &links[0], None).0, 303, "every click redirects");
        let (status, head, _) = http("GET", &pixel, None);
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: image/gif")
        );
    }
    assert_eq!(http("GET", &links[1], None).0, 303);

    // Tokens that are not the server's, or name no message, write nothing.
    let mut tampered = click_token.as_bytes().to_vec();
    tampered[3] = if tampered[3] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = fairsend::suppress::sign(
        &secret,
        fairsend::suppress::TokenPurpose::Open,
        outbox_id + 1_000_000,
    );
    let unknown_click = fairsend::suppress::sign(
        &secret,
        fairsend::suppress::TokenPurpose::Click,
        (outbox_id + 1_000_000) * 64,
    );
    for _ in 0..20 {
        assert_eq!(
            http("GET", &format!("{}/c/{tampered}", serve.base), None).0,
            404
        );
        assert_eq!(
            http("GET", &format!("{}/o/{tampered}", serve.base), None).0,
            200
        );
        assert_eq!(
            http("GET", &format!("{}/o/{unknown}", serve.base), None).0,
            200
        );
        assert_eq!(
            http("GET", &format!("{}/c/{unknown_click}", serve.base), None).0,
            404
        );
    }

    let link_of = |url: &str| {
        fairsend::suppress::verify(
            &secret,
            fairsend::suppress::TokenPurpose::Click,
            url.rsplit('/').next().unwrap(),
        )
        .unwrap()
        .rem_euclid(64)
    };
    let mut expected = vec![
        ("click".to_string(), Some(link_of(&links[0])), 1),
        ("click".to_string(), Some(link_of(&links[1])), 1),
        ("open".to_string(), None, 1),
    ];
    expected.sort();
    let got = events(&scratch.db_url());
    // A minute boundary may fall inside the flood: then one more of each, never more.
    assert!(
        got == expected
            || got
                .iter()
                .zip(&expected)
                .all(|(g, e)| g.0 == e.0 && g.1 == e.1 && (1..=2).contains(&g.2)),
        "{got:?}"
    );
    assert_eq!(got.len(), 3, "{got:?}");
}
