//! `cargo test` on a fresh clone, where the project's `../shared` folder is not beside the
//! checkout: the tests that read the shared corpora skip with one line naming what is missing
//! and pass; with `CI` set, the same tests fail. Run in a real copy of the checkout (`git
//! archive HEAD`) built by a nested `cargo test`. And on a machine without the test programs
//! (this test binary run again with an empty PATH): the same, for aiosmtpd and openssl.
//!
//! The copy and its build live in a fixed place under target/tmp, so only the first run
//! builds the dependencies; later runs rebuild what changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{SmtpServer, Tool, require, stderr, stdout};

/// The tests that read ../shared/corpora, and their test targets.
const CORPUS_TESTS: [(&str, &str); 3] = [
    ("bounce_corpus", "shared_corpus"),
    ("inbound_fuzz", "parser_never_panics"),
    ("spf_suite", "rfc7208_suite"),
];

/// `git archive HEAD` unpacked into `into` (emptied first).
fn archive_head(into: &Path) {
    if into.exists() {
        std::fs::remove_dir_all(into).expect("remove the previous copy");
    }
    std::fs::create_dir_all(into).expect("mkdir");
    let tar = into.with_extension("tar");
    let archive = Command::new("git")
        .args(["archive", "--format=tar", "-o"])
        .arg(&tar)
        .arg("HEAD")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git archive");
    assert!(
        archive.status.success(),
        "git archive: {}",
        stderr(&archive)
    );
    // -m: the files get the time of unpacking, not of the commit, so that cargo never takes
    // an earlier build of other sources in the same target directory for an up-to-date one.
    let untar = Command::new("tar")
        .arg("-xmf")
        .arg(&tar)
        .arg("-C")
        .arg(into)
        .output()
        .expect("tar");
    assert!(untar.status.success(), "tar: {}", stderr(&untar));
    std::fs::remove_file(&tar).ok();
}

/// `cargo test --test T…` in the copy, with or without `CI`.
fn cargo_test(checkout: &Path, target: &Path, ci: bool) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(checkout)
        .args(["test", "--offline", "--locked"])
        .env("CARGO_TARGET_DIR", target)
        .env_remove("FAIRSEND_TEST_POSTGRES")
        .env_remove("CI")
        .stdin(Stdio::null());
    for (target, _) in CORPUS_TESTS {
        cmd.args(["--test", target]);
    }
    if ci {
        cmd.env("CI", "1");
    }
    cmd.output().expect("run cargo test in the copy")
}

#[test]
fn a_clone_without_the_shared_folder_skips_locally_and_fails_on_ci() {
    if !require(&[Tool::Git]) {
        return;
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fresh-clone");
    let checkout = work.join("fairsend");
    archive_head(&checkout);
    assert!(
        !work.join("shared").exists(),
        "the copy must not have a shared/ folder beside it"
    );
    let target = work.join("target");

    let local = cargo_test(&checkout, &target, false);
    let (out, err) = (stdout(&local), stderr(&local));
    assert!(
        local.status.success(),
        "without CI the corpus tests skip and pass:\n{out}\n{err}"
    );
    for (_, test) in CORPUS_TESTS {
        let skip = format!(
            "skipped {test}: missing the shared test corpora (../shared/corpora beside the checkout); install: "
        );
        assert_eq!(
            err.lines().filter(|l| l.starts_with(&skip)).count(),
            1,
            "one skip line for {test}:\n{err}"
        );
    }
    assert_eq!(out.matches("test result: ok.").count(), 3, "{out}");

    let ci = cargo_test(&checkout, &target, true);
    let (out, err) = (stdout(&ci), stderr(&ci));
    assert!(!ci.status.success(), "with CI=1 they fail:\n{out}\n{err}");
    assert!(
        format!("{out}{err}")
            .contains("CI is set, so a missing tool fails instead of skipping: skipped ")
            && out.contains("missing the shared test corpora"),
        "the failure names what is missing:\n{out}\n{err}"
    );
}

/// Starts the real SMTP server and runs openssl: what the test below hides from it.
#[test]
fn needs_aiosmtpd_and_openssl() {
    if !require(&[Tool::Aiosmtpd, Tool::Openssl]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), &[]);
    assert!(server.port > 0);
    let openssl = Command::new("openssl").arg("version").output().unwrap();
    assert!(openssl.status.success());
}

#[test]
fn a_machine_without_the_programs_skips_locally_and_fails_on_ci() {
    let run = |ci: bool| {
        let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
        cmd.args(["--exact", "needs_aiosmtpd_and_openssl", "--test-threads=1"])
            .env("PATH", "/nonexistent")
            .env_remove("CI");
        if ci {
            cmd.env("CI", "true");
        }
        cmd.output().expect("run this test binary again")
    };
    let local = run(false);
    assert!(
        local.status.success(),
        "{}{}",
        stdout(&local),
        stderr(&local)
    );
    assert_eq!(
        stderr(&local).trim(),
        "skipped needs_aiosmtpd_and_openssl: missing python3 with aiosmtpd, openssl; \
         install: python3 -m pip install 'aiosmtpd==1.4.6' && apt-get install openssl \
         (or `bash .ci/run` for everything)"
    );
    assert!(stdout(&local).contains("1 passed"), "{}", stdout(&local));

    let ci = run(true);
    let all = format!("{}{}", stdout(&ci), stderr(&ci));
    assert!(!ci.status.success(), "{all}");
    assert!(
        all.contains("CI is set, so a missing tool fails instead of skipping: skipped needs_aiosmtpd_and_openssl: missing python3 with aiosmtpd, openssl"),
        "{all}"
    );
}
