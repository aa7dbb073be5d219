//! Durations and timestamps in the text forms Alertmanager reads and writes.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};

/// Parses a Prometheus duration (`model.ParseDuration`): `0`, or unit terms
/// in the order `y w d h m s ms`, e.g. `1h30m`, `10s`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text {
        "0" => return Ok(Duration::ZERO),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let invalid = || format!("not a valid duration string: {text:?}");
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        // `ms` must be tried before `m`.
        let unit_len = if rest.starts_with("ms") {
            2
        } else {
            rest.chars().next().map_or(0, char::len_utf8)
        };
        let unit = &rest[..unit_len];
        let Some(pos) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
            return Err(invalid());
        };
        let (_, millis) = UNITS[next_unit + pos];
        next_unit += pos + 1;
        rest = &rest[unit_len..];
        total = number
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= i64::MAX as u64 / 1_000_000)
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(Duration::from_millis(total))
}

/// Parses a Go `time.Duration` string (`1m30s`, `1.5s`, `300ms`, `2h45m`),
/// as yaml.v2 does for plain `time.Duration` fields (`timeout:`); falls back
/// to the Prometheus form so `1d` is accepted too.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if let Ok(d) = parse_duration(text) {
        return Ok(d);
    }
    let invalid = || format!("time: invalid duration {text:?}");
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..len].parse().map_err(|_| invalid())?;
        rest = &rest[len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        nanos += number * scale;
    }
    if !nanos.is_finite() || nanos > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// `model.Duration.String()`: largest units first, years and weeks only
/// when exact (`90d`, not `12w6d`); `0s` for zero.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut term = |unit: &str, mult: u64, exact: bool| {
        if exact && !ms.is_multiple_of(mult) {
            return;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    };
    term("y", 365 * 24 * 3_600_000, true);
    term("w", 7 * 24 * 3_600_000, true);
    term("d", 24 * 3_600_000, false);
    term("h", 3_600_000, false);
    term("m", 60_000, false);
    term("s", 1_000, false);
    term("ms", 1, false);
    out
}

/// A std duration as a chrono delta (saturating; config durations are far
/// below the limit).
pub fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Go's RFC 3339 with nanoseconds and trailing zeros trimmed, as
/// `encoding/json` writes a `time.Time` (webhook payloads). `None` is Go's
/// zero time.
pub fn rfc3339_nano(t: Option<&DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".into();
    };
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// RFC 3339 with exactly three fraction digits, as go-openapi's
/// `strfmt.DateTime` writes API v2 timestamps.
pub fn rfc3339_millis(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp into UTC.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid timestamp {text:?}: {e}"))
}

/// serde helpers writing timestamps in Go's JSON form.
pub(crate) mod go_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_nano(Some(t)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }

    /// `Option<DateTime>` where `None` is Go's zero time.
    pub mod opt {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::super::rfc3339_nano(t.as_ref()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let text: Option<String> = Option::deserialize(d)?;
            match text.as_deref() {
                None | Some("") | Some("0001-01-01T00:00:00Z") => Ok(None),
                Some(t) => super::super::parse_rfc3339(t)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

/// serde helpers writing timestamps as the v2 API does (millisecond
/// precision).
pub(crate) mod api_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_millis(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m100ms"), Ok(Duration::from_millis(60_100)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("30m1h").is_err(), "units out of order");
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-5m").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_go_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_go_duration("abc").is_err());
    }

    #[test]
    fn duration_strings() {
        assert_eq!(format_duration(Duration::from_secs(4 * 3600)), "4h");
        assert_eq!(format_duration(Duration::from_secs(90 * 86400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86400)), "2w");
        assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn go_time_text() {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 3).unwrap();
        assert_eq!(rfc3339_nano(Some(&t)), "2024-05-01T12:00:03Z");
        let t2 = t + TimeDelta::milliseconds(500);
        assert_eq!(rfc3339_nano(Some(&t2)), "2024-05-01T12:00:03.5Z");
        assert_eq!(rfc3339_millis(&t2), "2024-05-01T12:00:03.500Z");
        assert_eq!(rfc3339_nano(None), "0001-01-01T00:00:00Z");
    }
}
