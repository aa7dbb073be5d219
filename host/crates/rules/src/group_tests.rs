//! Group evaluation: the alert state machine, recording rules, staleness,
//! sending, restore and the API, driven minute by minute over an
//! in-memory store as the host would.

use lookout_promql::{Engine, Labels, STALE_NAN_BITS};

use crate::alerting::{AlertState, RESOLVED_RETENTION_MS};
use crate::group::{GroupEvalOutput, GroupOptions, GroupState, RestorePolicy, RuleHealth};
use crate::source::MemorySeries;
use crate::{RuleTypeFilter, alerts_json, parse_rule_file, rules_json};

const MIN: i64 = 60_000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// A group over an in-memory store; `set` writes input samples, `eval`
/// evaluates and appends the output as the host does.
struct Harness {
    db: MemorySeries,
    group: GroupState,
    engine: Engine,
}

impl Harness {
    fn new(rules: &str) -> Self {
        Self::with_opts(rules, GroupOptions::default())
    }

    fn with_opts(rules: &str, opts: GroupOptions) -> Self {
        let f = parse_rule_file(rules, "test.yml").unwrap_or_else(|e| panic!("{e}"));
        Harness {
            db: MemorySeries::new(),
            group: GroupState::new(f.groups[0].clone(), "test.yml", opts),
            engine: Engine::default(),
        }
    }

    fn set(&mut self, labels: &Labels, t: i64, v: f64) {
        self.db.append(labels, t, v).unwrap();
    }

    fn eval(&mut self, t: i64) -> GroupEvalOutput {
        let out = self.group.eval(&self.engine, &self.db, t);
        for (labels, v) in &out.samples_to_write {
            self.db.append(labels, t, *v).unwrap();
        }
        out
    }

    /// The state of each alert held by rule `i`.
    fn states(&self, i: usize) -> Vec<AlertState> {
        self.group
            .rules()
            .nth(i)
            .unwrap()
            .all_alerts()
            .iter()
            .map(|a| a.state)
            .collect()
    }
}

const DOWN: &str = "
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 3m
        labels: { severity: page }
        annotations: { summary: '{{ $labels.instance }} down, value {{ $value }}' }
";

fn up() -> Labels {
    l(&[("__name__", "up"), ("instance", "a")])
}

#[test]
fn pending_then_firing_after_for() {
    let mut h = Harness::new(DOWN);
    let mut fired_at = None;
    for m in 0..6 {
        h.set(&up(), m * MIN, 0.0);
        let out = h.eval(m * MIN);
        let state = h.states(0)[0];
        match m {
            0 => {
                assert_eq!(state, AlertState::Pending);
                assert_eq!(out.transitions.len(), 1);
                assert_eq!(
                    (out.transitions[0].from, out.transitions[0].to),
                    (AlertState::Inactive, AlertState::Pending)
                );
                assert!(out.alerts.is_empty(), "pending alerts are not sent");
            }
            1 | 2 => assert_eq!(state, AlertState::Pending),
            3 => {
                // activeAt 0, for 3m: fires at exactly 3m.
                assert_eq!(state, AlertState::Firing);
                assert_eq!(out.transitions[0].to, AlertState::Firing);
                assert_eq!(out.alerts.len(), 1);
                fired_at = out.alerts[0].alert.fired_at_ms;
            }
            _ => assert_eq!(state, AlertState::Firing),
        }
    }
    assert_eq!(fired_at, Some(3 * MIN));
    let alert = h.group.rules().next().unwrap().active_alerts()[0].clone();
    assert_eq!(
        alert.labels,
        l(&[
            ("alertname", "Down"),
            ("instance", "a"),
            ("severity", "page")
        ])
    );
    assert_eq!(alert.annotations, l(&[("summary", "a down, value 0")]));
    assert_eq!(alert.active_at_ms, 0);
}

#[test]
fn alerts_series_are_written_and_end_with_staleness_markers() {
    let mut h = Harness::new(DOWN);
    h.set(&up(), 0, 0.0);
    let out = h.eval(0);
    let alerts_pending = l(&[
        ("__name__", "ALERTS"),
        ("alertname", "Down"),
        ("alertstate", "pending"),
        ("instance", "a"),
        ("severity", "page"),
    ]);
    let for_state = l(&[
        ("__name__", "ALERTS_FOR_STATE"),
        ("alertname", "Down"),
        ("instance", "a"),
        ("severity", "page"),
    ]);
    assert_eq!(
        out.samples_to_write,
        vec![(alerts_pending.clone(), 1.0), (for_state.clone(), 0.0)]
    );
    for m in 1..=3 {
        h.set(&up(), m * MIN, 0.0);
        let out = h.eval(m * MIN);
        if m == 3 {
            // Firing now: the pending series gets a staleness marker.
            let stale: Vec<_> = out
                .samples_to_write
                .iter()
                .filter(|(_, v)| v.to_bits() == STALE_NAN_BITS)
                .collect();
            assert_eq!(stale.len(), 1);
            assert_eq!(stale[0].0, alerts_pending);
        }
    }
    // Up again: resolved; ALERTS and ALERTS_FOR_STATE end.
    h.set(&up(), 4 * MIN, 1.0);
    let out = h.eval(4 * MIN);
    assert!(
        out.samples_to_write
            .iter()
            .all(|(_, v)| v.to_bits() == STALE_NAN_BITS)
    );
    assert_eq!(out.samples_to_write.len(), 2);
}

#[test]
fn pending_is_dropped_and_firing_resolves_when_the_series_goes_away() {
    let mut h = Harness::new(DOWN);
    h.set(&up(), 0, 0.0);
    h.eval(0);
    h.set(&up(), MIN, 1.0);
    let out = h.eval(MIN);
    assert!(h.states(0).is_empty(), "a pending alert is dropped");
    assert_eq!(
        (out.transitions[0].from, out.transitions[0].to),
        (AlertState::Pending, AlertState::Inactive)
    );

    for m in 2..=5 {
        h.set(&up(), m * MIN, 0.0);
        h.eval(m * MIN);
    }
    assert_eq!(h.states(0), vec![AlertState::Firing]);
    h.set(&up(), 6 * MIN, 1.0);
    let out = h.eval(6 * MIN);
    assert_eq!(
        h.states(0),
        vec![AlertState::Inactive],
        "resolved alerts are kept"
    );
    assert_eq!(out.alerts.len(), 1, "resolution is sent at once");
    assert_eq!(out.alerts[0].alert.resolved_at_ms, Some(6 * MIN));
    assert_eq!(out.alerts[0].alert.ends_at_ms(), Some(6 * MIN));
    assert!(h.group.rules().next().unwrap().active_alerts().is_empty());

    // Kept and re-sent for 15 minutes, then forgotten.
    let mut t = 7 * MIN;
    while t - 6 * MIN <= RESOLVED_RETENTION_MS {
        h.set(&up(), t, 1.0);
        h.eval(t);
        assert_eq!(h.states(0), vec![AlertState::Inactive], "at {t}");
        t += MIN;
    }
    h.set(&up(), t, 1.0);
    h.eval(t);
    assert!(h.states(0).is_empty());
}

#[test]
fn keep_firing_for_holds_a_resolved_alert() {
    let mut h = Harness::new(
        "
groups:
  - name: g
    rules:
      - alert: Hot
        expr: temp > 50
        keep_firing_for: 2m
",
    );
    let temp = l(&[("__name__", "temp")]);
    let values = [60.0, 40.0, 40.0, 40.0, 60.0, 40.0];
    let mut states = vec![];
    for (m, v) in values.iter().enumerate() {
        let t = m as i64 * MIN;
        h.set(&temp, t, *v);
        h.eval(t);
        let a = h
            .group
            .rules()
            .next()
            .unwrap()
            .all_alerts()
            .first()
            .map(|a| (a.state, a.keep_firing_since_ms, a.value));
        states.push(a);
    }
    assert_eq!(
        states,
        vec![
            Some((AlertState::Firing, None, 60.0)),
            // Gone at 1m: keeps firing (with its last value) since 1m ...
            Some((AlertState::Firing, Some(MIN), 60.0)),
            Some((AlertState::Firing, Some(MIN), 60.0)),
            // ... until 2m have passed.
            Some((AlertState::Inactive, Some(MIN), 60.0)),
            // Back: a new alert.
            Some((AlertState::Firing, None, 60.0)),
            Some((AlertState::Firing, Some(5 * MIN), 60.0)),
        ]
    );
}

#[test]
fn flapping_restarts_the_for_clock() {
    let mut h = Harness::new(DOWN);
    // Down, up, down: each down period starts a new pending alert.
    let pattern = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let mut active_at = vec![];
    for (m, v) in pattern.iter().enumerate() {
        let t = m as i64 * MIN;
        h.set(&up(), t, *v);
        h.eval(t);
        active_at.push(
            h.group
                .rules()
                .next()
                .unwrap()
                .all_alerts()
                .first()
                .map(|a| (a.state, a.active_at_ms)),
        );
    }
    assert_eq!(
        active_at,
        vec![
            Some((AlertState::Pending, 0)),
            Some((AlertState::Pending, 0)),
            None,
            Some((AlertState::Pending, 3 * MIN)),
            Some((AlertState::Pending, 3 * MIN)),
            Some((AlertState::Pending, 3 * MIN)),
            Some((AlertState::Firing, 3 * MIN)),
        ]
    );
}

#[test]
fn firing_alerts_are_resent_after_the_resend_delay() {
    let mut h = Harness::new(
        "
groups:
  - name: g
    interval: 30s
    rules:
      - alert: Always
        expr: vector(1)
",
    );
    let mut sent = vec![];
    for i in 0..6 {
        let t = i * 30_000;
        let out = h.eval(t);
        if let Some(a) = out.alerts.first() {
            // valid_until: 4 × max(resend delay, interval).
            assert_eq!(a.alert.valid_until_ms, Some(t + 4 * MIN));
            sent.push(t);
        }
    }
    // Sent at 0; then only once more than a minute has passed.
    assert_eq!(sent, vec![0, 90_000]);
}

#[test]
fn recording_output_is_visible_to_later_rules_of_the_group() {
    let mut h = Harness::new(
        "
groups:
  - name: g
    rules:
      - record: job:reqs:sum
        expr: sum by (job) (reqs)
        labels: { team: core }
      - alert: TooMany
        expr: job:reqs:sum > 10
        annotations: { v: '{{ $value }} {{ $labels.team }}' }
",
    );
    h.set(
        &l(&[("__name__", "reqs"), ("job", "api"), ("i", "1")]),
        0,
        7.0,
    );
    h.set(
        &l(&[("__name__", "reqs"), ("job", "api"), ("i", "2")]),
        0,
        8.0,
    );
    let out = h.eval(0);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        out.samples_to_write[0],
        (
            l(&[
                ("__name__", "job:reqs:sum"),
                ("job", "api"),
                ("team", "core")
            ]),
            15.0
        )
    );
    let alert = &h.group.rules().nth(1).unwrap().active_alerts()[0].clone();
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.annotations, l(&[("v", "15 core")]));
}

#[test]
fn failing_rules_report_errors_and_keep_their_state() {
    let mut h = Harness::new(
        "
groups:
  - name: g
    rules:
      - record: same
        expr: x
        labels: { i: fixed }
",
    );
    h.set(&l(&[("__name__", "x"), ("i", "1")]), 0, 1.0);
    h.set(&l(&[("__name__", "x"), ("i", "2")]), 0, 2.0);
    let out = h.eval(0);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(
        out.errors[0].message,
        "vector contains metrics with the same labelset after applying rule labels"
    );
    assert!(out.samples_to_write.is_empty());
    let r = h.group.rules().next().unwrap();
    assert_eq!(r.health(), RuleHealth::Err);
}

#[test]
fn snapshot_restore_resumes_for_after_a_restart() {
    let rules = "
groups:
  - name: g
    rules:
      - alert: Slow
        expr: up == 0
        for: 30m
";
    let mut h = Harness::new(rules);
    for m in 0..=10 {
        h.set(&up(), m * MIN, 0.0);
        h.eval(m * MIN);
    }
    let saved = h.group.persisted_state();
    let json = serde_json::to_string(&saved).unwrap();
    let saved: crate::PersistedGroupState = serde_json::from_str(&json).unwrap();
    assert_eq!(saved.rules[0].alerts[0].state, AlertState::Pending);

    // Down for 5 minutes; restored at 15m: 10m spent pending counts, the
    // downtime does not, so it fires 20m later, at 35m.
    let mut after = Harness::new(rules);
    after.db = h.db.clone();
    after
        .group
        .restore(&saved, 15 * MIN, &RestorePolicy::default());
    let mut fired = None;
    for m in 15..=40 {
        after.set(&up(), m * MIN, 0.0);
        after.eval(m * MIN);
        if fired.is_none() && after.states(0) == vec![AlertState::Firing] {
            fired = Some(m);
        }
    }
    assert_eq!(fired, Some(35));
}

#[test]
fn restore_active_at_follows_prometheus() {
    let p = RestorePolicy::default();
    // Already firing when it went down: keeps its activeAt.
    assert_eq!(
        crate::restore_active_at(0, 40 * MIN, 50 * MIN, 30 * MIN, &p),
        0
    );
    // 5m left (< 10m grace): fires 10m after the restart.
    assert_eq!(
        crate::restore_active_at(0, 25 * MIN, 60 * MIN, 30 * MIN, &p),
        60 * MIN + 10 * MIN - 30 * MIN
    );
    // 20m left: shifted by the 5m downtime.
    assert_eq!(
        crate::restore_active_at(0, 10 * MIN, 15 * MIN, 30 * MIN, &p),
        5 * MIN
    );
}

#[test]
fn prometheus_style_restore_reads_alerts_for_state() {
    let rules = "
groups:
  - name: g
    rules:
      - alert: Slow
        expr: up == 0
        for: 30m
";
    let mut before = Harness::new(rules);
    for m in 0..=10 {
        before.set(&up(), m * MIN, 0.0);
        before.eval(m * MIN);
    }
    // Restart at 15m; no ALERTS written until restored.
    let opts = GroupOptions {
        awaiting_restore: true,
        ..GroupOptions::default()
    };
    let mut after = Harness::with_opts(rules, opts);
    after.db = before.db.clone();
    for m in [15, 16] {
        after.set(&up(), m * MIN, 0.0);
        let out = after.eval(m * MIN);
        assert!(out.samples_to_write.is_empty());
    }
    after
        .group
        .restore_for_state(&after.db.clone(), 16 * MIN, &RestorePolicy::default());
    let a = after.group.rules().next().unwrap().active_alerts()[0].clone();
    // Last seen at 10m, active since 0: shifted by the 6m between 10m and 16m.
    assert_eq!(a.active_at_ms, 6 * MIN);
    after.set(&up(), 17 * MIN, 0.0);
    let out = after.eval(17 * MIN);
    assert_eq!(
        out.samples_to_write.len(),
        2,
        "ALERTS and ALERTS_FOR_STATE again"
    );
}

#[test]
fn api_json_has_prometheus_fields() {
    let mut h = Harness::new(DOWN);
    h.set(&up(), 0, 0.0);
    h.eval(0);
    let rules = rules_json(&[&h.group], RuleTypeFilter::All);
    let g = &rules["groups"][0];
    assert_eq!(g["name"], "g");
    assert_eq!(g["file"], "test.yml");
    assert_eq!(g["interval"], 60.0);
    assert_eq!(g["lastEvaluation"], "1970-01-01T00:00:00Z");
    let r = &g["rules"][0];
    assert_eq!(r["type"], "alerting");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["name"], "Down");
    assert_eq!(r["query"], "up == 0");
    assert_eq!(r["duration"], 180.0);
    assert_eq!(r["keepFiringFor"], 0.0);
    assert_eq!(r["labels"]["severity"], "page");
    assert_eq!(r["health"], "ok");
    assert!(r.get("lastError").is_none());
    let a = &r["alerts"][0];
    assert_eq!(a["state"], "pending");
    assert_eq!(a["value"], "0e+00");
    assert_eq!(a["activeAt"], "1970-01-01T00:00:00Z");
    assert_eq!(a["labels"]["alertname"], "Down");
    assert!(
        rules_json(&[&h.group], RuleTypeFilter::Recording)["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let alerts = alerts_json(&[&h.group]);
    assert_eq!(
        alerts["alerts"][0]["annotations"]["summary"],
        "a down, value 0"
    );
    assert!(
        RuleTypeFilter::parse("bogus")
            .unwrap_err()
            .contains("not supported value \"bogus\"")
    );
}

#[test]
fn eval_slots_are_interval_apart_and_not_after_now() {
    let h = Harness::new(DOWN);
    let a = h.group.eval_timestamp(1_000_000);
    assert!(a <= 1_000_000 && a > 1_000_000 - MIN);
    assert_eq!(h.group.eval_timestamp(1_000_000 + MIN), a + MIN);
    assert_eq!(h.group.eval_timestamp(a), a);
}
