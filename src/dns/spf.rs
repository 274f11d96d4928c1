//! SPF `check_host()` (RFC 7208), fairsend's own: record selection (§4.5), strict syntax
//! (§12 ABNF; an error anywhere is a permerror before anything is evaluated), every mechanism
//! and modifier (§5, §6), macros (§7), the 10-lookup and void-lookup limits (§4.6.4).
//! DNS goes through the [`Lookup`] trait: hickory in production, zone data in tests.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{SpfOutcome, SpfVerdict};

/// A lookup that could not be answered (time-out, SERVFAIL): SPF's temperror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempFail;

/// The DNS queries SPF needs. No data and NXDOMAIN are both `Ok(empty)`.
pub trait Lookup: Sync {
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, TempFail>> + Send;
    fn a(&self, name: &str) -> impl Future<Output = Result<Vec<Ipv4Addr>, TempFail>> + Send;
    fn aaaa(&self, name: &str) -> impl Future<Output = Result<Vec<Ipv6Addr>, TempFail>> + Send;
    fn mx(&self, name: &str) -> impl Future<Output = Result<Vec<(u16, String)>, TempFail>> + Send;
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = Result<Vec<String>, TempFail>> + Send;
}

/// Who is being checked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// `MAIL FROM`; empty for the null sender (then the HELO identity is checked).
    pub mail_from: &'a str,
    /// This host's name, for `%{r}` in explanations.
    pub receiver: &'a str,
}

const ALL_LETTERS: &str = "slodiphvcrt";
const DOMAIN_LETTERS: &str = "slodiphv";
const LOOKUP_LIMIT: usize = 10;
const VOID_LIMIT: usize = 2;
const NAMES_LIMIT: usize = 10;
const MAX_DEPTH: usize = 20;

/// RFC 7208 `check_host()` for the request's identity.
pub async fn check_host<L: Lookup>(lookup: &L, request: &Request<'_>) -> SpfOutcome {
    // §5: an IPv4-mapped IPv6 client is an IPv4 client.
    let ip = match request.ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(request.ip),
        v4 => v4,
    };
    let (local, domain) = if request.mail_from.is_empty() {
        ("postmaster".to_string(), request.helo.to_string())
    } else {
        match request.mail_from.rsplit_once('@') {
            Some((l, d)) => (
                if l.is_empty() {
                    "postmaster".into()
                } else {
                    l.to_string()
                },
                d.to_string(),
            ),
            None => ("postmaster".into(), request.mail_from.to_string()),
        }
    };
    if !valid_domain(&domain) {
        return SpfOutcome {
            verdict: SpfVerdict::None,
            explanation: None,
        };
    }
    let eval = Eval {
        lookup,
        ip,
        sender: format!("{local}@{domain}"),
        local,
        sender_domain: domain.clone(),
        helo: request.helo.to_string(),
        receiver: if request.receiver.is_empty() {
            "unknown".into()
        } else {
            request.receiver.to_string()
        },
        lookups: AtomicUsize::new(0),
        voids: AtomicUsize::new(0),
    };
    let (verdict, explanation) = eval.evaluate(domain, 0).await;
    SpfOutcome {
        verdict,
        explanation: if verdict == SpfVerdict::Fail {
            explanation
        } else {
            None
        },
    }
}

/// §4.3: a multi-label domain whose labels are 1–63 characters (a trailing dot allowed).
fn valid_domain(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.len() <= 63)
        && !d.starts_with('[')
}

struct Eval<'a, L> {
    lookup: &'a L,
    ip: IpAddr,
    sender: String,
    local: String,
    sender_domain: String,
    helo: String,
    receiver: String,
    lookups: AtomicUsize,
    voids: AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn verdict(self) -> SpfVerdict {
        match self {
            Self::Pass => SpfVerdict::Pass,
            Self::Fail => SpfVerdict::Fail,
            Self::SoftFail => SpfVerdict::SoftFail,
            Self::Neutral => SpfVerdict::Neutral,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mechanism {
    All,
    Include(String),
    A(Option<String>, u8, u8),
    Mx(Option<String>, u8, u8),
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

#[derive(Debug, Default)]
struct Record {
    directives: Vec<(Qualifier, Mechanism)>,
    redirect: Option<String>,
    exp: Option<String>,
}

/// A syntax error in a record or macro: permerror.
#[derive(Debug)]
struct Syntax;

/// How an evaluation ended, and where its explanation comes from.
type Outcome = (SpfVerdict, Option<String>);

fn is_spf1(record: &[u8]) -> bool {
    record.len() >= 6
        && record[..6].eq_ignore_ascii_case(b"v=spf1")
        && (record.len() == 6 || record[6] == b' ')
}

impl<L: Lookup> Eval<'_, L> {
    fn evaluate(
        &self,
        domain: String,
        depth: usize,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return (SpfVerdict::PermError, None);
            }
            let records = match self.lookup.txt(&domain).await {
                Ok(r) => r,
                Err(TempFail) => return (SpfVerdict::TempError, None),
            };
            let spf: Vec<&Vec<u8>> = records.iter().filter(|r| is_spf1(r)).collect();
            let record = match spf.as_slice() {
                [] => return (SpfVerdict::None, None),
                [one] => *one,
                _ => return (SpfVerdict::PermError, None),
            };
            let parsed = match std::str::from_utf8(record).ok().map(parse_record) {
                Some(Ok(parsed)) => parsed,
                _ => return (SpfVerdict::PermError, None),
            };
            for (qualifier, mechanism) in &parsed.directives {
                match self.matches(mechanism, &domain, depth).await {
                    Ok(true) => {
                        let verdict = qualifier.verdict();
                        let explanation = if verdict == SpfVerdict::Fail {
                            self.explanation(&parsed, &domain).await
                        } else {
                            None
                        };
                        return (verdict, explanation);
                    }
                    Ok(false) => {}
                    Err(verdict) => return (verdict, None),
                }
            }
            if let Some(spec) = &parsed.redirect {
                if self.count_lookup().is_err() {
                    return (SpfVerdict::PermError, None);
                }
                let target = match self.expand_domain(spec, &domain).await {
                    Ok(Some(t)) => t,
                    Ok(None) | Err(Syntax) => return (SpfVerdict::PermError, None),
                };
                // The redirected record's result and explanation stand for this one.
                return match self.evaluate(target, depth + 1).await {
                    (SpfVerdict::None, _) => (SpfVerdict::PermError, None),
                    outcome => outcome,
                };
            }
            (SpfVerdict::Neutral, None)
        })
    }

    fn count_lookup(&self) -> Result<(), SpfVerdict> {
        if self.lookups.fetch_add(1, Ordering::SeqCst) + 1 > LOOKUP_LIMIT {
            Err(SpfVerdict::PermError)
        } else {
            Ok(())
        }
    }

    /// §4.6.4: more than two lookups that answer nothing is a permerror.
    fn count_void(&self, empty: bool) -> Result<(), SpfVerdict> {
        if empty && self.voids.fetch_add(1, Ordering::SeqCst) + 1 > VOID_LIMIT {
            Err(SpfVerdict::PermError)
        } else {
            Ok(())
        }
    }

    /// The mechanism's target: its domain-spec expanded, or the current domain. `None` when
    /// the expanded name is not a usable domain name (no match).
    async fn target(
        &self,
        spec: &Option<String>,
        domain: &str,
    ) -> Result<Option<String>, SpfVerdict> {
        match spec {
            None => Ok(Some(domain.to_string())),
            Some(spec) => self
                .expand_domain(spec, domain)
                .await
                .map_err(|Syntax| SpfVerdict::PermError),
        }
    }

    async fn matches(
        &self,
        mechanism: &Mechanism,
        domain: &str,
        depth: usize,
    ) -> Result<bool, SpfVerdict> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => {
                Ok(matches!(self.ip, IpAddr::V4(ip) if in_v4(ip, *net, *len)))
            }
            Mechanism::Ip6(net, len) => {
                Ok(matches!(self.ip, IpAddr::V6(ip) if in_v6(ip, *net, *len)))
            }
            Mechanism::A(spec, c4, c6) => {
                self.count_lookup()?;
                let Some(target) = self.target(spec, domain).await? else {
                    return Ok(false);
                };
                self.host_matches(&target, *c4, *c6, true).await
            }
            Mechanism::Mx(spec, c4, c6) => self.mx_matches(spec, domain, *c4, *c6).await,
            Mechanism::Ptr(spec) => self.ptr_matches(spec, domain).await,
            Mechanism::Exists(spec) => self.exists_matches(spec, domain).await,
            Mechanism::Include(spec) => self.include_matches(spec, domain, depth).await,
        }
    }

    /// `mx`: the client is one of the addresses of the domain's mail exchangers.
    async fn mx_matches(
        &self,
        spec: &Option<String>,
        domain: &str,
        c4: u8,
        c6: u8,
    ) -> Result<bool, SpfVerdict> {
        self.count_lookup()?;
        let Some(target) = self.target(spec, domain).await? else {
            return Ok(false);
        };
        let mut hosts = self
            .lookup
            .mx(&target)
            .await
            .map_err(|_| SpfVerdict::TempError)?;
        self.count_void(hosts.is_empty())?;
        if hosts.len() > NAMES_LIMIT {
            return Err(SpfVerdict::PermError);
        }
        hosts.sort();
        for (_, host) in hosts {
            if self.host_matches(&host, c4, c6, false).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `ptr`: a validated name of the client is the domain or under it.
    async fn ptr_matches(&self, spec: &Option<String>, domain: &str) -> Result<bool, SpfVerdict> {
        self.count_lookup()?;
        let Some(target) = self.target(spec, domain).await? else {
            return Ok(false);
        };
        let target = target.trim_end_matches('.').to_ascii_lowercase();
        let validated = self.validated_names().await;
        Ok(validated
            .iter()
            .any(|n| *n == target || n.ends_with(&format!(".{target}"))))
    }

    /// `exists`: the expanded name has an A record.
    async fn exists_matches(&self, spec: &str, domain: &str) -> Result<bool, SpfVerdict> {
        self.count_lookup()?;
        let Some(target) = self.target(&Some(spec.to_string()), domain).await? else {
            return Ok(false);
        };
        // exists always asks for A records, whatever the client's address family.
        let found = self
            .lookup
            .a(&target)
            .await
            .map_err(|_| SpfVerdict::TempError)?;
        self.count_void(found.is_empty())?;
        Ok(!found.is_empty())
    }

    /// `include`: the included record passes for the client.
    async fn include_matches(
        &self,
        spec: &str,
        domain: &str,
        depth: usize,
    ) -> Result<bool, SpfVerdict> {
        self.count_lookup()?;
        let Some(target) = self.target(&Some(spec.to_string()), domain).await? else {
            return Err(SpfVerdict::PermError);
        };
        match self.evaluate(target, depth + 1).await.0 {
            SpfVerdict::Pass => Ok(true),
            SpfVerdict::Fail | SpfVerdict::SoftFail | SpfVerdict::Neutral => Ok(false),
            SpfVerdict::TempError => Err(SpfVerdict::TempError),
            SpfVerdict::PermError | SpfVerdict::None => Err(SpfVerdict::PermError),
        }
    }

    /// Whether `host`'s A (IPv4 client) or AAAA (IPv6 client) records hold the client.
    /// `primary` lookups (the `a` mechanism's own) count towards the void limit.
    async fn host_matches(
        &self,
        host: &str,
        c4: u8,
        c6: u8,
        primary: bool,
    ) -> Result<bool, SpfVerdict> {
        match self.ip {
            IpAddr::V4(ip) => {
                let found = self
                    .lookup
                    .a(host)
                    .await
                    .map_err(|_| SpfVerdict::TempError)?;
                if primary {
                    self.count_void(found.is_empty())?;
                }
                Ok(found.iter().any(|net| in_v4(ip, *net, c4)))
            }
            IpAddr::V6(ip) => {
                let found = self
                    .lookup
                    .aaaa(host)
                    .await
                    .map_err(|_| SpfVerdict::TempError)?;
                if primary {
                    self.count_void(found.is_empty())?;
                }
                Ok(found.iter().any(|net| in_v6(ip, *net, c6)))
            }
        }
    }

    /// §5.5: PTR names of the client whose forward lookup gives the client back. Errors give
    /// no names rather than a temperror.
    async fn validated_names(&self) -> Vec<String> {
        let Ok(names) = self.lookup.ptr(self.ip).await else {
            return Vec::new();
        };
        let mut validated = Vec::new();
        for name in names.into_iter().take(NAMES_LIMIT) {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let ok = match self.ip {
                IpAddr::V4(ip) => self.lookup.a(&name).await.is_ok_and(|a| a.contains(&ip)),
                IpAddr::V6(ip) => self.lookup.aaaa(&name).await.is_ok_and(|a| a.contains(&ip)),
            };
            if ok {
                validated.push(name);
            }
        }
        validated
    }

    /// §6.2: the `exp=` text of this record, expanded; any problem means no explanation.
    async fn explanation(&self, record: &Record, domain: &str) -> Option<String> {
        let spec = record.exp.as_ref()?;
        let target = self.expand_domain(spec, domain).await.ok()??;
        let records = self.lookup.txt(&target).await.ok()?;
        let [text] = records.as_slice() else {
            return None;
        };
        let text = std::str::from_utf8(text).ok()?;
        self.expand_text(text, domain, true).await.ok()
    }

    /// Expands a domain-spec and applies §7.3 truncation; `None` if the result is not a
    /// usable domain name.
    async fn expand_domain(&self, spec: &str, domain: &str) -> Result<Option<String>, Syntax> {
        let expanded = self.expand_text(spec, domain, false).await?;
        let mut name = expanded.trim_end_matches('.').to_string();
        while name.len() > 253 {
            match name.split_once('.') {
                Some((_, rest)) => name = rest.to_string(),
                None => return Ok(None),
            }
        }
        let usable = !name.is_empty() && name.split('.').all(|l| !l.is_empty() && l.len() <= 63);
        Ok(usable.then_some(name))
    }

    /// Expands macros; resolves `%{p}` (which needs DNS) only when the text uses it.
    async fn expand_text(&self, text: &str, domain: &str, exp: bool) -> Result<String, Syntax> {
        let p = if text.contains("%{p") || text.contains("%{P") {
            self.p_macro(domain).await
        } else {
            String::new()
        };
        self.expand(text, domain, exp, &p)
    }

    /// §7.3 `p`: a validated name of the client, preferring the domain itself or a subdomain
    /// of it; "unknown" when there is none.
    async fn p_macro(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let names = self.validated_names().await;
        names
            .iter()
            .find(|n| **n == domain || n.ends_with(&format!(".{domain}")))
            .or(names.first())
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    }

    /// §7: macro expansion. `exp` allows the c, r and t letters.
    fn expand(&self, text: &str, domain: &str, exp: bool, p: &str) -> Result<String, Syntax> {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('_') => out.push(' '),
                Some('-') => out.push_str("%20"),
                Some('{') => {
                    let mut body = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => body.push(ch),
                            None => return Err(Syntax),
                        }
                    }
                    out.push_str(&self.macro_value(&body, domain, exp, p)?);
                }
                _ => return Err(Syntax),
            }
        }
        Ok(out)
    }

    fn macro_value(&self, body: &str, domain: &str, exp: bool, p: &str) -> Result<String, Syntax> {
        let mut chars = body.chars();
        let letter = chars.next().ok_or(Syntax)?;
        let rest: String = chars.collect();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after_digits = &rest[digits.len()..];
        let (reverse, delimiters) = match after_digits.strip_prefix(['r', 'R']) {
            Some(d) => (true, d),
            None => (false, after_digits),
        };
        if !delimiters.chars().all(|c| ".-+,/_=".contains(c)) {
            return Err(Syntax);
        }
        let keep = if digits.is_empty() {
            None
        } else {
            match digits.parse::<usize>() {
                Ok(0) | Err(_) => return Err(Syntax),
                Ok(n) => Some(n),
            }
        };
        let value = match letter.to_ascii_lowercase() {
            's' => self.sender.clone(),
            'l' => self.local.clone(),
            'o' => self.sender_domain.clone(),
            'd' => domain.to_string(),
            'i' => dotted(self.ip),
            'p' => p.to_string(),
            'v' => if self.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
            'h' => self.helo.clone(),
            'c' if exp => self.ip.to_string(),
            'r' if exp => self.receiver.clone(),
            't' if exp => chrono::Utc::now().timestamp().to_string(),
            _ => return Err(Syntax),
        };
        let delimiters = if delimiters.is_empty() {
            "."
        } else {
            delimiters
        };
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
        if reverse {
            parts.reverse();
        }
        if let Some(n) = keep
            && n < parts.len()
        {
            parts = parts.split_off(parts.len() - n);
        }
        let joined = parts.join(".");
        Ok(if letter.is_ascii_uppercase() {
            url_escape(&joined)
        } else {
            joined
        })
    }
}

/// `i` for IPv4 is the dotted quad; for IPv6 the 32 nibbles, dot-separated. The suite's
/// expected output has upper-case nibbles (DNS names are case-insensitive either way).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .map(|n| format!("{n:X}"))
            .collect::<Vec<_>>()
            .join("."),
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Parses a whole record; any syntax error anywhere fails it (§4.6).
fn parse_record(text: &str) -> Result<Record, Syntax> {
    if text.bytes().any(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(Syntax);
    }
    let mut record = Record::default();
    for term in text.split(' ').skip(1).filter(|t| !t.is_empty()) {
        let is_modifier = term
            .find(['=', ':', '/'])
            .is_some_and(|at| term.as_bytes()[at] == b'=');
        if is_modifier {
            let (name, value) = term.split_once('=').ok_or(Syntax)?;
            let mut name_chars = name.chars();
            let valid_name = name_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && name_chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid_name {
                return Err(Syntax);
            }
            check_macro_string(value, ALL_LETTERS)?;
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    if record.redirect.is_some() {
                        return Err(Syntax);
                    }
                    check_domain_spec(value)?;
                    record.redirect = Some(value.to_string());
                }
                "exp" => {
                    if record.exp.is_some() {
                        return Err(Syntax);
                    }
                    check_domain_spec(value)?;
                    record.exp = Some(value.to_string());
                }
                _ => {} // unknown modifiers are ignored (§6)
            }
            continue;
        }
        let (qualifier, rest) = match term.as_bytes()[0] {
            b'+' => (Qualifier::Pass, &term[1..]),
            b'-' => (Qualifier::Fail, &term[1..]),
            b'~' => (Qualifier::SoftFail, &term[1..]),
            b'?' => (Qualifier::Neutral, &term[1..]),
            _ => (Qualifier::Pass, term),
        };
        record.directives.push((qualifier, parse_mechanism(rest)?));
    }
    Ok(record)
}

fn parse_mechanism(text: &str) -> Result<Mechanism, Syntax> {
    let name_end = text.find([':', '/']).unwrap_or(text.len());
    let name = text[..name_end].to_ascii_lowercase();
    let rest = &text[name_end..];
    let arg = rest.strip_prefix(':');
    match name.as_str() {
        "all" if rest.is_empty() => Ok(Mechanism::All),
        "include" => Ok(Mechanism::Include(required_domain(arg)?)),
        "exists" => Ok(Mechanism::Exists(required_domain(arg)?)),
        "ptr" => match arg {
            None if rest.is_empty() => Ok(Mechanism::Ptr(None)),
            Some(_) => Ok(Mechanism::Ptr(Some(required_domain(arg)?))),
            None => Err(Syntax),
        },
        "a" | "mx" => {
            let (spec, c4, c6) = match arg {
                Some(arg) => {
                    let (spec, c4, c6) = split_dual_cidr(arg)?;
                    check_domain_spec(spec)?;
                    (Some(spec.to_string()), c4, c6)
                }
                None => {
                    let (spec, c4, c6) = split_dual_cidr(rest)?;
                    if !spec.is_empty() {
                        return Err(Syntax);
                    }
                    (None, c4, c6)
                }
            };
            Ok(if name == "a" {
                Mechanism::A(spec, c4, c6)
            } else {
                Mechanism::Mx(spec, c4, c6)
            })
        }
        "ip4" => {
            let arg = arg.ok_or(Syntax)?;
            let (addr, len) = match arg.split_once('/') {
                Some((a, l)) => (a, cidr(l, 32)?),
                None => (arg, 32),
            };
            Ok(Mechanism::Ip4(strict_v4(addr)?, len))
        }
        "ip6" => {
            let arg = arg.ok_or(Syntax)?;
            let (addr, len) = match arg.split_once('/') {
                Some((a, l)) => (a, cidr(l, 128)?),
                None => (arg, 128),
            };
            Ok(Mechanism::Ip6(addr.parse().map_err(|_| Syntax)?, len))
        }
        _ => Err(Syntax),
    }
}

fn required_domain(arg: Option<&str>) -> Result<String, Syntax> {
    let spec = arg.ok_or(Syntax)?;
    check_domain_spec(spec)?;
    Ok(spec.to_string())
}

/// A dotted quad with no leading zeros (`dec-octet` of RFC 3986).
fn strict_v4(text: &str) -> Result<Ipv4Addr, Syntax> {
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4
        || octets.iter().any(|o| {
            o.is_empty()
                || o.len() > 3
                || (o.len() > 1 && o.starts_with('0'))
                || !o.bytes().all(|b| b.is_ascii_digit())
        })
    {
        return Err(Syntax);
    }
    text.parse().map_err(|_| Syntax)
}

/// A CIDR length without leading zeros, at most `max`.
fn cidr(text: &str, max: u8) -> Result<u8, Syntax> {
    if text.is_empty()
        || (text.len() > 1 && text.starts_with('0'))
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Syntax);
    }
    let n: u8 = text.parse().map_err(|_| Syntax)?;
    if n > max { Err(Syntax) } else { Ok(n) }
}

/// Splits `domain-spec [ip4-cidr] [//ip6-cidr]` off the end of an `a`/`mx` argument. A slash
/// inside a macro (`%{l/}`) or one not followed by digits is part of the domain-spec.
fn split_dual_cidr(arg: &str) -> Result<(&str, u8, u8), Syntax> {
    let mut spec = arg;
    let mut c6 = 128;
    let mut c4 = 32;
    if let Some(at) = arg.rfind("//") {
        let digits = &arg[at + 2..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            c6 = cidr(digits, 128)?;
            spec = &arg[..at];
        } else if outside_macro(arg, at) {
            return Err(Syntax);
        }
    }
    if let Some(at) = spec.rfind('/')
        && outside_macro(spec, at)
    {
        let digits = &spec[at + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            c4 = cidr(digits, 32)?;
            spec = &spec[..at];
        }
    }
    Ok((spec, c4, c6))
}

fn outside_macro(text: &str, at: usize) -> bool {
    let before = &text[..at];
    before
        .rfind("%{")
        .is_none_or(|open| before[open..].contains('}'))
}

/// `macro-string`: visible characters, with `%` only in `%%`, `%_`, `%-` or `%{…}` forms of
/// known letters. `c`, `r` and `t` belong to explanation text only (§7.1), never to a
/// domain-spec.
fn check_macro_string(text: &str, letters: &str) -> Result<(), Syntax> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('%' | '_' | '-') => {}
            Some('{') => {
                let letter = chars.next().ok_or(Syntax)?;
                if !letters.contains(letter.to_ascii_lowercase()) {
                    return Err(Syntax);
                }
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) if ch.is_ascii_digit() || "rR.-+,/_=".contains(ch) => {}
                        _ => return Err(Syntax),
                    }
                }
            }
            _ => return Err(Syntax),
        }
    }
    Ok(())
}

/// `domain-spec = macro-string domain-end`: ends in a macro, or in `.toplabel[.]` where the
/// top label is not all digits.
fn check_domain_spec(spec: &str) -> Result<(), Syntax> {
    check_macro_string(spec, DOMAIN_LETTERS)?;
    if spec.is_empty() {
        return Err(Syntax);
    }
    if spec.ends_with('}') {
        return Ok(());
    }
    let trimmed = spec.strip_suffix('.').unwrap_or(spec);
    let (_, top) = trimmed.rsplit_once('.').ok_or(Syntax)?;
    let valid_top = !top.is_empty()
        && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && top.chars().any(|c| c.is_ascii_alphabetic())
        && !top.starts_with('-')
        && !top.ends_with('-');
    if valid_top { Ok(()) } else { Err(Syntax) }
}
