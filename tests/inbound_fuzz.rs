//! No input makes the inbound parser panic: random bytes, and corpus messages mutated (bytes
//! flipped, cut, spliced with other messages, MIME boundaries and headers duplicated).
//! Bounded for the test suite; a longer run: `FAIRSEND_FUZZ_ITERATIONS=200000 cargo test
//! --release --test inbound_fuzz -- --nocapture`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fairsend::config::BounceSettings;
use fairsend::inbound::{Keys, parse, split_mbox};
use fairsend::suppress::Secret;

/// xorshift64*: deterministic, so a failure can be replayed with the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: [&[u8]; 12] = [
    b"\r\n\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n",
    b"--x\r\n",
    b"Content-Type: message/delivery-status\r\n\r\n",
    b"Final-Recipient: rfc822; ",
    b"Status: 5.1.",
    b"Diagnostic-Code: smtp; 550",
    b"From ",
    b"=?utf-8?b?w6TDtsOl?=",
    b"\xff\xfe\xc3",
    b"@",
    b"Content-Transfer-Encoding: base64\r\n",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut m = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(m.len() + 1);
        match rng.below(6) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            1 => m.truncate(at),
            2 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1);
                m.splice(at..at, other[from..from + len].iter().copied());
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                m.splice(at..at, t.iter().copied());
            }
            4 if at < m.len() => {
                let len = rng.below(m.len() - at + 1);
                m.drain(at..at + len);
            }
            _ => {
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                m.splice(at..at, junk);
            }
        }
    }
    m
}

#[test]
fn parser_never_panics() {
    if !common::require(&[common::Tool::SharedCorpora]) {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/bounces");
    let corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(corpus.len() >= 40);
    let iterations: usize = std::env::var("FAIRSEND_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let budget = Duration::from_secs(
        std::env::var("FAIRSEND_FUZZ_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let seed = std::env::var("FAIRSEND_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_F00D_u64);
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
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut done = 0;
    while done < iterations && started.elapsed() < budget {
        let input = if rng.below(5) == 0 {
            (0..rng.below(4096)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &corpus)
        };
        for message in split_mbox(&input) {
            let parsed = parse(message, &keys);
            // Touch everything the parser produced.
            let _ = serde_json::to_string(&parsed).unwrap();
        }
        done += 1;
    }
    println!(
        "fuzz: {done} inputs in {:.1}s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(done >= 200, "too few inputs in the time budget: {done}");
}
