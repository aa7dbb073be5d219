//! Detector figures: the cost per sample of each detector plugin, and the
//! CPU share of one core that a detector job over 10,000 series at a 15 s
//! interval takes, all-in (tsdb read, shards of fresh instances with state
//! restore/observe/save, outputs written to the tsdb). Run with
//! `cargo xtask bench` (builds the plugins first); `--plugins a,b` after
//! `--` limits the plugins.
//!
//! CPU is the process's (getrusage: every thread, tokio's blocking pool
//! included); the samples each tick appends (what scrapes would write) are
//! outside the measured span.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout::config::DetectorJob;
use lookout::detection::DetectionBoard;
use lookout::model::{Grants, Limits, Point};
use lookout::query::QueryService;
use lookout::runtime::{DetectRequest, Invocation, Runtime};
use lookout::storage::Storage;

const PLUGINS: &[&str] = &["zscore", "mad", "ewma", "seasonal", "kmeans", "forecast"];
const SERIES: usize = 10_000;
const INTERVAL_MS: i64 = 15_000;
/// Points each series has learned before the measured rounds, one per
/// [`LEARN_STEP_MS`]: 5.6 days, so seasonal has seen its daily season and
/// kmeans has trained (it counts 1,440 points) and holds full state.
const LEARNED: i64 = 1_600;
const LEARN_STEP_MS: i64 = 300_000;
const MEASURED_ROUNDS: i64 = 20;
/// Points of the long batch the per-sample cost is taken over.
const LONG_BATCH: usize = 50_000;

mod support;
use support::{sha256, wasm};

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A daily-seasonal, noisy signal: what the detectors are built for.
fn value(series: usize, i: i64) -> f64 {
    let day = (i as f64 * INTERVAL_MS as f64 / 86_400_000.0) * std::f64::consts::TAU;
    let noise = (((i as u64).wrapping_mul(2_654_435_761) ^ series as u64) % 1000) as f64 / 1000.0;
    100.0 + 20.0 * day.sin() + 5.0 * noise + series as f64 % 7.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--plugins")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect());
    let plugins: Vec<&str> = PLUGINS
        .iter()
        .copied()
        .filter(|p| only.as_ref().is_none_or(|o| o.iter().any(|x| x == p)))
        .filter(|p| wasm(&format!("lookout_plugin_{p}")).exists())
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let runtime = Arc::new(Runtime::new(&dir.path().join("cache"), storage.clone()).unwrap());
    let mut loaded = HashMap::new();
    for name in &plugins {
        let bytes = std::fs::read(wasm(&format!("lookout_plugin_{name}"))).unwrap();
        let plugin = runtime.prepare(name, &bytes, &sha256(&bytes)).unwrap();
        loaded.insert(name.to_string(), plugin);
    }

    println!("lookout detector benchmark (release build)\n");
    println!(
        "cost per sample: one series, {LONG_BATCH} points in one call (state restore/save included)"
    );
    let (grants, limits) = (
        Grants::default(),
        Limits {
            timeout: Duration::from_secs(120),
            ..Limits::default()
        },
    );
    for name in &plugins {
        let points: Vec<Point> = (0..LONG_BATCH as i64)
            .map(|i| Point {
                timestamp_ms: 1_700_000_000_000 + i * INTERVAL_MS,
                value: value(1, i),
            })
            .collect();
        let inv = Invocation {
            job: "bench",
            target: "one series",
            config: "{}",
            grants: &grants,
            limits: &limits,
        };
        let request = DetectRequest {
            state: None,
            points,
            forecast: None,
        };
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let outcome = runtime
            .detect(&loaded[*name], &inv, vec![request])
            .await
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
        println!(
            "  {name:<9} {:>7.3} µs/sample wall, {:>7.3} µs CPU; state after it {} bytes",
            wall * 1e6 / LONG_BATCH as f64,
            cpu * 1e6 / LONG_BATCH as f64,
            outcome.state.len()
        );
    }

    println!(
        "\n{SERIES} series at a {} s interval, each having learned {LEARNED} points ({} min apart); {MEASURED_ROUNDS} rounds of one new point per series, all-in:",
        INTERVAL_MS / 1000,
        LEARN_STEP_MS / 60_000
    );
    // One store for every plugin: the history is appended once, then each
    // plugin gets its own run of ticks after it.
    let data = tempfile::tempdir().unwrap();
    let storage = Storage::open(data.path()).unwrap();
    let tsdb = Arc::new(
        lookout_tsdb::Tsdb::open(storage.database(), lookout_tsdb::Options::default()).unwrap(),
    );
    let query = QueryService::new(tsdb.clone());
    let first_measured = (lookout::storage::now_ms() / INTERVAL_MS) * INTERVAL_MS
        - plugins.len() as i64 * MEASURED_ROUNDS * INTERVAL_MS;
    let learned_from = first_measured - LEARNED * LEARN_STEP_MS;
    let append = |i: i64, t: i64| {
        let rows: Vec<(lookout_tsdb::Labels, i64, f64)> = (0..SERIES)
            .map(|s| {
                (
                    vec![
                        ("__name__".to_string(), "bench_metric".to_string()),
                        ("series".to_string(), s.to_string()),
                    ],
                    t,
                    value(s, i),
                )
            })
            .collect();
        tsdb.append(&rows).unwrap();
    };
    let appending = Instant::now();
    for i in 0..LEARNED {
        append(i, learned_from + i * LEARN_STEP_MS);
    }
    eprintln!(
        "  (history appended in {:.1} s)",
        appending.elapsed().as_secs_f64()
    );
    for (k, name) in plugins.iter().enumerate() {
        let measured_from = first_measured + k as i64 * MEASURED_ROUNDS * INTERVAL_MS;
        let job = DetectorJob {
            name: format!("bench-{name}"),
            plugin: name.to_string(),
            plugin_line: 1,
            series: "bench_metric".into(),
            every: Duration::from_millis(INTERVAL_MS as u64),
            config_json: "{}".into(),
            forecast: (*name == "forecast").then_some(lookout::config::ForecastConfig {
                horizon: Duration::from_secs(4 * 3600),
                threshold: Some(0.0),
            }),
            history: Duration::from_millis(
                (LEARNED * LEARN_STEP_MS + (k as i64 + 1) * MEASURED_ROUNDS * INTERVAL_MS) as u64,
            ),
            limits: Limits {
                timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        };
        let board = DetectionBoard::open(std::slice::from_ref(&job), &storage);
        // Learning the history: not measured.
        let learning = Instant::now();
        board
            .round_at(&loaded, &runtime, &query, measured_from - INTERVAL_MS)
            .await;
        let learning = learning.elapsed();
        let mut cpu = 0.0;
        let mut wall = Duration::ZERO;
        for round in 0..MEASURED_ROUNDS {
            let t = measured_from + round * INTERVAL_MS;
            append(LEARNED + k as i64 * MEASURED_ROUNDS + round, t);
            let (c, w) = (cpu_seconds(), Instant::now());
            board.round_at(&loaded, &runtime, &query, t).await;
            cpu += cpu_seconds() - c;
            wall += w.elapsed();
        }
        let status = &board.status()[0];
        assert!(
            status.last_error.is_none(),
            "{name}: {:?}",
            status.last_error
        );
        assert_eq!(status.series, SERIES, "{name}");
        let per_round = cpu / MEASURED_ROUNDS as f64;
        println!(
            "  {name:<9} CPU per round {:>7.1} ms ({:>5.2} µs per series), wall {:>7.1} ms: {:.2} % of one core at one round per {} s (learning {LEARNED} points took {:.1} s)",
            per_round * 1e3,
            per_round * 1e6 / SERIES as f64,
            wall.as_secs_f64() * 1e3 / MEASURED_ROUNDS as f64,
            per_round * 100.0 / (INTERVAL_MS as f64 / 1000.0),
            INTERVAL_MS / 1000,
            learning.as_secs_f64()
        );
    }
}
