//! `lookout query '<promql>'`: asks a running lookout (its HTTP API, as
//! `promtool query` asks Prometheus) and prints a table. The database is
//! owned by `serve`, so the CLI does not open it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::config::parse_duration;

#[derive(clap::Args)]
pub struct QueryArgs {
    /// The PromQL expression.
    expr: String,
    /// Evaluate over this range back from --time (or now), e.g. 1h.
    #[arg(long)]
    range: Option<String>,
    /// Resolution of a range query.
    #[arg(long, default_value = "15s")]
    step: String,
    /// Evaluation time (Unix seconds or RFC 3339); default now.
    #[arg(long)]
    time: Option<String>,
    /// The lookout server to ask.
    #[arg(long, default_value = "http://127.0.0.1:9470", env = "LOOKOUT_SERVER")]
    server: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let now = crate::storage::now_ms();
    let end_ms = match &args.time {
        Some(t) => crate::query::parse_time(t).map_err(|e| anyhow::anyhow!("--time: {e}"))?,
        None => now,
    };
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let path = match &args.range {
        Some(range) => {
            let range = parse_duration(range).map_err(|e| anyhow::anyhow!("--range: {e}"))?;
            let step = parse_duration(&args.step).map_err(|e| anyhow::anyhow!("--step: {e}"))?;
            let start_ms = end_ms - range.as_millis() as i64;
            format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={}",
                encode(&args.expr),
                secs(start_ms),
                secs(end_ms),
                step.as_secs_f64()
            )
        }
        None => format!(
            "/api/v1/query?query={}&time={}",
            encode(&args.expr),
            secs(end_ms)
        ),
    };
    let body = http_get(&args.server, &path)?;
    let reply: Value = serde_json::from_str(&body)
        .with_context(|| format!("the server's answer is not JSON: {body}"))?;
    if reply["status"] != "success" {
        bail!(
            "{}: {}",
            reply["errorType"].as_str().unwrap_or("error"),
            reply["error"].as_str().unwrap_or(&body)
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply["data"])?);
        return Ok(());
    }
    print_table(&reply["data"]);
    Ok(())
}

fn metric_text(metric: &Value) -> String {
    let Some(map) = metric.as_object() else {
        return "{}".into();
    };
    let name = map.get("__name__").and_then(Value::as_str).unwrap_or("");
    let labels: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    format!("{name}{{{}}}", labels.join(", "))
}

fn time_text(t: &Value) -> String {
    let ms = (t.as_f64().unwrap_or(0.0) * 1000.0) as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn print_table(data: &Value) {
    let result = &data["result"];
    match data["resultType"].as_str().unwrap_or("") {
        "vector" => {
            let rows: Vec<(String, String)> = result
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    (
                        metric_text(&s["metric"]),
                        s["value"][1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let width = rows.iter().map(|(m, _)| m.len()).max().unwrap_or(6).max(6);
            println!("{:<width$}  VALUE", "SERIES");
            for (metric, value) in rows {
                println!("{metric:<width$}  {value}");
            }
        }
        "matrix" => {
            for series in result.as_array().into_iter().flatten() {
                println!("{}", metric_text(&series["metric"]));
                for point in series["values"].as_array().into_iter().flatten() {
                    println!(
                        "  {}  {}",
                        time_text(&point[0]),
                        point[1].as_str().unwrap_or("")
                    );
                }
            }
        }
        _ => println!(
            "{}  {}",
            time_text(&result[0]),
            result[1].as_str().unwrap_or("")
        ),
    }
}

/// GET over plain HTTP/1.1 to a local lookout; returns the body.
fn http_get(server: &str, path: &str) -> anyhow::Result<String> {
    let authority = server
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--server must be an http:// URL, got {server}"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .with_context(|| format!("connecting to lookout at {server}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP answer from {server}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
