//! `fairsend pause|resume|cancel CAMPAIGN`: calls `app::lifecycle` and says what changed.

use fairsend::app::lifecycle::{Action, change};
use fairsend::config::ConfigDir;
use fairsend::model::RunState;
use fairsend::store::Store;

pub async fn run(
    config: &ConfigDir,
    store: &Store,
    campaign: &str,
    action: Action,
    by: &str,
) -> anyhow::Result<()> {
    let changed = change(config, store, campaign, action, by).await?;
    let name = &changed.campaign;
    match (action, changed.before, changed.after) {
        (Action::Cancel, _, _) => crate::cli::terminal::outln!(
            "{name} cancelled: {} message(s) not yet sent will never be sent",
            changed.rows_cancelled
        ),
        (_, before, after) if before == after => {
            crate::cli::terminal::outln!("{name} was already {}; nothing changed", after.as_str())
        }
        (_, _, RunState::Paused) => {
            crate::cli::terminal::outln!(
                "{name} paused: no new message is started; `fairsend resume {name}` continues"
            )
        }
        _ => crate::cli::terminal::outln!(
            "{name} resumed: waiting workers go on; if none is running, `fairsend send` continues"
        ),
    }
    Ok(())
}
