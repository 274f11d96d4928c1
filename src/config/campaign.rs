//! Campaign files (`config/campaigns/*.toml`): who gets what, from whom.

use std::path::{Path, PathBuf};

use crate::model::{AbMetric, Filter, Schedule, Segment, SendWindow, parse_timezone};

use serde::Deserialize;

use super::{
    ConfigError, Locale, Registers, optional_text, read_toml, required_address, required_text,
};
use crate::model::EmailAddress;

/// A display name and an address, as in `From: Maija <maija@example.fi>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl Mailbox {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(open) = text.rfind('<') {
            let close = text[open..]
                .find('>')
                .ok_or_else(|| format!("'{text}' has '<' without '>'"))?;
            if open + close + 1 != text.len() {
                return Err(format!("'{text}' has text after '>'"));
            }
            let address =
                EmailAddress::parse(&text[open + 1..open + close]).map_err(|e| e.to_string())?;
            let name = text[..open].trim().trim_matches('"').trim();
            if name.contains(['"', '\\']) {
                return Err(format!(
                    "the display name in '{text}' may not contain '\"' or '\\'"
                ));
            }
            let name = (!name.is_empty()).then(|| name.to_string());
            Ok(Self { name, address })
        } else {
            let address = EmailAddress::parse(text).map_err(|e| e.to_string())?;
            Ok(Self {
                name: None,
                address,
            })
        }
    }
}

/// The marketer's body: Markdown (text part = the source, HTML part = rendered Markdown), or
/// separate HTML and text files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySource {
    Markdown(PathBuf),
    HtmlAndText { html: PathBuf, text: PathBuf },
}

/// A contacts file the campaign imports into a register before it sends (idempotently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactImport {
    pub file: PathBuf,
    pub register: String,
}

/// `[ab]`: subject variants tested on a sample before the rest gets the winner.
#[derive(Debug, Clone, PartialEq)]
pub struct AbSettings {
    pub subjects: Vec<String>,
    pub test_fraction: f64,
    pub metric: AbMetric,
    pub wait: std::time::Duration,
    pub confidence: f64,
    pub fallback: crate::model::Fallback,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub file: PathBuf,
    pub name: String,
    /// Registers in order of precedence: a contact in several is sent through the first.
    pub registers: Vec<String>,
    pub subject: String,
    pub from: Mailbox,
    pub reply_to: EmailAddress,
    pub body: BodySource,
    /// Overrides the register's default locale for contacts that have none of their own.
    pub locale: Option<Locale>,
    pub imports: Vec<ContactImport>,
    pub require_approval: bool,
    pub ab: Option<AbSettings>,
    /// `[audience]`: whom of the registers' eligible contacts the campaign is for.
    pub segment: Segment,
    /// `[schedule]`: from when and in which hours it sends.
    pub schedule: Schedule,
}

impl Campaign {
    /// Whether messages carry tracked links (clicks) or an open pixel.
    pub fn tracks_clicks(&self) -> bool {
        self.ab
            .as_ref()
            .is_some_and(|a| a.metric == AbMetric::Clicks)
    }

    pub fn tracks_opens(&self) -> bool {
        self.ab
            .as_ref()
            .is_some_and(|a| a.metric == AbMetric::Opens)
    }

    /// The subject templates: the A/B variants, or the one subject.
    pub fn subjects(&self) -> Vec<&str> {
        match &self.ab {
            Some(ab) => ab.subjects.iter().map(String::as_str).collect(),
            None => vec![self.subject.as_str()],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    registers: Option<Vec<String>>,
    subject: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    body: Option<String>,
    body_html: Option<String>,
    body_text: Option<String>,
    locale: Option<String>,
    require_approval: Option<bool>,
    #[serde(default)]
    import: Vec<RawImport>,
    ab: Option<RawAb>,
    audience: Option<RawAudience>,
    schedule: Option<RawSchedule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    start: Option<String>,
    timezone: Option<String>,
    window: Option<String>,
    ab_wait_in_window: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    #[serde(rename = "where")]
    filter: Option<String>,
    not_sent_within: Option<String>,
    engaged_within: Option<String>,
    exclude_campaigns: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAb {
    subjects: Option<Vec<String>>,
    test_fraction: Option<f64>,
    metric: Option<String>,
    wait: Option<String>,
    confidence: Option<f64>,
    fallback: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    file: Option<String>,
    register: Option<String>,
}

impl Campaign {
    /// Loads `file`; relative paths inside it (body, imports) are relative to `config_dir`.
    pub fn load(
        file: &Path,
        config_dir: &Path,
        registers: &Registers,
    ) -> Result<Self, ConfigError> {
        let raw: Raw = read_toml(file).map_err(|e| e.hint_campaign_path(config_dir))?;
        let name = campaign_name(file, required_text(file, "name", raw.name)?)?;
        let register_names = campaign_registers(file, raw.registers, registers)?;
        // The two addresses `init` leaves blank are checked together.
        let from = required_text(file, "from", raw.from).and_then(|from| {
            Mailbox::parse(&from).map_err(|e| ConfigError::field(file, "from", e))
        });
        let (from, reply_to) = match (from, required_address(file, "reply_to", raw.reply_to)) {
            (Ok(from), Ok(reply_to)) => (from, reply_to),
            (a, b) => return Err(ConfigError::gather([a.err(), b.err()])),
        };
        let body = body_source(file, config_dir, raw.body, raw.body_html, raw.body_text)?;
        let locale = match optional_text(file, "locale", raw.locale)? {
            None => None,
            Some(l) => Some(Locale::parse(&l).ok_or_else(|| {
                ConfigError::field(file, "locale", format!("'{l}' is not one of fi, sv, en"))
            })?),
        };
        let imports = contact_imports(file, config_dir, raw.import, &register_names)?;
        let ab = raw.ab.map(|ab| parse_ab(file, ab)).transpose()?;
        let subject = match &ab {
            Some(_) if raw.subject.is_some() => {
                return Err(ConfigError::field(
                    file,
                    "subject",
                    "with [ab], give the subjects as [ab] subjects",
                ));
            }
            Some(ab) => ab.subjects[0].clone(),
            None => required_text(file, "subject", raw.subject)?,
        };
        Ok(Self {
            file: file.to_path_buf(),
            name,
            registers: register_names,
            subject,
            from,
            reply_to,
            body,
            locale,
            imports,
            require_approval: raw.require_approval.unwrap_or(true),
            ab,
            segment: raw
                .audience
                .map(|a| parse_audience(file, a))
                .transpose()?
                .unwrap_or_default(),
            schedule: parse_schedule(
                file,
                raw.schedule.unwrap_or(RawSchedule {
                    start: None,
                    timezone: None,
                    window: None,
                    ab_wait_in_window: None,
                }),
            )?,
        })
    }
}

/// The zone a schedule's times are read in when it names none: fairsend's home.
pub const DEFAULT_TIMEZONE: &str = "Europe/Helsinki";

/// `[schedule]`: times are wall-clock times of `timezone` (default Europe/Helsinki).
fn parse_schedule(file: &Path, raw: RawSchedule) -> Result<Schedule, ConfigError> {
    let zone_text = optional_text(file, "[schedule] timezone", raw.timezone)?;
    let timezone = parse_timezone(zone_text.as_deref().unwrap_or(DEFAULT_TIMEZONE))
        .map_err(|e| ConfigError::field(file, "[schedule] timezone", e.to_string()))?;
    let window = optional_text(file, "[schedule] window", raw.window)?
        .map(|w| SendWindow::parse(&w))
        .transpose()
        .map_err(|e| ConfigError::field(file, "[schedule] window", e.to_string()))?;
    let mut schedule = Schedule {
        timezone,
        start: None,
        ab_wait_in_window: raw.ab_wait_in_window.unwrap_or(false),
        window,
    };
    if schedule.ab_wait_in_window && schedule.window.is_none() {
        return Err(ConfigError::field(
            file,
            "[schedule] ab_wait_in_window",
            "needs a window to count the wait in",
        ));
    }
    if let Some(start) = optional_text(file, "[schedule] start", raw.start)? {
        schedule.start = Some(
            schedule
                .local_time(&start)
                .map_err(|e| ConfigError::field(file, "[schedule] start", e.to_string()))?,
        );
    }
    Ok(schedule)
}

/// `[audience]`: the `where` expression parsed once (an error names the character), spans as
/// durations ("30 days"), excluded campaigns by their name.
fn parse_audience(file: &Path, raw: RawAudience) -> Result<Segment, ConfigError> {
    let filter = match optional_text(file, "[audience] where", raw.filter)? {
        None => None,
        Some(text) => Some(Filter::parse(&text).map_err(|e| {
            ConfigError::field(file, "[audience] where", format!("{e} in '{text}'"))
        })?),
    };
    let span = |field: &str, value: Option<String>| -> Result<_, ConfigError> {
        let field = format!("[audience] {field}");
        match optional_text(file, &field, value)? {
            None => Ok(None),
            Some(text) => super::parse_duration(&text)
                .filter(|d| !d.is_zero())
                .map(Some)
                .ok_or_else(|| {
                    ConfigError::field(
                        file,
                        &field,
                        format!(
                            "'{text}' is not a span of time such as \"30 days\" or \"12 weeks\""
                        ),
                    )
                }),
        }
    };
    let mut exclude_campaigns = Vec::new();
    for name in raw.exclude_campaigns.unwrap_or_default() {
        let name = required_text(file, "[audience] exclude_campaigns", Some(name))?;
        exclude_campaigns.push(name);
    }
    Ok(Segment {
        filter,
        not_sent_within: span("not_sent_within", raw.not_sent_within)?,
        engaged_within: span("engaged_within", raw.engaged_within)?,
        exclude_campaigns,
    })
}

/// The registers the campaign sends to: at least one, each defined in registers.toml.
fn campaign_registers(
    file: &Path,
    names: Option<Vec<String>>,
    registers: &Registers,
) -> Result<Vec<String>, ConfigError> {
    let names = names.unwrap_or_default();
    if names.is_empty() {
        return Err(ConfigError::field(
            file,
            "registers",
            "names no register to send to",
        ));
    }
    for r in &names {
        if registers.get(r).is_none() {
            return Err(ConfigError::field(
                file,
                "registers",
                format!(
                    "'{r}' is not defined in {} (defined: {})",
                    registers.file.display(),
                    registers.names().join(", ")
                ),
            ));
        }
    }
    Ok(names)
}

/// Markdown, or HTML with its plain-text alternative.
fn body_source(
    file: &Path,
    config_dir: &Path,
    markdown: Option<String>,
    html: Option<String>,
    text: Option<String>,
) -> Result<BodySource, ConfigError> {
    match (markdown, html, text) {
        (Some(md), None, None) => Ok(BodySource::Markdown(existing_file(
            file, config_dir, "body", &md,
        )?)),
        (None, Some(html), Some(text)) => Ok(BodySource::HtmlAndText {
            html: existing_file(file, config_dir, "body_html", &html)?,
            text: existing_file(file, config_dir, "body_text", &text)?,
        }),
        (None, Some(_), None) => Err(ConfigError::field(
            file,
            "body_text",
            "is missing: an HTML body needs a plain-text alternative",
        )),
        _ => Err(ConfigError::field(
            file,
            "body",
            "give either body = \"content/FILE.md\" or both body_html and body_text",
        )),
    }
}

/// The `[[import]]` tables: each names an existing file and one of the campaign's registers.
fn contact_imports(
    file: &Path,
    config_dir: &Path,
    raw: Vec<RawImport>,
    register_names: &[String],
) -> Result<Vec<ContactImport>, ConfigError> {
    let mut imports = Vec::new();
    for (i, imp) in raw.into_iter().enumerate() {
        let field = |k: &str| format!("[[import]] #{} {k}", i + 1);
        let register = required_text(file, &field("register"), imp.register)?;
        if !register_names.contains(&register) {
            return Err(ConfigError::field(
                file,
                field("register"),
                format!("'{register}' is not one of this campaign's registers"),
            ));
        }
        let path = required_text(file, &field("file"), imp.file)?;
        imports.push(ContactImport {
            file: existing_file(file, config_dir, &field("file"), &path)?,
            register,
        });
    }
    Ok(imports)
}

fn parse_ab(file: &Path, raw: RawAb) -> Result<AbSettings, ConfigError> {
    let subjects: Vec<String> = raw
        .subjects
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, s)| super::single_line(file, &format!("[ab] subjects[{i}]"), s))
        .collect::<Result<_, _>>()?;
    if !(2..=5).contains(&subjects.len()) || subjects.iter().any(|s| s.is_empty()) {
        return Err(ConfigError::field(
            file,
            "[ab] subjects",
            "give 2 to 5 non-empty subject lines",
        ));
    }
    let test_fraction = raw.test_fraction.unwrap_or(0.2);
    if !(test_fraction > 0.0 && test_fraction <= 1.0) {
        return Err(ConfigError::field(
            file,
            "[ab] test_fraction",
            "must be more than 0 and at most 1 (for example 0.2)",
        ));
    }
    let metric = match raw.metric.as_deref().unwrap_or("clicks") {
        "clicks" => AbMetric::Clicks,
        "opens" => AbMetric::Opens,
        "replies" => AbMetric::Replies,
        other => {
            return Err(ConfigError::field(
                file,
                "[ab] metric",
                format!("'{other}' is not clicks, opens or replies"),
            ));
        }
    };
    let wait_text = raw.wait.unwrap_or_else(|| "4h".into());
    let wait = super::parse_duration(&wait_text).ok_or_else(|| {
        ConfigError::field(
            file,
            "[ab] wait",
            format!("'{wait_text}' is not a duration such as \"4h\""),
        )
    })?;
    let confidence = raw.confidence.unwrap_or(0.95);
    if !(confidence > 0.5 && confidence < 1.0) {
        return Err(ConfigError::field(
            file,
            "[ab] confidence",
            "must be between 0.5 and 1 (for example 0.95)",
        ));
    }
    let fallback = match raw.fallback.as_deref().unwrap_or("first") {
        "first" => crate::model::Fallback::First,
        "best_observed" => crate::model::Fallback::BestObserved,
        other => {
            return Err(ConfigError::field(
                file,
                "[ab] fallback",
                format!("'{other}' is not first or best_observed"),
            ));
        }
    };
    Ok(AbSettings {
        subjects,
        test_fraction,
        metric,
        wait,
        confidence,
        fallback,
    })
}

/// A campaign name becomes part of file names (`outbox:` writes `NAME-ROWID.eml`), so it must
/// not be a hidden file or a path: it starts with a letter or digit.
fn campaign_name(file: &Path, name: String) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if !name.chars().all(allowed) {
        return Err(ConfigError::field(
            file,
            "name",
            format!("'{name}' may contain only letters a-z, digits, '-', '_' and '.'"),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::field(
            file,
            "name",
            format!("'{name}' must start with a letter or digit"),
        ));
    }
    Ok(name)
}

/// A content file of the campaign (body, contact list): it must exist and, after following
/// symlinks, lie inside the configuration directory — whatever a content file holds can end
/// up in a message, so `/proc/self/environ`, `../secret` or a symlink pointing out are refused.
fn existing_file(
    file: &Path,
    config_dir: &Path,
    field: &str,
    value: &str,
) -> Result<PathBuf, ConfigError> {
    let path = config_dir.join(value);
    let refuse = |why: String| Err(ConfigError::field(file, field, why));
    let (Ok(real), Ok(root)) = (path.canonicalize(), config_dir.canonicalize()) else {
        return refuse(format!(
            "{} does not exist (paths are relative to {})",
            path.display(),
            config_dir.display()
        ));
    };
    if !real.starts_with(&root) {
        return refuse(format!(
            "'{value}' is outside the configuration directory {} (it resolves to {}): content \
             files must be inside it",
            config_dir.display(),
            real.display()
        ));
    }
    if !real.is_file() {
        return refuse(format!("{} is not a file", path.display()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        let m = Mailbox::parse("Maija Meikäläinen <Maija@Example.fi>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Maija Meikäläinen"));
        assert_eq!(m.address.as_str(), "maija@example.fi");
        assert!(Mailbox::parse("plain@example.fi").unwrap().name.is_none());
        assert!(Mailbox::parse("Bad <a@example.fi").is_err());
        assert!(Mailbox::parse("Bad <a@example.fi> trailing").is_err());
    }

    fn audience(toml_text: &str) -> Result<Segment, ConfigError> {
        let raw: RawAudience = toml::from_str(toml_text).expect("toml");
        parse_audience(Path::new("campaigns/x.toml"), raw)
    }

    fn schedule(toml_text: &str) -> Result<Schedule, ConfigError> {
        let raw: RawSchedule = toml::from_str(toml_text).expect("toml");
        parse_schedule(Path::new("campaigns/x.toml"), raw)
    }

    #[test]
    fn audience_sections() {
        let s = audience(
            "where = 'industry = \"logistics\"'\nnot_sent_within = \"30 days\"\n\
             engaged_within = \"26 weeks\"\nexclude_campaigns = [\"spring-2026\"]",
        )
        .expect("valid");
        assert_eq!(
            s.not_sent_within,
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            s.engaged_within,
            Some(std::time::Duration::from_secs(26 * 7 * 86_400))
        );
        assert_eq!(s.exclude_campaigns, ["spring-2026"]);
        let e = audience("where = 'industry = logistics'")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("campaigns/x.toml: [audience] where: at character 12"),
            "{e}"
        );
        let e = audience("not_sent_within = \"a month\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[audience] not_sent_within"), "{e}");
    }

    #[test]
    fn schedule_sections() {
        let s = schedule(
            "start = \"2026-12-07T09:00\"\ntimezone = \"Europe/Helsinki\"\nwindow = \"Mon-Fri 08:00-17:00\"",
        )
        .expect("valid");
        assert_eq!(
            s.start.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-07T07:00:00+00:00")
        );
        let e = schedule("window = \"Mon-Fri 8-17\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[schedule] window: '8' is not a time of day"),
            "{e}"
        );
        let e = schedule("timezone = \"Helsinki\"").unwrap_err().to_string();
        assert!(e.contains("[schedule] timezone"), "{e}");
        let e = schedule("ab_wait_in_window = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a window"), "{e}");
    }
}
