//! Bar charts as inline SVG, drawn on the server with plotters' SVG backend: the admin pages
//! need no JavaScript, and each chart carries a `<title>` and `<desc>` for screen readers
//! (the page puts the same numbers in a table beside it).

use plotters::prelude::*;

/// One series of a grouped bar chart: its name, colour and one value per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: RGBColor,
    pub values: Vec<f64>,
}

/// What a chart is, for people who cannot see it.
pub struct Described<'a> {
    /// Unique on the page: the ids of the title and description derive from it.
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw chart: {0}")]
pub struct ChartError(String);

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;

/// A grouped bar chart: for each category one bar per series, side by side. Every bar is
/// drawn, a zero as a hairline, so a chart has exactly categories × series bars.
pub fn grouped_bars(
    about: &Described,
    categories: &[String],
    series: &[Series],
    y_label: &str,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    draw(&mut svg, categories, series, y_label).map_err(|e| ChartError(e.to_string()))?;
    Ok(accessible(svg, about))
}

fn draw(
    svg: &mut String,
    categories: &[String],
    series: &[Series],
    y_label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let groups = categories.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .margin_top(24)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..groups, 0.0..top)?;
    let label_of = |x: &f64| {
        // Labels sit at the middle of each group; other tick positions stay blank.
        let i = x.floor();
        if (x - i - 0.5).abs() < 1e-9 {
            categories.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_labels(categories.len().max(1) * 2 + 1)
        .x_label_formatter(&label_of)
        .y_desc(y_label)
        .label_style(("sans-serif", 13).into_font().color(&BLACK))
        .axis_desc_style(("sans-serif", 13).into_font().color(&BLACK))
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        chart.draw_series(s.values.iter().enumerate().map(|(i, v)| {
            let left = i as f64 + 0.1 + k as f64 * width;
            // A zero is drawn as a hairline so that it is visibly zero, not missing.
            let height = if *v > 0.0 { *v } else { top / 400.0 };
            Rectangle::new(
                [(left, 0.0), (left + width * 0.92, height)],
                s.colour.filled(),
            )
        }))?;
    }
    // The legend is text (a coloured square and the name), so every rectangle is a bar.
    for (k, s) in series.iter().enumerate() {
        let style = ("sans-serif", 14).into_font().color(&s.colour);
        root.draw(&Text::new(
            format!("\u{25A0} {}", s.name),
            (80 + 140 * k as i32, 2),
            style,
        ))?;
    }
    root.present()?;
    Ok(())
}

/// The chart as an image with a name and a description: `role="img"` and
/// `aria-labelledby` pointing at its `<title>` and `<desc>`.
fn accessible(svg: String, about: &Described) -> String {
    let id = about.id;
    let Some(open_end) = svg.find('>') else {
        return svg;
    };
    let (open, rest) = svg.split_at(open_end);
    let open = open.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" class=\"chart\" id=\"{id}\" "
        ),
        1,
    );
    format!(
        "{open}><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{}",
        escape(about.title),
        escape(about.desc),
        &rest[1..]
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_is_drawn_and_the_chart_is_named() {
        let about = Described {
            id: "c1",
            title: "Sends & bounces",
            desc: "two <days>",
        };
        let svg = grouped_bars(
            &about,
            &["day 1".into(), "day 2".into()],
            &[
                Series {
                    name: "sends",
                    colour: RGBColor(0x1d, 0x4e, 0xd8),
                    values: vec![10.0, 0.0],
                },
                Series {
                    name: "bounces",
                    colour: RGBColor(0xb9, 0x1c, 0x1c),
                    values: vec![2.0, 1.0],
                },
            ],
            "messages",
        )
        .unwrap();
        assert!(svg.starts_with("<svg role=\"img\""), "{svg}");
        assert!(svg.contains("<title id=\"c1-title\">Sends &amp; bounces</title>"));
        assert!(svg.contains("<desc id=\"c1-desc\">two &lt;days&gt;</desc>"));
        let bars = |fill: &str| {
            svg.lines()
                .filter(|l| l.starts_with("<rect") && l.contains(&format!("fill=\"{fill}\"")))
                .count()
        };
        assert_eq!((bars("#1D4ED8"), bars("#B91C1C")), (2, 2), "{svg}");
        assert!(svg.contains("\u{25A0} sends"), "{svg}");
        assert!(svg.contains("day 1") && svg.contains("day 2"), "{svg}");
    }
}
