//! Ingest throughput, bytes per sample and select latency of lookout-tsdb.
//!
//! `cargo bench -p lookout-tsdb --bench ingest` (set `CARGO_TARGET_DIR` as
//! the workspace notes say). Everything runs on one thread; CPU time is
//! that thread's (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! Data: 1000 series × 24 h 15 min at 15 s (5.82 M samples), appended in
//! batches of 10,000 samples (10 timestamps × 1000 series); queries read
//! the last 24 h.
//! - realistic: ⅓ counters (half integer request counts, half CPU seconds
//!   with 2 decimals), ⅓ gauges (2-decimal random walk, as an exporter
//!   prints them), ⅓ constants (`up`, sizes, info metrics);
//! - pessimistic: the same counters and constants, but ⅓ noisy gauges
//!   with full-precision random values, and timestamps jittered 0–5 ms.
//!
//! Timestamps: lookout's scheduler stamps a sample with the time its
//! invocation started, a few ms after the tick; the realistic set is
//! measured both on the tick (what Prometheus' timestamp alignment does)
//! and with that jitter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_tsdb::{Labels, MatchOp, Matcher, Options, Tsdb};

const SERIES: usize = 1000;
const STEP_MS: i64 = 15_000;
const POINTS: usize = 24 * 3600 * 1000 / STEP_MS as usize;
/// 15 minutes more than a day, so heads hold samples at the end (24 h is
/// exactly 48 chunks of 120) and "the last 24 h" reads heads too.
const INGEST_POINTS: usize = POINTS + 60;
const BATCH_POINTS: usize = 10;
/// Aligned to 15 s.
const T0: i64 = 1_699_999_995_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Counter,
    Gauge,
    NoisyGauge,
    Constant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    Realistic,
    Pessimistic,
    Only(Kind),
}

struct Gen {
    kind: Kind,
    flavour: usize,
    /// Integer state: counter count, hundredths, random-walk position.
    k: i64,
    rate: f64,
    util: f64,
    constant: f64,
}

impl Gen {
    fn new(i: usize, mix: Mix, rng: &mut Rng) -> Gen {
        let kind = match mix {
            Mix::Only(k) => k,
            Mix::Realistic => [Kind::Counter, Kind::Gauge, Kind::Constant][i % 3],
            Mix::Pessimistic => [Kind::Counter, Kind::NoisyGauge, Kind::Constant][i % 3],
        };
        Gen {
            kind,
            flavour: i / 3 % 3,
            k: rng.range(1_000, 10_000_000),
            rate: rng.range(1, 100) as f64,
            util: rng.unit(),
            constant: [1.0, 16_777_216_000.0, 4.0][i / 3 % 3],
        }
    }

    fn next(&mut self, rng: &mut Rng) -> f64 {
        match self.kind {
            Kind::Counter if self.flavour == 0 => {
                // Requests: rate × 15 s, ±10 %.
                self.k += (self.rate * 15.0 * (0.9 + 0.2 * rng.unit())).round() as i64;
                self.k as f64
            }
            Kind::Counter => {
                // CPU seconds in hundredths: utilisation wanders.
                self.util = (self.util + 0.1 * (rng.unit() - 0.5)).clamp(0.0, 1.0);
                self.k += (self.util * 1500.0).round() as i64;
                self.k as f64 / 100.0
            }
            Kind::Gauge => {
                self.k += rng.range(-50, 50);
                self.k as f64 / 100.0
            }
            Kind::NoisyGauge => 50.0 + 10.0 * rng.unit(),
            Kind::Constant => self.constant,
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "bench_requests_total",
        Kind::Gauge => "bench_temperature_celsius",
        Kind::NoisyGauge => "bench_noise",
        Kind::Constant => "bench_info",
    }
}

fn series_labels(i: usize, kind: Kind) -> Labels {
    vec![
        ("__name__".to_string(), kind_name(kind).to_string()),
        ("group".to_string(), format!("g{}", i / 100)),
        ("instance".to_string(), format!("host-{i:04}:9100")),
        ("job".to_string(), "bench".to_string()),
    ]
}

/// On-CPU time of this thread (Linux; `None` elsewhere).
#[cfg(target_os = "linux")]
fn thread_cpu() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu() -> Option<Duration> {
    None
}

struct Ingested {
    samples: usize,
    wall: Duration,
    cpu: Option<Duration>,
    max_batch: Duration,
}

fn ingest(tsdb: &Tsdb, mix: Mix, series: usize, jitter_ms: i64, seed: u64) -> Ingested {
    let mut rng = Rng(seed);
    let mut gens: Vec<Gen> = (0..series).map(|i| Gen::new(i, mix, &mut rng)).collect();
    let labels: Vec<Labels> = (0..series)
        .map(|i| series_labels(i, gens[i].kind))
        .collect();
    let mut out = Ingested {
        samples: 0,
        wall: Duration::ZERO,
        cpu: Some(Duration::ZERO),
        max_batch: Duration::ZERO,
    };
    let mut rows = Vec::with_capacity(series * BATCH_POINTS);
    for batch in 0..INGEST_POINTS / BATCH_POINTS {
        rows.clear();
        for p in 0..BATCH_POINTS {
            let tick = T0 + ((batch * BATCH_POINTS + p) as i64) * STEP_MS;
            for (i, g) in gens.iter_mut().enumerate() {
                let t = if jitter_ms > 0 {
                    tick + rng.range(0, jitter_ms)
                } else {
                    tick
                };
                rows.push((labels[i].clone(), t, g.next(&mut rng)));
            }
        }
        let (cpu0, start) = (thread_cpu(), Instant::now());
        let outcome = tsdb.append(&rows).expect("append");
        let took = start.elapsed();
        out.cpu = match (out.cpu, cpu0, thread_cpu()) {
            (Some(total), Some(a), Some(b)) => Some(total + (b - a)),
            _ => None,
        };
        assert_eq!(outcome.appended, rows.len());
        out.wall += took;
        out.max_batch = out.max_batch.max(took);
        out.samples += rows.len();
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn select_latency(tsdb: &Tsdb, label: &str) {
    // The last 24 h, as Grafana asks by default.
    let end = T0 + (INGEST_POINTS as i64 - 1) * STEP_MS;
    let day = (end - (POINTS as i64 - 1) * STEP_MS, end);
    let mut one = Vec::new();
    for i in 0..2000 {
        let s = i * 7 % SERIES;
        let kind = [Kind::Counter, Kind::Gauge, Kind::Constant][s % 3];
        let matchers = [
            Matcher::new("__name__", MatchOp::Equal, kind_name(kind)).unwrap(),
            Matcher::new("instance", MatchOp::Equal, format!("host-{s:04}:9100")).unwrap(),
        ];
        let start = Instant::now();
        let found = tsdb.select(&matchers, day.0, day.1).unwrap();
        one.push(start.elapsed());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].samples.len(), POINTS);
    }
    let mut hundred = Vec::new();
    for i in 0..200 {
        let matchers = [Matcher::new("group", MatchOp::Equal, format!("g{}", i % 10)).unwrap()];
        let start = Instant::now();
        let found = tsdb.select(&matchers, day.0, day.1).unwrap();
        hundred.push(start.elapsed());
        assert_eq!(found.len(), 100);
    }
    one.sort();
    hundred.sort();
    println!(
        "select 24 h ({label}):   1 series p50 {:>7.1?} p99 {:>7.1?}   |   100 series p50 {:>7.1?} p99 {:>7.1?}",
        percentile(&one, 0.5),
        percentile(&one, 0.99),
        percentile(&hundred, 0.5),
        percentile(&hundred, 0.99)
    );
}

/// Sizes after flush: payload alone, the engine's pages, and the file
/// after `compact()` (which needs the database to itself).
fn report_bytes(
    label: &str,
    dir: &std::path::Path,
    tsdb: Tsdb,
    db: Arc<redb::Database>,
    samples: usize,
) {
    tsdb.flush().unwrap();
    let stats = tsdb.stats().unwrap();
    assert_eq!(stats.samples as usize, samples);
    drop(tsdb);
    let mut db = Arc::into_inner(db).expect("database still shared");
    while db.compact().unwrap() {}
    drop(db);
    let file = std::fs::metadata(dir.join("bench.redb")).unwrap().len();
    let per = |b: u64| b as f64 / samples as f64;
    println!(
        "bytes/sample {label:<34} payload {:>5.2}   chunk pages {:>5.2}   chunks+index {:>5.2}   file after compact {:>5.2}   ({} chunks)",
        per(stats.chunk_payload_bytes),
        per(stats.chunk_bytes),
        per(stats.disk_bytes()),
        per(file),
        stats.chunks
    );
}

fn fresh() -> (tempfile::TempDir, Arc<redb::Database>, Tsdb) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(redb::Database::create(dir.path().join("bench.redb")).unwrap());
    let tsdb = Tsdb::open(db.clone(), Options::default()).unwrap();
    (dir, db, tsdb)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    println!(
        "lookout-tsdb ingest bench: {SERIES} series × 24 h 15 min at 15 s = {} samples, batches of {} samples",
        SERIES * INGEST_POINTS,
        SERIES * BATCH_POINTS
    );

    // The main run: realistic data, tick-aligned timestamps.
    let (dir, db, tsdb) = fresh();
    let run = ingest(&tsdb, Mix::Realistic, SERIES, 0, 0x9e37_79b9_7f4a_7c15);
    let batches = (INGEST_POINTS / BATCH_POINTS) as u32;
    print!(
        "ingest: {:.2} M samples/s wall ({:.1} ms per 10k batch, slowest {:.1?})",
        run.samples as f64 / run.wall.as_secs_f64() / 1e6,
        run.wall.as_secs_f64() * 1e3 / batches as f64,
        run.max_batch
    );
    match run.cpu {
        Some(cpu) => println!(
            ", {:.2} M samples per CPU-second",
            run.samples as f64 / cpu.as_secs_f64() / 1e6
        ),
        None => println!(),
    }
    select_latency(&tsdb, "heads in memory");
    let head_samples = tsdb.stats().unwrap().head_samples;
    let start = Instant::now();
    tsdb.flush().unwrap();
    println!(
        "flush of every head ({head_samples} samples): {:.1?}",
        start.elapsed()
    );
    select_latency(&tsdb, "all in chunks  ");
    report_bytes("realistic, on the tick", dir.path(), tsdb, db, run.samples);

    let (dir, db, tsdb) = fresh();
    let run = ingest(&tsdb, Mix::Realistic, SERIES, 5, 7);
    report_bytes(
        "realistic, 0-5 ms jitter",
        dir.path(),
        tsdb,
        db,
        run.samples,
    );

    for kind in [Kind::Counter, Kind::Gauge, Kind::Constant] {
        let (dir, db, tsdb) = fresh();
        let run = ingest(&tsdb, Mix::Only(kind), SERIES / 3, 0, 11);
        report_bytes(
            &format!("  only {kind:?}s, on the tick"),
            dir.path(),
            tsdb,
            db,
            run.samples,
        );
    }

    let (dir, db, tsdb) = fresh();
    let run = ingest(&tsdb, Mix::Pessimistic, SERIES, 5, 13);
    report_bytes(
        "pessimistic (noisy gauges, jitter)",
        dir.path(),
        tsdb,
        db,
        run.samples,
    );
}
