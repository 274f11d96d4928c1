//! The `status` view of the campaigns: per-state counts, the workers of a multi-worker run,
//! the rows whose delivery is uncertain, the A/B test's phase and figures; and the list of
//! one campaign's recipients with their outcome. It reads, never changes, and leaves the
//! rendering (text or JSON) to the shell.

use std::path::Path;

use super::AppError;
use crate::config::{Campaign, ConfigDir};
use crate::model::{RunState, Schedule, SendTime};
use crate::send::WorkerStatus;
use crate::store::{CampaignCounts, OutboxState, RecipientOutcome, Store, UncertainRow};

/// One campaign as `status` shows it.
pub struct CampaignStatus {
    pub counts: CampaignCounts,
    /// Whether its workers may start transactions (pause, resume, cancel).
    pub run_state: RunState,
    /// When it may send, for a campaign whose file has a `[schedule]` start or window.
    pub window: Option<WindowStatus>,
    /// The `"ab"` object of `status --json`, for an A/B campaign whose file is found.
    pub ab: Option<serde_json::Value>,
    pub workers: Vec<WorkerStatus>,
    pub uncertain: Vec<UncertainRow>,
}

/// A campaign's `[schedule]` and what it means at the moment `status` ran.
pub struct WindowStatus {
    pub schedule: Schedule,
    /// Sending may happen now (until when), or from when.
    pub next: SendTime,
}

impl WindowStatus {
    /// The schedule of `campaign` at `now`, if it holds sending back at all (a start or a
    /// window; a time zone alone does not).
    pub fn of(campaign: &Campaign, now: chrono::DateTime<chrono::Utc>) -> Option<Self> {
        let schedule = &campaign.schedule;
        if schedule.start.is_none() && schedule.window.is_none() {
            return None;
        }
        Some(Self {
            next: schedule.send_time(now),
            schedule: schedule.clone(),
        })
    }
}

/// A campaign named on the command line by its name or by its file.
pub fn campaign_name_of(config: &ConfigDir, arg: &str) -> Result<String, AppError> {
    let path = Path::new(arg);
    if arg.ends_with(".toml") || path.is_file() {
        return Ok(config.load_campaign(path)?.name);
    }
    Ok(arg.to_string())
}

/// Every campaign (or the one named) with its counts, workers, uncertain rows and A/B state.
pub async fn status(
    config: &ConfigDir,
    store: &Store,
    campaign: Option<&str>,
) -> Result<Vec<CampaignStatus>, AppError> {
    let counts = store
        .campaign_counts(campaign)
        .await
        .map_err(AppError::StatusCounts)?;
    if let Some(name) = campaign
        && counts.is_empty()
    {
        return Err(unknown_campaign(store, name).await);
    }
    let mut all = Vec::with_capacity(counts.len());
    for c in counts {
        all.push(campaign_status(config, store, c).await?);
    }
    Ok(all)
}

async fn campaign_status(
    config: &ConfigDir,
    store: &Store,
    counts: CampaignCounts,
) -> Result<CampaignStatus, AppError> {
    let file = campaign_named(config, &counts.campaign);
    let ab = match &file {
        Some(file) => ab_status(store, file).await?,
        None => None,
    };
    let window = file
        .as_ref()
        .and_then(|f| WindowStatus::of(f, crate::schedule_now()));
    let id = store.find_campaign_id(&counts.campaign).await?;
    let run_state = match id {
        Some(id) => store.run_state(id).await?,
        None => RunState::Active,
    };
    let workers = match id {
        Some(id) => {
            crate::send::campaign_workers(store, id, config.settings.database.lease).await?
        }
        None => Vec::new(),
    };
    let uncertain = match id {
        Some(id) if counts.count(OutboxState::Uncertain) > 0 => store.uncertain_rows(id).await?,
        _ => Vec::new(),
    };
    Ok(CampaignStatus {
        counts,
        run_state,
        window,
        ab,
        workers,
        uncertain,
    })
}

/// The recipients of `campaign`, of one state if `state` names one.
pub async fn recipients(
    store: &Store,
    campaign: &str,
    state: Option<&str>,
) -> Result<(Option<OutboxState>, Vec<RecipientOutcome>), AppError> {
    let state = match state {
        Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
            AppError::BadInput(format!(
                "--state {s}: not a state; use one of {}",
                OutboxState::ALL.map(OutboxState::as_str).join(", ")
            ))
        })?),
        None => None,
    };
    let Some(id) = store.find_campaign_id(campaign).await? else {
        return Err(unknown_campaign(store, campaign).await);
    };
    Ok((state, store.campaign_recipients(id, state).await?))
}

/// "no campaign named X", with the names that exist (a file's stem is not its name).
pub async fn unknown_campaign(store: &Store, name: &str) -> AppError {
    let known: Vec<String> = store
        .campaign_counts(None)
        .await
        .map(|all| all.into_iter().map(|c| c.campaign).collect())
        .unwrap_or_default();
    let hint = if known.is_empty() {
        "no campaign has been sent from this database yet".to_string()
    } else {
        format!("campaigns in this database: {}", known.join(", "))
    };
    AppError::BadInput(format!(
        "no campaign named '{name}' has been sent yet ({hint}; a campaign's name is its `name =` line, or give its file)"
    ))
}

/// The campaign file whose `name` is `name`, among `config/campaigns/*.toml`.
pub(crate) fn campaign_named(config: &ConfigDir, name: &str) -> Option<Campaign> {
    std::fs::read_dir(config.dir.join("campaigns"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| config.load_campaign(&p).ok())
        .find(|c| c.name == name)
}

/// The `"ab"` object of `status --json` for an A/B campaign.
async fn ab_status(
    store: &Store,
    campaign: &Campaign,
) -> Result<Option<serde_json::Value>, AppError> {
    let Some(ab) = &campaign.ab else {
        return Ok(None);
    };
    let Some(campaign_id) = store.find_campaign_id(&campaign.name).await? else {
        return Ok(None);
    };
    let state = store.ab_state(campaign_id).await?;
    let groups = store.ab_group_counts(campaign_id).await?;
    let observed = crate::abtest::observe(
        &store.ab_test_messages(campaign_id).await?,
        ab.metric,
        ab.subjects.len(),
    );
    let phase = match (&state.decision, state.test_finished_at) {
        (Some(_), _) => "remainder",
        (None, Some(_)) => "waiting",
        (None, None) if groups.is_empty() => "not_started",
        (None, None) => "test",
    };
    let variants: Vec<serde_json::Value> = ab
        .subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let (size, sent) = groups.iter().find(|(v, _, _)| *v == i).map(|(_, s, n)| (*s, *n)).unwrap_or((0, 0));
            let o = observed.get(i).copied().unwrap_or(crate::abtest::Observed { sent: 0, events: 0 });
            serde_json::json!({"subject": subject, "group_size": size, "sent": sent, "events": o.events, "rate": o.rate()})
        })
        .collect();
    Ok(Some(serde_json::json!({
        "phase": phase,
        "metric": ab.metric,
        "variants": variants,
        "decision": state.decision.map(|(_, d)| serde_json::json!({
            "winner": d.winner, "subject": ab.subjects.get(d.winner), "method": d.method, "statistic": d.statistic,
            "p_value_or_probability": d.p_value_or_probability, "fallback_used": d.fallback_used,
        })),
    })))
}
