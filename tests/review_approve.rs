//! Review writes every footer variant with an index; approval is required by default, and a
//! change to what a variant says after approval makes `send` refuse, naming the variant.

mod common;

use common::{Scratch, stderr, stdout};

fn approval_required(scratch: &Scratch) {
    let path = scratch.path("config/campaigns/example.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("require_approval = false", "require_approval = true");
    std::fs::write(path, text).unwrap();
}

#[test]
fn review_approve_send_and_refuse_after_a_change() {
    let scratch = Scratch::example();
    approval_required(&scratch);
    let outbox = format!("outbox:{}", scratch.path("outbox").display());
    let campaign = "config/campaigns/example.toml";

    // Unapproved: refused.
    let send = scratch.run(&["send", campaign, "--transport", &outbox]);
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    assert!(stdout(&send).contains("error[APR001]"), "{}", stdout(&send));
    assert!(!scratch.path("outbox").exists());

    // Review: at least four variants, each as HTML and text, and an index with counts.
    let review = scratch.run(&["review", campaign, "--out", "review", "--json"]);
    assert!(review.status.success(), "{}", stderr(&review));
    let v: serde_json::Value = serde_json::from_str(&stdout(&review)).unwrap();
    let variants = v["variants"].as_array().unwrap();
    assert!(variants.len() >= 4, "{v}");
    let total: i64 = variants
        .iter()
        .map(|x| x["recipients"].as_i64().unwrap())
        .sum();
    assert_eq!(
        total, 22,
        "every eligible recipient is in exactly one variant"
    );
    let index = std::fs::read_to_string(scratch.path("review/index.html")).unwrap();
    for x in variants {
        let stem = x["id"].as_str().unwrap().replace('/', "-");
        let html = std::fs::read_to_string(scratch.path(&format!("review/{stem}.html"))).unwrap();
        let text = std::fs::read_to_string(scratch.path(&format!("review/{stem}.txt"))).unwrap();
        assert!(html.contains("fs-objection") && html.contains("fs-privacy"));
        assert!(text.contains("1234567-1"));
        assert!(
            index.contains(&format!("href=\"{stem}.html\"")),
            "index links {stem}"
        );
    }

    // Approve, then send works.
    let approve = scratch.run(&["approve", campaign, "--by", "Liisa Lakimies"]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    assert!(stdout(&approve).contains("by Liisa Lakimies"));
    let check = scratch.run(&["check", campaign]);
    assert!(check.status.success(), "{}", stdout(&check));
    let send = scratch.run(&["send", campaign, "--transport", &outbox]);
    assert!(send.status.success(), "{}", stderr(&send));
    assert_eq!(
        std::fs::read_dir(scratch.path("outbox")).unwrap().count(),
        22
    );

    // The events register's controller changes after approval: its variants changed, send refuses.
    let registers = scratch.path("config/registers.toml");
    let text = std::fs::read_to_string(&registers).unwrap();
    let changed = text.replacen(
        "kind = \"marketing\"\ncontroller = \"Esimerkki Analytics Oy\"",
        "kind = \"marketing\"\ncontroller = \"Esimerkki Events Oy\"",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&registers, changed).unwrap();
    let send = scratch.run(&["send", campaign, "--transport", &outbox]);
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    let out = stdout(&send);
    assert!(
        out.contains("error[APR002] footer variant events/en/job_role: changed since the approval"),
        "{out}"
    );
    assert!(
        !out.contains("footer variant customers/"),
        "unchanged variants are not named: {out}"
    );

    // Approving again clears it.
    assert!(
        scratch
            .run(&["approve", campaign, "--by", "Liisa Lakimies"])
            .status
            .success()
    );
    assert!(scratch.run(&["check", campaign]).status.success());
}

#[test]
fn preview_prints_what_one_recipient_gets() {
    let scratch = Scratch::example();
    let out = scratch.run(&[
        "preview",
        "config/campaigns/example.toml",
        "--to",
        "Erik.Lindqvist@lindqvist-ab.example",
        "--format",
        "text",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Hei Erik,"), "{text}");
    assert!(
        text.contains("Dataskyddsmeddelande"),
        "Swedish footer for a Swedish contact"
    );
    let eml = scratch.run(&[
        "preview",
        "config/campaigns/example.toml",
        "--to",
        "erik.lindqvist@lindqvist-ab.example",
    ]);
    let m = common::parse_message(&eml.stdout);
    assert!(m.one("to").contains("erik.lindqvist@lindqvist-ab.example"));
    let missing = scratch.run(&[
        "preview",
        "config/campaigns/example.toml",
        "--to",
        "nobody@nowhere.example",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("is not in the audience"));
}

/// The audit log's (actor, action, subject) rows for `action`, read straight from the database.
fn audit_rows(scratch: &Scratch, action: &str) -> Vec<(String, String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let url = scratch.db_url();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::AnyPool::connect(&url).await.expect("open db");
        sqlx::query("SELECT actor, action, subject FROM audit_log WHERE action = $1 ORDER BY id")
            .bind(action)
            .fetch_all(&pool)
            .await
            .expect("read the audit log")
            .iter()
            .map(|r| (r.get("actor"), r.get("action"), r.get("subject")))
            .collect()
    })
}

/// The CLI's `approve` leaves the same audit record as the admin page's approve button: one
/// use case, called by both.
#[test]
fn approve_on_the_command_line_is_audited() {
    let scratch = Scratch::example();
    let campaign = "config/campaigns/example.toml";
    let approve = scratch.run(&["approve", campaign, "--by", "Liisa Lakimies"]);
    assert!(approve.status.success(), "{}", stderr(&approve));
    let name = std::fs::read_to_string(scratch.path(campaign))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("name = ")
                .map(|v| v.trim_matches('"').to_string())
        })
        .expect("the campaign's name line");
    assert_eq!(
        audit_rows(&scratch, "approve"),
        vec![("Liisa Lakimies".to_string(), "approve".to_string(), name)]
    );

    // A refused approval (no name) records nothing.
    let refused = scratch.run(&["approve", campaign, "--by", "  "]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_eq!(audit_rows(&scratch, "approve").len(), 1);
}
