//! The command line as a user meets it: error messages that say each cause once, help for
//! every option and environment variable, colour only on a terminal, outside text printed with
//! its control characters escaped, and `bounces ingest` taking the files people have.

mod common;

use common::{Scratch, stderr, stdout};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn an_error_says_each_cause_once() {
    let scratch = Scratch::new("outbox:outbox");

    let out = scratch.run(&["import", "missing.csv", "--register", "customers"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("missing.csv: cannot read the file: No such file or directory"),
        "{err}"
    );
    assert_eq!(count(&err, "No such file or directory"), 1, "{err}");

    let out = std::process::Command::new(common::BIN)
        .current_dir(scratch.dir.path())
        .args(["--config", "nowhere", "status"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "error: nowhere/fairsend.toml: cannot read the file: No such file or directory (os error 2)"
    );

    let toml = common::fairsend_toml("outbox:outbox")
        .replace("legal_name = \"Testi Yhtiö Oy\"", "legal_name = \"\"");
    scratch.write("config/fairsend.toml", &toml);
    for command in ["check", "send"] {
        let out = scratch.run(&[command, "config/campaigns/test.toml"]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(if command == "check" { 1 } else { 2 })
        );
        assert_eq!(count(&all, "[sender] legal_name"), 1, "{command}: {all}");
        assert_eq!(count(&all, "fairsend.toml"), 1, "{command}: {all}");
        assert!(
            all.contains("fairsend.toml: [sender] legal_name: is empty"),
            "{command}: {all}"
        );
    }
}
