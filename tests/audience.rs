//! Segments wired in, on SQLite and (with FAIRSEND_TEST_POSTGRES) PostgreSQL: a campaign with
//! an `[audience]` is sent (outbox transport) to exactly the contacts a hand evaluation of the
//! fixture selects, minus the ineligible; `fairsend audience --json` counts each rule as the
//! test counts it; `check` reports an empty segment (SEG001) and a field no contact has
//! (SEG002, with the near match).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Scratch, stderr, stdout};
use fairsend::audience::{ContactStatus, EmailAddress};
use fairsend::store::{NewReason, Store};
use fairsend::suppress::{SuppressionReason, address_hash};

const CAMPAIGN_HEAD: &str = r#"subject = "Offer for {{ company }}"
from = "Sales <sales@example.com>"
reply_to = "sales@example.com"
body = "content/body.md"
require_approval = false
"#;

/// One contact as the test itself knows it.
#[derive(Debug, Clone)]
struct Person {
    email: String,
    /// Register → (industry, city, tier) there.
    memberships: BTreeMap<&'static str, (String, String, String)>,
}

impl Person {
    /// The main campaign's `where`, evaluated by hand: any membership may satisfy it.
    fn matches_main(&self) -> bool {
        self.memberships.values().any(|(industry, city, tier)| {
            (industry == "logistics" && city != "Oulu") || tier == "gold"
        })
    }

    fn in_turku(&self) -> bool {
        self.memberships
            .values()
            .any(|(_, city, _)| city == "Turku")
    }
}

/// Customers (industry, city) and partners (city, tier); some people are in both. A consumer
/// address without consent sits outside every segment: it must not block the campaigns.
fn fixture() -> (Scratch, Vec<Person>) {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/registers.toml",
        &format!(
            "{}\n[registers.partners]\ntitle = \"Testi Yhtiö Oy:n kumppanirekisteri\"\nkind = \"customer\"\n\
             controller = \"Testi Yhtiö Oy\"\ncontroller_contact = \"privacy@example.com\"\n\
             default_legal_basis = \"customer_relationship\"\ndefault_locale = \"fi\"\n",
            common::REGISTERS
        ),
    );
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    let mut customers = String::from("email,first_name,last_name,company,industry,city\n");
    let mut partners = String::from("email,first_name,last_name,company,city,tier\n");
    let industries = ["logistics", "retail", "logistics", ""];
    let cities = ["Tampere", "Turku", "Oulu"];
    for i in 0..30usize {
        let email = format!("p{i:02}@firm{}.example", i % 4);
        let (industry, city) = (industries[i % 4], cities[i % 3]);
        customers.push_str(&format!(
            "{email},First{i},Last{i},Company {i} Oy,{industry},{city}\n"
        ));
        add(&mut people, &email, "customers", (industry, city, ""));
        if i % 5 == 0 {
            let (city, tier) = (cities[(i / 5) % 3], ["gold", "silver"][(i / 5) % 2]);
            partners.push_str(&format!(
                "{email},First{i},Last{i},Company {i} Oy,{city},{tier}\n"
            ));
            add(&mut people, &email, "partners", ("", city, tier));
        }
    }
    for j in 0..4usize {
        let email = format!("q{j}@partner{j}.example");
        let (city, tier) = (cities[j % 3], ["gold", "silver"][j % 2]);
        partners.push_str(&format!(
            "{email},Q{j},Partner,Partner {j} Ab,{city},{tier}\n"
        ));
        add(&mut people, &email, "partners", ("", city, tier));
    }
    customers.push_str("consumer@gmail.com,Pia,P,Home,retail,Oulu\n");
    add(
        &mut people,
        "consumer@gmail.com",
        "customers",
        ("retail", "Oulu", ""),
    );
    scratch.write("customers.csv", &customers);
    scratch.write("partners.csv", &partners);
    for (file, register) in [("customers.csv", "customers"), ("partners.csv", "partners")] {
        let out = scratch.run(&["import", file, "--register", register]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    (scratch, people.into_values().collect())
}

fn add(
    people: &mut BTreeMap<String, Person>,
    email: &str,
    register: &'static str,
    v: (&str, &str, &str),
) {
    people
        .entry(email.to_string())
        .or_insert_with(|| Person {
            email: email.to_string(),
            memberships: BTreeMap::new(),
        })
        .memberships
        .insert(register, (v.0.into(), v.1.into(), v.2.into()));
}

/// Who is not eligible, and why: set in the database through the store's own API.
fn make_ineligible(scratch: &Scratch) -> BTreeMap<String, String> {
    let ineligible: BTreeMap<String, String> = [
        ("p02@firm2.example", "passive"),
        ("p04@firm0.example", "ceased"),
        ("p06@firm2.example", "suppressed:optout"),
        ("p10@firm2.example", "suppressed:complaint"),
        ("p01@firm1.example", "suppressed:optout"),
    ]
    .into_iter()
    .map(|(e, r)| (e.to_string(), r.to_string()))
    .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = Store::open(&scratch.db_url()).await.expect("store");
        let secret = common::unlock(scratch, &store).await;
        for (email, rule) in &ineligible {
            let address = EmailAddress::parse(email).expect("address");
            match rule.as_str() {
                "passive" => store
                    .set_contact_status(&address, ContactStatus::Passive)
                    .await
                    .map(|_| ()),
                "ceased" => store
                    .set_contact_status(&address, ContactStatus::Ceased)
                    .await
                    .map(|_| ()),
                reason => store
                    .add_suppression(&NewReason {
                        email_hash: &address_hash(&secret, &address),
                        email: Some(address.as_str()),
                        reason: SuppressionReason::parse(&reason["suppressed:".len()..])
                            .expect("reason"),
                        source: "manual",
                        evidence: None,
                        campaign_id: None,
                    })
                    .await
                    .map(|_| ()),
            }
            .expect("made ineligible");
        }
    });
    ineligible
}

/// The recipients of a campaign's messages, read from the `To:` of the files the outbox
/// transport wrote.
fn recipients(scratch: &Scratch, campaign: &str) -> BTreeSet<String> {
    let Ok(dir) = std::fs::read_dir(scratch.path("outbox")) else {
        return BTreeSet::new();
    };
    dir.map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{campaign}-")) && n.ends_with(".eml"))
        })
        .map(|p| {
            let message = common::parse_message(&std::fs::read(&p).expect("read"));
            let to = message.one("to");
            to.rsplit_once('<')
                .map_or(to, |(_, a)| a.trim_end_matches('>'))
                .trim()
                .to_string()
        })
        .collect()
}

fn write_campaign(scratch: &Scratch, name: &str, audience: &str) -> String {
    let file = format!("config/campaigns/{name}.toml");
    scratch.write(
        &file,
        &format!(
            "name = \"{name}\"\nregisters = [\"customers\", \"partners\"]\n{CAMPAIGN_HEAD}\n[audience]\n{audience}\n"
        ),
    );
    file
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {} / {}", stdout(out), stderr(out)))
}

#[test]
fn a_segmented_campaign_goes_to_the_hand_evaluated_contacts_and_audience_counts_each_rule() {
    let (scratch, people) = fixture();
    let ineligible = make_ineligible(&scratch);

    // A first campaign to Turku: what the second one excludes.
    let spring = write_campaign(&scratch, "spring", "where = 'city = \"Turku\"'");
    let out = scratch.run(&["send", &spring]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want_spring: BTreeSet<String> = people
        .iter()
        .filter(|p| p.in_turku() && !ineligible.contains_key(&p.email))
        .map(|p| p.email.clone())
        .collect();
    assert!(want_spring.len() >= 5, "{want_spring:?}");
    assert_eq!(recipients(&scratch, "spring"), want_spring);

    let main = write_campaign(
        &scratch,
        "autumn",
        "where = '(industry = \"logistics\" and city != \"Oulu\") or tier = \"gold\"'\n\
         exclude_campaigns = [\"spring\"]",
    );
    // The test's own verdict per contact, in the documented order: compliance, then the
    // segment's parts.
    let mut want_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut want_selected = BTreeSet::new();
    for p in &people {
        let rule = if let Some(rule) = ineligible.get(&p.email) {
            rule.clone()
        } else if !p.matches_main() {
            "where".to_string()
        } else if want_spring.contains(&p.email) {
            "exclude_campaigns".to_string()
        } else {
            want_selected.insert(p.email.clone());
            continue;
        };
        *want_counts.entry(rule).or_default() += 1;
    }
    assert!(
        want_selected.len() >= 5 && want_counts["where"] >= 5,
        "{want_counts:?}"
    );
    assert!(want_counts["exclude_campaigns"] >= 1, "{want_counts:?}");

    let out = scratch.run(&["audience", &main, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["contacts"].as_u64(), Some(people.len() as u64), "{v}");
    let selected: BTreeSet<String> = v["selected"]
        .as_array()
        .expect("selected")
        .iter()
        .map(|m| m["email"].as_str().expect("email").to_string())
        .collect();
    assert_eq!(selected, want_selected);
    let mut got_counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in v["counts"].as_array().expect("counts") {
        let rule = c["rule"].as_str().expect("rule");
        let key = match c["reason"].as_str() {
            Some(reason) => format!("{rule}:{reason}"),
            None => rule.to_string(),
        };
        got_counts.insert(key, c["count"].as_u64().expect("count") as usize);
    }
    assert_eq!(got_counts, want_counts, "{v}");
    let listed = v["excluded"].as_array().expect("excluded");
    assert_eq!(listed.len(), want_counts.values().sum::<usize>());
    assert!(
        listed
            .iter()
            .any(|l| l["email"] == "consumer@gmail.com" && l["rule"] == "where")
    );

    // The human view says the same in words.
    let out = scratch.run(&["audience", "autumn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("not in the segment: `where`"), "{text}");
    assert!(text.contains("suppressed (optout)"), "{text}");

    // The send goes to exactly those; the consumer address outside the segment blocks nothing.
    let out = scratch.run(&["send", &main]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recipients(&scratch, "autumn"), want_selected);
    // A second run finds nothing new to add.
    let out = scratch.run(&["send", &main]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recipients(&scratch, "autumn"), want_selected);
}

fn check_json(scratch: &Scratch, file: &str) -> (Option<i32>, serde_json::Value) {
    let out = scratch.run(&["check", file, "--json"]);
    (out.status.code(), json_of(&out))
}

fn findings<'v>(v: &'v serde_json::Value, code: &str) -> Vec<&'v serde_json::Value> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

#[test]
fn check_reports_an_empty_segment_and_a_field_no_contact_has() {
    let (scratch, _) = fixture();
    let typo = write_campaign(
        &scratch,
        "typo",
        "where = 'industy = \"logistics\" or tier = \"gold\"'",
    );
    let (code, v) = check_json(&scratch, &typo);
    let seg002 = findings(&v, "SEG002");
    assert_eq!(seg002.len(), 1, "{v}");
    assert_eq!(seg002[0]["severity"], "warning");
    let message = seg002[0]["message"].as_str().expect("message");
    assert!(
        message.contains("`industy`") && message.contains("Did you mean `industry`?"),
        "{message}"
    );
    assert!(
        message.contains("city, industry, tier"),
        "the columns that exist: {message}"
    );
    assert!(
        findings(&v, "SEG001").is_empty(),
        "gold partners are selected: {v}"
    );
    assert_eq!(code, Some(0), "a warning does not stop the campaign: {v}");

    let empty = write_campaign(&scratch, "nobody", "where = 'city = \"Helsinki\"'");
    let (code, v) = check_json(&scratch, &empty);
    let seg001 = findings(&v, "SEG001");
    assert_eq!(seg001.len(), 1, "{v}");
    assert_eq!(seg001[0]["severity"], "error");
    assert!(findings(&v, "SEG002").is_empty(), "city exists: {v}");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["audience"]["selected"], 0, "{v}");
    // send refuses it and sends nothing.
    let out = scratch.run(&["send", &empty]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(recipients(&scratch, "nobody").is_empty());

    // The consumer address without consent blocks a campaign whose segment takes it in.
    let oulu = write_campaign(&scratch, "oulu", "where = 'city = \"Oulu\"'");
    let (code, v) = check_json(&scratch, &oulu);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(findings(&v, "AUD002").len(), 1, "{v}");
    let audience = json_of(&scratch.run(&["audience", "oulu", "--json"]));
    let blocked: Vec<&serde_json::Value> = audience["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .filter(|l| l["rule"] == "consumer_without_consent")
        .collect();
    assert_eq!(blocked.len(), 1, "{audience}");
    assert_eq!(blocked[0]["email"], "consumer@gmail.com");
    assert_eq!(blocked[0]["detail"], "gmail.com");
    // A name no campaign file has is the user's mistake: exit 2, saying so.
    let out = scratch.run(&["audience", "no-such-campaign"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no campaign file"),
        "{}",
        stderr(&out)
    );

    // check's audience is the segment's.
    let gold = write_campaign(&scratch, "gold", "where = 'tier = \"gold\"'");
    let (code, v) = check_json(&scratch, &gold);
    assert_eq!(code, Some(0), "{v}");
    assert!(
        findings(&v, "SEG001").is_empty() && findings(&v, "SEG002").is_empty(),
        "{v}"
    );
    let audience = json_of(&scratch.run(&["audience", &gold, "--json"]));
    assert_eq!(
        v["audience"]["eligible"].as_u64(),
        Some(audience["selected"].as_array().expect("selected").len() as u64),
        "{v} / {audience}"
    );
}

#[test]
fn the_segment_is_evaluated_when_the_outbox_is_filled() {
    let (scratch, people) = fixture();
    let file = write_campaign(&scratch, "tampere", "where = 'city = \"Tampere\"'");
    let in_tampere = |p: &Person| p.memberships.values().any(|(_, city, _)| city == "Tampere");
    let mut want: BTreeSet<String> = people
        .iter()
        .filter(|p| in_tampere(p))
        .map(|p| p.email.clone())
        .collect();
    assert!(want.contains("p03@firm3.example") && !want.contains("p07@firm3.example"));
    // A dry run queues the campaign (nothing is sent).
    let out = scratch.run(&["send", &file, "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(recipients(&scratch, "tampere").is_empty());
    // Then p03 moves away (leaves the segment) and p07 moves in (joins it).
    scratch.write(
        "moved.csv",
        "email,first_name,last_name,company,industry,city\n\
         p03@firm3.example,First3,Last3,Company 3 Oy,,Oulu\n\
         p07@firm3.example,First7,Last7,Company 7 Oy,,Tampere\n",
    );
    let out = scratch.run(&["import", "moved.csv", "--register", "customers"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let audience = json_of(&scratch.run(&["audience", &file, "--json"]));
    let now: BTreeSet<&str> = audience["selected"]
        .as_array()
        .expect("selected")
        .iter()
        .map(|m| m["email"].as_str().expect("email"))
        .collect();
    assert!(now.contains("p07@firm3.example") && !now.contains("p03@firm3.example"));
    // The send keeps p03's queued row and adds p07.
    let out = scratch.run(&["send", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    want.insert("p07@firm3.example".into());
    assert_eq!(recipients(&scratch, "tampere"), want);

    // A segment that selects nobody any more does not refuse a campaign already queued.
    write_campaign(&scratch, "tampere", "where = 'city = \"Helsinki\"'");
    let (code, v) = check_json(&scratch, &file);
    assert_eq!(findings(&v, "SEG003").len(), 1, "{v}");
    assert!(findings(&v, "SEG001").is_empty(), "{v}");
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn a_contact_in_two_registers_is_sent_through_the_first_whose_data_matches() {
    let (scratch, _) = fixture();
    // p00 is a customer (no tier) and a gold partner: only the partner data matches.
    let file = write_campaign(&scratch, "gold", "where = 'tier = \"gold\"'");
    let audience = json_of(&scratch.run(&["audience", &file, "--json"]));
    let p00 = audience["selected"]
        .as_array()
        .expect("selected")
        .iter()
        .find(|m| m["email"] == "p00@firm0.example")
        .cloned();
    assert_eq!(
        p00.map(|m| m["register"].clone()),
        Some("partners".into()),
        "{audience}"
    );
    let out = scratch.run(&["send", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The partner register's footer (its title) is the one p00 received.
    let sent = std::fs::read_dir(scratch.path("outbox"))
        .expect("outbox")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .map(|raw| common::parse_message(&raw))
        .find(|m| m.one("to").contains("p00@firm0.example"))
        .expect("p00's message");
    assert!(sent.text.contains("kumppanirekisteri"), "{}", sent.text);
}
