//! The rule-evaluation workload, shared by `cargo bench -p lookout-rules
//! --bench eval` (this crate's engine alone) and `cargo xtask bench-rules`
//! (lookout and Prometheus side by side): the data and the rules, as plain
//! numbers and YAML so that both can use them.
//!
//! - `http_requests_total{instance="i0".."i99", path="p0".."p99"}`: 10,000
//!   counters, each with its own rate of 1–20 requests/s plus noise, one
//!   in about 200 hot (80/s);
//! - `up{instance="i0".."i99"}`: 100 gauges; `i95`–`i99` go down half-way
//!   through the history (their counters stop), so the outage rules fire.
//!
//! Group `g` looks after paths `p{2g}`, `p{2g+1}` (200 counter series) and
//! instances `i{2g}`, `i{2g+1}`: 6 recording rules and 14 alerting rules.

#![allow(dead_code)] // each user takes what it needs

pub const INSTANCES: usize = 100;
pub const PATHS: usize = 100;
pub const GROUPS: usize = 50;
pub const STEP_MS: i64 = 15_000;
/// 20 minutes of history before the first round.
pub const HISTORY_POINTS: i64 = 20 * 60 * 1000 / STEP_MS;
/// Instances `DOWN_FROM..` go down at this point of the history.
pub const DOWN_FROM: usize = 95;
pub const DOWN_AT_POINT: i64 = HISTORY_POINTS / 2;

/// The scraped values, one 15 s point at a time.
pub struct Fleet {
    /// Counter `k` is instance `k / PATHS`, path `k % PATHS`.
    pub counters: Vec<f64>,
    rates: Vec<f64>,
    /// `up` of each instance at the last point.
    pub up: Vec<f64>,
    seed: u64,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    pub fn new() -> Self {
        let mut counters = Vec::with_capacity(INSTANCES * PATHS);
        let mut rates = Vec::with_capacity(INSTANCES * PATHS);
        for i in 0..INSTANCES {
            for p in 0..PATHS {
                // 1–20 requests/s; about one series in 200 is hot (80/s).
                rates.push(if (i * 7 + p * 13) % 197 == 0 {
                    80.0
                } else {
                    1.0 + ((i * 31 + p * 17) % 20) as f64
                });
                counters.push((i * 1000 + p) as f64);
            }
        }
        Fleet {
            counters,
            rates,
            up: vec![1.0; INSTANCES],
            seed: 0x2545F4914F6CDD1D,
        }
    }

    fn rand(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Advances to point `n`: every counter and `up`.
    pub fn scrape(&mut self, n: i64) {
        let down = |i: usize| i >= DOWN_FROM && n >= DOWN_AT_POINT;
        for k in 0..self.counters.len() {
            let noise = (self.rand() % 11) as f64 - 5.0;
            if !down(k / PATHS) {
                self.counters[k] += (self.rates[k] * 15.0 + noise).max(0.0).round();
            }
        }
        for i in 0..INSTANCES {
            self.up[i] = if down(i) { 0.0 } else { 1.0 };
        }
    }
}

/// All groups, as one rule file.
pub fn rules_yaml() -> String {
    let mut yaml = String::from("groups:\n");
    for g in 0..GROUPS {
        yaml.push_str(&group_yaml(g));
    }
    yaml
}

/// One group's 20 rules, as a rule file's YAML.
pub fn group_yaml(g: usize) -> String {
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
