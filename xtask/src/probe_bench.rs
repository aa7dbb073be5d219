//! `cargo xtask bench-probes`: HTTP probes per second and CPU per probe,
//! lookout side by side with the real blackbox_exporter (Debian's
//! `prometheus-blackbox-exporter`), in one run.
//!
//! Both load the same modules file (`http_2xx`) and answer the same
//! request, `/probe?module=http_2xx&target=<local page>`, the way
//! Prometheus asks; each is driven alone by the same `CLIENTS` threads for
//! `SECONDS`, after a warm-up, over kept-alive connections as Prometheus
//! scrapes. The target is a small HTTP server in this process (a few
//! threads accepting in a loop, so that it costs little beside the two).
//! An answer counts when its `probe_success` is 1. Figures: probes per second, CPU-milliseconds of the server
//! process per probe (`/proc/<pid>/stat`), median latency of a `/probe`
//! answer; ratios are lookout ÷ blackbox_exporter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::peer_bench::{
    Killed, cpu_seconds, free_addr, install_plugin, rss_mib, serve_lookout, wait_ready,
};

/// Concurrent clients, as several Prometheus scrapes at once.
const CLIENTS: usize = 8;
/// How long each server is driven.
const SECONDS: u64 = 10;
const WARM_UP: Duration = Duration::from_secs(2);

const MODULES: &str = "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      valid_status_codes: [200]\n      preferred_ip_protocol: ip4\n";

/// What driving one server measured.
struct Figures {
    probes_per_second: f64,
    cpu_ms_per_probe: f64,
    median_ms: f64,
    /// Resident memory of the server right after the run.
    rss_mib: f64,
    failed: u64,
    /// The first failed answer, to say why.
    first_failure: Option<String>,
}

pub fn run(lookout: &Path, wasm: &Path) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let target = serve_target()?;
    let modules = work.path().join("blackbox.yml");
    std::fs::write(&modules, MODULES)?;
    let path = format!("/probe?module=http_2xx&target=http://{target}/health");

    let data = work.path().join("lookout-data");
    install_plugin(lookout, &data, &wasm.join("lookout_plugin_http.wasm"))?;
    let (lookout_server, lookout_addr) = serve_lookout(lookout, &data, &modules)?;
    wait_ready(lookout_addr, "/healthz")?;

    let blackbox_addr = free_addr()?;
    let blackbox = Killed(
        Command::new("/usr/bin/prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", modules.display()))
            .arg(format!("--web.listen-address={blackbox_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting blackbox_exporter (apt-get install prometheus-blackbox-exporter)")?,
    );
    wait_ready(blackbox_addr, "/metrics")?;

    println!(
        "HTTP probes through /probe, {CLIENTS} clients, {SECONDS} s each, target a local page:"
    );
    let theirs = drive(blackbox_addr, blackbox.0.id(), &path)?;
    let ours = drive(lookout_addr, lookout_server.0.id(), &path)?;
    let row = |what: &str, ours: f64, theirs: f64, unit: &str| {
        println!(
            "  {what:<28} lookout {ours:>9.3} {unit:<6} blackbox_exporter {theirs:>9.3} {unit:<6} ratio {:.2}×",
            ours / theirs
        );
    };
    row(
        "probes per second",
        ours.probes_per_second,
        theirs.probes_per_second,
        "/s",
    );
    row(
        "CPU per probe",
        ours.cpu_ms_per_probe,
        theirs.cpu_ms_per_probe,
        "ms",
    );
    row(
        "median /probe latency",
        ours.median_ms,
        theirs.median_ms,
        "ms",
    );
    row("RSS after the run", ours.rss_mib, theirs.rss_mib, "MiB");
    if ours.failed + theirs.failed > 0 {
        bail!(
            "failed probes: lookout {} (first: {:?}), blackbox_exporter {} (first: {:?})",
            ours.failed,
            ours.first_failure,
            theirs.failed,
            theirs.first_failure
        );
    }
    Ok(())
}

/// Drives one server with `CLIENTS` threads for `SECONDS`.
fn drive(addr: SocketAddr, pid: u32, path: &str) -> anyhow::Result<Figures> {
    let mut warm = KeepAlive::connect(addr)?;
    let warm_until = Instant::now() + WARM_UP;
    while Instant::now() < warm_until {
        warm.get(path)?;
    }
    drop(warm);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let first_failure = Arc::new(Mutex::new(None::<String>));
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, done, failed, latencies, first_failure) = (
                stop.clone(),
                done.clone(),
                failed.clone(),
                latencies.clone(),
                first_failure.clone(),
            );
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut conn = KeepAlive::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    let asked = Instant::now();
                    let answer = match &mut conn {
                        Ok(conn) => conn.get(&path),
                        Err(e) => Err(anyhow::anyhow!("connecting: {e}")),
                    };
                    match answer {
                        Ok(answer) if answer.lines().any(|l| l == "probe_success 1") => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            let why = match other {
                                Ok(answer) => answer,
                                Err(e) => format!("{e:#}"),
                            };
                            first_failure.lock().unwrap().get_or_insert(why);
                        }
                    }
                    mine.push(asked.elapsed().as_secs_f64() * 1e3);
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(SECONDS));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let probes = done.load(Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        probes_per_second: probes as f64 / elapsed,
        cpu_ms_per_probe: cpu * 1e3 / probes.max(1) as f64,
        median_ms: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
        rss_mib: rss_mib(pid),
        failed: failed.load(Ordering::Relaxed),
        first_failure: first_failure.lock().unwrap().take(),
    })
}

/// A kept-alive HTTP/1.1 connection to a server, as a Prometheus scrape
/// loop holds one.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> anyhow::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            addr,
        })
    }

    /// GET `path`: the body, de-chunked.
    fn get(&mut self, path: &str) -> anyhow::Result<String> {
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.addr
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("answer: {line:?}");
        }
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0u8; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let mut chunk = vec![0u8; length.context("no length")?];
            self.reader.read_exact(&mut chunk)?;
            body = chunk;
        }
        Ok(String::from_utf8(body)?)
    }
}

/// A page that answers 200 at once, one request per connection, served by
/// a few threads accepting in a loop (a thread per connection would cost
/// more than the probes measured).
fn serve_target() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    for _ in 0..4 {
        let listener = listener.try_clone()?;
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 2048];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            }
        });
    }
    Ok(addr)
}
