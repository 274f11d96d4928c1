//! `/admin/campaigns/NAME`: the results report of `app::report` as a page — tables of the
//! figures, and two server-drawn SVG charts (sends and bounces over time, results per A/B
//! variant), each with the numbers in a table beside it.

use askama::Template;
use plotters::style::RGBColor;

use super::charts::{ChartError, Described, Series, grouped_bars};
use crate::app::report::{Breakdown, CampaignReport, Results};

pub const SENDS: RGBColor = RGBColor(0x1d, 0x4e, 0xd8);
pub const BOUNCES: RGBColor = RGBColor(0xb9, 0x1c, 0x1c);
const COMPLAINTS: RGBColor = RGBColor(0x7c, 0x2d, 0x12);
const OPTOUTS: RGBColor = RGBColor(0x92, 0x40, 0x0e);
const CLICKS: RGBColor = RGBColor(0x15, 0x80, 0x3d);
const REPLIES: RGBColor = RGBColor(0x6d, 0x28, 0xd9);

/// One row of the results table: a group's figures, formatted.
pub struct Row {
    pub scope: String,
    pub sent: i64,
    pub delivered: String,
    pub hard: i64,
    pub soft: i64,
    pub complaints: String,
    pub optouts: String,
    pub clicks: String,
    pub replies: String,
    pub opens: String,
}

/// One bucket of the timeline table.
pub struct TimeRow {
    pub start: String,
    pub sends: i64,
    pub bounces: i64,
}

#[derive(Template)]
#[template(path = "admin/campaign.html")]
pub struct CampaignPage {
    pub title: String,
    pub csrf: String,
    pub refresh: bool,
    pub report: CampaignReport,
    pub rows: Vec<Row>,
    pub variant_rows: Vec<Row>,
    pub timeline_rows: Vec<TimeRow>,
    pub timeline_svg: String,
    pub variants_svg: String,
    pub delivered_after: String,
    pub complaint_rate: String,
    pub optout_rate: String,
    pub links: Vec<(i64, String, i64, String)>,
    /// `active`, `paused` or `cancelled`: which of pause, resume and cancel the page offers.
    pub run_state: &'static str,
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn with_rate(n: i64, rate: f64) -> String {
    format!("{n} ({})", pct(rate))
}

fn row(scope: String, r: &Results) -> Row {
    Row {
        scope,
        sent: r.sent,
        delivered: with_rate(r.delivered, r.rates.delivered),
        hard: r.hard_bounces,
        soft: r.soft_bounces,
        complaints: with_rate(r.complaints, r.rates.complaint),
        optouts: with_rate(r.optouts, r.rates.optout),
        clicks: with_rate(r.clicks, r.rates.click),
        replies: with_rate(r.replies, r.rates.reply),
        opens: with_rate(r.opens, r.rates.open),
    }
}

fn time(ms: i64, bucket: &str) -> String {
    let format = match bucket {
        "minute" | "hour" => "%Y-%m-%d %H:%M",
        _ => "%Y-%m-%d",
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// The page for `report`, with the session's CSRF token for the header's forms.
pub fn page(
    report: CampaignReport,
    csrf: String,
    run_state: crate::model::RunState,
) -> Result<CampaignPage, ChartError> {
    let bucket = report.timeline.bucket;
    let timeline_rows: Vec<TimeRow> = report
        .timeline
        .points
        .iter()
        .map(|p| TimeRow {
            start: time(p.start, bucket),
            sends: p.sends,
            bounces: p.bounces,
        })
        .collect();
    let timeline_svg = timeline_chart(&report, &timeline_rows)?;
    let variants_svg = variants_chart(&report.variants)?;
    let mut rows = vec![row("Whole campaign".into(), &report.total)];
    let variant_rows: Vec<Row> = report
        .variants
        .iter()
        .map(|b| row(format!("Variant {}", b.name), &b.results))
        .collect();
    rows.extend(
        report
            .variants
            .iter()
            .map(|b| row(format!("Variant {}", b.name), &b.results)),
    );
    rows.extend(
        report
            .registers
            .iter()
            .map(|b| row(format!("Register {}", b.name), &b.results)),
    );
    Ok(CampaignPage {
        run_state: run_state.as_str(),
        title: format!("Campaign {}", report.campaign),
        csrf,
        refresh: false,
        delivered_after: format!("{} h", report.delivered_after_hours),
        complaint_rate: pct(report.total.rates.complaint),
        optout_rate: pct(report.total.rates.optout),
        links: report
            .links
            .iter()
            .map(|l| {
                (
                    l.index + 1,
                    l.url.clone(),
                    l.unique_clicks,
                    pct(l.click_rate),
                )
            })
            .collect(),
        rows,
        variant_rows,
        timeline_rows,
        timeline_svg,
        variants_svg,
        report,
    })
}

fn timeline_chart(report: &CampaignReport, rows: &[TimeRow]) -> Result<String, ChartError> {
    let bucket = report.timeline.bucket;
    let title = format!("Sends and bounces per {bucket}");
    let desc = format!(
        "Bar chart: messages sent and verified bounces received per {bucket}, {} {bucket}s; \
         the table beside it lists the same numbers.",
        rows.len()
    );
    grouped_bars(
        &Described {
            id: "chart-timeline",
            title: &title,
            desc: &desc,
        },
        &rows.iter().map(|r| r.start.clone()).collect::<Vec<_>>(),
        &[
            Series {
                name: "sends",
                colour: SENDS,
                values: rows.iter().map(|r| r.sends as f64).collect(),
            },
            Series {
                name: "bounces",
                colour: BOUNCES,
                values: rows.iter().map(|r| r.bounces as f64).collect(),
            },
        ],
        "messages",
    )
}

fn variants_chart(variants: &[Breakdown]) -> Result<String, ChartError> {
    let series = |name, colour, rate: fn(&Results) -> f64| Series {
        name,
        colour,
        values: variants.iter().map(|b| rate(&b.results) * 100.0).collect(),
    };
    grouped_bars(
        &Described {
            id: "chart-variants",
            title: "Results per A/B variant, in % of sent",
            desc: "Bar chart: for each variant, bounces, complaints, opt-outs, clicks and \
                   replies as a percentage of the messages sent; the table beside it lists \
                   the same numbers.",
        },
        &variants
            .iter()
            .map(|b| format!("variant {}", b.name))
            .collect::<Vec<_>>(),
        &[
            series("bounces", BOUNCES, |r| {
                r.rates.hard_bounce + r.rates.soft_bounce
            }),
            series("complaints", COMPLAINTS, |r| r.rates.complaint),
            series("opt-outs", OPTOUTS, |r| r.rates.optout),
            series("clicks", CLICKS, |r| r.rates.click),
            series("replies", REPLIES, |r| r.rates.reply),
        ],
        "% of sent",
    )
}
