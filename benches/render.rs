//! Render throughput: personalised messages per second with the full compliance blocks, the
//! compliance gate and the finished MIME bytes, one thread, over the benchmark campaign
//! (bench/config). A harness that prints figures, not a test: `cargo bench --bench render`
//! (bench/run.sh runs it). `-- --dkim rsa-sha256` or `-- --dkim ed25519-sha256` also signs
//! every message, with the PEM private key at the path in FAIRSEND_BENCH_DKIM_KEY (e.g. made
//! with `openssl genpkey -algorithm ed25519`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fairsend::audience::{ContactRecord, EmailAddress, Recipient};
use fairsend::compose::Composer;
use fairsend::config::{ConfigDir, DkimAlgorithm, DkimKeySource, DkimSettings, LegalBasis};
use fairsend::dns::DkimSigning;
use fairsend::suppress::Secret;

fn recipient(i: usize) -> Recipient {
    Recipient {
        outbox_id: i as i64 + 1,
        register: "prospects".into(),
        variant: 0,
        contact: ContactRecord {
            email: EmailAddress::parse(&format!("person{i}@company{}.example", i % 997))
                .expect("synthetic address"),
            first_name: format!("Etunimi{i}"),
            last_name: format!("Sukunimi{i}"),
            company: format!("Yritys {} Oy", i % 997),
            business_id: String::new(),
            title: "Tietohallintojohtaja".into(),
            locale: None,
            legal_basis: LegalBasis::JobRole,
            consent_at: None,
            fields: BTreeMap::from([(
                "industry".to_string(),
                ["rakennus", "logistiikka", "teollisuus", "kauppa"][i % 4].to_string(),
            )]),
            source: format!("contacts.csv:{}", i + 2),
        },
    }
}

/// The signing key `--dkim ALGORITHM` asks for, from the file FAIRSEND_BENCH_DKIM_KEY names.
fn dkim_from_arguments() -> Option<std::sync::Arc<DkimSigning>> {
    let arguments: Vec<String> = std::env::args().collect();
    let position = arguments.iter().position(|a| a == "--dkim")?;
    let algorithm = match arguments.get(position + 1).map(String::as_str) {
        Some("ed25519-sha256") => DkimAlgorithm::Ed25519Sha256,
        Some("rsa-sha256") => DkimAlgorithm::RsaSha256,
        other => panic!("--dkim rsa-sha256 or --dkim ed25519-sha256, not {other:?}"),
    };
    let key = std::env::var("FAIRSEND_BENCH_DKIM_KEY").expect("FAIRSEND_BENCH_DKIM_KEY: a PEM key");
    let signing = DkimSigning::load(&DkimSettings {
        domain: "example.com".into(),
        selector: "bench".into(),
        algorithm,
        key: DkimKeySource::File(key.into()),
    })
    .expect("DKIM key");
    Some(std::sync::Arc::new(signing))
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = ConfigDir::load(&root.join("bench/config")).expect("bench/config");
    let campaign = config
        .load_campaign(&root.join("bench/config/campaigns/bench.toml"))
        .expect("bench campaign");
    let composer = Composer::new(&config, &campaign, Secret::development())
        .expect("composer")
        .with_dkim(dkim_from_arguments());
    let recipients: Vec<Recipient> = (0..10_000).map(recipient).collect();
    let gate = fairsend::compliance::Gate::new(&config.settings);
    for r in recipients.iter().take(1000) {
        std::hint::black_box(composer.compose(r).expect("compose"));
    }
    let budget = Duration::from_secs(5);
    let started = Instant::now();
    let (mut messages, mut bytes) = (0usize, 0usize);
    while started.elapsed() < budget {
        for r in &recipients {
            let message = composer.compose(r).expect("compose");
            let message = gate.check(message).expect("gate");
            bytes += message.bytes().len();
            messages += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "render: {messages} messages in {secs:.2} s = {:.0} messages/s (one thread), mean size {} bytes",
        messages as f64 / secs,
        bytes / messages
    );
}
