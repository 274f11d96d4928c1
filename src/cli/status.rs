//! `status` on the command line: the campaigns' counts, workers, uncertain rows and A/B
//! figures, or one campaign's recipients, as text or JSON (the JSON shape is a contract:
//! tests and scripts read it). It prints what `app::status` returns.

use fairsend::app::status::{CampaignStatus, WindowStatus, campaign_name_of, recipients, status};
use fairsend::config::ConfigDir;
use fairsend::model::{RunState, SendTime};
use fairsend::send::WorkerStatus;
use fairsend::store::{OutboxState, RecipientOutcome, Store, UncertainRow};

use super::output::{format_millis, print_json};
use super::terminal::say;

/// `status [CAMPAIGN] [--recipients] [--state S] [--json]`.
pub async fn run(
    config: &ConfigDir,
    store: &Store,
    campaign: Option<&str>,
    list_recipients: bool,
    state: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let name = match campaign {
        Some(arg) => Some(campaign_name_of(config, arg)?),
        None => None,
    };
    if list_recipients || state.is_some() {
        let name = name.unwrap_or_default();
        let (state, rows) = recipients(store, &name, state).await?;
        print_recipients(state, &rows, json);
    } else {
        let all = status(config, store, name.as_deref()).await?;
        if json {
            print_json(&status_json(name.is_some(), &all));
        } else {
            print_status(&all);
        }
    }
    Ok(())
}

/// One object for a named campaign, else an array.
fn status_json(named: bool, all: &[CampaignStatus]) -> serde_json::Value {
    let objects: Vec<serde_json::Value> = all
        .iter()
        .map(|s| {
            let c = &s.counts;
            let mut object = serde_json::json!({"campaign": c.campaign, "states": c.states, "total": c.total(), "run_state": s.run_state, "schedule": s.window.as_ref().map(window_json), "workers": s.workers, "uncertain": s.uncertain});
            if let Some(ab) = &s.ab {
                object["ab"] = ab.clone();
            }
            object
        })
        .collect();
    match (named, objects.as_slice()) {
        (true, [one]) => one.clone(),
        _ => serde_json::Value::Array(objects),
    }
}

/// The `"schedule"` object: the window and start as written, and whether the campaign may
/// send now (until when) or when it next may, in the campaign's time zone.
fn window_json(w: &WindowStatus) -> serde_json::Value {
    let s = &w.schedule;
    let (open_now, open_until, next_open) = match w.next {
        SendTime::Anytime => (true, None, None),
        SendTime::OpenUntil(until) => (true, until.map(|u| s.local_rfc3339(u)), None),
        SendTime::OpensAt(at) => (false, None, Some(s.local_rfc3339(at))),
    };
    serde_json::json!({
        "timezone": s.timezone.name(),
        "window": s.window.as_ref().map(|w| w.to_string()),
        "start": s.start.map(|t| s.local_rfc3339(t)),
        "open_now": open_now,
        "open_until": open_until,
        "next_open": next_open,
    })
}

/// "sending: active — now, window open until 17:00 EET (Europe/Helsinki)", or when it opens.
fn sending_line(s: &CampaignStatus) -> String {
    let state = match s.run_state {
        RunState::Active => "active".to_string(),
        RunState::Paused => format!(
            "paused (`fairsend resume {}` lets it go on)",
            s.counts.campaign
        ),
        RunState::Cancelled => {
            return "sending: cancelled (the messages not yet sent will never be sent)".into();
        }
    };
    let Some(w) = &s.window else {
        return format!("sending: {state}");
    };
    let sched = &w.schedule;
    let rule = match (&sched.window, sched.start) {
        (Some(window), _) => format!("window {window}"),
        (None, Some(start)) => format!("start {}", sched.local_text(start)),
        (None, None) => String::new(),
    };
    let when = match w.next {
        SendTime::OpensAt(at) => format!("closed now, next opens {}", sched.local_text(at)),
        SendTime::OpenUntil(Some(until)) => {
            let local = until.with_timezone(&sched.timezone);
            format!(
                "now, window open until {} ({})",
                local.format("%H:%M %Z"),
                sched.timezone
            )
        }
        SendTime::OpenUntil(None) | SendTime::Anytime => {
            format!("now (times in {})", sched.timezone)
        }
    };
    format!("sending: {state}; {rule}: {when}")
}

fn print_status(all: &[CampaignStatus]) {
    if all.is_empty() {
        crate::cli::terminal::outln!("no campaigns yet");
    }
    for s in all {
        let c = &s.counts;
        let states: Vec<String> = OutboxState::ALL
            .iter()
            .map(|st| format!("{} {}", st.as_str(), c.count(*st)))
            .collect();
        crate::cli::terminal::outln!(
            "{}: {} recipients — {}",
            c.campaign,
            c.total(),
            states.join(", ")
        );
        crate::cli::terminal::outln!("  {}", sending_line(s));
        print_workers(&s.workers);
        print_uncertain(&c.campaign, &s.uncertain);
        if let Some(ab) = &s.ab {
            print_ab(ab);
        }
    }
}

fn print_workers(workers: &[WorkerStatus]) {
    for w in workers {
        let ago = (fairsend::now_millis() - w.record.heartbeat_at).max(0) as f64 / 1000.0;
        crate::cli::terminal::outln!(
            "  worker {} (host {}, pid {}): claimed {}, sent {}, last heartbeat {ago:.1} s ago{}",
            w.record.worker,
            w.record.host,
            w.record.pid,
            w.record.claimed,
            w.record.sent,
            if w.live {
                ""
            } else {
                " — presumed dead; the next live worker takes its rows"
            }
        );
    }
}

/// The A/B test's phase, each variant's figures and the decision, from the `"ab"` object.
fn print_ab(ab: &serde_json::Value) {
    crate::cli::terminal::outln!(
        "  A/B ({}), phase {}:",
        ab["metric"].as_str().unwrap_or(""),
        ab["phase"].as_str().unwrap_or("")
    );
    for v in ab["variants"].as_array().into_iter().flatten() {
        crate::cli::terminal::outln!(
            "    {:<50} group {:>5}, sent {:>5}, events {:>4}, rate {:.3}",
            v["subject"].as_str().unwrap_or(""),
            v["group_size"],
            v["sent"],
            v["events"],
            v["rate"].as_f64().unwrap_or(0.0)
        );
    }
    if !ab["decision"].is_null() {
        let d = &ab["decision"];
        crate::cli::terminal::outln!(
            "    winner: {} (z = {:.3}, p = {:.4}{})",
            d["subject"].as_str().unwrap_or(""),
            d["statistic"].as_f64().unwrap_or(0.0),
            d["p_value_or_probability"].as_f64().unwrap_or(1.0),
            if d["fallback_used"] == true {
                "; not significant, fallback used"
            } else {
                ""
            }
        );
    }
}

/// The recipients whose delivery is uncertain, and what the operator can do about them.
fn print_uncertain(campaign: &str, rows: &[UncertainRow]) {
    if rows.is_empty() {
        return;
    }
    crate::cli::terminal::outln!(
        "  uncertain ({}): the server may have accepted these; not resent unless you run `fairsend send CAMPAIGN --resend-uncertain` for {campaign}",
        rows.len()
    );
    for row in rows {
        let when = chrono::DateTime::from_timestamp_millis(row.at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        crate::cli::terminal::outln!("    {} ({when}): {}", row.email, row.reason);
    }
}

fn print_recipients(state: Option<OutboxState>, rows: &[RecipientOutcome], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "email": r.email, "state": r.state, "attempts": r.attempts,
                    "last_reply": r.last_reply, "updated_at": format_millis(r.updated_at),
                })
            })
            .collect();
        print_json(&rows);
        return;
    }
    if rows.is_empty() {
        crate::cli::terminal::outln!(
            "no recipients{}",
            state
                .map(|s| format!(" in state {}", s.as_str()))
                .unwrap_or_default()
        );
    } else {
        crate::cli::terminal::outln!(
            "{:<40} {:<10} {:>8} {:<20}  last reply",
            "recipient",
            "state",
            "attempts",
            "updated"
        );
    }
    for r in rows {
        say!(
            "{:<40} {:<10} {:>8} {:<20}  {}",
            r.email.as_deref().unwrap_or("(erased)"),
            r.state,
            r.attempts,
            format_millis(r.updated_at),
            r.last_reply.as_deref().unwrap_or("")
        );
    }
}
