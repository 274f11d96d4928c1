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

/// The fenced blocks of the README section titled `title`: (info string, lines).
fn section_blocks(readme: &str, title: &str) -> Vec<(String, Vec<String>)> {
    let start = readme
        .find(&format!("\n{title}\n"))
        .unwrap_or_else(|| panic!("the README has a section {title}"));
    let rest = &readme[start + title.len() + 2..];
    let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body = lines
                .by_ref()
                .take_while(|l| *l != "```")
                .map(str::to_string)
                .collect();
            blocks.push((info.to_string(), body));
        }
    }
    blocks
}

/// A shown line that names a moment or a process of the run that printed it: the log line's
/// time, `audience`'s "as of", `status`'s worker. Its stable part, or None to skip it.
fn stable_part(line: &str) -> Option<&str> {
    if line.starts_with("  worker ") || line.contains(", as of ") || line == "…" {
        return None;
    }
    // "2026-12-01T18:01:09.454675Z  INFO …": the level and message.
    match line.split_once("Z  ") {
        Some((time, rest)) if time.starts_with("20") && !time.contains(' ') => Some(rest),
        _ => Some(line),
    }
}

fn assert_shown(command: &str, shown: &[String], printed: &str) {
    for line in shown.iter().filter_map(|l| stable_part(l)) {
        assert!(
            printed.contains(line),
            "README walk-through: `{command}` did not print\n{line}\nit printed:\n{printed}"
        );
    }
}

/// "A campaign from segment to report", as written: in a copy of the example configuration
/// after its campaign went out, its files are written where it says and each `$ fairsend …`
/// runs at the moment the walk-through is set in (FAIRSEND_TEST_NOW, a debug build's clock of
/// send windows), printing every line the README shows but those naming a moment or a process.
#[test]
fn the_campaign_walk_through_runs_as_written() {
    use std::io::BufRead;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = section_blocks(&readme, "### A campaign from segment to report");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("config"), &dir.path().join("config"));
    let files = [
        ("csv", "config/contacts/logistics-fair.csv"),
        ("toml", "config/campaigns/logistics.toml"),
        ("markdown", "config/content/logistics-breakfast.md"),
    ];
    let fairsend = |now: &str, command: &str| {
        let mut cmd = std::process::Command::new(common::BIN);
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        cmd.args(&args)
            .current_dir(dir.path())
            .env("FAIRSEND_SECRET", common::TEST_SECRET)
            .env("FAIRSEND_TEST_NOW", now)
            .env_remove("FAIRSEND_DATABASE_URL");
        cmd
    };
    // Tuesday 20:00 and Wednesday 08:00 in Helsinki, as the walk-through tells.
    const TUESDAY: &str = "2026-12-01T20:00:00+02:00";
    const WEDNESDAY: &str = "2026-12-02T08:00:00+02:00";
    let example = fairsend(TUESDAY, "fairsend send config/campaigns/example.toml")
        .output()
        .unwrap();
    assert!(example.status.success(), "{}", common::stderr(&example));

    let mut waiting: Option<Waiting> = None;
    let mut ran = 0;
    for (info, lines) in &blocks {
        if let Some((_, path)) = files.iter().find(|(lang, _)| lang == info) {
            std::fs::write(dir.path().join(path), lines.join("\n") + "\n").unwrap();
            continue;
        }
        // A block without a command: what the waiting `send` printed once the window opened.
        if !lines.iter().any(|l| l.starts_with("$ ")) {
            if let Some(mut send) = waiting.take() {
                // Ctrl-C: it stops waiting and ends.
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &send.child.id().to_string()])
                    .status();
                let _ = send.child.wait();
            }
            let out = fairsend(WEDNESDAY, "fairsend send config/campaigns/logistics.toml")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert_shown("send, at 08:00", lines, &common::stdout(&out));
            ran += 1;
            continue;
        }
        let mut i = 0;
        while i < lines.len() {
            let command = lines[i].trim_start_matches("$ ").to_string();
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].starts_with("$ "))
                .unwrap_or(lines.len());
            let shown = &lines[i + 1..end];
            if command.starts_with("fairsend send ") {
                // It waits for the window: read what it says, leave it waiting.
                let mut child = fairsend(TUESDAY, &command)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut first = String::new();
                let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
                stderr.read_line(&mut first).unwrap();
                waiting = Some(Waiting {
                    child,
                    _stderr: stderr,
                });
                assert_shown(&command, shown, &first);
            } else {
                let out = fairsend(TUESDAY, &command).output().unwrap();
                assert!(
                    out.status.success(),
                    "`{command}`: {}",
                    common::stderr(&out)
                );
                let printed = common::stdout(&out) + &common::stderr(&out);
                assert_shown(&command, shown, &printed);
            }
            ran += 1;
            i = end;
        }
    }
    drop(waiting);
    assert!(ran >= 8, "the walk-through's commands ran: {ran}");
}

/// The walk-through's waiting `send`, its stderr kept open (it logs there until it ends),
/// ended if the test fails before it does.
struct Waiting {
    child: std::process::Child,
    _stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
