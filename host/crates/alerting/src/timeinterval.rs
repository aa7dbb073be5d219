//! Named time intervals (`time_intervals:` / `mute_time_intervals:`) and the
//! test whether an instant lies inside one, as Alertmanager's
//! `timeinterval` package defines it.
//!
//! Every field of an interval narrows it; an absent field does not. A field
//! that is present but empty (`times: []`) matches nothing, as in
//! Alertmanager.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// `[start, end)` in minutes of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// First minute of the day inside the range.
    pub start_minute: u32,
    /// First minute of the day after the range (1440 for `24:00`).
    pub end_minute: u32,
}

/// A closed range `begin..=end` of weekdays (0 = Sunday), days of the month
/// (negative counts from the end), months (1–12) or years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusiveRange {
    /// First member.
    pub begin: i32,
    /// Last member.
    pub end: i32,
}

/// The zone an interval is evaluated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// UTC (the default).
    Utc,
    /// The host's local zone (`Local`).
    Local,
    /// An IANA zone such as `Europe/Berlin`.
    Zone(chrono_tz::Tz),
}

/// One interval: the conjunction of its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeInterval {
    /// Times of day.
    pub times: Option<Vec<TimeRange>>,
    /// Weekdays, 0 = Sunday.
    pub weekdays: Option<Vec<InclusiveRange>>,
    /// Days of the month, negative from the end (-1 = last day).
    pub days_of_month: Option<Vec<InclusiveRange>>,
    /// Months, 1 = January.
    pub months: Option<Vec<InclusiveRange>>,
    /// Years.
    pub years: Option<Vec<InclusiveRange>>,
    /// Zone the other fields are read in (UTC when absent).
    pub location: Option<Location>,
}

/// A named list of intervals; an instant is inside when any interval holds
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTimeInterval {
    /// The name routes refer to.
    pub name: String,
    /// The intervals.
    pub intervals: Vec<TimeInterval>,
    /// Whether it came from the deprecated top-level `mute_time_intervals:`.
    pub deprecated_section: bool,
}

impl NamedTimeInterval {
    /// Whether `t` lies inside any of the intervals.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.intervals.iter().any(|i| i.contains(t))
    }
}

/// Which of `names` contain `now` (Alertmanager's `Intervener.Mutes`).
/// Unknown names are skipped (validation rejects them at load).
pub fn intervals_containing(
    intervals: &BTreeMap<String, NamedTimeInterval>,
    names: &[String],
    now: DateTime<Utc>,
) -> Vec<String> {
    names
        .iter()
        .filter(|n| intervals.get(*n).is_some_and(|i| i.contains(now)))
        .cloned()
        .collect()
}

struct Civil {
    minute_of_day: u32,
    weekday: i32,
    day: i32,
    month: i32,
    year: i32,
    days_in_month: i32,
}

fn civil<Tz: TimeZone>(t: DateTime<Tz>) -> Civil {
    let days_in_month = {
        let (y, m) = (t.year(), t.month());
        let next = if m == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, m + 1, 1)
        };
        next.and_then(|n| n.pred_opt())
            .map_or(31, |d| d.day() as i32)
    };
    Civil {
        minute_of_day: t.hour() * 60 + t.minute(),
        weekday: t.weekday().num_days_from_sunday() as i32,
        day: t.day() as i32,
        month: t.month() as i32,
        year: t.year(),
        days_in_month,
    }
}

impl TimeInterval {
    /// Whether the instant lies inside this interval.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let c = match self.location {
            None | Some(Location::Utc) => civil(t),
            Some(Location::Local) => civil(t.with_timezone(&Local)),
            Some(Location::Zone(tz)) => civil(t.with_timezone(&tz)),
        };
        if let Some(times) = &self.times
            && !times
                .iter()
                .any(|r| c.minute_of_day >= r.start_minute && c.minute_of_day < r.end_minute)
        {
            return false;
        }
        if let Some(days) = &self.days_of_month {
            let dim = c.days_in_month;
            let inside = days.iter().any(|r| {
                let begin = if r.begin < 0 {
                    dim + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { dim + r.end + 1 } else { r.end };
                if begin > dim {
                    return false;
                }
                let begin = begin.clamp(-dim, dim);
                let end = end.clamp(-dim, dim);
                c.day >= begin && c.day <= end
            });
            if !inside {
                return false;
            }
        }
        let within = |ranges: &Option<Vec<InclusiveRange>>, v: i32| {
            ranges
                .as_ref()
                .is_none_or(|rs| rs.iter().any(|r| v >= r.begin && v <= r.end))
        };
        within(&self.months, c.month)
            && within(&self.weekdays, c.weekday)
            && within(&self.years, c.year)
    }
}

/// The YAML form of one interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    /// `- start_time: "09:00"` / `end_time: "17:00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRangeConfig>>,
    /// `monday:friday`, `saturday`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<String>>,
    /// `1:5`, `-3:-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_of_month: Option<Vec<String>>,
    /// `january:march`, `12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<String>>,
    /// `2024:2026`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<Vec<String>>,
    /// `Europe/Berlin`, `UTC`, `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The YAML form of a time range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    /// `HH:MM`.
    #[serde(default)]
    pub start_time: String,
    /// `HH:MM`, up to `24:00`.
    #[serde(default)]
    pub end_time: String,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Field-level problem with its field name (`times`, `weekdays`, …) and
/// index, for error locations.
pub(crate) struct IntervalError {
    pub field: &'static str,
    pub index: Option<usize>,
    pub message: String,
}

impl TimeIntervalConfig {
    /// Validates and compiles, with Alertmanager's messages.
    pub(crate) fn compile(&self) -> Result<TimeInterval, IntervalError> {
        let err = |field, index, message: String| IntervalError {
            field,
            index: Some(index),
            message,
        };
        let times = match &self.times {
            None => None,
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, t)| parse_time_range(t).map_err(|m| err("times", i, m)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let ranges = |field: &'static str,
                      list: &Option<Vec<String>>,
                      parse: fn(&str) -> Result<InclusiveRange, String>| {
            list.as_ref()
                .map(|l| {
                    l.iter()
                        .enumerate()
                        .map(|(i, s)| parse(s).map_err(|m| err(field, i, m)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        let location = match self.location.as_deref() {
            None => None,
            Some(name) => Some(parse_location(name).map_err(|message| IntervalError {
                field: "location",
                index: None,
                message,
            })?),
        };
        Ok(TimeInterval {
            times,
            weekdays: ranges("weekdays", &self.weekdays, parse_weekday_range)?,
            days_of_month: ranges(
                "days_of_month",
                &self.days_of_month,
                parse_day_of_month_range,
            )?,
            months: ranges("months", &self.months, parse_month_range)?,
            years: ranges("years", &self.years, parse_year_range)?,
            location,
        })
    }
}

fn parse_location(name: &str) -> Result<Location, String> {
    match name {
        "" | "UTC" => Ok(Location::Utc),
        "Local" => Ok(Location::Local),
        _ => name
            .parse::<chrono_tz::Tz>()
            .map(Location::Zone)
            .map_err(|_| format!("unknown time zone {name}")),
    }
}

fn parse_clock(text: &str) -> Result<u32, String> {
    let invalid = || format!("couldn't parse timestamp {text}, invalid format");
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let (h, m) = text.split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    if h > 23 || m > 59 {
        return Err(invalid());
    }
    Ok(h * 60 + m)
}

fn parse_time_range(t: &TimeRangeConfig) -> Result<TimeRange, String> {
    if t.start_time.is_empty() || t.end_time.is_empty() {
        return Err("both start and end times must be provided".into());
    }
    let start = parse_clock(&t.start_time)?;
    let end = parse_clock(&t.end_time)?;
    if start >= end {
        return Err("start time cannot be equal or greater than end time".into());
    }
    Ok(TimeRange {
        start_minute: start,
        end_minute: end,
    })
}

/// Splits `a:b` or `a` after lowercasing, mapping members with `member`.
fn parse_range(
    text: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let lower = text.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {lower}, invalid format"));
        }
        Ok(InclusiveRange {
            begin: member(parts[0])?,
            end: member(parts[1])?,
        })
    } else {
        let v = member(&lower)?;
        Ok(InclusiveRange { begin: v, end: v })
    }
}

fn parse_int(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .map_err(|_| format!("strconv.Atoi: parsing {text:?}: invalid syntax"))
}

fn parse_weekday_range(text: &str) -> Result<InclusiveRange, String> {
    let r = parse_range(text, |s| {
        WEEKDAYS
            .iter()
            .position(|d| *d == s)
            .map(|p| p as i32)
            .ok_or_else(|| format!("{s} is not a valid weekday"))
    })?;
    if r.begin > r.end {
        return Err("start day cannot be before end day".into());
    }
    Ok(r)
}

fn parse_day_of_month_range(text: &str) -> Result<InclusiveRange, String> {
    let r = parse_range(text, parse_int)?;
    for v in [r.begin, r.end] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(format!("{v} is not a valid day of the month: out of range"));
        }
    }
    if r.begin < 0 && r.end > 0 {
        return Err("end day must be negative if start day is negative".into());
    }
    let check_begin = if r.begin < 0 { 28 + r.begin } else { r.begin };
    let check_end = if r.end < 0 { 28 + r.end } else { r.end };
    if check_begin > check_end {
        return Err(format!(
            "end day {} is always before start day {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

fn parse_month_range(text: &str) -> Result<InclusiveRange, String> {
    let r = parse_range(text, |s| match MONTHS.iter().position(|m| *m == s) {
        Some(p) => Ok(p as i32 + 1),
        None => s
            .parse::<i32>()
            .map_err(|_| format!("{s} is not a valid month")),
    })?;
    if r.begin > r.end {
        let name = |v: i32| {
            usize::try_from(v - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("")
        };
        return Err(format!(
            "end month {} is before start month {}",
            name(r.end),
            name(r.begin)
        ));
    }
    Ok(r)
}

fn parse_year_range(text: &str) -> Result<InclusiveRange, String> {
    let r = parse_range(text, parse_int)?;
    if r.begin > r.end {
        return Err(format!(
            "end year {} is before start year {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn compile(yaml: &str) -> TimeInterval {
        let cfg: TimeIntervalConfig = serde_norway::from_str(yaml).unwrap();
        cfg.compile().map_err(|e| e.message).unwrap()
    }

    #[test]
    fn business_hours() {
        let ti = compile(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\n",
        );
        // 2024-05-06 is a Monday.
        assert!(ti.contains(at(2024, 5, 6, 9, 0)));
        assert!(ti.contains(at(2024, 5, 6, 16, 59)));
        assert!(!ti.contains(at(2024, 5, 6, 17, 0)), "end is exclusive");
        assert!(!ti.contains(at(2024, 5, 5, 12, 0)), "sunday");
        assert!(!ti.contains(at(2024, 5, 11, 12, 0)), "saturday");
    }

    #[test]
    fn days_of_month_from_the_end_and_months_years() {
        let ti = compile("days_of_month: ['-3:-1']\nmonths: ['february']\nyears: ['2024']\n");
        assert!(ti.contains(at(2024, 2, 27, 0, 0)));
        assert!(ti.contains(at(2024, 2, 29, 23, 59)));
        assert!(!ti.contains(at(2024, 2, 26, 0, 0)));
        assert!(!ti.contains(at(2023, 2, 27, 0, 0)));
        assert!(!ti.contains(at(2024, 3, 30, 0, 0)));
        let ti = compile("days_of_month: ['1:5', '31']\n");
        assert!(ti.contains(at(2024, 4, 5, 0, 0)));
        assert!(!ti.contains(at(2024, 4, 6, 0, 0)));
        assert!(
            !ti.contains(at(2024, 4, 30, 0, 0)),
            "day 31 of a 30-day month never matches"
        );
        assert!(ti.contains(at(2024, 5, 31, 0, 0)));
    }

    #[test]
    fn location_shifts_the_clock() {
        let ti = compile(
            "times: [{start_time: '09:00', end_time: '10:00'}]\nlocation: 'Europe/Berlin'\n",
        );
        // 07:30 UTC is 09:30 in Berlin in summer (CEST, +2).
        assert!(ti.contains(at(2024, 7, 1, 7, 30)));
        assert!(!ti.contains(at(2024, 7, 1, 9, 30)));
        // 08:30 UTC is 09:30 in winter (CET, +1).
        assert!(ti.contains(at(2024, 1, 15, 8, 30)));
    }

    #[test]
    fn empty_list_matches_nothing_and_absent_matches_all() {
        assert!(!compile("times: []\n").contains(at(2024, 1, 1, 0, 0)));
        assert!(compile("{}").contains(at(2024, 1, 1, 0, 0)));
        assert!(
            compile("times: [{start_time: '00:00', end_time: '24:00'}]\n")
                .contains(at(2024, 1, 1, 23, 59))
        );
    }

    #[test]
    fn rejects_what_alertmanager_rejects() {
        let bad = |yaml: &str| {
            let cfg: TimeIntervalConfig = serde_norway::from_str(yaml).unwrap();
            cfg.compile().err().map(|e| e.message).unwrap_or_default()
        };
        assert_eq!(
            bad("weekdays: ['friday:monday']\n"),
            "start day cannot be before end day"
        );
        assert_eq!(
            bad("weekdays: ['funday']\n"),
            "funday is not a valid weekday"
        );
        assert_eq!(
            bad("times: [{start_time: '10:00', end_time: '09:00'}]\n"),
            "start time cannot be equal or greater than end time"
        );
        assert_eq!(
            bad("times: [{start_time: '25:00', end_time: '26:00'}]\n"),
            "couldn't parse timestamp 25:00, invalid format"
        );
        assert_eq!(
            bad("days_of_month: ['0']\n"),
            "0 is not a valid day of the month: out of range"
        );
        assert_eq!(
            bad("days_of_month: ['-1:5']\n"),
            "end day must be negative if start day is negative"
        );
        assert_eq!(
            bad("months: ['march:january']\n"),
            "end month january is before start month march"
        );
        assert_eq!(
            bad("years: ['2025:2024']\n"),
            "end year 2024 is before start year 2025"
        );
        assert_eq!(
            bad("location: 'Mars/Olympus'\n"),
            "unknown time zone Mars/Olympus"
        );
    }
}
