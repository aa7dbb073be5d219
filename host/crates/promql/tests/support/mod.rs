//! Support for the conformance test: a synthetic OpenMetrics data set, an
//! in-memory series source loaded from it, a real Prometheus serving the
//! same data, and a minimal HTTP client.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lookout_promql::{Labels, MatchOp, Matcher, Series, SeriesSource};
use regex::Regex;

/// A deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The scrape interval of the synthetic data.
pub const SCRAPE_MS: i64 = 15_000;

/// A sample name, its labels without `__name__`, and its points.
type Rows = Vec<(String, Vec<(String, String)>, Vec<(i64, f64)>)>;

/// One metric family of the data set, written in OpenMetrics text.
struct Family {
    name: String,
    kind: &'static str,
    series: Rows,
}

fn lbl(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Timestamps every 15 s from `start` to `end` (ms), each shifted by a
/// per-series phase and a little per-sample jitter, as real scrapes are.
fn scrape_times(rng: &mut Rng, start: i64, end: i64, interval: i64) -> Vec<i64> {
    let phase = rng.below(interval as u64 / 2) as i64;
    let mut out = Vec::new();
    let mut t = start + phase;
    while t <= end {
        out.push(t + rng.below(40) as i64);
        t += interval;
    }
    out
}

/// Builds the data set: counters with resets, gauges (one with NaN, one
/// negative), a classic histogram, series that stop or start midway, a
/// sparse series (gaps longer than the lookback) and `up`.
pub fn generate(start: i64, end: i64) -> String {
    let mut rng = Rng::new(0x5eed_1234_abcd);
    let mut fams: Vec<Family> = Vec::new();

    // Counters: http_requests_total{job, instance, method, code}.
    let mut reqs = Family {
        name: "http_requests".into(),
        kind: "counter",
        series: Vec::new(),
    };
    let targets = [
        ("api", "a:9100"),
        ("api", "b:9100"),
        ("web", "c:9100"),
        ("web", "d:9100"),
    ];
    for (job, instance) in targets {
        for method in ["GET", "POST"] {
            for code in ["200", "500"] {
                let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
                let base_rate = if code == "200" {
                    5.0 + rng.unit() * 20.0
                } else {
                    rng.unit() * 2.0
                };
                let mut v = (rng.below(1000)) as f64;
                let reset_at = if rng.below(3) == 0 {
                    Some(rng.below(times.len() as u64) as usize)
                } else {
                    None
                };
                // d:9100 stops 50 minutes before the end (a target that went away).
                let stop = if instance == "d:9100" {
                    end - 50 * 60_000
                } else {
                    i64::MAX
                };
                let mut pts = Vec::new();
                for (i, &t) in times.iter().enumerate() {
                    if t > stop {
                        break;
                    }
                    if Some(i) == reset_at {
                        v = rng.below(5) as f64;
                    } else {
                        v += (base_rate * 15.0 * (0.5 + rng.unit())).round();
                    }
                    pts.push((t, v));
                }
                reqs.series.push((
                    "http_requests_total".into(),
                    lbl(&[
                        ("job", job),
                        ("instance", instance),
                        ("method", method),
                        ("code", code),
                    ]),
                    pts,
                ));
            }
        }
    }
    fams.push(reqs);

    // A counter with fractional increments and two resets.
    let mut cpu = Family {
        name: "node_cpu_seconds".into(),
        kind: "counter",
        series: Vec::new(),
    };
    for (instance, mode) in [
        ("a:9100", "idle"),
        ("a:9100", "user"),
        ("b:9100", "idle"),
        ("b:9100", "user"),
    ] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let mut v = rng.unit() * 1e5;
        let mut pts = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            if i == times.len() / 3 || i == 2 * times.len() / 3 + 7 {
                v = rng.unit() * 3.0;
            } else {
                v += rng.unit() * 14.9;
            }
            pts.push((t, v));
        }
        cpu.series.push((
            "node_cpu_seconds_total".into(),
            lbl(&[("job", "node"), ("instance", instance), ("mode", mode)]),
            pts,
        ));
    }
    fams.push(cpu);

    // Gauges: a random walk per target.
    let mut mem = Family {
        name: "node_memory_free_bytes".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    for instance in ["a:9100", "b:9100", "c:9100"] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let mut v = 4e8 + rng.unit() * 4e8;
        let pts = times
            .iter()
            .map(|&t| {
                v = (v + (rng.unit() - 0.5) * 2e7).max(1e6);
                (t, v.round())
            })
            .collect();
        mem.series.push((
            "node_memory_free_bytes".into(),
            lbl(&[("job", "node"), ("instance", instance)]),
            pts,
        ));
    }
    fams.push(mem);

    // Temperatures go below zero.
    let mut temp = Family {
        name: "temperature_celsius".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    for (instance, room) in [
        ("a:9100", "cellar"),
        ("b:9100", "attic"),
        ("c:9100", "attic"),
    ] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let mut v = rng.unit() * 10.0 - 5.0;
        let pts = times
            .iter()
            .map(|&t| {
                v += (rng.unit() - 0.5) * 0.8;
                (t, (v * 1000.0).round() / 1000.0)
            })
            .collect();
        temp.series.push((
            "temperature_celsius".into(),
            lbl(&[("instance", instance), ("room", room)]),
            pts,
        ));
    }
    fams.push(temp);

    // A gauge with NaN values now and then, and repeated values.
    let mut queue = Family {
        name: "queue_length".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    for instance in ["a:9100", "b:9100"] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let pts = times
            .iter()
            .map(|&t| {
                let v = if rng.below(23) == 0 {
                    f64::NAN
                } else {
                    rng.below(6) as f64
                };
                (t, v)
            })
            .collect();
        queue.series.push((
            "queue_length".into(),
            lbl(&[("job", "worker"), ("instance", instance)]),
            pts,
        ));
    }
    fams.push(queue);

    // up: mostly 1, sometimes 0.
    let mut up = Family {
        name: "up".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    for (job, instance) in [
        ("api", "a:9100"),
        ("api", "b:9100"),
        ("web", "c:9100"),
        ("node", "a:9100"),
    ] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let pts = times
            .iter()
            .map(|&t| (t, if rng.below(40) == 0 { 0.0 } else { 1.0 }))
            .collect();
        up.series.push((
            "up".into(),
            lbl(&[("job", job), ("instance", instance)]),
            pts,
        ));
    }
    fams.push(up);

    // One info-style series per instance for group_left joins.
    let mut info = Family {
        name: "node_info".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    for (instance, version) in [
        ("a:9100", "1.2.0"),
        ("b:9100", "1.3.1"),
        ("c:9100", "1.3.1"),
    ] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let pts = times.iter().map(|&t| (t, 1.0)).collect();
        info.series.push((
            "node_info".into(),
            lbl(&[("instance", instance), ("version", version)]),
            pts,
        ));
    }
    fams.push(info);

    // A batch job's gauge that stops an hour before the end, and one that
    // starts an hour in.
    let mut batch = Family {
        name: "batch_job_last_success".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let times = scrape_times(&mut rng, start, end - 60 * 60_000, SCRAPE_MS);
    batch.series.push((
        "batch_job_last_success".into(),
        lbl(&[("job", "batch")]),
        times.iter().map(|&t| (t, (t / 1000) as f64)).collect(),
    ));
    fams.push(batch);
    let mut late = Family {
        name: "late_gauge".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let times = scrape_times(&mut rng, start + 60 * 60_000, end, SCRAPE_MS);
    late.series.push((
        "late_gauge".into(),
        lbl(&[("job", "late")]),
        times.iter().map(|&t| (t, rng.unit() * 100.0)).collect(),
    ));
    fams.push(late);

    // Sampled every 7 minutes: gaps longer than the 5 minute lookback.
    let mut sparse = Family {
        name: "sparse_gauge".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let times = scrape_times(&mut rng, start, end, 7 * 60_000);
    sparse.series.push((
        "sparse_gauge".into(),
        lbl(&[("job", "sparse")]),
        times.iter().map(|&t| (t, rng.below(100) as f64)).collect(),
    ));
    fams.push(sparse);

    // Classic histogram: request_duration_seconds{job, instance}.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    let mut hist = Family {
        name: "request_duration_seconds".into(),
        kind: "histogram",
        series: Vec::new(),
    };
    for (job, instance) in [("api", "a:9100"), ("api", "b:9100"), ("web", "c:9100")] {
        let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
        let mut counts = [0.0f64; 7];
        let mut sum = 0.0f64;
        let mut rows: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 9];
        let skew = rng.unit();
        for &t in &times {
            let n = rng.below(30);
            for _ in 0..n {
                let x = rng.unit().powf(2.0 + skew * 3.0) * 3.0;
                sum += x;
                for (i, b) in bounds.iter().enumerate() {
                    let bound: f64 = if *b == "+Inf" {
                        f64::INFINITY
                    } else {
                        b.parse().unwrap()
                    };
                    if x <= bound {
                        counts[i] += 1.0;
                    }
                }
            }
            for i in 0..7 {
                rows[i].push((t, counts[i]));
            }
            rows[7].push((t, (sum * 1e6).round() / 1e6));
            rows[8].push((t, counts[6]));
        }
        for (i, b) in bounds.iter().enumerate() {
            hist.series.push((
                "request_duration_seconds_bucket".into(),
                lbl(&[("job", job), ("instance", instance), ("le", b)]),
                rows[i].clone(),
            ));
        }
        hist.series.push((
            "request_duration_seconds_sum".into(),
            lbl(&[("job", job), ("instance", instance)]),
            rows[7].clone(),
        ));
        hist.series.push((
            "request_duration_seconds_count".into(),
            lbl(&[("job", job), ("instance", instance)]),
            rows[8].clone(),
        ));
    }
    fams.push(hist);

    // Two metrics with the same labels but the name, for "same labelset" errors.
    let mut twins = Family {
        name: "twin_a".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
    twins.series.push((
        "twin_a".into(),
        lbl(&[("job", "twin")]),
        times.iter().map(|&t| (t, 1.0)).collect(),
    ));
    fams.push(twins);
    let mut twins = Family {
        name: "twin_b".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let times = scrape_times(&mut rng, start, end, SCRAPE_MS);
    twins.series.push((
        "twin_b".into(),
        lbl(&[("job", "twin")]),
        times.iter().map(|&t| (t, 2.0)).collect(),
    ));
    fams.push(twins);

    let mut out = String::new();
    for f in &fams {
        writeln!(out, "# TYPE {} {}", f.name, f.kind).unwrap();
        for (name, labels, pts) in &f.series {
            let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            for (t, v) in pts {
                let value = if v.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{v}")
                };
                writeln!(
                    out,
                    "{name}{{{}}} {value} {}.{:03}",
                    ls.join(","),
                    t / 1000,
                    t % 1000
                )
                .unwrap();
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Series held in memory, loaded from OpenMetrics text the way promtool
/// reads it (timestamps: seconds as a float, times 1000, truncated).
pub struct MemorySource {
    pub series: Vec<Series>,
}

impl MemorySource {
    pub fn from_openmetrics(text: &str) -> MemorySource {
        let mut map: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, rest) = line.split_once(' ').expect("series and value");
            let (value, ts) = rest.split_once(' ').expect("value and timestamp");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut ls: Labels = vec![("__name__".to_string(), name.to_string())];
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("label pair");
                ls.push((k.to_string(), v.trim_matches('"').to_string()));
            }
            ls.sort();
            let v: f64 = value.parse().expect("value");
            let t = (ts.parse::<f64>().expect("timestamp") * 1000.0) as i64;
            map.entry(ls).or_default().push((t, v));
        }
        MemorySource {
            series: map
                .into_iter()
                .map(|(labels, samples)| Series { labels, samples })
                .collect(),
        }
    }

    pub fn find(&self, name: &str) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| s.labels.iter().any(|(k, v)| k == "__name__" && v == name))
            .collect()
    }
}

impl SeriesSource for MemorySource {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let compiled: Vec<(&Matcher, Option<Regex>)> = matchers
            .iter()
            .map(|m| {
                let re = match m.op {
                    MatchOp::Regex | MatchOp::NotRegex => {
                        Some(Regex::new(&format!("^(?:{})$", m.value)).map_err(|e| e.to_string())?)
                    }
                    _ => None,
                };
                Ok((m, re))
            })
            .collect::<Result<_, String>>()?;
        let mut out = Vec::new();
        for s in &self.series {
            let ok = compiled.iter().all(|(m, re)| {
                let v = s
                    .labels
                    .iter()
                    .find(|(k, _)| *k == m.name)
                    .map_or("", |(_, v)| v.as_str());
                match m.op {
                    MatchOp::Equal => v == m.value,
                    MatchOp::NotEqual => v != m.value,
                    MatchOp::Regex => re.as_ref().unwrap().is_match(v),
                    MatchOp::NotRegex => !re.as_ref().unwrap().is_match(v),
                }
            });
            if !ok {
                continue;
            }
            let samples: Vec<(i64, f64)> = s
                .samples
                .iter()
                .copied()
                .filter(|p| p.0 >= mint && p.0 <= maxt)
                .collect();
            if !samples.is_empty() {
                out.push(Series {
                    labels: s.labels.clone(),
                    samples,
                });
            }
        }
        Ok(out)
    }
}

/// A Prometheus server on 127.0.0.1 over a tsdb directory; killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Prometheus {
    pub fn start(dir: &Path, tsdb: &Path) -> Result<Prometheus, String> {
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "").map_err(|e| e.to_string())?;
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting prometheus: {e}"))?;
        let mut p = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(port, "/-/ready") {
                return Ok(p);
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(format!(
                    "prometheus exited with {status}; see {}",
                    dir.join("prometheus.log").display()
                ));
            }
            if Instant::now() > deadline {
                return Err("prometheus not ready after 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let (_, body) = http_get(self.port, path)?;
        serde_json::from_str(&body).map_err(|e| format!("bad JSON from prometheus: {e}: {body}"))
    }
}

/// `GET path` over HTTP/1.0 (no chunked encoding), returning status and body.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    Ok((status, body.to_string()))
}

pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => write!(out, "%{b:02X}").unwrap(),
        }
    }
    out
}

/// Milliseconds as the seconds Prometheus' API takes.
pub fn secs(t: i64) -> String {
    format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("LOOKOUT_KEEP_CONFORMANCE_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The conformance data in lookout's storage engine (`lookout-tsdb` over a
/// redb file), appended in batches the way ingest appends them.
pub struct TsdbSource(lookout_tsdb::Tsdb);

impl TsdbSource {
    pub fn load(path: &Path, from: &MemorySource) -> TsdbSource {
        let db = std::sync::Arc::new(redb::Database::create(path).expect("redb file"));
        let tsdb =
            lookout_tsdb::Tsdb::open(db, lookout_tsdb::Options::default()).expect("tsdb opens");
        let rows: Vec<(lookout_tsdb::Labels, i64, f64)> = from
            .series
            .iter()
            .flat_map(|s| {
                s.samples
                    .iter()
                    .map(move |(t, v)| (s.labels.clone(), *t, *v))
            })
            .collect();
        for batch in rows.chunks(10_000) {
            let outcome = tsdb.append(batch).expect("append");
            assert_eq!(
                outcome.appended,
                batch.len(),
                "every conformance sample is stored: {outcome:?}"
            );
        }
        TsdbSource(tsdb)
    }
}

impl SeriesSource for TsdbSource {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let op = |op: MatchOp| match op {
            MatchOp::Equal => lookout_tsdb::MatchOp::Equal,
            MatchOp::NotEqual => lookout_tsdb::MatchOp::NotEqual,
            MatchOp::Regex => lookout_tsdb::MatchOp::Regex,
            MatchOp::NotRegex => lookout_tsdb::MatchOp::NotRegex,
        };
        let matchers = matchers
            .iter()
            .map(|m| {
                lookout_tsdb::Matcher::new(m.name.clone(), op(m.op), m.value.clone())
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .0
            .select(&matchers, mint, maxt)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: s.samples.into_iter().map(|p| (p.t, p.v)).collect(),
            })
            .collect())
    }
}
