//! Results rendered as the `data` object of Prometheus' query API.

use serde_json::Value as Json;

use crate::{Labels, Value};

/// Prometheus' `data` object for a query result, as JSON text, written
/// straight into a string: a 24 h range of 100 series is ~576k points, and
/// building a `serde_json::Value` tree for them costs more than the query.
pub fn value_json_text(v: &Value) -> String {
    let mut out = String::new();
    write_value_json(&mut out, v);
    out
}

/// [`value_json_text`] appended to `out` (to wrap it in an envelope
/// without copying).
pub fn write_value_json(out: &mut String, v: &Value) {
    // Bytes while writing: digits go in without per-push UTF-8 checks.
    let mut buf = std::mem::take(out).into_bytes();
    write_value(&mut buf, v);
    *out = String::from_utf8(buf).expect("JSON is written from str and ASCII");
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Scalar(t, v) => {
            out.extend_from_slice(br#"{"resultType":"scalar","result":["#);
            push_time_to(out, *t);
            out.push(b',');
            push_str(out, &format_decimal(*v));
            out.extend_from_slice(b"]}");
        }
        Value::String(t, s) => {
            out.extend_from_slice(br#"{"resultType":"string","result":["#);
            push_time_to(out, *t);
            out.push(b',');
            push_str(out, s);
            out.extend_from_slice(b"]}");
        }
        Value::Vector(samples) => {
            out.reserve(samples.len() * 96);
            out.extend_from_slice(br#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                push_metric(out, &s.labels);
                out.extend_from_slice(br#","value":["#);
                push_time_to(out, s.t);
                out.push(b',');
                push_str(out, &format_sample(s.v));
                out.extend_from_slice(b"]}");
            }
            out.extend_from_slice(b"]}");
        }
        Value::Matrix(series) => {
            out.reserve(series.iter().map(|s| s.samples.len() * 24 + 64).sum());
            out.extend_from_slice(br#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                push_metric(out, &s.labels);
                out.extend_from_slice(br#","values":["#);
                let mut decimals = 0;
                let mut times = StepTimes::default();
                for (j, (t, v)) in s.samples.iter().enumerate() {
                    let base = out.len();
                    out.resize(base + SCRATCH_LEN, 0);
                    let mut point = Scratch::over(&mut out[base..]);
                    if j > 0 {
                        point.push(b',');
                    }
                    point.push(b'[');
                    times.push(&mut point, *t);
                    point.extend(b",\"");
                    // Sample values never need escaping.
                    push_sample(&mut point, *v, &mut decimals);
                    point.extend(b"\"]");
                    let len = point.len;
                    out.truncate(base + len);
                }
                out.extend_from_slice(b"]}");
            }
            out.extend_from_slice(b"]}");
        }
    }
}

/// The same object as a `serde_json::Value` (tests, tools).
pub fn value_to_json(v: &Value) -> Json {
    serde_json::from_str(&value_json_text(v)).expect("value_json_text writes valid JSON")
}

fn push_metric(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, k);
        out.push(b':');
        push_str(out, v);
    }
    out.push(b'}');
}

/// A JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            // Bytes of multi-byte characters are all >= 0x80: copied whole.
            b => out.push(b),
        }
    }
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Longest point: a 21-character time and a 26-character value with
/// punctuation.
const SCRATCH_LEN: usize = 64;

/// Where one number or point is written byte by byte: straight into the
/// output's tail, so no `Vec` push or `memcpy` call per digit or piece
/// (those cost more than the formatting itself).
struct Scratch<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl Scratch<'_> {
    fn over(bytes: &mut [u8]) -> Scratch<'_> {
        Scratch { bytes, len: 0 }
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    #[cfg(test)]
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn push_time_to(out: &mut Vec<u8>, t_ms: i64) {
    let base = out.len();
    out.resize(base + SCRATCH_LEN, 0);
    let mut time = Scratch::over(&mut out[base..]);
    push_time(&mut time, t_ms);
    let len = time.len;
    out.truncate(base + len);
}

/// Milliseconds as JSON seconds. Whole seconds stay integers, as in
/// Prometheus' output (`1700000000`, `1700000000.5`).
fn push_time(out: &mut Scratch, t_ms: i64) {
    // Below 10^15 ms, "seconds.millis" with trailing zeros trimmed is the
    // shortest form that reads back as t_ms / 1000.0 (doubles there are far
    // closer together than 0.001).
    if t_ms.unsigned_abs() >= 1_000_000_000_000_000 {
        out.extend((t_ms as f64 / 1000.0).to_string().as_bytes());
        return;
    }
    if t_ms < 0 {
        out.push(b'-');
    }
    let abs = t_ms.unsigned_abs();
    push_u64(out, abs / 1000);
    push_fraction(out, abs % 1000, 3);
}

/// The times of one range series: consecutive steps share all but their
/// last few digits, so those are written once and copied.
#[derive(Default)]
struct StepTimes {
    /// Whole seconds / 10^4 of the last time written, and its digits.
    high: Option<u64>,
    high_digits: [u8; 20],
    high_len: usize,
}

impl StepTimes {
    fn push(&mut self, out: &mut Scratch, t_ms: i64) {
        // Whole seconds from 10^4 s (1970-01-01T02:46:40Z) on; anything
        // else the general way.
        if t_ms % 1000 != 0 || !(10_000_000..1_000_000_000_000_000).contains(&t_ms) {
            return push_time(out, t_ms);
        }
        let secs = (t_ms / 1000) as u64;
        let (high, low) = (secs / 10_000, secs % 10_000);
        if self.high != Some(high) {
            let mut digits = Scratch::over(&mut self.high_digits);
            push_u64(&mut digits, high);
            self.high_len = digits.len;
            self.high = Some(high);
        }
        out.extend(&self.high_digits[..self.high_len]);
        push_digits(out, low, 4);
    }
}

/// `.ddd` for `frac` with `width` digits, trailing zeros dropped; nothing
/// when `frac` is zero.
fn push_fraction(out: &mut Scratch, mut frac: u64, mut width: u32) {
    if frac == 0 {
        return;
    }
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    out.push(b'.');
    let end = out.len + width as usize;
    for at in (out.len..end).rev() {
        out.bytes[at] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.len = end;
}

/// "00" to "99", for writing integers two digits at a time.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// `n` (below 10^4) as exactly `width` (at most 4) digits, zero-padded.
fn push_digits(out: &mut Scratch, n: u64, width: usize) {
    let n = n as usize;
    let mut four = [0u8; 4];
    four[..2].copy_from_slice(&DIGIT_PAIRS[n / 100 * 2..n / 100 * 2 + 2]);
    four[2..].copy_from_slice(&DIGIT_PAIRS[n % 100 * 2..n % 100 * 2 + 2]);
    out.extend(&four[4 - width..]);
}

/// An unsigned integer in decimal, without `core::fmt`'s machinery (this
/// runs twice per point of a range result).
fn push_u64(out: &mut Scratch, mut n: u64) {
    let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut at = out.len + digits;
    out.len = at;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        out.bytes[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        out.bytes[at - 2..at].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        out.bytes[at - 1] = b'0' + n as u8;
    }
}

/// [`format_sample`] written in place, with a fast path for the common
/// case. `decimals` carries the previous value's decimal count, which the
/// next value of the same series usually shares.
fn push_sample(out: &mut Scratch, v: f64, decimals: &mut u32) {
    let abs = v.abs();
    if v.is_finite()
        && (1e-6..1e21).contains(&abs)
        && let Some((units, d)) = short_decimal(v, *decimals)
    {
        *decimals = d;
        if units < 0 {
            out.push(b'-');
        }
        let abs = units.unsigned_abs();
        // Constant divisors: a division by a variable is the slowest
        // instruction here.
        let (whole, fraction) = match d {
            0 => (abs, 0),
            1 => (abs / 10, abs % 10),
            2 => (abs / 100, abs % 100),
            3 => (abs / 1000, abs % 1000),
            _ => (abs / 10_000, abs % 10_000),
        };
        push_u64(out, whole);
        if d > 0 {
            // The fewest decimals: the last digit is never 0.
            out.push(b'.');
            push_digits(out, fraction, d as usize);
        }
        return;
    }
    out.extend(format_sample(v).as_bytes());
}

const MAX_DECIMALS: u32 = 4;
const POW10: [f64; MAX_DECIMALS as usize + 1] = [1.0, 10.0, 100.0, 1000.0, 10000.0];

/// Most samples are integers or have a few decimals (what exporters print).
/// For those the shortest round-trip form is found exactly and cheaply: the
/// fewest decimals `d` whose rounding `n / 10^d` is `v` itself. Both `n` and
/// `10^d` are exact in f64, so the division is correctly
/// rounded just like parsing the decimal text would be. Anything else takes
/// the general shortest-digits path.
///
/// `hint` is tried first: a match there whose last digit is not 0 is the
/// fewest. (Had `m / 10^d'` matched for some `d' < hint`, `v * 10^hint`
/// would round to `m * 10^(hint - d')` — the error stays below 0.5 while
/// `|v * 10^hint| < 2^50` — and end in 0.)
fn short_decimal(v: f64, hint: u32) -> Option<(i64, u32)> {
    // Below 2^51 doubles near `v * 10^d` are under 0.5 apart, so at most
    // one `n` matches: the shortest form has no other candidate to prefer.
    const LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51
    const HINT_LIMIT: f64 = 1_125_899_906_842_624.0; // 2^50
    if v == 0.0 {
        return None; // keeps -0's sign on the general path
    }
    if (1..=MAX_DECIMALS).contains(&hint)
        && let Some(n) = decimal_units(v, hint, HINT_LIMIT)
        && n % 10 != 0
    {
        return Some((n, hint));
    }
    (0..=MAX_DECIMALS).find_map(|d| decimal_units(v, d, LIMIT).map(|n| (n, d)))
}

/// `n` with `n / 10^decimals == v` exactly, if there is one below `limit`.
fn decimal_units(v: f64, decimals: u32, limit: f64) -> Option<i64> {
    let scale = POW10[decimals as usize];
    let scaled = v * scale;
    if scaled.abs() >= limit {
        return None;
    }
    // Round half away from zero without a libm call; a wrong guess only at
    // exact halves, where `n / scale == v` cannot hold anyway.
    let n = (scaled + 0.5f64.copysign(scaled)) as i64;
    (n as f64 / scale == v).then_some(n)
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
        for _ in 0..2_000 {
            // Near the limits of the exact-decimal reasoning.
            let r = next();
            values.push((r % (1 << 53)) as f64 / 10_000.0);
            values.push((r % (1 << 51)) as f64 / 1_000.0);
            values.push((r % 1000) as f64 * 1e-6);
        }
        for v in values {
            // Whatever the previous value of the series left as the hint.
            for hint in 0..=MAX_DECIMALS + 1 {
                let mut bytes = [0u8; SCRATCH_LEN];
                let mut out = Scratch::over(&mut bytes);
                push_sample(&mut out, v, &mut { hint });
                assert_eq!(
                    std::str::from_utf8(out.as_bytes()).unwrap(),
                    format_sample(v),
                    "{v:?} {hint}"
                );
            }
        }
    }

    #[test]
    fn timestamps_write_as_the_shortest_seconds() {
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for t in [
                (x % 4_000_000_000_000) as i64 - 2_000_000_000_000,
                (x % 1_000) as i64 - 500,
                (x % 100_000) as i64 * 1000,
            ] {
                let mut bytes = [0u8; SCRATCH_LEN];
                let mut out = Scratch::over(&mut bytes);
                push_time(&mut out, t);
                let out = std::str::from_utf8(out.as_bytes()).unwrap();
                let expected = if t % 1000 == 0 {
                    (t / 1000).to_string()
                } else {
                    (t as f64 / 1000.0).to_string()
                };
                assert_eq!(out, expected, "{t}");
            }
        }
    }

    #[test]
    fn step_times_write_what_push_time_writes() {
        let mut times = StepTimes::default();
        let mut t = 9_000_000;
        while t < 40_000_000 {
            let (mut a, mut b) = ([0u8; SCRATCH_LEN], [0u8; SCRATCH_LEN]);
            let (mut a, mut b) = (Scratch::over(&mut a), Scratch::over(&mut b));
            times.push(&mut a, t);
            push_time(&mut b, t);
            assert_eq!(a.as_bytes(), b.as_bytes(), "{t}");
            t += 7_000 + (t % 3) * 500;
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
