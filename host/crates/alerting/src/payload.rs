//! What goes over the wire: the webhook v4 body, the template data every
//! integration renders from, and the texts of Alertmanager's
//! `default.tmpl` that the default Slack, PagerDuty and email fields use.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::AlertStatus;
use crate::dispatch::{Notification, NotifiedAlert};
use crate::labels::LabelSet;

/// One alert in template data and webhook bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateAlert {
    /// `firing` or `resolved`.
    pub status: AlertStatus,
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// Start.
    #[serde(with = "crate::timeutil::go_time")]
    pub starts_at: DateTime<Utc>,
    /// End; Go's zero time for a firing alert.
    #[serde(with = "crate::timeutil::go_time::opt")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// 16 hex digits.
    pub fingerprint: String,
}

impl From<&NotifiedAlert> for TemplateAlert {
    fn from(a: &NotifiedAlert) -> Self {
        TemplateAlert {
            status: a.status,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.clone(),
            fingerprint: a.fingerprint.to_string(),
        }
    }
}

/// Alertmanager's template `Data`: what every notification renders from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateData {
    /// The receiver name, regex-quoted as Alertmanager does
    /// (`regexp.QuoteMeta`).
    pub receiver: String,
    /// `firing` if any alert fires.
    pub status: AlertStatus,
    /// The alerts.
    pub alerts: Vec<TemplateAlert>,
    /// The group's labels.
    pub group_labels: LabelSet,
    /// Labels all alerts share.
    pub common_labels: LabelSet,
    /// Annotations all alerts share.
    pub common_annotations: LabelSet,
    /// Where lookout's UI is.
    #[serde(rename = "externalURL")]
    pub external_url: String,
}

impl TemplateData {
    /// Template data of a notification, over at most `max_alerts` of its
    /// alerts (0: all), as the webhook integration truncates.
    pub fn new(n: &Notification, external_url: &str, max_alerts: usize) -> Self {
        let alerts: &[NotifiedAlert] = if max_alerts > 0 && n.alerts.len() > max_alerts {
            &n.alerts[..max_alerts]
        } else {
            &n.alerts
        };
        let mut common_labels = alerts.first().map(|a| a.labels.clone()).unwrap_or_default();
        let mut common_annotations = alerts
            .first()
            .map(|a| a.annotations.clone())
            .unwrap_or_default();
        for a in alerts.iter().skip(1) {
            common_labels.retain(|k, v| a.labels.get(k) == Some(v));
            common_annotations.retain(|k, v| a.annotations.get(k) == Some(v));
        }
        let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        TemplateData {
            receiver: quote_meta(&n.receiver),
            status,
            alerts: alerts.iter().map(TemplateAlert::from).collect(),
            group_labels: n.group_labels.clone(),
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
        }
    }

    /// Number of firing alerts.
    pub fn firing_count(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count()
    }

    /// `__subject`: `[FIRING:2] HighLatency api (critical)`.
    pub fn subject(&self) -> String {
        let mut out = format!("[{}", self.status.as_str().to_uppercase());
        if self.status == AlertStatus::Firing {
            out.push_str(&format!(":{}", self.firing_count()));
        }
        out.push_str("] ");
        out.push_str(&sorted_values(&self.group_labels).join(" "));
        out.push(' ');
        if self.common_labels.len() > self.group_labels.len() {
            let rest: LabelSet = self
                .common_labels
                .iter()
                .filter(|(k, _)| !self.group_labels.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.push_str(&format!("({})", sorted_values(&rest).join(" ")));
        }
        out
    }

    /// `__alertmanagerURL`: `<externalURL>/#/alerts?receiver=<receiver>`.
    pub fn alertmanager_url(&self) -> String {
        format!(
            "{}/#/alerts?receiver={}",
            self.external_url,
            query_escape(&self.receiver)
        )
    }

    /// `slack.default.title` (= `__subject`).
    pub fn slack_title(&self) -> String {
        self.subject()
    }

    /// `slack.default.titlelink`.
    pub fn slack_title_link(&self) -> String {
        self.alertmanager_url()
    }

    /// `slack.default.username`.
    pub fn slack_username(&self) -> &'static str {
        "Alertmanager"
    }

    /// `slack.default.color`: `danger` while firing, else `good`.
    pub fn slack_color(&self) -> &'static str {
        if self.status == AlertStatus::Firing {
            "danger"
        } else {
            "good"
        }
    }

    /// `slack.default.fallback`: title ` | ` title link.
    pub fn slack_fallback(&self) -> String {
        format!("{} | {}", self.slack_title(), self.slack_title_link())
    }

    /// `slack.default.text` (and pretext, footer, icon, callback id): empty.
    pub fn slack_text(&self) -> &'static str {
        ""
    }

    /// `pagerduty.default.description` (= `__subject`).
    pub fn pagerduty_description(&self) -> String {
        self.subject()
    }

    /// `pagerduty.default.client`.
    pub fn pagerduty_client(&self) -> &'static str {
        "Alertmanager"
    }

    /// `pagerduty.default.clientURL`.
    pub fn pagerduty_client_url(&self) -> String {
        self.alertmanager_url()
    }

    /// `email.default.subject` (= `__subject`).
    pub fn email_subject(&self) -> String {
        self.subject()
    }

    /// `__text_alert_list` over these alerts (PagerDuty instances, email
    /// text).
    pub fn text_alert_list(alerts: &[TemplateAlert]) -> String {
        let mut out = String::new();
        for a in alerts {
            out.push_str("Labels:\n");
            for (k, v) in sorted_pairs(&a.labels) {
                out.push_str(&format!(" - {k} = {v}\n"));
            }
            out.push_str("Annotations:\n");
            for (k, v) in sorted_pairs(&a.annotations) {
                out.push_str(&format!(" - {k} = {v}\n"));
            }
            out.push_str(&format!("Source: {}\n", a.generator_url));
        }
        out
    }
}

/// `KV.SortedPairs`: `alertname` first, then by name.
pub fn sorted_pairs(kv: &LabelSet) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.sort_by(|a, b| match (a.0 == "alertname", b.0 == "alertname") {
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.0.cmp(b.0),
    });
    pairs
}

fn sorted_values(kv: &LabelSet) -> Vec<&str> {
    sorted_pairs(kv).into_iter().map(|(_, v)| v).collect()
}

/// Go's `regexp.QuoteMeta` (narrower than `regex::escape`).
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The webhook body, version 4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// Regex-quoted receiver name.
    pub receiver: String,
    /// `firing` or `resolved`.
    pub status: AlertStatus,
    /// The alerts (at most `max_alerts`).
    pub alerts: Vec<TemplateAlert>,
    /// Group labels.
    pub group_labels: LabelSet,
    /// Common labels.
    pub common_labels: LabelSet,
    /// Common annotations.
    pub common_annotations: LabelSet,
    /// lookout's external URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always `"4"`.
    pub version: String,
    /// The group key.
    pub group_key: String,
    /// Alerts left out by `max_alerts`.
    pub truncated_alerts: u64,
}

impl WebhookMessage {
    /// The body Alertmanager's webhook integration posts for `n`.
    pub fn new(n: &Notification, external_url: &str, max_alerts: u64) -> Self {
        let max = usize::try_from(max_alerts).unwrap_or(usize::MAX);
        let data = TemplateData::new(n, external_url, max);
        let truncated = if max > 0 && n.alerts.len() > max {
            (n.alerts.len() - max) as u64
        } else {
            0
        };
        WebhookMessage {
            receiver: data.receiver,
            status: data.status,
            alerts: data.alerts,
            group_labels: data.group_labels,
            common_labels: data.common_labels,
            common_annotations: data.common_annotations,
            external_url: data.external_url,
            version: "4".into(),
            group_key: n.group_key.clone(),
            truncated_alerts: truncated,
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("webhook message serialises")
    }
}

/// PagerDuty's `dedup_key` for a notification: SHA-256 of the group key in
/// hex (64 characters, within PagerDuty's 255).
pub fn pagerduty_dedup_key(n: &Notification) -> &str {
    &n.dedup_key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IntegrationKind, IntegrationRef};
    use crate::dispatch::{NotifyReason, group_key_hash};
    use crate::labels::Fingerprint;
    use crate::route::RouteId;
    use chrono::TimeZone;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn notified(labels: LabelSet, annotations: LabelSet, resolved: bool) -> NotifiedAlert {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        NotifiedAlert {
            status: if resolved {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            },
            fingerprint: Fingerprint::of(&labels),
            labels,
            annotations,
            starts_at: t,
            ends_at: resolved.then(|| t + chrono::TimeDelta::minutes(5)),
            generator_url: "http://prom/graph".into(),
        }
    }

    fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
        let key = r#"{}/{severity="critical"}:{alertname="HighLatency"}"#.to_string();
        Notification {
            id: "x".into(),
            receiver: "team.pager".into(),
            integration: IntegrationRef {
                kind: IntegrationKind::Webhook,
                index: 0,
            },
            route: RouteId(1),
            route_id: r#"{}/{severity="critical"}/0"#.into(),
            dedup_key: group_key_hash(&key),
            group_key: key,
            group_labels: ls(&[("alertname", "HighLatency")]),
            alerts,
            reason: NotifyReason::FirstNotification,
            flushed_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 30).unwrap(),
            retry_deadline: Utc.with_ymd_and_hms(2024, 5, 1, 12, 5, 30).unwrap(),
        }
    }

    #[test]
    fn webhook_v4_body() {
        let n = notification(vec![
            notified(
                ls(&[
                    ("alertname", "HighLatency"),
                    ("instance", "a"),
                    ("severity", "critical"),
                ]),
                ls(&[("summary", "slow")]),
                false,
            ),
            notified(
                ls(&[
                    ("alertname", "HighLatency"),
                    ("instance", "b"),
                    ("severity", "critical"),
                ]),
                ls(&[("summary", "slow")]),
                true,
            ),
        ]);
        let body: serde_json::Value =
            serde_json::from_str(&WebhookMessage::new(&n, "http://lookout:9093", 0).to_json())
                .unwrap();
        assert_eq!(body["version"], "4");
        assert_eq!(body["receiver"], r"team\.pager");
        assert_eq!(body["status"], "firing");
        assert_eq!(
            body["groupKey"],
            r#"{}/{severity="critical"}:{alertname="HighLatency"}"#
        );
        assert_eq!(body["truncatedAlerts"], 0);
        assert_eq!(body["externalURL"], "http://lookout:9093");
        assert_eq!(
            body["groupLabels"],
            serde_json::json!({"alertname": "HighLatency"})
        );
        assert_eq!(
            body["commonLabels"],
            serde_json::json!({"alertname": "HighLatency", "severity": "critical"})
        );
        assert_eq!(
            body["commonAnnotations"],
            serde_json::json!({"summary": "slow"})
        );
        let a0 = &body["alerts"][0];
        assert_eq!(a0["status"], "firing");
        assert_eq!(a0["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(a0["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(a0["generatorURL"], "http://prom/graph");
        assert_eq!(a0["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(body["alerts"][1]["endsAt"], "2024-05-01T12:05:00Z");

        let truncated = WebhookMessage::new(&n, "", 1);
        assert_eq!(truncated.alerts.len(), 1);
        assert_eq!(truncated.truncated_alerts, 1);
        assert_eq!(
            truncated.common_labels.get("instance").map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn default_texts() {
        let n = notification(vec![
            notified(
                ls(&[
                    ("alertname", "HighLatency"),
                    ("instance", "a"),
                    ("severity", "critical"),
                ]),
                LabelSet::new(),
                false,
            ),
            notified(
                ls(&[
                    ("alertname", "HighLatency"),
                    ("instance", "b"),
                    ("severity", "critical"),
                ]),
                LabelSet::new(),
                false,
            ),
        ]);
        let d = TemplateData::new(&n, "http://am", 0);
        assert_eq!(d.subject(), "[FIRING:2] HighLatency (critical)");
        assert_eq!(d.slack_color(), "danger");
        assert_eq!(
            d.alertmanager_url(),
            r"http://am/#/alerts?receiver=team%5C.pager"
        );
        assert_eq!(
            d.slack_fallback(),
            r"[FIRING:2] HighLatency (critical) | http://am/#/alerts?receiver=team%5C.pager"
        );
        let r = notification(vec![notified(
            ls(&[("alertname", "HighLatency")]),
            LabelSet::new(),
            true,
        )]);
        let d = TemplateData::new(&r, "http://am", 0);
        assert_eq!(d.subject(), "[RESOLVED] HighLatency ");
        assert_eq!(d.slack_color(), "good");
        assert_eq!(pagerduty_dedup_key(&r).len(), 64);
    }
}
