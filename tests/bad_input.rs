//! Bad input gets a clear error naming the file, line and field, and changes nothing.

mod common;

use common::{Scratch, stderr, stdout};

const GOOD_ROWS: &str = "email,first_name,last_name,company,title,legal_basis,consent_at,segment\n\
    anna@firma.example,Anna,A,Firma Oy,CEO,,,a\n\
    bertil@firma.example,Bertil,B,Firma Oy,CFO,consent,2026-01-02,b\n";

fn bad_csv() -> String {
    format!(
        "{GOOD_ROWS}\
         not-an-address,Carl,C,Firma Oy,CTO,,,c\n\
         dora@firma.example,Dora,D,Firma Oy\n\
         eeva@firma.example,Eeva,E,Firma Oy,CMO,sometimes,,e\n\
         frank@firma.example,Frank,F,Firma Oy,COO,consent,,f\n\
         \"gina@firma.example\",\"Gina\r\nBcc: victim@example.com\",G,Firma Oy,CIO,,,g\n\
         ANNA@Firma.example,Anna,Andersson,Firma Oy,CEO,,,a\n"
    )
}

#[test]
fn malformed_rows_are_reported_by_line_and_column_and_valid_rows_applied() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("bad.csv", &bad_csv());
    let out = scratch.run(&["import", "bad.csv", "--register", "customers"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for expected in [
        "bad.csv: line 4: column email: 'not-an-address' has no '@'",
        "bad.csv: line 5: has 4 fields; the header has 8",
        "bad.csv: line 6: column legal_basis: 'sometimes' is not one of consent, customer_relationship, job_role",
        "bad.csv: line 7: column consent_at: is empty; consent must be recorded with its time",
        "bad.csv: line 8: column first_name:",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    // Anna twice (different case) is one person: merged, not a second contact.
    assert!(
        stdout(&out)
            .contains("2 inserted, 0 updated, 0 unchanged, 1 duplicate row(s) merged, 5 rejected"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn strict_import_applies_nothing_when_a_row_is_bad() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("bad.csv", &bad_csv());
    let out = scratch.run(&["import", "bad.csv", "--register", "customers", "--strict"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--strict: nothing was imported"),
        "{}",
        stderr(&out)
    );
    // Nothing was stored: importing the good rows now inserts both of them.
    scratch.write("good.csv", GOOD_ROWS);
    let good = scratch.run(&["import", "good.csv", "--register", "customers", "--json"]);
    assert!(good.status.success(), "{}", stderr(&good));
    let v: serde_json::Value = serde_json::from_str(&stdout(&good)).unwrap();
    assert_eq!(v["inserted"], 2);
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("good.csv", GOOD_ROWS);
    let first = scratch.run(&["import", "good.csv", "--register", "customers", "--json"]);
    assert!(first.status.success());
    let second = scratch.run(&["import", "good.csv", "--register", "customers", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(
        (
            v["inserted"].as_i64(),
            v["updated"].as_i64(),
            v["unchanged"].as_i64()
        ),
        (Some(0), Some(0), Some(2))
    );
    // A changed row is an update, not a new contact.
    scratch.write("good.csv", &GOOD_ROWS.replace("Anna,A,", "Anna,Aalto,"));
    let third = scratch.run(&["import", "good.csv", "--register", "customers", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&third)).unwrap();
    assert_eq!(
        (
            v["inserted"].as_i64(),
            v["updated"].as_i64(),
            v["unchanged"].as_i64()
        ),
        (Some(0), Some(1), Some(1))
    );
}

#[test]
fn unknown_register_and_missing_email_column_are_usage_errors() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("good.csv", GOOD_ROWS);
    let out = scratch.run(&["import", "good.csv", "--register", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("register 'nope' is not defined"),
        "{}",
        stderr(&out)
    );
    scratch.write("noemail.csv", "name,company\nAnna,Firma\n");
    let out = scratch.run(&["import", "noemail.csv", "--register", "customers"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("noemail.csv: line 1: there is no 'email' column"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_missing_business_id_is_refused_before_anything_is_written() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3);
    let toml = common::fairsend_toml("outbox:outbox").replace("business_id = \"1234567-1\"\n", "");
    scratch.write("config/fairsend.toml", &toml);
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("fairsend.toml: [sender] business_id: is missing"),
        "{err}"
    );
    assert!(
        !scratch.path("fairsend.db").exists(),
        "no database was created"
    );
    assert!(!scratch.path("outbox").exists(), "no outbox was created");
}

#[test]
fn body_with_an_unknown_field_is_refused_before_anything_is_written() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3);
    scratch.write(
        "config/content/body.md",
        "Hello {{ first_name }},\n\nyour discount code is {{ discount_code }}.\n",
    );
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("body.md: line 3: the template uses the field 'discount_code'"),
        "{err}"
    );
    assert!(!scratch.path("outbox").exists(), "nothing was sent");
    let status = scratch.run(&["status", "--json"]);
    assert_eq!(stdout(&status).trim(), "[]", "no campaign was started");
    // and the campaign's contacts were not imported either
    let import = scratch.run(&[
        "import",
        "config/contacts/customers.csv",
        "--register",
        "customers",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&import)).unwrap();
    assert_eq!(v["inserted"], 3);
}

#[test]
fn header_values_with_line_breaks_are_refused() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 3);
    let campaign = common::CAMPAIGN.replace(
        "subject = \"Offer for {{ company }}\"",
        "subject = \"Offer\\r\\nBcc: victim@example.com\"",
    );
    scratch.write("config/campaigns/test.toml", &campaign);
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("test.toml: subject: contains a line break"),
        "{err}"
    );
    assert!(!scratch.path("outbox").exists());

    let from = common::CAMPAIGN.replace(
        "from = \"Sales <sales@example.com>\"",
        "from = \"Sales\\n <sales@example.com>\"",
    );
    scratch.write("config/campaigns/test.toml", &from);
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("test.toml: from: contains a line break"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_row_in_a_campaign_contact_file_refuses_the_whole_send() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/contacts/customers.csv", &bad_csv());
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing was imported or sent"),
        "{}",
        stderr(&out)
    );
    assert!(!scratch.path("outbox").exists());
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/registers.toml",
        "[registers.customers]\nkind = \"customer\n",
    );
    let out = scratch.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("registers.toml") && err.contains("line 2"),
        "{err}"
    );
}
