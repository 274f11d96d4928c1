//! Printing `fairsend audience`: the counts per rule for people, the whole view (with the
//! lists of selected and excluded contacts) as JSON for programs.

use fairsend::app::audience::{AudienceView, Rule, RuleCount, audience};
use fairsend::config::ConfigDir;
use fairsend::store::Store;

use super::output::{format_millis, print_json};
use super::terminal::printable_lines;

/// `audience CAMPAIGN [--json]`.
pub async fn run(
    config: &ConfigDir,
    store: &Store,
    campaign: &str,
    json: bool,
) -> anyhow::Result<()> {
    let view = audience(config, store, campaign).await?;
    if json {
        print_json(&view);
    } else {
        print_human(&view);
    }
    Ok(())
}

fn print_human(view: &AudienceView) {
    crate::cli::terminal::outln!(
        "{}",
        printable_lines(&format!(
            "audience of {} (registers {}), as of {}",
            view.campaign,
            view.registers.join(", "),
            format_millis(view.as_of)
        ))
    );
    crate::cli::terminal::outln!("{:>7}  contact(s) in the registers", view.contacts);
    crate::cli::terminal::outln!(
        "{:>7}  selected: the campaign would be sent to them",
        view.selected.len()
    );
    crate::cli::terminal::outln!("{:>7}  left out:", view.excluded.len());
    for count in &view.counts {
        crate::cli::terminal::outln!("{:>13}  {}", count.count, printable_lines(&describe(count)));
    }
    let blocking: usize = view
        .counts
        .iter()
        .filter(|c| c.rule.blocks_sending())
        .map(|c| c.count)
        .sum();
    if blocking > 0 {
        crate::cli::terminal::outln!(
            "{blocking} contact(s) in the segment block the campaign until they are fixed or removed: `fairsend check` lists them"
        );
    }
    crate::cli::terminal::outln!("(the addresses of each group: --json)");
}

fn describe(count: &RuleCount) -> String {
    match count.rule {
        Rule::Gone => "erased while this was computed".into(),
        Rule::Suppressed => format!(
            "suppressed ({})",
            count.reason.as_deref().unwrap_or("unknown reason")
        ),
        Rule::Passive => "passive: the person left the role".into(),
        Rule::Ceased => "ceased: the company ceased".into(),
        Rule::RegisterExpired => "expired register: a purchased list past valid_until".into(),
        Rule::ConsumerWithoutConsent => {
            "blocked: consumer (free-mail) address without consent".into()
        }
        Rule::Where => "not in the segment: `where`".into(),
        Rule::NotSentWithin => {
            "not in the segment: sent another campaign within `not_sent_within`".into()
        }
        Rule::EngagedWithin => {
            "not in the segment: no click or reply within `engaged_within`".into()
        }
        Rule::ExcludeCampaigns => {
            "not in the segment: received a campaign of `exclude_campaigns`".into()
        }
    }
}
