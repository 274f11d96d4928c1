//! A campaign's content files (body, body_html, body_text, its contact files) must resolve
//! inside the configuration directory after following symlinks: whatever they hold goes into
//! messages and previews. And a campaign name, which becomes part of file names, starts with a
//! letter or digit.

mod common;

use common::{CAMPAIGN, Scratch, stderr, stdout};

/// Runs `send` and `preview` on the scratch campaign: both must refuse with `expect` and
/// write nothing.
fn refused(scratch: &Scratch, expect: &str) {
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    let err = stderr(&send);
    assert_eq!(send.status.code(), Some(2), "send: {err}");
    assert!(err.contains(expect), "send: {err}");
    assert!(!err.contains("SECRET-CONTENT"), "the file was read: {err}");
    let preview = scratch.run(&[
        "preview",
        "config/campaigns/test.toml",
        "--to",
        "person0000@company00.example",
    ]);
    assert_eq!(preview.status.code(), Some(2), "{}", stderr(&preview));
    assert!(!stdout(&preview).contains("SECRET-CONTENT"));
    assert!(!scratch.path("outbox").exists(), "nothing was sent");
}

fn with_campaign(scratch: &Scratch, from: &str, to: &str) {
    assert!(CAMPAIGN.contains(from));
    scratch.write("config/campaigns/test.toml", &CAMPAIGN.replace(from, to));
}

#[test]
fn content_paths_outside_the_configuration_directory_are_refused() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 2);
    scratch.write("secret.md", "SECRET-CONTENT {{ first_name }}\n");
    let body = "body = \"content/body.md\"";

    with_campaign(&scratch, body, "body = \"/proc/self/environ\"");
    refused(
        &scratch,
        "test.toml: body: '/proc/self/environ' is outside the configuration directory",
    );

    with_campaign(&scratch, body, "body = \"../secret.md\"");
    refused(
        &scratch,
        "test.toml: body: '../secret.md' is outside the configuration directory",
    );

    std::os::unix::fs::symlink("../../secret.md", scratch.path("config/content/link.md")).unwrap();
    with_campaign(&scratch, body, "body = \"content/link.md\"");
    refused(
        &scratch,
        "test.toml: body: 'content/link.md' is outside the configuration directory",
    );

    with_campaign(
        &scratch,
        body,
        "body_html = \"content/body.md\"\nbody_text = \"content/link.md\"",
    );
    refused(
        &scratch,
        "test.toml: body_text: 'content/link.md' is outside",
    );

    scratch.write(
        "elsewhere.csv",
        "email,first_name\nSECRET-CONTENT@x.example,X\n",
    );
    with_campaign(
        &scratch,
        "file = \"contacts/customers.csv\"",
        "file = \"../elsewhere.csv\"",
    );
    refused(
        &scratch,
        "test.toml: [[import]] #1 file: '../elsewhere.csv' is outside",
    );

    // `check` reports it as a configuration finding.
    with_campaign(&scratch, body, "body = \"/etc/passwd\"");
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("error[CFG001]")
            && stdout(&check).contains("is outside the configuration directory"),
        "{}",
        stdout(&check)
    );

    // A symlink that stays inside the configuration directory is fine.
    std::os::unix::fs::symlink("body.md", scratch.path("config/content/inside.md")).unwrap();
    with_campaign(&scratch, body, "body = \"content/inside.md\"");
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
    assert_eq!(
        std::fs::read_dir(scratch.path("outbox")).unwrap().count(),
        2
    );
}

#[test]
fn campaign_names_start_with_a_letter_or_digit() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 1);
    for name in ["..", ".hidden", "-dash", "_x"] {
        with_campaign(
            &scratch,
            "name = \"test-campaign\"",
            &format!("name = \"{name}\""),
        );
        let send = scratch.run(&["send", "config/campaigns/test.toml"]);
        let err = stderr(&send);
        assert_eq!(send.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("name: '{name}' must start with a letter or digit")),
            "{name}: {err}"
        );
        assert!(!scratch.path("outbox").exists(), "{name}: nothing written");
    }
    with_campaign(
        &scratch,
        "name = \"test-campaign\"",
        "name = \"2026.spring_a\"",
    );
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
}
