//! `fairsend check`: each rule on a small fixture audience, with exact counts; every required
//! config field, removed, fails `check` naming that field.

mod common;

use common::{Scratch, stderr, stdout};
use fairsend::audience::{ContactStatus, EmailAddress};
use fairsend::store::{NewReason, Store};
use fairsend::suppress::{SuppressionReason, address_hash};

const FIXTURE: &str = "email,first_name,last_name,company,title,legal_basis,consent_at\n\
    anna@firma.example,Anna,A,Firma Oy,CEO,,\n\
    bertil@firma.example,Bertil,B,Firma Oy,CFO,,\n\
    private.person@gmail.com,Pia,P,,,,\n\
    another.one@suomi24.fi,Olli,O,,,,\n\
    consented@hotmail.fi,Cecilia,C,,,consent,2026-02-01\n\
    info@firma.example,,,Firma Oy,,,\n\
    myynti@toinen.example,,,Toinen Oy,,,\n\
    passive.person@firma.example,Paavo,P,Firma Oy,CTO,,\n\
    ceased.company@lopetettu.example,Cedric,C,Lopetettu Oy,CEO,,\n\
    opted.out@firma.example,Otto,O,Firma Oy,CMO,,\n";

fn check_json(scratch: &Scratch) -> (Option<i32>, serde_json::Value) {
    let out = scratch.run(&["check", "config/campaigns/test.toml", "--json"]);
    let v = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} / {}", stdout(&out), stderr(&out)));
    (out.status.code(), v)
}

fn count(v: &serde_json::Value, code: &str) -> usize {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .count()
}

#[test]
fn each_rule_on_a_fixture_audience_with_exact_counts() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/contacts/customers.csv", FIXTURE);
    // Consumers have no company and role accounts no first name: the campaign gives
    // fallbacks, or CNT003 would (rightly) report them.
    scratch.write(
        "config/content/body.md",
        "Hello {{ first_name | default(\"there\") }} at {{ company | default(\"your company\") }},\n",
    );
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace("{{ company }}", "{{ company | default('you') }}"),
    );
    scratch.import_customers();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        let a = |s: &str| EmailAddress::parse(s).unwrap();
        store
            .set_contact_status(&a("passive.person@firma.example"), ContactStatus::Passive)
            .await
            .unwrap();
        store
            .set_contact_status(
                &a("ceased.company@lopetettu.example"),
                ContactStatus::Ceased,
            )
            .await
            .unwrap();
        let opted = a("opted.out@firma.example");
        let secret = common::unlock(&scratch, &store).await;
        store
            .add_suppression(&NewReason {
                email_hash: &address_hash(&secret, &opted),
                email: Some(opted.as_str()),
                reason: SuppressionReason::OptOut,
                source: "manual",
                evidence: None,
                campaign_id: None,
            })
            .await
            .unwrap();
    });

    let (code, v) = check_json(&scratch);
    assert_eq!(code, Some(1), "free-mail without consent is an error: {v}");
    assert_eq!(
        count(&v, "AUD002"),
        2,
        "gmail.com and suomi24.fi without consent: {v}"
    );
    assert_eq!(count(&v, "AUD003"), 2, "info@ and myynti@: {v}");
    assert_eq!(count(&v, "AUD001"), 0);
    let a = &v["audience"];
    assert_eq!(a["selected"], 10);
    assert_eq!(a["eligible"], 7);
    assert_eq!(
        (
            a["excluded_passive"].as_i64(),
            a["excluded_ceased"].as_i64(),
            a["excluded_suppressed"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        v["messages_checked"], 7,
        "every eligible message is rendered and gated"
    );
    let aud002: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "AUD002")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert!(
        aud002
            .iter()
            .any(|s| s.contains("private.person@gmail.com") && s.contains("customers.csv:4")),
        "{aud002:?}"
    );
    let severities: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert!(
        severities.contains(&("AUD002", "error"))
            && severities.contains(&("AUD003", "warning"))
            && severities.contains(&("AUD004", "info"))
    );

    // send refuses the campaign while check has errors, and sends nothing.
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    assert!(stderr(&send).contains("send refused"), "{}", stderr(&send));
    assert!(stdout(&send).contains("error[AUD002]"), "{}", stdout(&send));
    assert!(!scratch.path("outbox").exists());

    // Once the free-mail contacts have consent recorded, the campaign is sendable (warnings only).
    scratch.write(
        "config/contacts/customers.csv",
        &FIXTURE
            .replace(
                "private.person@gmail.com,Pia,P,,,,",
                "private.person@gmail.com,Pia,P,,,consent,2026-03-01",
            )
            .replace(
                "another.one@suomi24.fi,Olli,O,,,,",
                "another.one@suomi24.fi,Olli,O,,,consent,2026-03-01",
            ),
    );
    let (code, v) = check_json(&scratch);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(count(&v, "AUD002"), 0);
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(send.status.success(), "{}", stderr(&send));
    assert_eq!(
        std::fs::read_dir(scratch.path("outbox")).unwrap().count(),
        7
    );
}

#[test]
fn expired_purchased_register_is_an_error() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/registers.toml",
        &format!(
            "{}\n[registers.old_list]\ntitle = \"Old list\"\nkind = \"purchased\"\ncontroller = \"Testi Yhtiö Oy\"\n\
             controller_contact = \"privacy@example.com\"\ndefault_legal_basis = \"job_role\"\nprovider = \"Vendor Oy\"\n\
             acquisition_method = \"list purchase\"\nacquired_on = \"2024-01-01\"\nvalid_until = \"2025-01-01\"\n",
            common::REGISTERS
        ),
    );
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace(
            "registers = [\"customers\"]",
            "registers = [\"customers\", \"old_list\"]",
        ),
    );
    scratch.contacts("config/contacts/customers.csv", 2);
    let (code, v) = check_json(&scratch);
    assert_eq!(code, Some(1));
    assert_eq!(count(&v, "AUD001"), 1, "{v}");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "AUD001")
        .unwrap();
    assert!(
        f["subject"]
            .as_str()
            .unwrap()
            .contains("[registers.old_list] valid_until"),
        "{f}"
    );
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(send.status.code(), Some(1));
}

#[test]
fn removing_any_required_config_field_fails_check_naming_it() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "config/fairsend.toml",
            "legal_name = ",
            "[sender] legal_name",
        ),
        (
            "config/fairsend.toml",
            "business_id = ",
            "[sender] business_id",
        ),
        (
            "config/fairsend.toml",
            "postal_address = ",
            "[sender] postal_address",
        ),
        (
            "config/fairsend.toml",
            "contact_email = ",
            "[sender] contact_email",
        ),
        (
            "config/fairsend.toml",
            "privacy_contact = ",
            "[sender] privacy_contact",
        ),
        (
            "config/fairsend.toml",
            "retention_months = ",
            "[privacy] retention_months",
        ),
        (
            "config/fairsend.toml",
            "public_base_url = ",
            "[links] public_base_url",
        ),
        ("config/fairsend.toml", "domain = ", "[bounces] domain"),
        (
            "config/registers.toml",
            "title = ",
            "[registers.customers] title",
        ),
        (
            "config/registers.toml",
            "kind = ",
            "[registers.customers] kind",
        ),
        (
            "config/registers.toml",
            "controller = ",
            "[registers.customers] controller",
        ),
        (
            "config/registers.toml",
            "controller_contact = ",
            "[registers.customers] controller_contact",
        ),
        ("config/campaigns/test.toml", "reply_to = ", "reply_to"),
        ("config/campaigns/test.toml", "from = ", "from"),
        ("config/campaigns/test.toml", "subject = ", "subject"),
    ];
    for (file, line_prefix, field) in cases {
        let scratch = Scratch::new("outbox:outbox");
        scratch.contacts("config/contacts/customers.csv", 2);
        let text = std::fs::read_to_string(scratch.path(file)).unwrap();
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with(line_prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(text, without, "{line_prefix} not found in {file}");
        scratch.write(file, &without);
        let out = scratch.run(&["check", "config/campaigns/test.toml"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{file} without {field}: {}",
            stderr(&out)
        );
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains(&format!("{field}: is missing")),
            "{file} without {field}: {all}"
        );
        assert!(all.contains("error[CFG001]"), "{all}");
    }
    // A purchased register needs its provenance.
    for key in [
        "provider",
        "acquisition_method",
        "acquired_on",
        "valid_until",
    ] {
        let scratch = Scratch::new("outbox:outbox");
        let purchased = "[registers.customers]\ntitle = \"T\"\nkind = \"purchased\"\ncontroller = \"C\"\n\
            controller_contact = \"c@example.com\"\ndefault_legal_basis = \"job_role\"\nprovider = \"P\"\n\
            acquisition_method = \"M\"\nacquired_on = \"2026-01-01\"\nvalid_until = \"2099-01-01\"\n";
        let without: String = purchased
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        scratch.write("config/registers.toml", &without);
        let out = scratch.run(&["check", "config/campaigns/test.toml"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stdout(&out).contains(&format!("[registers.customers] {key}: is missing")),
            "{}",
            stdout(&out)
        );
    }
    // Naming another supervisory authority needs its address too.
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/fairsend.toml",
        &common::fairsend_toml("outbox:outbox").replace(
            "retention_months = 24",
            "retention_months = 24\nsupervisory_authority = \"Integritetsskyddsmyndigheten\"",
        ),
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("[privacy] supervisory_authority_url"),
        "{}",
        stdout(&out)
    );
}
