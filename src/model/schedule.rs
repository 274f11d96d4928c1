//! Send windows: when a campaign may send, in its own time zone.
//!
//! B2B mail is read in office hours, so a campaign may say `window = "Mon-Fri 08:00-17:00"`
//! in `timezone = "Europe/Helsinki"`: outside the window nothing is sent and a run waits for
//! the next opening. Times are wall-clock times of the zone, so a window keeps its hours across
//! daylight-saving changes; a start that falls into a spring-forward gap opens at the first
//! valid minute after it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// One or more weekly spans, e.g. `Mon-Thu 08:00-17:00, Fri 08:00-14:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    spans: Vec<WeeklySpan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct WeeklySpan {
    /// Monday = 0 … Sunday = 6.
    days: [bool; 7],
    opens: NaiveTime,
    closes: NaiveTime,
}

/// When a campaign sends: a first moment, the window and the zone both are read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub timezone: Tz,
    /// Nothing is sent before this moment.
    pub start: Option<DateTime<Utc>>,
    /// Nothing is sent outside it; `None` sends around the clock.
    pub window: Option<SendWindow>,
    /// The A/B test's wait for a winner counts only time inside the window.
    pub ab_wait_in_window: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::UTC,
            start: None,
            window: None,
            ab_wait_in_window: false,
        }
    }
}

/// Whether a campaign may send at a given moment, and until or from when: what `status`
/// shows as the next window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTime {
    /// Neither a start nor a window holds sending back.
    Anytime,
    /// Sending may happen now; the window closes at `until` (`None`: only a start, which has
    /// passed, so it never closes).
    OpenUntil(Option<DateTime<Utc>>),
    /// Nothing is sent before this moment: the start, or the window's next opening.
    OpensAt(DateTime<Utc>),
}

/// Why a window or a time could not be read, for the field's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl SendWindow {
    /// Parses `DAYS HH:MM-HH:MM[, DAYS HH:MM-HH:MM…]`; DAYS is a day (`Mon`), a range
    /// (`Mon-Fri`) or a list (`Mon+Wed`).
    ///
    /// ```
    /// use fairsend::model::SendWindow;
    /// assert!(SendWindow::parse("Mon-Fri 08:00-17:00").is_ok());
    /// assert!(SendWindow::parse("Mon-Thu 08:00-17:00, Fri 08:00-14:00").is_ok());
    /// assert!(SendWindow::parse("Mon-Fri 17:00-08:00").is_err()); // closes before it opens
    /// ```
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let spans = text
            .split(',')
            .map(|part| WeeklySpan::parse(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if spans.is_empty() {
            return Err(ScheduleError("names no days and hours".into()));
        }
        Ok(Self { spans })
    }

    fn open_on(&self, weekday: Weekday, time: NaiveTime) -> bool {
        self.spans.iter().any(|s| {
            s.days[weekday.num_days_from_monday() as usize] && s.opens <= time && time < s.closes
        })
    }

    /// The (opens, closes) wall-clock spans on a given weekday, earliest first.
    fn spans_on(&self, weekday: Weekday) -> Vec<(NaiveTime, NaiveTime)> {
        let mut spans: Vec<_> = self
            .spans
            .iter()
            .filter(|s| s.days[weekday.num_days_from_monday() as usize])
            .map(|s| (s.opens, s.closes))
            .collect();
        spans.sort();
        spans
    }
}

/// The window as the campaign file writes it: `Mon-Fri 08:00-17:00, Sat 10:00-14:00`.
impl std::fmt::Display for SendWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, span) in self.spans.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            let closes = if span.closes == NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default() {
                "24:00".to_string()
            } else {
                span.closes.format("%H:%M").to_string()
            };
            write!(
                f,
                "{separator}{} {}-{closes}",
                day_runs(&span.days),
                span.opens.format("%H:%M")
            )?;
        }
        Ok(())
    }
}

/// Runs of consecutive days as `Mon-Fri+Sun`.
fn day_runs(days: &[bool; 7]) -> String {
    let name = |i: usize| {
        let d = DAYS[i];
        format!("{}{}", d[..1].to_ascii_uppercase(), &d[1..])
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !days[i] {
            i += 1;
            continue;
        }
        let first = i;
        while i + 1 < 7 && days[i + 1] {
            i += 1;
        }
        runs.push(if first == i {
            name(i)
        } else {
            format!("{}-{}", name(first), name(i))
        });
        i += 1;
    }
    runs.join("+")
}

impl WeeklySpan {
    fn parse(text: &str) -> Result<Self, ScheduleError> {
        let (days, hours) = text.split_once(' ').ok_or_else(|| {
            ScheduleError(format!(
                "'{text}' should be days and hours, such as \"Mon-Fri 08:00-17:00\""
            ))
        })?;
        let (opens, closes) = hours.trim().split_once('-').ok_or_else(|| {
            ScheduleError(format!(
                "'{hours}' should be two times, such as 08:00-17:00"
            ))
        })?;
        let (opens, closes) = (clock_time(opens)?, clock_time(closes)?);
        if closes <= opens {
            return Err(ScheduleError(format!(
                "'{hours}' closes before it opens (a window cannot cross midnight: give two spans)"
            )));
        }
        Ok(Self {
            days: day_set(days)?,
            opens,
            closes,
        })
    }
}

fn clock_time(text: &str) -> Result<NaiveTime, ScheduleError> {
    let text = text.trim();
    if text == "24:00" {
        return NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(|| ScheduleError("24:00".into()));
    }
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| ScheduleError(format!("'{text}' is not a time of day such as 08:00")))
}

fn day_index(text: &str) -> Result<usize, ScheduleError> {
    let lower = text.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower[..3]) && lower.len() <= 9)
        .ok_or_else(|| ScheduleError(format!("'{text}' is not a day (Mon, Tue, … Sun)")))
}

fn day_set(text: &str) -> Result<[bool; 7], ScheduleError> {
    let mut days = [false; 7];
    for part in text.split('+') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day_index(from)?, day_index(to)?);
                if to < from {
                    return Err(ScheduleError(format!(
                        "'{part}' runs backwards: write the days from Monday on"
                    )));
                }
                days[from..=to].iter_mut().for_each(|d| *d = true);
            }
            None => days[day_index(part)?] = true,
        }
    }
    Ok(days)
}

impl Schedule {
    /// Whether a message may be sent at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.start.is_some_and(|start| at < start) {
            return false;
        }
        match &self.window {
            None => true,
            Some(window) => {
                let local = at.with_timezone(&self.timezone);
                window.open_on(local.weekday(), local.time())
            }
        }
    }

    /// The first moment at or after `at` when sending may happen; `None` only for a window
    /// that never opens (which parsing prevents).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = self.start.map_or(at, |start| at.max(start));
        let Some(window) = &self.window else {
            return Some(at);
        };
        if self.is_open(at) {
            return Some(at);
        }
        let first_day = at.with_timezone(&self.timezone).date_naive();
        (0..=7)
            .filter_map(|offset| first_day.checked_add_signed(Duration::days(offset)))
            .flat_map(|day| {
                window
                    .spans_on(day.weekday())
                    .into_iter()
                    .filter_map(move |(opens, _)| self.moment(day, opens))
            })
            .find(|opening| *opening >= at)
    }

    /// A moment as the campaign's people read it: `Mon 2026-12-07 08:00 EET (Europe/Helsinki)`.
    pub fn local_text(&self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.timezone);
        format!(
            "{} ({})",
            local.format("%a %Y-%m-%d %H:%M %Z"),
            self.timezone
        )
    }

    /// A moment as RFC 3339 with the zone's offset: `2026-12-07T08:00:00+02:00`.
    pub fn local_rfc3339(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.timezone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Whether sending may happen at `now`, and until when, or when it next may.
    pub fn send_time(&self, now: DateTime<Utc>) -> SendTime {
        if self.start.is_none() && self.window.is_none() {
            return SendTime::Anytime;
        }
        match self.next_open(now) {
            Some(opens) if opens > now => SendTime::OpensAt(opens),
            _ => SendTime::OpenUntil(self.closes_after(now)),
        }
    }

    /// When the window that is open at `at` closes (`None` when it never closes).
    pub fn closes_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = self.window.as_ref()?;
        let local = at.with_timezone(&self.timezone);
        window
            .spans_on(local.weekday())
            .into_iter()
            .filter(|(opens, closes)| *opens <= local.time() && local.time() < *closes)
            .filter_map(|(_, closes)| self.moment(local.date_naive(), closes))
            .max()
    }

    /// Time inside the window between two moments: how long an A/B test has been running
    /// when only window time counts.
    pub fn open_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut counted = Duration::zero();
        let mut at = from;
        while at < to {
            let Some(opens) = self.next_open(at).filter(|o| *o < to) else {
                break;
            };
            let closes = self.closes_after(opens).unwrap_or(to).min(to);
            counted += closes - opens;
            at = closes.max(opens + Duration::seconds(1));
        }
        counted
    }

    /// When an A/B test that finished at `finished` has waited `wait`: that much later, or,
    /// with `ab_wait_in_window`, once that much time inside the window has passed (a test
    /// ended on Friday evening is not decided on Saturday's silence).
    pub fn decision_time(&self, finished: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
        if !self.ab_wait_in_window || self.window.is_none() {
            return finished + wait;
        }
        let (mut at, mut remaining) = (finished, wait);
        // Bounded: every turn consumes one opening of the window (at most a year of them).
        for _ in 0..(366 * 4) {
            let Some(opens) = self.next_open(at) else {
                break;
            };
            let Some(closes) = self.closes_after(opens) else {
                return opens + remaining;
            };
            if closes - opens >= remaining {
                return opens + remaining;
            }
            remaining -= closes - opens;
            at = closes.max(opens + Duration::seconds(1));
        }
        finished + wait
    }

    /// A wall-clock time of a day in the zone as a moment; a time in a spring-forward gap
    /// becomes the first valid minute after it.
    fn moment(&self, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let mut local = day.and_time(time);
        for _ in 0..180 {
            if let Some(earliest) = self.timezone.from_local_datetime(&local).earliest() {
                return Some(earliest.with_timezone(&Utc));
            }
            local += Duration::minutes(1);
        }
        None
    }

    /// Parses a local time (`2026-12-07T09:00`, seconds optional) in the schedule's zone.
    pub fn local_time(&self, text: &str) -> Result<DateTime<Utc>, ScheduleError> {
        let text = text.trim();
        let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
            .ok_or_else(|| {
                ScheduleError(format!(
                    "'{text}' is not a local time such as 2026-12-07T09:00"
                ))
            })?;
        self.moment(naive.date(), naive.time())
            .ok_or_else(|| ScheduleError(format!("'{text}' does not exist in {}", self.timezone)))
    }
}

/// Parses an IANA zone name (`Europe/Helsinki`).
pub fn parse_timezone(text: &str) -> Result<Tz, ScheduleError> {
    text.trim().parse::<Tz>().map_err(|_| {
        ScheduleError(format!(
            "'{text}' is not a time zone name such as Europe/Helsinki"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helsinki(window: &str) -> Schedule {
        Schedule {
            timezone: parse_timezone("Europe/Helsinki").expect("zone"),
            start: None,
            window: Some(SendWindow::parse(window).expect("window")),
            ab_wait_in_window: false,
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn office_hours_in_helsinki() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        // Monday 2026-12-07 09:00 in Helsinki is 07:00 UTC (winter time, +02:00).
        assert!(s.is_open(utc("2026-12-07T07:00:00Z")));
        assert!(!s.is_open(utc("2026-12-07T05:59:00Z")));
        assert!(!s.is_open(utc("2026-12-07T15:00:00Z"))); // 17:00 local: closed
        // Friday evening waits for Monday 08:00 local.
        assert_eq!(
            s.next_open(utc("2026-12-11T16:00:00Z")),
            Some(utc("2026-12-14T06:00:00Z"))
        );
        assert_eq!(
            s.closes_after(utc("2026-12-07T07:00:00Z")),
            Some(utc("2026-12-07T15:00:00Z"))
        );
    }

    #[test]
    fn windows_keep_their_wall_clock_hours_across_daylight_saving() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        // Summer time (+03:00): 08:00 local is 05:00 UTC.
        assert_eq!(
            s.next_open(utc("2026-06-07T12:00:00Z")),
            Some(utc("2026-06-08T05:00:00Z"))
        );
        // The spring-forward night (Sunday 2026-03-29, 03:00 → 04:00 local): a window opening
        // at 03:30 opens at 04:00 local, the first minute that exists.
        let gap = helsinki("Sun 03:30-05:00");
        assert_eq!(
            gap.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn several_spans_and_a_start() {
        let mut s = helsinki("Mon-Thu 08:00-17:00, Fri 08:00-14:00");
        assert!(!s.is_open(utc("2026-12-11T12:30:00Z"))); // Fri 14:30 local
        assert!(s.is_open(utc("2026-12-10T14:30:00Z"))); // Thu 16:30 local
        s.start = Some(utc("2026-12-09T10:00:00Z"));
        assert!(!s.is_open(utc("2026-12-08T10:00:00Z")));
        assert_eq!(
            s.next_open(utc("2026-12-01T00:00:00Z")),
            Some(utc("2026-12-09T10:00:00Z"))
        );
    }

    #[test]
    fn window_time_between_counts_only_open_hours() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        // From Friday 16:00 local to Monday 10:00 local: 1 h on Friday + 2 h on Monday.
        let counted = s.open_time_between(utc("2026-12-11T14:00:00Z"), utc("2026-12-14T08:00:00Z"));
        assert_eq!(counted, Duration::hours(3));
        let always = Schedule::default();
        assert_eq!(
            always.open_time_between(utc("2026-12-11T14:00:00Z"), utc("2026-12-11T16:00:00Z")),
            Duration::hours(2)
        );
    }

    #[test]
    fn an_ab_decision_waits_in_window_time_when_asked() {
        let mut s = helsinki("Mon-Fri 08:00-17:00");
        // Test finished Friday 16:00 local; a 4-hour wait: 1 h on Friday, 3 h on Monday.
        let finished = utc("2026-12-11T14:00:00Z");
        assert_eq!(
            s.decision_time(finished, Duration::hours(4)),
            utc("2026-12-11T18:00:00Z")
        );
        s.ab_wait_in_window = true;
        assert_eq!(
            s.decision_time(finished, Duration::hours(4)),
            utc("2026-12-14T09:00:00Z")
        );
        assert_eq!(
            s.open_time_between(finished, s.decision_time(finished, Duration::hours(4))),
            Duration::hours(4)
        );
    }

    #[test]
    fn the_next_send_time_over_a_weekend() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        // Saturday 2026-12-05 10:00 in Helsinki (+02:00): closed until Monday 08:00 local.
        assert_eq!(
            s.send_time(utc("2026-12-05T08:00:00Z")),
            SendTime::OpensAt(utc("2026-12-07T06:00:00Z"))
        );
        // Friday 17:00 sharp is closed already.
        assert_eq!(
            s.send_time(utc("2026-12-11T15:00:00Z")),
            SendTime::OpensAt(utc("2026-12-14T06:00:00Z"))
        );
        // Monday 08:30: open now, until 17:00 local.
        assert_eq!(
            s.send_time(utc("2026-12-07T06:30:00Z")),
            SendTime::OpenUntil(Some(utc("2026-12-07T15:00:00Z")))
        );
        // Early Monday, before 08:00: the same day's opening.
        assert_eq!(
            s.send_time(utc("2026-12-07T04:00:00Z")),
            SendTime::OpensAt(utc("2026-12-07T06:00:00Z"))
        );
    }

    #[test]
    fn the_next_send_time_across_daylight_saving_changes() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        // Friday 2026-03-27 18:00 local (+02:00); clocks go forward on Sunday, so Monday
        // 08:00 local is 05:00 UTC.
        assert_eq!(
            s.send_time(utc("2026-03-27T16:00:00Z")),
            SendTime::OpensAt(utc("2026-03-30T05:00:00Z"))
        );
        // Friday 2026-10-23 18:00 local (+03:00); clocks go back on Sunday, so Monday 08:00
        // local is 06:00 UTC.
        assert_eq!(
            s.send_time(utc("2026-10-23T15:00:00Z")),
            SendTime::OpensAt(utc("2026-10-26T06:00:00Z"))
        );
        // Monday after the change, 16:30 local (+02:00): open until 17:00 local = 15:00 UTC.
        assert_eq!(
            s.send_time(utc("2026-10-26T14:30:00Z")),
            SendTime::OpenUntil(Some(utc("2026-10-26T15:00:00Z")))
        );
    }

    #[test]
    fn the_next_send_time_with_a_start_and_without_a_window() {
        let mut s = Schedule::default();
        assert_eq!(s.send_time(utc("2026-12-05T08:00:00Z")), SendTime::Anytime);
        s.start = Some(utc("2026-12-09T07:00:00Z"));
        assert_eq!(
            s.send_time(utc("2026-12-05T08:00:00Z")),
            SendTime::OpensAt(utc("2026-12-09T07:00:00Z"))
        );
        assert_eq!(
            s.send_time(utc("2026-12-09T07:00:00Z")),
            SendTime::OpenUntil(None)
        );
        // A start on a Saturday, with office hours: the first opening after the start.
        let mut office = helsinki("Mon-Fri 08:00-17:00");
        office.start = Some(utc("2026-12-05T08:00:00Z"));
        assert_eq!(
            office.send_time(utc("2026-12-01T08:00:00Z")),
            SendTime::OpensAt(utc("2026-12-07T06:00:00Z"))
        );
    }

    #[test]
    fn moments_are_shown_in_the_campaigns_zone() {
        let s = helsinki("Mon-Fri 08:00-17:00");
        assert_eq!(
            s.local_text(utc("2026-12-07T06:00:00Z")),
            "Mon 2026-12-07 08:00 EET (Europe/Helsinki)"
        );
        assert_eq!(
            s.local_text(utc("2026-06-08T05:00:00Z")),
            "Mon 2026-06-08 08:00 EEST (Europe/Helsinki)"
        );
        assert_eq!(
            s.local_rfc3339(utc("2026-12-07T06:00:00Z")),
            "2026-12-07T08:00:00+02:00"
        );
    }

    #[test]
    fn a_window_is_shown_as_written() {
        for text in [
            "Mon-Fri 08:00-17:00",
            "Mon-Thu 08:00-17:00, Fri 08:00-14:00",
            "Mon+Wed+Fri-Sun 00:00-24:00",
        ] {
            assert_eq!(SendWindow::parse(text).expect(text).to_string(), text);
        }
        assert_eq!(
            SendWindow::parse("monday-wed 9:00-12:00").map(|w| w.to_string()),
            Ok("Mon-Wed 09:00-12:00".to_string())
        );
    }

    #[test]
    fn bad_windows_are_refused_with_the_reason() {
        for bad in [
            "",
            "Mon-Fri",
            "Mon-Fri 8-17",
            "Fri-Mon 08:00-17:00",
            "Funday 08:00-17:00",
            "Mon 17:00-08:00",
        ] {
            assert!(SendWindow::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_timezone("Europe/Hesinki").is_err());
        assert!(
            helsinki("Mon 08:00-09:00")
                .local_time("7.12.2026 9:00")
                .is_err()
        );
    }
}
