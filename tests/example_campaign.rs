//! The README's first command on the repository's example configuration: every eligible
//! contact gets one message in the outbox, correctly addressed and with the unsubscribe
//! headers and links; a second run sends nothing new.

mod common;

use std::collections::BTreeSet;

use common::{Scratch, parse_message, states, stderr, stdout};

fn unique_example_addresses(scratch: &Scratch) -> BTreeSet<String> {
    let mut emails = BTreeSet::new();
    for file in ["customers.csv", "events.csv", "prospects.csv"] {
        let text =
            std::fs::read_to_string(scratch.path(&format!("config/contacts/{file}"))).unwrap();
        for line in text.lines().skip(1) {
            emails.insert(line.split(',').next().unwrap().to_lowercase());
        }
    }
    emails
}

#[test]
fn example_campaign_fills_the_outbox_once() {
    let scratch = Scratch::example();
    let expected = unique_example_addresses(&scratch);
    assert!(
        expected.len() >= 20,
        "the example needs at least 20 contacts"
    );
    let outbox = scratch.path("outbox");
    let transport = format!("outbox:{}", outbox.display());

    let out = scratch.run(&[
        "send",
        "config/campaigns/example.toml",
        "--transport",
        &transport,
    ]);
    assert!(out.status.success(), "send failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("DEVELOPMENT signing secret"),
        "must say it uses the development secret"
    );

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), expected.len(), "one .eml per eligible contact");
    let mut seen = BTreeSet::new();
    let mut locales = BTreeSet::new();
    for file in &files {
        assert_eq!(file.extension().unwrap(), "eml");
        let raw = std::fs::read(file).unwrap();
        let m = parse_message(&raw);
        let to = m.one("to");
        let address = to
            .rsplit_once('<')
            .map(|(_, a)| a.trim_end_matches('>'))
            .unwrap_or(to);
        assert!(!to.contains(','), "To holds one recipient only: {to}");
        assert!(expected.contains(address), "unexpected recipient {address}");
        assert!(
            seen.insert(address.to_string()),
            "{address} got two messages"
        );
        assert!(m.all("cc").is_empty() && m.all("bcc").is_empty());
        let envelope_to = m.one("x-fairsend-envelope-to");
        assert_eq!(envelope_to, format!("<{address}>"));
        assert!(m.one("return-path").starts_with("<bounces+"));
        let list_unsubscribe = m.one("list-unsubscribe");
        assert_eq!(m.one("list-unsubscribe-post"), "List-Unsubscribe=One-Click");
        let url = list_unsubscribe
            .split(['<', '>'])
            .find(|p| p.starts_with("http://") || p.starts_with("https://"))
            .expect("https link in List-Unsubscribe");
        assert!(
            list_unsubscribe.contains("<mailto:unsubscribe+"),
            "{list_unsubscribe}"
        );
        assert!(m.text.contains(url), "text part lacks the unsubscribe link");
        assert!(
            m.html.contains(&format!("href=\"{url}\"")),
            "HTML part lacks the unsubscribe link"
        );
        m.one("message-id");
        m.one("date");
        let html_lang = m.html.split("lang=\"").nth(1).unwrap()[..2].to_string();
        locales.insert(html_lang);
    }
    assert!(
        locales.len() >= 2,
        "at least two locales, found {locales:?}"
    );

    let again = scratch.run(&[
        "send",
        "config/campaigns/example.toml",
        "--transport",
        &transport,
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("sent 0 messages,"),
        "second run: {}",
        stdout(&again)
    );
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        expected.len(),
        "nothing new"
    );
    let s = states(&scratch, "autumn-seminar-2026");
    assert_eq!(s["sent"], expected.len());
    assert_eq!(s["queued"], 0);
    assert_eq!(s["sending"], 0);
}
