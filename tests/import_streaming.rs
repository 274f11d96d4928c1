//! The streaming import (issue 21): a file read and staged a few rows at a time gives exactly
//! what the whole file read at once gives — the duplicates of an address merged as
//! `parse_contacts_csv` merges them in memory, wherever the batch boundaries fall — and a
//! file-level error after many staged batches leaves the database as it was. Runs against
//! SQLite, and PostgreSQL with FAIRSEND_TEST_POSTGRES.

mod common;

use common::{Scratch, stderr, stdout};
use fairsend::audience::parse_contacts_csv;
use fairsend::config::ConfigDir;

/// The batch size override of debug builds (see `app::contacts::batch_rows`).
const BATCH_ENV: &str = "FAIRSEND_IMPORT_BATCH_ROWS";

/// A stored membership, its contact and everything an import writes but the times.
type Row = Vec<Option<String>>;

/// Every membership with its contact, by contact id, read on the test's own connection.
fn dump(scratch: &Scratch) -> Vec<Row> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    sqlx::any::install_default_drivers();
    runtime.block_on(async {
        let pool = sqlx::AnyPool::connect(&scratch.db_url())
            .await
            .expect("open db");
        let rows = sqlx::query(
            "SELECT CAST(c.id AS TEXT) AS id, c.email, c.email_hash, m.register, m.first_name,
                    m.last_name, m.company, m.business_id, m.title, m.locale, m.legal_basis,
                    m.consent_at, m.fields, m.source
               FROM memberships m JOIN contacts c ON c.id = m.contact_id
              ORDER BY c.id, m.register",
        )
        .fetch_all(&pool)
        .await
        .expect("memberships");
        use sqlx::Row as _;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect()
    })
}

/// A small deterministic generator, so a failure can be rerun as it was.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }

    fn maybe(&mut self, text: String) -> String {
        if self.below(3) == 0 {
            String::new()
        } else {
            text
        }
    }
}

/// 300 rows over 40 addresses (written in varying case), each cell sometimes empty, with
/// locales, legal bases and consent times that change between an address's rows, and a
/// bad row now and then.
fn messy_csv(seed: u64) -> String {
    let mut rng = Lcg(seed);
    let mut csv = String::from(
        "email,first_name,last_name,company,title,locale,legal_basis,consent_at,city,tier\n",
    );
    for row in 0..300 {
        let person = rng.below(40);
        let email = match rng.below(4) {
            0 => format!("Person{person}@Firma{}.example", person % 7),
            _ => format!("person{person}@firma{}.example", person % 7),
        };
        let locale = ["", "fi", "sv", "en"][rng.below(4) as usize];
        let (basis, consent) = match rng.below(5) {
            0 => (
                "consent",
                format!("2026-0{}-1{}", 1 + rng.below(9), rng.below(10)),
            ),
            1 => ("job_role", String::new()),
            2 => ("customer_relationship", String::new()),
            // The register's default basis.
            _ => ("", String::new()),
        };
        let email = if rng.below(40) == 0 {
            format!("not-an-address-{row}")
        } else {
            email
        };
        let (title, city, tier) = (rng.below(5), rng.below(6), rng.below(3));
        let cells = [
            format!("First{row}"),
            format!("Last{row}"),
            format!("Firma {} Oy", person % 7),
            format!("Title{title}"),
            format!("City{city}"),
            format!("t{tier}"),
        ]
        .map(|cell| rng.maybe(cell));
        let [first, last, company, title, city, tier] = cells;
        csv.push_str(&format!(
            "{email},{first},{last},{company},{title},{locale},{basis},{consent},{city},{tier}\n"
        ));
    }
    csv
}

/// `import FILE --register customers --json` with `batch` rows at a time (`None`: default).
fn import(scratch: &Scratch, file: &str, batch: Option<usize>) -> serde_json::Value {
    // Relative to the scratch directory, so that the sources of two scratches compare equal.
    let mut cmd = scratch.command(&["import", file, "--register", "customers", "--json"]);
    if let Some(n) = batch {
        cmd.env(BATCH_ENV, n.to_string());
    } else {
        cmd.env_remove(BATCH_ENV);
    }
    let out = cmd.output().expect("run fairsend");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("json report")
}

/// What the in-memory parse of `file` says the register should hold, in first-row order,
/// without the addresses in `suppressed`: the rows as [`dump`] gives them, minus id and hash.
fn expected(scratch: &Scratch, file: &str, suppressed: &[&str]) -> Vec<Row> {
    let config = ConfigDir::load(&scratch.path("config")).expect("config");
    let register = config.registers.get("customers").expect("register");
    let path = scratch.path(file);
    let parsed = parse_contacts_csv(&path, register).expect("parse");
    let prefix = path.display().to_string();
    parsed
        .records
        .iter()
        .filter(|r| !suppressed.contains(&r.email.as_str()))
        .map(|r| {
            vec![
                Some(r.email.as_str().to_string()),
                Some("customers".to_string()),
                Some(r.first_name.clone()),
                Some(r.last_name.clone()),
                Some(r.company.clone()),
                Some(r.business_id.clone()),
                Some(r.title.clone()),
                r.locale.map(|l| l.as_str().to_string()),
                Some(r.legal_basis.as_str().to_string()),
                r.consent_at.clone(),
                Some(serde_json::to_string(&r.fields).expect("fields")),
                Some(r.source.replacen(&prefix, file, 1)),
            ]
        })
        .collect()
}

/// [`dump`] without the address hash, which is keyed by each database's own data key.
fn without_hash(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove(2);
            r
        })
        .collect()
}

/// [`dump`] without the contact id and address hash columns.
fn without_keys(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.drain(..1);
            r.remove(1);
            r
        })
        .collect()
}

/// The counts of a report, for comparing two imports.
fn counts(v: &serde_json::Value) -> Vec<serde_json::Value> {
    [
        "inserted",
        "updated",
        "unchanged",
        "merged_duplicates",
        "refused_suppressed",
    ]
    .iter()
    .map(|k| v[*k].clone())
    .chain([serde_json::json!(v["errors"].as_array().map(Vec::len))])
    .collect()
}

#[test]
fn duplicates_spread_over_batches_merge_as_the_whole_file_read_at_once() {
    let small = Scratch::new("outbox:outbox");
    let whole = Scratch::new("outbox:outbox");
    // Two addresses of the file are suppressed: refused in both, whichever batch they are in.
    let suppressed = ["person3@firma3.example", "person17@firma3.example"];
    for scratch in [&small, &whole] {
        for address in suppressed {
            let out = scratch.run(&["optout", "add", address]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        scratch.write("first.csv", &messy_csv(1));
        scratch.write("second.csv", &messy_csv(2));
    }
    let first_small = import(&small, "first.csv", Some(7));
    let first_whole = import(&whole, "first.csv", None);
    assert_eq!(counts(&first_small), counts(&first_whole));
    assert!(
        first_whole["merged_duplicates"].as_u64() > Some(200),
        "{first_whole}"
    );
    assert_eq!(first_whole["refused_suppressed"], 2, "{first_whole}");
    assert!(
        first_whole["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(without_hash(&dump(&small)), without_hash(&dump(&whole)));
    assert_eq!(
        without_keys(&dump(&small)),
        expected(&small, "first.csv", &suppressed)
    );

    // A second file over the same addresses: updates and unchanged rows counted alike.
    let second_small = import(&small, "second.csv", Some(3));
    let second_whole = import(&whole, "second.csv", None);
    assert_eq!(counts(&second_small), counts(&second_whole));
    assert!(second_whole["updated"].as_u64() > Some(0), "{second_whole}");
    assert_eq!(without_hash(&dump(&small)), without_hash(&dump(&whole)));
    // Re-importing it changes nothing, in batches or not.
    let again = import(&small, "second.csv", Some(5));
    assert_eq!(
        (again["inserted"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(without_hash(&dump(&small)), without_hash(&dump(&whole)));
}

#[test]
fn a_file_level_error_after_many_batches_leaves_the_database_unchanged() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("first.csv", &messy_csv(3));
    import(&scratch, "first.csv", Some(10));
    let before = dump(&scratch);
    assert!(!before.is_empty());
    // New addresses and changed rows for a hundred batches, then a row over 64 KiB.
    let mut csv = messy_csv(4);
    for i in 0..700 {
        csv.push_str(&format!("new{i}@uusi.example,New{i},,,,,,,,\n"));
    }
    csv.push_str(&format!(
        "late@uusi.example,\"{}\",,,,,,,,\n",
        "x".repeat(70_000)
    ));
    scratch.write("broken.csv", &csv);
    let path = scratch.path("broken.csv").display().to_string();
    let out = scratch
        .command(&["import", &path, "--register", "customers"])
        .env(BATCH_ENV, "10")
        .output()
        .expect("run fairsend");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = csv.lines().count();
    assert!(
        stderr(&out).contains(&format!("broken.csv: line {line}: the row is longer than")),
        "{}",
        stderr(&out)
    );
    assert_eq!(dump(&scratch), before);
}
