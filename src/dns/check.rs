//! `fairsend dns check`: SPF of the envelope (bounce) domain for every sending IP, the DMARC
//! record of the `From:` domain, SPF/DKIM alignment with it, and whether the published DKIM
//! key matches the configured private key. Each finding says how to fix the DNS record.

use std::net::IpAddr;

use mail_auth::AuthenticatedMessage;
use mail_auth::DkimResult;

use super::{DkimSigning, Dns, SpfOutcome, SpfVerdict};
use crate::config::{Campaign, Settings, TransportUrl};
use crate::model::{Finding, Severity};

/// Runs every DNS pre-flight check for a campaign sent through `transport`.
pub async fn preflight(
    settings: &Settings,
    campaign: &Campaign,
    transport: &TransportUrl,
    dns: &Dns,
    dkim: Option<&DkimSigning>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let envelope_domain = settings.bounces.domain.as_str();
    let from_domain = campaign.from.address.domain();
    spf_findings(settings, transport, dns, envelope_domain, &mut findings).await;
    dmarc_findings(dns, from_domain, &mut findings).await;
    alignment_findings(envelope_domain, from_domain, dkim, &mut findings);
    dkim_findings(dns, dkim, &mut findings).await;
    findings
}

async fn spf_findings(
    settings: &Settings,
    transport: &TransportUrl,
    dns: &Dns,
    domain: &str,
    findings: &mut Vec<Finding>,
) {
    let ips = sending_ips(settings, transport, dns, findings).await;
    let mail_from = format!("{}@{domain}", settings.bounces.local_part);
    for ip in ips {
        let outcome = dns.spf(ip, domain, &mail_from).await;
        findings.push(spf_finding(ip, domain, outcome));
    }
}

/// The addresses mail leaves from: configured, else those of the SMTP relay; none (with a
/// finding saying SPF was not checked) when neither is known.
async fn sending_ips(
    settings: &Settings,
    transport: &TransportUrl,
    dns: &Dns,
    findings: &mut Vec<Finding>,
) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = settings.transport.sending_ips.clone();
    if ips.is_empty() {
        match transport {
            _ if transport.is_loopback() => findings.push(Finding::new(
                "DNS041",
                Severity::Warning,
                "[transport] sending_ips",
                format!("not set, and {transport} is on this machine: the relay's public addresses are unknown, so SPF was not checked. Set sending_ips to the addresses your mail leaves from"),
            )),
            TransportUrl::Smtp { host, .. } | TransportUrl::Smtps { host, .. } => match dns.addresses(host).await {
                Ok(found) if !found.is_empty() => {
                    findings.push(Finding::new(
                        "DNS040",
                        Severity::Info,
                        "[transport] sending_ips",
                        format!(
                            "not set: assuming mail leaves from the addresses of {host} ({}). Set sending_ips if your relay sends from other addresses",
                            found.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                    ips = found;
                }
                Ok(_) | Err(_) => findings.push(Finding::new(
                    "DNS041",
                    Severity::Warning,
                    "[transport] sending_ips",
                    format!("not set, and the addresses of {host} could not be found: SPF was not checked"),
                )),
            },
            TransportUrl::Outbox(_) => findings.push(Finding::new(
                "DNS041",
                Severity::Info,
                "[transport] sending_ips",
                "not set and the transport is an outbox directory: SPF was not checked",
            )),
        }
    }
    ips
}

/// What the SPF verdict for one sending address means, and what to do about it.
fn spf_finding(ip: IpAddr, domain: &str, outcome: SpfOutcome) -> Finding {
    let mechanism = match ip {
        IpAddr::V4(_) => format!("ip4:{ip}"),
        IpAddr::V6(_) => format!("ip6:{ip}"),
    };
    let subject = format!("SPF {domain} for {ip}");
    let result = outcome.verdict.as_str();
    let finding = match outcome.verdict {
        SpfVerdict::Pass => Finding::new(
            "DNS001",
            Severity::Info,
            subject,
            format!("{ip} may send for {domain}"),
        ),
        SpfVerdict::Fail => Finding::new(
            "DNS002",
            Severity::Error,
            subject,
            format!(
                "the SPF record of {domain} forbids {ip}{}: receivers will reject or junk the mail. Add `{mechanism}` (or your relay's `include:`) before the `all` term of {domain}'s record, for example `{domain}. TXT \"v=spf1 {mechanism} -all\"`",
                outcome
                    .explanation
                    .map(|e| format!(" (\"{e}\")"))
                    .unwrap_or_default()
            ),
        ),
        SpfVerdict::PermError => Finding::new(
            "DNS002",
            Severity::Error,
            subject,
            format!(
                "the SPF record of {domain} is broken (a syntax error, more than one SPF record, or more than 10 DNS-querying terms): receivers treat it as a failure. Publish one valid record, for example `{domain}. TXT \"v=spf1 {mechanism} -all\"`"
            ),
        ),
        SpfVerdict::SoftFail | SpfVerdict::Neutral => Finding::new(
            "DNS003",
            Severity::Warning,
            subject,
            format!(
                "{domain}'s SPF record does not authorise {ip} ({result}): much of the mail will land in spam. Add `{mechanism}` to it"
            ),
        ),
        SpfVerdict::None => Finding::new(
            "DNS004",
            Severity::Warning,
            subject,
            format!(
                "{domain} publishes no SPF record. Publish `{domain}. TXT \"v=spf1 {mechanism} -all\"`"
            ),
        ),
        SpfVerdict::TempError => Finding::new(
            "DNS005",
            Severity::Warning,
            subject,
            "the DNS lookups for SPF failed (time-out or server failure); run the check again"
                .to_string(),
        ),
    };
    finding.with_result(result)
}

async fn dmarc_findings(dns: &Dns, from_domain: &str, findings: &mut Vec<Finding>) {
    let mut looked_up = vec![from_domain.to_string()];
    let org = organizational_domain(from_domain);
    if org != from_domain {
        looked_up.push(org.to_string());
    }
    for domain in &looked_up {
        let name = format!("_dmarc.{domain}");
        match dns.txt(&name).await {
            Err(e) => {
                findings.push(Finding::new(
                    "DNS012",
                    Severity::Warning,
                    name,
                    format!("{e}; run the check again"),
                ));
                return;
            }
            Ok(records) => {
                let dmarc: Vec<&String> = records
                    .iter()
                    .filter(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
                    .collect();
                if let Some(record) = dmarc.first() {
                    let policy = tag(record, "p").unwrap_or_else(|| "(missing)".into());
                    let (severity, advice) = match policy.as_str() {
                        "none" => (
                            Severity::Info,
                            " — monitoring only; move to p=quarantine once reports look clean",
                        ),
                        "quarantine" | "reject" => (Severity::Info, ""),
                        _ => (
                            Severity::Warning,
                            " — the p= tag is missing or invalid, so receivers ignore the record",
                        ),
                    };
                    findings.push(Finding::new(
                        "DNS010",
                        severity,
                        name,
                        format!("DMARC policy p={policy}{advice}"),
                    ));
                    return;
                }
            }
        }
    }
    findings.push(Finding::new(
        "DNS011",
        Severity::Warning,
        format!("_dmarc.{from_domain}"),
        format!(
            "no DMARC record for {from_domain}: Gmail and Yahoo require one from bulk senders. Publish `_dmarc.{org}. TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{org}\"`"
        ),
    ));
}

fn alignment_findings(
    envelope: &str,
    from: &str,
    dkim: Option<&DkimSigning>,
    findings: &mut Vec<Finding>,
) {
    let from_org = organizational_domain(from);
    let spf_aligned = organizational_domain(envelope) == from_org;
    let dkim_aligned = dkim.is_some_and(|d| organizational_domain(&d.domain) == from_org);
    let subject = format!("DMARC alignment with From: {from}");
    if spf_aligned || dkim_aligned {
        let how = match (spf_aligned, dkim_aligned) {
            (true, true) => "SPF (envelope domain) and DKIM (d=)",
            (true, false) => "SPF (envelope domain)",
            _ => "DKIM (d=)",
        };
        findings.push(Finding::new(
            "DNS021",
            Severity::Info,
            subject,
            format!("aligned through {how}"),
        ));
    } else {
        findings.push(Finding::new(
            "DNS020",
            Severity::Warning,
            subject,
            format!(
                "neither the envelope domain {envelope} nor a DKIM signing domain is in {from_org}: DMARC will fail. Use a bounce domain under {from_org} or sign with d={from_org}"
            ),
        ));
    }
}

async fn dkim_findings(dns: &Dns, dkim: Option<&DkimSigning>, findings: &mut Vec<Finding>) {
    let Some(dkim) = dkim else {
        findings.push(Finding::new(
            "DNS033",
            Severity::Warning,
            "[dkim]",
            "DKIM signing is not configured: Gmail and Yahoo require DKIM from bulk senders. Add a [dkim] section to fairsend.toml",
        ));
        return;
    };
    let name = format!("{}._domainkey.{}", dkim.selector, dkim.domain);
    let publish = format!("Publish `{name}. TXT \"{}\"`", dkim.public_key_record());
    let published = match dns.txt(&name).await {
        Err(e) => {
            findings.push(Finding::new(
                "DNS032",
                Severity::Warning,
                name,
                format!("{e}; run the check again"),
            ));
            return;
        }
        Ok(records) => records,
    };
    if published.is_empty() {
        findings.push(Finding::new(
            "DNS031",
            Severity::Error,
            name,
            format!("no DKIM key is published. {publish}"),
        ));
        return;
    }
    // Sign a probe message and verify it against what is published.
    let probe = format!(
        "From: probe@{d}\\r\\nTo: probe@{d}\\r\\nSubject: fairsend DKIM probe\\r\\nDate: Thu, 01 Jan 2026 00:00:00 +0000\\r\\nMessage-ID: <probe@{d}>\\r\\n\\r\\nprobe\\r\\n",
        d = dkim.domain
    );
    let signed = match dkim.signed(probe.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            findings.push(Finding::new("DNS031", Severity::Error, name, e.to_string()));
            return;
        }
    };
    let verified = match AuthenticatedMessage::parse(&signed) {
        Some(message) => dns
            .authenticator()
            .verify_dkim(&message)
            .await
            .iter()
            .any(|o| matches!(o.result(), DkimResult::Pass)),
        None => false,
    };
    if verified {
        findings.push(Finding::new(
            "DNS030",
            Severity::Info,
            name,
            "the published key matches the configured private key",
        ));
    } else {
        findings.push(Finding::new(
            "DNS031",
            Severity::Error,
            name,
            format!("the published key does not verify signatures made with the configured private key. {publish}"),
        ));
    }
}

/// The value of `name=` in a `tag=value; …` record.
fn tag(record: &str, name: &str) -> Option<String> {
    record.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_ascii_lowercase())
    })
}

/// The organizational domain for relaxed alignment: the registrable domain, approximated as
/// the last two labels, or three under common two-level public suffixes (co.uk, com.au …).
pub fn organizational_domain(domain: &str) -> &str {
    let domain = domain.trim_end_matches('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let take = match labels.as_slice() {
        [.., second, top]
            if top.len() == 2
                && matches!(
                    *second,
                    "co" | "com" | "org" | "net" | "ac" | "gov" | "edu" | "ne" | "or"
                ) =>
        {
            3
        }
        _ => 2,
    };
    if labels.len() <= take {
        return domain;
    }
    let skip: usize = labels[..labels.len() - take]
        .iter()
        .map(|l| l.len() + 1)
        .sum();
    &domain[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizational_domains() {
        assert_eq!(organizational_domain("bounces.example.com"), "example.com");
        assert_eq!(organizational_domain("example.com"), "example.com");
        assert_eq!(
            organizational_domain("mail.shop.example.co.uk"),
            "example.co.uk"
        );
        assert_eq!(organizational_domain("a.b.example.fi"), "example.fi");
    }

    #[test]
    fn tags() {
        assert_eq!(
            tag("v=DMARC1; p=Reject; rua=mailto:x@y", "p").as_deref(),
            Some("reject")
        );
        assert_eq!(tag("v=DMARC1", "p"), None);
    }
}
