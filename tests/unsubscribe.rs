//! The unsubscribe pages, RFC 8058 one-click, erasure, and an opt-out that lands while a
//! campaign is being sent.

mod common;

use std::time::Duration;

use common::{
    Scratch, ServeProcess, SmtpServer, http, states, stderr, stdout, text_occurrences,
    unsubscribe_url,
};

const CONTACTS: &str = "email,first_name,last_name,company,title,locale\n\
    karin.nyberg@nyberg.example,Karin,Nybergson,Nyberg Industri Ab,VD,sv\n\
    aino.aaltonen@firma.example,Aino,Aaltonen,Firma Oy,CEO,fi\n\
    sarah.jones@northwind.example,Sarah,Jonesworth,Northwind Ltd,CIO,en\n";

fn sent_scratch() -> Scratch {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/contacts/customers.csv", CONTACTS);
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    scratch
}

fn url_for(scratch: &Scratch, serve: &ServeProcess, email: &str) -> String {
    for entry in std::fs::read_dir(scratch.path("outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        if String::from_utf8_lossy(&raw).contains(&format!("X-Fairsend-Envelope-To: <{email}>")) {
            return unsubscribe_url(&raw).replace("http://127.0.0.1:8080", &serve.base);
        }
    }
    panic!("no message for {email}");
}

fn optouts(scratch: &Scratch) -> Vec<serde_json::Value> {
    let out = scratch.run(&["optout", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Vec<serde_json::Value>>(&stdout(&out)).unwrap()
}

#[test]
fn page_confirm_then_erase_leaves_no_personal_data() {
    let scratch = sent_scratch();
    let serve = ServeProcess::start(&scratch);
    let url = url_for(&scratch, &serve, "karin.nyberg@nyberg.example");

    // GET shows the page in the contact's language and changes nothing.
    let (status, head, body) = http("GET", &url, None);
    assert_eq!(status, 200);
    assert!(
        body.contains("lang=\"sv\"") && body.contains("Bekräfta avregistrering"),
        "{body}"
    );
    assert!(
        !body.contains("karin.nyberg@"),
        "the page does not show the full address"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store")
    );
    assert!(optouts(&scratch).is_empty(), "a GET must not unsubscribe");

    // Confirm from the page (a form POST, no cookies, no JavaScript).
    let (status, _, body) = http(
        "POST",
        &url,
        Some(("application/x-www-form-urlencoded", "confirm=unsubscribe")),
    );
    assert_eq!(status, 200);
    assert!(body.contains("Avregistreringen är bekräftad"), "{body}");
    assert!(
        body.contains("Radera mina uppgifter"),
        "erasure is offered as a separate action"
    );
    let list = optouts(&scratch);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["source"], "page");
    assert_eq!(list[0]["email"], "karin.nyberg@nyberg.example");
    assert_eq!(list[0]["campaign"], "test-campaign");
    assert!(list[0]["at"].as_str().unwrap().starts_with("20"));

    // Erasure needs its own confirmation.
    let erase_url = format!("{url}/erase");
    let (status, _, _) = http(
        "POST",
        &erase_url,
        Some(("application/x-www-form-urlencoded", "")),
    );
    assert_eq!(status, 400);
    let (status, _, body) = http(
        "POST",
        &erase_url,
        Some(("application/x-www-form-urlencoded", "confirm=erase")),
    );
    assert_eq!(status, 200);
    assert!(body.contains("Dina uppgifter har raderats"), "{body}");

    for needle in ["karin.nyberg", "Nybergson", "Nyberg Industri"] {
        let left = text_occurrences(&scratch.db_url(), needle);
        assert!(left.is_empty(), "{needle} still in {left:?}");
    }
    // The other contacts are untouched.
    assert!(!text_occurrences(&scratch.db_url(), "aino.aaltonen").is_empty());
    let list = optouts(&scratch);
    assert_eq!(list.len(), 1);
    assert!(
        list[0]["email"].is_null(),
        "only the keyed hash remains: {list:?}"
    );

    // A later import of the same address is refused with a clear message.
    let import = scratch.run(&[
        "import",
        "config/contacts/customers.csv",
        "--register",
        "customers",
    ]);
    assert_eq!(import.status.code(), Some(1));
    assert!(
        stderr(&import).contains("customers.csv:2: email: this person's data was erased"),
        "{}",
        stderr(&import)
    );
    assert!(text_occurrences(&scratch.db_url(), "karin.nyberg").is_empty());
    // The token is dead now: a generic 404.
    assert_eq!(http("GET", &url, None).0, 404);
}

#[test]
fn tampered_token_is_404_and_one_click_is_idempotent() {
    let scratch = sent_scratch();
    let serve = ServeProcess::start(&scratch);
    let url = url_for(&scratch, &serve, "aino.aaltonen@firma.example");
    let token = url.rsplit('/').next().unwrap();
    let mut tampered = token.to_string().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'a' { b'b' } else { b'a' };
    let tampered_url = url.replace(token, std::str::from_utf8(&tampered).unwrap());
    for (method, body) in [
        ("GET", None),
        (
            "POST",
            Some((
                "application/x-www-form-urlencoded",
                "List-Unsubscribe=One-Click",
            )),
        ),
    ] {
        let (status, _, page) = http(method, &tampered_url, body);
        assert_eq!(status, 404, "{method} tampered");
        assert!(
            !page.contains("firma.example") && !page.contains("Aino"),
            "reveals nothing"
        );
    }
    assert_eq!(
        http("GET", &format!("{}/u/not-a-token", serve.base), None).0,
        404
    );
    assert!(optouts(&scratch).is_empty(), "nothing changed");

    // RFC 8058: the provider POSTs List-Unsubscribe=One-Click (form-encoded or multipart).
    let (status, _, _) = http(
        "POST",
        &url,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(status, 200);
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
    let (status, _, body) = http(
        "POST",
        &url,
        Some(("multipart/form-data; boundary=b", multipart)),
    );
    assert_eq!((status, body.as_str()), (200, "unsubscribed\n"));
    // A POST that is neither one-click nor the page's confirmation changes nothing.
    let other = url_for(&scratch, &serve, "sarah.jones@northwind.example");
    assert_eq!(
        http(
            "POST",
            &other,
            Some(("application/x-www-form-urlencoded", "hello=1"))
        )
        .0,
        400
    );
    let list = optouts(&scratch);
    assert_eq!(list.len(), 1, "two POSTs, one opt-out: {list:?}");
    assert_eq!(list[0]["source"], "one_click");

    // The next campaign run skips the address.
    let again = scratch.run(&["status", "test-campaign", "--json"]);
    assert!(again.status.success());
}

#[test]
fn manual_optout_and_erase_from_the_cli() {
    let scratch = sent_scratch();
    let out = scratch.run(&[
        "optout",
        "add",
        "Sarah.Jones@northwind.example",
        "--reason",
        "asked by phone",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = scratch.run(&["optout", "add", "sarah.jones@northwind.example"]);
    assert!(stdout(&again).contains("already opted out"));
    let list = optouts(&scratch);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["source"].as_str(), list[0]["detail"].as_str()),
        (Some("manual"), Some("asked by phone"))
    );
    let erase = scratch.run(&["erase", "sarah.jones@northwind.example"]);
    assert!(erase.status.success(), "{}", stderr(&erase));
    assert!(text_occurrences(&scratch.db_url(), "sarah.jones").is_empty());
    assert!(text_occurrences(&scratch.db_url(), "asked by phone").is_empty());
    assert!(text_occurrences(&scratch.db_url(), "Jonesworth").is_empty());
    let bad = scratch.run(&["optout", "add", "not an address"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn one_click_during_a_running_campaign_stops_later_messages() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused").on_one_connection();
    let emails = scratch.contacts("config/contacts/customers.csv", 40);
    let target = emails.last().unwrap().clone();
    let server = SmtpServer::start(scratch.dir.path(), &["--delay", "0.05"]);
    let serve = ServeProcess::start(&scratch);
    let mut send = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--transport",
            &server.url(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(server.wait_for_messages(5, Duration::from_secs(60)) >= 5);

    // The target's token, as its message will carry it.
    let token = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = fairsend::store::Store::open(&scratch.db_url())
            .await
            .unwrap();
        let campaign_id = store.campaign_id("test-campaign").await.unwrap();
        let address = fairsend::audience::EmailAddress::parse(&target).unwrap();
        let row = store
            .outbox_row_for(campaign_id, &address)
            .await
            .unwrap()
            .expect("queued");
        fairsend::suppress::sign(
            &common::unlock(&scratch, &store).await,
            fairsend::suppress::TokenPurpose::Unsubscribe,
            row,
        )
    });
    let (status, _, _) = http(
        "POST",
        &format!("{}/u/{token}", serve.base),
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    );
    assert_eq!(status, 200);
    let received_at_optout = server.messages().len();
    assert!(
        received_at_optout < emails.len() - 1,
        "the opt-out landed mid-campaign"
    );

    let status = send.wait().unwrap();
    assert!(status.success());
    let received: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_string())
        .collect();
    assert!(
        !received.contains(&target),
        "{target} opted out mid-campaign and must receive nothing"
    );
    assert_eq!(received.len(), emails.len() - 1);
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_u64(), s["suppressed"].as_u64()),
        (Some(emails.len() as u64 - 1), Some(1)),
        "{s}"
    );
}
