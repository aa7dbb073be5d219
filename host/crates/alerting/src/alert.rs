//! Alerts as Alertmanager stores them: labels, annotations, a start, an end
//! (always set once stored: an alert sent without one ends
//! `resolve_timeout` after its last update unless refreshed), and the merge
//! rule applied when the same alert arrives again.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::labels::{Fingerprint, LabelSet, label_set_before};

/// An alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity of the alert.
    pub labels: LabelSet,
    /// Descriptive texts.
    #[serde(default)]
    pub annotations: LabelSet,
    /// When it started firing.
    pub starts_at: DateTime<Utc>,
    /// When it ends (or ended); `None` until stored, when a missing end
    /// becomes `updated_at + resolve_timeout`.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule that produced it.
    #[serde(default)]
    pub generator_url: String,
    /// Set by the dispatcher when the alert is received.
    #[serde(default = "epoch")]
    pub updated_at: DateTime<Utc>,
    /// Whether `ends_at` was derived from `resolve_timeout` rather than
    /// sent (such an end may be extended by a later update).
    #[serde(default)]
    pub timeout: bool,
}

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// Firing or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Not (yet) ended.
    Firing,
    /// Ended.
    Resolved,
}

impl AlertStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// A firing alert with no end, starting at `starts_at`.
    pub fn new(labels: LabelSet, starts_at: DateTime<Utc>) -> Self {
        Alert {
            labels,
            annotations: LabelSet::new(),
            starts_at,
            ends_at: None,
            generator_url: String::new(),
            updated_at: starts_at,
            timeout: false,
        }
    }

    /// The label fingerprint (the alert's id in the API).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// `alertname`, or empty.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// Whether the alert has ended at `t` (`endsAt <= t`).
    pub fn resolved_at(&self, t: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|e| e <= t)
    }

    /// Firing or resolved at `t`.
    pub fn status_at(&self, t: DateTime<Utc>) -> AlertStatus {
        if self.resolved_at(t) {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        }
    }

    /// Alertmanager's `Alert.Merge`: `self` is the stored alert, `newer` the
    /// one received. The more recently updated one wins, keeping the earlier
    /// start and, where allowed, the later end.
    pub fn merge(&self, newer: &Alert, now: DateTime<Utc>) -> Alert {
        if newer.updated_at < self.updated_at {
            return newer.merge(self, now);
        }
        let mut res = newer.clone();
        if self.starts_at < newer.starts_at {
            res.starts_at = self.starts_at;
        }
        let later_end = matches!((self.ends_at, newer.ends_at), (Some(a), Some(b)) if a > b);
        if newer.resolved_at(now) {
            if self.resolved_at(now) && later_end {
                res.ends_at = self.ends_at;
            }
        } else if later_end && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }

    /// Whether a received alert overlaps the stored one in time, in which
    /// case the two are merged (`provider/mem` `Put`).
    pub(crate) fn overlaps(&self, stored: &Alert) -> bool {
        let (Some(new_end), Some(old_end)) = (self.ends_at, stored.ends_at) else {
            return false;
        };
        (new_end > stored.starts_at && new_end < old_end)
            || (self.starts_at > stored.starts_at && self.starts_at < old_end)
    }
}

/// Alertmanager's order of alerts in a notification: by `job`, then
/// `instance`, then label set (`AlertSlice.Less`).
pub fn alert_order(a: &LabelSet, b: &LabelSet) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    if label_set_before(a, b) {
        Ordering::Less
    } else if label_set_before(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn alert(start: i64, end: Option<i64>, updated: i64, timeout: bool) -> Alert {
        let mut a = Alert::new(
            [("alertname".to_string(), "X".to_string())].into(),
            t(start),
        );
        a.ends_at = end.map(t);
        a.updated_at = t(updated);
        a.timeout = timeout;
        a
    }

    #[test]
    fn merge_keeps_earliest_start_and_latest_explicit_end() {
        let old = alert(0, Some(600), 10, false);
        let new = alert(60, Some(300), 20, false);
        let m = old.merge(&new, t(100));
        assert_eq!(m.starts_at, t(0));
        assert_eq!(m.ends_at, Some(t(600)));
        // A timed-out end does not extend.
        let old = alert(0, Some(600), 10, true);
        assert_eq!(old.merge(&new, t(100)).ends_at, Some(t(300)));
        // A newer resolution wins over an older longer firing end.
        let resolving = alert(0, Some(50), 20, false);
        let m = alert(0, Some(600), 10, false).merge(&resolving, t(100));
        assert_eq!(m.ends_at, Some(t(50)));
    }

    #[test]
    fn resolved_is_end_not_after_now() {
        let a = alert(0, Some(100), 0, false);
        assert!(!a.resolved_at(t(99)));
        assert!(a.resolved_at(t(100)));
        assert_eq!(
            a.status_at(t(100) + TimeDelta::seconds(1)),
            AlertStatus::Resolved
        );
    }

    #[test]
    fn order_by_job_then_instance_then_labels() {
        let ls = |p: &[(&str, &str)]| -> LabelSet {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            alert_order(&ls(&[("job", "a")]), &ls(&[("job", "b")])),
            Ordering::Less
        );
        assert_eq!(
            alert_order(&ls(&[("job", "a")]), &ls(&[("x", "b")])),
            Ordering::Less
        );
        assert_eq!(
            alert_order(
                &ls(&[("job", "a"), ("instance", "2")]),
                &ls(&[("job", "a"), ("instance", "10")])
            ),
            Ordering::Greater
        );
    }
}
