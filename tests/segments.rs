//! Segments (`[audience]` of a campaign) select exactly the contacts that a hand-written
//! evaluation of the fixture selects, on SQLite and (with FAIRSEND_TEST_POSTGRES) PostgreSQL:
//! fixed examples, random filters (proptest), and the history parts (not sent within,
//! engaged within, excluded campaigns) with the clock injected.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Scratch, stderr};
use fairsend::model::{Condition, Field, Filter, Segment, Test};
use fairsend::store::Store;
use proptest::prelude::*;

const DAY: i64 = 86_400_000;

/// Two registers: customers have `industry` and `city` columns, partners only `city` and
/// `tier`; some people are in both, some in partners only.
fn fixture() -> (Scratch, Vec<Membership>) {
    let scratch = Scratch::new("outbox:outbox");
    let registers = format!(
        "{}\n[registers.partners]\ntitle = \"Testi Yhtiö Oy:n kumppanirekisteri\"\nkind = \"customer\"\n\
         controller = \"Testi Yhtiö Oy\"\ncontroller_contact = \"privacy@example.com\"\n\
         default_legal_basis = \"customer_relationship\"\ndefault_locale = \"sv\"\n",
        common::REGISTERS
    );
    scratch.write("config/registers.toml", &registers);
    let industries = [
        "logistics",
        "retail",
        "",
        "Logistics",
        "logistics and retail",
    ];
    let cities = ["Tampere", "Turku", "Oulu", "", "Äänekoski", "tampere"];
    let titles = ["CTO", "CEO", "Head of \"IT\"", "", "CTO, founder"];
    let mut customers =
        String::from("email,first_name,last_name,company,title,locale,industry,city\n");
    let mut partners = String::from("email,first_name,company,city,tier\n");
    let mut memberships = Vec::new();
    for i in 0..48usize {
        let email = format!("p{i:02}@firm{}.example", i % 5);
        let first = format!("First{i}");
        let company = format!("Company {} Oy", i % 7);
        let (title, industry, city) = (titles[i % 5], industries[i % 5], cities[i % 6]);
        let locale = ["fi", "sv", "en", ""][i % 4];
        if i % 6 != 3 {
            customers.push_str(&format!(
                "{email},{first},Last{i},{company},\"{}\",{locale},{industry},{city}\n",
                title.replace('"', "\"\"")
            ));
            memberships.push(Membership::new(
                &email,
                "customers",
                &[
                    ("first_name", &first),
                    ("last_name", &format!("Last{i}")),
                    ("company", &company),
                    ("title", title),
                    ("locale", locale),
                    ("industry", industry),
                    ("city", city),
                ],
            ));
        }
        if i % 3 == 0 {
            let partner_city = cities[(i / 3) % 6];
            let tier =
                ["gold", "silver", ""][i % 3 + (i / 3) % 3 - ((i % 3 + (i / 3) % 3) / 3) * 3];
            partners.push_str(&format!(
                "{email},{first},{company},{partner_city},{tier}\n"
            ));
            memberships.push(Membership::new(
                &email,
                "partners",
                &[
                    ("first_name", &first),
                    ("company", &company),
                    // No locale column: the register's default applies to the message, but
                    // the contact's own locale, which a segment reads, is empty.
                    ("city", partner_city),
                    ("tier", tier),
                ],
            ));
        }
    }
    scratch.write("config/contacts/customers.csv", &customers);
    scratch.write("config/contacts/partners.csv", &partners);
    for (file, register) in [("customers.csv", "customers"), ("partners.csv", "partners")] {
        let out = scratch.run(&[
            "import",
            &format!("config/contacts/{file}"),
            "--register",
            register,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    (scratch, memberships)
}

/// One person as one register holds them, as the test itself reads the fixture.
#[derive(Debug, Clone)]
struct Membership {
    email: String,
    register: String,
    fields: BTreeMap<String, String>,
}

impl Membership {
    fn new(email: &str, register: &str, fields: &[(&str, &str)]) -> Self {
        let mut all: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("email".into(), email.into());
        all.insert("domain".into(), email.split_once('@').unwrap().1.into());
        all.insert("register".into(), register.into());
        Self {
            email: email.into(),
            register: register.into(),
            fields: all,
        }
    }

    /// The documented meaning: a field the contact lacks is empty; comparisons are exact.
    fn value(&self, field: &Field) -> &str {
        self.fields.get(field.name()).map_or("", String::as_str)
    }

    fn matches(&self, filter: &Filter) -> bool {
        match filter {
            Filter::And(parts) => parts.iter().all(|p| self.matches(p)),
            Filter::Or(parts) => parts.iter().any(|p| self.matches(p)),
            Filter::Not(inner) => !self.matches(inner),
            Filter::Condition(Condition { field, test }) => {
                let v = self.value(field);
                match test {
                    Test::Equals(x) => v == x,
                    Test::NotEquals(x) => v != x,
                    Test::In(xs) => xs.iter().any(|x| x == v),
                    Test::NotIn(xs) => xs.iter().all(|x| x != v),
                    Test::Contains(x) => v.contains(x.as_str()),
                    Test::StartsWith(x) => v.starts_with(x.as_str()),
                    Test::IsEmpty => v.is_empty(),
                    Test::IsNotEmpty => !v.is_empty(),
                }
            }
        }
    }
}

fn expected(memberships: &[Membership], registers: &[&str], filter: &Filter) -> BTreeSet<String> {
    memberships
        .iter()
        .filter(|m| registers.contains(&m.register.as_str()) && m.matches(filter))
        .map(|m| m.email.clone())
        .collect()
}

struct Db {
    runtime: tokio::runtime::Runtime,
    store: Store,
    /// The test's own connection, to read what it checks without the code under test.
    pool: sqlx::AnyPool,
    emails: BTreeMap<i64, String>,
}

impl Db {
    fn open(scratch: &Scratch) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = runtime
            .block_on(Store::open(&scratch.db_url()))
            .expect("open store");
        sqlx::any::install_default_drivers();
        let pool = runtime
            .block_on(sqlx::AnyPool::connect(&scratch.db_url()))
            .expect("open db");
        let emails = runtime
            .block_on(
                sqlx::query_as::<_, (i64, String)>("SELECT id, email FROM contacts")
                    .fetch_all(&pool),
            )
            .expect("contact emails")
            .into_iter()
            .collect();
        Self {
            runtime,
            store,
            pool,
            emails,
        }
    }

    fn first_sent_row(&self) -> (i64, String) {
        self.runtime
            .block_on(
                sqlx::query_as::<_, (i64, String)>(
                    "SELECT o.id, c.email FROM outbox o JOIN contacts c ON c.id = o.contact_id
                      WHERE o.sent_at IS NOT NULL ORDER BY o.id LIMIT 1",
                )
                .fetch_one(&self.pool),
            )
            .expect("a sent row")
    }

    fn selected(
        &self,
        registers: &[&str],
        segment: &Segment,
        campaign: Option<i64>,
        now: i64,
    ) -> BTreeSet<String> {
        let registers: Vec<String> = registers.iter().map(|r| r.to_string()).collect();
        self.runtime
            .block_on(
                self.store
                    .segment_contact_ids(&registers, segment, campaign, now),
            )
            .expect("segment query")
            .into_iter()
            .map(|id| self.emails[&id].clone())
            .collect()
    }
}

fn with_filter(text: &str) -> Segment {
    Segment {
        filter: Some(Filter::parse(text).expect("valid filter")),
        ..Segment::default()
    }
}

#[test]
fn documented_examples_select_what_the_fixture_says() {
    let (scratch, memberships) = fixture();
    let db = Db::open(&scratch);
    let now = fairsend::now_millis();
    let examples = [
        r#"industry = "logistics" and city in ["Tampere", "Turku"]"#,
        r#"industry = "logistics""#,
        r#"city = "tampere""#,
        r#"city = "Äänekoski" or tier = "gold""#,
        r#"not (industry is empty) and title contains "CTO""#,
        r#"title = "Head of \"IT\"""#,
        r#"domain = "firm3.example" and register = "partners""#,
        r#"locale = "" or locale not in ["fi", "sv"]"#,
        r#"tier is not empty"#,
        r#"no_such_column is empty"#,
        r#"company starts_with "Company 1" and first_name != "First8""#,
        r#"industry contains "and""#,
    ];
    let mut non_trivial = 0;
    for text in examples {
        for registers in [
            &["customers"][..],
            &["partners"],
            &["customers", "partners"],
        ] {
            let filter = Filter::parse(text).expect("valid");
            let want = expected(&memberships, registers, &filter);
            let got = db.selected(registers, &with_filter(text), None, now);
            assert_eq!(got, want, "{text} over {registers:?}");
            if !want.is_empty() && want.len() < 48 {
                non_trivial += 1;
            }
        }
    }
    assert!(
        non_trivial >= 15,
        "the examples should select some but not all: {non_trivial}"
    );
    // Everyone when the segment is empty.
    let everyone = db.selected(&["customers", "partners"], &Segment::default(), None, now);
    assert_eq!(everyone.len(), db.emails.len());
}

fn field_strategy() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just("industry"),
        Just("city"),
        Just("tier"),
        Just("title"),
        Just("domain"),
        Just("locale"),
        Just("register"),
        Just("company"),
        Just("absent_column"),
    ]
    .prop_map(|name| {
        Filter::parse(&format!("{name} is empty"))
            .map(|f| match f {
                Filter::Condition(c) => c.field,
                _ => unreachable!("a single condition"),
            })
            .expect("field")
    })
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(""),
        Just("logistics"),
        Just("Logistics"),
        Just("Tampere"),
        Just("tampere"),
        Just("Äänekoski"),
        Just("gold"),
        Just("CTO"),
        Just("firm2.example"),
        Just("sv"),
        Just("customers"),
        Just("Company 3 Oy"),
        Just("an"),
        Just("Ä"),
        Just("'; DROP TABLE contacts; --"),
    ]
    .prop_map(String::from)
}

fn test_strategy() -> impl Strategy<Value = Test> {
    prop_oneof![
        value_strategy().prop_map(Test::Equals),
        value_strategy().prop_map(Test::NotEquals),
        prop::collection::vec(value_strategy(), 1..4).prop_map(Test::In),
        prop::collection::vec(value_strategy(), 1..4).prop_map(Test::NotIn),
        value_strategy().prop_map(Test::Contains),
        value_strategy().prop_map(Test::StartsWith),
        Just(Test::IsEmpty),
        Just(Test::IsNotEmpty),
    ]
}

fn filter_strategy() -> impl Strategy<Value = Filter> {
    let leaf = (field_strategy(), test_strategy())
        .prop_map(|(field, test)| Filter::Condition(Condition { field, test }));
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

#[test]
fn random_filters_agree_with_the_hand_evaluation() {
    let (scratch, memberships) = fixture();
    let db = Db::open(&scratch);
    let now = fairsend::now_millis();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&filter_strategy(), |filter| {
            let segment = Segment {
                filter: Some(filter.clone()),
                ..Segment::default()
            };
            for registers in [&["customers"][..], &["customers", "partners"]] {
                let want = expected(&memberships, registers, &filter);
                let got = db.selected(registers, &segment, None, now);
                prop_assert_eq!(got, want, "{:?} over {:?}", filter, registers);
            }
            Ok(())
        })
        .expect("every random filter selects what the hand evaluation selects");
}

#[test]
fn history_parts_follow_sends_and_clicks_with_the_clock_injected() {
    let (scratch, _) = fixture();
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = Db::open(&scratch);
    let now = fairsend::now_millis();
    let sent_campaign = db
        .runtime
        .block_on(db.store.campaign_id("test-campaign"))
        .expect("campaign id");
    let customers: BTreeSet<String> = db.selected(&["customers"], &Segment::default(), None, now);
    let both = db.selected(&["customers", "partners"], &Segment::default(), None, now);
    let partners_only: BTreeSet<String> = both.difference(&customers).cloned().collect();
    assert!(!partners_only.is_empty());

    let excluded = Segment {
        exclude_campaigns: vec!["test-campaign".into()],
        ..Segment::default()
    };
    assert_eq!(
        db.selected(&["customers", "partners"], &excluded, None, now),
        partners_only
    );
    let unknown = Segment {
        exclude_campaigns: vec!["never-sent".into()],
        ..Segment::default()
    };
    assert_eq!(
        db.selected(&["customers", "partners"], &unknown, None, now),
        both
    );

    let rested = Segment {
        not_sent_within: Some(std::time::Duration::from_secs(30 * 86_400)),
        ..Segment::default()
    };
    let other_campaign = Some(sent_campaign + 1_000);
    assert_eq!(
        db.selected(&["customers", "partners"], &rested, other_campaign, now),
        partners_only
    );
    // The campaign's own sends do not count against it (a resumed run keeps its audience).
    assert_eq!(
        db.selected(
            &["customers", "partners"],
            &rested,
            Some(sent_campaign),
            now
        ),
        both
    );
    // 31 days later, the sends are old enough.
    assert_eq!(
        db.selected(
            &["customers", "partners"],
            &rested,
            other_campaign,
            now + 31 * DAY
        ),
        both
    );

    // One click makes one contact engaged, for 180 days.
    let (outbox_id, clicked_email) = db.first_sent_row();
    assert!(
        db.runtime
            .block_on(db.store.record_event(outbox_id, "click", None))
            .expect("click")
    );
    let engaged = Segment {
        engaged_within: Some(std::time::Duration::from_secs(180 * 86_400)),
        ..Segment::default()
    };
    assert_eq!(
        db.selected(&["customers", "partners"], &engaged, None, now + DAY),
        BTreeSet::from([clicked_email])
    );
    assert!(
        db.selected(&["customers", "partners"], &engaged, None, now + 181 * DAY)
            .is_empty()
    );
}
