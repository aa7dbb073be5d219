//! `cargo xtask bench-tsdb`: lookout's time-series engine side by side
//! with a real Prometheus (Debian's `prometheus`) on the same data, in one
//! run: backfill speed, bytes per sample on disk, and `query_range` latency
//! over 24 h at 15 s for 1 and for 100 series, through each one's HTTP API.
//! Prints figures and ratios (lookout ÷ Prometheus).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const SERIES: usize = 100;
const STEP_S: i64 = 15;
const DAY_S: i64 = 24 * 3600;

/// A child process, killed when dropped.
pub(crate) struct Killed(pub(crate) Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Realistic data: a third counters (steady increments), a third gauges
/// with two decimals (random walk), a third constants.
fn openmetrics(end_s: i64) -> String {
    let start = end_s - DAY_S;
    let mut out = String::with_capacity(SERIES * (DAY_S / STEP_S) as usize * 48);
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for kind in ["counter", "gauge", "constant"] {
        let family = format!("bench_{kind}");
        let _ = writeln!(
            out,
            "# TYPE {family} {}",
            if kind == "counter" {
                "counter"
            } else {
                "gauge"
            }
        );
        // 34 + 33 + 33 = SERIES
        for s in 0..SERIES / 3 + usize::from(kind == "counter") {
            let mut value = 0.0f64;
            let mut t = start;
            while t <= end_s {
                match kind {
                    "counter" => value += (rand() % 20) as f64,
                    "gauge" => {
                        value =
                            ((value + (rand() % 201) as f64 / 100.0 - 1.0) * 100.0).round() / 100.0
                    }
                    _ => value = 42.0,
                }
                let name = if kind == "counter" {
                    format!("{family}_total")
                } else {
                    family.clone()
                };
                let _ = writeln!(out, "{name}{{series=\"{s}\"}} {value} {t}");
                t += STEP_S;
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

pub(crate) fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    Ok(String::from_utf8(http_get_raw(addr, path)?)?)
}

/// A response's body, chunked transfer encoding undone.
pub(crate) fn http_get_body(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let raw = http_get(addr, path)?;
    let (head, mut body) = raw.split_once("\r\n\r\n").context("no end of headers")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16)?;
        if n == 0 {
            break;
        }
        out.push_str(rest.get(..n).context("short chunk")?);
        body = rest[n..].trim_start_matches("\r\n");
    }
    Ok(out)
}

/// The response's bytes, as they come: what a timed request waits for
/// (this tool is built unoptimized, so no per-byte work in the timing).
fn http_get_raw(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    // One write: `write!` straight to the socket sends each piece as its
    // own segment, and the server waits for the rest.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::with_capacity(256 * 1024);
    s.read_to_end(&mut raw)?;
    Ok(raw)
}

pub(crate) fn wait_ready(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if http_get(addr, path).is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{addr}{path} not ready after 60 s")
}

/// `lookout --data <data> serve --config <config>` on a free port, its
/// output discarded; killed when the handle drops. The caller waits for it.
pub(crate) fn serve_lookout(
    lookout: &Path,
    data: &Path,
    config: &Path,
) -> anyhow::Result<(Killed, SocketAddr)> {
    let addr = free_addr()?;
    let child = Command::new(lookout)
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", &addr.to_string(), "--config"])
        .arg(config)
        .env("LOOKOUT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting lookout serve")?;
    Ok((Killed(child), addr))
}

/// `lookout --data <data> plugin install <wasm>`.
pub(crate) fn install_plugin(lookout: &Path, data: &Path, wasm: &Path) -> anyhow::Result<()> {
    let out = Command::new(lookout)
        .arg("--data")
        .arg(data)
        .args(["plugin", "install"])
        .arg(wasm)
        .output()?;
    if !out.status.success() {
        bail!(
            "installing {}: {}",
            wasm.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Resident memory of a process, MiB (0 when it is gone).
pub(crate) fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// utime + stime of a process, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command may hold spaces; fields count from after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0) // USER_HZ
}

pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Median `query_range` latency on each server after a warm-up, one
/// server at a time: Prometheus' garbage collector keeps working after its
/// own responses, and on two cores that would be charged to lookout's
/// requests if they were interleaved.
fn median_query_pair(
    addrs: [SocketAddr; 2],
    query: &str,
    start: i64,
    end: i64,
    repeats: usize,
) -> anyhow::Result<[Duration; 2]> {
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let path = format!("/api/v1/query_range?query={encoded}&start={start}&end={end}&step={STEP_S}");
    let mut times = [Vec::new(), Vec::new()];
    for (addr, times) in addrs.iter().zip(&mut times) {
        let first = http_get(*addr, &path)?;
        if !first.contains("\"status\":\"success\"") {
            bail!(
                "{addr}: {query} failed: {}",
                first.lines().last().unwrap_or("")
            );
        }
        for _ in 0..repeats / 10 {
            http_get_raw(*addr, &path)?;
        }
        for _ in 0..repeats {
            let t = Instant::now();
            http_get_raw(*addr, &path)?;
            times.push(t.elapsed());
        }
    }
    Ok(times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    }))
}

pub fn run(lookout: &Path) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("lookout-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    // End two hours back: Prometheus' backfill only writes complete blocks.
    let end = (now / STEP_S) * STEP_S - 2 * 3600;
    let start = end - DAY_S;
    let file = work.join("bench.om");
    std::fs::write(&file, openmetrics(end))?;
    let samples = SERIES as u64 * (DAY_S / STEP_S + 1) as u64;
    println!(
        "data: {SERIES} series × 24 h at 15 s = {samples} samples (⅓ counters, ⅓ 2-decimal gauges, ⅓ constants)\n"
    );

    // Backfill both.
    let data = work.join("lookout-data");
    let t = Instant::now();
    let out = Command::new(lookout)
        .arg("--data")
        .arg(&data)
        .args(["tsdb", "import", "openmetrics"])
        .arg(&file)
        .output()?;
    if !out.status.success() {
        bail!("lookout import: {}", String::from_utf8_lossy(&out.stderr));
    }
    let lookout_import = t.elapsed();
    let prom_dir = work.join("prometheus-data");
    let t = Instant::now();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&prom_dir)
        .output()
        .context("promtool (Debian's prometheus package) is needed")?;
    if !out.status.success() {
        bail!("promtool: {}", String::from_utf8_lossy(&out.stderr));
    }
    let prom_import = t.elapsed();

    let lookout_addr = free_addr()?;
    let _lookout = Killed(
        Command::new(lookout)
            .arg("--data")
            .arg(&data)
            .args(["serve", "--listen", &lookout_addr.to_string(), "--config"])
            .arg(write_empty(&work.join("empty.toml"))?)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let prom_addr = free_addr()?;
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                write_empty(&work.join("prometheus.yml"))?.display()
            ))
            .arg(format!("--storage.tsdb.path={}", prom_dir.display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_ready(lookout_addr, "/healthz")?;
    wait_ready(prom_addr, "/-/ready")?;

    let lookout_bytes = std::fs::metadata(data.join("lookout.redb"))?.len();
    let prom_bytes = dir_size(&prom_dir);
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "", "lookout", "prometheus", "ratio"
    );
    let row = |what: &str, l: f64, p: f64, unit: &str| {
        println!(
            "{what:<44} {:>11.3}{unit:<3} {:>11.3}{unit:<3} {:>7.2}×",
            l,
            p,
            l / p
        );
    };
    row(
        "backfill, samples/s (import command)",
        samples as f64 / lookout_import.as_secs_f64(),
        samples as f64 / prom_import.as_secs_f64(),
        "",
    );
    row(
        "bytes per sample on disk",
        lookout_bytes as f64 / samples as f64,
        prom_bytes as f64 / samples as f64,
        " B",
    );
    for (what, query, repeats) in [
        (
            "query_range 24 h @ 15 s, 1 series",
            "bench_gauge{series=\"7\"}",
            300,
        ),
        (
            "query_range 24 h @ 15 s, 100 series",
            "{__name__=~\"bench_.*\"}",
            30,
        ),
    ] {
        let [l, p] = median_query_pair([lookout_addr, prom_addr], query, start, end, repeats)?;
        row(
            &format!("{what}, p50"),
            l.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            " ms",
        );
    }
    let rss = rss_mib;
    row(
        "RSS after the queries",
        rss(_lookout.0.id()),
        rss(_prometheus.0.id()),
        " MiB",
    );
    if std::env::var_os("LOOKOUT_BENCH_HOLD").is_some() {
        // For `perf record -p`: both servers stay up with the data loaded.
        println!(
            "holding: lookout {lookout_addr} (pid {}), prometheus {prom_addr}; query range {start}..{end}",
            _lookout.0.id()
        );
        std::thread::sleep(Duration::from_secs(120));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

pub(crate) fn write_empty(path: &PathBuf) -> anyhow::Result<PathBuf> {
    std::fs::write(path, "")?;
    Ok(path.clone())
}
