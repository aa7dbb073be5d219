//! `webhook` notifier: POSTs the notification as Alertmanager's webhook
//! JSON (version 4) to a URL, like Alertmanager's `webhook_configs`.
//!
//! Configuration (Alertmanager's field names):
//!
//! ```json
//! {
//!   "url": "https://hooks.example.com/alerts",
//!   "max_alerts": 0,
//!   "http_config": {
//!     "bearer_token": "…",
//!     "basic_auth": {"username": "…", "password": "…"},
//!     "authorization": {"type": "Bearer", "credentials": "…"},
//!     "follow_redirects": true
//!   },
//!   "send_resolved": true
//! }
//! ```
//!
//! - `url` (required): `http://` or `https://`.
//! - `max_alerts`: send at most this many alerts, counting the rest in
//!   `truncatedAlerts`; 0 sends all.
//! - `http_config`: at most one of `bearer_token`, `basic_auth`,
//!   `authorization`; redirects are followed (up to 10) unless
//!   `follow_redirects` is false.
//! - `send_resolved` is applied by the host (whether resolved notifications
//!   reach the plugin at all); the plugin accepts and ignores it.
//!
//! The body is exactly Alertmanager's: `version`, `groupKey`,
//! `truncatedAlerts`, `receiver`, `status`, `alerts`, `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `externalURL`, with
//! `Content-Type: application/json`.
//!
//! Outcome, by Alertmanager's rules: a 2xx answer is a delivery; a 5xx or
//! 429 answer, a timeout or a connection failure is a transient error
//! (retried); any other answer is a permanent error (Alertmanager's webhook
//! does not retry 429; lookout does, as its remote write does). The error carries the status and
//! the start of the response body; never the URL, which may hold a secret.
//!
//! Capabilities: none asked for at install. The host grants a receiver the
//! host of its configured `url`; `lookout notify` takes `--grant-http
//! host:port`.

use std::time::Duration;

use lookout_plugin_sdk::{Delivery, Notification, Notifier, PluginError, PluginInfo, http};
use serde::Deserialize;

/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    max_alerts: u32,
    #[serde(default)]
    http_config: http::HttpClientConfig,
    /// Applied by the host.
    #[serde(default)]
    #[allow(dead_code)]
    send_resolved: Option<bool>,
}

struct Webhook;

impl Notifier for Webhook {
    type Config = Config;

    fn describe() -> PluginInfo {
        lookout_plugin_sdk::plugin_info!("webhook")
            .description(
                "POSTs notifications as Alertmanager's webhook JSON (version 4) to a URL. \
                 The receiver's URL host is granted by the host, not at install.",
            )
            .config_schema(
                r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "url": { "type": "string", "format": "uri" },
    "max_alerts": { "type": "integer", "minimum": 0, "default": 0 },
    "http_config": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "bearer_token": { "type": "string" },
        "basic_auth": {
          "type": "object",
          "additionalProperties": false,
          "required": ["username"],
          "properties": { "username": { "type": "string" }, "password": { "type": "string" } }
        },
        "authorization": {
          "type": "object",
          "additionalProperties": false,
          "required": ["credentials"],
          "properties": { "type": { "type": "string", "default": "Bearer" }, "credentials": { "type": "string" } }
        },
        "follow_redirects": { "type": "boolean", "default": true }
      }
    },
    "send_resolved": { "type": "boolean", "description": "Applied by the host." }
  }
}"#,
            )
    }

    fn notify(
        notification: Notification,
        config: Config,
        timeout: Duration,
    ) -> Result<Delivery, PluginError> {
        let body = webhook_body(notification, config.max_alerts);
        let response = config.http_config.post_json(
            &config.url,
            body,
            timeout,
            config.http_config.authorization()?,
            "posting to the webhook",
        )?;
        check_status(&response)?;
        Ok(Delivery::new(format!(
            "webhook answered {}",
            response.status
        )))
    }
}

/// The webhook JSON, with at most `max_alerts` alerts (0: all) and the
/// rest counted in `truncatedAlerts`.
fn webhook_body(mut notification: Notification, max_alerts: u32) -> String {
    let max = usize::try_from(max_alerts).unwrap_or(usize::MAX);
    if max > 0 && notification.alerts.len() > max {
        let dropped = notification.alerts.len() - max;
        notification.alerts.truncate(max);
        notification.truncated_alerts = notification
            .truncated_alerts
            .saturating_add(u32::try_from(dropped).unwrap_or(u32::MAX));
    }
    notification.to_webhook_json()
}

/// Alertmanager's retry rule: 2xx delivered, 5xx and 429 (rate limited)
/// retried, anything else final.
fn check_status(response: &http::Response) -> Result<(), PluginError> {
    if response.is_success() {
        return Ok(());
    }
    let mut message = format!("unexpected status code {}", response.status);
    let body = response.text();
    let body = body.trim();
    if !body.is_empty() {
        message.push_str(": ");
        message.extend(body.chars().take(ERROR_BODY_CHARS));
    }
    if response.status / 100 == 5 || response.status == 429 {
        Err(PluginError::transient(message))
    } else {
        Err(PluginError::permanent(message))
    }
}

lookout_plugin_sdk::export_notifier!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::Alert;

    fn alert(name: &str) -> Alert {
        Alert {
            status: "firing".into(),
            labels: vec![("alertname".into(), name.into())],
            annotations: vec![],
            starts_at: "2024-01-01T00:00:00Z".into(),
            ends_at: "0001-01-01T00:00:00Z".into(),
            generator_url: String::new(),
            fingerprint: name.into(),
        }
    }

    fn notification(alerts: usize) -> Notification {
        Notification {
            receiver: "r".into(),
            status: "firing".into(),
            alerts: (0..alerts).map(|i| alert(&format!("a{i}"))).collect(),
            group_labels: vec![],
            common_labels: vec![],
            common_annotations: vec![],
            external_url: "http://lookout".into(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn max_alerts_truncates_and_counts() {
        let json: serde_json::Value =
            serde_json::from_str(&webhook_body(notification(5), 2)).unwrap();
        assert_eq!(json["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(json["truncatedAlerts"], 3);
        let json: serde_json::Value =
            serde_json::from_str(&webhook_body(notification(5), 0)).unwrap();
        assert_eq!(json["alerts"].as_array().unwrap().len(), 5);
        assert_eq!(json["truncatedAlerts"], 0);
    }

    #[test]
    fn statuses_follow_alertmanagers_retry_rules() {
        let response = |status| http::Response {
            status,
            body: b"nope\n".to_vec(),
            ..Default::default()
        };
        assert!(check_status(&response(204)).is_ok());
        assert_eq!(
            check_status(&response(503)),
            Err(PluginError::Transient(
                "unexpected status code 503: nope".into()
            ))
        );
        assert!(matches!(
            check_status(&response(429)),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            check_status(&response(404)),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn config_reads_http_config() {
        let config: Config = lookout_plugin_sdk::parse_config(
            r#"{"url": "http://x", "http_config": {"basic_auth": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        assert_eq!(
            config.http_config.authorization().unwrap().as_deref(),
            Some("Basic dTpw")
        );
        assert!(
            lookout_plugin_sdk::parse_config::<Config>(r#"{"url": "http://x", "urls": 1}"#)
                .is_err()
        );
    }
}
