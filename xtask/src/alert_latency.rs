//! `cargo xtask bench-alerts`: how long after a rule starts firing its
//! notifier is invoked, end to end, beyond the waits the configuration asks
//! for.
//!
//! One `lookout serve` (release build) with the `noop` job every 100 ms, one
//! rule group at `interval: 100ms` holding [`TRIALS`] alerting rules
//! `vector(time()) > T_i` (`for: 0s`, a new `alertname` each), an
//! Alertmanager route with `group_wait: 0s` grouping by `alertname`, and a
//! webhook receiver: an HTTP server in this process that notes when each
//! POST has arrived in full. Rule `i` starts firing at the first evaluation
//! after wall time `T_i`; the `T_i` are 1.5 s apart, plus `37·i mod 100` ms
//! so that where `T_i` falls within the 100 ms evaluation interval varies.
//!
//! Per alert: `receipt − T` (what a user waits after the condition became
//! true), `startsAt − T` (the interval phase: the wait for the next
//! evaluation slot; `startsAt` is the evaluation timestamp), and
//! `receipt − startsAt`, the time spent beyond the configured waits:
//! evaluation, storing its output and state, the dispatcher, the durable
//! outbox, and the webhook plugin's POST.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

const TRIALS: usize = 20;
const SPACING_MS: i64 = 1500;
const INTERVAL_MS: i64 = 100;
/// From writing the configuration to the first `T`: installs are done by
/// then; this covers `serve`'s start.
const LEAD_MS: i64 = 8000;

use crate::peer_bench::Killed;

fn unix_ms_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// Each POST received: when its body had fully arrived (unix ms) and the body.
type Received = Arc<Mutex<Vec<(f64, String)>>>;

fn serve_receiver(listener: TcpListener, received: Received) {
    for stream in listener.incoming().flatten() {
        let received = received.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &received);
        });
    }
}

/// One connection, one request: answered with `Connection: close`.
fn handle(stream: TcpStream, received: &Received) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size =
                usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2]; // data and CRLF
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    let at = unix_ms_f64(SystemTime::now());
    if request_line.starts_with("POST ") {
        received
            .lock()
            .unwrap()
            .push((at, String::from_utf8_lossy(&body).into_owned()));
    }
    writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    writer.flush()
}

/// The first string value of `"key"` in a JSON text (our values have no
/// escapes).
fn json_str(body: &str, key: &str) -> Option<String> {
    let pattern = format!("\"{key}\"");
    let mut rest = &body[body.find(&pattern)? + pattern.len()..];
    rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// `YYYY-MM-DDThh:mm:ss[.fff]Z` (what lookout writes) → unix ms.
fn rfc3339_utc_ms(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac) * 1e3)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(p * (sorted.len() - 1) as f64).round() as usize]
}

pub fn run(lookout: &Path, wasm: &Path) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("lookout-bench-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = run_in(lookout, wasm, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(lookout: &Path, wasm: &Path, work: &Path) -> anyhow::Result<()> {
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let received: Received = Arc::default();
    {
        let received = received.clone();
        std::thread::spawn(move || serve_receiver(listener, received));
    }

    for stem in ["lookout_plugin_noop", "lookout_plugin_webhook"] {
        let out = Command::new(lookout)
            .arg("--data")
            .arg(&data)
            .args(["plugin", "install"])
            .arg(wasm.join(format!("{stem}.wasm")))
            .output()
            .context("running lookout plugin install")?;
        if !out.status.success() {
            bail!(
                "lookout plugin install {stem}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let now_ms = unix_ms_f64(SystemTime::now()) as i64;
    let t0 = now_ms + LEAD_MS;
    let thresholds: Vec<i64> = (0..TRIALS as i64)
        .map(|i| t0 + i * SPACING_MS + (37 * i) % INTERVAL_MS)
        .collect();
    let name = |i: usize| format!("Latency{i:02}");
    let mut rules =
        format!("groups:\n  - name: latency\n    interval: {INTERVAL_MS}ms\n    rules:\n");
    for (i, t) in thresholds.iter().enumerate() {
        rules.push_str(&format!(
            "      - alert: {}\n        expr: vector(time()) > {}.{:03}\n        for: 0s\n",
            name(i),
            t / 1000,
            t % 1000
        ));
    }
    std::fs::write(data.join("rules.yml"), rules)?;
    std::fs::write(
        data.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}'\n"
        ),
    )?;
    let config = data.join("lookout.toml");
    std::fs::write(
        &config,
        "[rules]\nfiles = [\"rules.yml\"]\n\n[alerting]\nconfig = \"alertmanager.yml\"\n\n[[jobs]]\nname = \"noop\"\nplugin = \"noop\"\nevery = \"100ms\"\ntargets = [\"x\"]\n",
    )?;

    let stderr = std::fs::File::create(work.join("lookout.stderr"))?;
    let mut served = Killed(
        Command::new(lookout)
            .arg("--data")
            .arg(&data)
            .env("LOOKOUT_LOG", "warn")
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting lookout serve")?,
    );
    let stdout = served.0.stdout.take().context("lookout's stdout")?;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    if !line.contains("http://") {
        let err = std::fs::read_to_string(work.join("lookout.stderr")).unwrap_or_default();
        bail!("lookout serve did not start: {line}{err}");
    }
    // Keep draining stdout so lookout never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let ready_ms = unix_ms_f64(SystemTime::now());
    if ready_ms > t0 as f64 - 1000.0 {
        bail!(
            "lookout serve took too long to start ({:.0} ms before the first T; need ≥ 1000)",
            t0 as f64 - ready_ms
        );
    }
    println!(
        "{TRIALS} alerts, rule interval {INTERVAL_MS} ms, for 0s, group_wait 0s; serve ready {:.1} s before the first T\n",
        (t0 as f64 - ready_ms) / 1e3
    );

    let last = *thresholds.last().unwrap() as f64;
    let deadline = Instant::now()
        + Duration::from_millis((last - unix_ms_f64(SystemTime::now())).max(0.0) as u64)
        + Duration::from_secs(10);
    while received.lock().unwrap().len() < TRIALS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(served); // kill lookout
    let received = received.lock().unwrap().clone();

    let mut rows: Vec<(usize, f64, f64, f64)> = Vec::new(); // i, phase, receipt−T, receipt−startsAt
    let mut problems = Vec::new();
    for (i, t) in thresholds.iter().enumerate() {
        let want = name(i);
        let first = received
            .iter()
            .find(|(_, body)| json_str(body, "alertname").as_deref() == Some(want.as_str()));
        let Some((at, body)) = first else {
            problems.push(format!("{want}: no notification"));
            continue;
        };
        let Some(starts_at) = json_str(body, "startsAt").and_then(|s| rfc3339_utc_ms(&s)) else {
            problems.push(format!("{want}: no startsAt in {body}"));
            continue;
        };
        let t = *t as f64;
        rows.push((i, starts_at - t, at - t, at - starts_at));
    }

    println!(
        "{:<10} {:>9} {:>15} {:>13} {:>20}",
        "alert", "T − T0 s", "startsAt − T ms", "receipt − T ms", "receipt − startsAt ms"
    );
    for &(i, phase, total, beyond) in &rows {
        println!(
            "{:<10} {:>9.3} {:>15.1} {:>13.1} {:>20.1}",
            name(i),
            (thresholds[i] - t0) as f64 / 1e3,
            phase,
            total,
            beyond
        );
    }
    if rows.is_empty() {
        bail!("no notification arrived: {problems:?}");
    }
    let col = |k: usize| -> Vec<f64> {
        rows.iter()
            .map(|r| match k {
                1 => r.1,
                2 => r.2,
                _ => r.3,
            })
            .collect()
    };
    println!(
        "\n{:<50} {:>8} {:>8} {:>8}",
        format!("over {} alerts", rows.len()),
        "p50 ms",
        "p90 ms",
        "max ms"
    );
    for (what, k) in [
        ("receipt − T (condition true → webhook received)", 2),
        ("startsAt − T (wait for the next evaluation slot)", 1),
        ("receipt − startsAt (beyond configured waits)", 3),
    ] {
        let v = col(k);
        println!(
            "{what:<50} {:>8.1} {:>8.1} {:>8.1}",
            percentile(&v, 0.5),
            percentile(&v, 0.9),
            percentile(&v, 1.0)
        );
    }
    let extra = received.len().saturating_sub(rows.len());
    if extra > 0 {
        println!("({extra} further POSTs received, e.g. re-sends; only each alert's first counts)");
    }
    if !problems.is_empty() {
        bail!("missing: {problems:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_lookout_writes() {
        assert_eq!(rfc3339_utc_ms("1970-01-01T00:00:01.500Z"), Some(1500.0));
        assert_eq!(
            rfc3339_utc_ms("2024-02-29T12:00:00.123Z"),
            Some(1_709_208_000_123.0)
        );
        let body = r#"{"groupLabels":{"alertname":"Latency03"},"alerts":[{"startsAt": "2024-02-29T12:00:00.123Z"}]}"#;
        assert_eq!(json_str(body, "alertname").as_deref(), Some("Latency03"));
        assert_eq!(
            json_str(body, "startsAt").as_deref(),
            Some("2024-02-29T12:00:00.123Z")
        );
    }
}
