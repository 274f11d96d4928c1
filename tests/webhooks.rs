//! Provider webhooks over a real `fairsend serve`, with payloads built from each provider's
//! documented examples and signed by the test with keys it makes (openssl): SNS messages signed
//! with a certificate of a test CA, served from a loopback HTTPS server; SendGrid's ECDSA P-256
//! signature; Mailgun's HMAC; Postmark's basic auth. Valid events act (hard bounce suppressed,
//! complaint an opt-out) only when they name a message fairsend sent; a forged signature, a
//! wrong key, a replayed request, a stale timestamp and a certificate URL on a foreign host
//! change nothing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Scratch, ServeProcess, SmtpServer, Tool, delivered, json_list, sent_via_smtp};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const TOPIC: &str = "arn:aws:sns:eu-north-1:123456789012:fairsend-bounces";
const SNS_HOST: &str = "sns.eu-north-1.amazonaws.com";
const MAILGUN_KEY: &str = "key-test-mailgun-signing-0123456789";
const POSTMARK_USER: &str = "postmark-hook";
const POSTMARK_PASSWORD: &str = "a-long-test-password-for-postmark";

fn ready() -> bool {
    common::require(&[Tool::Aiosmtpd, Tool::Openssl])
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A campaign sent to three contacts, `[webhooks]` appended to the configuration, and `serve`
/// started with the providers' secrets in its environment.
struct Setup {
    scratch: Scratch,
    _smtp: SmtpServer,
    emails: Vec<String>,
    serve: Serve,
}

impl Setup {
    fn new(webhooks: &str, env: &[(&str, &str)]) -> Self {
        let (scratch, smtp, emails) = sent_via_smtp(3);
        let path = scratch.path("config/fairsend.toml");
        let mut toml = std::fs::read_to_string(&path).expect("read config");
        toml.push_str(webhooks);
        std::fs::write(&path, toml).expect("write config");
        let mut env = env.to_vec();
        env.push(("FAIRSEND_WEBHOOK_TEST_ONLY", "1"));
        let serve = Serve::start(&scratch, &env);
        Self {
            scratch,
            _smtp: smtp,
            emails,
            serve,
        }
    }

    fn message_id(&self, i: usize) -> String {
        delivered(&self._smtp, &self.emails[i]).1
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        post(&self.serve.base, path, headers, body)
    }

    fn bounces(&self) -> Vec<Value> {
        json_list(&self.scratch, &["bounces", "list", "--json"])
    }

    fn optouts(&self) -> Vec<Value> {
        json_list(&self.scratch, &["optout", "list", "--json"])
    }

    /// Bounces and opt-outs, to show that a refused request changed nothing.
    fn state(&self) -> (Vec<Value>, Vec<Value>) {
        (self.bounces(), self.optouts())
    }
}

/// `fairsend serve` with its log in a file, to show what a refusal logs.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Serve {
    fn start(scratch: &Scratch, env: &[(&str, &str)]) -> Self {
        let log = scratch.path("serve.log");
        // The metrics listener takes an ephemeral port too: tests run side by side.
        let mut command = scratch.command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
        command.env_remove("FAIRSEND_ADMIN_PASSWORD");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start fairsend serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        let Some(base) = base else {
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("serve did not start: {line:?}\n{log}");
        };
        Self { child, base, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(base: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let host = base.strip_prefix("http://").expect("http base");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn one_for<'a>(list: &'a [Value], email: &str) -> &'a Value {
    list.iter()
        .find(|b| b["recipient"] == email)
        .unwrap_or_else(|| panic!("no bounce for {email}: {list:?}"))
}

// ---------------------------------------------------------------- Amazon SES through SNS

/// A test CA, an SNS signing certificate it issued for `sns.eu-north-1.amazonaws.com` (also
/// the HTTPS server's certificate), and a self-signed one for the same host that no one trusts.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir");
        let run = |args: &str| openssl(dir, &args.split_whitespace().collect::<Vec<_>>());
        let subject = format!("/CN={SNS_HOST}");
        run(
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
             -subj /CN=fairsend-test-SNS-CA -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign",
        );
        run(&format!(
            "req -newkey rsa:2048 -nodes -keyout sns.key -out sns.csr -subj {subject}"
        ));
        std::fs::write(
            dir.join("ext.cnf"),
            format!(
                "subjectAltName=DNS:{SNS_HOST}\nextendedKeyUsage=serverAuth\n\
                 basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            ),
        )
        .expect("write ext");
        run(
            "x509 -req -in sns.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sns.pem \
             -days 2 -extfile ext.cnf",
        );
        run(&format!(
            "req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 \
             -subj {subject} -addext subjectAltName=DNS:{SNS_HOST}"
        ));
        // What the HTTPS server serves: the signing certificates under SNS-like names, and a
        // page for subscription confirmations.
        let www = dir.join("www");
        std::fs::create_dir_all(&www).expect("mkdir");
        for (from, to) in [
            ("sns.pem", "SimpleNotificationService-test.pem"),
            ("rogue.pem", "SimpleNotificationService-rogue.pem"),
        ] {
            std::fs::copy(dir.join(from), www.join(to)).expect("copy");
        }
        std::fs::write(www.join("confirm"), "<ConfirmSubscriptionResponse/>").expect("write");
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The base64 signature of `text` with `key` (`sha1` or `sha256`).
    fn sign(&self, key: &str, digest: &str, text: &str) -> String {
        std::fs::write(self.dir.join("tosign"), text).expect("write");
        openssl(
            &self.dir,
            &[
                "dgst",
                &format!("-{digest}"),
                "-sign",
                key,
                "-out",
                "sig",
                "tosign",
            ],
        );
        b64(&std::fs::read(self.dir.join("sig")).expect("read sig"))
    }
}

/// The loopback HTTPS server the SNS certificate is fetched from.
struct CertServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl CertServer {
    fn start(pki: &Pki) -> Self {
        let log = pki.dir.join("fetches.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/https_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(pki.dir.join("www"))
            .arg(pki.dir.join("sns.pem"))
            .arg(pki.dir.join("sns.key"))
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the HTTPS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read port");
        let port = line.trim().parse().expect("port");
        Self { child, port, log }
    }

    fn fetches(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for CertServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SES bounce or complaint notification (the documented examples' shape), with our
/// Message-ID in `mail.commonHeaders.messageId`.
fn ses_event(kind: &str, email: &str, message_id: &str) -> Value {
    let mail = json!({
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": [email],
        "headersTruncated": false,
        "commonHeaders": {
            "from": ["John Doe <john@example.com>"],
            "to": [email],
            "messageId": message_id,
            "subject": "Hello"
        }
    });
    match kind {
        "Bounce" => json!({
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                }],
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"
            },
            "mail": mail
        }),
        _ => json!({
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": email}],
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2016-01-27T14:59:38.237Z",
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
            },
            "mail": mail
        }),
    }
}

/// An SNS message around `message` (or a subscription confirmation), signed as SNS documents.
struct Sns<'a> {
    pki: &'a Pki,
    kind: &'a str,
    id: String,
    message: String,
    timestamp: i64,
    version: &'a str,
    key: &'a str,
    cert_url: String,
    topic: &'a str,
}

impl Sns<'_> {
    fn body(&self) -> String {
        let ts = iso(self.timestamp);
        let subscribe_url =
            format!("https://{SNS_HOST}/confirm?Action=ConfirmSubscription&Token=t0k3n");
        let canonical = if self.kind == "Notification" {
            format!(
                "Message\n{}\nMessageId\n{}\nSubject\nAmazon SES Email Event Notification\nTimestamp\n{ts}\nTopicArn\n{}\nType\n{}\n",
                self.message, self.id, self.topic, self.kind
            )
        } else {
            format!(
                "Message\n{}\nMessageId\n{}\nSubscribeURL\n{subscribe_url}\nTimestamp\n{ts}\nToken\nt0k3n\nTopicArn\n{}\nType\n{}\n",
                self.message, self.id, self.topic, self.kind
            )
        };
        let digest = if self.version == "1" {
            "sha1"
        } else {
            "sha256"
        };
        let signature = self.pki.sign(self.key, digest, &canonical);
        let mut doc = json!({
            "Type": self.kind,
            "MessageId": self.id,
            "TopicArn": self.topic,
            "Message": self.message,
            "Timestamp": ts,
            "SignatureVersion": self.version,
            "Signature": signature,
            "SigningCertURL": self.cert_url,
        });
        if self.kind == "Notification" {
            doc["Subject"] = json!("Amazon SES Email Event Notification");
            doc["UnsubscribeURL"] = json!(format!("https://{SNS_HOST}/?Action=Unsubscribe"));
        } else {
            doc["SubscribeURL"] = json!(subscribe_url);
            doc["Token"] = json!("t0k3n");
        }
        doc.to_string()
    }
}

/// A test CA and its certificate server, a campaign sent, and serve with `[webhooks.ses]`.
struct SesRig {
    pki: Pki,
    certs: CertServer,
    setup: Setup,
    _dir: tempfile::TempDir,
}

impl SesRig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        let certs = CertServer::start(&pki);
        let config = format!(
            "\n[webhooks]\nwindow = \"15m\"\n\n[webhooks.ses]\ntopic_arns = [\"{TOPIC}\"]\n\
             auto_confirm = true\ntest_ca_file = \"{}\"\ntest_connect = \"127.0.0.1:{}\"\n",
            pki.dir.join("ca.pem").display(),
            certs.port
        );
        let setup = Setup::new(&config, &[]);
        Self {
            pki,
            certs,
            setup,
            _dir: dir,
        }
    }

    /// A notification of `message`, signed now with SignatureVersion 1 and the CA's certificate.
    fn sns(&self, id: &str, message: Value) -> Sns<'_> {
        Sns {
            pki: &self.pki,
            kind: "Notification",
            id: id.to_string(),
            message: message.to_string(),
            timestamp: now(),
            version: "1",
            key: "sns.key",
            cert_url: format!("https://{SNS_HOST}/SimpleNotificationService-test.pem"),
            topic: TOPIC,
        }
    }
}

#[test]
fn ses_refuses_forgeries_foreign_hosts_untrusted_certificates_stale_and_foreign_topics() {
    if !ready() {
        return;
    }
    let rig = SesRig::new();
    let (setup, certs) = (&rig.setup, &rig.certs);
    let sns = |id: &str, message: Value| rig.sns(id, message);
    let hard = &setup.emails[0];

    // Refused, each changing nothing: a forged message, a certificate URL on a foreign host
    // or over http, a certificate no trusted CA issued, a stale timestamp, another topic.
    let before = setup.state();
    let genuine = sns("m-1", ses_event("Bounce", hard, &setup.message_id(0)));
    let forged = genuine.body().replace(hard.as_str(), &setup.emails[1]);
    assert_eq!(setup.post("/hooks/ses", &[], &forged).0, 401, "forged");
    for url in [
        "https://sns.eu-north-1.amazonaws.com.evil.example/SimpleNotificationService-test.pem"
            .to_string(),
        "https://evil.example.com/SimpleNotificationService-test.pem".to_string(),
        format!("http://{SNS_HOST}/SimpleNotificationService-test.pem"),
    ] {
        let foreign = Sns {
            cert_url: url.clone(),
            ..sns("m-2", ses_event("Bounce", hard, &setup.message_id(0)))
        };
        let (status, body) = setup.post("/hooks/ses", &[], &foreign.body());
        assert_eq!(status, 403, "{url}: {body}");
    }
    let rogue = Sns {
        key: "rogue.key",
        cert_url: format!("https://{SNS_HOST}/SimpleNotificationService-rogue.pem"),
        ..sns("m-3", ses_event("Bounce", hard, &setup.message_id(0)))
    };
    let (status, body) = setup.post("/hooks/ses", &[], &rogue.body());
    assert_eq!(status, 401, "untrusted certificate: {body}");
    assert!(body.contains("trusted root"), "{body}");
    let stale = Sns {
        timestamp: now() - 3600,
        ..sns("m-4", ses_event("Bounce", hard, &setup.message_id(0)))
    };
    assert_eq!(setup.post("/hooks/ses", &[], &stale.body()).0, 403, "stale");
    let other_topic = Sns {
        topic: "arn:aws:sns:eu-north-1:999999999999:someone-else",
        ..sns("m-5", ses_event("Bounce", hard, &setup.message_id(0)))
    };
    assert_eq!(
        setup.post("/hooks/ses", &[], &other_topic.body()).0,
        403,
        "topic"
    );
    assert_eq!(setup.state(), before, "refused requests changed something");
    assert!(
        !certs.fetches().iter().any(|f| f.contains("evil")),
        "a foreign host was never asked: {:?}",
        certs.fetches()
    );
}

#[test]
fn ses_notifications_act_once_through_the_proof_rule_and_the_certificate_is_fetched_once() {
    if !ready() {
        return;
    }
    let rig = SesRig::new();
    let (setup, certs) = (&rig.setup, &rig.certs);
    let sns = |id: &str, message: Value| rig.sns(id, message);
    let hard = &setup.emails[0];
    let genuine = sns("m-1", ses_event("Bounce", hard, &setup.message_id(0)));
    // The genuine one (SignatureVersion 1) suppresses; its replay changes nothing.
    let (status, body) = setup.post("/hooks/ses", &[], &genuine.body());
    assert_eq!(status, 200, "{body}");
    let received: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(received["suppressed"], 1, "{body}");
    let list = setup.bounces();
    let b = one_for(&list, hard);
    assert_eq!(
        (
            b["class"].as_str(),
            b["reason"].as_str(),
            b["action"].as_str(),
            b["verification"].as_str()
        ),
        (
            Some("hard"),
            Some("user_unknown"),
            Some("suppressed"),
            Some("proven")
        ),
    );
    let after = setup.state();
    let (status, body) = setup.post("/hooks/ses", &[], &genuine.body());
    assert_eq!(status, 200);
    assert!(body.contains("\"duplicate_events\":1"), "{body}");
    assert_eq!(setup.state(), after, "a replay changed something");

    // A complaint, SignatureVersion 2: an opt-out with source complaint.
    let complaint = Sns {
        version: "2",
        ..sns(
            "m-6",
            ses_event("Complaint", &setup.emails[1], &setup.message_id(1)),
        )
    };
    let (status, body) = setup.post("/hooks/ses", &[], &complaint.body());
    assert_eq!(status, 200, "{body}");
    let optouts = setup.optouts();
    assert!(
        optouts
            .iter()
            .any(|o| o["email"] == setup.emails[1].as_str() && o["source"] == "complaint"),
        "{optouts:?}"
    );

    // The proof rule: a bounce that names no message fairsend sent is recorded, unverified,
    // and suppresses no one.
    let unproven = sns(
        "m-7",
        ses_event("Bounce", &setup.emails[2], "<not-ours@mx.example.net>"),
    );
    let (status, body) = setup.post("/hooks/ses", &[], &unproven.body());
    assert_eq!(status, 200, "{body}");
    let list = setup.bounces();
    let b = one_for(&list, &setup.emails[2]);
    assert_eq!(b["verification"], "unverified", "{b}");
    assert_eq!(common::states(&setup.scratch, "test-campaign")["failed"], 1);

    // The certificate was fetched once, then cached.
    let fetched = certs.fetches();
    assert_eq!(
        fetched
            .iter()
            .filter(|f| f.ends_with("SimpleNotificationService-test.pem"))
            .count(),
        1,
        "{fetched:?}"
    );
}

#[test]
fn ses_subscription_is_confirmed_only_when_its_signature_verifies() {
    if !ready() {
        return;
    }
    let rig = SesRig::new();
    let (setup, certs) = (&rig.setup, &rig.certs);
    let sns = |id: &str, message: Value| rig.sns(id, message);
    // A subscription confirmation is confirmed by fetching SubscribeURL on the SNS host.
    let subscribe = Sns {
        kind: "SubscriptionConfirmation",
        ..sns("m-8", json!("You have chosen to subscribe to the topic"))
    };
    let subscribe = Sns {
        message: "You have chosen to subscribe to the topic".into(),
        ..subscribe
    };
    // A confirmation changed after signing fetches nothing.
    let forged = subscribe.body().replace("t0k3n", "other");
    assert_eq!(setup.post("/hooks/ses", &[], &forged).0, 401);
    assert!(!certs.fetches().iter().any(|f| f.starts_with("/confirm")));
    let (status, body) = setup.post("/hooks/ses", &[], &subscribe.body());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"subscription_confirmed\":true"), "{body}");
    assert!(
        certs
            .fetches()
            .iter()
            .any(|f| f.starts_with("/confirm?Action=ConfirmSubscription"))
    );
}

// ---------------------------------------------------------------- SendGrid

/// A P-256 key pair: (private key file, base64 DER public key as SendGrid shows it).
fn p256(dir: &Path, name: &str) -> (String, String) {
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    let der = format!("{name}.der");
    openssl(
        dir,
        &[
            "ec", "-in", &key, "-pubout", "-outform", "DER", "-out", &der,
        ],
    );
    (key, b64(&std::fs::read(dir.join(der)).expect("read der")))
}

fn sendgrid_sign(dir: &Path, key: &str, timestamp: &str, body: &str) -> String {
    std::fs::write(dir.join("payload"), format!("{timestamp}{body}")).expect("write");
    openssl(
        dir,
        &["dgst", "-sha256", "-sign", key, "-out", "sig", "payload"],
    );
    b64(&std::fs::read(dir.join("sig")).expect("read sig"))
}

/// SendGrid's documented `bounce` and `spamreport` events, with our Message-ID as `smtp-id`.
fn sendgrid_events(events: &[(&str, &str, &str, &str)]) -> String {
    let list: Vec<Value> = events
        .iter()
        .map(|(event, id, email, smtp_id)| {
            let mut e = json!({
                "email": email,
                "timestamp": now(),
                "smtp-id": smtp_id,
                "event": event,
                "category": "cat facts",
                "sg_event_id": id,
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
            });
            if *event == "bounce" {
                e["reason"] = json!("500 unknown recipient");
                e["status"] = json!("5.1.1");
                e["type"] = json!("bounce");
            }
            e
        })
        .collect();
    Value::Array(list).to_string()
}

#[test]
fn sendgrid_events_need_the_ecdsa_signature_of_the_configured_key() {
    if !ready() {
        return;
    }
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = p256(keys.path(), "sendgrid");
    let (other_key, _) = p256(keys.path(), "other");
    let setup = Setup::new(
        "\n[webhooks.sendgrid]\npublic_key_env = \"TEST_SENDGRID_KEY\"\n",
        &[("TEST_SENDGRID_KEY", &public)],
    );
    let body = sendgrid_events(&[
        ("bounce", "sg-1", &setup.emails[0], &setup.message_id(0)),
        ("spamreport", "sg-2", &setup.emails[1], &setup.message_id(1)),
        ("open", "sg-3", &setup.emails[2], &setup.message_id(2)),
    ]);
    let ts = now().to_string();
    let signature = sendgrid_sign(keys.path(), &key, &ts, &body);
    let headers = |sig: &str, ts: &str| {
        vec![
            ("X-Twilio-Email-Event-Webhook-Signature", sig.to_string()),
            ("X-Twilio-Email-Event-Webhook-Timestamp", ts.to_string()),
        ]
    };
    let send = |h: Vec<(&str, String)>, body: &str| {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        setup.post("/hooks/sendgrid", &h, body)
    };

    let before = setup.state();
    // Wrong key, a body changed after signing, no signature, a stale (validly signed) one.
    let wrong = sendgrid_sign(keys.path(), &other_key, &ts, &body);
    assert_eq!(send(headers(&wrong, &ts), &body).0, 401, "wrong key");
    let tampered = body.replace(setup.emails[0].as_str(), &setup.emails[2]);
    assert_eq!(send(headers(&signature, &ts), &tampered).0, 401, "tampered");
    assert_eq!(send(vec![], &body).0, 401, "unsigned");
    let old = (now() - 3600).to_string();
    let stale = sendgrid_sign(keys.path(), &key, &old, &body);
    assert_eq!(send(headers(&stale, &old), &body).0, 403, "stale");
    assert_eq!(setup.state(), before, "refused requests changed something");

    let (status, reply) = send(headers(&signature, &ts), &body);
    assert_eq!(status, 200, "{reply}");
    let list = setup.bounces();
    assert_eq!(
        list.len(),
        2,
        "a bounce and a complaint; the open is ignored: {list:?}"
    );
    assert!(
        !list
            .iter()
            .any(|b| b["recipient"] == setup.emails[2].as_str())
    );
    let b = one_for(&list, &setup.emails[0]);
    assert_eq!(
        (b["action"].as_str(), b["verification"].as_str()),
        (Some("suppressed"), Some("proven"))
    );
    assert!(
        setup
            .optouts()
            .iter()
            .any(|o| o["email"] == setup.emails[1].as_str() && o["source"] == "complaint")
    );

    // The same request again (a replay within the window): each sg_event_id counts once.
    let after = setup.state();
    let (status, reply) = send(headers(&signature, &ts), &body);
    assert_eq!(status, 200);
    assert!(reply.contains("\"duplicate_events\":2"), "{reply}");
    assert_eq!(setup.state(), after);
}

// ---------------------------------------------------------------- Mailgun

fn mailgun_body(key: &str, timestamp: i64, token: &str, event: Value) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature = data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes());
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": event
    })
    .to_string()
}

/// Mailgun's documented permanent `failed` event, with our Message-ID (without brackets, as
/// Mailgun reports it).
fn mailgun_failed(id: &str, email: &str, message_id: &str) -> Value {
    json!({
        "id": id,
        "timestamp": now() as f64,
        "log-level": "error",
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": email,
        "recipient-domain": email.split('@').nth(1),
        "delivery-status": {
            "attempt-no": 1,
            "message": "No Such User Here",
            "code": 550,
            "enhanced-code": "5.1.1",
            "description": "Not delivering to previously bounced address",
            "session-seconds": 0.0
        },
        "message": {"headers": {
            "to": email,
            "message-id": message_id.trim_start_matches('<').trim_end_matches('>'),
            "from": "Sales <sales@example.com>",
            "subject": "Offer"
        }},
        "flags": {"is-routed": false, "is-authenticated": true, "is-system-test": false, "is-test-mode": false}
    })
}

#[test]
fn mailgun_events_need_the_hmac_and_a_fresh_token() {
    if !ready() {
        return;
    }
    let setup = Setup::new(
        "\n[webhooks.mailgun]\nsigning_key_env = \"TEST_MAILGUN_KEY\"\n",
        &[("TEST_MAILGUN_KEY", MAILGUN_KEY)],
    );
    let event = mailgun_failed("mg-1", &setup.emails[0], &setup.message_id(0));
    let token = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";

    let before = setup.state();
    let wrong = mailgun_body("key-someone-else", now(), token, event.clone());
    assert_eq!(
        setup.post("/hooks/mailgun", &[], &wrong).0,
        401,
        "wrong key"
    );
    let stale = mailgun_body(MAILGUN_KEY, now() - 3600, "stale-token-0000", event.clone());
    assert_eq!(setup.post("/hooks/mailgun", &[], &stale).0, 403, "stale");
    let good = mailgun_body(MAILGUN_KEY, now(), token, event.clone());
    let forged = good.replace(setup.emails[0].as_str(), &setup.emails[1]);
    // The HMAC covers only timestamp and token: what the event says is tied to them by the
    // token being used once. A changed event under a fresh token is refused by the signature.
    let forged_token = forged.replace(token, "forged-token-000000000000000000");
    assert_eq!(
        setup.post("/hooks/mailgun", &[], &forged_token).0,
        401,
        "forged"
    );
    assert_eq!(setup.state(), before, "refused requests changed something");

    let (status, body) = setup.post("/hooks/mailgun", &[], &good);
    assert_eq!(status, 200, "{body}");
    let b = one_for(&setup.bounces(), &setup.emails[0]).clone();
    assert_eq!(
        (b["class"].as_str(), b["action"].as_str()),
        (Some("hard"), Some("suppressed"))
    );

    // The token again, even with another event: refused as a replay, nothing changes.
    let after = setup.state();
    let replay = mailgun_body(
        MAILGUN_KEY,
        now(),
        token,
        mailgun_failed("mg-2", &setup.emails[1], &setup.message_id(1)),
    );
    let (status, body) = setup.post("/hooks/mailgun", &[], &replay);
    assert_eq!(status, 200);
    assert!(body.contains("\"replayed_request\":true"), "{body}");
    assert_eq!(setup.state(), after, "a replayed token changed something");

    // A complaint with a fresh token: an opt-out.
    let complained = json!({
        "id": "mg-3", "timestamp": now() as f64, "event": "complained",
        "recipient": setup.emails[2],
        "message": {"headers": {"message-id": setup.message_id(2).trim_start_matches('<').trim_end_matches('>')}}
    });
    let body = mailgun_body(
        MAILGUN_KEY,
        now(),
        "fresh-token-1111111111111111111",
        complained,
    );
    assert_eq!(setup.post("/hooks/mailgun", &[], &body).0, 200);
    assert!(
        setup
            .optouts()
            .iter()
            .any(|o| o["email"] == setup.emails[2].as_str())
    );
}

// ---------------------------------------------------------------- Postmark

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))
}

/// Postmark's documented bounce webhook, with our Message-ID in Metadata.
fn postmark_bounce(id: u64, email: &str, message_id: &str) -> String {
    json!({
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": id,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"fairsend-message-id": message_id},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "sales@example.com",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": true,
        "Inactive": true,
        "CanActivate": true,
        "Subject": "Test subject"
    })
    .to_string()
}

#[test]
fn postmark_events_need_the_basic_auth_credentials() {
    if !ready() {
        return;
    }
    let setup = Setup::new(
        "\n[webhooks.postmark]\nusername_env = \"TEST_POSTMARK_USER\"\npassword_env = \"TEST_POSTMARK_PASSWORD\"\n",
        &[
            ("TEST_POSTMARK_USER", POSTMARK_USER),
            ("TEST_POSTMARK_PASSWORD", POSTMARK_PASSWORD),
        ],
    );
    let body = postmark_bounce(42, &setup.emails[0], &setup.message_id(0));
    let before = setup.state();
    assert_eq!(
        setup.post("/hooks/postmark", &[], &body).0,
        401,
        "no credentials"
    );
    let wrong = basic(POSTMARK_USER, "a-long-test-password-for-postmarK");
    assert_eq!(
        setup
            .post("/hooks/postmark", &[("Authorization", &wrong)], &body)
            .0,
        401,
        "wrong password"
    );
    assert_eq!(setup.state(), before);
    // Refusals are logged with the provider and the reason, never with a credential.
    let log = setup.serve.log();
    assert!(
        log.contains("webhook request refused") && log.contains("wrong basic-auth credentials"),
        "{log}"
    );
    assert!(
        !log.contains("postmarK") && !log.contains(POSTMARK_PASSWORD),
        "{log}"
    );

    let auth = basic(POSTMARK_USER, POSTMARK_PASSWORD);
    let (status, reply) = setup.post("/hooks/postmark", &[("Authorization", &auth)], &body);
    assert_eq!(status, 200, "{reply}");
    let b = one_for(&setup.bounces(), &setup.emails[0]).clone();
    assert_eq!(
        (b["action"].as_str(), b["verification"].as_str()),
        (Some("suppressed"), Some("proven"))
    );
    let after = setup.state();
    let (_, reply) = setup.post("/hooks/postmark", &[("Authorization", &auth)], &body);
    assert!(reply.contains("\"duplicate_events\":1"), "{reply}");
    assert_eq!(setup.state(), after, "a replayed ID changed something");

    // Authentic but naming no message of ours: recorded unverified, nobody suppressed.
    let unproven = postmark_bounce(43, &setup.emails[1], "<883953f4@mx.postmark.example>");
    assert_eq!(
        setup
            .post("/hooks/postmark", &[("Authorization", &auth)], &unproven)
            .0,
        200
    );
    assert_eq!(
        one_for(&setup.bounces(), &setup.emails[1])["verification"],
        "unverified"
    );
    assert_eq!(common::states(&setup.scratch, "test-campaign")["failed"], 1);

    // With "Include bounce content" on, the returned message in Content proves it (the
    // bounce's own Message-ID comes first and proves nothing).
    let mut with_content: Value =
        serde_json::from_str(&postmark_bounce(44, &setup.emails[2], "none")).expect("json");
    with_content["Metadata"] = json!({});
    with_content["Content"] = json!(format!(
        "Return-Path: <>\r\nMessage-ID: <bounce-44@mx.postmark.example>\r\nSubject: Undelivered\r\n\r\n\
         ----- Original message -----\r\nFrom: sales@example.com\r\nMessage-ID: {}\r\n\r\nHello\r\n",
        setup.message_id(2)
    ));
    let (status, reply) = setup.post(
        "/hooks/postmark",
        &[("Authorization", &auth)],
        &with_content.to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    let b = one_for(&setup.bounces(), &setup.emails[2]).clone();
    assert_eq!(
        (b["action"].as_str(), b["verification"].as_str()),
        (Some("suppressed"), Some("proven"))
    );
    assert_eq!(common::states(&setup.scratch, "test-campaign")["failed"], 2);
}

// ---------------------------------------------------------------- configuration

#[test]
fn the_test_only_certificate_options_are_refused_outside_tests_and_providers_off_are_404() {
    if !ready() {
        return;
    }
    let (scratch, _smtp, _) = sent_via_smtp(1);
    let path = scratch.path("config/fairsend.toml");
    let base = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        format!("{base}\n[webhooks.ses]\ntopic_arns = [\"{TOPIC}\"]\ntest_ca_file = \"ca.pem\"\n"),
    )
    .expect("write");
    let out = scratch.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("test_ca_file") && err.contains("FAIRSEND_WEBHOOK_TEST_ONLY"),
        "{err}"
    );

    // A secret's variable that is not set refuses the start, naming it.
    std::fs::write(
        &path,
        format!("{base}\n[webhooks.mailgun]\nsigning_key_env = \"TEST_UNSET_KEY\"\n"),
    )
    .expect("write");
    let out = scratch.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains(
            "fairsend.toml: [webhooks.mailgun] signing_key_env: the environment variable \
             TEST_UNSET_KEY is not set"
        ),
        "{}",
        common::stderr(&out)
    );

    // No [webhooks]: every hook is 404.
    std::fs::write(&path, &base).expect("write");
    let serve = ServeProcess::start(&scratch);
    for provider in ["ses", "sendgrid", "mailgun", "postmark"] {
        assert_eq!(
            post(&serve.base, &format!("/hooks/{provider}"), &[], "{}").0,
            404,
            "{provider}"
        );
    }
}
