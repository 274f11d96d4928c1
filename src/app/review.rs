//! `review` and `preview`: what recipients will get, shown before anything is sent — every
//! distinct compliance footer written out for the approver, and the exact message of one
//! recipient. Both import the campaign's contact files first (as `send` would) so the answer
//! matches the send; neither changes a message's state.

use std::path::{Path, PathBuf};

use super::AppError;
use super::campaign::{Notify, prepare, with_tracking};
use crate::compliance::footer_variants;
use crate::compliance::review::{FooterVariant, combined_hash, write_review};
use crate::compliance::{Eligibility, Exclusion};
use crate::compose::ComposedMessage;
use crate::config::ConfigDir;
use crate::model::EmailAddress;
use crate::store::Store;
use crate::suppress::Secret;

/// The footer variants written for review.
pub struct Review {
    pub campaign: String,
    /// The index.html that links every variant.
    pub index: PathBuf,
    pub combined_hash: String,
    pub variants: Vec<FooterVariant>,
}

/// Writes every distinct footer variant of the campaign, with an index, into `out`.
pub async fn review(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign_file: &Path,
    out: &Path,
    notify: Notify<'_>,
) -> Result<Review, AppError> {
    let campaign = config.load_campaign(campaign_file)?;
    prepare(config, store, &campaign, secret, false, notify).await?;
    let variants = footer_variants(config, &campaign, store).await?;
    let index = write_review(out, &campaign, &variants)?;
    Ok(Review {
        campaign: campaign.name,
        index,
        combined_hash: combined_hash(&variants),
        variants,
    })
}

/// The message `to` would receive from the campaign, exactly as it would be sent; refused
/// when the address is not in the audience or would receive nothing.
pub async fn preview(
    config: &ConfigDir,
    store: &Store,
    secret: &Secret,
    campaign_file: &Path,
    to: &EmailAddress,
    notify: Notify<'_>,
) -> Result<ComposedMessage, AppError> {
    let campaign = config.load_campaign(campaign_file)?;
    let composer = prepare(config, store, &campaign, secret, false, notify).await?;
    let campaign_id = store.campaign_id(&campaign.name).await?;
    store
        .materialise_outbox(
            campaign_id,
            &crate::compliance::audience_scope(&campaign, Some(campaign_id), crate::now_millis()),
        )
        .await?;
    let not_in_audience =
        || AppError::BadInput(format!("{to} is not in the audience of {}", campaign.name));
    let Some(outbox_id) = store.outbox_row_for(campaign_id, to).await? else {
        return Err(not_in_audience());
    };
    let Some(gate) = store.recipient(outbox_id).await? else {
        return Err(not_in_audience());
    };
    let facts = crate::compliance::ContactFacts::of_member(config, &gate);
    match crate::compliance::eligibility(&facts, chrono::Utc::now().date_naive()) {
        Eligibility::Excluded(Exclusion::Suppressed(reason)) => {
            return Err(AppError::Refused(format!(
                "{to} would receive nothing: suppressed ({})",
                reason.as_str()
            )));
        }
        Eligibility::Excluded(_) => {
            return Err(AppError::Refused(format!(
                "{to} would receive nothing: the contact is {}",
                gate.status.as_str()
            )));
        }
        Eligibility::Eligible | Eligibility::Blocked(_) => {}
    }
    let composer = with_tracking(composer, store, &campaign).await?;
    Ok(composer.compose(&gate.recipient)?)
}
