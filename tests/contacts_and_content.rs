//! What a new user and an attacker bring: contact files from Excel, rows that are wrong,
//! empty names, a sender's business ID, unreachable link addresses, huge lines, and contact
//! values or body templates meant to do harm.

mod common;

use std::time::{Duration, Instant};

use common::{Scratch, stderr, stdout};

const HEADER: &str = "email,first_name,last_name,company,title";

/// A contacts file whose 4th line (as an editor numbers lines) has a bad address, written
/// with `eol` line ends; line 3 is a quoted field spanning two lines when `multiline`.
fn contacts_with_bad_line_4(eol: &str, multiline: bool) -> String {
    let second = if multiline {
        format!("bertil@firma.example,Bertil,B,\"Firma{eol}Oy\",CFO{eol}")
    } else {
        format!("bertil@firma.example,Bertil,B,Firma Oy,CFO{eol}")
    };
    let bad_line = if multiline { 5 } else { 4 };
    let mut text = format!("{HEADER}{eol}anna@firma.example,Anna,A,Firma Oy,CEO{eol}{second}");
    text.push_str(&format!("not-an-address,Carl,C,Firma Oy,CTO{eol}"));
    text.push_str(&format!("{eol}dora@firma.example,Dora,D,Firma Oy,CIO{eol}"));
    text.push_str(&format!(
        "eeva@firma.example,Eeva,E,Firma Oy,CMO,extra{eol}"
    ));
    // (bad address on `bad_line`; a blank line; Dora; Eeva with one cell too many)
    let _ = bad_line;
    text
}

#[test]
fn import_line_numbers_match_the_editor_for_lf_crlf_and_multiline_fields() {
    for (eol, multiline, bad, extra) in [
        ("\n", false, 4, 7),
        ("\r\n", false, 4, 7),
        ("\r\n", true, 5, 8),
        ("\n", true, 5, 8),
    ] {
        let scratch = Scratch::new("outbox:outbox");
        scratch.write("c.csv", &contacts_with_bad_line_4(eol, multiline));
        let out = scratch.run(&["import", "c.csv", "--register", "customers"]);
        let err = stderr(&out);
        let label = format!("eol {eol:?}, multiline {multiline}");
        assert_eq!(out.status.code(), Some(1), "{label}: {err}");
        assert!(
            err.contains(&format!(
                "c.csv: line {bad}: column email: 'not-an-address'"
            )),
            "{label}: {err}"
        );
        assert!(
            err.contains(&format!(
                "c.csv: line {extra}: has 6 fields; the header has 5"
            )),
            "{label}: {err}"
        );
    }
}

#[test]
fn check_names_the_editor_line_of_a_bad_row_in_a_crlf_file() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/contacts/customers.csv",
        &contacts_with_bad_line_4("\r\n", false),
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("customers.csv: line 4: column email: 'not-an-address'"),
        "{err}"
    );
}

#[test]
fn skip_invalid_sends_to_the_good_rows_and_writes_the_rejected_ones_beside_the_input() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/contacts/customers.csv",
        &contacts_with_bad_line_4("\r\n", false),
    );
    // Without the flag: refused, nothing sent.
    let refused = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(!scratch.path("outbox").exists());

    let out = scratch.run(&["send", "config/campaigns/test.toml", "--skip-invalid"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", stdout(&out));
    let rejected = scratch.path("config/contacts/customers.rejected.csv");
    assert!(
        err.contains(&rejected.display().to_string()),
        "the output names the rejected-rows file: {err}"
    );
    let sent = std::fs::read_dir(scratch.path("outbox")).unwrap().count();
    assert_eq!(sent, 3, "Anna, Bertil and Dora are sent to");

    let mut reader = csv::Reader::from_path(&rejected).expect("rejected rows file");
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "email",
            "first_name",
            "last_name",
            "company",
            "title",
            "rejected_line",
            "rejected_reason"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(&rows[0][0], "not-an-address");
    assert_eq!(&rows[0][5], "4");
    assert!(rows[0][6].contains("column email"), "{:?}", &rows[0]);
    assert_eq!(&rows[1][0], "eeva@firma.example");
    assert_eq!(&rows[1][5], "7");
    assert!(rows[1][6].contains("has 6 fields"), "{:?}", &rows[1]);

    // Once the file is clean, the rejected rows of the earlier run are not left behind.
    scratch.contacts("config/contacts/customers.csv", 2);
    let out = scratch.run(&["send", "config/campaigns/test.toml", "--skip-invalid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!rejected.exists());
}

#[test]
fn import_skip_invalid_exits_0_and_the_corrected_rejected_file_imports_as_it_is() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("c.csv", &contacts_with_bad_line_4("\n", false));
    let out = scratch.run(&[
        "import",
        "c.csv",
        "--register",
        "customers",
        "--skip-invalid",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["inserted"], 3);
    let rejected = scratch.path("c.rejected.csv");
    assert_eq!(v["rejected_file"].as_str(), Some("c.rejected.csv"));
    assert!(rejected.exists());
    // Correct the rows in the rejected file and import it: its two extra columns are ignored.
    let fixed = std::fs::read_to_string(&rejected)
        .unwrap()
        .replace("not-an-address", "carl@firma.example")
        .replace("CMO,extra", "CMO");
    let fixed: String = fixed
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                // Eeva's row: drop the extra cell from the cells, keep line and reason.
                let cells: Vec<&str> = l.splitn(6, ',').collect();
                format!("{},{}", cells[..5].join(","), cells[5])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    scratch.write("c.rejected.csv", &fixed);
    let again = scratch.run(&[
        "import",
        "c.rejected.csv",
        "--register",
        "customers",
        "--json",
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let v: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(v["inserted"], 2, "{v}");
}

#[test]
fn a_huge_line_fails_fast_naming_file_and_line_with_bounded_memory() {
    let scratch = Scratch::new("outbox:outbox");
    let path = scratch.path("huge.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{HEADER}").unwrap();
        writeln!(f, "anna@firma.example,Anna,A,Firma Oy,CEO").unwrap();
        write!(f, "bertil@firma.example,Bertil,B,").unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f, ",CFO").unwrap();
    }
    scratch.write(
        "small.csv",
        &format!("{HEADER}\nanna@firma.example,Anna,A,Firma Oy,CEO\n"),
    );
    let (baseline, _, _) = import_measured(&scratch, "small.csv");
    let (huge, out, elapsed) = import_measured(&scratch, "huge.csv");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("huge.csv: line 3: the row is longer than 65536 bytes"),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    if let (Some(baseline), Some(huge)) = (baseline, huge) {
        eprintln!(
            "peak RSS: importing one row {} MB, a file with a 50 MB line {} MB",
            baseline / 1024,
            huge / 1024
        );
        assert!(
            huge < baseline + 16 * 1024,
            "peak RSS {huge} kB against {baseline} kB for one row: the line was buffered"
        );
    }
}

/// `fairsend import FILE` under GNU time: peak RSS in kB (when /usr/bin/time exists), the
/// output, and how long it took.
fn import_measured(scratch: &Scratch, file: &str) -> (Option<u64>, std::process::Output, Duration) {
    let time = std::path::Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut cmd = std::process::Command::new(time);
        cmd.arg("-f").arg("maxrss_kb=%M").arg(common::BIN);
        cmd
    } else {
        eprintln!("/usr/bin/time is missing (apt-get install time): peak memory not measured");
        std::process::Command::new(common::BIN)
    };
    let started = Instant::now();
    let out = cmd
        .current_dir(scratch.dir.path())
        .arg("--config")
        .arg(scratch.path("config"))
        .arg("--db")
        .arg(scratch.db_url())
        .args(["import", file, "--register", "customers"])
        .env_remove("FAIRSEND_SECRET")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let kb = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok());
    (kb, out, elapsed)
}

/// A campaign over the given contacts rows (after the header) with this subject and body.
fn campaign(rows: &str, subject: &str, body: &str) -> Scratch {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/contacts/customers.csv",
        &format!("{HEADER}\n{rows}"),
    );
    scratch.write("config/content/body.md", body);
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace(
            "subject = \"Offer for {{ company }}\"",
            &format!("subject = {subject:?}"),
        ),
    );
    scratch
}

#[test]
fn contact_values_in_a_markdown_body_are_literal_text_never_links_or_images() {
    let scratch = campaign(
        "anna@firma.example,Anna,A,[Click here](https://evil.example),CEO\n\
         bertil@firma.example,Bertil,B,![](https://t.example/x.gif),CFO\n\
         carl@firma.example,Carl,C,<b>Bold</b> & *Co* <https://auto.example>,CTO\n",
        "Offer",
        "# Hello {{ first_name }}\n\nYour company: {{ company }}\n\nSee [our offer](https://www.example.com/offer).\n",
    );
    let html = |to: &str| {
        let out = scratch.run(&[
            "preview",
            "config/campaigns/test.toml",
            "--to",
            to,
            "--format",
            "html",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let text = |to: &str| {
        let out = scratch.run(&[
            "preview",
            "config/campaigns/test.toml",
            "--to",
            to,
            "--format",
            "text",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let anna = html("anna@firma.example");
    assert!(!anna.contains("href=\"https://evil.example"), "{anna}");
    assert!(
        anna.contains("[Click here](https://evil.example)"),
        "{anna}"
    );
    // The body's own Markdown still works.
    assert!(anna.contains("<h1>Hello Anna</h1>"), "{anna}");
    assert!(
        anna.contains("href=\"https://www.example.com/offer\""),
        "{anna}"
    );
    assert!(
        text("anna@firma.example").contains("Your company: [Click here](https://evil.example)")
    );

    let bertil = html("bertil@firma.example");
    assert!(!bertil.contains("t.example/x.gif\""), "{bertil}");
    assert!(!bertil.contains("<img"), "{bertil}");
    assert!(bertil.contains("![](https://t.example/x.gif)"), "{bertil}");
    assert!(text("bertil@firma.example").contains("Your company: ![](https://t.example/x.gif)"));

    let carl = html("carl@firma.example");
    assert!(!carl.contains("<b>Bold"), "{carl}");
    assert!(!carl.contains("<em>"), "{carl}");
    assert!(!carl.contains("href=\"https://auto.example"), "{carl}");
    assert!(
        carl.contains("&lt;b&gt;Bold&lt;/b&gt; &amp; *Co* &lt;https://auto.example&gt;"),
        "{carl}"
    );

    // `|safe` cannot let a value through as markup.
    scratch.write(
        "config/content/body.md",
        "Your company: {{ company | safe }}\n",
    );
    let out = scratch.run(&[
        "preview",
        "config/campaigns/test.toml",
        "--to",
        "anna@firma.example",
        "--format",
        "html",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("content/body.md")
            && stderr(&out).contains("the safe filter is not available"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_body_that_loops_too_long_is_a_template_error_naming_the_file() {
    let scratch = campaign(
        "anna@firma.example,Anna,A,Firma Oy,CEO\n",
        "Offer",
        "Hello {{ first_name }}\n{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}\n",
    );
    let started = Instant::now();
    let mut child = scratch
        .command(&[
            "preview",
            "config/campaigns/test.toml",
            "--to",
            "anna@firma.example",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without a limit the render runs for hours: give it 20 s, then stop it and fail.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("preview still rendering after 20 s: no execution limit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("content/body.md") && err.contains("ran longer than its limit"),
        "{err}"
    );
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("ran longer than its limit"),
        "{}",
        stdout(&check)
    );
}

#[test]
fn check_reports_every_contact_with_an_empty_field_the_message_uses() {
    let rows = "anna@firma.example,,A,Firma Oy,CEO\n\
                bertil@firma.example,Bertil,B,Firma Oy,CFO\n\
                carl@firma.example,,C,,CTO\n";
    let scratch = campaign(
        rows,
        "{{ first_name }}, tervetuloa",
        "Hei {{ first_name }},\n\n{{ company }} on kutsuttu.\n",
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    let cnt003: Vec<&str> = text.lines().filter(|l| l.contains("[CNT003]")).collect();
    assert_eq!(cnt003.len(), 3, "{text}");
    assert!(
        cnt003.iter().any(|l| l.contains("anna@firma.example")
            && l.contains("customers.csv:2")
            && l.contains("'first_name'")
            && l.contains("the subject (")
            && l.contains("test.toml)")),
        "{text}"
    );
    assert!(
        cnt003.iter().any(|l| l.contains("carl@firma.example")
            && l.contains("customers.csv:4")
            && l.contains("'company'")
            && l.contains("body.md: line 3")),
        "{text}"
    );
    // send refuses as check does.
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    assert!(!scratch.path("outbox").exists());

    // With fallbacks (and a field guarded by `if`), the same contacts pass.
    scratch.write(
        "config/content/body.md",
        "Hei {{ first_name | default(\"hyvä vastaanottaja\") }},\n\n{% if company %}{{ company }} on kutsuttu.{% endif %}\n",
    );
    scratch.write(
        "config/campaigns/test.toml",
        &common::CAMPAIGN.replace(
            "subject = \"Offer for {{ company }}\"",
            "subject = \"{{ first_name | default('Hei') }}, tervetuloa\"",
        ),
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!stdout(&out).contains("CNT003"));
    let preview = scratch.run(&[
        "preview",
        "config/campaigns/test.toml",
        "--to",
        "anna@firma.example",
    ]);
    let eml = stdout(&preview);
    assert!(eml.contains("Subject: Hei, tervetuloa"), "{eml}");
    assert!(eml.contains("Hei hyv=C3=A4 vastaanottaja,"), "{eml}");
}

#[test]
fn an_invalid_sender_business_id_is_refused_like_a_contacts() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.contacts("config/contacts/customers.csv", 2);
    let toml = common::fairsend_toml("outbox:outbox")
        .replace("business_id = \"1234567-1\"", "business_id = \"1234567-2\"");
    scratch.write("config/fairsend.toml", &toml);
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(
            "[CFG001] ") && stdout(&out).contains("[sender] business_id: '1234567-2' looks like a Finnish business ID (Y-tunnus) but its check digit is wrong"),
        "{}",
        stdout(&out)
    );
    let send = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert_eq!(send.status.code(), Some(2));
    assert!(!scratch.path("outbox").exists());
    // The VAT form is accepted and printed as a Y-tunnus.
    scratch.write(
        "config/fairsend.toml",
        &toml.replace("\"1234567-2\"", "\"FI12345671\""),
    );
    let preview = scratch.run(&[
        "preview",
        "config/campaigns/test.toml",
        "--to",
        "person0000@company00.example",
        "--format",
        "text",
    ]);
    assert!(preview.status.success(), "{}", stderr(&preview));
    assert!(stdout(&preview).contains("Y-tunnus 1234567-1"));
}

#[test]
fn loopback_or_http_links_with_a_real_relay_warn_in_check_and_refuse_send() {
    let scratch = Scratch::new("smtp://relay.example.com:587");
    scratch.contacts("config/contacts/customers.csv", 2);
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    let text = stdout(&check);
    assert!(
        text.contains("warning[LNK001]") && text.contains("'http://127.0.0.1:8080' is a loopback"),
        "{text}"
    );
    assert!(text.contains("warning[LNK002]"), "{text}");

    let send = scratch
        .command(&["send", "config/campaigns/test.toml"])
        .output()
        .unwrap();
    assert_eq!(send.status.code(), Some(1), "{}", stderr(&send));
    assert!(
        stderr(&send).contains("send refused") && stderr(&send).contains("--allow-insecure-links"),
        "{}",
        stderr(&send)
    );
    let status = scratch.run(&["status", "--json"]);
    assert_eq!(stdout(&status).trim(), "[]", "the campaign was not started");

    // An https public address raises nothing, and the same relay is fine.
    let toml = common::fairsend_toml("smtp://relay.example.com:587").replace(
        "public_base_url = \"http://127.0.0.1:8080\"",
        "public_base_url = \"https://links.example.com\"",
    );
    scratch.write("config/fairsend.toml", &toml);
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert!(!stdout(&check).contains("LNK00"), "{}", stdout(&check));

    // A loopback transport is a test run: no finding either way.
    let local = Scratch::new("smtp://127.0.0.1:2525");
    local.contacts("config/contacts/customers.csv", 2);
    let check = local.run(&["check", "config/campaigns/test.toml"]);
    assert!(!stdout(&check).contains("LNK00"), "{}", stdout(&check));
}

#[test]
fn allow_insecure_links_lets_send_go_on() {
    let scratch = Scratch::new("smtp://relay.invalid:587");
    scratch.contacts("config/contacts/customers.csv", 2);
    let run = |extra: &[&str]| {
        let mut args = vec!["send", "config/campaigns/test.toml"];
        args.extend_from_slice(extra);
        scratch.command(&args).output().unwrap()
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--allow-insecure-links"));
    // With the flag the run goes on to the relay (which does not exist: the messages wait
    // for a retry or fail, but they were attempted).
    let allowed = run(&["--allow-insecure-links", "--no-wait"]);
    assert!(
        stdout(&allowed).contains("via smtp://relay.invalid:587"),
        "{}\n{}",
        stdout(&allowed),
        stderr(&allowed)
    );
    let states = common::states(&scratch, "test-campaign");
    let attempted =
        states["deferred"].as_i64().unwrap_or(0) + states["failed"].as_i64().unwrap_or(0);
    assert_eq!(attempted, 2, "{states}");
}

const CONSENT_ROWS: &str = "email,first_name,last_name,company,title,locale,legal_basis,consent_at\n\
    aino@firma.example,Aino,A,Firma Oy,CEO,fi,consent,2026-01-02\n\
    sven@firma.example,Sven,S,Firma Ab,CFO,sv,consent,2026-01-02\n\
    emma@firma.example,Emma,E,Firma Ltd,CTO,en,consent,2026-01-02\n\
    kalle@firma.example,Kalle,K,Firma Oy,COO,fi,,\n";

fn preview(scratch: &Scratch, to: &str, format: &str) -> String {
    let out = scratch.run(&[
        "preview",
        "config/campaigns/test.toml",
        "--to",
        to,
        "--format",
        format,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn consent_based_contacts_are_told_they_may_withdraw_consent_in_their_language() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/contacts/customers.csv", CONSENT_ROWS);
    for (to, sentence) in [
        (
            "aino@firma.example",
            "Voit peruuttaa suostumuksesi milloin tahansa",
        ),
        (
            "sven@firma.example",
            "Du kan när som helst och kostnadsfritt återkalla ditt samtycke",
        ),
        (
            "emma@firma.example",
            "You may withdraw your consent at any time",
        ),
    ] {
        let text = preview(&scratch, to, "text");
        assert!(text.contains(&format!("- {sentence}")), "{to}: {text}");
        let html = preview(&scratch, to, "html");
        assert!(
            html.contains(&format!("<li class=\"fs-withdraw-consent\">{sentence}")),
            "{to}: {html}"
        );
    }
    // A contact on another legal basis gave no consent to withdraw.
    let kalle = preview(&scratch, "kalle@firma.example", "text");
    assert!(!kalle.contains("peruuttaa suostumuksesi"), "{kalle}");
}

#[test]
fn register_titles_per_locale_reach_each_reader_and_check_reports_a_missing_one() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write("config/contacts/customers.csv", CONSENT_ROWS);
    let registers = common::REGISTERS.replace(
        "title = \"Testi Yhtiö Oy:n asiakasrekisteri\"",
        "title = { fi = \"Testi Yhtiö Oy:n asiakasrekisteri\", sv = \"Testi Yhtiö Ab:s kundregister\" }",
    );
    scratch.write("config/registers.toml", &registers);
    let sven = preview(&scratch, "sven@firma.example", "text");
    assert!(
        sven.contains("från registret Testi Yhtiö Ab:s kundregister"),
        "{sven}"
    );
    let aino = preview(&scratch, "aino@firma.example", "text");
    assert!(
        aino.contains("rekisteristä Testi Yhtiö Oy:n asiakasrekisteri"),
        "{aino}"
    );
    // No English title: Emma reads the default locale's, and check says so.
    let emma = preview(&scratch, "emma@firma.example", "text");
    assert!(
        emma.contains("the register Testi Yhtiö Oy:n asiakasrekisteri"),
        "{emma}"
    );
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    let text = stdout(&check);
    let reg001: Vec<&str> = text.lines().filter(|l| l.contains("[REG001]")).collect();
    assert_eq!(reg001.len(), 1, "{text}");
    assert!(
        reg001[0].contains("[registers.customers] title")
            && reg001[0].contains("has no en translation, and 1 recipient(s) read en"),
        "{text}"
    );
    // With the translation, nothing is reported.
    scratch.write(
        "config/registers.toml",
        &registers.replace(
            "sv = \"Testi Yhtiö Ab:s kundregister\" }",
            "sv = \"Testi Yhtiö Ab:s kundregister\", en = \"Testi Yhtiö Ltd's customer register\" }",
        ),
    );
    let check = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert!(!stdout(&check).contains("REG00"), "{}", stdout(&check));
    let emma = preview(&scratch, "emma@firma.example", "text");
    assert!(
        emma.contains("Testi Yhtiö Ltd's customer register"),
        "{emma}"
    );

    // A table must name the default locale; an unknown locale is named too.
    scratch.write(
        "config/registers.toml",
        &common::REGISTERS.replace(
            "title = \"Testi Yhtiö Oy:n asiakasrekisteri\"",
            "title = { sv = \"Kundregister\", de = \"Kundenregister\" }",
        ),
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("[registers.customers] title.de: 'de' is not one of fi, sv, en"),
        "{}",
        stdout(&out)
    );
    scratch.write(
        "config/registers.toml",
        &common::REGISTERS.replace(
            "title = \"Testi Yhtiö Oy:n asiakasrekisteri\"",
            "title = { sv = \"Kundregister\" }",
        ),
    );
    let out = scratch.run(&["check", "config/campaigns/test.toml"]);
    assert!(
        stdout(&out).contains("[registers.customers] title.fi: is missing"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn hygiene_files_name_the_editor_line_too() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "ceased.csv",
        "business_id\r\n0112038-9\r\n\r\n\"1234567-1\"\r\n0112038-8\r\n",
    );
    let out = scratch.run(&["hygiene", "ceased", "ceased.csv"]);
    assert!(
        stderr(&out).contains("ceased.csv: line 5: column business_id: '0112038-8'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_semicolon_separated_excel_file_imports_like_a_comma_one() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "semi.csv",
        "\u{feff}email;first_name;last_name;company\r\nanna@asiakas.example;Anna;Asiakas;\"Asiakas; Oy\"\r\nbo@kund.example;Bo;Kund;Kund Ab\r\n",
    );
    let out = scratch.run(&["import", "semi.csv", "--register", "customers", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["inserted"], 2, "{v}");
    // The quoted cell keeps its semicolon; names landed in their columns.
    assert!(!common::text_occurrences(&scratch.db_url(), "Asiakas; Oy").is_empty());
    assert!(!common::text_occurrences(&scratch.db_url(), "Kund Ab").is_empty());
}
