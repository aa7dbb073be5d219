//! A rule group's evaluation, I/O free: [`GroupState::eval`] evaluates
//! every rule in order at one timestamp and returns what to write, what to
//! send and what changed; the host does the writing and sending.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lookout_promql::{Engine, Labels, MatchOp, Matcher, SeriesSource, Value};
use serde::{Deserialize, Serialize};

use crate::alerting::{Alert, AlertState, AlertingRule, EvalEnv, Transition, set_label};
use crate::rulefile::{RecordingRuleSpec, Rule, RuleGroup};
use crate::source::{Overlay, stale_nan};
use crate::template::funcs_query_escape;

/// How a group is run; Prometheus' defaults via [`Default`].
#[derive(Clone, Debug)]
pub struct GroupOptions {
    /// The global `evaluation_interval`, for groups without `interval:`
    /// (Prometheus' default: 1 minute).
    pub default_interval_ms: i64,
    /// `global.external_labels`, visible to templates as `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `--web.external-url`: `$externalURL`, `externalURL`, `pathPrefix`
    /// and the alerts' generator URL.
    pub external_url: Option<String>,
    /// Whether the `externalURL` and `pathPrefix` template functions work.
    /// They do in Prometheus; in promtool they fail (it gives templates no
    /// URL), which the unit-test runner reproduces.
    pub external_url_functions: bool,
    /// Minimum time between two sends of a still-firing alert
    /// (`--rules.alert.resend-delay`, 1 minute).
    pub resend_delay_ms: i64,
    /// `true` after a restart when `for` state will be restored from
    /// `ALERTS_FOR_STATE` ([`GroupState::restore_for_state`]): until then no
    /// `ALERTS`/`ALERTS_FOR_STATE` samples are written, as in Prometheus.
    pub awaiting_restore: bool,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            default_interval_ms: 60_000,
            external_labels: BTreeMap::new(),
            external_url: None,
            external_url_functions: true,
            resend_delay_ms: 60_000,
            awaiting_restore: false,
        }
    }
}

/// How `for` state is restored after a restart (Prometheus'
/// `--rules.alert.for-outage-tolerance` and `--rules.alert.for-grace-period`).
#[derive(Clone, Copy, Debug)]
pub struct RestorePolicy {
    /// State older than this is not restored (1 hour).
    pub outage_tolerance_ms: i64,
    /// An alert restored with less than this left to wait waits this long
    /// (10 minutes); rules whose `for` is shorter are not restored at all.
    pub for_grace_period_ms: i64,
}

impl Default for RestorePolicy {
    fn default() -> Self {
        RestorePolicy {
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
        }
    }
}

/// A rule's health after its last evaluation (`/api/v1/rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleHealth {
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}

/// A rule's evaluation failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleEvalError {
    /// The rule's position in its group.
    pub rule_index: usize,
    pub rule: String,
    pub message: String,
}

/// An alert the notifier should send now (Prometheus' `sendAlerts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertToSend {
    pub rule: String,
    pub alert: Alert,
    /// `externalURL + /graph?g0.expr=...&g0.tab=1`.
    pub generator_url: String,
}

/// What one group evaluation produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupEvalOutput {
    /// Samples to append, all at the evaluation timestamp, in rule order:
    /// recording rules' results, `ALERTS`/`ALERTS_FOR_STATE`, and staleness
    /// markers (value bits `STALE_NAN_BITS`) for series a rule produced at
    /// its previous evaluation but not at this one.
    pub samples_to_write: Vec<(Labels, f64)>,
    /// Alerts due for sending to the notifier (firing, re-sends and
    /// resolutions), with `last_sent_at`/`valid_until` already updated.
    pub alerts: Vec<AlertToSend>,
    /// Alert state changes, in rule order.
    pub transitions: Vec<Transition>,
    /// Rules whose evaluation failed; their state is left as it was.
    pub errors: Vec<RuleEvalError>,
}

#[derive(Clone, Debug)]
enum RuleKind {
    Alerting(AlertingRule),
    Recording(RecordingRuleSpec),
}

#[derive(Clone, Debug)]
struct RuleState {
    kind: RuleKind,
    health: RuleHealth,
    last_error: Option<String>,
    last_evaluation_ms: Option<i64>,
    evaluation_duration: Duration,
    /// Series written at the previous evaluation (for staleness markers).
    previous_series: BTreeSet<Labels>,
}

/// A rule group and its evaluation state.
#[derive(Clone, Debug)]
pub struct GroupState {
    spec: RuleGroup,
    file: String,
    opts: GroupOptions,
    rules: Vec<RuleState>,
    last_evaluation_ms: Option<i64>,
    evaluation_duration: Duration,
}

/// The `for` state of a group, to store across restarts (serde).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedGroupState {
    /// Format version of this record (1).
    pub version: u32,
    pub file: String,
    pub group: String,
    /// The timestamp of the group's last evaluation before it was saved.
    pub last_evaluation_ms: Option<i64>,
    pub rules: Vec<PersistedRuleState>,
}

/// One alerting rule's alerts, identified by the rule's name and labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedRuleState {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub alerts: Vec<Alert>,
}

/// A read-only view of one rule for the API.
pub struct RuleView<'a> {
    state: &'a RuleState,
}

impl RuleView<'_> {
    pub fn spec(&self) -> Rule {
        match &self.state.kind {
            RuleKind::Alerting(a) => Rule::Alerting(a.spec.clone()),
            RuleKind::Recording(r) => Rule::Recording(r.clone()),
        }
    }
    pub fn health(&self) -> RuleHealth {
        self.state.health
    }
    pub fn last_error(&self) -> Option<&str> {
        self.state.last_error.as_deref()
    }
    pub fn last_evaluation_ms(&self) -> Option<i64> {
        self.state.last_evaluation_ms
    }
    pub fn evaluation_duration(&self) -> Duration {
        self.state.evaluation_duration
    }
    /// For alerting rules: the highest state of its alerts.
    pub fn state(&self) -> Option<AlertState> {
        match &self.state.kind {
            RuleKind::Alerting(a) => Some(a.state()),
            RuleKind::Recording(_) => None,
        }
    }
    /// For alerting rules: pending and firing alerts, by labels.
    pub fn active_alerts(&self) -> Vec<&Alert> {
        match &self.state.kind {
            RuleKind::Alerting(a) => a.active_alerts().collect(),
            RuleKind::Recording(_) => vec![],
        }
    }
    /// For alerting rules: every alert held, resolved ones included.
    pub fn all_alerts(&self) -> Vec<&Alert> {
        match &self.state.kind {
            RuleKind::Alerting(a) => a.active.values().collect(),
            RuleKind::Recording(_) => vec![],
        }
    }
}

/// Converts a query result to `(labels, value)` pairs as Prometheus' rule
/// query function does (a scalar is one sample without labels).
fn to_vector(v: Value) -> Result<Vec<(Labels, f64)>, String> {
    match v {
        Value::Vector(s) => Ok(s.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar(_, v) => Ok(vec![(vec![], v)]),
        _ => Err("rule result is not a vector or scalar".to_string()),
    }
}

impl GroupState {
    /// A group from `file`, ready to evaluate.
    pub fn new(spec: RuleGroup, file: &str, opts: GroupOptions) -> Self {
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                kind: match r {
                    Rule::Alerting(a) => {
                        RuleKind::Alerting(AlertingRule::new(a.clone(), !opts.awaiting_restore))
                    }
                    Rule::Recording(r) => RuleKind::Recording(r.clone()),
                },
                health: RuleHealth::Unknown,
                last_error: None,
                last_evaluation_ms: None,
                evaluation_duration: Duration::ZERO,
                previous_series: BTreeSet::new(),
            })
            .collect();
        GroupState {
            spec,
            file: file.to_string(),
            opts,
            rules,
            last_evaluation_ms: None,
            evaluation_duration: Duration::ZERO,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn spec(&self) -> &RuleGroup {
        &self.spec
    }

    /// The group's interval: its own `interval:` or the global one.
    pub fn interval_ms(&self) -> i64 {
        self.spec
            .interval_ms
            .unwrap_or(self.opts.default_interval_ms)
    }

    pub fn last_evaluation_ms(&self) -> Option<i64> {
        self.last_evaluation_ms
    }

    /// Wall time the last evaluation took.
    pub fn evaluation_duration(&self) -> Duration {
        self.evaluation_duration
    }

    /// The rules, in order, for the API.
    pub fn rules(&self) -> impl Iterator<Item = RuleView<'_>> {
        self.rules.iter().map(|state| RuleView { state })
    }

    /// The timestamp of the evaluation slot at or before `now_ms`, as
    /// Prometheus spreads groups: slots are `interval` apart, offset by a
    /// hash of the group's name and file so groups do not all run at once
    /// (an FNV hash, not Prometheus' label hash: the offsets differ).
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms().max(1);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self
            .file
            .bytes()
            .chain([0xff])
            .chain(self.spec.name.bytes())
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let offset = (h % interval as u64) as i64;
        let adj = now_ms - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    /// Evaluates every rule in order at `ts_ms`. Each rule sees the source
    /// plus what the earlier rules of this evaluation wrote (their samples
    /// are layered over `src`), so the caller appends
    /// `samples_to_write` after the call, in order. `engine` evaluates the
    /// expressions; templates' `query` uses it too.
    pub fn eval(&mut self, engine: &Engine, src: &dyn SeriesSource, ts_ms: i64) -> GroupEvalOutput {
        let started = Instant::now();
        let mut out = GroupEvalOutput::default();
        let interval = self.interval_ms();
        let limit = self.spec.limit;
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let rule_started = Instant::now();
            let overlay = Overlay {
                base: src,
                written: &out.samples_to_write,
                ts: ts_ms,
            };
            let query = |q: &str| -> Result<Vec<(Labels, f64)>, String> {
                engine
                    .instant(&overlay, q, ts_ms)
                    .map_err(|e| e.to_string())
                    .and_then(to_vector)
            };
            let mut transitions = Vec::new();
            let result: Result<Vec<(Labels, f64)>, String> = match &mut rule.kind {
                RuleKind::Recording(spec) => {
                    query(&spec.expr).and_then(|res| eval_recording(spec, res, limit))
                }
                RuleKind::Alerting(ar) => query(&ar.spec.expr).and_then(|res| {
                    let env = EvalEnv {
                        ts: ts_ms,
                        limit,
                        external_labels: &self.opts.external_labels,
                        external_url: self.opts.external_url.as_deref(),
                        url_functions: self.opts.external_url_functions,
                        query: &query,
                    };
                    ar.eval(res, &env, &mut transitions)
                }),
            };
            rule.last_evaluation_ms = Some(ts_ms);
            rule.evaluation_duration = rule_started.elapsed();
            out.transitions.append(&mut transitions);
            let samples = match result {
                Ok(s) => s,
                Err(message) => {
                    rule.health = RuleHealth::Err;
                    rule.last_error = Some(message.clone());
                    out.errors.push(RuleEvalError {
                        rule_index: i,
                        rule: rule_name(&rule.kind).to_string(),
                        message,
                    });
                    continue;
                }
            };
            rule.health = RuleHealth::Ok;
            rule.last_error = None;
            if let RuleKind::Alerting(ar) = &mut rule.kind {
                let delta = self.opts.resend_delay_ms.max(interval);
                let url = generator_url(self.opts.external_url.as_deref(), &ar.spec.expr);
                for a in ar.active.values_mut() {
                    if a.needs_sending(ts_ms, self.opts.resend_delay_ms) {
                        a.last_sent_at_ms = Some(ts_ms);
                        a.valid_until_ms = Some(ts_ms + 4 * delta);
                        out.alerts.push(AlertToSend {
                            rule: ar.spec.name.clone(),
                            alert: a.clone(),
                            generator_url: url.clone(),
                        });
                    }
                }
            }
            let mut returned = BTreeSet::new();
            for (labels, v) in samples {
                returned.insert(labels.clone());
                out.samples_to_write.push((labels, v));
            }
            for gone in rule.previous_series.difference(&returned) {
                out.samples_to_write.push((gone.clone(), stale_nan()));
            }
            rule.previous_series = returned;
        }
        self.last_evaluation_ms = Some(ts_ms);
        self.evaluation_duration = started.elapsed();
        out
    }

    /// The `for` state to store across restarts.
    pub fn persisted_state(&self) -> PersistedGroupState {
        PersistedGroupState {
            version: 1,
            file: self.file.clone(),
            group: self.spec.name.clone(),
            last_evaluation_ms: self.last_evaluation_ms,
            rules: self
                .rules
                .iter()
                .filter_map(|r| match &r.kind {
                    RuleKind::Alerting(a) => Some(PersistedRuleState {
                        name: a.spec.name.clone(),
                        labels: a.spec.labels.clone(),
                        alerts: a.active.values().cloned().collect(),
                    }),
                    RuleKind::Recording(_) => None,
                })
                .collect(),
        }
    }

    /// Restores `for` state saved by [`persisted_state`](Self::persisted_state)
    /// before a restart, at `now_ms`, before the first evaluation.
    ///
    /// Rules are matched by name and labels (the n-th duplicate with the
    /// n-th). Each alert that was pending or firing gets Prometheus'
    /// restored `activeAt` (see [`restore_active_at`]) and waits as pending
    /// for its element to be returned by the next evaluation, which then
    /// makes it firing at once if its `for` had already elapsed; an alert
    /// whose element is gone is dropped as any pending alert. Nothing is
    /// restored when the state is older than the outage tolerance, nor for
    /// rules whose `for` is shorter than the grace period. Resolved alerts
    /// are not restored (Prometheus forgets them at a restart too).
    pub fn restore(&mut self, state: &PersistedGroupState, now_ms: i64, policy: &RestorePolicy) {
        let mut by_rule: BTreeMap<(String, BTreeMap<String, String>), Vec<&PersistedRuleState>> =
            BTreeMap::new();
        for r in &state.rules {
            by_rule
                .entry((r.name.clone(), r.labels.clone()))
                .or_default()
                .push(r);
        }
        for rule in &mut self.rules {
            let RuleKind::Alerting(ar) = &mut rule.kind else {
                continue;
            };
            ar.restored = true;
            let key = (ar.spec.name.clone(), ar.spec.labels.clone());
            let Some(list) = by_rule.get_mut(&key) else {
                continue;
            };
            if list.is_empty() {
                continue;
            }
            let saved = list.remove(0);
            let hold = ar.spec.for_ms;
            if hold < policy.for_grace_period_ms {
                continue;
            }
            let Some(down_at) = state.last_evaluation_ms else {
                continue;
            };
            if now_ms - down_at > policy.outage_tolerance_ms {
                continue;
            }
            for a in &saved.alerts {
                if a.resolved_at_ms.is_some() || a.state == AlertState::Inactive {
                    continue;
                }
                let active_at = restore_active_at(a.active_at_ms, down_at, now_ms, hold, policy);
                let mut restored = a.clone();
                restored.state = AlertState::Pending;
                restored.active_at_ms = active_at;
                restored.fired_at_ms = None;
                restored.keep_firing_since_ms = None;
                ar.active.insert(restored.labels.clone(), restored);
            }
        }
    }

    /// Prometheus' own restore (`RestoreForState`), to call after the first
    /// evaluations following a restart of a group created with
    /// [`GroupOptions::awaiting_restore`]: for each pending or firing alert,
    /// the newest `ALERTS_FOR_STATE` sample within the outage tolerance
    /// before `now_ms` gives when the alert became active and when the old
    /// process last saw it (`downAt`); a staleness marker means it was not
    /// active. `activeAt` is then set by [`restore_active_at`] (in whole
    /// seconds, as the series stores them). From then on `ALERTS` and
    /// `ALERTS_FOR_STATE` are written.
    pub fn restore_for_state(
        &mut self,
        src: &dyn SeriesSource,
        now_ms: i64,
        policy: &RestorePolicy,
    ) {
        let mint = now_ms - policy.outage_tolerance_ms;
        for rule in &mut self.rules {
            let RuleKind::Alerting(ar) = &mut rule.kind else {
                continue;
            };
            let hold = ar.spec.for_ms;
            if hold < policy.for_grace_period_ms {
                ar.restored = true;
                continue;
            }
            let keys: Vec<Labels> = ar.active.keys().cloned().collect();
            for k in keys {
                let labels = ar.for_state_labels(&ar.active[&k]);
                let matchers: Vec<Matcher> = labels
                    .iter()
                    .map(|(n, v)| Matcher {
                        name: n.clone(),
                        op: MatchOp::Equal,
                        value: v.clone(),
                    })
                    .collect();
                let Ok(series) = src.select(&matchers, mint, now_ms) else {
                    continue;
                };
                let Some(s) = series
                    .into_iter()
                    .find(|s| s.labels.len() == matchers.len())
                else {
                    continue;
                };
                let Some(&(t, v)) = s.samples.last() else {
                    continue;
                };
                if v.to_bits() == lookout_promql::STALE_NAN_BITS {
                    continue;
                }
                let down_at = t.div_euclid(1000) * 1000;
                let active_at = (v as i64) * 1000;
                let a = ar.active.get_mut(&k).expect("key from the map");
                a.active_at_ms = restore_active_at(active_at, down_at, now_ms, hold, policy);
            }
            ar.restored = true;
        }
    }
}

/// Prometheus' restored `activeAt` for an alert active since `active_at`,
/// last seen at `down_at`, restored at `now` with `for` = `hold`:
///
/// - already past `for` when the old process stopped: `active_at` (it will
///   fire at the next evaluation that still returns it);
/// - less than the grace period left: moved so it fires a grace period
///   after `now`;
/// - otherwise shifted by the downtime, so the time it had already spent
///   pending counts and the downtime does not.
pub fn restore_active_at(
    active_at: i64,
    down_at: i64,
    now: i64,
    hold: i64,
    policy: &RestorePolicy,
) -> i64 {
    let spent = down_at - active_at;
    let remaining = hold - spent;
    if remaining <= 0 {
        active_at
    } else if remaining < policy.for_grace_period_ms {
        now + policy.for_grace_period_ms - hold
    } else {
        active_at + (now - down_at)
    }
}

fn rule_name(k: &RuleKind) -> &str {
    match k {
        RuleKind::Alerting(a) => &a.spec.name,
        RuleKind::Recording(r) => &r.name,
    }
}

fn generator_url(external_url: Option<&str>, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.unwrap_or(""),
        funcs_query_escape(expr)
    )
}

/// A recording rule's result: the metric renamed and the rule's labels set.
fn eval_recording(
    spec: &RecordingRuleSpec,
    res: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(res.len());
    let mut seen = BTreeSet::new();
    for (mut labels, v) in res {
        set_label(&mut labels, "__name__", &spec.name);
        for (k, val) in &spec.labels {
            set_label(&mut labels, k, val);
        }
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((labels, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {} with {} series",
            limit,
            out.len()
        ));
    }
    Ok(out)
}
