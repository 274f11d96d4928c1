//! Ingesting replies, DSNs and complaints: opt-outs by reply and by mailto, auto-replies that
//! are not opt-outs, hard bounces suppressed and skipped by the next campaign, soft ones not.

mod common;

use common::{delivered, dsn, ingest_stdin, json_list, sent_via_smtp, states, stderr, stdout};

#[test]
fn hard_bounce_is_suppressed_and_skipped_next_time_soft_is_not() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server, emails) = sent_via_smtp(6);
    let (hard_rcpt, soft_rcpt) = (&emails[1], &emails[4]);
    let (verp_h, mid_h, _) = delivered(&server, hard_rcpt);
    let (verp_s, mid_s, _) = delivered(&server, soft_rcpt);

    let hard = dsn(
        &verp_h,
        hard_rcpt,
        &mid_h,
        "5.1.1",
        550,
        "<user>: Recipient address rejected: User unknown",
        "failed",
    );
    let summary = ingest_stdin(&scratch, &hard);
    assert_eq!(
        (summary["dsn"].as_i64(), summary["suppressed_hard"].as_i64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    let soft = dsn(
        &verp_s,
        soft_rcpt,
        &mid_s,
        "4.2.2",
        452,
        "Mailbox full",
        "delayed",
    );
    let summary = ingest_stdin(&scratch, &soft);
    assert_eq!(
        (summary["dsn"].as_i64(), summary["suppressed_hard"].as_i64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    // The same message again counts once.
    let again = ingest_stdin(&scratch, &hard);
    assert_eq!(
        (again["duplicates"].as_i64(), again["new"].as_i64()),
        (Some(1), Some(0))
    );

    let list = json_list(&scratch, &["bounces", "list", "--json"]);
    assert_eq!(list.len(), 2, "{list:?}");
    let h = list
        .iter()
        .find(|b| b["recipient"] == hard_rcpt.as_str())
        .unwrap();
    assert_eq!(
        (
            h["class"].as_str(),
            h["reason"].as_str(),
            h["action"].as_str()
        ),
        (Some("hard"), Some("user_unknown"), Some("suppressed"))
    );
    assert_eq!(
        (h["status"].as_str(), h["campaign"].as_str()),
        (Some("5.1.1"), Some("test-campaign"))
    );
    let s = list
        .iter()
        .find(|b| b["recipient"] == soft_rcpt.as_str())
        .unwrap();
    assert_eq!(
        (
            s["class"].as_str(),
            s["reason"].as_str(),
            s["action"].as_str()
        ),
        (Some("soft"), Some("mailbox_full"), Some("recorded"))
    );
    // The hard-bounced row is marked.
    assert_eq!(states(&scratch, "test-campaign")["failed"], 1);

    // The next campaign skips the hard bounce and still sends to the soft one.
    let second = common::send_next_campaign(&scratch, &server);
    assert_eq!(second.len(), 5);
    assert!(!second.contains(hard_rcpt));
    assert!(second.contains(soft_rcpt));
    assert_eq!(states(&scratch, "next-campaign")["suppressed"], 1);
}

#[test]
fn a_bounce_for_an_unknown_address_is_still_listed() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, _server, _) = sent_via_smtp(1);
    let raw = dsn(
        "someone@elsewhere.example",
        "stranger@nowhere.example",
        "<x@y>",
        "5.1.1",
        550,
        "User unknown",
        "failed",
    );
    let summary = ingest_stdin(&scratch, &raw);
    assert_eq!(summary["dsn"], 1);
    let list = json_list(&scratch, &["bounces", "list", "--json"]);
    assert_eq!(list[0]["recipient"], "stranger@nowhere.example");
    assert!(list[0]["campaign"].is_null());
}

#[test]
fn replies_asking_to_be_removed_opt_out_and_auto_replies_do_not() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server, emails) = sent_via_smtp(4);
    let (_, mid0, subject0) = delivered(&server, &emails[0]);
    let (_, mid1, subject1) = delivered(&server, &emails[1]);

    let reply = format!(
        "From: First0 Last0 <{}>\r\nTo: sales@example.com\r\nSubject: Re: {subject0}\r\nIn-Reply-To: {mid0}\r\n\
         Message-ID: <reply-1@company00.example>\r\n\r\nPoista minut listalta.\r\n\r\n> Hello First0\r\n",
        emails[0]
    );
    let summary = ingest_stdin(&scratch, &reply);
    assert_eq!(
        (summary["replies"].as_i64(), summary["optouts"].as_i64()),
        (Some(1), Some(1)),
        "{summary}"
    );

    let out_of_office = format!(
        "From: {}\r\nTo: sales@example.com\r\nSubject: Automaattinen vastaus: {subject1}\r\nAuto-Submitted: auto-replied\r\n\
         In-Reply-To: {mid1}\r\nMessage-ID: <ooo-1@company01.example>\r\n\r\nOlen lomalla 1.12. asti. Poista tämä viesti, jos se ei koske sinua.\r\n",
        emails[1]
    );
    let summary = ingest_stdin(&scratch, &out_of_office);
    assert_eq!(
        (
            summary["auto_replies"].as_i64(),
            summary["optouts"].as_i64()
        ),
        (Some(1), Some(0)),
        "{summary}"
    );

    let thanks = format!(
        "From: {}\r\nTo: sales@example.com\r\nSubject: Re: Offer\r\nMessage-ID: <r2@company02.example>\r\n\r\nThanks, I'll join!\r\n",
        emails[2]
    );
    assert_eq!(ingest_stdin(&scratch, &thanks)["optouts"], 0);

    // Mail to the tokenized mailto: of List-Unsubscribe opts out whatever it says.
    let m = server
        .messages()
        .into_iter()
        .find(|m| m["rcpt_tos"][0] == emails[3].as_str())
        .unwrap();
    let header = common::parse_message(m["data"].as_str().unwrap().as_bytes())
        .one("list-unsubscribe")
        .to_string();
    let mailto = header
        .split("mailto:")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let unsubscribe_mail = format!(
        "From: {}\r\nTo: {mailto}\r\nSubject: unsubscribe\r\nMessage-ID: <u3@company03.example>\r\n\r\n\r\n",
        emails[3]
    );
    assert_eq!(ingest_stdin(&scratch, &unsubscribe_mail)["optouts"], 1);

    let optouts = json_list(&scratch, &["optout", "list", "--json"]);
    let by_source: Vec<(String, String)> = optouts
        .iter()
        .map(|o| {
            (
                o["email"].as_str().unwrap().to_string(),
                o["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        by_source.contains(&(emails[0].clone(), "reply".into())),
        "{by_source:?}"
    );
    assert!(
        by_source.contains(&(emails[3].clone(), "mailto".into())),
        "{by_source:?}"
    );
    assert_eq!(optouts.len(), 2);
    assert!(optouts.iter().all(|o| o["campaign"] == "test-campaign"));
    let auto = json_list(&scratch, &["bounces", "list", "--json"]);
    assert_eq!(auto.len(), 1);
    assert_eq!(
        (auto[0]["kind"].as_str(), auto[0]["action"].as_str()),
        (Some("auto_reply"), Some("none"))
    );
}

#[test]
fn complaint_is_an_opt_out_and_maildir_is_processed_once() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let (scratch, server, emails) = sent_via_smtp(2);
    let (verp, mid, _) = delivered(&server, &emails[0]);
    let arf = format!(
        "From: staff@hotmail.example\r\nTo: {verp}\r\nSubject: complaint about message\r\nMessage-ID: <arf-1@hotmail.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: {}\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {mid}\r\nTo: {}\r\n\r\n--B--\r\n",
        emails[0], emails[0]
    );
    let maildir = scratch.path("Maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::write(maildir.join("new/1700000000.1.host"), &arf).unwrap();
    let out = scratch.run(&[
        "bounces",
        "ingest",
        "--maildir",
        maildir.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["complaints"].as_i64(), v["optouts"].as_i64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert!(maildir.join("cur/1700000000.1.host:2,").exists());
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);
    let again = scratch.run(&[
        "bounces",
        "ingest",
        "--maildir",
        maildir.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(v["messages"], 0, "cur/ is not read again");
    let optouts = json_list(&scratch, &["optout", "list", "--json"]);
    assert_eq!(
        (optouts[0]["source"].as_str(), optouts[0]["detail"].as_str()),
        (Some("complaint"), Some("abuse"))
    );
}
