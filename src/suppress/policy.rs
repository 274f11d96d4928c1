//! What suppresses an address and what lifts a reason — the rules, in one place, as pure
//! functions of an event and the address's history: a proven hard bounce suppresses at once,
//! soft bounces once they reach a count over a span, a complaint or an opt-out at once, and a
//! hard bounce re-classified soft lifts the reason it caused unless another hard bounce stands.
//!
//! This file reads and writes nothing: the callers (`inbound::apply`, `suppress::opt_out`) hand
//! the facts in and have `store` execute the answer inside the event's own transaction.

use crate::model::{OptOutSource, SuppressionReason};
use crate::store::SoftBounceHistory;

/// Soft bounces suppress an address once there are `count` of them spanning `days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBounceLimit {
    pub count: i64,
    pub days: i64,
}

impl From<(i64, i64)> for SoftBounceLimit {
    fn from((count, days): (i64, i64)) -> Self {
        Self { count, days }
    }
}

/// The reason a proven (or confirmed) bounce of class `class` suppresses its address for, if
/// any; `soft` holds the address's soft bounces, this one included.
pub fn reason_for_bounce(
    class: Option<&str>,
    soft: SoftBounceHistory,
    limit: SoftBounceLimit,
) -> Option<SuppressionReason> {
    match class {
        Some("hard") => Some(SuppressionReason::HardBounce),
        Some("soft") if soft_limit_reached(soft, limit) => Some(SuppressionReason::SoftBounceLimit),
        _ => None,
    }
}

fn soft_limit_reached(soft: SoftBounceHistory, limit: SoftBounceLimit) -> bool {
    soft.count >= limit.count && soft.last_ms - soft.first_ms >= limit.days * 86_400_000
}

/// What the bounce queue records as done with a proven report when it arrives.
pub fn bounce_action(kind: &str, class: Option<&str>) -> &'static str {
    match kind {
        "complaint" => "opt_out",
        _ if class == Some("hard") => "suppressed",
        _ if class == Some("soft") => "recorded",
        _ => "none",
    }
}

/// An opt-out suppresses at once; a spam complaint is recorded as its own reason.
pub fn reason_for_optout(source: OptOutSource) -> SuppressionReason {
    if source == OptOutSource::Complaint {
        SuppressionReason::Complaint
    } else {
        SuppressionReason::OptOut
    }
}

/// A change to one address's suppression reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonChange {
    Keep,
    Add(SuppressionReason),
    Lift(SuppressionReason),
}

/// An operator's re-classification of a bounce: what the queue records and what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reclassification {
    pub action: &'static str,
    pub change: ReasonChange,
}

/// Re-classifying a bounce from `old` to `new`. Only a proven (or confirmed) bounce acts: made
/// soft, it lifts the hard-bounce reason — unless `other_hard` proven hard bounces of the
/// address remain — and nothing else (an opt-out, a complaint or an erasure stays); made hard,
/// it adds the hard-bounce reason. An unverified one waits for the operator to confirm it.
pub fn reclassify(old: Option<&str>, new: &str, proven: bool, other_hard: i64) -> Reclassification {
    if !proven {
        return Reclassification {
            action: "reclassified",
            change: ReasonChange::Keep,
        };
    }
    match (old, new) {
        (Some("hard"), "soft") => Reclassification {
            action: "reclassified: hard-bounce reason lifted",
            change: if other_hard == 0 {
                ReasonChange::Lift(SuppressionReason::HardBounce)
            } else {
                ReasonChange::Keep
            },
        },
        (_, "hard") => Reclassification {
            action: "reclassified: suppressed",
            change: ReasonChange::Add(SuppressionReason::HardBounce),
        },
        _ => Reclassification {
            action: "reclassified",
            change: ReasonChange::Keep,
        },
    }
}

/// Whether a bounce in this verification state acts (suppresses, lifts).
pub fn verification_acts(verification: &str) -> bool {
    matches!(verification, "proven" | "confirmed")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const LIMIT: SoftBounceLimit = SoftBounceLimit { count: 3, days: 2 };

    fn soft(count: i64, span_days: i64) -> SoftBounceHistory {
        SoftBounceHistory {
            count,
            first_ms: 1_000,
            last_ms: 1_000 + span_days * DAY,
        }
    }

    #[test]
    fn a_hard_bounce_suppresses_at_once() {
        assert_eq!(
            reason_for_bounce(Some("hard"), SoftBounceHistory::default(), LIMIT),
            Some(SuppressionReason::HardBounce)
        );
    }

    #[test]
    fn soft_bounces_suppress_only_at_the_count_over_the_span() {
        let reason = |h| reason_for_bounce(Some("soft"), h, LIMIT);
        assert_eq!(reason(soft(2, 5)), None);
        assert_eq!(reason(soft(5, 1)), None);
        assert_eq!(reason(soft(3, 2)), Some(SuppressionReason::SoftBounceLimit));
        assert_eq!(reason_for_bounce(None, soft(9, 9), LIMIT), None);
    }

    #[test]
    fn reclassifying_soft_lifts_only_when_no_other_hard_bounce_stands() {
        let lift = ReasonChange::Lift(SuppressionReason::HardBounce);
        assert_eq!(reclassify(Some("hard"), "soft", true, 0).change, lift);
        assert_eq!(
            reclassify(Some("hard"), "soft", true, 1).change,
            ReasonChange::Keep
        );
        assert_eq!(
            reclassify(Some("hard"), "soft", false, 0).change,
            ReasonChange::Keep
        );
        assert_eq!(
            reclassify(Some("soft"), "hard", true, 0).change,
            ReasonChange::Add(SuppressionReason::HardBounce)
        );
    }

    #[test]
    fn a_complaint_is_its_own_reason() {
        assert_eq!(
            reason_for_optout(OptOutSource::Complaint),
            SuppressionReason::Complaint
        );
        assert_eq!(
            reason_for_optout(OptOutSource::Reply),
            SuppressionReason::OptOut
        );
    }
}
