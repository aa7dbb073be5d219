//! promtool's series notation: `metric{label="value"} 1+2x3 _ stale`.
//!
//! The values use Prometheus' expanding notation:
//!
//! | written | expands to |
//! |---|---|
//! | `a` | `a` |
//! | `axN` | `a` repeated N+1 times |
//! | `a+bxN` | `a a+b a+2b … a+Nb` (N+1 values) |
//! | `a-bxN` | `a a-b a-2b … a-Nb` (N+1 values) |
//! | `_` | one missing sample |
//! | `_xN` | N missing samples (not N+1) |
//! | `stale` | a staleness marker |
//!
//! Numbers are PromQL's: `1`, `-2.5`, `1e3`, `.5`, `Inf`, `-Inf`, `NaN`
//! (case-insensitive), and, as in Go's `strconv.ParseInt(s, 0, 64)`, a
//! leading `0` makes an integer octal (`010` is 8). Hexadecimal is refused
//! because `x` is the repetition sign.

use lookout_promql::{Labels, STALE_NAN_BITS};

use crate::gofmt;

/// One position of an expanded series: a value, a staleness marker (a NaN
/// with [`STALE_NAN_BITS`]) or `None` for a missing sample.
pub type SeriesValue = Option<f64>;

/// Parses a series description line (`up{job="x"} 1 2 3`) into its labels
/// (sorted, `__name__` included) and expanded values.
pub fn parse_series_desc(input: &str) -> Result<(Labels, Vec<SeriesValue>), String> {
    let (labels, rest) = parse_metric_prefix(input)?;
    let values = expand_values_at(rest, input.len() - rest.len())?;
    Ok((labels, values))
}

/// Parses a metric in series notation (`name{a="b"}`, `{a="b"}` or `name`),
/// as promtool's `exp_samples[].labels`; nothing may follow it.
pub fn parse_metric(input: &str) -> Result<Labels, String> {
    if input.trim().is_empty() {
        // promtool accepts an empty string as the empty label set.
        return Ok(vec![]);
    }
    let (labels, rest) = parse_metric_prefix(input)?;
    if !rest.trim().is_empty() {
        return Err(format!(
            "1:{}: parse error: unexpected {} after metric",
            input.len() - rest.trim_start().len() + 1,
            gofmt::quote(rest.trim())
        ));
    }
    Ok(labels)
}

/// Expands a value sequence (`1+2x3 _ stale`).
pub fn expand_values(input: &str) -> Result<Vec<SeriesValue>, String> {
    expand_values_at(input, 0)
}

/// A token of the value sequence, as Prometheus' lexer makes them.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Space(String),
    Add,
    Sub,
    Times,
    Blank,
    Number(String),
    Ident(String),
    Eof,
}

impl Tok {
    /// How Prometheus' parser names the token in `unexpected ...`.
    fn desc(&self) -> String {
        match self {
            Tok::Space(s) => gofmt::quote(s),
            Tok::Add => "<op:+>".into(),
            Tok::Sub => "<op:->".into(),
            Tok::Times => "\"x\"".into(),
            Tok::Blank => "\"_\"".into(),
            Tok::Number(n) => format!("number {}", gofmt::quote(n)),
            Tok::Ident(i) => format!("identifier {}", gofmt::quote(i)),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// Lexes like Prometheus' `lexValueSequence`; positions are byte offsets.
fn lex_values(input: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                out.push((start, Tok::Space(input[start..i].to_string())));
            }
            b'+' => {
                i += 1;
                out.push((start, Tok::Add));
            }
            b'-' => {
                i += 1;
                out.push((start, Tok::Sub));
            }
            b'x' => {
                i += 1;
                out.push((start, Tok::Times));
            }
            b'_' => {
                i += 1;
                out.push((start, Tok::Blank));
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i < b.len() && b[i] == b'.' {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && b[i] != b'x' && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    return Err((
                        start,
                        format!("bad number syntax: {}", gofmt::quote(&input[start..i])),
                    ));
                }
                out.push((start, Tok::Number(input[start..i].to_string())));
            }
            c if c.is_ascii_alphabetic() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &input[start..i];
                let lower = word.to_ascii_lowercase();
                out.push((
                    start,
                    if lower == "inf" || lower == "nan" {
                        Tok::Number(word.to_string())
                    } else {
                        Tok::Ident(word.to_string())
                    },
                ));
            }
            _ => {
                let ch = input[start..].chars().next().unwrap_or('?');
                let q = match ch {
                    '\'' => "'\\''".to_string(),
                    c => format!("'{c}'"),
                };
                return Err((
                    start,
                    format!("unexpected character in series sequence: {q}"),
                ));
            }
        }
    }
    out.push((b.len(), Tok::Eof));
    Ok(out)
}

/// Expands values that start at byte `base` of the series description, so
/// errors carry the description's column as Prometheus' do.
fn expand_values_at(input: &str, base: usize) -> Result<Vec<SeriesValue>, String> {
    let err = |pos: usize, msg: String| format!("1:{}: parse error: {msg}", base + pos + 1);
    let toks = lex_values(input).map_err(|(p, m)| err(p, m))?;
    let mut out = Vec::new();
    let mut i = 0;
    // Leading spaces separate the values from the metric.
    while matches!(toks[i].1, Tok::Space(_)) {
        i += 1;
    }
    let unexpected = |i: usize, context: bool| {
        let (p, t) = &toks[i];
        if context {
            err(*p, format!("unexpected {} in series values", t.desc()))
        } else {
            err(*p, format!("unexpected {}", t.desc()))
        }
    };
    let number = |i: usize| -> Result<f64, String> {
        let (p, t) = &toks[i];
        let Tok::Number(n) = t else {
            return Err(unexpected(i, true));
        };
        go_number(n).ok_or_else(|| {
            err(
                *p,
                format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: invalid syntax",
                    gofmt::quote(n)
                ),
            )
        })
    };
    let uint = |i: usize| -> Result<u64, String> {
        let (p, t) = &toks[i];
        let Tok::Number(n) = t else {
            return Err(unexpected(i, true));
        };
        parse_uint(n).map_err(|m| err(*p, m))
    };
    while toks[i].1 != Tok::Eof {
        match &toks[i].1 {
            Tok::Blank => {
                i += 1;
                if toks[i].1 == Tok::Times {
                    let n = uint(i + 1)?;
                    out.extend(std::iter::repeat_n(None, n as usize));
                    i += 2;
                } else {
                    out.push(None);
                }
            }
            Tok::Ident(w) if w == "stale" => {
                i += 1;
                let v = f64::from_bits(STALE_NAN_BITS);
                if toks[i].1 == Tok::Times {
                    let n = uint(i + 1)?;
                    out.extend(std::iter::repeat_n(Some(v), n as usize + 1));
                    i += 2;
                } else {
                    out.push(Some(v));
                }
            }
            Tok::Ident(w) => {
                return Err(err(
                    toks[i].0,
                    format!(
                        "unexpected identifier {} in series values, expected number or \"stale\"",
                        gofmt::quote(w)
                    ),
                ));
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let start = signed(&toks, &mut i, &number)?;
                match &toks[i].1 {
                    Tok::Times => {
                        let n = uint(i + 1)?;
                        out.extend(std::iter::repeat_n(Some(start), n as usize + 1));
                        i += 2;
                    }
                    Tok::Add | Tok::Sub => {
                        let step = signed(&toks, &mut i, &number)?;
                        if toks[i].1 != Tok::Times {
                            return Err(unexpected(i, true));
                        }
                        let n = uint(i + 1)?;
                        if n > 10_000_000 {
                            return Err(err(toks[i + 1].0, format!("repetition {n} is too large")));
                        }
                        let mut v = start;
                        for _ in 0..=n {
                            out.push(Some(v));
                            v += step;
                        }
                        i += 2;
                    }
                    _ => out.push(Some(start)),
                }
            }
            _ => return Err(unexpected(i, false)),
        }
        // An item ends at a space or at the end.
        match &toks[i].1 {
            Tok::Space(_) => {
                while matches!(toks[i].1, Tok::Space(_)) {
                    i += 1;
                }
            }
            Tok::Eof => {}
            _ => return Err(unexpected(i, false)),
        }
    }
    Ok(out)
}

/// `[+-]number` at `*i`, advancing past it.
fn signed(
    toks: &[(usize, Tok)],
    i: &mut usize,
    number: &dyn Fn(usize) -> Result<f64, String>,
) -> Result<f64, String> {
    let neg = match toks[*i].1 {
        Tok::Sub => {
            *i += 1;
            true
        }
        Tok::Add => {
            *i += 1;
            false
        }
        _ => false,
    };
    let v = number(*i)?;
    *i += 1;
    Ok(if neg { -v } else { v })
}

fn parse_uint(s: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "invalid repetition in series values: strconv.ParseUint: parsing {}: {why}",
            gofmt::quote(s)
        )
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid syntax"));
    }
    s.parse::<u64>().map_err(|_| bad("value out of range"))
}

/// Prometheus' `parser.number`: `strconv.ParseInt(s, 0, 64)` first, then
/// `strconv.ParseFloat`.
fn go_number(s: &str) -> Option<f64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let parsed = if s.len() > 1 && s.starts_with('0') {
            i64::from_str_radix(&s[1..], 8).ok()
        } else {
            s.parse::<i64>().ok()
        };
        if let Some(i) = parsed {
            return Some(i as f64);
        }
    }
    s.parse::<f64>().ok()
}

/// Parses `name{a="b", ...}` at the start of `input`; returns the sorted
/// labels and the rest of the text.
fn parse_metric_prefix(input: &str) -> Result<(Labels, &str), String> {
    let s = input.trim_start();
    let offset = input.len() - s.len();
    let err = |pos: usize, msg: String| format!("1:{}: parse error: {msg}", offset + pos + 1);
    let b = s.as_bytes();
    let mut i = 0;
    let mut labels: Labels = Vec::new();
    // Metric name.
    if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b':') {
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
            i += 1;
        }
        labels.push(("__name__".to_string(), s[..i].to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i] as char).is_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                return Err(err(i, "unexpected end of input inside braces".into()));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let start = i;
            if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(err(
                    i,
                    format!("unexpected character inside braces: {:?}", b[i] as char),
                ));
            }
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let name = s[start..i].to_string();
            while i < b.len() && (b[i] as char).is_whitespace() {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' || b.get(i + 1) == Some(&b'~') {
                return Err(err(
                    i,
                    format!("unexpected label matcher for {name}, expected \"=\""),
                ));
            }
            i += 1;
            while i < b.len() && (b[i] as char).is_whitespace() {
                i += 1;
            }
            let (value, used) = unquote_prefix(&s[i..]).map_err(|e| err(i, e))?;
            i += used;
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(err(
                    start,
                    format!("label {} is duplicated", gofmt::quote(&name)),
                ));
            }
            labels.push((name, value));
            while i < b.len() && (b[i] as char).is_whitespace() {
                i += 1;
            }
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else if i < b.len() && b[i] == b'}' {
                continue;
            } else {
                return Err(err(
                    i,
                    "unexpected character inside braces, expected \",\" or \"}\"".into(),
                ));
            }
        }
    } else if labels.is_empty() {
        return Err(err(
            0,
            format!("unexpected {} in series description", gofmt::quote(s)),
        ));
    }
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort();
    Ok((labels, &s[i..]))
}

/// Reads a quoted string (`"..."`, `'...'` or `` `...` ``) at the start of
/// `s`; returns its value and the bytes used.
fn unquote_prefix(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err("unexpected end of input".into());
    };
    if q == '`' {
        let end = s[1..].find('`').ok_or("unterminated raw string")?;
        return Ok((s[1..1 + end].to_string(), end + 2));
    }
    if q != '"' && q != '\'' {
        return Err(format!("unexpected {:?}, expected a quoted label value", q));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Ok((out, i + 1));
        }
        if c == '\\' {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut hex = String::new();
                    for _ in 0..n {
                        if let Some((_, h)) = chars.next() {
                            hex.push(h);
                        }
                    }
                    let v = u32::from_str_radix(&hex, 16).map_err(|_| "invalid escape sequence")?;
                    out.push(char::from_u32(v).ok_or("invalid escape sequence")?);
                }
                _ => return Err(format!("unknown escape sequence {:?}", e)),
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Vec<SeriesValue> {
        expand_values(s).unwrap()
    }

    #[test]
    fn documented_examples_expand() {
        // The four examples of Prometheus' unit-testing documentation.
        assert_eq!(
            vals("-2+4x3"),
            vec![Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
        );
        assert_eq!(
            vals(" 1-2x4"),
            vec![Some(1.0), Some(-1.0), Some(-3.0), Some(-5.0), Some(-7.0)]
        );
        assert_eq!(vals(" 1x4"), vec![Some(1.0); 5]);
        let v = vals(" 1 _x3 stale");
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], Some(1.0));
        assert_eq!(&v[1..4], &[None, None, None]);
        assert_eq!(v[4].unwrap().to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn numbers_follow_promql() {
        assert_eq!(
            vals("1e3 .5 +3 -0.25"),
            vec![Some(1000.0), Some(0.5), Some(3.0), Some(-0.25)]
        );
        assert_eq!(
            vals("010"),
            vec![Some(8.0)],
            "leading zero is octal, as in Go"
        );
        assert_eq!(vals("09"), vec![Some(9.0)], "not octal falls back to float");
        let v = vals("Inf -inf NaN");
        assert_eq!(v[0], Some(f64::INFINITY));
        assert_eq!(v[1], Some(f64::NEG_INFINITY));
        assert!(v[2].unwrap().is_nan() && v[2].unwrap().to_bits() != STALE_NAN_BITS);
        assert_eq!(vals("_x0 1x0"), vec![Some(1.0)]);
        assert_eq!(
            vals("0x2"),
            vec![Some(0.0); 3],
            "no hex: 0x2 is 0 three times"
        );
        assert_eq!(vals("0.5+0.25x2"), vec![Some(0.5), Some(0.75), Some(1.0)]);
        assert_eq!(vals(""), vec![]);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["1+2", "abc", "Stale", "1x", "1x2.5", "_x", "1+", "1a", "x3"] {
            assert!(expand_values(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn series_descriptions_parse() {
        let (l, v) = parse_series_desc(r#"up{job="api", instance='a:1'} 1 0"#).unwrap();
        assert_eq!(
            l,
            vec![
                ("__name__".to_string(), "up".to_string()),
                ("instance".to_string(), "a:1".to_string()),
                ("job".to_string(), "api".to_string()),
            ]
        );
        assert_eq!(v, vec![Some(1.0), Some(0.0)]);
        let (l, _) = parse_series_desc(r#"{__name__="x:y", a="b\"c",} 1"#).unwrap();
        assert_eq!(l[0], ("__name__".to_string(), "x:y".to_string()));
        assert_eq!(l[1].1, "b\"c");
        let (l, v) = parse_series_desc("node:cpu 5x2").unwrap();
        assert_eq!(l, vec![("__name__".to_string(), "node:cpu".to_string())]);
        assert_eq!(v.len(), 3);
        assert!(parse_series_desc(r#"up{job=~"x"} 1"#).is_err());
        assert!(parse_series_desc(r#"up{job="x" 1"#).is_err());
        assert_eq!(parse_metric("{}").unwrap(), vec![]);
        assert!(parse_metric("up 1").is_err());
    }
}
