//! CPU cost of rule evaluation: 1,000 alerting and recording rules (50
//! groups of 20) over 10,100 series, evaluated round after round as a host
//! would every interval.
//!
//! `cargo bench -p lookout-rules --bench eval` (set `CARGO_TARGET_DIR` as
//! the workspace notes say). CPU time is the process's
//! (`CLOCK_PROCESS_CPUTIME_ID`); everything runs on one thread.
//!
//! Data and rules: [`workload`] (10,000 counters + 100 `up` gauges, 50
//! groups of 20 rules), in [`MemorySeries`], the crate's in-memory store,
//! not lookout-tsdb: 20 minutes of 15 s samples before the first round;
//! each round is one more 15 s scrape, appended before the evaluation, and
//! the groups' output (recorded series, `ALERTS`, `ALERTS_FOR_STATE`)
//! appended after it, as the host does. Only the evaluation is timed.

use std::cell::Cell;

use lookout_promql::{Engine, Labels, Matcher, Series, SeriesSource};
use lookout_rules::{GroupOptions, GroupState, MemorySeries, parse_rule_file};

#[path = "support/workload.rs"]
mod workload;
use workload::{Fleet, HISTORY_POINTS, INSTANCES, PATHS, STEP_MS};

const WARMUP_ROUNDS: usize = 2;
const MEASURED_ROUNDS: usize = 10;
/// Aligned to 15 s.
const T0: i64 = 1_699_999_995_000;

fn cpu_time_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

/// The fleet's labels, built once.
struct Labelled {
    counters: Vec<Labels>,
    up: Vec<Labels>,
}

impl Labelled {
    fn new() -> Self {
        let mut counters = Vec::with_capacity(INSTANCES * PATHS);
        for i in 0..INSTANCES {
            for p in 0..PATHS {
                counters.push(labels(&[
                    ("__name__", "http_requests_total"),
                    ("instance", &format!("i{i}")),
                    ("path", &format!("p{p}")),
                ]));
            }
        }
        let up = (0..INSTANCES)
            .map(|i| labels(&[("__name__", "up"), ("instance", &format!("i{i}"))]))
            .collect();
        Labelled { counters, up }
    }

    /// Appends the fleet's point `n` (timestamp `T0 + n × 15 s`).
    fn scrape(&self, fleet: &mut Fleet, db: &mut MemorySeries, n: i64) {
        fleet.scrape(n);
        let ts = T0 + n * STEP_MS;
        for (l, v) in self.counters.iter().zip(&fleet.counters) {
            db.append(l, ts, *v).unwrap();
        }
        for (l, v) in self.up.iter().zip(&fleet.up) {
            db.append(l, ts, *v).unwrap();
        }
    }
}

/// The store as the groups see it, timing its `select`s: how much of a
/// round is [`MemorySeries`]' linear scan (it has no index) rather than
/// the rule engine.
struct Timed<'a> {
    db: &'a MemorySeries,
    select_ms: Cell<f64>,
    selects: Cell<usize>,
}

// One thread only: the engine evaluates on the caller's.
unsafe impl Sync for Timed<'_> {}

impl SeriesSource for Timed<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let t = cpu_time_ms();
        let out = self.db.select(matchers, mint, maxt);
        self.select_ms.set(self.select_ms.get() + cpu_time_ms() - t);
        self.selects.set(self.selects.get() + 1);
        out
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn main() {
    let yaml = workload::rules_yaml();
    let file = parse_rule_file(&yaml, "bench.yml").expect("bench rules parse");
    let mut groups: Vec<GroupState> = file
        .groups
        .iter()
        .map(|g| GroupState::new(g.clone(), &file.file, GroupOptions::default()))
        .collect();
    let rules: usize = groups.iter().map(|g| g.rules().count()).sum();
    let recording = groups
        .iter()
        .flat_map(|g| g.rules())
        .filter(|r| matches!(r.spec(), lookout_rules::Rule::Recording(_)))
        .count();

    let mut db = MemorySeries::new();
    let mut fleet = Fleet::new();
    let labelled = Labelled::new();
    for n in 0..=HISTORY_POINTS {
        labelled.scrape(&mut fleet, &mut db, n);
    }
    let series = db.series().count();
    let samples: usize = db.series().map(|(_, s)| s.len()).sum();
    println!(
        "rules: {rules} in {} groups ({recording} recording, {} alerting)",
        groups.len(),
        rules - recording
    );
    println!(
        "series: {series} ({} http_requests_total counters + {} up gauges), {samples} samples (20 min at 15 s) before the first round",
        INSTANCES * PATHS,
        INSTANCES
    );

    let engine = Engine::default();
    let mut times = Vec::with_capacity(MEASURED_ROUNDS);
    let mut select_times = Vec::with_capacity(MEASURED_ROUNDS);
    for round in 0..WARMUP_ROUNDS + MEASURED_ROUNDS {
        let n = HISTORY_POINTS + 1 + round as i64;
        labelled.scrape(&mut fleet, &mut db, n);
        let ts = T0 + n * STEP_MS;
        let source = Timed {
            db: &db,
            select_ms: Cell::new(0.0),
            selects: Cell::new(0),
        };
        let before = cpu_time_ms();
        let outs: Vec<_> = groups
            .iter_mut()
            .map(|g| g.eval(&engine, &source, ts))
            .collect();
        let spent = cpu_time_ms() - before;
        let (select_ms, selects) = (source.select_ms.get(), source.selects.get());
        let (mut written, mut sent) = (0, 0);
        for out in &outs {
            for (l, v) in &out.samples_to_write {
                db.append(l, ts, *v).unwrap();
            }
            written += out.samples_to_write.len();
            sent += out.alerts.len();
            if let Some(e) = out.errors.first() {
                panic!("rule {} failed: {}", e.rule, e.message);
            }
        }
        let firing: usize = groups
            .iter()
            .flat_map(|g| g.rules())
            .map(|r| {
                r.active_alerts()
                    .iter()
                    .filter(|a| a.state.as_str() == "firing")
                    .count()
            })
            .sum();
        let pending: usize = groups
            .iter()
            .flat_map(|g| g.rules())
            .map(|r| {
                r.active_alerts()
                    .iter()
                    .filter(|a| a.state.as_str() == "pending")
                    .count()
            })
            .sum();
        let kind = if round < WARMUP_ROUNDS {
            "warm-up"
        } else {
            times.push(spent);
            select_times.push(select_ms);
            "measured"
        };
        println!(
            "  round {:>2} ({kind:<8}): {spent:>7.1} ms CPU ({select_ms:>6.1} ms in {selects} selects), {written} samples written, {firing} firing / {pending} pending alerts, {sent} sent",
            round + 1
        );
    }
    times.sort_by(f64::total_cmp);
    let median = percentile(&times, 0.5);
    let p90 = percentile(&times, 0.9);
    println!();
    println!(
        "CPU per full round of all {rules} rules over {series} series ({MEASURED_ROUNDS} rounds after {WARMUP_ROUNDS} warm-up):"
    );
    println!(
        "  median {median:.1} ms   p90 {p90:.1} ms   (min {:.1}, max {:.1})",
        times[0],
        times[times.len() - 1]
    );
    select_times.sort_by(f64::total_cmp);
    println!(
        "  of which MemorySeries::select (a linear scan of every series, no index): median {:.1} ms",
        percentile(&select_times, 0.5)
    );
    println!(
        "share of one core: {:.2} % at a 15 s interval, {:.2} % at a 1 m interval (median; p90: {:.2} %, {:.2} %)",
        median / 15_000.0 * 100.0,
        median / 60_000.0 * 100.0,
        p90 / 15_000.0 * 100.0,
        p90 / 60_000.0 * 100.0,
    );
}
