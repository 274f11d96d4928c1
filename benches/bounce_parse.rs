//! Bounce parsing throughput (messages per second, single thread) over the corpora in
//! ../shared/corpora/bounces and tests/corpora, and the time to parse one plain-text bounce
//! that lists 100,000 recipients. A harness that prints figures, not a test:
//! `cargo bench --bench bounce_parse`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fairsend::config::BounceSettings;
use fairsend::inbound::{Keys, parse, split_mbox};
use fairsend::suppress::Secret;

fn emails(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            emails(&path, out);
        } else if path.extension().is_some_and(|x| x == "eml")
            && let Ok(raw) = std::fs::read(&path)
        {
            out.push(raw);
        }
    }
}

/// A qmail-style plain-text report naming `n` recipients, each with its own reply.
pub fn big_text_bounce(n: usize) -> Vec<u8> {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mail.example.net\r\nSubject: failure notice\r\n\r\n\
         Hi. This is the qmail-send program at mail.example.net.\r\n\
         I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n",
    );
    for i in 0..n {
        raw.push_str(&format!(
            "<user{i}@example.org>:\r\n192.0.2.1 does not like recipient.\r\n\
             Remote host said: 550 5.1.1 <user{i}@example.org>: User unknown\r\n\r\n"
        ));
    }
    raw.into_bytes()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut corpus = Vec::new();
    emails(&root.join("../shared/corpora/bounces"), &mut corpus);
    emails(&root.join("tests/corpora"), &mut corpus);
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let secret = Secret::development();
    let settings = BounceSettings {
        domain: "bounces.example.com".into(),
        local_part: "bounces".into(),
        unsubscribe_local_part: "unsubscribe".into(),
        soft_bounce_limit: 3,
        soft_bounce_days: 7,
    };
    let keys = Keys {
        secret: &secret,
        bounces: &settings,
    };
    // Warm up, then run for a fixed time.
    for raw in &corpus {
        std::hint::black_box(parse(raw, &keys));
    }
    let budget = Duration::from_secs(5);
    let started = Instant::now();
    let mut messages = 0usize;
    let mut rounds = 0usize;
    while started.elapsed() < budget {
        for raw in &corpus {
            for m in split_mbox(raw) {
                std::hint::black_box(parse(m, &keys));
                messages += 1;
            }
        }
        rounds += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bounce parsing: {} corpus files ({:.1} KiB), {rounds} rounds, {messages} messages in {secs:.2} s",
        corpus.len(),
        bytes as f64 / 1024.0
    );
    println!(
        "bounce parsing: {:.0} messages/s, {:.1} MiB/s (one thread)",
        messages as f64 / secs,
        (bytes * rounds) as f64 / secs / 1_048_576.0
    );

    for n in [10_000usize, 100_000] {
        let raw = big_text_bounce(n);
        let started = Instant::now();
        let parsed = std::hint::black_box(parse(&raw, &keys));
        println!(
            "plain-text bounce naming {n} recipients ({:.1} MiB): parsed in {:.3} s, {} recipients kept",
            raw.len() as f64 / 1_048_576.0,
            started.elapsed().as_secs_f64(),
            parsed.recipients.len()
        );
    }
}
