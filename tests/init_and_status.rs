//! A new user's path: `init` writes a starter configuration that `check` refuses until its
//! placeholders are filled and then passes; after a send, `status` takes the campaign's file as
//! well as its name, and `--recipients` lists who got what and why not.

mod common;

use common::{Scratch, SmtpServer, stderr, stdout};

fn fairsend(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("FAIRSEND_SECRET")
        .env_remove("FAIRSEND_DATABASE_URL")
        .output()
        .unwrap()
}

#[test]
fn init_writes_a_starter_that_passes_check_once_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("myconfig");
    let config_arg = config.to_str().unwrap();
    let out = fairsend(&["init", config_arg], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("FILL IN"), "{}", stdout(&out));

    // Never over an existing configuration.
    let again = fairsend(&["init", config_arg], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));

    let campaign = config.join("campaigns/first.toml");
    let check = |dir: &std::path::Path| {
        fairsend(
            &[
                "--config",
                config_arg,
                "check",
                campaign.to_str().unwrap(),
                "--resolver",
                "127.0.0.1:9",
                "--json",
            ],
            dir,
        )
    };
    let unfilled = check(dir.path());
    assert_ne!(unfilled.status.code(), Some(0));
    assert!(
        stdout(&unfilled).contains("legal_name") || stderr(&unfilled).contains("legal_name"),
        "names the first placeholder: {} {}",
        stdout(&unfilled),
        stderr(&unfilled)
    );

    // Fill in every placeholder, as a user would, and add one contact.
    common::fill_in_the_starter(&config);

    let filled = check(dir.path());
    assert_eq!(
        filled.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&filled),
        stderr(&filled)
    );
}

#[test]
fn status_takes_the_campaign_file_and_lists_recipients_with_their_outcome() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 4);
    // The server refuses one recipient for good and one for now.
    let server = SmtpServer::start(
        scratch.dir.path(),
        &[
            "--permfail",
            &regex_escape(&emails[1]),
            "--tempfail",
            &regex_escape(&emails[2]),
        ],
    );
    let send = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
        "--json",
    ]);
    assert!(send.status.success(), "{}", stderr(&send));

    let by_file = scratch.run(&["status", "config/campaigns/test.toml", "--json"]);
    assert!(by_file.status.success(), "{}", stderr(&by_file));
    let by_name = scratch.run(&["status", "test-campaign", "--json"]);
    assert_eq!(stdout(&by_file), stdout(&by_name));

    let failed = scratch.run(&[
        "status",
        "config/campaigns/test.toml",
        "--recipients",
        "--state",
        "failed",
        "--json",
    ]);
    assert!(failed.status.success(), "{}", stderr(&failed));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&failed)).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["email"], emails[1].as_str());
    assert!(
        rows[0]["last_reply"].as_str().unwrap_or("").contains("550"),
        "the SMTP reply says why: {rows:?}"
    );

    let all = scratch.run(&["status", "test-campaign", "--recipients"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let text = stdout(&all);
    for e in &emails {
        assert!(text.contains(e.as_str()), "{e} listed: {text}");
    }
    // --state alone implies --recipients.
    let deferred = scratch.run(&["status", "test-campaign", "--state", "sent", "--json"]);
    assert!(deferred.status.success(), "{}", stderr(&deferred));
    let sent: Vec<serde_json::Value> = serde_json::from_str(&stdout(&deferred)).unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    // An unknown name lists the names there are.
    let unknown = scratch.run(&["status", "test"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("test-campaign"),
        "{}",
        stderr(&unknown)
    );
    let bad = scratch.run(&["status", "test-campaign", "--recipients", "--state", "lost"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--state lost"), "{}", stderr(&bad));
}

#[test]
fn the_send_summary_counts_in_words() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 1);
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
    assert!(
        stdout(&send).contains("sent 1 message,"),
        "{}",
        stdout(&send)
    );
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '@' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn a_test_send_goes_to_the_tester_only_and_changes_nothing() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 3);
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let test = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
        "--test-to",
        "marketer@example.com",
        "--sample",
        "2",
    ]);
    assert!(test.status.success(), "{}", stderr(&test));
    let received = server.messages();
    assert_eq!(received.len(), 2, "{received:?}");
    for m in &received {
        assert_eq!(m["rcpt_tos"], serde_json::json!(["marketer@example.com"]));
        let parsed = common::parse_message(m["data"].as_str().unwrap().as_bytes());
        assert!(
            parsed.one("subject").starts_with("[TEST] "),
            "{}",
            parsed.one("subject")
        );
        assert!(parsed.one("to").contains("marketer@example.com"));
        for e in &emails {
            assert!(!parsed.one("to").contains(e.as_str()));
        }
    }
    // Nothing was queued or recorded: the real send still goes to everyone, once.
    let send = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(send.status.success(), "{}", stderr(&send));
    let real: Vec<String> = server.messages()[2..]
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(real.len(), 3, "{real:?}");
    let bad = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--test-to",
        "not an address",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

/// The starter's blanks are listed by one `check`, every one with its file and field, not one
/// per run; `send` names them all too. The campaign's own blanks follow once the registers it
/// names load.
#[test]
fn check_lists_every_blank_of_the_starter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fairsend(&["init", "myconfig"], dir.path()).status.success());
    let campaign = "myconfig/campaigns/first.toml";
    let check = fairsend(&["--config", "myconfig", "check", campaign], dir.path());
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let found = stdout(&check);
    for field in [
        "fairsend.toml: [sender] legal_name: is empty",
        "fairsend.toml: [sender] business_id: is empty",
        "fairsend.toml: [sender] postal_address: is empty",
        "fairsend.toml: [sender] contact_email: is empty",
        "fairsend.toml: [sender] privacy_contact: is empty",
        "fairsend.toml: [bounces] domain: is empty",
        "registers.toml: [registers.customers] title: is empty",
        "registers.toml: [registers.customers] controller: is empty",
        "registers.toml: [registers.customers] controller_contact: is empty",
    ] {
        assert!(found.contains(field), "{field} missing from:\n{found}");
    }
    assert_eq!(found.matches("error[CFG001]").count(), 9, "{found}");
    assert!(stderr(&check).contains("9 error(s)"), "{}", stderr(&check));

    let send = fairsend(&["--config", "myconfig", "send", campaign], dir.path());
    assert_eq!(send.status.code(), Some(2));
    assert!(
        stderr(&send).contains("[sender] privacy_contact: is empty")
            && stderr(&send).contains("[bounces] domain: is empty"),
        "{}",
        stderr(&send)
    );

    // With the two shared files filled in, the campaign's blanks come together too.
    common::fill_in_the_starter(&dir.path().join("myconfig"));
    let file = dir.path().join(campaign);
    let text = std::fs::read_to_string(&file).unwrap();
    let blank = text
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some((key @ ("from" | "reply_to"), _)) => format!("{key} = \"\""),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, blank).unwrap();
    let check = fairsend(&["--config", "myconfig", "check", campaign], dir.path());
    assert_eq!(check.status.code(), Some(1));
    let found = stdout(&check);
    assert!(
        found.contains("first.toml: from: is empty")
            && found.contains("first.toml: reply_to: is empty"),
        "{found}"
    );
}

/// A forgotten `--config` is named as such: the campaign file's own configuration directory
/// is the one to pass; with no campaign to go by, `init` is offered.
#[test]
fn a_forgotten_config_flag_names_the_directory_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fairsend(&["init", "myconfig"], dir.path()).status.success());
    common::fill_in_the_starter(&dir.path().join("myconfig"));
    let campaign = "myconfig/campaigns/first.toml";
    let hint = "the campaign file is in the configuration directory myconfig: run with `--config myconfig`";

    let check = fairsend(&["check", campaign], dir.path());
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("config/fairsend.toml: there is no such file")
            && stdout(&check).contains(hint),
        "{}",
        stdout(&check)
    );
    for args in [
        vec!["send", campaign],
        vec!["preview", campaign, "--to", "a@b.example"],
        vec!["status", campaign],
    ] {
        let out = fairsend(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(hint), "{args:?}: {}", stderr(&out));
    }
    let status = fairsend(&["status"], dir.path());
    assert_eq!(status.status.code(), Some(2));
    assert!(
        stderr(&status).contains("config is not a configuration directory")
            && stderr(&status).contains("fairsend init DIR"),
        "{}",
        stderr(&status)
    );
    assert!(
        !dir.path().join("fairsend.db").exists(),
        "nothing was created"
    );
}

/// A new SQLite file is announced; the reminder that a relative path follows the current
/// directory comes only with a relative path.
#[test]
fn a_new_database_is_announced_with_the_relative_path_reminder_only_when_relative() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fairsend(&["init", "myconfig"], dir.path()).status.success());
    common::fill_in_the_starter(&dir.path().join("myconfig"));
    let status = fairsend(&["--config", "myconfig", "status"], dir.path());
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stderr(&status).contains("creating a new, empty database")
            && stderr(&status)
                .contains("a relative sqlite:// path is taken from the current directory"),
        "{}",
        stderr(&status)
    );
    let absolute = format!("sqlite://{}", dir.path().join("abs.db").display());
    let status = fairsend(
        &["--config", "myconfig", "--db", &absolute, "status"],
        dir.path(),
    );
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stderr(&status).contains("creating a new, empty database")
            && !stderr(&status).contains("relative"),
        "{}",
        stderr(&status)
    );
}

/// A send that finds nothing to send says so (an empty contact file, or every recipient
/// already served) instead of a bare "sent 0 messages"; a send that sends does not.
#[test]
fn a_send_with_nothing_due_says_why_it_sent_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fairsend(&["init", "myconfig"], dir.path()).status.success());
    let config = dir.path().join("myconfig");
    common::fill_in_the_starter(&config);
    let contacts = config.join("contacts/customers.csv");
    let full = std::fs::read_to_string(&contacts).unwrap();
    let header = full.lines().next().unwrap().to_string();
    std::fs::write(&contacts, format!("{header}\n")).unwrap();
    let send = || {
        fairsend(
            &[
                "--config",
                "myconfig",
                "send",
                "myconfig/campaigns/first.toml",
            ],
            dir.path(),
        )
    };
    let empty = send();
    assert!(empty.status.success(), "{}", stderr(&empty));
    assert!(
        stdout(&empty).contains("sent 0 messages"),
        "{}",
        stdout(&empty)
    );
    assert!(
        stdout(&empty).contains("nothing was due"),
        "{}",
        stdout(&empty)
    );

    std::fs::write(&contacts, full).unwrap();
    let first = send();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("sent 1 message"),
        "{}",
        stdout(&first)
    );
    assert!(
        !stdout(&first).contains("nothing was due"),
        "{}",
        stdout(&first)
    );
    let again = send();
    assert!(
        stdout(&again).contains("nothing was due"),
        "{}",
        stdout(&again)
    );
}

/// A campaign path written relative to the configuration directory is named as it should be
/// given (paths on the command line are taken from the current directory).
#[test]
fn a_campaign_path_relative_to_the_config_directory_names_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fairsend(&["init", "myconfig"], dir.path()).status.success());
    common::fill_in_the_starter(&dir.path().join("myconfig"));
    let right = std::path::Path::new("myconfig/campaigns/first.toml");
    for given in ["campaigns/first.toml", "first.toml"] {
        let send = fairsend(&["--config", "myconfig", "send", given], dir.path());
        assert_eq!(send.status.code(), Some(2), "{given}");
        assert!(
            stderr(&send).contains(&format!("did you mean {}?", right.display())),
            "{given}: {}",
            stderr(&send)
        );
        let check = fairsend(&["--config", "myconfig", "check", given], dir.path());
        assert_eq!(check.status.code(), Some(1), "{given}");
        assert!(
            stdout(&check).contains("did you mean"),
            "{}",
            stdout(&check)
        );
    }
    let none = fairsend(&["--config", "myconfig", "send", "nosuch.toml"], dir.path());
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("nosuch.toml: cannot read the file"),
        "{}",
        stderr(&none)
    );
}
