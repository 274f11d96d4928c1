//! Signup forms with double opt-in (issue 23, part 3), against a real `fairsend serve`, a real
//! SMTP server (aiosmtpd) and, for the whole path a person takes, real headless Chromium:
//! form → confirmation mail → link → contact with legal basis `consent` and its proof.
//! Expired and tampered links change nothing; a hundred submissions for one address send one
//! mail; suppressed addresses and bots get none.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    Scratch, ServeProcess, SmtpServer, http, parse_message, stderr, stdout, text_occurrences,
};
use sha2::Digest;

const FORM: &str = "application/x-www-form-urlencoded";

const SIGNUP_REGISTER: &str = r#"
[registers.newsletter]
title = { fi = "Testi Yhtiö Oy:n uutiskirje", sv = "Testi Yhtiö Oy:s nyhetsbrev", en = "Testi Yhtiö Oy newsletter" }
kind = "marketing"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_locale = "fi"

[registers.newsletter.signup]
purposes = { fi = "Lähetämme uutiskirjeen kerran kuussa.", sv = "Vi skickar nyhetsbrevet en gång i månaden.", en = "We send the newsletter once a month." }
notice_version = "2026-12-01"
"#;

/// A scratch whose transport is a real SMTP server and whose `newsletter` register has a form.
fn signup_scratch(extra_settings: &str) -> (Scratch, SmtpServer) {
    let scratch = Scratch::new("outbox:unused");
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    scratch.write(
        "config/fairsend.toml",
        &format!("{}\n{extra_settings}", common::fairsend_toml(&server.url())),
    );
    scratch.write(
        "config/registers.toml",
        &format!("{}{SIGNUP_REGISTER}", common::REGISTERS),
    );
    (scratch, server)
}

/// The form's notice hash, as a person's browser would send it back.
fn notice_hash(serve: &ServeProcess, lang: &str) -> String {
    let (status, _, body) = http(
        "GET",
        &format!("{}/s/newsletter?lang={lang}", serve.base),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let at = body.find("name=\"notice\" value=\"").expect("notice field") + 21;
    body[at..at + 64].to_string()
}

fn submit(serve: &ServeProcess, lang: &str, fields: &str) -> (u16, String) {
    let body = format!("{fields}&notice={}", notice_hash(serve, lang));
    let (status, _, page) = http(
        "POST",
        &format!("{}/s/newsletter?lang={lang}", serve.base),
        Some((FORM, &body)),
    );
    (status, page)
}

/// The confirmation link of the one message the server received for `rcpt`, pointed at `serve`.
fn confirmation_link(server: &SmtpServer, rcpt: &str, serve: &ServeProcess) -> String {
    let message = server
        .messages()
        .into_iter()
        .find(|m| m["rcpt_tos"][0] == rcpt)
        .expect("a confirmation message");
    let parsed = parse_message(message["data"].as_str().unwrap().as_bytes());
    let start = parsed
        .text
        .find("http://127.0.0.1:8080/s/")
        .expect("a link in the text part");
    let link: String = parsed.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link.replace("http://127.0.0.1:8080", &serve.base)
}

/// The legal basis and consent time of `email` in `register`, straight from the database.
fn membership(scratch: &Scratch, email: &str, register: &str) -> Option<(String, Option<String>)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::AnyPool::connect(&scratch.db_url()).await.unwrap();
        let row = sqlx::query(
            "SELECT m.legal_basis, m.consent_at FROM memberships m JOIN contacts c ON c.id = m.contact_id
              WHERE c.email = $1 AND m.register = $2",
        )
        .bind(email)
        .bind(register)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        row.map(|r| (r.get("legal_basis"), r.get("consent_at")))
    })
}

fn consent_show(scratch: &Scratch, email: &str) -> Vec<serde_json::Value> {
    let out = scratch.run(&["consent", "show", email, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn browser(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let run = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(run.status.success(), "browser failed: {}", stderr(&run));
    serde_json::from_str(stdout(&run).trim()).unwrap()
}

#[test]
fn a_person_signs_up_and_confirms_in_a_real_browser() {
    if !common::require(&[common::Tool::Aiosmtpd, common::Tool::Browser]) {
        return;
    }
    let (scratch, server) = signup_scratch("");
    let serve = ServeProcess::start(&scratch);
    let email = "pia.private@gmail.com";

    let seen = browser(&[
        "signup",
        &format!("{}/s/newsletter?lang=sv", serve.base),
        email,
        "Pia Privat",
        "",
    ]);
    let before = &seen["before"];
    assert_eq!(before["lang"], "sv");
    assert_eq!(before["h1"], "Beställ: Testi Yhtiö Oy:s nyhetsbrev");
    assert_eq!(before["notice_before_button"], true, "{before}");
    assert_eq!(before["honeypot_visible"], false);
    let notice = before["notice"].as_str().unwrap();
    for part in [
        "artikel 13",
        "Testi Yhtiö Oy, FO-nummer 1234567-1",
        "Vi skickar nyhetsbrevet en gång i månaden.",
        "ditt samtycke (artikel 6.1 a",
        "24 månader",
        "återkalla ditt samtycke",
        "Dataombudsmannens byrå",
        "privacy@example.com",
    ] {
        assert!(notice.contains(part), "the notice lacks {part:?}: {notice}");
    }
    assert_eq!(seen["after"]["h1"], "Kontrollera din e-post");
    assert!(
        membership(&scratch, email, "newsletter").is_none(),
        "no contact before the confirmation"
    );

    assert_eq!(server.wait_for_messages(1, Duration::from_secs(20)), 1);
    let message = &server.messages()[0];
    assert_eq!(message["rcpt_tos"][0], email);
    assert_eq!(message["mail_from"], "bounces@bounces.example.com");
    let parsed = parse_message(message["data"].as_str().unwrap().as_bytes());
    let subject = mail_parser::MessageParser::default()
        .parse(message["data"].as_str().unwrap().as_bytes())
        .and_then(|m| m.subject().map(str::to_string));
    assert_eq!(
        subject.as_deref(),
        Some("Bekräfta din beställning: Testi Yhtiö Oy:s nyhetsbrev")
    );
    assert!(parsed.text.contains(email) && parsed.html.contains("Bekräfta beställningen"));
    let link = confirmation_link(&server, email, &serve);

    let seen = browser(&["confirm", &link]);
    assert_eq!(seen["before"]["lang"], "sv");
    assert_eq!(seen["before"]["button"], "Bekräfta beställningen");
    assert_eq!(seen["after"]["h1"], "Beställningen är bekräftad");

    let (basis, consent_at) = membership(&scratch, email, "newsletter").expect("a contact");
    assert_eq!(basis, "consent");
    assert!(consent_at.unwrap().starts_with("20"));
    let proofs = consent_show(&scratch, email);
    assert_eq!(proofs.len(), 1, "{proofs:?}");
    let proof = &proofs[0];
    assert_eq!(proof["register"], "newsletter");
    assert_eq!(proof["locale"], "sv");
    assert_eq!(proof["notice_version"], "2026-12-01");
    assert_eq!(proof["request_ip"], "127.0.0.0/24");
    assert_eq!(proof["confirm_ip"], "127.0.0.0/24");
    assert!(proof["confirmed_at"].as_i64() >= proof["requested_at"].as_i64());
    // The hash is the SHA-256 of exactly the notice the form shows.
    let (_, _, page) = http("GET", &format!("{}/s/newsletter?lang=sv", serve.base), None);
    let start = page.find("<section class=\"notice\"").unwrap();
    let end = page[start..].find("</section>").unwrap() + start + "</section>".len();
    let shown = &page[start..end];
    let digest = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(shown.as_bytes()));
    assert_eq!(proof["notice_sha256"], digest.as_str());
    assert_eq!(proof["notice_text"], shown);
    let text = stdout(&scratch.run(&["consent", "show", email]));
    assert!(text.contains("notice version: 2026-12-01") && text.contains("127.0.0.0/24"));

    // Erasure removes the proof with the rest of the person's data.
    let erase = scratch.run(&["erase", email]);
    assert!(erase.status.success(), "{}", stderr(&erase));
    assert!(consent_show(&scratch, email).is_empty());
    let left = text_occurrences(&scratch.db_url(), "pia.private");
    assert!(left.is_empty(), "the address is still in {left:?}");
    let left = text_occurrences(&scratch.db_url(), "Pia Privat");
    assert!(left.is_empty(), "the name is still in {left:?}");
}

#[test]
fn expired_and_tampered_links_change_nothing() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server) =
        signup_scratch("[signup]\nlink_validity = \"3s\"\nresend_after = \"3s\"\n");
    let serve = ServeProcess::start(&scratch);
    let email = "tuomas@firma.example";
    let (status, page) = submit(&serve, "fi", &format!("email={email}&name=Tuomas"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(server.wait_for_messages(1, Duration::from_secs(20)), 1);
    let link = confirmation_link(&server, email, &serve);

    // A link scanner's GET shows the button and confirms nothing.
    let (status, _, page) = http("GET", &link, None);
    assert_eq!(status, 200);
    assert!(page.contains("Vahvista tilaus"), "{page}");
    // One character changed in the token: a clear page, nothing written.
    let (head, token) = link.rsplit_once('/').unwrap();
    let mut bytes = token.as_bytes().to_vec();
    bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
    let tampered = format!("{head}/{}", String::from_utf8(bytes).unwrap());
    for method in ["GET", "POST"] {
        let (status, _, page) = http(method, &tampered, Some((FORM, "confirm=signup")));
        assert_eq!(status, 404, "{method}: {page}");
        assert!(page.contains("Linkki ei ole voimassa"), "{page}");
    }
    // The right token under another register's path is no link either.
    let (status, _, _) = http(
        "POST",
        &link.replace("/s/newsletter/", "/s/customers/"),
        None,
    );
    assert_eq!(status, 404);
    assert!(membership(&scratch, email, "newsletter").is_none());

    std::thread::sleep(Duration::from_millis(3500));
    let (status, _, page) = http("POST", &link, Some((FORM, "confirm=signup")));
    assert_eq!(status, 404, "an expired link: {page}");
    assert!(page.contains("vanhentunut"), "{page}");
    assert!(membership(&scratch, email, "newsletter").is_none());
    assert!(consent_show(&scratch, email).is_empty());

    // The expired request is swept away: an unconfirmed address is not kept.
    assert!(!text_occurrences(&scratch.db_url(), "tuomas@firma").is_empty());
    drop(serve);
    let swept = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = fairsend::store::Store::open(&scratch.db_url())
            .await
            .unwrap();
        let signup = fairsend::app::signup::Signup {
            secret: common::unlock(&scratch, &store).await,
            store,
            config: std::sync::Arc::new(
                fairsend::config::ConfigDir::load(&scratch.path("config")).unwrap(),
            ),
            mailer: None,
        };
        signup.sweep().await.unwrap()
    });
    assert_eq!(swept, 1);
    let left = text_occurrences(&scratch.db_url(), "tuomas@firma");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_hundred_signups_send_one_mail_and_none_go_to_suppressed_addresses_or_bots() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server) = signup_scratch("");
    let serve = ServeProcess::start_with(&scratch, &[], &["--signup-rate-limit", "0"]);
    let victim = "victim@firma.example";
    let hash = notice_hash(&serve, "en");
    let url = format!("{}/s/newsletter?lang=en", serve.base);
    let pages: Vec<(u16, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| {
                            let body = format!("email={victim}&notice={hash}");
                            let (status, _, page) = http("POST", &url, Some((FORM, &body)));
                            (status, page)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(pages.len(), 100);
    assert!(pages.iter().all(|(status, _)| *status == 200));
    assert!(
        pages.iter().all(|(_, page)| *page == pages[0].1),
        "every submission gets the same page"
    );
    server.wait_for_messages(2, Duration::from_secs(3));
    let to_victim = |server: &SmtpServer| {
        server
            .messages()
            .iter()
            .filter(|m| m["rcpt_tos"][0] == victim)
            .count()
    };
    assert_eq!(to_victim(&server), 1, "one mail for a hundred signups");

    // A suppressed address gets none, and the page says the same.
    let out = scratch.run(&["optout", "add", "gone@firma.example"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, page) = submit(&serve, "en", "email=gone@firma.example");
    assert_eq!((status, &page), (200, &pages[0].1));
    // A bot that fills the hidden field gets none either.
    let (status, page) = submit(&serve, "en", "email=bot@firma.example&homepage=http://spam");
    assert_eq!((status, &page), (200, &pages[0].1));
    // A confirmed member is not mailed again.
    let link = confirmation_link(&server, victim, &serve);
    let (status, _, _) = http("POST", &link, Some((FORM, "confirm=signup")));
    assert_eq!(status, 200);
    assert_eq!(
        membership(&scratch, victim, "newsletter").unwrap().0,
        "consent"
    );
    // Clicking again shows the result again and changes nothing.
    let (status, _, page) = http("POST", &link, Some((FORM, "confirm=signup")));
    assert_eq!(status, 200);
    assert!(page.contains("Subscription confirmed"), "{page}");

    std::thread::sleep(Duration::from_secs(2));
    let messages = server.messages();
    assert_eq!(
        messages.len(),
        1,
        "only the first confirmation: {messages:?}"
    );
    for email in ["gone@firma.example", "bot@firma.example"] {
        assert!(membership(&scratch, email, "newsletter").is_none());
    }

    // `erase` removes the consent proof (and the confirmed request's times) with the rest.
    assert_eq!(consent_show(&scratch, victim).len(), 1);
    let erase = scratch.run(&["erase", victim]);
    assert!(erase.status.success(), "{}", stderr(&erase));
    assert!(
        stdout(&erase).contains("2 signup/consent record(s)"),
        "{}",
        stdout(&erase)
    );
    assert!(consent_show(&scratch, victim).is_empty());
    let left = text_occurrences(&scratch.db_url(), "victim@firma");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_input_is_shown_on_the_form_and_submissions_are_rate_limited() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server) = signup_scratch("");
    let serve = ServeProcess::start_with(&scratch, &[], &["--signup-rate-limit", "3"]);
    // Registers without `signup` have no form.
    let (status, _, _) = http("GET", &format!("{}/s/customers", serve.base), None);
    assert_eq!(status, 404);
    let (status, _, _) = http("GET", &format!("{}/s/nosuch", serve.base), None);
    assert_eq!(status, 404);

    let (status, page) = submit(&serve, "en", "email=not-an-address&name=X");
    assert_eq!(status, 422);
    assert!(page.contains("The email address is not valid"), "{page}");
    assert!(
        page.contains("value=\"not-an-address\""),
        "the form keeps what was typed"
    );
    let (status, page) = submit(&serve, "en", "email=ok@firma.example&name=A%0D%0ABcc:%20x");
    assert_eq!(status, 422, "a line break in the name is refused: {page}");
    // A form shown before the notice changed is shown again, not accepted.
    let (status, _, page) = http(
        "POST",
        &format!("{}/s/newsletter?lang=en", serve.base),
        Some((FORM, "email=ok@firma.example&notice=0000")),
    );
    assert_eq!(status, 200);
    assert!(page.contains("privacy notice has been updated"), "{page}");

    // Three submissions a minute from one client, then 429 (the form GETs are not counted).
    let (status, _) = submit(&serve, "en", "email=fourth@firma.example");
    assert_eq!(status, 429, "the fourth POST of the minute");
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.messages().is_empty(), "{:?}", server.messages());

    // A configuration that would keep unconfirmed addresses past their link is refused.
    let settings = std::fs::read_to_string(scratch.path("config/fairsend.toml")).unwrap();
    scratch.write(
        "config/fairsend.toml",
        &format!("{settings}\n[signup]\nlink_validity = \"48h\"\nresend_after = \"3d\"\n"),
    );
    let out = scratch.run(&["consent", "show", "someone@firma.example"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("fairsend.toml") && stderr(&out).contains("[signup] resend_after"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_development_key_sends_no_signup_mail_through_smtp() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server) = signup_scratch("");
    let scratch = scratch.with_development_key();
    let mut child = scratch
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "none",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve started with the development key and an SMTP transport");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("development signing secret"), "{err}");
}
