//! Property test of fairsend's core promise, over random sequences of what operators and the
//! world do: imports (with and without the secret), partial sends killed at random moments,
//! opt-outs by page, `mailto:` and reply, complaints, bounces proven and forged, operators'
//! re-classifications both ways and their confirmations, erasure, purge, key rotation, and
//! resumes over another transport. After every step it checks, against a real SMTP server
//! on loopback and the outbox directory:
//!
//! 1. no message reached an address that, by the rules, was suppressed when the step began;
//! 2. no recipient got a campaign twice, except a row that was uncertain (interrupted) when
//!    the operator asked for it to be resent;
//! 3. the database suppresses exactly the addresses the rules say (a forged bounce suppresses
//!    no one; lifting one reason keeps the others).
//!
//! The model below is written from the README's rules, not from the code. The seed is fixed;
//! `PROPTEST_CASES` sets the number of cases (500 by default), `PROPTEST_SEED` (0–255) the seed.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Scratch, SmtpServer, stderr};
use fairsend::audience::EmailAddress;
use fairsend::config::BounceSettings;
use fairsend::store::{BounceDecision, Store};
use fairsend::suppress::{
    MasterSecret, OptOutSource, Secret, SuppressionReason, TokenPurpose, address_hash, sign,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const PEOPLE: usize = 6;
/// People 0..4 are customers; 4 and 5 are on a purchased list past its retention (purge
/// deletes them).
const CUSTOMERS: usize = 4;
const CAMPAIGNS: [&str; 2] = ["c0", "c1"];
const SOFT_LIMIT: usize = 2;
const BOUNCE_DOMAIN: &str = "bounces.example.com";

#[derive(Debug, Clone)]
enum Op {
    Import {
        register_old: bool,
        with_secret: bool,
    },
    Send {
        campaign: usize,
        kill_after_ms: Option<u64>,
        outbox: bool,
        /// `--force-transport`: resume over another transport kind (in-flight rows become
        /// uncertain).
        force: bool,
        /// `--resend-interrupted --resend-uncertain`: the operator asks for unknown outcomes to
        /// be sent again.
        resend: bool,
    },
    PageOptOut(usize),
    MailtoOptOut(usize),
    ReplyOptOut(usize),
    Complaint {
        person: usize,
        proven: bool,
    },
    Bounce {
        person: usize,
        hard: bool,
        proven: bool,
    },
    Reclassify {
        pick: usize,
        hard: bool,
    },
    Decide {
        pick: usize,
        confirm: bool,
    },
    Erase(usize),
    Purge,
    RotateKey,
}

fn op() -> impl Strategy<Value = Op> {
    let person = 0..PEOPLE;
    prop_oneof![
        3 => (any::<bool>(), prop::bool::weighted(0.9))
            .prop_map(|(register_old, with_secret)| Op::Import { register_old, with_secret }),
        4 => (0..2usize, prop::option::weighted(0.4, 0..150u64), prop::bool::weighted(0.2), prop::bool::weighted(0.3), prop::bool::weighted(0.2))
            .prop_map(|(campaign, kill_after_ms, outbox, force, resend)| Op::Send { campaign, kill_after_ms, outbox, force, resend }),
        1 => person.clone().prop_map(Op::PageOptOut),
        1 => person.clone().prop_map(Op::MailtoOptOut),
        1 => person.clone().prop_map(Op::ReplyOptOut),
        1 => (person.clone(), any::<bool>()).prop_map(|(person, proven)| Op::Complaint { person, proven }),
        3 => (person.clone(), any::<bool>(), any::<bool>()).prop_map(|(person, hard, proven)| Op::Bounce { person, hard, proven }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, hard)| Op::Reclassify { pick, hard }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, confirm)| Op::Decide { pick, confirm }),
        1 => person.prop_map(Op::Erase),
        1 => Just(Op::Purge),
        1 => Just(Op::RotateKey),
    ]
}

/// Which master secret a database is pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Development,
    Generation(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reason {
    OptOut,
    Complaint,
    HardBounce,
    SoftLimit,
    Erased,
}

#[derive(Debug, Clone)]
struct ModelBounce {
    id: i64,
    person: usize,
    complaint: bool,
    hard: bool,
    /// proven, unverified, confirmed or dismissed
    verification: &'static str,
}

impl ModelBounce {
    fn acts(&self) -> bool {
        matches!(self.verification, "proven" | "confirmed")
    }
}

/// What the rules say the database holds.
#[derive(Debug, Default)]
struct Model {
    pinned: Option<Key>,
    generation: u32,
    reasons: Vec<BTreeSet<Reason>>,
    contact: Vec<bool>,
    bounces: Vec<ModelBounce>,
    /// (campaign, person) → messages received so far.
    received: HashMap<(usize, usize), usize>,
    /// (campaign, person) → how many resends the operator asked for while its row was uncertain.
    resends_allowed: HashMap<(usize, usize), usize>,
}

impl Model {
    fn new() -> Self {
        Self {
            reasons: vec![BTreeSet::new(); PEOPLE],
            contact: vec![false; PEOPLE],
            ..Default::default()
        }
    }

    fn suppressed(&self, person: usize) -> bool {
        !self.reasons[person].is_empty()
    }

    /// Whether a command run with `key` opens the database (pinning it on first use).
    fn opens(&mut self, key: Key) -> bool {
        match self.pinned {
            None => {
                self.pinned = Some(key);
                true
            }
            Some(pinned) => pinned == key,
        }
    }

    fn current(&self) -> Key {
        Key::Generation(self.generation)
    }

    fn proven_soft(&self, person: usize) -> usize {
        self.bounces
            .iter()
            .filter(|b| b.person == person && !b.complaint && !b.hard && b.acts())
            .count()
    }

    /// The effects of a bounce that acts (proven on arrival, or confirmed).
    fn act(&mut self, index: usize) {
        let b = self.bounces[index].clone();
        if b.complaint {
            self.reasons[b.person].insert(Reason::Complaint);
        } else if b.hard {
            self.reasons[b.person].insert(Reason::HardBounce);
        } else if self.proven_soft(b.person) >= SOFT_LIMIT {
            self.reasons[b.person].insert(Reason::SoftLimit);
        }
    }

    fn forget_bounces_of(&mut self, person: usize) {
        self.bounces.retain(|b| b.person != person);
    }
}

fn master_value(generation: u32) -> String {
    format!("property-test-master-secret-generation-{generation:04}")
}

fn master(key: Key) -> MasterSecret {
    match key {
        Key::Development => MasterSecret::development(),
        Key::Generation(g) => MasterSecret::from_value("FAIRSEND_SECRET", master_value(g)).unwrap(),
    }
}

struct World {
    scratch: Scratch,
    emails: Vec<String>,
    case: usize,
    server_url: String,
    smtp_log: PathBuf,
    smtp_offset: usize,
    outbox_seen: BTreeSet<String>,
    runtime: tokio::runtime::Runtime,
    store: Store,
}

const REGISTERS: &str = r#"
[registers.customers]
title = "Asiakkaat"
kind = "customer"
controller = "Testi Yhtiö Oy"
controller_contact = "privacy@example.com"
default_legal_basis = "customer_relationship"

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
"#;

impl World {
    fn new(case: usize, server: &SmtpServer) -> Self {
        let scratch = Scratch::new("outbox:outbox");
        let config = common::fairsend_toml("outbox:outbox")
            .replace("rate_per_second = 0", "rate_per_second = 80")
            .replace(
                "[bounces]\ndomain = \"bounces.example.com\"",
                "[bounces]\ndomain = \"bounces.example.com\"\nsoft_bounce_limit = 2\nsoft_bounce_days = 0",
            );
        scratch.write("config/fairsend.toml", &config);
        scratch.write("config/registers.toml", REGISTERS);
        // The server drops the connection after the data of person 2's first message (its
        // outcome is unknown to fairsend) and at the RCPT TO of person 3's first message.
        let fault = |i: usize| match i {
            2 => ".dropdata",
            3 => ".droprcpt",
            _ => "",
        };
        let emails: Vec<String> = (0..PEOPLE)
            .map(|i| format!("p{i}{}.case{case}@firm{}.example", fault(i), i % 3))
            .collect();
        let csv = |range: std::ops::Range<usize>| {
            let mut text = String::from("email,first_name,company\n");
            for i in range {
                text.push_str(&format!("{},Person{i},Firm {i} Oy\n", emails[i]));
            }
            text
        };
        scratch.write("config/contacts/customers.csv", &csv(0..CUSTOMERS));
        scratch.write("config/contacts/old.csv", &csv(CUSTOMERS..PEOPLE));
        for name in CAMPAIGNS {
            scratch.write(
                &format!("config/campaigns/{name}.toml"),
                &format!(
                    "name = \"{name}\"\nregisters = [\"customers\", \"old_list\"]\n\
                     subject = \"Campaign {name} for {{{{ company }}}}\"\n\
                     from = \"Sales <sales@example.com>\"\nreply_to = \"sales@example.com\"\n\
                     body = \"content/body.md\"\nrequire_approval = false\n"
                ),
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = runtime.block_on(Store::open(&scratch.db_url())).unwrap();
        Self {
            scratch,
            emails,
            case,
            server_url: server.url(),
            smtp_log: server.log.clone(),
            smtp_offset: std::fs::metadata(&server.log)
                .map(|m| m.len() as usize)
                .unwrap_or(0),
            outbox_seen: BTreeSet::new(),
            runtime,
            store,
        }
    }

    fn command(&self, key: Key, args: &[&str]) -> Command {
        let mut cmd = self.scratch.command(args);
        cmd.env_remove("FAIRSEND_SECRET");
        if let Key::Generation(g) = key {
            cmd.env("FAIRSEND_SECRET", master_value(g));
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    fn run(&self, key: Key, args: &[&str]) -> std::process::Output {
        self.command(key, args).output().unwrap()
    }

    fn secret(&self, key: Key) -> Option<Secret> {
        self.runtime
            .block_on(fairsend::suppress::unlock(&self.store, &master(key)))
            .ok()
    }

    fn person_of(&self, text: &str) -> Option<usize> {
        let text = text.to_ascii_lowercase();
        self.emails
            .iter()
            .position(|e| text == *e || text.contains(&format!("<{e}>")))
    }

    /// An outbox row of `person` in any campaign (the token of a message fairsend sent).
    fn row_of(&self, person: usize) -> Option<i64> {
        let address = EmailAddress::parse(&self.emails[person]).unwrap();
        self.runtime.block_on(async {
            for name in CAMPAIGNS {
                if let Some(campaign) = self.store.find_campaign_id(name).await.unwrap()
                    && let Some(row) = self.store.outbox_row_for(campaign, &address).await.unwrap()
                {
                    return Some(row);
                }
            }
            None
        })
    }

    fn ingest(&self, secret: &Secret, raw: &str) {
        let settings = BounceSettings {
            domain: BOUNCE_DOMAIN.to_string(),
            local_part: "bounces".to_string(),
            unsubscribe_local_part: "unsubscribe".to_string(),
            soft_bounce_limit: SOFT_LIMIT as u32,
            soft_bounce_days: 0,
        };
        self.runtime
            .block_on(fairsend::inbound::ingest::ingest(
                &self.store,
                secret,
                &settings,
                raw.as_bytes(),
            ))
            .unwrap();
    }

    /// The bounces the database holds now, oldest first: (id, recipient, class is hard).
    fn bounce_ids(&self) -> Vec<(i64, Option<String>, bool)> {
        let mut list: Vec<(i64, Option<String>, bool)> = self
            .runtime
            .block_on(self.store.bounces(100_000))
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.recipient, b.class.as_deref() == Some("hard")))
            .collect();
        list.sort();
        list
    }

    /// Messages delivered since the last call: (campaign, person), from the SMTP server's log
    /// and the outbox directory.
    fn new_deliveries(&mut self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let text = std::fs::read(&self.smtp_log).unwrap_or_default();
        let fresh = String::from_utf8_lossy(&text[self.smtp_offset.min(text.len())..]).into_owned();
        self.smtp_offset = text.len();
        for line in fresh.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if event["event"] != "message" {
                continue;
            }
            let rcpt = event["rcpt_tos"][0]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let Some(person) = self.person_of(&rcpt) else {
                continue; // another case's message
            };
            let data = event["data"].as_str().unwrap_or_default();
            let campaign = CAMPAIGNS
                .iter()
                .position(|c| data.contains(&format!("Subject: Campaign {c} for")))
                .expect("the subject names the campaign");
            out.push((campaign, person));
        }
        let outbox = self.scratch.path("outbox");
        for entry in std::fs::read_dir(&outbox).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".eml") || self.outbox_seen.contains(&name) {
                continue;
            }
            self.outbox_seen.insert(name.clone());
            let raw = std::fs::read(entry.path()).unwrap();
            let to = common::parse_message(&raw).one("to").to_string();
            let person = self
                .person_of(&to)
                .expect("outbox message to a case's person");
            let campaign = CAMPAIGNS
                .iter()
                .position(|c| name.starts_with(&format!("{c}-")))
                .expect("file named after its campaign");
            out.push((campaign, person));
        }
        out
    }

    /// The people whose row in `campaign` the operator may ask to resend now: interrupted or
    /// uncertain rows.
    fn uncertain_people(&self, campaign: usize) -> Vec<usize> {
        let rows = self.runtime.block_on(async {
            let Some(id) = self
                .store
                .find_campaign_id(CAMPAIGNS[campaign])
                .await
                .unwrap()
            else {
                return Vec::new();
            };
            self.store.uncertain_recipients(id).await.unwrap()
        });
        rows.iter().filter_map(|e| self.person_of(e)).collect()
    }

    fn db_suppressed(&self, secret: &Secret, person: usize) -> Vec<SuppressionReason> {
        let address = EmailAddress::parse(&self.emails[person]).unwrap();
        self.runtime
            .block_on(
                self.store
                    .suppression_reasons(&address_hash(secret, &address)),
            )
            .unwrap()
    }
}

fn dsn(verp: &str, rcpt: &str, message_id: &str, hard: bool) -> String {
    let (status, code, text, action) = if hard {
        (
            "5.1.1",
            550,
            "Recipient address rejected: User unknown",
            "failed",
        )
    } else {
        ("4.2.2", 452, "Mailbox full", "delayed")
    };
    common::dsn(verp, rcpt, message_id, status, code, text, action)
}

fn arf(rcpt: &str, message_id: &str) -> String {
    format!(
        "From: fbl@isp.example\r\nTo: abuse@example.com\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
         Message-ID: <{}@isp.example>\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\r\n\
         --B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\n\
         Version: 1\r\nOriginal-Rcpt-To: {rcpt}\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Sales <sales@example.com>\r\nTo: {rcpt}\r\n\
         Message-ID: {message_id}\r\nSubject: Offer\r\n\r\n--B--\r\n",
        message_id.len()
    )
}

/// Applies one operation to the world and the model.
fn step(world: &mut World, model: &mut Model, op: &Op) -> Result<(), String> {
    let key = model.current();
    match op {
        Op::Import {
            register_old,
            with_secret,
        } => {
            let key = if *with_secret { key } else { Key::Development };
            let (file, register) = if *register_old {
                ("config/contacts/old.csv", "old_list")
            } else {
                ("config/contacts/customers.csv", "customers")
            };
            let out = world.run(key, &["import", file, "--register", register]);
            if model.opens(key) {
                if out.status.code() == Some(2) {
                    return Err(format!("import refused: {}", stderr(&out)));
                }
                let range = if *register_old {
                    CUSTOMERS..PEOPLE
                } else {
                    0..CUSTOMERS
                };
                for p in range {
                    if !model.reasons[p].contains(&Reason::Erased) && !model.suppressed(p) {
                        model.contact[p] = true;
                    }
                }
            } else if out.status.code() != Some(2) {
                return Err(format!(
                    "a command with another key was not refused: {:?}",
                    out.status
                ));
            }
        }
        Op::Send {
            campaign,
            kill_after_ms,
            outbox,
            force,
            resend,
        } => {
            if !model.opens(key) {
                let out = world.run(
                    key,
                    &[
                        "send",
                        &format!("config/campaigns/{}.toml", CAMPAIGNS[*campaign]),
                    ],
                );
                if out.status.code() != Some(2) {
                    return Err("send with another key was not refused".into());
                }
                return Ok(());
            }
            if *resend {
                for p in world.uncertain_people(*campaign) {
                    *model.resends_allowed.entry((*campaign, p)).or_default() += 1;
                }
            }
            let transport = if *outbox {
                format!("outbox:{}", world.scratch.path("outbox").display())
            } else {
                world.server_url.clone()
            };
            let file = format!("config/campaigns/{}.toml", CAMPAIGNS[*campaign]);
            let mut args = vec!["send", file.as_str(), "--transport", transport.as_str()];
            if *resend {
                args.extend(["--resend-interrupted", "--resend-uncertain"]);
            }
            if *force {
                args.push("--force-transport");
            }
            let mut child = world.command(key, &args).spawn().unwrap();
            match kill_after_ms {
                Some(ms) => {
                    std::thread::sleep(Duration::from_millis(*ms));
                    let _ = child.kill();
                    let _ = child.wait();
                }
                None => {
                    let out = child.wait_with_output().unwrap();
                    // 1: refused (e.g. another transport kind while rows are in flight).
                    if !matches!(out.status.code(), Some(0 | 1)) {
                        return Err(format!("send failed: {}", stderr(&out)));
                    }
                }
            }
        }
        Op::PageOptOut(p) | Op::MailtoOptOut(p) | Op::ReplyOptOut(p) => {
            if !model.opens(key) {
                return Ok(());
            }
            let secret = world
                .secret(key)
                .ok_or("the model's key did not open the database")?;
            let email = world.emails[*p].clone();
            match op {
                Op::PageOptOut(_) => {
                    let address = EmailAddress::parse(&email).unwrap();
                    world
                        .runtime
                        .block_on(fairsend::suppress::opt_out(
                            &world.store,
                            &secret,
                            &address,
                            OptOutSource::Page,
                            None,
                            None,
                        ))
                        .unwrap();
                    model.reasons[*p].insert(Reason::OptOut);
                }
                Op::MailtoOptOut(_) => {
                    let Some(row) = world.row_of(*p) else {
                        return Ok(());
                    };
                    let token = sign(&secret, TokenPurpose::Unsubscribe, row);
                    world.ingest(
                        &secret,
                        &format!(
                            "From: {email}\r\nTo: unsubscribe+{token}@{BOUNCE_DOMAIN}\r\nSubject: unsubscribe\r\n\
                             Message-ID: <mailto.{row}.{}@firm.example>\r\n\r\n\r\n",
                            model.bounces.len()
                        ),
                    );
                    model.reasons[*p].insert(Reason::OptOut);
                }
                _ => {
                    let reference = world
                        .row_of(*p)
                        .map(|row| {
                            format!(
                                "In-Reply-To: <{}@{BOUNCE_DOMAIN}>\r\n",
                                sign(&secret, TokenPurpose::Bounce, row)
                            )
                        })
                        .unwrap_or_default();
                    world.ingest(
                        &secret,
                        &format!(
                            "From: {email}\r\nTo: sales@example.com\r\nSubject: Re: Offer\r\n{reference}\
                             Message-ID: <reply.{}.{}@firm.example>\r\n\r\nunsubscribe please\r\n\r\n> Offer\r\n",
                            world.case,
                            rand_suffix()
                        ),
                    );
                    model.reasons[*p].insert(Reason::OptOut);
                }
            }
        }
        Op::Complaint { person, proven } | Op::Bounce { person, proven, .. } => {
            if !model.opens(key) {
                return Ok(());
            }
            let secret = world
                .secret(key)
                .ok_or("the model's key did not open the database")?;
            let email = world.emails[*person].clone();
            let row = world.row_of(*person).filter(|_| *proven);
            let complaint = matches!(op, Op::Complaint { .. });
            let hard = matches!(op, Op::Bounce { hard: true, .. });
            let before: BTreeSet<i64> = world.bounce_ids().iter().map(|(id, _, _)| *id).collect();
            let raw = match (row, complaint) {
                (Some(row), true) => arf(
                    &email,
                    &format!(
                        "<{}@{BOUNCE_DOMAIN}>",
                        sign(&secret, TokenPurpose::Bounce, row)
                    ),
                ),
                (None, true) => arf(
                    &email,
                    &format!("<forged.{}@attacker.example>", rand_suffix()),
                ),
                (Some(row), false) => {
                    let token = sign(&secret, TokenPurpose::Bounce, row);
                    dsn(
                        &format!("bounces+{token}@{BOUNCE_DOMAIN}"),
                        &email,
                        &format!("<{token}@{BOUNCE_DOMAIN}>"),
                        hard,
                    )
                }
                (None, false) => {
                    // A forged plain-text bounce naming the person and two others.
                    let others: String = (0..PEOPLE)
                        .filter(|q| q != person)
                        .take(2)
                        .map(|q| format!("<{}>: 550 5.1.1 User unknown\r\n", world.emails[q]))
                        .collect();
                    format!(
                        "From: MAILER-DAEMON@attacker.example\r\nTo: bounces@{BOUNCE_DOMAIN}\r\n\
                         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged.{}@attacker.example>\r\n\r\n\
                         This is the mail system.\r\n\r\n<{email}>: {} User unknown\r\n{others}",
                        rand_suffix(),
                        if hard { "550 5.1.1" } else { "452 4.2.2" }
                    )
                }
            };
            world.ingest(&secret, &raw);
            for (id, recipient, class_hard) in world.bounce_ids() {
                if before.contains(&id) {
                    continue;
                }
                let Some(p) = recipient.as_deref().and_then(|r| world.person_of(r)) else {
                    continue;
                };
                model.bounces.push(ModelBounce {
                    id,
                    person: p,
                    complaint,
                    // How the report is classified is not this test's concern: the
                    // database's class is what confirmations and re-classifications act on.
                    hard: class_hard,
                    verification: if row.is_some() {
                        "proven"
                    } else {
                        "unverified"
                    },
                });
                if row.is_some() {
                    let index = model.bounces.len() - 1;
                    model.act(index);
                }
            }
        }
        Op::Reclassify { pick, hard } => {
            if model.bounces.is_empty() {
                return Ok(());
            }
            let index = pick % model.bounces.len();
            if model.bounces[index].complaint {
                return Ok(());
            }
            let b = model.bounces[index].clone();
            let (class, reason) = if *hard {
                ("hard", "user_unknown")
            } else {
                ("soft", "mailbox_full")
            };
            world
                .runtime
                .block_on(fairsend::inbound::apply::reclassify_bounce(
                    &world.store,
                    b.id,
                    class,
                    reason,
                    "operator",
                ))
                .unwrap();
            let was_hard = b.hard;
            model.bounces[index].hard = *hard;
            if b.acts() {
                if was_hard && !*hard {
                    let other_hard = model.bounces.iter().any(|o| {
                        o.person == b.person && o.id != b.id && o.hard && !o.complaint && o.acts()
                    });
                    if !other_hard {
                        model.reasons[b.person].remove(&Reason::HardBounce);
                    }
                } else if *hard {
                    model.reasons[b.person].insert(Reason::HardBounce);
                }
            }
        }
        Op::Decide { pick, confirm } => {
            let waiting: Vec<usize> = (0..model.bounces.len())
                .filter(|&i| model.bounces[i].verification == "unverified")
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            let index = waiting[pick % waiting.len()];
            let decision = if *confirm {
                BounceDecision::Confirm
            } else {
                BounceDecision::Dismiss
            };
            world
                .runtime
                .block_on(fairsend::inbound::apply::decide_bounce(
                    &world.store,
                    model.bounces[index].id,
                    decision,
                    "operator",
                    (SOFT_LIMIT as i64, 0),
                ))
                .unwrap();
            if *confirm {
                model.bounces[index].verification = "confirmed";
                model.act(index);
            } else {
                model.bounces[index].verification = "dismissed";
            }
        }
        Op::Erase(p) => {
            let out = world.run(key, &["erase", &world.emails[*p].clone()]);
            if model.opens(key) {
                if !out.status.success() {
                    return Err(format!("erase failed: {}", stderr(&out)));
                }
                model.reasons[*p].insert(Reason::Erased);
                model.contact[*p] = false;
                model.forget_bounces_of(*p);
            }
        }
        Op::Purge => {
            let out = world.run(key, &["hygiene", "purge"]);
            if model.opens(key) {
                if !out.status.success() {
                    return Err(format!("purge failed: {}", stderr(&out)));
                }
                for p in CUSTOMERS..PEOPLE {
                    if model.contact[p] {
                        model.contact[p] = false;
                        model.forget_bounces_of(p);
                    }
                }
            }
        }
        Op::RotateKey => {
            let Some(pinned) = model.pinned else {
                return Ok(());
            };
            let out = match pinned {
                Key::Development => world.run(key, &["keys", "rotate", "--from-development-key"]),
                Key::Generation(g) => {
                    let next = Key::Generation(g + 1);
                    let mut cmd = world.command(next, &["keys", "rotate"]);
                    cmd.env("FAIRSEND_SECRET_OLD", master_value(g));
                    cmd.output().unwrap()
                }
            };
            if !out.status.success() {
                return Err(format!("keys rotate failed: {}", stderr(&out)));
            }
            if let Key::Generation(g) = pinned {
                model.generation = g + 1;
            }
            model.pinned = Some(model.current());
        }
    }
    Ok(())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Runs the operations, checking the invariants after each.
fn check_sequence(server: &SmtpServer, case: usize, ops: &[Op]) -> Result<usize, String> {
    let mut world = World::new(case, server);
    let mut model = Model::new();
    for (n, op) in ops.iter().enumerate() {
        let suppressed_before: Vec<bool> = (0..PEOPLE).map(|p| model.suppressed(p)).collect();
        step(&mut world, &mut model, op).map_err(|e| format!("step {n} {op:?}: {e}"))?;
        for (campaign, person) in world.new_deliveries() {
            if suppressed_before[person] {
                return Err(format!(
                    "step {n} {op:?}: {} was mailed ({}) although suppressed ({:?})",
                    world.emails[person], CAMPAIGNS[campaign], model.reasons[person]
                ));
            }
            let got = model.received.entry((campaign, person)).or_default();
            *got += 1;
            let allowed = 1 + model
                .resends_allowed
                .get(&(campaign, person))
                .copied()
                .unwrap_or(0);
            if *got > allowed {
                return Err(format!(
                    "step {n} {op:?}: {} received {} {} times",
                    world.emails[person], CAMPAIGNS[campaign], got
                ));
            }
        }
        if let Some(secret) = model.pinned.and_then(|k| world.secret(k)) {
            for p in 0..PEOPLE {
                let db = world.db_suppressed(&secret, p);
                if db.is_empty() == model.suppressed(p) {
                    return Err(format!(
                        "step {n} {op:?}: {} is {} in the database ({db:?}) but the rules say {:?}",
                        world.emails[p],
                        if db.is_empty() {
                            "not suppressed"
                        } else {
                            "suppressed"
                        },
                        model.reasons[p]
                    ));
                }
            }
        }
    }
    Ok(ops.len())
}

#[test]
fn no_suppressed_address_is_mailed_and_no_one_twice() {
    if !common::require(&[common::Tool::Aiosmtpd]) {
        return;
    }
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let scratch_dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(
        scratch_dir.path(),
        &[
            "--drop-after-data",
            r"\.dropdata\.",
            "--drop-at-rcpt",
            r"\.droprcpt\.",
            "--idle-timeout",
            "0.2",
        ],
    );
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking replays whole sequences against real processes: keep it short.
        max_shrink_iters: 64,
        ..Config::default()
    };
    // A fixed seed; PROPTEST_SEED (a number) picks another, to split a long run over processes.
    let seed = [std::env::var("PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(7); 32];
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let case = std::cell::Cell::new(0usize);
    let steps = std::cell::Cell::new(0usize);
    let outcome = runner.run(&prop::collection::vec(op(), 3..12), |ops| {
        case.set(case.get() + 1);
        match check_sequence(&server, case.get(), &ops) {
            Ok(n) => {
                steps.set(steps.get() + n);
                if case.get().is_multiple_of(500) {
                    eprintln!(
                        "… {} cases, {} steps, no violation",
                        case.get(),
                        steps.get()
                    );
                }
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e)),
        }
    });
    eprintln!(
        "suppression property: {} cases, {} steps, seed {:?}…",
        case.get(),
        steps.get(),
        &seed[..4]
    );
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
