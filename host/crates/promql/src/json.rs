//! Results rendered as the `data` object of Prometheus' query API.

use serde_json::Value as Json;

use crate::{Labels, Value};

/// Prometheus' `data` object for a query result, as JSON text, written
/// straight into a string: a 24 h range of 100 series is ~576k points, and
/// building a `serde_json::Value` tree for them costs more than the query.
pub fn value_json_text(v: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match v {
        Value::Scalar(t, v) => {
            out.push_str(r#"{"resultType":"scalar","result":["#);
            push_time(&mut out, *t);
            out.push(',');
            push_str(&mut out, &format_decimal(*v));
            out.push_str("]}");
        }
        Value::String(t, s) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            push_time(&mut out, *t);
            out.push(',');
            push_str(&mut out, s);
            out.push_str("]}");
        }
        Value::Vector(samples) => {
            out.reserve(samples.len() * 96);
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_metric(&mut out, &s.labels);
                out.push_str(r#","value":["#);
                push_time(&mut out, s.t);
                out.push(',');
                push_str(&mut out, &format_sample(s.v));
                out.push_str("]}");
            }
            out.push_str("]}");
        }
        Value::Matrix(series) => {
            out.reserve(series.iter().map(|s| s.samples.len() * 24 + 64).sum());
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_metric(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (t, v)) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push('[');
                    push_time(&mut out, *t);
                    out.push_str(",\"");
                    // Sample values never need escaping.
                    let _ = write!(out, "{}", FormattedSample(*v));
                    out.push_str("\"]");
                }
                out.push_str("]}");
            }
            out.push_str("]}");
        }
    }
    out
}

/// The same object as a `serde_json::Value` (tests, tools).
pub fn value_to_json(v: &Value) -> Json {
    serde_json::from_str(&value_json_text(v)).expect("value_json_text writes valid JSON")
}

fn push_metric(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

/// A JSON string literal.
fn push_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Milliseconds as JSON seconds. Whole seconds stay integers, as in
/// Prometheus' output (`1700000000`, `1700000000.5`).
fn push_time(out: &mut String, t_ms: i64) {
    use std::fmt::Write;
    if t_ms % 1000 == 0 {
        let _ = write!(out, "{}", t_ms / 1000);
    } else {
        let _ = write!(out, "{}", t_ms as f64 / 1000.0);
    }
}

/// [`format_sample`] without the intermediate `String` for the common case.
struct FormattedSample(f64);

impl std::fmt::Display for FormattedSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        let abs = v.abs();
        if !(v.is_finite() && (abs == 0.0 || (1e-6..1e21).contains(&abs))) {
            return f.write_str(&format_sample(v));
        }
        match short_decimal(v) {
            Some((units, decimals)) => write_scaled(f, units, decimals),
            None => write!(f, "{v}"),
        }
    }
}

/// Most samples are integers or have a few decimals (what exporters print).
/// For those the shortest round-trip form is found exactly and cheaply: the
/// fewest decimals `d` whose rounding `n / 10^d` is `v` itself. Both `n` and
/// `10^d` are exact in f64 (below 2^53), so the division is correctly
/// rounded just like parsing the decimal text would be. Anything else takes
/// the general shortest-digits path.
fn short_decimal(v: f64) -> Option<(i64, u32)> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if v == 0.0 {
        return None; // keeps -0's sign on the general path
    }
    let mut scale = 1.0;
    for decimals in 0..=4u32 {
        let scaled = v * scale;
        if scaled.abs() >= LIMIT {
            return None;
        }
        let n = scaled.round();
        if n / scale == v {
            return Some((n as i64, decimals));
        }
        scale *= 10.0;
    }
    None
}

/// `units / 10^decimals` in decimal, trailing zeros already impossible
/// (the fewest decimals were chosen).
fn write_scaled(f: &mut std::fmt::Formatter<'_>, units: i64, decimals: u32) -> std::fmt::Result {
    if decimals == 0 {
        return write!(f, "{units}");
    }
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let pow = 10u64.pow(decimals);
    write!(
        f,
        "{sign}{}.{:0width$}",
        abs / pow,
        abs % pow,
        width = decimals as usize
    )
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(crate) fn format_decimal(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's `Display` is the shortest round-trip form without exponent,
        // exactly what Go's 'f' with precision -1 gives.
        format!("{v}")
    }
}

/// Prometheus' `jsonutil.MarshalValue`: exponent form for tiny and huge
/// magnitudes, decimal otherwise.
pub(crate) fn format_sample(v: f64) -> String {
    let abs = v.abs();
    if v.is_finite() && abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e' with precision -1: shortest digits, exponent with a sign
        // and at least two digits ("1e-07", "1.5e+21").
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form has an e");
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format_decimal(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstantSample, Series};
    use serde_json::json;

    #[test]
    fn the_fast_decimal_path_agrees_with_the_general_one() {
        let mut x = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values = vec![
            0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1.05, 21.5, 1e15, 123456.789, 0.0001, 0.00015,
            42.42,
        ];
        for _ in 0..20_000 {
            let r = next();
            values.push((r % 2_000_000) as f64 / 100.0 - 10_000.0);
            values.push((r % 1_000_000_007) as f64 / 10_000.0);
            values.push(f64::from_bits(0x3ff0_0000_0000_0000 | (r >> 12)));
        }
        for v in values {
            assert_eq!(format!("{}", FormattedSample(v)), format_sample(v), "{v:?}");
        }
    }

    #[test]
    fn floats_format_like_prometheus() {
        assert_eq!(format_sample(1.0), "1");
        assert_eq!(format_sample(0.1), "0.1");
        assert_eq!(format_sample(-2.5), "-2.5");
        assert_eq!(format_sample(f64::NAN), "NaN");
        assert_eq!(format_sample(f64::INFINITY), "+Inf");
        assert_eq!(format_sample(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_sample(1e21), "1e+21");
        assert_eq!(format_sample(1.5e300), "1.5e+300");
        assert_eq!(format_sample(1e-7), "1e-07");
        assert_eq!(format_sample(-1.25e-10), "-1.25e-10");
        assert_eq!(format_sample(1e-6), "0.000001");
        assert_eq!(
            format_sample(123456789012345680000.0),
            "123456789012345680000"
        );
        assert_eq!(format_sample(0.0), "0");
        assert_eq!(format_decimal(1e21), "1000000000000000000000");
    }

    #[test]
    fn envelopes_have_prometheus_shape() {
        let v = Value::Vector(vec![InstantSample {
            labels: vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
            t: 1_700_000_000_123,
            v: 1.5,
        }]);
        assert_eq!(
            value_to_json(&v),
            json!({"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.123,"1.5"]}]})
        );
        let m = Value::Matrix(vec![Series {
            labels: vec![],
            samples: vec![(1000, 2.0), (2500, f64::NAN)],
        }]);
        assert_eq!(
            value_to_json(&m),
            json!({"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"],[2.5,"NaN"]]}]})
        );
        assert_eq!(
            value_to_json(&Value::Scalar(0, 1e21)),
            json!({"resultType":"scalar","result":[0,"1000000000000000000000"]})
        );
        assert_eq!(
            value_to_json(&Value::String(1000, "a".into())),
            json!({"resultType":"string","result":[1,"a"]})
        );
    }
}
