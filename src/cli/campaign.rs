//! The campaign steps the non-sending commands share on the command line: the campaign's
//! contact files imported (as `send` would) with their notices shown, and the composer ready.

use fairsend::compose::Composer;
use fairsend::config::{Campaign, ConfigDir};
use fairsend::store::Store;
use fairsend::suppress::Secret;

use super::output::show;

/// Imports the campaign's contact files (as `send` would) and prepares its composer.
pub async fn prepare(
    config: &ConfigDir,
    store: &Store,
    campaign: &Campaign,
    secret: &Secret,
    skip_invalid: bool,
) -> anyhow::Result<Composer> {
    Ok(
        fairsend::app::campaign::prepare(config, store, campaign, secret, skip_invalid, &mut show)
            .await?,
    )
}
