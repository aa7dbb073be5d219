//! `lookout detect <plugin> --csv <file>`: backtest a detector on history.
//!
//! Runs the installed detector plugin over a CSV of `timestamp,value` rows
//! exactly as `lookout serve` would feed it, in batches with its state
//! saved and restored in between, and prints `timestamp,value,score,anomaly`
//! so a detector can be tuned on a team's own data before alerting on it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::model::{Grants, Limits, Point};
use crate::runtime::{DetectRequest, ForecastRequest, Invocation};

/// Points per call into the plugin; the state is carried between calls.
const BATCH_POINTS: usize = 10_000;

#[derive(clap::Args)]
pub struct DetectArgs {
    /// Name of an installed detector plugin.
    plugin: String,
    /// CSV of `timestamp,value` rows (a header row is skipped). Timestamps:
    /// Unix seconds (fractions allowed), Unix milliseconds, RFC 3339, or
    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    #[arg(long)]
    csv: PathBuf,
    /// The detector's configuration as JSON.
    #[arg(long, default_value = "{}")]
    config: String,
    /// After the last point, ask for a forecast this far ahead (`4h`);
    /// printed to stderr.
    #[arg(long)]
    horizon: Option<String>,
    /// With `--horizon`: the value whose crossing the forecast times.
    #[arg(long, allow_hyphen_values = true)]
    threshold: Option<f64>,
    /// Deadline of each call into the plugin (10,000 points).
    #[arg(long, default_value = "60s")]
    timeout: String,
}

pub async fn run(args: DetectArgs, data: &Path) -> anyhow::Result<()> {
    serde_json::from_str::<serde_json::Value>(&args.config)
        .context("--config is not valid JSON")?;
    let timeout = crate::config::parse_duration(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let horizon = args
        .horizon
        .as_deref()
        .map(|h| crate::config::parse_duration(h).map_err(|e| anyhow::anyhow!("--horizon: {e}")))
        .transpose()?;
    let text = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let rows = parse_csv(&text).map_err(|e| anyhow::anyhow!("{}:{e}", args.csv.display()))?;

    let registry = crate::registry::Registry::open(data)
        .with_context(|| format!("opening data directory {}", data.display()))?;
    let plugin = registry.load(&args.plugin)?;
    let (grants, limits) = (
        Grants::default(),
        Limits {
            timeout,
            ..Default::default()
        },
    );
    let inv = Invocation {
        job: "detect",
        target: "csv",
        config: &args.config,
        grants: &grants,
        limits: &limits,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut state = None;
    let chunks: Vec<&[Row]> = rows.chunks(BATCH_POINTS).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let request = DetectRequest {
            state: state.take(),
            points: chunk.iter().map(|r| r.point).collect(),
            forecast: horizon.filter(|_| last).map(|h| ForecastRequest {
                horizon_ms: h.as_millis() as i64,
                threshold: args.threshold,
            }),
        };
        let outcome = registry
            .runtime()
            .detect(&plugin, &inv, vec![request])
            .await
            .map_err(|e| anyhow::anyhow!("{} failed ({}): {}", args.plugin, e.kind, e.message))?
            .pop()
            .expect("one outcome per request")
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.plugin))?;
        if i == 0 {
            writeln!(out, "timestamp,value,score,anomaly")?;
        }
        for (row, verdict) in chunk.iter().zip(&outcome.verdicts) {
            writeln!(
                out,
                "{},{},{},{}",
                row.timestamp,
                row.point.value,
                verdict.score,
                u8::from(verdict.anomalous)
            )?;
        }
        if last && let Some(h) = &args.horizon {
            out.flush()?;
            match outcome.forecast {
                Some(f) => eprintln!(
                    "forecast {h} after the last point: {}; reaches {}: {}",
                    f.value,
                    args.threshold
                        .map_or("(no --threshold)".to_string(), |t| t.to_string()),
                    f.seconds_to_threshold
                        .map_or("not within the horizon".to_string(), |s| format!(
                            "in {s:.0} s"
                        ))
                ),
                None => eprintln!("{} gives no forecast", args.plugin),
            }
        }
        state = Some(outcome.state);
    }
    out.flush()?;
    Ok(())
}

/// One CSV row: its timestamp as written (echoed back) and the point.
#[derive(Debug)]
struct Row<'a> {
    timestamp: &'a str,
    point: Point,
}

/// Rows of `timestamp,value`; a first row that does not parse is a header.
/// Errors name the line.
fn parse_csv(text: &str) -> Result<Vec<Row<'_>>, String> {
    let mut rows = Vec::new();
    let mut previous = i64::MIN;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = (|| {
            let (timestamp, value) = line.split_once(',').ok_or("expected `timestamp,value`")?;
            let (timestamp, value) = (timestamp.trim(), value.trim());
            let timestamp_ms = parse_timestamp(timestamp)?;
            let value: f64 = value
                .parse()
                .map_err(|_| format!("value `{value}` is not a number"))?;
            Ok::<_, String>(Row {
                timestamp,
                point: Point {
                    timestamp_ms,
                    value,
                },
            })
        })();
        match parsed {
            Ok(row) => {
                if row.point.timestamp_ms <= previous {
                    return Err(format!(
                        "{}: timestamp `{}` is not after the previous row's",
                        n + 1,
                        row.timestamp
                    ));
                }
                previous = row.point.timestamp_ms;
                rows.push(row);
            }
            Err(_) if rows.is_empty() && n == 0 => continue, // a header
            Err(e) => return Err(format!("{}: {e}", n + 1)),
        }
    }
    if rows.is_empty() {
        return Err(" no `timestamp,value` rows".into());
    }
    Ok(rows)
}

/// Unix seconds or milliseconds (a number of 12+ integer digits is taken as
/// milliseconds), RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` as UTC.
fn parse_timestamp(text: &str) -> Result<i64, String> {
    if let Ok(number) = text.parse::<f64>() {
        if !number.is_finite() {
            return bail_str(text);
        }
        let integer_digits = text
            .split('.')
            .next()
            .unwrap_or("")
            .trim_start_matches('-')
            .len();
        return Ok(if integer_digits >= 12 {
            number.round() as i64
        } else {
            (number * 1000.0).round() as i64
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    bail_str(text)
}

fn bail_str(text: &str) -> Result<i64, String> {
    Err(format!(
        "timestamp `{text}` is neither Unix seconds or milliseconds, RFC 3339, nor `YYYY-MM-DD HH:MM:SS`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_documented_form() {
        assert_eq!(parse_timestamp("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_timestamp("1700000000.25").unwrap(), 1_700_000_000_250);
        assert_eq!(parse_timestamp("1700000000250").unwrap(), 1_700_000_000_250);
        assert_eq!(
            parse_timestamp("2026-01-01 00:05:00").unwrap(),
            1_767_225_900_000
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:05:00Z").unwrap(),
            1_767_225_900_000
        );
        assert!(
            parse_timestamp("yesterday")
                .unwrap_err()
                .contains("`yesterday`")
        );
    }

    #[test]
    fn csv_skips_a_header_and_names_bad_lines() {
        let rows = parse_csv("timestamp,value\n10,1.5\n20,2\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].timestamp, "20");
        assert_eq!(rows[1].point.timestamp_ms, 20_000);
        assert_eq!(
            parse_csv("10,1\n20,x\n").unwrap_err(),
            "2: value `x` is not a number"
        );
        assert!(parse_csv("10,1\n5,1\n").unwrap_err().starts_with("2: "));
        assert!(parse_csv("timestamp,value\n").is_err());
    }
}
