//! The promise that a suppressed address is never mailed again, tried with the sequences of
//! commands that broke it: a key change after import, a re-classified bounce of an address that
//! also opted out, forged bounces, and erasure leaving the address in the audit log or in the
//! database file's free pages.

mod common;

use common::{
    Scratch, SmtpServer, delivered, dsn, ingest_stdin, json_list, sent_via_smtp, stderr, stdout,
};
use fairsend::audience::EmailAddress;
use fairsend::store::Store;
use fairsend::suppress::{SuppressionReason, address_hash};

fn reasons(scratch: &Scratch, email: &str) -> Vec<SuppressionReason> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        let secret = common::unlock(scratch, &store).await;
        let address = EmailAddress::parse(email).unwrap();
        store
            .suppression_reasons(&address_hash(&secret, &address))
            .await
            .unwrap()
    })
}

fn outbox_recipients(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read(entry.path()).unwrap();
            out.push(common::parse_message(&raw).one("to").to_string());
        }
    }
    out
}

/// Hole 1: contacts imported with the development key, then an opt-out with a real secret.
/// Before the pin, the opt-out's hash matched no contact and the address was mailed.
#[test]
fn a_different_key_is_refused_until_the_database_is_rotated_to_it() {
    let scratch = Scratch::new("outbox:outbox").with_development_key();
    let emails = scratch.contacts("config/contacts/customers.csv", 4);
    scratch.import_customers();

    // The operator now sets a real secret and records an opt-out: refused, nothing written.
    let secret = "a-real-production-secret-of-more-than-32-bytes";
    let optout = scratch
        .command(&["optout", "add", &emails[1]])
        .env("FAIRSEND_SECRET", secret)
        .output()
        .unwrap();
    assert_eq!(optout.status.code(), Some(2), "{}", stderr(&optout));
    let message = stderr(&optout);
    assert!(
        message.contains("built-in development key") && message.contains("keys rotate"),
        "the error says what happened and how to fix it: {message}"
    );
    let list = json_list(&scratch, &["optout", "list", "--json"]);
    assert!(list.is_empty(), "nothing was written: {list:?}");

    // Moving the database to the secret keeps every hash: the opt-out now matches the contact.
    let rotate = scratch
        .command(&["keys", "rotate", "--from-development-key"])
        .env("FAIRSEND_SECRET", secret)
        .output()
        .unwrap();
    assert!(rotate.status.success(), "{}", stderr(&rotate));
    let optout = scratch
        .command(&["optout", "add", &emails[1]])
        .env("FAIRSEND_SECRET", secret)
        .output()
        .unwrap();
    assert!(optout.status.success(), "{}", stderr(&optout));
    let send = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .env("FAIRSEND_SECRET", secret)
        .output()
        .unwrap();
    assert!(send.status.success(), "{}", stderr(&send));
    let sent = outbox_recipients(&scratch.path("outbox"));
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        !sent.contains(&emails[1]),
        "the opted-out address was mailed"
    );

    // The development key no longer opens the database.
    let dev = scratch.run(&["optout", "list"]);
    assert_eq!(dev.status.code(), Some(2), "{}", stderr(&dev));
    // A second rotation needs the old secret; with it, the database moves again.
    let second = "another-production-secret-of-more-than-32-bytes!";
    let wrong = scratch
        .command(&["keys", "rotate"])
        .env("FAIRSEND_SECRET", second)
        .env(
            "FAIRSEND_SECRET_OLD",
            "not-the-secret-but-long-enough-to-be-one-0000",
        )
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("old secret given")
            && stderr(&wrong).contains("FAIRSEND_SECRET_OLD"),
        "{}",
        stderr(&wrong)
    );
    let right = scratch
        .command(&["keys", "rotate"])
        .env("FAIRSEND_SECRET", second)
        .env("FAIRSEND_SECRET_OLD", secret)
        .output()
        .unwrap();
    assert!(right.status.success(), "{}", stderr(&right));
    let list = scratch
        .command(&["optout", "list", "--json"])
        .env("FAIRSEND_SECRET", second)
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains(&emails[1]));
}

/// The development key cannot send through SMTP, even to loopback.
#[test]
fn the_development_key_sends_only_into_an_outbox() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:outbox").with_development_key();
    scratch.contacts("config/contacts/customers.csv", 2);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("development signing secret"));
    assert!(server.messages().is_empty());
}

/// Hole 2: hard bounce → opt-out → the bounce re-classified soft. The opt-out must stay.
#[test]
fn lifting_a_hard_bounce_keeps_the_opt_out_of_the_same_address() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server, emails) = sent_via_smtp(3);
    let target = &emails[1];
    let (verp, mid, _) = delivered(&server, target);
    let summary = ingest_stdin(
        &scratch,
        &dsn(&verp, target, &mid, "5.1.1", 550, "User unknown", "failed"),
    );
    assert_eq!(summary["suppressed_hard"], 1, "{summary}");
    let optout = scratch.run(&["optout", "add", target]);
    assert!(optout.status.success(), "{}", stderr(&optout));
    assert_eq!(
        reasons(&scratch, target),
        vec![SuppressionReason::HardBounce, SuppressionReason::OptOut]
    );

    // The operator decides the bounce was soft after all (as /admin/bounces does).
    let bounce_id = json_list(&scratch, &["bounces", "list", "--json"])[0]["id"]
        .as_i64()
        .unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        assert!(
            fairsend::inbound::apply::reclassify_bounce(
                &store,
                bounce_id,
                "soft",
                "mailbox_full",
                "operator"
            )
            .await
            .unwrap()
        );
    });
    assert_eq!(
        reasons(&scratch, target),
        vec![SuppressionReason::OptOut],
        "only the hard-bounce reason is lifted"
    );

    let second = common::send_next_campaign(&scratch, &server);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(!second.contains(target), "the opted-out address was mailed");

    // Every change is audited by hash, never by address.
    assert!(
        common::text_occurrences(&scratch.db_url(), target)
            .iter()
            .all(|(table, _)| table != "audit_log"),
        "the audit log names no address"
    );
}

/// Hole 3: a forged plain-text "bounce" listing addresses, with no VERP token, suppresses no
/// one; it waits in the queue as unverified until an operator confirms or dismisses it.
#[test]
fn forged_bounces_suppress_no_one_until_an_operator_confirms() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server, emails) = sent_via_smtp(8);
    let listing: String = emails
        .iter()
        .map(|e| format!("<{e}>: host mx.example said: 550 5.1.1 User unknown\r\n"))
        .collect();
    let forged = format!(
        "From: MAILER-DAEMON@attacker.example\r\nTo: bounces@bounces.example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged@attacker.example>\r\n\r\n\
         This is the mail system at host attacker.example.\r\n\r\n{listing}"
    );
    let summary = ingest_stdin(&scratch, &forged);
    assert_eq!(summary["suppressed_hard"], 0, "{summary}");
    for e in &emails {
        assert!(reasons(&scratch, e).is_empty(), "{e} was suppressed");
    }
    let queue = json_list(&scratch, &["bounces", "list", "--json"]);
    assert!(!queue.is_empty());
    assert!(
        queue.iter().all(|b| b["verification"] == "unverified"),
        "{queue:?}"
    );

    // A real DSN (our token) that lists many recipients proves none of them.
    let (verp, mid, _) = delivered(&server, &emails[0]);
    let mut many = dsn(
        &verp,
        &emails[0],
        &mid,
        "5.1.1",
        550,
        "User unknown",
        "failed",
    );
    let extra: String = emails[1..]
        .iter()
        .map(|e| format!("Final-Recipient: rfc822; {e}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"))
        .collect();
    many = many.replace(
        "--BOUNDARY\r\nContent-Type: text/rfc822-headers",
        &format!("{extra}--BOUNDARY\r\nContent-Type: text/rfc822-headers"),
    );
    let summary = ingest_stdin(&scratch, &many);
    assert_eq!(summary["suppressed_hard"], 0, "{summary}");
    assert!(reasons(&scratch, &emails[0]).is_empty());

    // The operator confirms one and dismisses another.
    let queue = json_list(&scratch, &["bounces", "list", "--json"]);
    let id_of = |email: &str| {
        queue
            .iter()
            .find(|b| b["recipient"] == email && b["verification"] == "unverified")
            .unwrap_or_else(|| panic!("{email} in {queue:?}"))["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let confirm = scratch.run(&["bounces", "confirm", &id_of(&emails[2]), "--by", "ops"]);
    assert!(confirm.status.success(), "{}", stderr(&confirm));
    let dismiss = scratch.run(&["bounces", "dismiss", &id_of(&emails[3]), "--by", "ops"]);
    assert!(dismiss.status.success(), "{}", stderr(&dismiss));
    assert_eq!(
        reasons(&scratch, &emails[2]),
        vec![SuppressionReason::HardBounce]
    );
    assert!(reasons(&scratch, &emails[3]).is_empty());
    let again = scratch.run(&["bounces", "dismiss", &id_of(&emails[4]), "--by", "ops"]);
    assert!(again.status.success());
    let twice = scratch.run(&["bounces", "confirm", &id_of(&emails[2]).to_string()]);
    assert_ne!(
        twice.status.code(),
        Some(0),
        "a decided bounce is not decided again"
    );
}

/// Hole 7: after `erase`, the address is nowhere — not in a live row (an operator's audit
/// record named it), not in the SQLite file's free pages, not in its write-ahead log.
#[test]
fn erasure_leaves_the_address_in_no_table_and_no_database_file() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server, emails) = sent_via_smtp(4);
    let target = emails[2].clone();
    let optout = scratch.run(&["optout", "add", &target, "--reason", "phone call"]);
    assert!(optout.status.success(), "{}", stderr(&optout));
    // An audit record written by an earlier version of the admin opt-out form named the address.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        store
            .audit("admin", "optout", &target, Some("phone call"))
            .await
            .unwrap();
    });
    let erase = scratch.run(&["erase", &target]);
    assert!(erase.status.success(), "{}", stderr(&erase));

    let left = common::text_occurrences(&scratch.db_url(), &target);
    assert!(left.is_empty(), "{target} still in {left:?}");
    let in_files = common::raw_file_occurrences(&scratch, &target);
    assert!(in_files.is_empty(), "{target} still in {in_files:?}");
    // The others are still there (the scan would find them).
    assert!(!common::text_occurrences(&scratch.db_url(), &emails[1]).is_empty());
    if !common::on_postgres() {
        assert!(!common::raw_file_occurrences(&scratch, &emails[1]).is_empty());
    }
    // Still suppressed, and still refused on import.
    assert_eq!(
        reasons(&scratch, &target).last(),
        Some(&SuppressionReason::Erased)
    );
}
