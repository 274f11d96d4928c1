//! The RFC 7208 conformance suite (../shared/corpora/spf/rfc7208-tests.yml, the openspf.org
//! suite from pyspf): every scenario's zone data goes into fairsend's SPF resolver trait, and
//! every test is evaluated by fairsend's `check_host`. Prints passed/failed counts; every test
//! must pass, and any skipped test is listed with its reason.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fairsend::dns::SpfVerdict;
use fairsend::dns::spf::{Lookup, Request, TempFail, check_host};
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone)]
enum Entry {
    Txt(Vec<Vec<u8>>),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(u16, String),
    Ptr(String),
    Cname(String),
    Timeout,
}

type Zone = HashMap<String, Vec<Entry>>;

/// The suite's zone data as the resolver: unknown names are NXDOMAIN; a name marked TIMEOUT
/// times out for every record type it does not list; CNAMEs are followed.
struct ZoneLookup(Zone);

impl ZoneLookup {
    fn find<T>(&self, name: &str, pick: impl Fn(&Entry) -> Option<T>) -> Result<Vec<T>, TempFail> {
        let mut name = name.trim_end_matches('.').to_ascii_lowercase();
        for _ in 0..8 {
            let Some(entries) = self.0.get(&name) else {
                return Ok(Vec::new());
            };
            let found: Vec<T> = entries.iter().filter_map(&pick).collect();
            if !found.is_empty() {
                return Ok(found);
            }
            if let Some(target) = entries.iter().find_map(|e| match e {
                Entry::Cname(t) => Some(t.clone()),
                _ => None,
            }) {
                name = target.trim_end_matches('.').to_ascii_lowercase();
                continue;
            }
            if entries.iter().any(|e| matches!(e, Entry::Timeout)) {
                return Err(TempFail);
            }
            return Ok(Vec::new());
        }
        Err(TempFail)
    }
}

impl Lookup for ZoneLookup {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, TempFail> {
        self.find(name, |e| match e {
            Entry::Txt(parts) => Some(parts.concat()),
            _ => None,
        })
    }
    async fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, TempFail> {
        self.find(name, |e| match e {
            Entry::A(ip) => Some(*ip),
            _ => None,
        })
    }
    async fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, TempFail> {
        self.find(name, |e| match e {
            Entry::Aaaa(ip) => Some(*ip),
            _ => None,
        })
    }
    async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, TempFail> {
        self.find(name, |e| match e {
            Entry::Mx(p, h) => Some((*p, h.clone())),
            _ => None,
        })
    }
    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, TempFail> {
        self.find(&fairsend::dns::reverse_name(ip), |e| match e {
            Entry::Ptr(h) => Some(h.clone()),
            _ => None,
        })
    }
}

/// YAML's `\xNN` escapes are code points; the suite means raw bytes.
fn bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in s.chars() {
        if (c as u32) < 0x100 {
            out.push(c as u32 as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

fn text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        _ => String::new(),
    }
}

fn zone(data: &Yaml) -> Zone {
    let mut zone = Zone::new();
    let Some(names) = data.as_hash() else {
        return zone;
    };
    for (name, entries) in names {
        let name = text(name).trim_end_matches('.').to_ascii_lowercase();
        let mut spf = Vec::new();
        let mut txt = Vec::new();
        let mut txt_none = false;
        let mut out = Vec::new();
        for entry in entries.as_vec().into_iter().flatten() {
            if let Yaml::String(s) = entry
                && s == "TIMEOUT"
            {
                out.push(Entry::Timeout);
                continue;
            }
            let Some(hash) = entry.as_hash() else {
                continue;
            };
            for (kind, value) in hash {
                let strings = || -> Vec<Vec<u8>> {
                    match value {
                        Yaml::Array(parts) => parts.iter().map(|p| bytes(&text(p))).collect(),
                        other => vec![bytes(&text(other))],
                    }
                };
                match text(kind).as_str() {
                    "SPF" => spf.push(strings()),
                    "TXT" if text(value) == "NONE" => txt_none = true,
                    "TXT" => txt.push(strings()),
                    "A" => out.push(Entry::A(text(value).parse().expect("A"))),
                    "AAAA" => out.push(Entry::Aaaa(text(value).parse().expect("AAAA"))),
                    "MX" => {
                        let v = value.as_vec().expect("MX [pref, host]");
                        out.push(Entry::Mx(v[0].as_i64().unwrap_or(0) as u16, text(&v[1])));
                    }
                    "PTR" => out.push(Entry::Ptr(text(value))),
                    "CNAME" => out.push(Entry::Cname(text(value))),
                    other => panic!("unexpected zone entry type {other}"),
                }
            }
        }
        // RFC 7208 dropped the SPF RR type: like the suite's reference driver, serve SPF data
        // as TXT where no TXT data is given ("TXT: NONE" means none at all).
        let txt = if txt.is_empty() && !txt_none {
            spf
        } else {
            txt
        };
        out.extend(txt.into_iter().map(Entry::Txt));
        zone.insert(name, out);
    }
    zone
}

#[tokio::test]
async fn rfc7208_suite() {
    if !common::require(&[common::Tool::SharedCorpora]) {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora/spf/rfc7208-tests.yml");
    let source = std::fs::read_to_string(&path).expect("suite");
    let docs = YamlLoader::load_from_str(&source).expect("YAML");
    let (mut passed, mut failed, mut skipped) = (0, Vec::new(), Vec::<String>::new());
    for doc in &docs {
        let scenario = text(&doc["description"]);
        let lookup = ZoneLookup(zone(&doc["zonedata"]));
        let Some(tests) = doc["tests"].as_hash() else {
            continue;
        };
        for (name, test) in tests {
            let name = text(name);
            let ip = match text(&test["host"]).parse() {
                Ok(ip) => ip,
                Err(_) => {
                    skipped.push(format!("{scenario}/{name}: host is not an IP address"));
                    continue;
                }
            };
            let expected: Vec<String> = match &test["result"] {
                Yaml::Array(list) => list.iter().map(text).collect(),
                one => vec![text(one)],
            };
            let (helo, mail_from) = (text(&test["helo"]), text(&test["mailfrom"]));
            let request = Request {
                ip,
                helo: &helo,
                mail_from: &mail_from,
                receiver: "",
            };
            let outcome = check_host(&lookup, &request).await;
            let result_ok = expected
                .iter()
                .any(|e| SpfVerdict::parse(e) == Some(outcome.verdict));
            let want_exp = text(&test["explanation"]);
            let exp_ok = want_exp.is_empty()
                || want_exp == "DEFAULT"
                || outcome.explanation.as_deref() == Some(want_exp.as_str());
            if result_ok && exp_ok {
                passed += 1;
            } else {
                failed.push(format!(
                    "{scenario}/{name}: expected {expected:?}{}, got {}{}",
                    if want_exp.is_empty() {
                        String::new()
                    } else {
                        format!(" exp={want_exp:?}")
                    },
                    outcome.verdict.as_str(),
                    outcome
                        .explanation
                        .map(|e| format!(" exp={e:?}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    for s in &skipped {
        println!("SKIPPED {s}");
    }
    println!(
        "RFC 7208 suite: {passed} passed, {} failed, {} skipped ({} scenarios)",
        failed.len(),
        skipped.len(),
        docs.len()
    );
    assert!(failed.is_empty(), "{} RFC 7208 tests failed", failed.len());
}
