//! Register hygiene: ceased companies, departed persons, retention purges and the report, with
//! exact counts before and after; a purge leaves no personal data of the purged contacts in any
//! table, and a purged address that had opted out is still refused on re-import.

mod common;

use common::{Scratch, stderr, stdout, text_occurrences};

const REGISTERS: &str = r#"
[registers.customers]
title = "Asiakkaat"
kind = "customer"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "customer_relationship"
retention = "24 months"

[registers.old_list]
title = "Ostolista 2020"
kind = "purchased"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "job_role"
provider = "Vendor Oy"
acquisition_method = "licensed list"
acquired_on = "2020-01-01"
valid_until = "2099-12-31"
retention = "12 months"

[registers.expired_list]
title = "Ostolista 2024"
kind = "purchased"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "job_role"
provider = "Vendor Oy"
acquisition_method = "licensed list"
acquired_on = "2024-01-01"
valid_until = "2025-01-01"
"#;

// Business IDs with valid check digits: 0112038-9, 0201256-6, 0109862-8.
const CUSTOMERS: &str = "email,first_name,last_name,company,business_id\n\
    anna@alpha.example,Anna,Alanen,Alpha Oy,0112038-9\n\
    aleksi@alpha.example,Aleksi,Aho,Alpha Oy,0112038-9\n\
    bea@beta.example,Bea,Berg,Beta Oy,0201256-6\n\
    cecilia@gamma.example,Cecilia,Carlsson,Gamma Oy,0109862-8\n\
    dan@gamma.example,Dan,Dahl,Gamma Oy,0109862-8\n";

const OLD_LIST: &str = "email,first_name,last_name,company,business_id\n\
    otto@omega.example,Otto,Oksanen,Omega Oy,\n\
    bea@beta.example,Bea,Berg,Beta Oy,0201256-6\n";

const EXPIRED: &str = "email,first_name,last_name,company\nxena@xi.example,Xena,Xylander,Xi Oy\n";

fn setup() -> Scratch {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/registers.toml", REGISTERS);
    scratch.write("customers.csv", CUSTOMERS);
    scratch.write("old.csv", OLD_LIST);
    scratch.write("expired.csv", EXPIRED);
    for (file, register) in [
        ("customers.csv", "customers"),
        ("old.csv", "old_list"),
        ("expired.csv", "expired_list"),
    ] {
        let out = scratch.run(&["import", file, "--register", register]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    scratch
}

fn without_import(campaign: &str) -> String {
    campaign.replace(
        "[[import]]\nfile = \"contacts/customers.csv\"\nregister = \"customers\"\n",
        "",
    )
}

fn report(scratch: &Scratch) -> serde_json::Value {
    let out = scratch.run(&["hygiene", "report", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    serde_json::Value::Object(
        rows.into_iter()
            .map(|r| (r["register"].as_str().unwrap().to_string(), r))
            .collect(),
    )
}

#[test]
fn ceased_companies_and_departed_persons() {
    let scratch = setup();
    let before = report(&scratch);
    assert_eq!(before["customers"]["by_status"]["active"], 5);

    scratch.write(
        "ceased.csv",
        "business_id,name\n0112038-9,Alpha Oy\n0109862-8,Gamma Oy\n1234567-1,Nobody Oy\n0112038-8,Typo Oy\n",
    );
    let out = scratch.run(&["hygiene", "ceased", "ceased.csv"]);
    assert_eq!(out.status.code(), Some(1), "one bad row: {}", stderr(&out));
    assert!(stderr(&out).contains("ceased.csv: line 5: column business_id: '0112038-8' looks like a Finnish business ID (Y-tunnus) but its check digit is wrong"), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 ceased business ID(s): 4 contact(s) newly ceased, 0 already ceased; 1 ID(s) match no contact; 1 row(s) rejected"), "{}", stdout(&out));
    let after = report(&scratch);
    assert_eq!(after["customers"]["by_status"]["ceased"], 4);
    assert_eq!(after["customers"]["by_status"]["active"], 1);
    assert_eq!(after["customers"]["ceased_share"], 0.8);
    // Idempotent.
    let again = scratch.run(&["hygiene", "ceased", "ceased.csv"]);
    assert!(
        stdout(&again).contains("0 contact(s) newly ceased, 4 already ceased"),
        "{}",
        stdout(&again)
    );

    scratch.write(
        "left.csv",
        "email,business_id,first_name,last_name\nbea@beta.example,,,\n,0201256-6,Otto,Oksanen\nnobody@nowhere.example,,,\n,0201256-6,Bea,Berg\n",
    );
    let out = scratch.run(&["hygiene", "passivate", "left.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("1 contact(s) made passive, 1 already passive or ceased, 2 not found"),
        "{}",
        stdout(&out)
    );
    let after = report(&scratch);
    assert_eq!(after["customers"]["by_status"]["passive"], 1);
    assert_eq!(
        after["old_list"]["by_status"]["passive"], 1,
        "the same person in another register"
    );

    // Ceased and passive contacts are excluded from a campaign.
    scratch.write(
        "config/campaigns/cust.toml",
        &without_import(common::CAMPAIGN),
    );
    let check = scratch.run(&["check", "config/campaigns/cust.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&check)).unwrap();
    assert_eq!(
        (
            v["audience"]["excluded_ceased"].as_i64(),
            v["audience"]["excluded_passive"].as_i64()
        ),
        (Some(4), Some(1))
    );
}

#[test]
fn purge_deletes_past_retention_and_expired_lists_and_leaves_no_personal_data() {
    let scratch = setup();
    // Otto (old_list only) opts out before the purge.
    assert!(
        scratch
            .run(&["optout", "add", "otto@omega.example"])
            .status
            .success()
    );
    let before = report(&scratch);
    assert_eq!(
        (
            before["old_list"]["past_retention"].as_i64(),
            before["expired_list"]["contacts"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(before["customers"]["past_retention"], 0);

    // A campaign over the old list warns about contacts past retention.
    scratch.write(
        "config/campaigns/old.toml",
        &without_import(
            &common::CAMPAIGN.replace("registers = [\"customers\"]", "registers = [\"old_list\"]"),
        ),
    );
    let check = scratch.run(&["check", "config/campaigns/old.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&check)).unwrap();
    let aud009: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "AUD009")
        .collect();
    assert_eq!(aud009.len(), 1);
    assert!(
        aud009[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("1 contact(s) are past"),
        "Bea only: Otto opted out: {aud009:?}"
    );

    let dry = scratch.run(&["hygiene", "purge", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        stdout(&dry).contains("dry run: 3 register entr(ies) would be deleted"),
        "{}",
        stdout(&dry)
    );
    assert!(
        stdout(&dry).contains("would delete xena@xi.example"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(
        report(&scratch)["old_list"]["contacts"],
        2,
        "a dry run changes nothing"
    );

    let purge = scratch.run(&["hygiene", "purge", "--json"]);
    assert!(purge.status.success(), "{}", stderr(&purge));
    let v: serde_json::Value = serde_json::from_str(&stdout(&purge)).unwrap();
    assert_eq!(v["deleted"]["entries_deleted"], 3);
    assert_eq!(
        v["deleted"]["contacts_deleted"], 2,
        "Otto and Xena; Bea stays through the customer register"
    );
    let after = report(&scratch);
    assert!(
        after.get("old_list").is_none() && after.get("expired_list").is_none(),
        "{after}"
    );
    assert_eq!(after["customers"]["contacts"], 5);

    for needle in ["otto@omega", "Oksanen", "xena@xi", "Xylander"] {
        let left = text_occurrences(&scratch.db_url(), needle);
        assert!(left.is_empty(), "{needle} still in {left:?}");
        // Nor in the database file's free pages or write-ahead log.
        let in_files = common::raw_file_occurrences(&scratch, needle);
        assert!(in_files.is_empty(), "{needle} still in {in_files:?}");
    }
    assert!(
        !text_occurrences(&scratch.db_url(), "bea@beta.example").is_empty(),
        "Bea is still a customer"
    );

    // The opted-out, purged address stays blocked.
    let reimport = scratch.run(&["import", "old.csv", "--register", "old_list"]);
    assert_eq!(reimport.status.code(), Some(1));
    assert!(
        stderr(&reimport).contains(
            "old.csv:2: email: this address opted out of marketing; it is not imported again"
        ),
        "{}",
        stderr(&reimport)
    );
    assert!(text_occurrences(&scratch.db_url(), "otto@omega").is_empty());
}

#[test]
fn invalid_business_ids_are_row_errors_on_import() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "c.csv",
        "email,business_id\na@x.example,0112038-9\nb@x.example,0112038-1\nc@x.example,FI02012566\n",
    );
    let out = scratch.run(&["import", "c.csv", "--register", "customers", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("c.csv: line 3: column business_id: '0112038-1' looks like a Finnish business ID (Y-tunnus) but its check digit is wrong"), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["inserted"], 2);
}

#[test]
fn one_person_in_two_registers_keeps_each_registers_data() {
    let scratch = setup();
    // The purchased list says something else about Bea; it must not overwrite the customer entry.
    scratch.write("old2.csv", "email,first_name,last_name,company,business_id\nbea@beta.example,Beatrice,Berg-Old,Beta Group,0201256-6\n");
    assert!(
        scratch
            .run(&["import", "old2.csv", "--register", "old_list"])
            .status
            .success()
    );
    for (campaign, registers, name, source) in [
        (
            "customers-first",
            "[\"customers\", \"old_list\"]",
            "Bea Berg",
            "Asiakkaat",
        ),
        (
            "purchased-first",
            "[\"old_list\", \"customers\"]",
            "Beatrice Berg-Old",
            "Ostolista 2020",
        ),
    ] {
        scratch.write(
            "config/campaigns/both.toml",
            &without_import(&common::CAMPAIGN.replace(
                "registers = [\"customers\"]",
                &format!("registers = {registers}"),
            ))
            .replace("Offer for {{ company }}", "Offer for {{ full_name }}")
            .replace(
                "name = \"test-campaign\"",
                &format!("name = \"{campaign}\""),
            ),
        );
        let out = scratch.run(&[
            "preview",
            "config/campaigns/both.toml",
            "--to",
            "bea@beta.example",
            "--format",
            "text",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("rekisteristä {source}")),
            "address source from the register selected through: {text}"
        );
        let eml = scratch.run(&[
            "preview",
            "config/campaigns/both.toml",
            "--to",
            "bea@beta.example",
        ]);
        assert!(
            stdout(&eml).contains(&format!("Subject: Offer for {name}")),
            "{}",
            stdout(&eml)
        );
    }
}
