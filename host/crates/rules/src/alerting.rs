//! One alerting rule's state machine, as Prometheus 2.42's
//! `rules/alerting.go`:
//!
//! - every element of the expression's result is an alert, identified by
//!   its labels (the series' labels without `__name__`, plus the rule's
//!   expanded labels, plus `alertname`);
//! - a new alert is **pending** with `activeAt` = now; it becomes **firing**
//!   at the first evaluation where `now - activeAt >= for` (at once when
//!   `for` is 0);
//! - when its element is gone, a pending alert is dropped; a firing one
//!   becomes **inactive** (resolved, `resolvedAt` = now) — unless
//!   `keep_firing_for` is set, which keeps it firing until that long after
//!   the element first went missing;
//! - a resolved alert is kept (and re-sent to the notifier) for
//!   [`RESOLVED_RETENTION_MS`] — 15 minutes — then forgotten; if its element
//!   comes back meanwhile a new pending alert replaces it;
//! - each evaluation writes `ALERTS{alertstate="pending"|"firing"} 1` and
//!   `ALERTS_FOR_STATE <activeAt in seconds>` for every pending or firing
//!   alert.

use std::collections::{BTreeMap, BTreeSet};

use lookout_promql::Labels;
use serde::{Deserialize, Serialize};

use crate::rulefile::AlertingRuleSpec;
use crate::template::{self, AlertTemplateData, TemplateContext};

/// The metric name of the synthetic alert series.
pub const ALERTS_METRIC: &str = "ALERTS";
/// The metric name of the series holding each alert's `activeAt`.
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
/// How long a resolved alert is kept, so the notifier keeps hearing that it
/// resolved: Prometheus' `resolvedRetention`.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The state of an alert (and, as the highest of its alerts', of a rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

impl std::fmt::Display for AlertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert of an alerting rule. Times are Unix milliseconds; `None` is
/// Go's zero time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub state: AlertState,
    /// Sorted; includes `alertname`.
    pub labels: Labels,
    /// Expanded annotations, sorted by name.
    pub annotations: Labels,
    /// The expression's value at the last evaluation that returned it.
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_at_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub keep_firing_since_ms: Option<i64>,
}

impl Alert {
    /// Prometheus' `needsSending`: never while pending; at once after it
    /// resolved; otherwise when the last send is older than `resend_delay`.
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(r) = self.resolved_at_ms
            && self.last_sent_at_ms.is_none_or(|s| r > s)
        {
            return true;
        }
        match self.last_sent_at_ms {
            None => true,
            Some(s) => s + resend_delay_ms < ts,
        }
    }

    /// `startsAt` for Alertmanager: when it fired (Go's zero time if never).
    pub fn starts_at_ms(&self) -> Option<i64> {
        self.fired_at_ms
    }

    /// `endsAt` for Alertmanager: when it resolved, else `validUntil`.
    pub fn ends_at_ms(&self) -> Option<i64> {
        self.resolved_at_ms.or(self.valid_until_ms)
    }
}

/// A change of an alert's state at an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub rule: String,
    pub labels: Labels,
    pub from: AlertState,
    pub to: AlertState,
    pub at_ms: i64,
    pub value: f64,
}

/// An alerting rule with its alerts.
#[derive(Clone, Debug)]
pub(crate) struct AlertingRule {
    pub spec: AlertingRuleSpec,
    /// Pending, firing and recently resolved alerts, by labels.
    pub active: BTreeMap<Labels, Alert>,
    /// ALERTS/ALERTS_FOR_STATE are written only once `for` state was
    /// restored after a restart (Prometheus' `restored`).
    pub restored: bool,
}

/// Sets `name` in sorted `labels`; an empty value deletes it.
pub(crate) fn set_label(labels: &mut Labels, name: &str, value: &str) {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            labels.remove(i);
        }
        Ok(i) => labels[i].1 = value.to_string(),
        Err(_) if value.is_empty() => {}
        Err(i) => labels.insert(i, (name.to_string(), value.to_string())),
    }
}

/// What an evaluation of the rule needs from its group.
pub(crate) struct EvalEnv<'a> {
    pub ts: i64,
    pub limit: usize,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: Option<&'a str>,
    pub url_functions: bool,
    pub query: &'a template::TemplateQueryFn<'a>,
}

impl AlertingRule {
    pub fn new(spec: AlertingRuleSpec, restored: bool) -> Self {
        AlertingRule {
            spec,
            active: BTreeMap::new(),
            restored,
        }
    }

    /// The labels of the rule itself (unexpanded), as a label set.
    fn rule_labels(&self) -> Labels {
        self.spec
            .labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The labels of the `ALERTS_FOR_STATE` series of `alert`.
    pub fn for_state_labels(&self, alert: &Alert) -> Labels {
        let mut l = self.rule_labels();
        for (k, v) in &alert.labels {
            set_label(&mut l, k, v);
        }
        set_label(&mut l, "__name__", ALERTS_FOR_STATE_METRIC);
        set_label(&mut l, "alertname", &self.spec.name);
        l
    }

    fn alerts_labels(&self, alert: &Alert) -> Labels {
        let mut l = self.rule_labels();
        for (k, v) in &alert.labels {
            set_label(&mut l, k, v);
        }
        set_label(&mut l, "__name__", ALERTS_METRIC);
        set_label(&mut l, "alertname", &self.spec.name);
        set_label(&mut l, "alertstate", alert.state.as_str());
        l
    }

    /// The highest state of the rule's alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// One evaluation over the expression's result `res`; returns the
    /// ALERTS/ALERTS_FOR_STATE samples and records state changes.
    pub fn eval(
        &mut self,
        res: Vec<(Labels, f64)>,
        env: &EvalEnv<'_>,
        transitions: &mut Vec<Transition>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let ts = env.ts;
        let ctx = TemplateContext {
            query: Some(env.query),
            external_url: env
                .external_url
                .filter(|_| env.url_functions)
                .map(str::to_string),
        };
        let mut result_fps: BTreeSet<Labels> = BTreeSet::new();
        let mut alerts: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (metric, v) in res {
            let data = AlertTemplateData {
                labels: metric.iter().cloned().collect(),
                external_labels: env.external_labels.clone(),
                external_url: env.external_url.unwrap_or("").to_string(),
                value: v,
            };
            let expand =
                |text: &str| template::expand_or_error_text(text, &self.spec.name, &data, &ctx);
            let mut lb: Labels = metric
                .iter()
                .filter(|(n, _)| n != "__name__")
                .cloned()
                .collect();
            for (k, t) in &self.spec.labels {
                set_label(&mut lb, k, &expand(t));
            }
            set_label(&mut lb, "alertname", &self.spec.name);
            let annotations: Labels = self
                .spec
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), expand(t)))
                .collect();
            if !result_fps.insert(lb.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            alerts.insert(
                lb.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels: lb,
                    annotations,
                    value: v,
                    active_at_ms: ts,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    last_sent_at_ms: None,
                    valid_until_ms: None,
                    keep_firing_since_ms: None,
                },
            );
        }

        for (fp, a) in alerts {
            if let Some(existing) = self.active.get_mut(&fp)
                && existing.state != AlertState::Inactive
            {
                existing.value = a.value;
                existing.annotations = a.annotations;
                continue;
            }
            transitions.push(Transition {
                rule: self.spec.name.clone(),
                labels: fp.clone(),
                from: AlertState::Inactive,
                to: AlertState::Pending,
                at_ms: ts,
                value: a.value,
            });
            self.active.insert(fp, a);
        }

        let hold = self.spec.for_ms;
        let keep_for = self.spec.keep_firing_for_ms;
        let mut vec = Vec::new();
        let mut num_active = 0usize;
        let keys: Vec<Labels> = self.active.keys().cloned().collect();
        for fp in keys {
            let mut delete = false;
            let a = self.active.get_mut(&fp).expect("key from the map");
            if !result_fps.contains(&fp) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    if ts - since < keep_for {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at_ms
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    delete = true;
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    transitions.push(Transition {
                        rule: self.spec.name.clone(),
                        labels: fp.clone(),
                        from: a.state,
                        to: AlertState::Inactive,
                        at_ms: ts,
                        value: a.value,
                    });
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                }
                if delete {
                    self.active.remove(&fp);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            let a = self.active.get_mut(&fp).expect("kept alert");
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at_ms >= hold {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts);
                transitions.push(Transition {
                    rule: self.spec.name.clone(),
                    labels: fp.clone(),
                    from: AlertState::Pending,
                    to: AlertState::Firing,
                    at_ms: ts,
                    value: a.value,
                });
            }
            if self.restored {
                let a = self.active[&fp].clone();
                vec.push((self.alerts_labels(&a), 1.0));
                vec.push((
                    self.for_state_labels(&a),
                    a.active_at_ms.div_euclid(1000) as f64,
                ));
            }
        }

        if env.limit > 0 && num_active > env.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {} alerts",
                env.limit, num_active
            ));
        }
        Ok(vec)
    }

    /// Pending and firing alerts (not the resolved ones kept for re-sending):
    /// Prometheus' `ActiveAlerts`.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.resolved_at_ms.is_none())
    }
}
