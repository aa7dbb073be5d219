//! Conformance against a real Prometheus (Debian's 2.42): the same
//! synthetic data is backfilled into Prometheus with promtool and loaded
//! into an in-memory source for lookout, then many instant and range
//! queries are run against both and compared result by result.
//!
//! Needs `prometheus` and `promtool` on the PATH; without them the test
//! says so and passes. `LOOKOUT_KEEP_CONFORMANCE_DIR=1` keeps the data.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use lookout_promql::{Engine, value_to_json};
use serde_json::Value as Json;
use support::{MemorySource, Prometheus, TempDir, secs, url_encode};

#[derive(Clone, Debug)]
enum Kind {
    Instant(i64),
    Range(i64, i64, i64),
}

struct Case {
    query: String,
    kind: Kind,
}

fn have(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Queries whose result order is part of the answer.
fn is_ordered(q: &str) -> bool {
    ["sort(", "sort_desc(", "topk(", "bottomk("]
        .iter()
        .any(|p| q.starts_with(p))
}

/// Vector/scalar queries: run as instant queries at several times and as
/// range queries.
fn vector_queries(t_mid: i64) -> Vec<String> {
    let at = secs(t_mid);
    let qs: Vec<String> = vec![
        // Literals, precedence.
        "1",
        "-2.5",
        "1 + 2 * 3",
        "2 ^ 3 ^ 2",
        "-2 ^ 2",
        "(1 + 2) * 3 % 4",
        "1 / 0",
        "-1 / 0",
        "0 / 0",
        "5 % 3 - 2 atan2 1",
        "1 < bool 2",
        "2 == bool 2.0",
        // Selectors.
        "http_requests_total",
        "http_requests_total{job=\"api\"}",
        "http_requests_total{job!=\"api\",method=\"GET\"}",
        "http_requests_total{code=~\"5..\"}",
        "http_requests_total{code!~\"2..\",instance=~\"(a|c):9100\"}",
        "{__name__=~\"node_.*\",instance=\"a:9100\"}",
        "{job=\"worker\"}",
        "http_requests_total offset 30m",
        "node_memory_free_bytes offset -5m",
        "batch_job_last_success",
        "late_gauge",
        "sparse_gauge",
        "queue_length",
        "nonexistent_metric",
        // Rates and friends.
        "rate(http_requests_total[5m])",
        "rate(http_requests_total[1m])",
        "rate(http_requests_total{instance=\"d:9100\"}[10m])",
        "irate(http_requests_total[5m])",
        "increase(http_requests_total[15m])",
        "increase(node_cpu_seconds_total[1h])",
        "rate(node_cpu_seconds_total[5m] offset 10m)",
        "delta(node_memory_free_bytes[10m])",
        "delta(temperature_celsius[7m])",
        "idelta(node_memory_free_bytes[5m])",
        "deriv(node_memory_free_bytes[15m])",
        "deriv(temperature_celsius[30m])",
        "predict_linear(node_memory_free_bytes[30m], 3600)",
        "predict_linear(temperature_celsius[10m], -600)",
        "resets(http_requests_total[1h])",
        "resets(node_cpu_seconds_total[2h])",
        "changes(queue_length[10m])",
        "changes(up[1h])",
        // *_over_time.
        "avg_over_time(node_memory_free_bytes[10m])",
        "sum_over_time(temperature_celsius[5m])",
        "min_over_time(temperature_celsius[20m])",
        "max_over_time(node_memory_free_bytes[1h])",
        "count_over_time(http_requests_total[5m])",
        "count_over_time(sparse_gauge[20m])",
        "quantile_over_time(0.9, node_memory_free_bytes[30m])",
        "quantile_over_time(0.25, temperature_celsius[10m])",
        "stddev_over_time(temperature_celsius[15m])",
        "stdvar_over_time(node_memory_free_bytes[10m])",
        "last_over_time(node_memory_free_bytes[10m])",
        "last_over_time(batch_job_last_success[2h])",
        "present_over_time(late_gauge[30m])",
        "max_over_time(queue_length[2m])",
        "min_over_time(queue_length[5m])",
        "avg_over_time(queue_length[5m])",
        "absent_over_time(nonexistent_metric{job=\"x\"}[5m])",
        "absent_over_time(batch_job_last_success[5m])",
        "absent_over_time(late_gauge[10m])",
        "holt_winters(node_memory_free_bytes[10m], 0.5, 0.3)",
        // Aggregations.
        "sum(http_requests_total)",
        "sum by (job) (rate(http_requests_total[5m]))",
        "sum without (instance, method) (rate(http_requests_total[5m]))",
        "sum by (__name__) ({job=\"api\"})",
        "avg by (instance) (temperature_celsius)",
        "min(node_memory_free_bytes)",
        "max by (job) (http_requests_total)",
        "count(http_requests_total)",
        "count by (code) (http_requests_total)",
        "group by (job) (http_requests_total)",
        "stddev(node_memory_free_bytes)",
        "stdvar by (job) (rate(http_requests_total[5m]))",
        "quantile(0.5, rate(http_requests_total[5m]))",
        "quantile by (job) (0.9, http_requests_total)",
        "count_values(\"value\", up)",
        "count_values by (job) (\"v\", up)",
        "count_values without (instance) (\"q\", queue_length)",
        "max(queue_length)",
        "min(queue_length)",
        "sum(queue_length)",
        "avg(queue_length)",
        "topk(3, http_requests_total)",
        "bottomk(2, node_memory_free_bytes)",
        "topk by (job) (1, rate(http_requests_total[5m]))",
        "topk(2, queue_length)",
        "bottomk(1, up)",
        "topk(scalar(count(up)), node_memory_free_bytes)",
        // Binary operators and matching.
        "http_requests_total / 2",
        "2 * http_requests_total{job=\"api\"}",
        "node_memory_free_bytes > 5e8",
        "5e8 < node_memory_free_bytes",
        "node_memory_free_bytes > bool 5e8",
        "temperature_celsius <= 0",
        "up == 1",
        "up != bool 1",
        "http_requests_total{code=\"500\"} / ignoring(code) http_requests_total{code=\"200\"}",
        "rate(http_requests_total[5m]) / on(job, instance, method) group_left sum by (job, instance, method) (rate(http_requests_total[5m]))",
        "sum by (job) (rate(http_requests_total[5m])) / on(job) group_right rate(http_requests_total[5m])",
        "up * on(instance) group_left(version) node_info",
        "node_memory_free_bytes * on(instance) group_left(version) node_info",
        "up > on(job, instance) group_left node_memory_free_bytes",
        "up and node_memory_free_bytes",
        "up and on(instance) node_memory_free_bytes",
        "http_requests_total unless http_requests_total{code=\"500\"}",
        "up unless on(job) http_requests_total",
        "up or node_memory_free_bytes",
        "late_gauge or batch_job_last_success",
        "sum(up) or vector(0)",
        "node_memory_free_bytes - node_memory_free_bytes offset 10m",
        "temperature_celsius > on(instance) group_left temperature_celsius offset 1m",
        "up + on(instance) group_left node_info",
        "http_requests_total % 7 atan2 3",
        "http_requests_total ^ 0.5",
        "-http_requests_total",
        // Matching errors Prometheus raises.
        "http_requests_total + ignoring(code) http_requests_total",
        "http_requests_total * on(job, instance) up",
        "sum by (job, instance) (http_requests_total) + on(job) group_left up",
        "{job=\"twin\"} + 1",
        "rate({job=\"twin\"}[5m])",
        "-{job=\"twin\"}",
        // histogram_quantile.
        "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
        "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[10m])))",
        "histogram_quantile(0.99, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0, request_duration_seconds_bucket)",
        "histogram_quantile(1, request_duration_seconds_bucket)",
        "histogram_quantile(1.5, request_duration_seconds_bucket)",
        "histogram_quantile(-1, request_duration_seconds_bucket)",
        "histogram_quantile(0.5, request_duration_seconds_bucket{le!=\"+Inf\"})",
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
        // absent and label functions.
        "absent(nonexistent_metric)",
        "absent(nonexistent_metric{job=\"x\",instance=~\"a.*\",env=\"prod\"})",
        "absent(up)",
        "absent(sum(nonexistent_metric))",
        "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
        "label_replace(up, \"host\", \"x-${1}-y\", \"instance\", \"nomatch(.*)\")",
        "label_replace(up, \"job\", \"\", \"job\", \"api\")",
        "label_join(up, \"target\", \"/\", \"job\", \"instance\")",
        "label_join(up, \"empty\", \",\", \"missing\")",
        // Math.
        "clamp(temperature_celsius, -1, 2)",
        "clamp(temperature_celsius, 2, -1)",
        "clamp_min(temperature_celsius, 0)",
        "clamp_max(node_memory_free_bytes, 6e8)",
        "abs(temperature_celsius)",
        "ceil(temperature_celsius)",
        "floor(temperature_celsius)",
        "round(temperature_celsius)",
        "round(temperature_celsius, 0.25)",
        "sqrt(node_memory_free_bytes)",
        "exp(temperature_celsius / 10)",
        "ln(node_memory_free_bytes)",
        "log2(up)",
        "log10(abs(temperature_celsius))",
        "sgn(temperature_celsius)",
        "sin(temperature_celsius) + cos(temperature_celsius) - tan(temperature_celsius)",
        "deg(temperature_celsius) + rad(temperature_celsius)",
        "asin(clamp(temperature_celsius / 10, -1, 1))",
        // Time.
        "time()",
        "timestamp(up)",
        "timestamp(node_memory_free_bytes offset 5m)",
        "timestamp(sum(up))",
        "vector(1)",
        "vector(time())",
        "scalar(sum(up))",
        "scalar(up)",
        "sum(up) * scalar(count(node_info))",
        "sort(node_memory_free_bytes)",
        "sort_desc(temperature_celsius)",
        "sort(queue_length)",
        "hour()",
        "minute()",
        "month()",
        "year()",
        "day_of_week()",
        "day_of_month()",
        "day_of_year()",
        "days_in_month()",
        "hour(batch_job_last_success)",
        "day_of_week(timestamp(up))",
        "minute(vector(1700000000))",
        // Subqueries.
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
        "avg_over_time(node_memory_free_bytes[10m:])",
        "rate(http_requests_total[5m:30s])",
        "min_over_time((node_memory_free_bytes offset 5m)[20m:2m] offset 3m)",
        "sum_over_time(sum by (job) (up)[15m:45s])",
        "deriv(avg(temperature_celsius)[20m:1m])",
        "max_over_time(deriv(node_memory_free_bytes[5m])[10m:1m])",
        "absent_over_time(nonexistent_metric[5m:1m])",
        // @ modifier.
        &format!("http_requests_total @ {at}"),
        &format!("rate(http_requests_total[5m] @ {at})"),
        &format!("max_over_time(node_memory_free_bytes[10m:1m] @ {at})"),
        &format!("node_memory_free_bytes - node_memory_free_bytes @ {at}"),
        &format!("sum(up @ {at}) by (job)"),
        &format!("timestamp(up @ {at})"),
        "up @ start()",
        "rate(http_requests_total[5m] @ end())",
        &format!("node_memory_free_bytes @ {at} offset 10m"),
        &format!("max_over_time((node_memory_free_bytes @ {at})[10m:1m])"),
        &format!("rate(http_requests_total[5m:1m] @ {at})"),
        &format!("min_over_time(node_memory_free_bytes[10m:1m] @ {at} offset 5m)"),
        &format!("up offset 1h @ {at}"),
        // More corners.
        "max_over_time(max_over_time(node_memory_free_bytes[5m:30s])[20m:1m] offset 2m)",
        "sum_over_time(up[10m:]) / count_over_time(up[10m:])",
        "count_values(\"le\", request_duration_seconds_bucket)",
        "count_values without (le) (\"le\", request_duration_seconds_bucket)",
        "sum without (__name__) ({job=\"api\"})",
        "sum by () (up)",
        "quantile(2, up)",
        "quantile(-1, up)",
        "topk(-1, up)",
        "topk(2.9, temperature_celsius)",
        "bottomk by (job) (2, http_requests_total)",
        "stddev by (job) (http_requests_total)",
        "avg(temperature_celsius) by (room)",
        "group(up)",
        "group without (job) (up)",
        "count(count by (job) (up))",
        "max by (instance) (node_memory_free_bytes offset 1d)",
        "label_replace(up, \"whole\", \"$0!\", \"instance\", \"[a-c]:(.*)\")",
        "up == bool on(instance) group_left node_info",
        "node_info * on(instance) group_right up",
        "1 < up",
        "0.5 > bool up",
        "scalar(up{job=\"web\"})",
        "abs(vector(-1))",
        "hour(vector(time()))",
        "timestamp(vector(1))",
        "days_in_month(vector(1709214300))",
        "predict_linear(node_memory_free_bytes[30m] offset 1h, 600)",
        "holt_winters(temperature_celsius[30m], 0.1, 0.9)",
        "rate(http_requests_total[2h])",
        "rate(http_requests_total[30s])",
        "irate(http_requests_total[20s])",
        "delta(http_requests_total[5m])",
        "increase(request_duration_seconds_count[1h])",
        "histogram_quantile(0.5, rate(request_duration_seconds_bucket[1m]))",
        "request_duration_seconds_bucket / ignoring(le) group_left request_duration_seconds_count",
        "sum(rate(http_requests_total[5m])) by (job) > 50",
        "sort_desc(sum by (instance) (rate(http_requests_total[5m])))",
        "exp(node_memory_free_bytes)",
        "ln(temperature_celsius)",
        "node_memory_free_bytes / 0",
        "(up - up) / (up - up)",
        "1e-7 * up",
        "up * 1e21",
        "-(-up)",
        "up and up or up unless up",
        "sum by (job) (up) == on(job) group_left count by (job) (up)",
        "absent_over_time(up[1m] offset 3h)",
        "changes(batch_job_last_success[1h])",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    qs
}

/// Range-vector (matrix) queries: instant only.
fn matrix_queries(t_mid: i64) -> Vec<String> {
    vec![
        "node_memory_free_bytes[1m]".into(),
        "http_requests_total{job=\"api\",method=\"GET\"}[2m] offset 1m".into(),
        "sparse_gauge[20m]".into(),
        "rate(http_requests_total{job=\"web\"}[5m])[5m:1m]".into(),
        "node_memory_free_bytes[3m:45s]".into(),
        format!("up[1m] @ {}", secs(t_mid)),
        "\"a string\"".into(),
    ]
}

fn prom_query(p: &Prometheus, c: &Case) -> Json {
    let q = url_encode(&c.query);
    let path = match c.kind {
        Kind::Instant(t) => format!("/api/v1/query?query={q}&time={}", secs(t)),
        Kind::Range(s, e, st) => {
            format!(
                "/api/v1/query_range?query={q}&start={}&end={}&step={}",
                secs(s),
                secs(e),
                secs(st)
            )
        }
    };
    p.get(&path)
        .unwrap_or_else(|e| Json::String(format!("request failed: {e}")))
}

fn mine(engine: &Engine, src: &dyn lookout_promql::SeriesSource, c: &Case) -> Json {
    let r = match c.kind {
        Kind::Instant(t) => engine.instant(src, &c.query, t),
        Kind::Range(s, e, st) => engine.range(src, &c.query, s, e, st),
    };
    match r {
        Ok(v) => serde_json::json!({"status": "success", "data": value_to_json(&v)}),
        Err(e) => {
            serde_json::json!({"status": "error", "errorType": e.error_type(), "error": e.to_string()})
        }
    }
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
        return false;
    };
    if x.is_nan() && y.is_nan() {
        return true;
    }
    let diff = (x - y).abs();
    diff <= 1e-9 * x.abs().max(y.abs()) || diff < 1e-12
}

fn same_point(a: &Json, b: &Json) -> bool {
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
        return false;
    };
    a.len() == 2
        && b.len() == 2
        && a[0].as_f64() == b[0].as_f64()
        && close(a[1].as_str().unwrap_or(""), b[1].as_str().unwrap_or(""))
}

fn metric_key(e: &Json) -> String {
    e.get("metric").map(|m| m.to_string()).unwrap_or_default()
}

/// Compares two API responses; `None` when they agree.
fn compare(prom: &Json, mine: &Json, ordered: bool) -> Option<String> {
    let ps = prom.get("status").and_then(|s| s.as_str());
    let ms = mine.get("status").and_then(|s| s.as_str());
    if ps != ms {
        return Some("status differs".into());
    }
    if ps == Some("error") {
        return (prom.get("errorType") != mine.get("errorType"))
            .then(|| "errorType differs".into());
    }
    let (pd, md) = (&prom["data"], &mine["data"]);
    if pd["resultType"] != md["resultType"] {
        return Some("resultType differs".into());
    }
    match pd["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            (!same_point(&pd["result"], &md["result"])).then(|| "value differs".into())
        }
        Some(kind) => {
            let (mut pr, mut mr) = (
                pd["result"].as_array()?.clone(),
                md["result"].as_array()?.clone(),
            );
            if pr.len() != mr.len() {
                return Some(format!("{} vs {} elements", pr.len(), mr.len()));
            }
            let value_key = if kind == "vector" { "value" } else { "values" };
            if ordered {
                // Order by value must agree; ties may come in any order.
                let value = |e: &Json| e[value_key][1].as_str().unwrap_or("").to_string();
                let mut i = 0;
                while i < pr.len() {
                    let mut j = i + 1;
                    while j < pr.len() && value(&pr[j]) == value(&pr[i]) {
                        j += 1;
                    }
                    pr[i..j].sort_by_key(metric_key);
                    mr[i..j].sort_by_key(metric_key);
                    i = j;
                }
            } else {
                pr.sort_by_key(metric_key);
                mr.sort_by_key(metric_key);
            }
            for (p, m) in pr.iter().zip(&mr) {
                if p["metric"] != m["metric"] {
                    return Some(format!("labels differ: {} vs {}", p["metric"], m["metric"]));
                }
                let ok = if kind == "vector" {
                    same_point(&p["value"], &m["value"])
                } else {
                    let (a, b) = (p["values"].as_array()?, m["values"].as_array()?);
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_point(x, y))
                };
                if !ok {
                    return Some(format!("values differ for {}", p["metric"]));
                }
            }
            None
        }
        None => Some("no resultType".into()),
    }
}

#[test]
fn matches_real_prometheus() {
    if !have("prometheus") || !have("promtool") {
        // CI installs Debian's prometheus (cargo xtask test): there, a
        // missing peer is a failure, never a silent pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus/promtool not installed (cargo xtask test installs them)"
        );
        eprintln!("promql conformance: SKIPPED, prometheus/promtool not installed");
        return;
    }
    let dir = TempDir::new("lookout-promql-conformance");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let end = now - 30 * 60_000;
    let start = end - 150 * 60_000;
    let text = support::generate(start, end);
    let om = dir.0.join("data.om");
    std::fs::write(&om, &text).unwrap();
    let tsdb = dir.0.join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prometheus = Prometheus::start(&dir.0, &tsdb).expect("prometheus starts");
    let src = MemorySource::from_openmetrics(&text);
    // The same data in lookout's own storage engine: every case is answered
    // from both, so the count covers storage and evaluation together.
    let stored = support::TsdbSource::load(&dir.0.join("lookout.redb"), &src);
    let engine = Engine::default();

    // Evaluation times: inside the data, just after it ended (within the
    // lookback), beyond the lookback, around the time a target vanished.
    let t_mid = end - 40 * 60_000 + 7;
    let sparse = src.find("sparse_gauge")[0].samples[10].0;
    let times = [
        end - 10 * 60_000 + 123,
        end + 2 * 60_000,
        end + 7 * 60_000,
        end - 47 * 60_000,
        start + 100_003,
    ];
    let ranges = [
        Kind::Range(start + 15 * 60_000, end + 10 * 60_000, 60_000),
        Kind::Range(end - 40 * 60_000 + 13, end + 7 * 60_000, 37_000),
        Kind::Range(start - 10 * 60_000, start + 30 * 60_000, 20_000),
    ];

    let mut cases = Vec::new();
    for q in vector_queries(t_mid) {
        for &t in &times {
            cases.push(Case {
                query: q.clone(),
                kind: Kind::Instant(t),
            });
        }
        for r in &ranges {
            cases.push(Case {
                query: q.clone(),
                kind: r.clone(),
            });
        }
    }
    for q in matrix_queries(t_mid) {
        for &t in &times[..2] {
            cases.push(Case {
                query: q.clone(),
                kind: Kind::Instant(t),
            });
        }
    }
    // Lookback boundaries: a sample exactly 5 minutes old is still seen.
    for t in [
        sparse + 300_000,
        sparse + 300_001,
        sparse + 299_999,
        sparse,
        sparse - 1,
    ] {
        cases.push(Case {
            query: "sparse_gauge".into(),
            kind: Kind::Instant(t),
        });
        cases.push(Case {
            query: "count_over_time(sparse_gauge[5m])".into(),
            kind: Kind::Instant(t),
        });
    }
    cases.push(Case {
        query: "sparse_gauge".into(),
        kind: Kind::Range(sparse - 60_000, sparse + 360_000, 1_000),
    });
    // A range query with a single step.
    cases.push(Case {
        query: "rate(http_requests_total[5m])".into(),
        kind: Kind::Range(t_mid, t_mid, 60_000),
    });
    // Parameter and type errors.
    cases.push(Case {
        query: "up".into(),
        kind: Kind::Range(end, start, 60_000),
    });
    cases.push(Case {
        query: "up[5m]".into(),
        kind: Kind::Range(start, end, 60_000),
    });
    cases.push(Case {
        query: "sum(".into(),
        kind: Kind::Instant(end),
    });
    cases.push(Case {
        query: "up".into(),
        kind: Kind::Range(start - 86_400_000, end, 1_000),
    });

    let mut failures = Vec::new();
    let (mut non_empty, mut errors) = (0, 0);
    let verbose = std::env::var_os("LOOKOUT_CONFORMANCE_VERBOSE").is_some();
    for c in &cases {
        let p = prom_query(&prometheus, c);
        let m = mine(&engine, &src, c);
        let from_tsdb = mine(&engine, &stored, c);
        if let Some(why) = compare(&m, &from_tsdb, false) {
            failures.push(format!(
                "{:?} {}: lookout-tsdb differs from the in-memory source: {why}\n  memory: {}\n  tsdb:   {}",
                c.kind,
                c.query,
                truncate(&m.to_string()),
                truncate(&from_tsdb.to_string())
            ));
            continue;
        }
        match p["data"]["result"].as_array() {
            Some(r) if !r.is_empty() => non_empty += 1,
            Some(_) => {}
            None if p["status"] == "error" => errors += 1,
            None => non_empty += 1,
        }
        if verbose {
            println!(
                "{:?} {}\n  prometheus: {}\n  lookout:    {}",
                c.kind,
                c.query,
                truncate(&p.to_string()),
                truncate(&m.to_string())
            );
        }
        if let Some(why) = compare(
            &p,
            &m,
            is_ordered(&c.query) && matches!(c.kind, Kind::Instant(_)),
        ) {
            failures.push(format!(
                "{:?} {}: {why}\n  prometheus: {}\n  lookout:    {}",
                c.kind,
                c.query,
                truncate(&p.to_string()),
                truncate(&m.to_string())
            ));
        }
    }
    println!(
        "promql conformance: {}/{} queries match a real Prometheus, answered from lookout-tsdb and from memory ({non_empty} with a non-empty result, {errors} errors in both)",
        cases.len() - failures.len(),
        cases.len()
    );
    if !failures.is_empty() {
        panic!("{} mismatches:\n{}", failures.len(), failures.join("\n"));
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 1500 {
        format!("{}...", &s[..s.floor_char_boundary(1500)])
    } else {
        s.to_string()
    }
}
