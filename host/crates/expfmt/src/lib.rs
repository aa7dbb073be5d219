//! Parse what `/metrics` endpoints serve: the Prometheus text exposition
//! format 0.0.4 and OpenMetrics 1.0 text.
//!
//! The two differ in small ways this parser handles: OpenMetrics
//! timestamps are seconds (possibly fractional), Prometheus text ones are
//! integer milliseconds; OpenMetrics ends with `# EOF` and may carry
//! exemplars (`# {trace_id="…"} 1.0`) after a sample, which are skipped;
//! `# UNIT` lines exist only in OpenMetrics.
//!
//! ```
//! use lookout_expfmt::{Format, parse};
//! let text = "# TYPE http_requests counter\nhttp_requests_total{code=\"200\"} 1027 1395066363000\n";
//! let scrape = parse(text, Format::PrometheusText).unwrap();
//! assert_eq!(scrape.samples[0].name, "http_requests_total");
//! assert_eq!(scrape.samples[0].labels, vec![("code".to_string(), "200".to_string())]);
//! assert_eq!(scrape.samples[0].timestamp_ms, Some(1395066363000));
//! ```

use std::collections::BTreeMap;

/// Which text format the input is in (decides the timestamp unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: timestamps in milliseconds.
    PrometheusText,
    /// `application/openmetrics-text`: timestamps in seconds, `# EOF` required.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header announces (Prometheus text when unsure).
    pub fn from_content_type(content_type: &str) -> Format {
        if content_type
            .trim_start()
            .starts_with("application/openmetrics-text")
        {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written; not sorted, `__name__` not included.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// `# TYPE`, `# HELP` and `# UNIT` of one metric family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Everything one exposition held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// By metric family name.
    pub metadata: BTreeMap<String, Metadata>,
}

/// A line that is not valid in the format, with its 1-based number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition.
pub fn parse(text: &str, format: Format) -> Result<Scrape, ParseError> {
    let mut scrape = Scrape::default();
    let mut saw_eof = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.trim_end_matches('\r');
        if saw_eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err("content after # EOF".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            if comment == "EOF" {
                saw_eof = true;
                continue;
            }
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            let family = parts.next().unwrap_or("");
            let rest = parts.next().unwrap_or("");
            match keyword {
                "TYPE" => {
                    scrape.metadata.entry(family.to_string()).or_default().kind =
                        rest.trim().to_string()
                }
                "HELP" => {
                    scrape.metadata.entry(family.to_string()).or_default().help =
                        unescape_help(rest)
                }
                "UNIT" => {
                    scrape.metadata.entry(family.to_string()).or_default().unit =
                        rest.trim().to_string()
                }
                _ => {} // other comments are allowed in the text format
            }
            continue;
        }
        scrape
            .samples
            .push(parse_sample(line, format).map_err(err)?);
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err(ParseError {
            line: text.lines().count(),
            message: "OpenMetrics input must end with # EOF".into(),
        });
    }
    Ok(scrape)
}

fn parse_sample(line: &str, format: Format) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    // Exemplars follow " # " in OpenMetrics.
    let rest = match rest.find(" # ") {
        Some(i) if format == Format::OpenMetrics => &rest[..i],
        _ => rest,
    };
    let mut fields = rest.split_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("{name}: missing value"))?;
    let value =
        parse_float(value_text).ok_or_else(|| format!("{name}: invalid value {value_text:?}"))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(ts) => Some(match format {
            Format::PrometheusText => ts
                .parse::<i64>()
                .map_err(|_| format!("{name}: invalid timestamp {ts:?}"))?,
            Format::OpenMetrics => {
                let secs = parse_float(ts)
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| format!("{name}: invalid timestamp {ts:?}"))?;
                (secs * 1000.0).round() as i64
            }
        }),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("{name}: unexpected {extra:?} after the timestamp"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and what follows `}`.
/// Label pairs in the order written.
type LabelPairs = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let name = s[..eq].trim();
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        s = s[eq + 1..].trim_start();
        let body = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name}: value must be quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {name}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => return Err(format!("label {name}: unterminated value")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name}"));
        }
        labels.push((name.to_string(), value));
        s = body[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

fn unescape_help(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\\\", "\\")
}

/// A label value as the text format writes it between quotes.
pub fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

/// A sample value as the text format writes it (`NaN`, `+Inf`, `-Inf`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_with_metadata_escapes_and_specials() {
        let text = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 4.2e-05
weird{path="C:\\dir",msg="say \"hi\"\n"} -Inf
nan_metric NaN 1700000000123
"#;
        let s = parse(text, Format::PrometheusText).unwrap();
        assert_eq!(s.samples.len(), 3);
        assert_eq!(s.metadata["go_gc_duration_seconds"].kind, "summary");
        assert_eq!(s.samples[0].value, 4.2e-05);
        assert_eq!(s.samples[1].labels[0].1, "C:\\dir");
        assert_eq!(s.samples[1].labels[1].1, "say \"hi\"\n");
        assert_eq!(s.samples[1].value, f64::NEG_INFINITY);
        assert!(s.samples[2].value.is_nan());
        assert_eq!(s.samples[2].timestamp_ms, Some(1_700_000_000_123));
    }

    #[test]
    fn openmetrics_seconds_exemplars_and_eof() {
        let text = "# TYPE req counter\n# UNIT req requests\nreq_total{a=\"b\"} 5 1700000000.5 # {trace_id=\"x\"} 1 1700000000\n# EOF\n";
        let s = parse(text, Format::OpenMetrics).unwrap();
        assert_eq!(s.samples[0].timestamp_ms, Some(1_700_000_000_500));
        assert_eq!(s.samples[0].value, 5.0);
        assert_eq!(s.metadata["req"].unit, "requests");
        let e = parse("a 1\n", Format::OpenMetrics).unwrap_err();
        assert!(e.message.contains("# EOF"));
        let e = parse("a 1\n# EOF\nb 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn bad_lines_are_located() {
        assert_eq!(
            parse("ok 1\n1bad 2\n", Format::PrometheusText)
                .unwrap_err()
                .line,
            2
        );
        assert!(
            parse("m{a=b} 1\n", Format::PrometheusText)
                .unwrap_err()
                .message
                .contains("quoted")
        );
        assert!(
            parse("m{a=\"1\",a=\"2\"} 1\n", Format::PrometheusText)
                .unwrap_err()
                .message
                .contains("duplicate")
        );
        assert!(
            parse("m one\n", Format::PrometheusText)
                .unwrap_err()
                .message
                .contains("invalid value")
        );
        assert!(parse("m 1 2 3\n", Format::PrometheusText).is_err());
    }

    #[test]
    fn content_types_pick_the_format() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::PrometheusText
        );
    }
}
