//! Suppressed addresses and passive/ceased contacts are never sent to; the check is made
//! immediately before each transaction.

mod common;

use common::{Scratch, SmtpServer, states, stderr};
use fairsend::audience::{ContactStatus, EmailAddress};
use fairsend::store::{NewReason, Store};
use fairsend::suppress::{SuppressionReason, address_hash};

#[test]
fn suppressed_passive_and_ceased_contacts_are_skipped() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let scratch = Scratch::new("outbox:unused");
    let emails = scratch.contacts("config/contacts/customers.csv", 8);
    scratch.import_customers();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&scratch.db_url()).await.unwrap();
        let secret = common::unlock(&scratch, &store).await;
        let opted_out = EmailAddress::parse(&emails[1]).unwrap();
        store
            .add_suppression(&NewReason {
                email_hash: &address_hash(&secret, &opted_out),
                email: Some(opted_out.as_str()),
                reason: SuppressionReason::OptOut,
                source: "manual",
                evidence: None,
                campaign_id: None,
            })
            .await
            .unwrap();
        assert!(
            store
                .set_contact_status(
                    &EmailAddress::parse(&emails[2]).unwrap(),
                    ContactStatus::Passive
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .set_contact_status(
                    &EmailAddress::parse(&emails[3]).unwrap(),
                    ContactStatus::Ceased
                )
                .await
                .unwrap()
        );
    });

    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let out = scratch.run(&[
        "send",
        "config/campaigns/test.toml",
        "--transport",
        &server.url(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(received.len(), 5);
    for skipped in &emails[1..4] {
        assert!(
            !received.contains(skipped),
            "{skipped} must not receive the campaign"
        );
    }
    let s = states(&scratch, "test-campaign");
    assert_eq!(
        (s["sent"].as_i64(), s["suppressed"].as_i64()),
        (Some(5), Some(3)),
        "{s}"
    );
}
