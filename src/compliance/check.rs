//! `fairsend check`: every pre-flight rule over config, audience, content and approval, each
//! finding with a stable code and a severity. Errors block sending; warnings do not.

use crate::audience::is_role_account;
use crate::compose::Composer;
use crate::config::{Campaign, ConfigDir, Settings, TransportUrl};
use crate::model::{Finding, Severity};
use crate::store::{RecipientGate, Store, StoreError};

use super::eligibility::{Blocker, ContactFacts, Eligibility, Exclusion, eligibility};

use super::review::approval_gaps;

/// Audience totals after the exclusions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AudienceCounts {
    pub selected: usize,
    pub eligible: usize,
    pub excluded_passive: usize,
    pub excluded_ceased: usize,
    pub excluded_suppressed: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    pub campaign: String,
    pub findings: Vec<Finding>,
    pub audience: AudienceCounts,
    /// Messages rendered and passed through the compliance gate (0 when not rendered).
    pub messages_checked: usize,
    pub variants: usize,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn count(&self, code: &str) -> usize {
        self.findings.iter().filter(|f| f.code == code).count()
    }
}

/// How much `check` does: `send` relies on the per-message gate at send time and skips the
/// full render, and it skips the passes that can only warn (it shows no warnings: an error
/// refuses it, and `check` is where warnings are read) and the template-fields rule (CNT001),
/// which it applies itself just before, with the campaign's own contact files counted
/// (`app::send`); the `check` command renders every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// What may refuse a send: every error rule, no warning-only pass.
    ErrorsBeforeSending,
    /// Every rule, each message rendered and gated.
    EveryMessage,
}

/// Every pre-flight rule over `campaign`, in one streaming pass over its audience.
pub async fn check_campaign(
    config: &ConfigDir,
    campaign: &Campaign,
    composer: &Composer,
    store: &Store,
    depth: Depth,
) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport {
        campaign: campaign.name.clone(),
        ..Default::default()
    };
    let today = chrono::Utc::now().date_naive();
    report.findings = expired_register_findings(config, campaign, today);
    content_findings(
        config,
        campaign,
        composer,
        store,
        depth,
        &mut report.findings,
    )
    .await?;
    let mut pass = AudiencePass {
        config,
        campaign,
        composer,
        today,
        every_message: depth == Depth::EveryMessage,
        counts: AudienceCounts::default(),
        variants: super::review::VariantCounter::default(),
        messages_checked: 0,
        findings: Vec::new(),
    };
    let scope = super::audience::current_scope(store, campaign).await?;
    store
        .for_each_member(&scope, |gate| pass.visit(&gate))
        .await?;
    let AudiencePass {
        counts,
        variants,
        messages_checked,
        findings,
        ..
    } = pass;
    report.findings.extend(findings);
    report.messages_checked = messages_checked;
    report.audience = counts;
    let findings = &mut report.findings;
    findings.extend(exclusion_findings(campaign, &report.audience));
    findings.extend(
        super::audience::segment_findings(store, campaign, report.audience.selected).await?,
    );
    if depth == Depth::EveryMessage {
        // Warnings only (AUD008/AUD009), and a pass over every entry's history.
        retention_findings(config, campaign, store, findings).await?;
    }
    match variants.finish(config, campaign) {
        Err(e) => findings.push(Finding::new(
            "APR004",
            Severity::Error,
            campaign.file.display().to_string(),
            e.to_string(),
        )),
        Ok(variants) => {
            report.variants = variants.len();
            title_findings(config, &variants, findings);
            approval_findings(campaign, store, &variants, findings).await?;
        }
    }
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.code.cmp(b.code)));
    Ok(report)
}

/// AUD001: a purchased register of the campaign whose licence has ended.
fn expired_register_findings(
    config: &ConfigDir,
    campaign: &Campaign,
    today: chrono::NaiveDate,
) -> Vec<Finding> {
    super::eligibility::expired_registers(config, campaign, today)
        .into_iter()
        .map(|(register, valid_until)| {
            let name = &register.name;
            let provider = register.purchased.as_ref().map_or("", |p| p.provider.as_str());
            Finding::new(
                "AUD001",
                Severity::Error,
                format!("{} [registers.{name}] valid_until", config.registers.file.display()),
                format!(
                    "the purchased register '{name}' may be used only until {valid_until}; sending to it is refused. \
                     Remove it from the campaign or renew the licence with {provider}"
                ),
            )
        })
        .collect()
}

/// CNT002: tracking the privacy notice does not declare; CNT001: template fields some
/// recipients lack.
async fn content_findings(
    config: &ConfigDir,
    campaign: &Campaign,
    composer: &Composer,
    store: &Store,
    depth: Depth,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    if (campaign.tracks_clicks() || campaign.tracks_opens())
        && !config.settings.privacy.declares_tracking
    {
        findings.push(Finding::new(
            "CNT002",
            Severity::Error,
            format!("{}: [privacy] declares_tracking", config.settings.file.display()),
            format!(
                "the campaign measures {} ([ab] metric) but the privacy notice does not say so: set declares_tracking = true so every message states it",
                if campaign.tracks_clicks() { "link clicks" } else { "opens" }
            ),
        ));
    }
    if depth == Depth::ErrorsBeforeSending {
        return Ok(());
    }
    if let Err(e) = composer.check_fields(&store.common_fields(&campaign.registers).await?) {
        findings.push(Finding::new(
            "CNT001",
            Severity::Error,
            campaign.file.display().to_string(),
            e.to_string(),
        ));
    }
    Ok(())
}

/// The one streaming pass over the audience: counts, per-contact findings, every message
/// rendered and gated (for `check`), the footer variants. Memory does not grow with it.
struct AudiencePass<'a> {
    config: &'a ConfigDir,
    campaign: &'a Campaign,
    composer: &'a Composer,
    today: chrono::NaiveDate,
    every_message: bool,
    counts: AudienceCounts,
    variants: super::review::VariantCounter,
    messages_checked: usize,
    findings: Vec<Finding>,
}

impl AudiencePass<'_> {
    fn visit(&mut self, gate: &RecipientGate) {
        self.counts.selected += 1;
        self.variants.add(self.config, self.campaign, gate);
        let c = &gate.recipient.contact;
        match eligibility(&ContactFacts::of_member(self.config, gate), self.today) {
            Eligibility::Excluded(exclusion) => return self.count_exclusion(exclusion),
            Eligibility::Eligible => {}
            // In the audience: the campaign waits until the contact is fixed or removed.
            Eligibility::Blocked(blockers) => {
                for blocker in blockers {
                    self.blocker_finding(gate, &blocker);
                }
            }
        }
        self.counts.eligible += 1;
        if is_role_account(&c.email) {
            self.findings.push(Finding::new(
                "AUD003",
                Severity::Warning,
                contact_subject(gate),
                format!(
                    "'{}' is a role account, not an identified person; B2B marketing should reach a named person's work address",
                    c.email.local_part()
                ),
            ));
        }
        for empty in self.composer.empty_fields(&gate.recipient) {
            self.findings
                .push(empty_field_finding(contact_subject(gate), &empty));
        }
        if self.every_message {
            self.check_message(gate);
        }
    }

    fn count_exclusion(&mut self, exclusion: Exclusion) {
        let counter = match exclusion {
            Exclusion::Suppressed(_) | Exclusion::Gone => &mut self.counts.excluded_suppressed,
            Exclusion::Passive => &mut self.counts.excluded_passive,
            Exclusion::Ceased => &mut self.counts.excluded_ceased,
        };
        *counter += 1;
    }

    /// AUD002 per contact; an expired register is reported once, as AUD001.
    fn blocker_finding(&mut self, gate: &RecipientGate, blocker: &Blocker) {
        if let Blocker::ConsumerWithoutConsent { .. } = blocker {
            self.findings.push(Finding::new(
                "AUD002",
                Severity::Error,
                contact_subject(gate),
                format!(
                    "{blocker}. Record consent (legal_basis = consent, consent_at) or remove the contact"
                ),
            ));
        }
    }

    /// MSG001 / MSG002: the message cannot be composed, or fails the compliance gate.
    fn check_message(&mut self, gate: &RecipientGate) {
        self.messages_checked += 1;
        let outcome = self
            .composer
            .compose(&gate.recipient)
            .map_err(|e| ("MSG001", e.to_string()))
            .and_then(|m| {
                super::gate(m, &self.config.settings).map_err(|e| ("MSG002", e.problems.join("; ")))
            });
        if let Err((code, message)) = outcome {
            self.findings.push(Finding::new(
                code,
                Severity::Error,
                format!("contact {}", gate.recipient.contact.email),
                format!("the rendered message cannot be sent: {message}"),
            ));
        }
    }
}

fn contact_subject(gate: &RecipientGate) -> String {
    let c = &gate.recipient.contact;
    format!(
        "contact {} (register {}, {})",
        c.email, gate.recipient.register, c.source
    )
}

/// AUD004–AUD006: how many contacts were left out, and why; AUD007: nobody is left.
fn exclusion_findings(campaign: &Campaign, counts: &AudienceCounts) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (code, n, what) in [
        (
            "AUD004",
            counts.excluded_passive,
            "passive (left their role) contact(s) excluded",
        ),
        (
            "AUD005",
            counts.excluded_ceased,
            "contact(s) of ceased companies excluded",
        ),
        (
            "AUD006",
            counts.excluded_suppressed,
            "suppressed address(es) (opt-out, bounce, complaint, erasure) excluded",
        ),
    ] {
        if n > 0 {
            findings.push(Finding::new(
                code,
                Severity::Info,
                campaign.file.display().to_string(),
                format!("{n} {what}"),
            ));
        }
    }
    if counts.eligible == 0 {
        findings.push(Finding::new(
            "AUD007",
            Severity::Warning,
            campaign.file.display().to_string(),
            "the campaign has no eligible recipient",
        ));
    }
    findings
}

/// LNK001 / LNK002: the unsubscribe links point somewhere a recipient cannot reach (a loopback
/// address) or cannot use for one-click (plain http: RFC 8058 requires https), while the
/// transport delivers to real mailboxes. A loopback or outbox transport is a test: no finding.
pub fn insecure_link_findings(settings: &Settings, transport: &TransportUrl) -> Vec<Finding> {
    if transport.is_loopback() {
        return Vec::new();
    }
    let url = &settings.public_base_url;
    let subject = format!("{}: [links] public_base_url", settings.file.display());
    let mut findings = Vec::new();
    if is_loopback_url(url) {
        findings.push(Finding::new(
            "LNK001",
            Severity::Warning,
            subject.clone(),
            format!(
                "'{url}' is a loopback address, but the transport {transport} delivers to real \
                 mailboxes: every recipient's unsubscribe link would be dead. Give the public \
                 address of `fairsend serve`"
            ),
        ));
    }
    if url.starts_with("http://") {
        findings.push(Finding::new(
            "LNK002",
            Severity::Warning,
            subject,
            format!(
                "'{url}' is plain http, but the transport {transport} delivers to real \
                 mailboxes: one-click unsubscribe (RFC 8058) needs https, and the links would \
                 travel unencrypted"
            ),
        ));
    }
    findings
}

/// Whether a URL's host is `localhost` or a loopback or unspecified IP address.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// REG001: a register's per-locale title lacks a locale some recipients read (they see the
/// default-locale title); REG002: a plain title is shown untranslated to other locales.
fn title_findings(
    config: &ConfigDir,
    variants: &[super::review::FooterVariant],
    findings: &mut Vec<Finding>,
) {
    let mut readers: std::collections::BTreeMap<(&str, crate::model::Locale), usize> =
        std::collections::BTreeMap::new();
    for v in variants {
        *readers
            .entry((v.key.register.as_str(), v.key.locale))
            .or_default() += v.recipients;
    }
    let file = config.registers.file.display();
    for ((name, locale), n) in readers {
        let Some(register) = config.registers.get(name) else {
            continue;
        };
        let subject = format!("{file}: [registers.{name}] title");
        if register.lacks_title_in(locale) {
            findings.push(Finding::new(
                "REG001",
                Severity::Warning,
                subject,
                format!(
                    "has no {locale} translation, and {n} recipient(s) read {locale}: they see \
                     '{}'. Add {locale} = \"…\" to the title",
                    register.title,
                    locale = locale.as_str()
                ),
            ));
        } else if register.titles.is_empty() && locale != register.default_locale {
            findings.push(Finding::new(
                "REG002",
                Severity::Info,
                subject,
                format!(
                    "{n} recipient(s) read {} and see the title as written, '{}'; \
                     title = {{ {} = \"…\", {} = \"…\" }} translates it",
                    locale.as_str(),
                    register.title,
                    register.default_locale.as_str(),
                    locale.as_str()
                ),
            ));
        }
    }
}

/// CNT003: a recipient would see a blank where a field goes ("Hei ,").
fn empty_field_finding(subject: String, empty: &crate::compose::EmptyField) -> Finding {
    let at = match (empty.in_subject, empty.line) {
        (true, _) => format!("the subject ({})", empty.file.display()),
        (false, Some(line)) => format!("{}: line {line}", empty.file.display()),
        (false, None) => empty.file.display().to_string(),
    };
    Finding::new(
        "CNT003",
        Severity::Error,
        subject,
        format!(
            "the field '{field}' is empty, and {at} prints it with no fallback: fill it in, or \
             give a fallback with {{{{ {field} | default(\"…\") }}}}",
            field = empty.field
        ),
    )
}

/// AUD008: eligible contacts whose retention ends within 30 days; AUD009: already past it
/// (`fairsend hygiene purge` deletes them).
async fn retention_findings(
    config: &ConfigDir,
    campaign: &Campaign,
    store: &Store,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    let now = chrono::Utc::now();
    let soon = now + chrono::Duration::days(30);
    let (mut near, mut past) = (0, 0);
    store
        .for_each_entry_with_facts(&campaign.registers, |entry, status, suppressed| {
            if super::eligibility::exclusion(Some(status), suppressed).is_some() {
                return;
            }
            match crate::audience::hygiene::retention_end(
                &entry,
                &config.registers,
                config.settings.privacy.retention_months,
            ) {
                Some(end) if end <= now => past += 1,
                Some(end) if end <= soon => near += 1,
                _ => {}
            }
        })
        .await?;
    let file = campaign.file.display().to_string();
    if near > 0 {
        findings.push(Finding::new(
            "AUD008",
            Severity::Warning,
            file.clone(),
            format!("{near} contact(s) reach the end of their retention period within 30 days"),
        ));
    }
    if past > 0 {
        findings.push(Finding::new("AUD009", Severity::Warning, file, format!("{past} contact(s) are past their retention period; `fairsend hygiene purge` deletes their data")));
    }
    Ok(())
}

async fn approval_findings(
    campaign: &Campaign,
    store: &Store,
    variants: &[super::review::FooterVariant],
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    let file = campaign.file.display().to_string();
    if !campaign.require_approval {
        findings.push(Finding::new(
            "APR000",
            Severity::Info,
            format!("{file}: require_approval"),
            "compliance approval is switched off for this campaign",
        ));
        return Ok(());
    }
    match store.latest_approval(&campaign.name).await? {
        None => findings.push(Finding::new(
            "APR001",
            Severity::Error,
            format!("{file}: require_approval"),
            format!(
                "the campaign's compliance blocks have not been approved: run `fairsend review {file}` \
                 and `fairsend approve {file} --by NAME`"
            ),
        )),
        Some(approval) => {
            for (variant, why) in approval_gaps(&approval, variants) {
                findings.push(Finding::new(
                    "APR002",
                    Severity::Error,
                    format!("footer variant {variant}"),
                    format!("{why} (approved by {}); review and approve again", approval.approved_by),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn loopback_urls() {
        for url in [
            "http://127.0.0.1:8080",
            "https://localhost/x",
            "http://[::1]:80/",
            "http://0.0.0.0",
            "https://app.localhost",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://links.example.com",
            "http://192.0.2.1:8080",
            "https://[2001:db8::1]/",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
