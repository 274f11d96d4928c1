//! `fairsend audience CAMPAIGN`: whom the campaign would be sent to right now, and who of its
//! registers is left out by which rule, with counts per rule. Compliance decides first
//! (`compliance::eligibility`: suppressed, passive, ceased, expired register, consumer
//! address without consent), then the segment (`where`, `not_sent_within`,
//! `engaged_within`, `exclude_campaigns`); each contact is counted once, under the first
//! rule that leaves it out. It reads the database as it is (a campaign's `[[import]]` files
//! are applied by `check` and `send`, not here) and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::AppError;
use crate::compliance::{
    Blocker, ContactFacts, Eligibility, Exclusion, current_scope, eligibility, exclusion,
};
use crate::config::{Campaign, ConfigDir};
use crate::model::Segment;
use crate::store::{AudienceScope, RecipientGate, Store};

/// A rule that leaves a contact out of a campaign, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The contact was erased while this was computed.
    Gone,
    Suppressed,
    Passive,
    Ceased,
    /// A purchased register past its `valid_until`: blocks the whole campaign.
    RegisterExpired,
    /// A consumer address without consent: blocks the whole campaign.
    ConsumerWithoutConsent,
    /// The segment's `where` expression.
    Where,
    NotSentWithin,
    EngagedWithin,
    ExcludeCampaigns,
}

impl Rule {
    /// Whether the contact, though in the segment, stops the campaign until it is fixed.
    pub fn blocks_sending(self) -> bool {
        matches!(self, Self::RegisterExpired | Self::ConsumerWithoutConsent)
    }

    /// Whether the segment (not compliance) left the contact out.
    pub fn is_segment(self) -> bool {
        self >= Self::Where
    }
}

/// A contact the campaign would be sent to, and the register it is sent through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub email: String,
    pub register: String,
}

/// A contact left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Left {
    pub email: String,
    pub register: String,
    pub rule: Rule,
    /// The suppression reason, the expired register's date, the consumer domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How many contacts one rule (and, for suppression, one reason) left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    pub rule: Rule,
    /// The suppression reason, for `suppressed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub count: usize,
}

/// The campaign's audience as of `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AudienceView {
    pub campaign: String,
    pub registers: Vec<String>,
    /// Unix ms: when the segment was evaluated.
    pub as_of: i64,
    /// Contacts in the campaign's registers, each once.
    pub contacts: usize,
    pub selected: Vec<Member>,
    pub excluded: Vec<Left>,
    /// Per rule (and suppression reason), in rule order.
    pub counts: Vec<RuleCount>,
}

impl AudienceView {
    /// How many contacts `rule` left out (all reasons).
    pub fn count(&self, rule: Rule) -> usize {
        self.counts
            .iter()
            .filter(|c| c.rule == rule)
            .map(|c| c.count)
            .sum()
    }
}

/// The audience of the campaign given by its file or its name.
pub async fn audience(
    config: &ConfigDir,
    store: &Store,
    campaign: &str,
) -> Result<AudienceView, AppError> {
    let campaign = campaign_of(config, campaign)?;
    audience_of(config, store, &campaign).await
}

/// A campaign named on the command line by its file or by its `name =`.
fn campaign_of(config: &ConfigDir, arg: &str) -> Result<Campaign, AppError> {
    let path = Path::new(arg);
    if arg.ends_with(".toml") || path.is_file() {
        return Ok(config.load_campaign(path)?);
    }
    super::status::campaign_named(config, arg).ok_or_else(|| {
        AppError::BadInput(format!(
            "no campaign file in {} has the name '{arg}' (give the campaign's file, or its `name =`)",
            config.dir.join("campaigns").display()
        ))
    })
}

/// Who of `campaign`'s registers it would be sent to now, and who not, and why.
pub async fn audience_of(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
) -> Result<AudienceView, AppError> {
    let today = chrono::Utc::now().date_naive();
    let scope = current_scope(store, campaign).await?;
    let mut selected = Vec::new();
    let mut excluded = Vec::new();
    let mut in_segment = BTreeSet::new();
    store
        .for_each_member(&scope, |gate| {
            in_segment.insert(gate.recipient.contact.email.as_str().to_string());
            match eligibility(&ContactFacts::of_member(config, &gate), today) {
                Eligibility::Eligible => selected.push(Member {
                    email: gate.recipient.contact.email.as_str().to_string(),
                    register: gate.recipient.register.clone(),
                }),
                Eligibility::Excluded(why) => excluded.push(excluded_by(&gate, why)),
                Eligibility::Blocked(blockers) => excluded.push(blocked_by(&gate, &blockers)),
            }
        })
        .await?;
    let parts = segment_parts(store, &scope).await?;
    let mut contacts = 0;
    store
        .for_each_member(&AudienceScope::everyone(scope.registers), |gate| {
            contacts += 1;
            if in_segment.contains(gate.recipient.contact.email.as_str()) {
                return;
            }
            excluded.push(match exclusion(Some(gate.status), gate.suppressed) {
                Some(why) => excluded_by(&gate, why),
                None => outside_segment(&gate, &parts),
            });
        })
        .await?;
    excluded.sort_by(|a, b| (a.rule, &a.email).cmp(&(b.rule, &b.email)));
    Ok(AudienceView {
        campaign: campaign.name.clone(),
        registers: campaign.registers.clone(),
        as_of: scope.now,
        contacts,
        counts: count_rules(&excluded),
        selected,
        excluded,
    })
}

fn left(gate: &RecipientGate, rule: Rule, detail: Option<String>) -> Left {
    Left {
        email: gate.recipient.contact.email.as_str().to_string(),
        register: gate.recipient.register.clone(),
        rule,
        detail,
    }
}

fn excluded_by(gate: &RecipientGate, why: Exclusion) -> Left {
    match why {
        Exclusion::Gone => left(gate, Rule::Gone, None),
        Exclusion::Suppressed(reason) => {
            left(gate, Rule::Suppressed, Some(reason.as_str().to_string()))
        }
        Exclusion::Passive => left(gate, Rule::Passive, None),
        Exclusion::Ceased => left(gate, Rule::Ceased, None),
    }
}

/// A blocked contact is shown under its first blocker (`check` lists them all).
fn blocked_by(gate: &RecipientGate, blockers: &[Blocker]) -> Left {
    match blockers.first() {
        Some(Blocker::RegisterExpired { valid_until, .. }) => left(
            gate,
            Rule::RegisterExpired,
            Some(format!("valid until {valid_until}")),
        ),
        Some(Blocker::ConsumerWithoutConsent { domain, .. }) => {
            left(gate, Rule::ConsumerWithoutConsent, Some(domain.clone()))
        }
        None => left(gate, Rule::ConsumerWithoutConsent, None),
    }
}

/// Each part of the segment on its own, with the addresses it alone selects, in rule order.
async fn segment_parts(
    store: &Store,
    scope: &AudienceScope<'_>,
) -> Result<Vec<(Rule, BTreeSet<String>)>, AppError> {
    let segment = scope.segment;
    let only = Segment::default;
    let mut parts = Vec::new();
    if let Some(filter) = &segment.filter {
        let part = Segment {
            filter: Some(filter.clone()),
            ..only()
        };
        parts.push((Rule::Where, part));
    }
    if let Some(span) = segment.not_sent_within {
        let part = Segment {
            not_sent_within: Some(span),
            ..only()
        };
        parts.push((Rule::NotSentWithin, part));
    }
    if let Some(span) = segment.engaged_within {
        let part = Segment {
            engaged_within: Some(span),
            ..only()
        };
        parts.push((Rule::EngagedWithin, part));
    }
    if !segment.exclude_campaigns.is_empty() {
        let part = Segment {
            exclude_campaigns: segment.exclude_campaigns.clone(),
            ..only()
        };
        parts.push((Rule::ExcludeCampaigns, part));
    }
    let mut selected = Vec::with_capacity(parts.len());
    for (rule, part) in &parts {
        selected.push((
            *rule,
            store.segment_emails(&scope.with_segment(part)).await?,
        ));
    }
    Ok(selected)
}

/// The first part of the segment that does not select the contact. (If every part selects
/// it, the data changed between the queries: it is shown under `where`.)
fn outside_segment(gate: &RecipientGate, parts: &[(Rule, BTreeSet<String>)]) -> Left {
    let email = gate.recipient.contact.email.as_str();
    let rule = parts
        .iter()
        .find(|(_, selects)| !selects.contains(email))
        .map_or(Rule::Where, |(rule, _)| *rule);
    left(gate, rule, None)
}

fn count_rules(excluded: &[Left]) -> Vec<RuleCount> {
    let mut counts: BTreeMap<(Rule, Option<&str>), usize> = BTreeMap::new();
    for l in excluded {
        let reason = match l.rule {
            Rule::Suppressed => l.detail.as_deref(),
            _ => None,
        };
        *counts.entry((l.rule, reason)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((rule, reason), count)| RuleCount {
            rule,
            reason: reason.map(str::to_string),
            count,
        })
        .collect()
}
