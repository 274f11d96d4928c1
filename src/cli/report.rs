//! Printing `fairsend report`: a table for people, `--json` for programs, `--csv` (one
//! figure a row: scope, name, metric, key, value) for spreadsheets.

use std::io::Write;

use fairsend::app::report::{Breakdown, CampaignReport, Results};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
}

impl Format {
    pub fn of(json: bool, csv: bool) -> Self {
        match (json, csv) {
            (true, _) => Self::Json,
            (_, true) => Self::Csv,
            _ => Self::Human,
        }
    }
}

pub fn print(report: &CampaignReport, format: Format) -> anyhow::Result<()> {
    let mut out = Vec::new();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        Format::Csv => write_csv(report, &mut out)?,
        Format::Human => write_human(report, &mut out)?,
    }
    crate::cli::terminal::write_bytes(&out);
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn write_human(report: &CampaignReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Campaign {} — results as of {}",
        report.campaign,
        time(report.generated_at)
    )?;
    writeln!(
        out,
        "Delivered = sent at least {} h ago and no verified bounce since.\n{}\n",
        report.delivered_after_hours, report.note
    )?;
    writeln!(
        out,
        "{:<24} {:>7} {:>9} {:>5} {:>5} {:>10} {:>8} {:>7} {:>7} {:>7}",
        "",
        "sent",
        "delivered",
        "hard",
        "soft",
        "complaints",
        "opt-outs",
        "clicks",
        "replies",
        "opens*"
    )?;
    row(out, "campaign", &report.total)?;
    for (kind, list) in [
        ("variant", &report.variants),
        ("register", &report.registers),
    ] {
        for Breakdown { name, results } in list {
            row(out, &format!("{kind} {name}"), results)?;
        }
    }
    writeln!(
        out,
        "  * opens are unreliable (image proxies, privacy protection)\n"
    )?;
    let t = &report.total;
    writeln!(
        out,
        "Rates of sent: complaints {} (limit 0.3 %, aim < 0.1 %), opt-outs {}, hard bounces {}, \
         clicks {}, replies {}",
        pct(t.rates.complaint),
        pct(t.rates.optout),
        pct(t.rates.hard_bounce),
        pct(t.rates.click),
        pct(t.rates.reply)
    )?;
    details(report, out)?;
    if report.warnings.is_empty() {
        writeln!(out, "\nNo rate crossed a limit.")?;
    }
    for w in &report.warnings {
        writeln!(out, "\nWARNING ({}): {}", w.scope, w.message)?;
    }
    Ok(())
}

fn details(report: &CampaignReport, out: &mut impl Write) -> std::io::Result<()> {
    let t = &report.total;
    writeln!(out, "\nBounces by reason:")?;
    if t.bounces_by_reason.is_empty() {
        writeln!(out, "  none")?;
    }
    for b in &t.bounces_by_reason {
        writeln!(out, "  {:<5} {:<28} {:>6}", b.class, b.reason, b.count)?;
    }
    writeln!(out, "Opt-outs by source:")?;
    if t.optouts_by_source.is_empty() {
        writeln!(out, "  none")?;
    }
    for (source, n) in &t.optouts_by_source {
        writeln!(out, "  {source:<34} {n:>6}")?;
    }
    writeln!(out, "Links (unique clicks, click rate of sent):")?;
    if report.links.is_empty() {
        writeln!(out, "  no tracked links")?;
    }
    for l in &report.links {
        writeln!(
            out,
            "  {:>2}. {:<60} {:>6} {:>8}",
            l.index + 1,
            l.url,
            l.unique_clicks,
            pct(l.click_rate)
        )?;
    }
    Ok(())
}

fn row(out: &mut impl Write, label: &str, r: &Results) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:>7} {:>9} {:>5} {:>5} {:>10} {:>8} {:>7} {:>7} {:>7}",
        label,
        r.sent,
        r.delivered,
        r.hard_bounces,
        r.soft_bounces,
        r.complaints,
        r.optouts,
        r.clicks,
        r.replies,
        r.opens
    )
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn write_csv(report: &CampaignReport, out: &mut impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["scope", "name", "metric", "key", "value"])?;
    results_csv(&mut w, "campaign", &report.campaign, &report.total)?;
    for (scope, list) in [
        ("variant", &report.variants),
        ("register", &report.registers),
    ] {
        for b in list {
            results_csv(&mut w, scope, &b.name, &b.results)?;
        }
    }
    for l in &report.links {
        let index = l.index.to_string();
        w.write_record([
            "link",
            &index,
            "unique_clicks",
            &l.url,
            &l.unique_clicks.to_string(),
        ])?;
        w.write_record([
            "link",
            &index,
            "click_rate",
            &l.url,
            &l.click_rate.to_string(),
        ])?;
    }
    for p in &report.timeline.points {
        let start = time(p.start);
        w.write_record([
            "timeline",
            report.timeline.bucket,
            "sends",
            &start,
            &p.sends.to_string(),
        ])?;
        w.write_record([
            "timeline",
            report.timeline.bucket,
            "bounces",
            &start,
            &p.bounces.to_string(),
        ])?;
    }
    for warning in &report.warnings {
        w.write_record(["warning", &warning.scope, "warning", "", &warning.message])?;
    }
    w.flush()?;
    Ok(())
}

fn results_csv<W: Write>(
    w: &mut csv::Writer<W>,
    scope: &str,
    name: &str,
    r: &Results,
) -> anyhow::Result<()> {
    let mut put =
        |metric: &str, key: &str, value: String| w.write_record([scope, name, metric, key, &value]);
    for (metric, value) in [
        ("sent", r.sent),
        ("delivered", r.delivered),
        ("rejected", r.rejected),
        ("hard_bounces", r.hard_bounces),
        ("soft_bounces", r.soft_bounces),
        ("complaints", r.complaints),
        ("optouts", r.optouts),
        ("clicks", r.clicks),
        ("replies", r.replies),
        ("opens_unreliable", r.opens),
    ] {
        put(metric, "", value.to_string())?;
    }
    for b in &r.bounces_by_reason {
        put(
            "bounces",
            &format!("{}:{}", b.class, b.reason),
            b.count.to_string(),
        )?;
    }
    for (source, n) in &r.optouts_by_source {
        put("optouts", source, n.to_string())?;
    }
    for (link, n) in &r.clicks_by_link {
        put("clicks", &link.to_string(), n.to_string())?;
    }
    for (metric, value) in [
        ("complaint_rate", r.rates.complaint),
        ("optout_rate", r.rates.optout),
        ("click_rate", r.rates.click),
        ("delivered_rate", r.rates.delivered),
    ] {
        put(metric, "", value.to_string())?;
    }
    Ok(())
}

/// `fairsend report CAMPAIGN`: the campaign's name (or file) resolved, its report printed.
pub async fn run(
    config: &fairsend::config::ConfigDir,
    store: &fairsend::store::Store,
    campaign: &str,
    json: bool,
    csv: bool,
) -> anyhow::Result<()> {
    use fairsend::app::status::{campaign_name_of, unknown_campaign};
    let name = campaign_name_of(config, campaign)?;
    let delivered_after = config.settings.delivered_after;
    let now = fairsend::now_millis();
    match fairsend::app::report::campaign_report(store, &name, delivered_after, now).await {
        Ok(report) => print(&report, Format::of(json, csv)),
        Err(fairsend::app::report::ReportError::UnknownCampaign(_)) => {
            Err(unknown_campaign(store, &name).await.into())
        }
        Err(e) => Err(e.into()),
    }
}
