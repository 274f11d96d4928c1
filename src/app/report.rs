//! The campaign results report (`fairsend report`, `/admin/campaigns/NAME`): the counts of
//! `store` turned into results per campaign, per A/B variant and per register, with the rates
//! mailbox providers judge a sender by and a warning where a published limit is crossed.
//! Only verified bounces and complaints count (proven by their VERP token, or confirmed by an
//! operator): a forged bounce must not move a sender's figures.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::store::{GroupCount, SentCount, Store, StoreError};

/// Gmail's and Yahoo's bulk-sender rules (2024): keep spam complaints below 0.3 %…
pub const COMPLAINT_LIMIT: f64 = 0.003;
/// …and aim below 0.1 %.
pub const COMPLAINT_AIM: f64 = 0.001;
/// No mailbox provider publishes an opt-out limit; above this fairsend warns, because
/// recipients who want out and find no easy way become complaints.
pub const OPTOUT_ALERT: f64 = 0.01;
/// Clicks and opens this soon after sending are link scanners and image proxies, not people
/// (the same rule the A/B test uses).
pub const MACHINE_AFTER_DELIVERY_MS: i64 = crate::abtest::MACHINE_AFTER_DELIVERY_MS;
/// What the report says about what it counts, in every output.
pub const COUNTING_NOTE: &str = "Only verified bounces and complaints count (proven by the \
     message's own VERP token or confirmed by an operator). Opens are unreliable: image proxies \
     (Gmail, Apple Mail Privacy Protection) load every image, and many readers load none. \
     Clicks and opens within 5 s of sending are link scanners and are not counted.";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no campaign named '{0}' has been sent from this database")]
    UnknownCampaign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Messages of one class and reason that bounced.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BounceCount {
    pub class: String,
    pub reason: String,
    pub count: i64,
}

/// Shares of `sent`, 0.0–1.0 (0 when nothing was sent).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    pub delivered: f64,
    pub hard_bounce: f64,
    pub soft_bounce: f64,
    pub complaint: f64,
    pub optout: f64,
    pub click: f64,
    pub reply: f64,
    pub open: f64,
}

/// The results of one group of messages (the whole campaign, a variant or a register).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Results {
    /// Accepted by the receiving server.
    pub sent: i64,
    /// Sent at least `delivered_after` ago and no verified bounce since.
    pub delivered: i64,
    /// Refused by the receiving server during the SMTP transaction.
    pub rejected: i64,
    /// Messages with a verified hard (permanent) bounce.
    pub hard_bounces: i64,
    /// Messages with a verified soft (temporary) bounce.
    pub soft_bounces: i64,
    pub bounces_by_reason: Vec<BounceCount>,
    pub complaints: i64,
    pub optouts: i64,
    pub optouts_by_source: BTreeMap<String, i64>,
    /// Messages with at least one click (any link).
    pub clicks: i64,
    /// Messages with a click on the link, by the link's index.
    pub clicks_by_link: BTreeMap<i64, i64>,
    pub replies: i64,
    /// Unreliable: see [`COUNTING_NOTE`].
    pub opens: i64,
    pub rates: Rates,
}

/// The results of one A/B variant or one register.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Breakdown {
    pub name: String,
    pub results: Results,
}

/// A tracked link with its clicks over the whole campaign.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkResult {
    pub index: i64,
    pub url: String,
    pub unique_clicks: i64,
    pub click_rate: f64,
}

/// Sends and verified bounces per bucket of time, every bucket from the first event to the last.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Timeline {
    /// `minute`, `hour`, `day` or `week`.
    pub bucket: &'static str,
    pub points: Vec<TimePoint>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimePoint {
    /// Start of the bucket, Unix milliseconds.
    pub start: i64,
    pub sends: i64,
    pub bounces: i64,
}

/// A rate that crossed a limit, in the group where it did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Warning {
    /// `campaign`, `variant A`, `register customers`…
    pub scope: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CampaignReport {
    pub campaign: String,
    pub generated_at: i64,
    /// `[report] delivered_after`, in hours.
    pub delivered_after_hours: f64,
    pub note: &'static str,
    pub total: Results,
    pub variants: Vec<Breakdown>,
    pub registers: Vec<Breakdown>,
    pub links: Vec<LinkResult>,
    pub timeline: Timeline,
    pub warnings: Vec<Warning>,
}

/// The counts of one measure, by (variant, register, key).
struct Measures {
    sent: Vec<SentCount>,
    bounces: Vec<GroupCount>,
    complaints: Vec<GroupCount>,
    optouts: Vec<GroupCount>,
    clicks: Vec<GroupCount>,
    opens: Vec<GroupCount>,
    replies: Vec<GroupCount>,
}

/// The results report of `campaign` as of `now` (Unix milliseconds).
pub async fn campaign_report(
    store: &Store,
    campaign: &str,
    delivered_after: Duration,
    now: i64,
) -> Result<CampaignReport, ReportError> {
    let id = store
        .find_campaign_id(campaign)
        .await?
        .ok_or_else(|| ReportError::UnknownCampaign(campaign.to_string()))?;
    let delivered_after_ms = i64::try_from(delivered_after.as_millis()).unwrap_or(i64::MAX);
    let m = Measures {
        sent: store
            .report_sent(id, now.saturating_sub(delivered_after_ms))
            .await?,
        bounces: store.report_bounces(id).await?,
        complaints: store.report_complaints(id).await?,
        optouts: store.report_optouts(id).await?,
        clicks: store
            .report_events(id, "click", MACHINE_AFTER_DELIVERY_MS)
            .await?,
        opens: store
            .report_events(id, "open", MACHINE_AFTER_DELIVERY_MS)
            .await?,
        replies: store.report_replies(id).await?,
    };
    let total = results(&m, |_, _| true);
    let variants = breakdowns(&m, |v, _| variant_name(v));
    let registers = breakdowns(&m, |_, r| {
        r.map_or_else(|| "(erased)".to_string(), str::to_string)
    });
    let links = store
        .report_links(id)
        .await?
        .into_iter()
        .map(|(index, url)| {
            let unique_clicks = total.clicks_by_link.get(&index).copied().unwrap_or(0);
            LinkResult {
                index,
                url,
                unique_clicks,
                click_rate: share(unique_clicks, total.sent),
            }
        })
        .collect();
    let timeline = timeline(store, id).await?;
    let mut crossed = warnings("campaign", &total);
    for b in &variants {
        crossed.extend(warnings(&format!("variant {}", b.name), &b.results));
    }
    for b in &registers {
        crossed.extend(warnings(&format!("register {}", b.name), &b.results));
    }
    Ok(CampaignReport {
        campaign: campaign.to_string(),
        generated_at: now,
        delivered_after_hours: delivered_after.as_secs_f64() / 3600.0,
        note: COUNTING_NOTE,
        total,
        variants,
        registers,
        links,
        timeline,
        warnings: crossed,
    })
}

/// A/B variants are named A, B, C… as the subjects are listed; rows outside a test have none.
pub fn variant_name(variant: Option<i64>) -> String {
    match variant
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| *v < 26)
    {
        Some(v) => char::from(b'A' + v).to_string(),
        None => "none".to_string(),
    }
}

/// One breakdown per distinct name that `name_of` gives the groups, in name order.
fn breakdowns(
    m: &Measures,
    name_of: impl Fn(Option<i64>, Option<&str>) -> String,
) -> Vec<Breakdown> {
    let mut names: Vec<String> = m
        .sent
        .iter()
        .map(|s| name_of(s.variant, Some(&s.register)))
        .chain(
            [
                &m.bounces,
                &m.complaints,
                &m.optouts,
                &m.clicks,
                &m.opens,
                &m.replies,
            ]
            .into_iter()
            .flatten()
            .map(|g| name_of(g.variant, g.register.as_deref())),
        )
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| Breakdown {
            results: results(m, |v, r| name_of(v, r) == name),
            name,
        })
        .collect()
}

/// The results of the groups that `keep` selects.
fn results(m: &Measures, keep: impl Fn(Option<i64>, Option<&str>) -> bool) -> Results {
    let groups = |counts: &[GroupCount]| -> Vec<(String, i64)> {
        counts
            .iter()
            .filter(|g| keep(g.variant, g.register.as_deref()))
            .map(|g| (g.key.clone(), g.count))
            .collect()
    };
    let sum = |counts: &[GroupCount]| groups(counts).iter().map(|(_, n)| n).sum::<i64>();
    let mut r = Results::default();
    for s in m.sent.iter().filter(|s| keep(s.variant, Some(&s.register))) {
        r.sent += s.sent;
        r.delivered += s.delivered;
        r.rejected += s.rejected;
    }
    for (key, n) in groups(&m.bounces) {
        let (class, reason) = key.split_once(':').unwrap_or(("", &key));
        match class {
            "hard" => r.hard_bounces += n,
            _ => r.soft_bounces += n,
        }
        add_bounce(&mut r.bounces_by_reason, class, reason, n);
    }
    r.complaints = sum(&m.complaints);
    for (source, n) in groups(&m.optouts) {
        *r.optouts_by_source.entry(source).or_default() += n;
        r.optouts += n;
    }
    for (key, n) in groups(&m.clicks) {
        match key.parse::<i64>() {
            Ok(link) => *r.clicks_by_link.entry(link).or_default() += n,
            Err(_) => r.clicks += n,
        }
    }
    r.opens = groups(&m.opens)
        .iter()
        .filter(|(k, _)| k == "*")
        .map(|(_, n)| n)
        .sum();
    r.replies = sum(&m.replies);
    r.rates = rates(&r);
    r
}

fn add_bounce(into: &mut Vec<BounceCount>, class: &str, reason: &str, n: i64) {
    match into
        .iter_mut()
        .find(|b| b.class == class && b.reason == reason)
    {
        Some(b) => b.count += n,
        None => into.push(BounceCount {
            class: class.to_string(),
            reason: reason.to_string(),
            count: n,
        }),
    }
    into.sort_by(|a, b| (&a.class, &a.reason).cmp(&(&b.class, &b.reason)));
}

fn share(n: i64, of: i64) -> f64 {
    if of > 0 { n as f64 / of as f64 } else { 0.0 }
}

fn rates(r: &Results) -> Rates {
    Rates {
        delivered: share(r.delivered, r.sent),
        hard_bounce: share(r.hard_bounces, r.sent),
        soft_bounce: share(r.soft_bounces, r.sent),
        complaint: share(r.complaints, r.sent),
        optout: share(r.optouts, r.sent),
        click: share(r.clicks, r.sent),
        reply: share(r.replies, r.sent),
        open: share(r.opens, r.sent),
    }
}

/// The limits a group's rates crossed.
fn warnings(scope: &str, r: &Results) -> Vec<Warning> {
    let pct = |x: f64| format!("{:.2} %", x * 100.0);
    let mut out = Vec::new();
    let complaint = r.rates.complaint;
    if complaint >= COMPLAINT_LIMIT {
        out.push(format!(
            "complaint rate {} is at or above the 0.3 % mailbox providers tolerate (Gmail, Yahoo): \
             stop sending to this audience and find out why",
            pct(complaint)
        ));
    } else if complaint >= COMPLAINT_AIM {
        out.push(format!(
            "complaint rate {} is above the 0.1 % mailbox providers ask senders to stay under",
            pct(complaint)
        ));
    }
    if r.rates.optout >= OPTOUT_ALERT {
        out.push(format!(
            "opt-out rate {} is at or above 1 % (fairsend's alert level; providers publish no \
             opt-out limit, but people who want out become complaints)",
            pct(r.rates.optout)
        ));
    }
    out.into_iter()
        .map(|message| Warning {
            scope: scope.to_string(),
            message,
        })
        .collect()
}

/// The bucket that shows a span of `span_ms` in at most 48 bars.
fn bucket_for(span_ms: i64) -> (&'static str, i64) {
    const MINUTE: i64 = 60_000;
    [
        ("minute", MINUTE),
        ("hour", 60 * MINUTE),
        ("day", 24 * 60 * MINUTE),
        ("week", 7 * 24 * 60 * MINUTE),
    ]
    .into_iter()
    .find(|(_, ms)| span_ms / ms < 48)
    .unwrap_or(("week", 7 * 24 * 60 * MINUTE))
}

async fn timeline(store: &Store, id: i64) -> Result<Timeline, StoreError> {
    let Some((first, last)) = store.report_span(id).await? else {
        return Ok(Timeline {
            bucket: "minute",
            points: Vec::new(),
        });
    };
    let (bucket, ms) = bucket_for(last - first);
    let counted: BTreeMap<i64, (i64, i64)> = store
        .report_timeline(id, ms)
        .await?
        .into_iter()
        .map(|(start, sends, bounces)| (start, (sends, bounces)))
        .collect();
    let points = (first.div_euclid(ms)..=last.div_euclid(ms))
        .map(|b| {
            let (sends, bounces) = counted.get(&(b * ms)).copied().unwrap_or((0, 0));
            TimePoint {
                start: b * ms,
                sends,
                bounces,
            }
        })
        .collect();
    Ok(Timeline { bucket, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_fits_in_48_bars() {
        assert_eq!(bucket_for(0).0, "minute");
        assert_eq!(bucket_for(47 * 60_000).0, "minute");
        assert_eq!(bucket_for(48 * 60_000).0, "hour");
        assert_eq!(bucket_for(47 * 3_600_000).0, "hour");
        assert_eq!(bucket_for(3 * 86_400_000).0, "day");
        assert_eq!(bucket_for(60 * 86_400_000).0, "week");
        assert_eq!(bucket_for(i64::MAX).0, "week");
    }

    #[test]
    fn complaint_warnings_follow_the_published_limits() {
        let mut r = Results {
            sent: 10_000,
            ..Results::default()
        };
        for (complaints, expected) in [(9, 0), (10, 1), (29, 1), (30, 1)] {
            r.complaints = complaints;
            r.rates = rates(&r);
            let w = warnings("campaign", &r);
            assert_eq!(w.len(), expected, "{complaints}: {w:?}");
        }
        r.complaints = 30;
        r.rates = rates(&r);
        assert!(warnings("campaign", &r)[0].message.contains("0.3 %"));
        r.optouts = 100;
        r.rates = rates(&r);
        assert_eq!(warnings("campaign", &r).len(), 2);
    }

    #[test]
    fn variants_are_lettered() {
        assert_eq!(variant_name(Some(0)), "A");
        assert_eq!(variant_name(Some(1)), "B");
        assert_eq!(variant_name(None), "none");
        assert_eq!(variant_name(Some(-1)), "none");
    }
}
