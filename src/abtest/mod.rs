//! A/B subject-line splits: deterministic assignment of a test sample to variants in exactly
//! balanced groups, and the decision after the test phase (a documented statistical test, or
//! the configured fallback). Pure decisions: `send` runs the phases, `store` keeps the state.

pub mod stats;

use crate::suppress::{Secret, mac_hex};

pub use crate::model::{Decision, Fallback, Phase};
pub use stats::{Observed, ZTest, best_vs_runner_up, erfc};

/// Splits `rows` (outbox id, contact id) of eligible contacts: the first `round(fraction·N)`
/// in the order of a keyed hash of (campaign, contact) form the test sample, dealt to the
/// variants in turn, so group sizes differ by at most one; the rest wait for the winner. The
/// same rows always give the same assignment.
pub fn assign(
    secret: &Secret,
    campaign: &str,
    rows: &[(i64, i64)],
    fraction: f64,
    variants: usize,
) -> Vec<(i64, Phase, Option<usize>)> {
    let mut keyed: Vec<(String, i64)> = rows
        .iter()
        .map(|(outbox_id, contact_id)| {
            (
                mac_hex(
                    secret,
                    "fairsend/ab/v1",
                    format!("{campaign}\0{contact_id}").as_bytes(),
                ),
                *outbox_id,
            )
        })
        .collect();
    keyed.sort();
    let test = ((fraction * rows.len() as f64).round() as usize).min(rows.len());
    keyed
        .into_iter()
        .enumerate()
        .map(|(i, (_, outbox_id))| {
            if i < test {
                (outbox_id, Phase::Test, Some(i % variants.max(1)))
            } else {
                (outbox_id, Phase::Remainder, None)
            }
        })
        .collect()
}

/// Clicks (or opens) within this long after delivery are machine-made (link scanners).
pub const MACHINE_AFTER_DELIVERY_MS: i64 = 5_000;
/// Every link of a message hit within this window is a scanner, not a person.
pub const MACHINE_BURST_MS: i64 = 1_000;

/// Whether a test message counts as engaged for `metric`. Machine-made events are recorded
/// but not counted: any event within 5 s of delivery, and clicks on every link of a message
/// (two or more links) within one second.
pub fn engaged(message: &crate::model::TestMessage, metric: crate::model::AbMetric) -> bool {
    use crate::model::AbMetric;
    let kind = match metric {
        AbMetric::Replies => return message.replied,
        AbMetric::Clicks => "click",
        AbMetric::Opens => "open",
    };
    let sent_at = message.sent_at.unwrap_or(0);
    let events: Vec<&(String, Option<i64>, i64)> = message
        .events
        .iter()
        .filter(|(k, _, at)| k == kind && at - sent_at >= MACHINE_AFTER_DELIVERY_MS)
        .collect();
    if metric != AbMetric::Clicks {
        return !events.is_empty();
    }
    let links: std::collections::BTreeSet<i64> =
        message.events.iter().filter_map(|(_, l, _)| *l).collect();
    events.iter().any(|(_, link, at)| {
        // A click is a person's unless all the message's links were hit within a second of it.
        let burst: std::collections::BTreeSet<i64> = message
            .events
            .iter()
            .filter(|(k, _, t)| k == "click" && (t - at).abs() <= MACHINE_BURST_MS)
            .filter_map(|(_, l, _)| *l)
            .collect();
        link.is_some() && !(links.len() >= 2 && burst.len() == links.len())
    })
}

/// Sent and engaged messages per variant of the test phase.
pub fn observe(
    messages: &[crate::model::TestMessage],
    metric: crate::model::AbMetric,
    variants: usize,
) -> Vec<Observed> {
    let mut observed = vec![Observed { sent: 0, events: 0 }; variants];
    for m in messages {
        if let Some(o) = observed.get_mut(m.variant) {
            o.sent += 1;
            if engaged(m, metric) {
                o.events += 1;
            }
        }
    }
    observed
}

pub const METHOD: &str = "two-proportion z-test (pooled, two-sided), best variant vs runner-up";

/// The winner if the best variant beats the runner-up with p < 1 − confidence; otherwise the
/// fallback.
pub fn decide(observed: &[Observed], confidence: f64, fallback: Fallback) -> Decision {
    let test = best_vs_runner_up(observed);
    let (statistic, p_value) = test.map(|t| (t.z, t.p_value)).unwrap_or((0.0, 1.0));
    match test {
        Some(t)
            if t.p_value < 1.0 - confidence
                && observed[t.best].rate() > observed[t.runner_up].rate() =>
        {
            Decision {
                winner: t.best,
                method: METHOD.into(),
                statistic,
                p_value_or_probability: p_value,
                fallback_used: false,
            }
        }
        _ => Decision {
            winner: match fallback {
                Fallback::First => 0,
                Fallback::BestObserved => test.map(|t| t.best).unwrap_or(0),
            },
            method: METHOD.into(),
            statistic,
            p_value_or_probability: p_value,
            fallback_used: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: i64) -> Vec<(i64, i64)> {
        (1..=n).map(|i| (i, i * 7)).collect()
    }

    #[test]
    fn group_sizes_are_exact() {
        let secret = Secret::development();
        for (n, fraction, variants) in [
            (10, 0.2, 2),
            (1000, 0.2, 3),
            (7, 0.5, 2),
            (101, 0.3, 5),
            (3, 1.0, 4),
            (50, 0.0, 2),
        ] {
            let a = assign(&secret, "c", &rows(n), fraction, variants);
            let test = a.iter().filter(|(_, p, _)| *p == Phase::Test).count();
            assert_eq!(
                test,
                (fraction * n as f64).round() as usize,
                "n={n} f={fraction}"
            );
            let sizes: Vec<usize> = (0..variants)
                .map(|v| a.iter().filter(|(_, _, x)| *x == Some(v)).count())
                .collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "n={n} f={fraction} v={variants}: {sizes:?}");
            assert_eq!(sizes.iter().sum::<usize>(), test);
        }
    }

    #[test]
    fn assignment_is_stable_and_keyed_by_campaign() {
        let secret = Secret::development();
        let a = assign(&secret, "spring", &rows(200), 0.2, 2);
        let mut shuffled = rows(200);
        shuffled.reverse();
        let mut b = assign(&secret, "spring", &shuffled, 0.2, 2);
        let mut a_sorted = a.clone();
        a_sorted.sort_by_key(|x| x.0);
        b.sort_by_key(|x| x.0);
        assert_eq!(a_sorted, b, "the order rows come in does not matter");
        let c = assign(&secret, "autumn", &rows(200), 0.2, 2);
        assert_ne!(a, c, "another campaign samples other contacts");
    }

    #[test]
    fn decisions() {
        let winner = decide(
            &[
                Observed {
                    sent: 400,
                    events: 50,
                },
                Observed {
                    sent: 400,
                    events: 80,
                },
            ],
            0.95,
            Fallback::First,
        );
        assert_eq!((winner.winner, winner.fallback_used), (1, false));
        let close = [
            Observed {
                sent: 100,
                events: 10,
            },
            Observed {
                sent: 100,
                events: 12,
            },
        ];
        let first = decide(&close, 0.95, Fallback::First);
        assert_eq!((first.winner, first.fallback_used), (0, true));
        let best = decide(&close, 0.95, Fallback::BestObserved);
        assert_eq!((best.winner, best.fallback_used), (1, true));
        // Three variants: the best against the runner-up.
        let three = decide(
            &[
                Observed {
                    sent: 500,
                    events: 5,
                },
                Observed {
                    sent: 500,
                    events: 60,
                },
                Observed {
                    sent: 500,
                    events: 20,
                },
            ],
            0.95,
            Fallback::First,
        );
        assert_eq!(three.winner, 1);
    }
}
