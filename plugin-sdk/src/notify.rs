//! Alert notifications, for notifier plugins.
//!
//! [`Notification`] carries the fields of Alertmanager's webhook payload
//! (version 4) and serialises to exactly that JSON, so a webhook notifier can
//! forward it as is with [`Notification::to_webhook_json`].

use serde::{Serialize, Serializer};

use crate::bindings::probe::lookout::plugin::types as wit;

/// Label or annotation pairs; serialised as a JSON object.
pub type Labels = Vec<(String, String)>;

fn as_map<S: Serializer>(labels: &Labels, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(labels.iter().map(|(k, v)| (k, v)))
}

/// One alert inside a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// "firing" or "resolved".
    pub status: String,
    #[serde(serialize_with = "as_map")]
    pub labels: Labels,
    #[serde(serialize_with = "as_map")]
    pub annotations: Labels,
    /// RFC 3339 time.
    pub starts_at: String,
    /// RFC 3339 time.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// A group of alerts for one receiver, as Alertmanager's webhook v4 sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub receiver: String,
    /// "firing" when any alert fires, else "resolved".
    pub status: String,
    pub alerts: Vec<Alert>,
    #[serde(serialize_with = "as_map")]
    pub group_labels: Labels,
    #[serde(serialize_with = "as_map")]
    pub common_labels: Labels,
    #[serde(serialize_with = "as_map")]
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub group_key: String,
    pub truncated_alerts: u32,
}

impl Notification {
    /// The notification as Alertmanager's webhook JSON (with `"version": "4"`).
    pub fn to_webhook_json(&self) -> String {
        #[derive(Serialize)]
        struct Webhook<'a> {
            version: &'static str,
            #[serde(flatten)]
            notification: &'a Notification,
        }
        serde_json::to_string(&Webhook {
            version: "4",
            notification: self,
        })
        .expect("a notification always serialises")
    }
}

/// What a notifier reports after a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Identifier the receiving service assigned, if any.
    pub remote_id: Option<String>,
    pub message: String,
}

impl Delivery {
    /// A delivery with a message and no remote identifier.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            remote_id: None,
            message: message.into(),
        }
    }

    /// Records the identifier the receiving service assigned.
    pub fn remote_id(mut self, id: impl Into<String>) -> Self {
        self.remote_id = Some(id.into());
        self
    }
}

impl From<wit::Alert> for Alert {
    fn from(alert: wit::Alert) -> Self {
        Self {
            status: alert.status,
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at: alert.starts_at,
            ends_at: alert.ends_at,
            generator_url: alert.generator_url,
            fingerprint: alert.fingerprint,
        }
    }
}

impl From<wit::Notification> for Notification {
    fn from(n: wit::Notification) -> Self {
        Self {
            receiver: n.receiver,
            status: n.status,
            alerts: n.alerts.into_iter().map(Into::into).collect(),
            group_labels: n.group_labels,
            common_labels: n.common_labels,
            common_annotations: n.common_annotations,
            external_url: n.external_url,
            group_key: n.group_key,
            truncated_alerts: n.truncated_alerts,
        }
    }
}

impl From<Delivery> for wit::Delivery {
    fn from(delivery: Delivery) -> Self {
        Self {
            remote_id: delivery.remote_id,
            message: delivery.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn webhook_json_has_alertmanager_field_names() {
        let notification = Notification {
            receiver: "ops".into(),
            status: "firing".into(),
            alerts: vec![Alert {
                status: "firing".into(),
                labels: vec![pair("alertname", "Down")],
                annotations: vec![],
                starts_at: "2024-01-01T00:00:00Z".into(),
                ends_at: "0001-01-01T00:00:00Z".into(),
                generator_url: "http://lookout/x".into(),
                fingerprint: "abc".into(),
            }],
            group_labels: vec![pair("alertname", "Down")],
            common_labels: vec![],
            common_annotations: vec![],
            external_url: "http://lookout".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        };
        let json: serde_json::Value =
            serde_json::from_str(&notification.to_webhook_json()).unwrap();
        assert_eq!(json["version"], "4");
        assert_eq!(json["externalURL"], "http://lookout");
        assert_eq!(json["groupLabels"]["alertname"], "Down");
        assert_eq!(json["truncatedAlerts"], 0);
        assert_eq!(json["alerts"][0]["generatorURL"], "http://lookout/x");
        assert_eq!(json["alerts"][0]["startsAt"], "2024-01-01T00:00:00Z");
        assert_eq!(json["alerts"][0]["labels"]["alertname"], "Down");
    }
}
