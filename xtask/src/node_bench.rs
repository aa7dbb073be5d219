//! `cargo xtask bench-node [--rounds N]`: lookout's `node` exporter plugin
//! beside a real node_exporter 1.5 (Debian's `prometheus-node-exporter`)
//! running the same thirteen collectors, on this machine.
//!
//! What is compared, and why it is fair:
//!
//! - **Wall time per collection.** lookout: a served job runs the plugin
//!   every second; each stored result carries the invocation's duration as
//!   the scheduler measured it (a fresh instance, the collection, the
//!   samples handed back), which is the plugin's cost without any process
//!   start. node_exporter: `GET /metrics` back to back, the HTTP round trip
//!   included (its exporter's own go_/process_ metrics switched off).
//! - **Collector time.** Both report `node_scrape_collector_duration_seconds`
//!   per collector; the sum is the time spent reading and parsing kernel
//!   files, without lookout's instantiation or node_exporter's HTTP and
//!   text encoding. node_exporter runs its collectors concurrently, so its
//!   sum can exceed its wall time.
//! - **CPU per collection.** utime + stime of each process (from
//!   `/proc/<pid>/stat`) over `--rounds` seconds at one collection per
//!   second, less the CPU the same process burns idle over as long (measured
//!   first, without collections). lookout's figure includes storing the
//!   ~240 samples in its database; node_exporter stores nothing (Prometheus
//!   would).
//!
//! Ratios are lookout ÷ node_exporter.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::peer_bench::{
    Killed, cpu_seconds, free_addr, http_get_body, rss_mib, serve_lookout, wait_ready,
};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// node_exporter's collectors the plugin implements.
const COLLECTORS: [&str; 13] = [
    "cpu",
    "diskstats",
    "entropy",
    "filefd",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "time",
    "uname",
    "vmstat",
];

/// Back-to-back scrapes of node_exporter for its latency.
const LATENCY_SCRAPES: usize = 200;

/// Seconds each process is watched idle for its baseline CPU.
const IDLE_S: u64 = 20;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds: u64 = 60;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 5)
                    .context("--rounds needs a number of seconds, at least 5")?;
            }
            other => {
                bail!("unknown argument `{other}`; usage: cargo xtask bench-node [--rounds N]")
            }
        }
    }
    if !Path::new(NODE_EXPORTER).exists() {
        bail!("{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter");
    }
    crate::ensure_wasm_target()?;
    crate::status(crate::cargo().args([
        "build",
        "--profile",
        "plugin",
        "--target",
        "wasm32-wasip2",
        "-p",
        "lookout-plugin-node",
    ]))?;
    crate::status(crate::cargo().args(["build", "--release", "-p", "lookout"]))?;
    let lookout = crate::target_dir().join("release").join("lookout");
    let wasm = crate::wasm_dir().join("lookout_plugin_node.wasm");

    let work = std::env::temp_dir().join(format!("lookout-bench-node-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = run_in(&lookout, &wasm, &work, rounds);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// CPU seconds per second a process uses while left alone.
fn idle_cpu_per_second(pid: u32) -> anyhow::Result<f64> {
    let before = cpu_seconds(pid)?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(IDLE_S));
    Ok((cpu_seconds(pid)? - before) / t.elapsed().as_secs_f64())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Sum of `node_scrape_collector_duration_seconds` in an exposition.
fn collector_seconds(exposition: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with("node_scrape_collector_duration_seconds{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn node_exporter_command(addr: SocketAddr) -> Command {
    let mut command = Command::new(NODE_EXPORTER);
    command
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.disable-exporter-metrics")
        .arg("--collector.disable-defaults")
        .args(COLLECTORS.map(|c| format!("--collector.{c}")))
        // Upstream's defaults, which the plugin follows (Debian's differ).
        .arg("--collector.netdev.device-exclude=")
        .arg("--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// lookout serving `config`, once it answers.
fn serve(lookout: &Path, data: &Path, config: &Path) -> anyhow::Result<(Killed, SocketAddr)> {
    let (served, addr) = serve_lookout(lookout, data, config)?;
    wait_ready(addr, "/healthz")?;
    Ok((served, addr))
}

/// The node job's results started in `window_ms`: (invocation seconds,
/// sum of collector seconds, samples) each.
fn lookout_results(
    addr: SocketAddr,
    window_ms: std::ops::Range<i64>,
) -> anyhow::Result<Vec<(f64, f64, usize)>> {
    let body = http_get_body(
        addr,
        &format!(
            "/api/v1/results?job=node&limit=10000&since={}",
            window_ms.start / 1000 - 1
        ),
    )?;
    let v: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("results: {}", &body[..body.len().min(300)]))?;
    let mut out = Vec::new();
    for r in v["data"].as_array().context("no results")? {
        let started = r["started_ms"].as_i64().context("no started_ms")?;
        if !window_ms.contains(&started) {
            continue;
        }
        if r["success"] != true {
            bail!("a node invocation failed: {}", r["message"]);
        }
        let samples = r["samples"].as_array().context("no samples")?;
        let collectors: f64 = samples
            .iter()
            .filter(|s| s["name"] == "node_scrape_collector_duration_seconds")
            .filter_map(|s| s["value"].as_f64())
            .sum();
        let failed: Vec<&serde_json::Value> = samples
            .iter()
            .filter(|s| s["name"] == "node_scrape_collector_success" && s["value"] != 1.0)
            .collect();
        if !failed.is_empty() {
            bail!("node collectors failed: {failed:?}");
        }
        out.push((
            r["duration_seconds"].as_f64().context("no duration")?,
            collectors,
            samples.len(),
        ));
    }
    Ok(out)
}

/// A response's bytes as they come: what a timed request waits for (xtask
/// is built unoptimized, so no per-byte work inside the timing).
fn get_raw(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::with_capacity(64 * 1024);
    stream.read_to_end(&mut raw)?;
    Ok(raw)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn run_in(lookout: &Path, wasm: &Path, work: &Path, rounds: u64) -> anyhow::Result<()> {
    let data = work.join("lookout-data");
    let out = Command::new(lookout)
        .arg("--data")
        .arg(&data)
        .args(["plugin", "install"])
        .arg(wasm)
        .output()?;
    if !out.status.success() {
        bail!(
            "lookout plugin install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "{} collectors ({}), one collection per second for {rounds} s each; idle baselines over {IDLE_S} s\n",
        COLLECTORS.len(),
        COLLECTORS.join(", ")
    );

    // lookout idle: the same binary and data, no jobs.
    let empty = work.join("empty.toml");
    std::fs::write(&empty, "")?;
    let lookout_idle = {
        let (server, _) = serve(lookout, &data, &empty)?;
        std::thread::sleep(Duration::from_secs(2));
        idle_cpu_per_second(server.0.id())?
    };

    // lookout with the node job every second.
    let config = work.join("lookout.toml");
    std::fs::write(
        &config,
        "[[jobs]]\nname = \"node\"\nplugin = \"node\"\nevery = \"1s\"\ntargets = [\"localhost\"]\n",
    )?;
    let (server, lookout_addr) = serve(lookout, &data, &config)?;
    let pid = server.0.id();
    // Past the first (cold) invocations.
    std::thread::sleep(Duration::from_secs(3));
    let since = now_ms();
    let before = cpu_seconds(pid)?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(rounds));
    let lookout_cpu = cpu_seconds(pid)? - before;
    let window = t.elapsed().as_secs_f64();
    let results = lookout_results(lookout_addr, since..now_ms())?;
    let lookout_rss = rss_mib(pid);
    drop(server);
    if results.len() < 3 {
        bail!("only {} node invocations in {window:.0} s", results.len());
    }
    let lookout_wall: Vec<f64> = results.iter().map(|r| r.0).collect();
    let lookout_collectors: Vec<f64> = results.iter().map(|r| r.1).collect();
    let lookout_samples = results[results.len() - 1].2;
    let lookout_per_collection = lookout_cpu / results.len() as f64;
    let lookout_net = (lookout_cpu - lookout_idle * window) / results.len() as f64;

    // node_exporter: idle, then one scrape per second, then back to back.
    let ne_addr = free_addr()?;
    let node_exporter = Killed(
        node_exporter_command(ne_addr)
            .spawn()
            .with_context(|| format!("starting {NODE_EXPORTER}"))?,
    );
    let ne_pid = node_exporter.0.id();
    wait_ready(ne_addr, "/metrics")?;
    std::thread::sleep(Duration::from_secs(2));
    let ne_idle = idle_cpu_per_second(ne_pid)?;
    let before = cpu_seconds(ne_pid)?;
    let t = Instant::now();
    let mut ne_collectors = Vec::new();
    let mut ne_samples = 0;
    let mut scrapes = 0u64;
    while t.elapsed() < Duration::from_secs(rounds) {
        let next = Duration::from_secs(scrapes + 1);
        let body = http_get_body(ne_addr, "/metrics")?;
        ne_collectors.push(collector_seconds(&body));
        ne_samples = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        scrapes += 1;
        if let Some(wait) = next.checked_sub(t.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let ne_cpu = cpu_seconds(ne_pid)? - before;
    let ne_window = t.elapsed().as_secs_f64();
    let ne_per_collection = ne_cpu / scrapes as f64;
    let ne_net = (ne_cpu - ne_idle * ne_window) / scrapes as f64;
    let mut ne_wall = Vec::with_capacity(LATENCY_SCRAPES);
    for _ in 0..LATENCY_SCRAPES / 10 {
        get_raw(ne_addr, "/metrics")?;
    }
    for _ in 0..LATENCY_SCRAPES {
        let t = Instant::now();
        let raw = get_raw(ne_addr, "/metrics")?;
        ne_wall.push(t.elapsed().as_secs_f64());
        if !raw.starts_with(b"HTTP/1.1 200") {
            bail!("node_exporter did not answer 200");
        }
    }
    let ne_rss = rss_mib(ne_pid);
    drop(node_exporter);

    println!(
        "{:<56} {:>12} {:>14} {:>8}",
        "", "lookout", "node_exporter", "ratio"
    );
    let row = |what: &str, l: f64, n: f64, unit: &str| {
        // A process that used no CPU tick while idle has no ratio.
        let ratio = if n > 0.0 {
            format!("{:>7.2}×", l / n)
        } else {
            format!("{:>8}", "-")
        };
        println!("{what:<56} {l:>9.3}{unit:<3} {n:>11.3}{unit:<3} {ratio}");
    };
    row(
        "wall time per collection, p50 (invocation / GET)",
        percentile(&lookout_wall, 0.5) * 1e3,
        percentile(&ne_wall, 0.5) * 1e3,
        " ms",
    );
    row(
        "wall time per collection, p90",
        percentile(&lookout_wall, 0.9) * 1e3,
        percentile(&ne_wall, 0.9) * 1e3,
        " ms",
    );
    row(
        "collector time (sum of collector durations), p50",
        percentile(&lookout_collectors, 0.5) * 1e3,
        percentile(&ne_collectors, 0.5) * 1e3,
        " ms",
    );
    row(
        "CPU per collection, idle baseline subtracted",
        lookout_net * 1e3,
        ne_net * 1e3,
        " ms",
    );
    row(
        "CPU per collection, raw",
        lookout_per_collection * 1e3,
        ne_per_collection * 1e3,
        " ms",
    );
    row(
        "idle CPU per second",
        lookout_idle * 1e3,
        ne_idle * 1e3,
        " ms",
    );
    row(
        "samples per collection",
        lookout_samples as f64,
        ne_samples as f64,
        "",
    );
    row("RSS after the run", lookout_rss, ne_rss, " MiB");
    println!(
        "\ncollections measured: lookout {} in {window:.1} s, node_exporter {scrapes} in {ne_window:.1} s (+{LATENCY_SCRAPES} back to back for wall time)",
        results.len()
    );
    Ok(())
}
