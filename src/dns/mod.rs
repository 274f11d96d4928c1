//! Deliverability pre-flight: SPF evaluation (RFC 7208), DMARC record checks (RFC 7489),
//! DKIM signing (RFC 6376) and the check that the published DKIM key matches ours.
//!
//! SPF and DKIM are mail-auth's (stalwartlabs): a well-kept implementation that passes the
//! RFC 7208 suite (tests/spf_suite.rs), on hickory-resolver. [`Dns`] is the one place that
//! chooses the resolver — the system's, or a given server (`--resolver`, `[dns] resolver`) —
//! which is also how tests supply zone data. This module looks things up and signs; it
//! changes nothing.

pub mod check;
pub mod dkim;
pub mod spf;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::rr::{RData, RecordType};

pub use check::preflight;
pub use dkim::{DkimError, DkimSigning};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
}

/// The SPF results of RFC 7208 §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfVerdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    PermError,
    TempError,
}

impl SpfVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::SoftFail => "softfail",
            Self::Neutral => "neutral",
            Self::None => "none",
            Self::PermError => "permerror",
            Self::TempError => "temperror",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pass,
            Self::Fail,
            Self::SoftFail,
            Self::Neutral,
            Self::None,
            Self::PermError,
            Self::TempError,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// An SPF evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    pub verdict: SpfVerdict,
    /// The `exp=` explanation, when the domain publishes one and the result is `fail`.
    pub explanation: Option<String>,
}

/// The resolver every lookup goes through.
pub struct Dns {
    auth: MessageAuthenticator,
}

impl Dns {
    /// The system's resolver (`/etc/resolv.conf`), or the server at `server` when given.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, DnsError> {
        let auth = match server {
            None => MessageAuthenticator::new_system_conf()
                .map_err(|e| DnsError::Setup(e.to_string()))?,
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                let mut options = ResolverOpts::default();
                options.timeout = timeout;
                options.attempts = 1;
                options.cache_size = 0;
                options.ndots = 0;
                MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), options)
                    .map_err(|e| DnsError::Setup(e.to_string()))?
            }
        };
        Ok(Self { auth })
    }

    /// RFC 7208 `check_host` for a client `ip` that says `helo` and `MAIL FROM:<mail_from>`
    /// (an empty `mail_from` means the null sender: the HELO identity is checked).
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfOutcome {
        spf::check_host(
            self,
            &spf::Request {
                ip,
                helo,
                mail_from,
                receiver: "",
            },
        )
        .await
    }

    /// The records of one type at `name`: empty for NXDOMAIN, no data or a name that cannot
    /// be a DNS name; `TempFail` when the server did not answer.
    async fn records(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, spf::TempFail> {
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match self.auth.resolver().lookup(fqdn.as_str(), kind).await {
            Ok(lookup) => Ok(lookup.answers().iter().map(|r| r.data.clone()).collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) if mail_auth::hickory_resolver::proto::rr::Name::from_ascii(&fqdn).is_err() => {
                tracing::debug!(name, error = %e, "not a DNS name");
                Ok(Vec::new())
            }
            Err(_) => Err(spf::TempFail),
        }
    }

    /// The TXT records at `name`, each joined from its strings; `Ok(empty)` when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupFailure> {
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match self.auth.resolver().txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(LookupFailure(e.to_string())),
        }
    }

    pub(crate) fn authenticator(&self) -> &MessageAuthenticator {
        &self.auth
    }

    /// The addresses of `host` (A and AAAA); an IP literal is itself.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        match self.auth.resolver().lookup_ip(fqdn).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(LookupFailure(e.to_string())),
        }
    }
}

/// A lookup that could not be answered (time-out, SERVFAIL …): a `temperror`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS lookup failed: {0}")]
pub struct LookupFailure(pub String);

impl spf::Lookup for Dns {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, spf::TempFail> {
        Ok(self
            .records(name, RecordType::TXT)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .flat_map(|part| part.iter().copied())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn a(&self, name: &str) -> Result<Vec<std::net::Ipv4Addr>, spf::TempFail> {
        Ok(self
            .records(name, RecordType::A)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    async fn aaaa(&self, name: &str) -> Result<Vec<std::net::Ipv6Addr>, spf::TempFail> {
        Ok(self
            .records(name, RecordType::AAAA)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, spf::TempFail> {
        Ok(self
            .records(name, RecordType::MX)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect())
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, spf::TempFail> {
        Ok(self
            .records(&reverse_name(ip), RecordType::PTR)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::PTR(ptr) => Some(ptr.0.to_ascii()),
                _ => None,
            })
            .collect())
    }
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut nibbles = Vec::new();
            for byte in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", byte & 0xf));
                nibbles.push(format!("{:x}", byte >> 4));
            }
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}
