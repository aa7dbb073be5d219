//! CPU cost of rule evaluation: 1,000 alerting and recording rules (50
//! groups of 20) over 10,100 series, evaluated round after round as a host
//! would every interval.
//!
//! `cargo bench -p lookout-rules --bench eval` (set `CARGO_TARGET_DIR` as
//! the workspace notes say). CPU time is the process's
//! (`CLOCK_PROCESS_CPUTIME_ID`); everything runs on one thread.
//!
//! Data ([`MemorySeries`], the crate's in-memory store, not lookout-tsdb):
//! - `http_requests_total{instance="i0".."i99", path="p0".."p99"}`: 10,000
//!   counters, each with its own rate of 1–20 requests/s plus noise, one
//!   in about 200 hot (80/s);
//! - `up{instance="i0".."i99"}`: 100 gauges; `i95`–`i99` go down half-way
//!   (their counters stop), so the outage rules fire;
//! - 20 minutes of 15 s samples before the first round; each round is one
//!   more 15 s scrape, appended before the evaluation, and the groups'
//!   output (recorded series, `ALERTS`, `ALERTS_FOR_STATE`) appended after
//!   it, as the host does. Only the evaluation is timed.
//!
//! Rules: group `g` looks after paths `p{2g}`, `p{2g+1}` (200 counter
//! series) and instances `i{2g}`, `i{2g+1}`: 6 recording rules (per
//! instance×path, instance, path rates, averages, increases, availability)
//! and 14 alerting rules (rate thresholds, `up == 0`, `absent`, ratios,
//! `increase`, `changes`, `avg_over_time`, `topk`, …) with templated
//! annotations, some of which fire.

use std::cell::Cell;

use lookout_promql::{Engine, Labels, Matcher, Series, SeriesSource};
use lookout_rules::{GroupOptions, GroupState, MemorySeries, parse_rule_file};

const INSTANCES: usize = 100;
const PATHS: usize = 100;
const GROUPS: usize = 50;
const STEP_MS: i64 = 15_000;
/// 20 minutes of history before the first round.
const HISTORY_POINTS: i64 = 20 * 60 * 1000 / STEP_MS;
const WARMUP_ROUNDS: usize = 2;
const MEASURED_ROUNDS: usize = 10;
/// Aligned to 15 s.
const T0: i64 = 1_699_999_995_000;
/// Instances `DOWN_FROM..` go down at this point of the history.
const DOWN_FROM: usize = 95;
const DOWN_AT_POINT: i64 = HISTORY_POINTS / 2;

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

/// The scrape side: counters and `up`, one point at a time.
struct Fleet {
    counters: Vec<(Labels, f64, f64)>, // labels, value, per-second rate
    up: Vec<Labels>,
    seed: u64,
}

impl Fleet {
    fn new() -> Self {
        let mut counters = Vec::with_capacity(INSTANCES * PATHS);
        for i in 0..INSTANCES {
            for p in 0..PATHS {
                // 1–20 requests/s; about one series in 200 is hot (80/s).
                let rate = if (i * 7 + p * 13) % 197 == 0 {
                    80.0
                } else {
                    1.0 + ((i * 31 + p * 17) % 20) as f64
                };
                counters.push((
                    labels(&[
                        ("__name__", "http_requests_total"),
                        ("instance", &format!("i{i}")),
                        ("path", &format!("p{p}")),
                    ]),
                    (i * 1000 + p) as f64,
                    rate,
                ));
            }
        }
        let up = (0..INSTANCES)
            .map(|i| labels(&[("__name__", "up"), ("instance", &format!("i{i}"))]))
            .collect();
        Fleet {
            counters,
            up,
            seed: 0x2545F4914F6CDD1D,
        }
    }

    fn rand(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Appends the scrape of point `n` (timestamp `T0 + n × 15 s`).
    fn scrape(&mut self, db: &mut MemorySeries, n: i64) {
        let ts = T0 + n * STEP_MS;
        let down = |i: usize| i >= DOWN_FROM && n >= DOWN_AT_POINT;
        for k in 0..self.counters.len() {
            let noise = (self.rand() % 11) as f64 - 5.0;
            let (l, v, rate) = &mut self.counters[k];
            if !down(k / PATHS) {
                *v += (*rate * 15.0 + noise).max(0.0).round();
            }
            db.append(l, ts, *v).unwrap();
        }
        for (i, l) in self.up.iter().enumerate() {
            db.append(l, ts, if down(i) { 0.0 } else { 1.0 }).unwrap();
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

/// One group's 20 rules, as a rule file's YAML.
fn group_yaml(g: usize) -> String {
    let (pa, pb) = (2 * g, 2 * g + 1);
    let sel = format!(r#"path=~"p{pa}|p{pb}""#);
    let inst = format!(r#"instance=~"i{pa}|i{pb}""#);
    let ann = "annotations:\n          summary: '{{ $labels.instance }} {{ $labels.path }}: {{ $value | humanize }}'\n          runbook: 'https://runbooks.example/{{ $labels.alertname }}'";
    format!(
        r#"  - name: service-{g}
    interval: 15s
    rules:
      - record: instance_path:http_requests:rate5m
        expr: rate(http_requests_total{{{sel}}}[5m])
      - record: instance:http_requests:rate5m
        expr: sum by (instance) (rate(http_requests_total{{{sel}}}[5m]))
        labels: {{ svc: s{g} }}
      - record: path:http_requests:rate5m
        expr: sum by (path) (instance_path:http_requests:rate5m{{{sel}}})
      - record: path:http_requests:avg_rate5m
        expr: avg by (path) (rate(http_requests_total{{{sel}}}[5m]))
      - record: path:http_requests:increase15m
        expr: sum by (path) (increase(http_requests_total{{{sel}}}[15m]))
      - record: svc:up:avg
        expr: avg(up{{{inst}}})
        labels: {{ svc: s{g} }}
      - alert: HighRequestRate
        expr: sum by (instance) (rate(http_requests_total{{{sel}}}[5m])) > 60
        for: 1m
        labels: {{ severity: warning, svc: s{g} }}
        {ann}
      - alert: HighRecordedRate
        expr: instance:http_requests:rate5m{{svc="s{g}"}} > 70
        labels: {{ severity: page }}
        {ann}
      - alert: InstanceDown
        expr: up{{{inst}}} == 0
        for: 1m
        labels: {{ severity: page, svc: s{g} }}
        {ann}
      - alert: PathBusy
        expr: avg by (path) (rate(http_requests_total{{{sel}}}[5m])) > 12
        labels: {{ severity: info, svc: s{g} }}
        {ann}
      - alert: TargetMissing
        expr: absent(up{{instance="i{pa}"}})
        labels: {{ severity: page, svc: s{g} }}
        {ann}
      - alert: TrafficStopped
        expr: sum by (path) (rate(http_requests_total{{{sel}}}[5m])) == 0
        for: 2m
        labels: {{ severity: page, svc: s{g} }}
        {ann}
      - alert: PathSkew
        expr: max by (path) (rate(http_requests_total{{{sel}}}[5m])) / on (path) avg by (path) (rate(http_requests_total{{{sel}}}[5m])) > 4
        labels: {{ severity: info, svc: s{g} }}
        {ann}
      - alert: RequestBurst
        expr: increase(http_requests_total{{{sel}}}[10m]) > 30000
        labels: {{ severity: warning, svc: s{g} }}
        {ann}
      - alert: InstanceFlapping
        expr: changes(up{{{inst}}}[10m]) > 2
        labels: {{ severity: warning, svc: s{g} }}
        {ann}
      - alert: AvailabilityLow
        expr: avg_over_time(up{{{inst}}}[5m]) < 0.9
        for: 5m
        labels: {{ severity: warning, svc: s{g} }}
        {ann}
      - alert: FleetPartiallyDown
        expr: count(up{{{inst}}} == 0) / count(up{{{inst}}}) > 0.4
        labels: {{ severity: page, svc: s{g} }}
        {ann}
      - alert: PathShareHigh
        expr: path:http_requests:rate5m{{{sel}}} / ignoring (path) group_left () sum(path:http_requests:rate5m{{{sel}}}) > 0.6
        labels: {{ severity: info, svc: s{g} }}
        {ann}
      - alert: TopInstanceHot
        expr: topk(1, sum by (instance) (rate(http_requests_total{{{sel}}}[5m]))) > 75
        labels: {{ severity: info, svc: s{g} }}
        {ann}
      - alert: HighRateUpperInstances
        expr: sum without (instance) (rate(http_requests_total{{{sel}, instance=~"i9.*"}}[5m])) > 120
        labels: {{ severity: warning, svc: s{g} }}
        {ann}
"#
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn main() {
    let mut yaml = String::from("groups:\n");
    for g in 0..GROUPS {
        yaml.push_str(&group_yaml(g));
    }
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
    for n in 0..=HISTORY_POINTS {
        fleet.scrape(&mut db, n);
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
        fleet.scrape(&mut db, n);
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
