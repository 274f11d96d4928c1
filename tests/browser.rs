//! A real headless browser (Debian's Chromium, driven through chromedriver by
//! tests/support/browser.py) opens the unsubscribe link of a rendered message, reads the page
//! in the contact's language, clicks confirm, and the address is suppressed.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Scratch, ServeProcess, stderr, stdout, unsubscribe_url};

#[test]
fn a_person_unsubscribes_in_a_real_browser() {
    let scratch = Scratch::new("outbox:outbox");
    scratch.write(
        "config/contacts/customers.csv",
        "email,first_name,last_name,company,title,locale\nkarin.nyberg@nyberg.example,Karin,Nyberg,Nyberg Ab,VD,sv\n",
    );
    let out = scratch.run(&["send", "config/campaigns/test.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let serve = ServeProcess::start(&scratch);
    let url = unsubscribe_url(&std::fs::read(file).unwrap())
        .replace("http://127.0.0.1:8080", &serve.base);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let run = Command::new("python3")
        .arg(script)
        .args(["unsubscribe", &url])
        .output()
        .expect("python3");
    assert!(
        run.status.success(),
        "browser failed (are chromium, chromium-driver and selenium installed? see .ci/run): {}",
        stderr(&run)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();

    let before = &seen["before"];
    assert_eq!(before["lang"], "sv");
    assert_eq!(before["h1"], "Avsluta marknadsföringsutskick");
    assert!(
        before["text"]
            .as_str()
            .unwrap()
            .contains("inte längre ska få marknadsföring från Testi Yhtiö Oy"),
        "{before}"
    );
    assert_eq!(before["button"], "Bekräfta avregistrering");
    let after = &seen["after"];
    assert_eq!(after["h1"], "Avregistreringen är bekräftad");
    assert!(
        after["text"]
            .as_str()
            .unwrap()
            .contains("får inte längre marknadsföring"),
        "{after}"
    );
    assert_eq!(after["erase_button"], "Radera mina uppgifter");

    let list = scratch.run(&["optout", "list", "--json"]);
    let optouts: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(optouts.len(), 1);
    assert_eq!(optouts[0]["email"], "karin.nyberg@nyberg.example");
    assert_eq!(optouts[0]["source"], "page");
}
