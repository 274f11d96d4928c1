//! The README's quick start, run as written: every ```sh block marked `<!-- runnable -->` is
//! executed in order, in one empty directory, with the `fairsend` just built on PATH. Between
//! blocks the test does what the README tells the reader to do by hand (fill in the starter's
//! placeholders, add a contact). A command that fails fails the test, naming the line.

mod common;

use std::path::Path;

/// The runnable blocks of the README, in order: (line number of the block, its command lines).
fn runnable_blocks(readme: &str) -> Vec<(usize, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        if !line.trim_start().starts_with("<!-- runnable") {
            continue;
        }
        let Some((n, fence)) = lines.next() else {
            break;
        };
        assert_eq!(
            fence.trim(),
            "```sh",
            "README line {}: a runnable marker must precede a ```sh block",
            n + 1
        );
        let mut commands = Vec::new();
        for (_, line) in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            let command = line.split(" #").next().unwrap_or("").trim();
            if !command.is_empty() {
                commands.push(command.to_string());
            }
        }
        blocks.push((n + 1, commands));
    }
    blocks
}

#[test]
fn the_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 2, "the README has its runnable quick start");
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(common::BIN).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    for (line, commands) in &blocks {
        for command in commands {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(dir.path())
                .env("PATH", &path)
                .env_remove("FAIRSEND_SECRET")
                .env_remove("FAIRSEND_DATABASE_URL")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "README block at line {line}: `{command}` failed:\n{}\n{}",
                common::stdout(&out),
                common::stderr(&out)
            );
            ran.push((command.clone(), common::stdout(&out)));
            if command.starts_with("fairsend init ") {
                let config = command.trim_start_matches("fairsend init ").trim();
                common::fill_in_the_starter(&dir.path().join(config));
            }
        }
    }
    // What the quick start promises: a test message, then the real one, then the follow-up.
    let outbox: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        outbox.len(),
        2,
        "one test message and one real message: {outbox:?}"
    );
    let (_, status) = ran.last().unwrap();
    assert!(
        status.contains("anna@asiakas.example") && status.contains("sent"),
        "{status}"
    );
}
