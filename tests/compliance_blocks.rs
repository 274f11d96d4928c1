//! The legal content of every footer: each locale × register kind × legal basis renders the
//! sender identity, the address source, every GDPR art. 14 item and a separate art. 21 block,
//! in both the text and the HTML part.

mod common;

use std::collections::BTreeMap;

use common::Scratch;
use fairsend::audience::{ContactRecord, EmailAddress, Recipient};
use fairsend::compose::Composer;
use fairsend::config::{ConfigDir, LegalBasis, Locale};
use fairsend::suppress::Secret;

const REGISTERS: &str = r#"
[registers.customers]
title = "Asiakasrekisteri A"
kind = "customer"
controller = "Controller Customer Oy"
controller_contact = "cust-privacy@example.com"
default_legal_basis = "customer_relationship"

[registers.events]
title = "Tapahtumarekisteri B"
kind = "marketing"
controller = "Controller Events Oy"
controller_contact = "events-privacy@example.com"
default_legal_basis = "job_role"

[registers.bought]
title = "Ostorekisteri C"
kind = "purchased"
controller = "Controller Bought Oy"
controller_contact = "bought-privacy@example.com"
default_legal_basis = "job_role"
provider = "Datavendor Oy"
acquisition_method = "licensed decision-maker list"
acquired_on = "2026-09-01"
valid_until = "2099-12-31"
"#;

/// Per locale: words that must appear for each art. 14 item (and art. 21).
struct Expect {
    rights: [&'static str; 6],
    complaint: &'static str,
    authority: &'static str,
    purpose: &'static str,
    categories: &'static str,
    recipients: &'static str,
    retention: &'static str,
    source: &'static str,
    art14: &'static str,
    art21: &'static str,
    objection: &'static str,
    reply: &'static str,
    basis: [(&'static str, LegalBasis); 3],
    dpo: &'static str,
    policy: &'static str,
}

fn expect(locale: Locale) -> Expect {
    match locale {
        Locale::Fi => Expect {
            rights: [
                "pääsy",
                "oikaista",
                "poistaa",
                "rajoittaa",
                "vastustaa",
                "siirtää",
            ],
            complaint: "valitus valvontaviranomaiselle",
            authority: "Tietosuojavaltuutetun toimisto",
            purpose: "suoramarkkinointiin",
            categories: "Käsiteltävät tiedot",
            recipients: "ei luovuteta",
            retention: "18 kuukautta",
            source: "Tietojen lähde",
            art14: "14 artikla",
            art21: "21 artikla",
            objection: "kieltää sinulle suunnatun suoramarkkinoinnin",
            reply: "POISTA",
            basis: [
                ("suostumuksesi", LegalBasis::Consent),
                ("asiakassuhteen", LegalBasis::CustomerRelationship),
                ("työtehtäviisi", LegalBasis::JobRole),
            ],
            dpo: "Tietosuojavastaava: dpo@example.com",
            policy: "Koko tietosuojaseloste",
        },
        Locale::Sv => Expect {
            rights: [
                "tillgång",
                "rättelse",
                "radering",
                "begränsning",
                "invända",
                "dataportabilitet",
            ],
            complaint: "klagomål till tillsynsmyndigheten",
            authority: "Dataombudsmannens byrå",
            purpose: "direktmarknadsföring",
            categories: "Uppgifter som behandlas",
            recipients: "lämnas inte ut",
            retention: "18 månader",
            source: "Uppgifternas källa",
            art14: "artikel 14",
            art21: "artikel 21",
            objection: "förbjuda direktmarknadsföring",
            reply: "AVREGISTRERA",
            basis: [
                ("samtycke", LegalBasis::Consent),
                ("kundförhållande", LegalBasis::CustomerRelationship),
                ("arbetsuppgifter", LegalBasis::JobRole),
            ],
            dpo: "Dataskyddsombud: dpo@example.com",
            policy: "Hela dataskyddsbeskrivningen",
        },
        Locale::En => Expect {
            rights: [
                "access",
                "rectification",
                "erasure",
                "restriction",
                "object to processing",
                "portability",
            ],
            complaint: "complaint with the supervisory authority",
            authority: "Office of the Data Protection Ombudsman",
            purpose: "direct marketing",
            categories: "Data processed",
            recipients: "not disclosed to others",
            retention: "18 months",
            source: "Source of the data",
            art14: "Article 14",
            art21: "Article 21",
            objection: "object to direct marketing",
            reply: "UNSUBSCRIBE",
            basis: [
                ("your consent", LegalBasis::Consent),
                ("customer relationship", LegalBasis::CustomerRelationship),
                ("job role", LegalBasis::JobRole),
            ],
            dpo: "Data protection officer: dpo@example.com",
            policy: "Full privacy policy",
        },
    }
}

fn unescape(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn recipient(register: &str, locale: Locale, basis: LegalBasis) -> Recipient {
    Recipient {
        outbox_id: 7,
        variant: 0,
        register: register.to_string(),
        contact: ContactRecord {
            email: EmailAddress::parse("maija@firma.example").unwrap(),
            first_name: "Maija".into(),
            last_name: "M".into(),
            company: "Firma Oy".into(),
            business_id: String::new(),
            title: "CEO".into(),
            locale: Some(locale),
            legal_basis: basis,
            consent_at: (basis == LegalBasis::Consent).then(|| "2026-01-01T00:00:00Z".into()),
            fields: BTreeMap::new(),
            source: "test:1".into(),
        },
    }
}

#[test]
fn every_footer_variant_carries_every_mandatory_item_in_both_parts() {
    let scratch = Scratch::new("outbox:outbox");
    let toml = common::fairsend_toml("outbox:outbox")
        .replace(
            "privacy_contact = \"privacy@example.com\"",
            "privacy_contact = \"privacy@example.com\"\ndpo_contact = \"dpo@example.com\"",
        )
        .replace(
            "retention_months = 24",
            "retention_months = 18\npolicy_url = \"https://www.example.com/privacy\"",
        );
    scratch.write("config/fairsend.toml", &toml);
    scratch.write("config/registers.toml", REGISTERS);
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace(
            "registers = [\"customers\"]",
            "registers = [\"customers\", \"events\", \"bought\"]",
        ),
    );
    scratch.contacts("config/contacts/customers.csv", 1);
    let config = ConfigDir::load(&scratch.path("config")).unwrap();
    let campaign = config
        .load_campaign(&scratch.path("config/campaigns/test.toml"))
        .unwrap();
    let composer = Composer::new(&config, &campaign, Secret::development()).unwrap();

    let mut rendered = 0;
    for register in ["customers", "events", "bought"] {
        let reg = config.registers.get(register).unwrap();
        for locale in Locale::ALL {
            let e = expect(locale);
            for (basis_words, basis) in e.basis {
                let message = composer
                    .compose(&recipient(register, locale, basis))
                    .unwrap();
                let message = fairsend::compliance::gate(message, &config.settings).unwrap();
                let html = unescape(message.html());
                for (part, body) in [("text", message.text()), ("html", html.as_str())] {
                    let ctx = format!("{register}/{}/{} {part}", locale.as_str(), basis.as_str());
                    let has =
                        |needle: &str| assert!(body.contains(needle), "{ctx}: missing {needle:?}");
                    // Sender identity (917/2014 §203)
                    for item in [
                        "Testi Yhtiö Oy",
                        "1234567-1",
                        "Testikatu 1, 00100 Helsinki",
                        "hello@example.com",
                    ] {
                        has(item);
                    }
                    // Address source
                    for item in [
                        reg.title.as_str(),
                        reg.controller.as_str(),
                        reg.controller_contact.as_str(),
                    ] {
                        has(item);
                    }
                    if let Some(p) = &reg.purchased {
                        has(&p.provider);
                        has(&p.acquisition_method);
                        has("2026-09-01");
                    }
                    // GDPR art. 14
                    has(e.art14);
                    has("privacy@example.com");
                    has(e.dpo);
                    has(e.purpose);
                    has(basis_words);
                    has(e.categories);
                    has(e.recipients);
                    has(e.retention);
                    for right in e.rights {
                        has(right);
                    }
                    has(e.complaint);
                    has(e.authority);
                    has("https://tietosuoja.fi");
                    has(e.source);
                    has(e.policy);
                    has("https://www.example.com/privacy");
                    // Art. 21, after and apart from the privacy notice, with the link and the reply option
                    has(e.art21);
                    has(e.objection);
                    has(message.unsubscribe_url());
                    has(e.reply);
                    has("sales@example.com");
                    let privacy_at = body.find(e.art14).unwrap();
                    let objection_at = body.find(e.art21).unwrap();
                    assert!(
                        objection_at > privacy_at,
                        "{ctx}: the objection block follows the privacy notice"
                    );
                    // The other legal bases' wording must not leak in.
                    for (other_words, other) in e.basis {
                        if other != basis {
                            assert!(
                                !body.contains(other_words),
                                "{ctx}: wrong legal basis text {other_words:?}"
                            );
                        }
                    }
                }
                // In HTML the art. 21 block is its own element, outside the privacy notice's.
                let privacy = message.html().split("class=\"fs-privacy\"").nth(1).unwrap();
                let privacy = &privacy[..privacy.find("</div>").unwrap()];
                assert!(!privacy.contains(e.art21));
                assert!(message.html().contains("class=\"fs-objection\""));
                rendered += 1;
            }
        }
    }
    assert_eq!(rendered, 27);
}
