//! Whole-engine tests with hand-computed expectations: staleness, lookback
//! boundaries, matching errors, ties, limits, unsupported constructs.

use std::time::{Duration, Instant};

use crate::{
    Engine, InstantSample, Labels, MatchOp, Matcher, QueryError, STALE_NAN_BITS, Series,
    SeriesSource, Value,
};

struct Mem(Vec<Series>);

impl SeriesSource for Mem {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let get = |l: &Labels, n: &str| {
            l.iter()
                .find(|(k, _)| k == n)
                .map_or(String::new(), |(_, v)| v.clone())
        };
        Ok(self
            .0
            .iter()
            .filter(|s| {
                matchers.iter().all(|m| {
                    let v = get(&s.labels, &m.name);
                    match m.op {
                        MatchOp::Equal => v == m.value,
                        MatchOp::NotEqual => v != m.value,
                        MatchOp::Regex => regex::Regex::new(&format!("^(?:{})$", m.value))
                            .unwrap()
                            .is_match(&v),
                        MatchOp::NotRegex => !regex::Regex::new(&format!("^(?:{})$", m.value))
                            .unwrap()
                            .is_match(&v),
                    }
                })
            })
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= mint && p.0 <= maxt)
                    .collect(),
            })
            .collect())
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    l.sort();
    l
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series {
        labels: labels(pairs),
        samples: samples.to_vec(),
    }
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn vector(v: Result<Value, QueryError>) -> Vec<InstantSample> {
    match v {
        Ok(Value::Vector(s)) => s,
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn values(v: Result<Value, QueryError>) -> Vec<f64> {
    vector(v).into_iter().map(|s| s.v).collect()
}

fn matrix(v: Result<Value, QueryError>) -> Vec<Series> {
    match v {
        Ok(Value::Matrix(s)) => s,
        other => panic!("expected a matrix, got {other:?}"),
    }
}

#[test]
fn a_staleness_marker_ends_the_series_at_once() {
    let src = Mem(vec![series(
        &[("__name__", "x")],
        &[(0, 1.0), (15_000, 2.0), (30_000, stale()), (90_000, 5.0)],
    )]);
    let e = Engine::default();
    assert_eq!(values(e.instant(&src, "x", 29_999)), vec![2.0]);
    assert_eq!(
        values(e.instant(&src, "x", 30_000)),
        Vec::<f64>::new(),
        "the marker hides the older sample"
    );
    assert_eq!(values(e.instant(&src, "x", 89_000)), Vec::<f64>::new());
    assert_eq!(values(e.instant(&src, "x", 90_000)), vec![5.0]);
    // Range functions skip markers: the window holds 1, 2, 5.
    assert_eq!(
        values(e.instant(&src, "count_over_time(x[2m])", 100_000)),
        vec![3.0]
    );
    // A range query shows the gap.
    let m = matrix(e.range(&src, "x", 0, 90_000, 30_000));
    assert_eq!(m[0].samples, vec![(0, 1.0), (90_000, 5.0)]);
}

#[test]
fn lookback_includes_a_sample_exactly_five_minutes_old() {
    let src = Mem(vec![series(&[("__name__", "x")], &[(1_000, 7.0)])]);
    let e = Engine::default();
    assert_eq!(values(e.instant(&src, "x", 301_000)), vec![7.0]);
    assert_eq!(values(e.instant(&src, "x", 301_001)), Vec::<f64>::new());
    assert_eq!(
        values(e.instant(&src, "x", 999)),
        Vec::<f64>::new(),
        "no sample yet"
    );
    // A range selector includes both ends of its window (Prometheus 2.x).
    assert_eq!(
        values(e.instant(&src, "count_over_time(x[1m])", 61_000)),
        vec![1.0]
    );
    let short = Engine {
        lookback: Duration::from_secs(60),
        ..Engine::default()
    };
    assert_eq!(values(short.instant(&src, "x", 61_001)), Vec::<f64>::new());
}

#[test]
fn rate_of_a_steady_counter_through_the_engine() {
    // +30 every 15 s from 0 at t=0: 2 per second.
    let samples: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15_000, 30.0 * i as f64)).collect();
    let src = Mem(vec![series(
        &[("__name__", "c_total"), ("job", "a")],
        &samples,
    )]);
    let e = Engine::default();
    let r = vector(e.instant(&src, "rate(c_total[5m])", 600_000));
    assert_eq!(r[0].labels, labels(&[("job", "a")]));
    assert!((r[0].v - 2.0).abs() < 1e-12);
    // Window [295 s, 595 s]: first sample 300 s, last 585 s, 19 samples (18
    // intervals of 15 s). Gaps 5 s and 10 s are under 1.1 * 15 s: extrapolate
    // to the full 300 s: increase = 570 * 300 / 285 = 600.
    let r = values(e.instant(&src, "increase(c_total[5m])", 595_000));
    assert!((r[0] - 600.0).abs() < 1e-9, "{r:?}");
    // The metric name goes away, except for last_over_time.
    let r = vector(e.instant(&src, "last_over_time(c_total[1m])", 600_000));
    assert_eq!(
        r[0].labels,
        labels(&[("__name__", "c_total"), ("job", "a")])
    );
}

#[test]
fn offset_and_at_move_the_evaluation_time() {
    let samples: Vec<(i64, f64)> = (0..=20).map(|i| (i * 60_000, i as f64)).collect();
    let src = Mem(vec![series(&[("__name__", "g")], &samples)]);
    let e = Engine::default();
    assert_eq!(values(e.instant(&src, "g offset 5m", 600_000)), vec![5.0]);
    assert_eq!(values(e.instant(&src, "g offset -5m", 600_000)), vec![15.0]);
    assert_eq!(values(e.instant(&src, "g @ 120", 600_000)), vec![2.0]);
    assert_eq!(
        values(e.instant(&src, "g @ 120 offset 1m", 600_000)),
        vec![1.0]
    );
    let m = matrix(e.range(&src, "g @ start()", 300_000, 480_000, 60_000));
    assert!(m[0].samples.iter().all(|p| p.1 == 5.0));
    let m = matrix(e.range(&src, "g @ end()", 300_000, 480_000, 60_000));
    assert!(m[0].samples.iter().all(|p| p.1 == 8.0));
}

#[test]
fn subquery_steps_align_to_multiples_of_the_step() {
    let samples: Vec<(i64, f64)> = (0..=20).map(|i| (i * 60_000, i as f64)).collect();
    let src = Mem(vec![series(&[("__name__", "g")], &samples)]);
    let e = Engine::default();
    // At 10:30 (630 s) a 5m:2m subquery evaluates at 360, 480, 600 s.
    let m = matrix(e.instant(&src, "g[5m:2m]", 630_000));
    assert_eq!(
        m[0].samples,
        vec![(360_000, 6.0), (480_000, 8.0), (600_000, 10.0)]
    );
    // Without a step: the default one minute.
    assert_eq!(
        values(e.instant(&src, "count_over_time(g[5m:])", 630_000)),
        vec![5.0]
    );
}

#[test]
fn topk_ties_resolve_as_prometheus_heap_does() {
    let src = Mem(vec![
        series(&[("__name__", "t"), ("i", "a")], &[(0, 1.0)]),
        series(&[("__name__", "t"), ("i", "b")], &[(0, 3.0)]),
        series(&[("__name__", "t"), ("i", "c")], &[(0, 1.0)]),
        series(&[("__name__", "t"), ("i", "d")], &[(0, 3.0)]),
    ]);
    let e = Engine::default();
    let names = |v: Vec<InstantSample>| {
        v.into_iter()
            .map(|s| s.labels[1].1.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(vector(e.instant(&src, "topk(1, t)", 0))), vec!["b"]);
    // Go's heap: a, b, c fill it; d evicts the root, which is a (not c).
    assert_eq!(
        names(vector(e.instant(&src, "topk(3, t)", 0))),
        vec!["b", "d", "c"]
    );
    assert_eq!(
        names(vector(e.instant(&src, "bottomk(1, t)", 0))),
        vec!["a"]
    );
    assert_eq!(
        names(vector(e.instant(&src, "bottomk(3, t)", 0))),
        vec!["a", "c", "b"]
    );
    assert_eq!(
        names(vector(e.instant(&src, "sort_desc(t)", 0))),
        vec!["b", "d", "a", "c"]
    );
    assert!(vector(e.instant(&src, "topk(0, t)", 0)).is_empty());
}

#[test]
fn ambiguous_matches_fail_like_prometheus() {
    let src = Mem(vec![
        series(&[("__name__", "l"), ("job", "a"), ("i", "1")], &[(0, 1.0)]),
        series(&[("__name__", "l"), ("job", "a"), ("i", "2")], &[(0, 2.0)]),
        series(&[("__name__", "r"), ("job", "a")], &[(0, 10.0)]),
        series(&[("__name__", "r"), ("job", "b")], &[(0, 20.0)]),
    ]);
    let e = Engine::default();
    let err = e.instant(&src, "r + on(job) l", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {job=\"a\"} on the right hand-side of the operation: \
         [{__name__=\"l\", i=\"2\", job=\"a\"}, {__name__=\"l\", i=\"1\", job=\"a\"}];many-to-many matching not allowed: \
         matching labels must be unique on one side"
    );
    assert_eq!(err.http_status(), 422);
    let err = e.instant(&src, "l + on(job) r", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // With group_left the many side keeps its labels.
    let mut v = vector(e.instant(&src, "l + on(job) group_left r", 0));
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(v.iter().map(|s| s.v).collect::<Vec<_>>(), vec![11.0, 12.0]);
    assert_eq!(v[0].labels, labels(&[("i", "1"), ("job", "a")]));
    // group_right: the left side is the "one" side.
    let err = e.instant(&src, "l + on(job) group_right r", 0).unwrap_err();
    assert!(err.to_string().contains("on the left hand-side"), "{err}");
    // Comparisons filter before the uniqueness check.
    assert_eq!(
        values(e.instant(&src, "l > on(job) group_left r", 0)),
        Vec::<f64>::new()
    );
    assert_eq!(
        values(e.instant(&src, "r > bool on(job) group_right l", 0)),
        vec![1.0, 1.0]
    );
}

#[test]
fn set_operators() {
    let src = Mem(vec![
        series(&[("__name__", "a"), ("j", "1")], &[(0, 1.0)]),
        series(&[("__name__", "a"), ("j", "2")], &[(0, 2.0)]),
        series(&[("__name__", "b"), ("j", "2")], &[(0, 20.0)]),
        series(&[("__name__", "b"), ("j", "3")], &[(0, 30.0)]),
    ]);
    let e = Engine::default();
    assert_eq!(values(e.instant(&src, "a and b", 0)), vec![2.0]);
    assert_eq!(values(e.instant(&src, "a or b", 0)), vec![1.0, 2.0, 30.0]);
    assert_eq!(values(e.instant(&src, "a unless b", 0)), vec![1.0]);
    assert_eq!(values(e.instant(&src, "a and on() b", 0)), vec![1.0, 2.0]);
    assert_eq!(
        values(e.instant(&src, "a unless nothing", 0)),
        vec![1.0, 2.0]
    );
}

#[test]
fn range_query_limits() {
    let src = Mem(vec![]);
    let e = Engine::default();
    let err = e.range(&src, "1", 0, 11_001_000, 1_000).unwrap_err();
    assert_eq!(
        err,
        QueryError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into()
        )
    );
    assert!(
        e.range(&src, "1", 0, 11_000_000, 1_000).is_ok(),
        "exactly 11,000 intervals is allowed"
    );
    let err = e.range(&src, "1", 10, 0, 1_000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    assert_eq!(err.error_type(), "bad_data");
    assert!(matches!(
        e.range(&src, "1", 0, 10, 0),
        Err(QueryError::BadData(_))
    ));
    assert!(matches!(
        e.range(&src, "x[5m]", 0, 10, 1),
        Err(QueryError::BadData(_))
    ));
    assert!(matches!(
        e.instant(&src, "sum(", 0),
        Err(QueryError::BadData(_))
    ));
    // A scalar range query is a matrix with one label-less series.
    let m = matrix(e.range(&src, "time()", 0, 2_000, 1_000));
    assert_eq!(
        m,
        vec![Series {
            labels: vec![],
            samples: vec![(0, 0.0), (1_000, 1.0), (2_000, 2.0)]
        }]
    );
    assert_eq!(
        e.instant(&src, "1 + 1", 5_000),
        Ok(Value::Scalar(5_000, 2.0))
    );
    assert_eq!(
        e.instant(&src, "\"hi\"", 5_000),
        Ok(Value::String(5_000, "hi".into()))
    );
}

#[test]
fn unsupported_constructs_are_refused_by_name() {
    let src = Mem(vec![series(&[("__name__", "x")], &[(0, 1.0)])]);
    let e = Engine::default();
    for (q, needle) in [
        ("mad_over_time(x[5m])", "mad_over_time"),
        ("histogram_count(x)", "native histograms"),
        ("limitk(1, x)", "limitk"),
        ("sort_by_label(x, \"a\")", "sort_by_label"),
        ("x + fill(0) x", "fill"),
    ] {
        match e.instant(&src, q, 0) {
            Err(QueryError::Unsupported(m)) => assert!(m.contains(needle), "{q}: {m}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    match e.range(&src, "predict_linear(x[5m] @ 100, 60)", 0, 60_000, 30_000) {
        Err(QueryError::Unsupported(m)) => assert!(m.contains("predict_linear"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        e.instant(&src, "predict_linear(x[5m] @ 100, 60)", 0)
            .is_ok(),
        "an instant query is well defined"
    );
}

#[test]
fn timeout_is_reported() {
    let src = Mem(vec![series(&[("__name__", "x")], &[(0, 1.0)])]);
    let e = Engine {
        timeout: Duration::ZERO,
        ..Engine::default()
    };
    let err = e
        .range(&src, "rate(x[5m])", 0, 3_600_000, 15_000)
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout");
    assert_eq!(err.http_status(), 503);
}

#[test]
fn source_errors_are_execution_errors() {
    struct Broken;
    impl SeriesSource for Broken {
        fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>, String> {
            Err("disk on fire".into())
        }
    }
    let err = Engine::default().instant(&Broken, "x", 0).unwrap_err();
    assert_eq!(
        err,
        QueryError::Source("expanding series: disk on fire".into())
    );
    assert_eq!(err.error_type(), "execution");
}

#[test]
fn each_selector_is_read_once_per_query() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counting(Mem, AtomicUsize);
    impl SeriesSource for Counting {
        fn select(&self, m: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.select(m, mint, maxt)
        }
    }
    let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15_000, i as f64)).collect();
    let src = Counting(
        Mem(vec![series(&[("__name__", "x")], &samples)]),
        AtomicUsize::new(0),
    );
    let e = Engine::default();
    e.range(
        &src,
        "sum(rate(x[5m])) / count(rate(x[5m])) + max_over_time(x[10m:1m])",
        0,
        15_000_000,
        15_000,
    )
    .unwrap();
    assert_eq!(
        src.1.load(Ordering::Relaxed),
        2,
        "rate(x[5m]) twice shares one read; the subquery reads once"
    );
}

/// A day at 15 s over 100 series: the evaluation stays in memory, so even
/// unoptimised builds finish quickly.
#[test]
fn a_day_of_100_series_is_fast() {
    let day = 86_400_000;
    let mut all = Vec::new();
    for i in 0..100 {
        let samples: Vec<(i64, f64)> = (0..=day / 15_000)
            .map(|k| (k * 15_000 + i, (k * (i + 1)) as f64))
            .collect();
        let inst = format!("i{i}");
        let job = if i % 2 == 0 { "a" } else { "b" };
        all.push(series(
            &[("__name__", "c_total"), ("instance", &inst), ("job", job)],
            &samples,
        ));
    }
    let src = Mem(all);
    let e = Engine::default();
    let started = Instant::now();
    let m = matrix(e.range(&src, "sum by (job) (rate(c_total[5m]))", 0, day, 15_000));
    let took = started.elapsed();
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[0].samples.len(),
        (day / 15_000) as usize,
        "the first step has a single sample"
    );
    let limit = if cfg!(debug_assertions) {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(2)
    };
    assert!(took < limit, "took {took:?}");
}

#[test]
fn runaway_subqueries_hit_the_sample_limit() {
    let src = Mem(vec![series(&[("__name__", "x")], &[(0, 1.0)])]);
    let err = Engine::default()
        .instant(&src, "max_over_time(vector(1)[1y:100ms])", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
}

#[test]
fn selector_weights_tell_samples_per_step() {
    let w = crate::selector_weights("sum(rate(http_total{job=\"a\"}[5m])) / up").unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].1, 21);
    assert!(w[0].0.iter().any(|m| m.name == "job" && m.value == "a"));
    assert_eq!(w[1].1, 1);
    assert!(crate::selector_weights("max_over_time(up[1h:1m])").is_none());
    assert!(crate::selector_weights("up{").is_none());
    assert_eq!(crate::selector_weights("1 + 2").unwrap().len(), 0);
}
