//! Pause, resume and cancel a campaign: one use case each for the command line and the admin
//! page, audited alike. The store changes the state in one statement (a cancel, in one
//! transaction with the unsent rows); every worker of every process sees it before its next
//! transaction, because the claim and the move to `sending` both read it.

use super::AppError;
use crate::config::ConfigDir;
use crate::store::{RunStateChange, RunStateError, Store};

/// What to do to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Cancel,
}

/// Pauses, resumes or cancels the campaign named `campaign` (its name or its file), for
/// `actor` (who the audit log names).
pub async fn change(
    config: &ConfigDir,
    store: &Store,
    campaign: &str,
    action: Action,
    actor: &str,
) -> Result<RunStateChange, AppError> {
    let name = super::status::campaign_name_of(config, campaign)?;
    let changed = match action {
        Action::Pause => store.set_paused(&name, true, actor).await,
        Action::Resume => store.set_paused(&name, false, actor).await,
        Action::Cancel => store.cancel(&name, actor).await,
    };
    changed.map_err(|e| match e {
        RunStateError::UnknownCampaign(_) => AppError::BadInput(format!(
            "{e}; a campaign is known once `check` or `send` has run it"
        )),
        RunStateError::Cancelled(_) => AppError::Refused(e.to_string()),
        RunStateError::Store(e) => AppError::Store(e),
    })
}
