//! The bounce parser over the real messages in ../shared/corpora/bounces/, against their
//! expected.tsv (sisimai's classifications): hard/soft agreement and recipient identification
//! must each reach 95%. Prints the confusion table (expected reason × found reason).
//! No file name is special-cased: the same code runs on bounces that are not in the repo.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use fairsend::config::BounceSettings;
use fairsend::inbound::{BounceClass, Keys, Kind, parse, split_mbox};
use fairsend::suppress::Secret;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/bounces")
}

/// sisimai's reason → (fairsend kind, fairsend class). sisimai calls a disabled mailbox
/// (`suspend`) soft; for fairsend it is hard (the corpus README notes the difference).
fn expected_class(reason: &str, hard: bool) -> (Kind, Option<BounceClass>) {
    match reason {
        "feedback" => (Kind::Complaint, None),
        "vacation" => (Kind::AutoReply, None),
        "delivered" => (Kind::Dsn, None),
        "suspend" => (Kind::Dsn, Some(BounceClass::Hard)),
        _ if hard => (Kind::Dsn, Some(BounceClass::Hard)),
        _ => (Kind::Dsn, Some(BounceClass::Soft)),
    }
}

#[test]
fn corpus_classification_and_recipients() {
    if !common::require(&[common::Tool::SharedCorpora]) {
        return;
    }
    let dir = corpus();
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
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

    let (mut rows, mut class_ok, mut with_rcpt, mut rcpt_ok) = (0, 0, 0, 0);
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, recipient, reason, hard, index) = (
            cols[0],
            cols[1],
            cols[4],
            cols[5] == "true",
            cols[6].parse::<usize>().unwrap_or(1),
        );
        let raw = std::fs::read(dir.join(file)).expect("corpus file");
        // A file may be an mbox of several reports: their recipients in order.
        let mut messages = split_mbox(&raw).into_iter().map(|m| parse(m, &keys));
        let mut parsed = messages.next().expect("at least one message");
        for more in messages {
            parsed.recipients.extend(more.recipients);
        }
        rows += 1;
        let (want_kind, want_class) = expected_class(reason, hard);
        let found = parsed
            .recipients
            .get(index - 1)
            .or(parsed.recipients.first());
        let got_class = found.and_then(|r| r.class);
        let got_reason = match parsed.kind {
            Kind::Dsn => found
                .map(|r| r.reason.as_str().to_string())
                .unwrap_or_else(|| "none".into()),
            other => other.as_str().to_string(),
        };
        *confusion
            .entry((reason.to_string(), got_reason.clone()))
            .or_default() += 1;
        let class_agrees =
            parsed.kind == want_kind && (want_kind != Kind::Dsn || got_class == want_class);
        if class_agrees {
            class_ok += 1;
        } else {
            misses.push(format!("{file}#{index}: expected {reason} ({want_class:?}), found {:?} {got_reason} ({got_class:?})", parsed.kind));
        }
        if !recipient.is_empty() {
            with_rcpt += 1;
            let found_rcpt = parsed
                .recipients
                .iter()
                .any(|r| r.address.as_deref() == Some(&recipient.to_lowercase()));
            if found_rcpt {
                rcpt_ok += 1;
            } else {
                let got: Vec<_> = parsed
                    .recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect();
                misses.push(format!(
                    "{file}#{index}: recipient {recipient} not found (found {got:?})"
                ));
            }
        }
    }
    println!("\nconfusion (expected sisimai reason → fairsend reason):");
    for ((want, got), n) in &confusion {
        println!("  {want:<16} → {got:<22} {n}");
    }
    for m in &misses {
        println!("  miss: {m}");
    }
    let class_rate = class_ok as f64 / rows as f64;
    let rcpt_rate = rcpt_ok as f64 / with_rcpt as f64;
    println!(
        "hard/soft agreement: {class_ok}/{rows} = {:.1}%",
        class_rate * 100.0
    );
    println!(
        "recipient found: {rcpt_ok}/{with_rcpt} = {:.1}%",
        rcpt_rate * 100.0
    );
    assert!(
        class_rate >= 0.95,
        "hard/soft agreement {class_rate:.3} < 0.95"
    );
    assert!(rcpt_rate >= 0.95, "recipient found {rcpt_rate:.3} < 0.95");
}
