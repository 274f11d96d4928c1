//! Bounce parsing throughput over the corpus in ../shared/corpora/bounces (messages per
//! second, single thread). A harness that prints figures, not a test:
//! `cargo bench --bench bounce_parse`.

use std::time::{Duration, Instant};

use fairsend::config::BounceSettings;
use fairsend::inbound::{Keys, parse, split_mbox};
use fairsend::suppress::Secret;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/bounces");
    let corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
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
}
