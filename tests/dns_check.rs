//! The DNS pre-flight against a real DNS server process on loopback (Debian's dnsmasq serving
//! a test zone): SPF pass, softfail and fail for a campaign's sending IPs, DMARC, and the DKIM
//! key check; `send` refuses on an SPF fail unless `--allow-dns-problems`. And DKIM signatures
//! made by fairsend verify with an independent verifier (dkimpy), for RSA and Ed25519 keys.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, SmtpServer, stderr, stdout};

struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    /// Serves `txt` records (name, strings) for example.com and nothing else.
    fn start(txt: &[(&str, Vec<String>)]) -> Self {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--pid-file=",
            "--user=root",
            "--local=/example.com/",
        ])
        .arg(format!("--port={port}"));
        for (name, strings) in txt {
            // Without a shell, quotes would be part of the data; commas separate the strings.
            assert!(strings.iter().all(|s| !s.contains(',')));
            cmd.arg(format!("--txt-record={name},{}", strings.join(",")));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (apt-get install dnsmasq-base; see .ci/run)");
        // Wait until it answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let probe = Command::new("python3")
                .args(["-c", &format!("import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.2);s.sendto(bytes.fromhex('123401000001000000000000076578616d706c6503636f6d0000100001'),('127.0.0.1',{port}));s.recvfrom(512)")])
                .output();
            if probe.is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RSA or Ed25519 key made by openssl: (private key PEM, published TXT record).
fn keypair(dir: &Path, algorithm: &str, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.pem"));
    let mut genpkey = Command::new("openssl");
    genpkey.arg("genpkey").arg("-out").arg(&key);
    match algorithm {
        "rsa" => genpkey.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        _ => genpkey.args(["-algorithm", "ed25519"]),
    };
    assert!(genpkey.output().unwrap().status.success());
    let der = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap()
        .stdout;
    // Ed25519 publishes the raw 32-byte key (RFC 8463), RSA the SubjectPublicKeyInfo.
    let public = if algorithm == "rsa" {
        der.clone()
    } else {
        der[der.len() - 32..].to_vec()
    };
    let b64 = data_encoding::BASE64.encode(&public);
    let k = if algorithm == "rsa" { "rsa" } else { "ed25519" };
    (
        std::fs::read_to_string(&key).unwrap(),
        format!("v=DKIM1; k={k}; p={b64}"),
    )
}

/// TXT strings are at most 255 bytes; longer records are split.
fn strings(record: &str) -> Vec<String> {
    record
        .as_bytes()
        .chunks(250)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

fn scratch_with(dns: &Dnsmasq, bounce_domain: &str, sending_ip: &str, dkim: bool) -> Scratch {
    let scratch = Scratch::new("outbox:outbox");
    let mut toml = common::fairsend_toml("outbox:outbox")
        .replace(
            "domain = \"bounces.example.com\"",
            &format!("domain = \"{bounce_domain}\""),
        )
        .replace(
            "resolver = \"127.0.0.1:9\"",
            &format!("resolver = \"{}\"", dns.addr()),
        )
        .replace("timeout = \"100ms\"", "timeout = \"2s\"")
        .replace(
            "timeout = \"10s\"",
            &format!("timeout = \"10s\"\nsending_ips = [\"{sending_ip}\"]"),
        );
    if dkim {
        toml.push_str("\n[dkim]\ndomain = \"example.com\"\nselector = \"fs1\"\nprivate_key_env = \"FAIRSEND_DKIM_KEY\"\n");
    }
    scratch.write("config/fairsend.toml", &toml);
    scratch.contacts("config/contacts/customers.csv", 3);
    scratch
}

fn dns_check(scratch: &Scratch, key: Option<&str>) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut cmd = scratch.command(&["dns", "check", "config/campaigns/test.toml", "--json"]);
    if let Some(key) = key {
        cmd.env("FAIRSEND_DKIM_KEY", key);
    }
    let out = cmd.output().unwrap();
    let findings = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code(), findings)
}

fn find<'a>(findings: &'a [serde_json::Value], code: &str) -> Option<&'a serde_json::Value> {
    findings.iter().find(|f| f["code"] == code)
}

#[test]
fn spf_dmarc_and_dkim_through_a_real_dns_server() {
    if !common::require(&[
        common::Tool::Aiosmtpd,
        common::Tool::Dnsmasq,
        common::Tool::Openssl,
    ]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (good_key, good_record) = keypair(tmp.path(), "rsa", "good");
    let (other_key, _) = keypair(tmp.path(), "rsa", "other");
    let dns = Dnsmasq::start(&[
        (
            "bounces.example.com",
            vec!["v=spf1 ip4:192.0.2.10 -all".into()],
        ),
        (
            "soft.example.com",
            vec!["v=spf1 ip4:192.0.2.10 ~all".into()],
        ),
        (
            "_dmarc.example.com",
            vec!["v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com".into()],
        ),
        ("fs1._domainkey.example.com", strings(&good_record)),
    ]);

    // pass
    let scratch = scratch_with(&dns, "bounces.example.com", "192.0.2.10", true);
    let (code, findings) = dns_check(&scratch, Some(&good_key));
    assert_eq!(code, Some(0), "{findings:?}");
    let spf = find(&findings, "DNS001").expect("SPF pass finding");
    assert_eq!(
        (spf["result"].as_str(), spf["severity"].as_str()),
        (Some("pass"), Some("info"))
    );
    assert!(spf["subject"].as_str().unwrap().contains("192.0.2.10"));
    let dmarc = find(&findings, "DNS010").expect("DMARC found");
    assert!(dmarc["message"].as_str().unwrap().contains("p=quarantine"));
    assert!(find(&findings, "DNS021").is_some(), "aligned: {findings:?}");
    assert!(
        find(&findings, "DNS030").is_some(),
        "published DKIM key matches: {findings:?}"
    );
    for f in &findings {
        for key in ["code", "severity", "subject", "result", "message"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
    }

    // softfail: a warning, still sendable
    let scratch = scratch_with(&dns, "soft.example.com", "198.51.100.7", false);
    let (code, findings) = dns_check(&scratch, None);
    assert_eq!(code, Some(0));
    let spf = find(&findings, "DNS003").expect("softfail finding");
    assert_eq!(
        (spf["result"].as_str(), spf["severity"].as_str()),
        (Some("softfail"), Some("warning"))
    );
    assert!(
        find(&findings, "DNS033").is_some(),
        "DKIM not configured is said"
    );

    // fail: an error with the record to publish; send refuses unless told otherwise
    let scratch = scratch_with(&dns, "bounces.example.com", "198.51.100.7", true);
    let (code, findings) = dns_check(&scratch, Some(&good_key));
    assert_eq!(code, Some(1));
    let spf = find(&findings, "DNS002").expect("fail finding");
    assert_eq!(
        (spf["result"].as_str(), spf["severity"].as_str()),
        (Some("fail"), Some("error"))
    );
    assert!(
        spf["message"]
            .as_str()
            .unwrap()
            .contains("ip4:198.51.100.7"),
        "{spf}"
    );
    let server = SmtpServer::start(scratch.dir.path(), &[]);
    let refused = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--transport",
            &server.url(),
        ])
        .env("FAIRSEND_DKIM_KEY", &good_key)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stdout(&refused).contains("error[DNS002]"),
        "{}",
        stdout(&refused)
    );
    assert!(stderr(&refused).contains("--allow-dns-problems"));
    assert!(server.messages().is_empty());
    let forced = scratch
        .command(&[
            "send",
            "config/campaigns/test.toml",
            "--transport",
            &server.url(),
            "--allow-dns-problems",
        ])
        .env("FAIRSEND_DKIM_KEY", &good_key)
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(
        stderr(&forced).contains("WARNING: sending despite 1 DNS problem"),
        "{}",
        stderr(&forced)
    );
    assert_eq!(server.messages().len(), 3);
    // `check` includes the DNS findings too.
    let check = scratch
        .command(&["check", "config/campaigns/test.toml"])
        .env("FAIRSEND_DKIM_KEY", &good_key)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(stdout(&check).contains("error[DNS002]"));

    // a private key that does not match the published one
    let scratch = scratch_with(&dns, "bounces.example.com", "192.0.2.10", true);
    let (code, findings) = dns_check(&scratch, Some(&other_key));
    assert_eq!(code, Some(1));
    let dkim = find(&findings, "DNS031").expect("key mismatch");
    assert!(
        dkim["message"]
            .as_str()
            .unwrap()
            .contains("v=DKIM1; k=rsa; p="),
        "says what to publish: {dkim}"
    );
}

#[test]
fn signatures_verify_with_dkimpy_for_rsa_and_ed25519() {
    if !common::require(&[common::Tool::Dkimpy, common::Tool::Openssl]) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    for algorithm in ["rsa", "ed25519"] {
        let tmp = tempfile::tempdir().unwrap();
        let (key, record) = keypair(tmp.path(), algorithm, "k");
        let scratch = Scratch::new("outbox:outbox");
        let mut toml = common::fairsend_toml("outbox:outbox");
        toml.push_str(&format!(
            "\n[dkim]\ndomain = \"example.com\"\nselector = \"fs1\"\nalgorithm = \"{}\"\nprivate_key_env = \"FAIRSEND_DKIM_KEY\"\n",
            if algorithm == "rsa" { "rsa-sha256" } else { "ed25519-sha256" }
        ));
        scratch.write("config/fairsend.toml", &toml);
        scratch.contacts("config/contacts/customers.csv", 3);
        let out = scratch
            .command(&["send", "config/campaigns/test.toml"])
            .env("FAIRSEND_DKIM_KEY", &key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let files: Vec<String> = std::fs::read_dir(scratch.path("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        assert_eq!(files.len(), 3);
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains("DKIM-Signature:"), "signed");
        let header = raw
            .split("DKIM-Signature:")
            .nth(1)
            .unwrap()
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            header.contains("list-unsubscribe-post"),
            "RFC 8058: the one-click headers are signed"
        );
        let verify = Command::new("python3")
            .arg(&script)
            .arg(&record)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{algorithm}: {}{}",
            stdout(&verify),
            stderr(&verify)
        );
        assert_eq!(stdout(&verify).matches("ok ").count(), 3);

        // A tampered message does not verify: the verifier is really checking.
        let tampered = tmp.path().join("tampered.eml");
        std::fs::write(&tampered, raw.replacen("Offer for", "Offer 4", 1)).unwrap();
        let verify = Command::new("python3")
            .arg(&script)
            .arg(&record)
            .arg(&tampered)
            .output()
            .unwrap();
        assert!(
            !verify.status.success(),
            "{algorithm}: tampered message verified"
        );
    }
}

#[test]
fn a_key_file_inside_the_configuration_is_refused() {
    let scratch = Scratch::new("outbox:outbox");
    let mut toml = common::fairsend_toml("outbox:outbox");
    let inside = scratch.path("config/dkim.pem");
    std::fs::write(&inside, "not used").unwrap();
    toml.push_str(&format!(
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"fs1\"\nprivate_key_file = \"{}\"\n",
        inside.display()
    ));
    scratch.write("config/fairsend.toml", &toml);
    let out = scratch.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "[dkim] private_key_file: must be an absolute path outside the configuration directory"
        ),
        "{}",
        stderr(&out)
    );
}
