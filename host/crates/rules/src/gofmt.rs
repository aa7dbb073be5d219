//! Go's text renderings that Prometheus' output is made of: `strconv`'s
//! float formats, `strconv.Quote`, `time.Duration.String`,
//! `model.Duration` (parse and print) and `time.Time.String`.
//!
//! Rule files, alert annotations and promtool's messages are compared as
//! text by the people who migrate to lookout, so these follow Go exactly
//! rather than Rust's own formatting.

use chrono::{DateTime, SecondsFormat, Utc};

/// Decimal digits and exponent of a float, as Go's `strconv` sees it:
/// the value is `0.d1d2d3... × 10^dp`.
struct Digits {
    digits: Vec<u8>,
    dp: i32,
}

/// The shortest digits that round-trip (`prec == None`), or the value
/// rounded to `prec` significant digits. `v` must be finite and not zero.
fn digits(v: f64, prec: Option<usize>) -> Digits {
    let s = match prec {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
    };
    let (mant, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let mut digits: Vec<u8> = mant.bytes().filter(|b| b.is_ascii_digit()).collect();
    if prec.is_none() {
        while digits.len() > 1 && digits.last() == Some(&b'0') {
            digits.pop();
        }
    }
    Digits {
        digits,
        dp: exp + 1,
    }
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn fmt_e_digits(neg: bool, d: &Digits, frac_digits: usize, upper: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let first = d.digits.first().copied().unwrap_or(b'0');
    s.push(first as char);
    if frac_digits > 0 {
        s.push('.');
        for i in 1..=frac_digits {
            s.push(d.digits.get(i).copied().unwrap_or(b'0') as char);
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    let exp = if d.digits.iter().all(|&c| c == b'0') {
        0
    } else {
        d.dp - 1
    };
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f_digits(neg: bool, d: &Digits, frac_digits: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if d.dp > 0 {
        for i in 0..d.dp as usize {
            s.push(d.digits.get(i).copied().unwrap_or(b'0') as char);
        }
    } else {
        s.push('0');
    }
    if frac_digits > 0 {
        s.push('.');
        for i in 0..frac_digits as i32 {
            let idx = d.dp + i;
            let c = if idx < 0 {
                b'0'
            } else {
                d.digits.get(idx as usize).copied().unwrap_or(b'0')
            };
            s.push(c as char);
        }
    }
    s
}

/// Go's `strconv.FormatFloat(v, 'g' or 'G', prec, 64)`; `prec == None` is -1
/// (shortest), which is also what `fmt` prints for `%v`.
pub fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        let z = "0";
        return if neg { format!("-{z}") } else { z.to_string() };
    }
    let prec = prec.map(|p| p.max(1));
    let d = digits(v, prec);
    let nd = d.digits.len() as i32;
    let mut eprec = prec.map(|p| p as i32).unwrap_or(nd);
    if eprec > nd && nd >= d.dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = d.dp - 1;
    if exp < -4 || exp >= eprec {
        // %e with the digits we have, trailing zeros dropped.
        let mut dd = d;
        while dd.digits.len() > 1 && dd.digits.last() == Some(&b'0') {
            dd.digits.pop();
        }
        let frac = dd.digits.len() - 1;
        return fmt_e_digits(neg, &dd, frac, upper);
    }
    let mut dd = d;
    while dd.digits.len() as i32 > dd.dp.max(1) && dd.digits.last() == Some(&b'0') {
        dd.digits.pop();
    }
    let frac = (dd.digits.len() as i32 - dd.dp).max(0) as usize;
    fmt_f_digits(neg, &dd, frac)
}

/// Go's `strconv.FormatFloat(v, 'e' or 'E', prec, 64)`; `None` is shortest.
pub fn format_e(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        let d = Digits {
            digits: vec![b'0'],
            dp: 1,
        };
        return fmt_e_digits(neg, &d, prec.unwrap_or(0), upper);
    }
    match prec {
        None => {
            let d = digits(v, None);
            let frac = d.digits.len() - 1;
            fmt_e_digits(neg, &d, frac, upper)
        }
        Some(p) => {
            let d = digits(v, Some(p + 1));
            fmt_e_digits(neg, &d, p, upper)
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', prec, 64)`; `None` is shortest.
pub fn format_f(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    match prec {
        Some(p) => {
            let s = format!("{:.*}", p, v);
            // Rust prints -0.00 for small negatives as Go does; keep it.
            s
        }
        None => {
            if v == 0.0 {
                return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
            }
            let d = digits(v, None);
            let frac = (d.digits.len() as i32 - d.dp).max(0) as usize;
            fmt_f_digits(v.is_sign_negative(), &d, frac)
        }
    }
}

/// What Go's `fmt` prints for a float64 with `%v` (and `print`).
pub fn format_float_v(v: f64) -> String {
    format_g(v, None, false)
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let u = c as u32;
                if u <= 0xffff {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()` of a duration given in milliseconds
/// (`1h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`).
pub fn go_duration(ms: i64) -> String {
    go_duration_ns(ms as i128 * 1_000_000)
}

fn go_duration_ns(ns: i128) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut s = String::new();
    if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1u128)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        s.push_str(&frac_str(u, div));
        s.push_str(unit);
    } else {
        let secs_total = u / 1_000_000_000;
        let frac_ns = u % 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total / 60) % 60;
        let sec = secs_total % 60;
        if h > 0 {
            s.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&frac_str(sec * 1_000_000_000 + frac_ns, 1_000_000_000));
        s.push('s');
    }
    if neg { format!("-{s}") } else { s }
}

fn frac_str(v: u128, div: u128) -> String {
    let int = v / div;
    let mut frac = v % div;
    if frac == 0 {
        return int.to_string();
    }
    let mut width = div.to_string().len() - 1;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    format!("{int}.{frac:0width$}")
}

/// Prometheus' `model.Duration.String()` of a duration in milliseconds
/// (`5m`, `1h30m`, `1d`, `2w`, `0s`).
pub fn model_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut r = String::new();
    let mut ms = ms;
    if ms < 0 {
        r.push('-');
        ms = -ms;
    }
    let mut f = |unit: &str, mult: i64, exact: bool| {
        if exact && ms % mult != 0 {
            return;
        }
        let v = ms / mult;
        if v > 0 {
            r.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    };
    f("y", 1000 * 60 * 60 * 24 * 365, true);
    f("w", 1000 * 60 * 60 * 24 * 7, true);
    f("d", 1000 * 60 * 60 * 24, false);
    f("h", 1000 * 60 * 60, false);
    f("m", 1000 * 60, false);
    f("s", 1000, false);
    f("ms", 1, false);
    r
}

/// Prometheus' `model.ParseDuration`: `[0-9]+(y|w|d|h|m|s|ms)` units in that
/// order, or a bare `0`. Returns milliseconds.
pub fn parse_model_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365),
        ("w", 1000 * 60 * 60 * 24 * 7),
        ("d", 1000 * 60 * 60 * 24),
        ("h", 1000 * 60 * 60),
        ("m", 1000 * 60),
        ("s", 1000),
        ("ms", 1),
    ];
    let invalid = || format!("not a valid duration string: {}", quote(s));
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if start == pos {
            return Err(invalid());
        }
        let num: i64 = s[start..pos]
            .parse()
            .map_err(|_| "duration out of range".to_string())?;
        let rest = &s[pos..];
        // "ms" must be tried before "m".
        let mut found = None;
        for (i, (u, mult)) in UNITS.iter().enumerate().skip(next_unit) {
            let matches = if *u == "m" {
                rest.starts_with('m') && !rest.starts_with("ms")
            } else {
                rest.starts_with(u)
            };
            if matches {
                found = Some((i, u.len(), *mult));
                break;
            }
        }
        let Some((i, len, mult)) = found else {
            return Err(invalid());
        };
        pos += len;
        next_unit = i + 1;
        total = num
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    if total > i64::MAX / 1_000_000 {
        return Err("duration out of range".to_string());
    }
    Ok(total)
}

/// Go's `time.Time.String()` for a UTC instant given in nanoseconds:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) else {
        return format!("{ns}ns");
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if nanos != 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's JSON rendering of a `time.Time` (RFC 3339 with nanoseconds,
/// trailing zeros dropped), as Prometheus' API prints `activeAt`.
pub fn rfc3339_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => {
            let mut s = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            // Go's RFC3339Nano drops trailing zeros of the fraction.
            if let Some(dot) = s.rfind('.') {
                let frac = s[dot + 1..s.len() - 1].trim_end_matches('0').to_string();
                s.truncate(dot);
                if !frac.is_empty() {
                    s.push('.');
                    s.push_str(&frac);
                }
                s.push('Z');
            }
            s
        }
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_formats_like_go() {
        // Values checked against Go's fmt.Sprintf.
        assert_eq!(format_g(1234.5678, Some(4), false), "1235");
        assert_eq!(format_g(12345.0, Some(4), false), "1.234e+04");
        assert_eq!(format_g(100.0, Some(4), false), "100");
        assert_eq!(format_g(1.5, Some(4), false), "1.5");
        assert_eq!(format_g(0.0001234, Some(4), false), "0.0001234");
        assert_eq!(format_g(0.00001234, Some(4), false), "1.234e-05");
        assert_eq!(format_g(0.0, Some(4), false), "0");
        assert_eq!(format_g(f64::INFINITY, Some(4), false), "+Inf");
        assert_eq!(format_g(f64::NAN, Some(4), false), "NaN");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(123456.0), "123456");
        assert_eq!(format_float_v(123456789.0), "1.23456789e+08");
        assert_eq!(format_float_v(0.5), "0.5");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(3.0), "3");
        assert_eq!(format_float_v(-2.25), "-2.25");
    }

    #[test]
    fn e_and_f_format_like_go() {
        assert_eq!(format_e(1.0, None, false), "1e+00");
        assert_eq!(format_e(0.25, None, false), "2.5e-01");
        assert_eq!(format_e(12345.678, None, true), "1.2345678E+04");
        assert_eq!(format_e(1234.5678, Some(2), false), "1.23e+03");
        assert_eq!(format_e(0.0, None, false), "0e+00");
        assert_eq!(format_e(1e100, None, false), "1e+100");
        assert_eq!(format_f(1.005, Some(2)), "1.00");
        assert_eq!(format_f(2.5, None), "2.5");
        assert_eq!(format_f(1e21, None), "1000000000000000000000");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(600_000), "10m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(model_duration(0), "0s");
        assert_eq!(model_duration(600_000), "10m");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(model_duration(86_400_000), "1d");
        assert_eq!(model_duration(14 * 86_400_000), "2w");
        assert_eq!(model_duration(90 * 86_400_000), "90d");
    }

    #[test]
    fn model_durations_parse() {
        assert_eq!(parse_model_duration("5m"), Ok(300_000));
        assert_eq!(parse_model_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_model_duration("100ms"), Ok(100));
        assert_eq!(parse_model_duration("1m5s10ms"), Ok(65_010));
        assert_eq!(parse_model_duration("0"), Ok(0));
        assert_eq!(parse_model_duration("1w"), Ok(604_800_000));
        assert!(parse_model_duration("").is_err());
        assert_eq!(
            parse_model_duration("5").unwrap_err(),
            "not a valid duration string: \"5\""
        );
        assert!(parse_model_duration("5m1h").is_err());
        assert!(parse_model_duration("1.5h").is_err());
        assert!(parse_model_duration("-5m").is_err());
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(go_time_string_ns(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string_ns(1_500_000_000),
            "1970-01-01 00:00:01.5 +0000 UTC"
        );
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
    }
}
