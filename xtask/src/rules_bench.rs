//! `cargo xtask bench-rules`: 1,000 alerting and recording rules over
//! 10,100 series, evaluated every 15 s by lookout and by a real Prometheus
//! (Debian's `prometheus`) side by side, on the same data and the same rule
//! file. Prints each process's CPU time per evaluation round (everything
//! the process did meanwhile included: rule evaluation, writing recorded
//! series and `ALERTS`, alert state), the evaluation time each reports per
//! round (sum over groups of their last evaluation), and ratios.
//!
//! The data and rules are the workload of `cargo bench -p lookout-rules
//! --bench eval` (`host/crates/rules/benches/workload.rs`): 20 minutes of
//! 15 s history ending now, loaded into both through their backfill
//! commands (`lookout tsdb import openmetrics`, `promtool tsdb
//! create-blocks-from openmetrics`), so the rules see the same series.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::peer_bench::{Killed, cpu_seconds, free_addr, http_get_body, serve_lookout, wait_ready};

#[path = "../../host/crates/rules/benches/support/workload.rs"]
mod workload;

/// Evaluation rounds measured, after the first.
const ROUNDS: u64 = 4;
const INTERVAL_S: u64 = 15;

/// The workload's history as OpenMetrics, series after series, ending at
/// `end_s` (Unix seconds).
fn openmetrics(end_s: i64) -> String {
    let points = workload::HISTORY_POINTS as usize + 1;
    let step_s = workload::STEP_MS / 1000;
    let start_s = end_s - (points as i64 - 1) * step_s;
    let mut fleet = workload::Fleet::new();
    let mut counters = Vec::with_capacity(points);
    let mut up = Vec::with_capacity(points);
    for n in 0..points {
        fleet.scrape(n as i64);
        counters.push(fleet.counters.clone());
        up.push(fleet.up.clone());
    }
    let mut out = String::with_capacity(workload::INSTANCES * workload::PATHS * points * 64);
    out.push_str("# TYPE http_requests counter\n");
    for k in 0..workload::INSTANCES * workload::PATHS {
        let (i, p) = (k / workload::PATHS, k % workload::PATHS);
        for (n, values) in counters.iter().enumerate() {
            let _ = writeln!(
                out,
                "http_requests_total{{instance=\"i{i}\",path=\"p{p}\"}} {} {}",
                values[k],
                start_s + n as i64 * step_s
            );
        }
    }
    out.push_str("# TYPE up gauge\n");
    for i in 0..workload::INSTANCES {
        for (n, values) in up.iter().enumerate() {
            let _ = writeln!(
                out,
                "up{{instance=\"i{i}\"}} {} {}",
                values[i],
                start_s + n as i64 * step_s
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Sum over rule groups of their last evaluation's duration (seconds), and
/// how many alerts fire, from a Prometheus-format `/api/v1/rules`.
fn rules_status(addr: SocketAddr) -> anyhow::Result<(f64, usize, usize)> {
    let body = http_get_body(addr, "/api/v1/rules")?;
    let body = body.as_str();
    let v: serde_json::Value = serde_json::from_str(body)
        .with_context(|| format!("{addr}/api/v1/rules: {}", &body[..body.len().min(200)]))?;
    let groups = v["data"]["groups"].as_array().context("no groups")?;
    let mut seconds = 0.0;
    let mut firing = 0;
    for g in groups {
        seconds += g["evaluationTime"].as_f64().unwrap_or(0.0);
        for r in g["rules"].as_array().into_iter().flatten() {
            firing += r["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["state"] == "firing")
                .count();
        }
    }
    Ok((seconds, groups.len(), firing))
}

pub fn run(lookout: &Path) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("lookout-bench-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = run_in(lookout, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(lookout: &Path, work: &Path) -> anyhow::Result<()> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let end_s = now_s / 15 * 15;
    let om = work.join("fleet.om");
    std::fs::write(&om, openmetrics(end_s))?;
    std::fs::write(work.join("rules.yml"), workload::rules_yaml())?;
    println!(
        "data: {} counters + {} up gauges, 20 min at 15 s ending now; rules: {} groups × 20, evaluated every {INTERVAL_S} s\n",
        workload::INSTANCES * workload::PATHS,
        workload::INSTANCES,
        workload::GROUPS
    );

    let data = work.join("lookout-data");
    let out = Command::new(lookout)
        .arg("--data")
        .arg(&data)
        .args(["tsdb", "import", "openmetrics"])
        .arg(&om)
        .output()?;
    if !out.status.success() {
        bail!("lookout import: {}", String::from_utf8_lossy(&out.stderr));
    }
    let prom_dir = work.join("prometheus-data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&prom_dir)
        .output()
        .context("promtool (Debian's prometheus package) is needed")?;
    if !out.status.success() {
        bail!("promtool: {}", String::from_utf8_lossy(&out.stderr));
    }

    let config = work.join("lookout.toml");
    std::fs::write(
        &config,
        format!("[rules]\nfiles = [\"rules.yml\"]\nevaluation_interval = \"{INTERVAL_S}s\"\n"),
    )?;
    let (lookout_server, lookout_addr) = serve_lookout(lookout, &data, &config)?;
    let prom_config = work.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  evaluation_interval: {INTERVAL_S}s\nrule_files: ['{}']\n",
            work.join("rules.yml").display()
        ),
    )?;
    let prom_addr = free_addr()?;
    let prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", prom_dir.display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_ready(lookout_addr, "/healthz")?;
    wait_ready(prom_addr, "/-/ready")?;
    // Both evaluate once at start; measure whole rounds after that.
    std::thread::sleep(Duration::from_secs(INTERVAL_S + 2));
    let pids = [lookout_server.0.id(), prometheus.0.id()];
    let before = [cpu_seconds(pids[0])?, cpu_seconds(pids[1])?];
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(ROUNDS * INTERVAL_S));
    let after = [cpu_seconds(pids[0])?, cpu_seconds(pids[1])?];
    let window = started.elapsed().as_secs_f64();
    let rounds = window / INTERVAL_S as f64;
    let (l_eval, l_groups, l_firing) = rules_status(lookout_addr)?;
    let (p_eval, p_groups, p_firing) = rules_status(prom_addr)?;

    println!(
        "{:<52} {:>12} {:>12} {:>8}",
        "", "lookout", "prometheus", "ratio"
    );
    let row = |what: &str, l: f64, p: f64, unit: &str| {
        println!(
            "{what:<52} {:>9.1}{unit:<3} {:>9.1}{unit:<3} {:>7.2}×",
            l,
            p,
            l / p
        );
    };
    row(
        &format!("process CPU per round ({rounds:.1} rounds measured)"),
        (after[0] - before[0]) / rounds * 1e3,
        (after[1] - before[1]) / rounds * 1e3,
        " ms",
    );
    row(
        "evaluation time of the last round (sum of groups)",
        l_eval * 1e3,
        p_eval * 1e3,
        " ms",
    );
    println!(
        "{:<52} {:>12} {:>12}",
        "rule groups / firing alerts",
        format!("{l_groups} / {l_firing}"),
        format!("{p_groups} / {p_firing}")
    );
    Ok(())
}
