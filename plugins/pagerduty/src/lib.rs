//! `pagerduty` notifier: sends an event to PagerDuty, like Alertmanager's
//! `pagerduty_configs`. A `routing_key` selects the Events API v2, a
//! `service_key` the (older) generic Events API v1.
//!
//! Configuration (Alertmanager's field names; every text is a template):
//!
//! ```json
//! {
//!   "routing_key": "R0123456789ABCDEF0123456789ABCDEF",
//!   "url": "https://events.pagerduty.com/v2/enqueue",
//!   "severity": "critical",
//!   "description": "{{ .CommonAnnotations.summary }}",
//!   "details": {"runbook": "{{ .CommonAnnotations.runbook_url }}"},
//!   "links": [{"href": "https://grafana/d/x", "text": "dashboard"}]
//! }
//! ```
//!
//! - `routing_key` (v2) or `service_key` (v1): exactly one.
//! - `url`: where to POST; default `https://events.pagerduty.com/v2/enqueue`
//!   (v2) or `https://events.pagerduty.com/generic/2010-04-15/create_event.json`
//!   (v1).
//! - `client`, `client_url` (default `lookout` and the external URL's alert
//!   view), `description` (default: Alertmanager's `__subject`, e.g.
//!   `[FIRING:2] Down (web)`), `details` (merged over the defaults
//!   `firing`, `resolved` — the alerts as JSON — `num_firing`,
//!   `num_resolved`; a string that renders to a JSON number, boolean, list
//!   or object is sent as that value, as Alertmanager does).
//! - v2 only: `severity` (default `error`), `source` (default: the
//!   client), `class`, `component`, `group`, `images` (`src`, `alt`,
//!   `href`), `links` (`href`, `text`).
//! - `http_config` (`bearer_token`, `basic_auth`, `authorization`,
//!   `follow_redirects`); `send_resolved` is applied by the host.
//!
//! The event: `dedup_key` (v2) / `incident_key` (v1) is the SHA-256 of the
//! group key in hex (64 characters, stable for the group, as Alertmanager's
//! `Key.Hash`); `event_action` (v2) / `event_type` (v1) is `resolve` when
//! every alert is resolved, else `trigger`. The summary or description is cut
//! to 1024 characters; an event over 512 kB has its details replaced by a
//! note, as Alertmanager does. The delivery's remote id is the
//! `dedup_key` / `incident_key` PagerDuty answers with.
//!
//! Outcome, by Alertmanager's rules: 5xx is transient, and so is 429 (v2)
//! or 403 (v1), PagerDuty's rate limiting; other non-2xx answers are
//! permanent, with PagerDuty's message and errors.
//!
//! Capabilities: `events.pagerduty.com`. The host also grants a receiver the
//! host of its configured `url`; `lookout notify` takes `--grant-http
//! host:port`.

use std::time::Duration;

use lookout_plugin_sdk::template::{self, TemplateError};
use lookout_plugin_sdk::{Delivery, Notification, Notifier, PluginError, PluginInfo, http};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const V2_URL: &str = "https://events.pagerduty.com/v2/enqueue";
const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

/// PagerDuty's limit on a summary (v2) or description (v1), in characters.
const MAX_SUMMARY_CHARS: usize = 1024;

/// PagerDuty's limit on an event, in bytes.
const MAX_EVENT_BYTES: usize = 512_000;

/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 256;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    routing_key: Option<String>,
    service_key: Option<String>,
    url: Option<String>,
    http_config: http::HttpClientConfig,
    /// Applied by the host.
    #[allow(dead_code)]
    send_resolved: Option<bool>,
    client: Option<String>,
    client_url: Option<String>,
    description: Option<String>,
    details: Map<String, Value>,
    images: Vec<ImageConfig>,
    links: Vec<LinkConfig>,
    source: Option<String>,
    severity: Option<String>,
    class: Option<String>,
    component: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ImageConfig {
    src: String,
    alt: String,
    href: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LinkConfig {
    href: String,
    text: String,
}

/// An Events API v2 event.
#[derive(Serialize, Debug)]
struct EventV2 {
    routing_key: String,
    dedup_key: String,
    event_action: &'static str,
    payload: Payload,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<Image>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

#[derive(Serialize, Debug)]
struct Payload {
    summary: String,
    source: String,
    severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    custom_details: Map<String, Value>,
}

#[derive(Serialize, Debug)]
struct Image {
    src: String,
    alt: String,
    href: String,
}

#[derive(Serialize, Debug)]
struct Link {
    href: String,
    text: String,
}

/// A generic Events API v1 event.
#[derive(Serialize, Debug)]
struct EventV1 {
    service_key: String,
    event_type: &'static str,
    incident_key: String,
    description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    details: Map<String, Value>,
}

/// What PagerDuty answers, both versions.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    message: String,
    errors: Vec<String>,
    dedup_key: String,
    incident_key: String,
}

/// The stable key of a group: SHA-256 of the group key, in hex
/// (Alertmanager's `notify.Key.Hash`), 64 characters.
fn group_hash(group_key: &str) -> String {
    Sha256::digest(group_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `resolve` once every alert is resolved, else `trigger`.
fn action(n: &Notification) -> &'static str {
    let resolved = if n.alerts.is_empty() {
        n.status == "resolved"
    } else {
        n.alerts.iter().all(|a| a.status == "resolved")
    };
    if resolved { "resolve" } else { "trigger" }
}

fn render_opt(n: &Notification, configured: &Option<String>) -> Result<String, TemplateError> {
    configured
        .as_deref()
        .map(|t| template::render(t, n))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn truncate(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// The details: the configured ones rendered (strings that render to JSON
/// structures become them), over Alertmanager's defaults.
fn details(
    n: &Notification,
    configured: &Map<String, Value>,
) -> Result<Map<String, Value>, TemplateError> {
    let alerts = |status: &str| {
        Value::Array(
            n.alerts
                .iter()
                .filter(|a| a.status == status)
                .map(|a| serde_json::to_value(a).expect("an alert always serialises"))
                .collect(),
        )
    };
    let count = |status: &str| Value::from(n.alerts.iter().filter(|a| a.status == status).count());
    let mut out = Map::new();
    for (key, value) in configured {
        out.insert(key.clone(), render_value(n, value)?);
    }
    for (key, value) in [
        ("firing", alerts("firing")),
        ("resolved", alerts("resolved")),
        ("num_firing", count("firing")),
        ("num_resolved", count("resolved")),
    ] {
        out.entry(key).or_insert(value);
    }
    Ok(out)
}

fn render_value(n: &Notification, value: &Value) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(t) => {
            let text = template::render(t, n)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::String(_)) | Err(_) => Value::String(text),
                Ok(structured) => structured,
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_value(n, item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(n, v)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

const DETAILS_REMOVED: &str =
    "Custom details have been removed because the original event exceeds the maximum size of 512kB";

fn event_v2(n: &Notification, c: &Config, routing_key: &str) -> Result<String, PluginError> {
    let routing_key = template::render(routing_key, n)?;
    if routing_key.is_empty() {
        return Err(PluginError::config("routing_key is empty"));
    }
    let client = template::render_or_default(c.client.as_deref(), "pagerduty.default.client", n)?;
    let source = match &c.source {
        Some(source) => template::render(source, n)?,
        None => client.clone(),
    };
    let mut event = EventV2 {
        routing_key,
        dedup_key: group_hash(&n.group_key),
        event_action: action(n),
        payload: Payload {
            summary: truncate(
                template::render_or_default(
                    c.description.as_deref(),
                    "pagerduty.default.description",
                    n,
                )?,
                MAX_SUMMARY_CHARS,
            ),
            source,
            severity: match &c.severity {
                Some(severity) => template::render(severity, n)?,
                None => "error".to_owned(),
            },
            class: render_opt(n, &c.class)?,
            component: render_opt(n, &c.component)?,
            group: render_opt(n, &c.group)?,
            custom_details: details(n, &c.details)?,
        },
        client,
        client_url: template::render_or_default(
            c.client_url.as_deref(),
            "pagerduty.default.clientURL",
            n,
        )?,
        images: Vec::new(),
        links: Vec::new(),
    };
    for image in &c.images {
        let image = Image {
            src: template::render(&image.src, n)?,
            alt: template::render(&image.alt, n)?,
            href: template::render(&image.href, n)?,
        };
        if !image.src.is_empty() {
            event.images.push(image);
        }
    }
    for link in &c.links {
        let link = Link {
            href: template::render(&link.href, n)?,
            text: template::render(&link.text, n)?,
        };
        if !link.href.is_empty() {
            event.links.push(link);
        }
    }
    let mut body = serde_json::to_string(&event).expect("an event always serialises");
    if body.len() > MAX_EVENT_BYTES {
        event.payload.custom_details =
            Map::from_iter([("error".to_owned(), DETAILS_REMOVED.into())]);
        body = serde_json::to_string(&event).expect("an event always serialises");
    }
    Ok(body)
}

fn event_v1(n: &Notification, c: &Config, service_key: &str) -> Result<String, PluginError> {
    let service_key = template::render(service_key, n)?;
    if service_key.is_empty() {
        return Err(PluginError::config("service_key is empty"));
    }
    let event_type = action(n);
    let trigger = event_type == "trigger";
    let mut event = EventV1 {
        service_key,
        event_type,
        incident_key: group_hash(&n.group_key),
        description: truncate(
            template::render_or_default(
                c.description.as_deref(),
                "pagerduty.default.description",
                n,
            )?,
            MAX_SUMMARY_CHARS,
        ),
        // Alertmanager sends the client only with a trigger.
        client: if trigger {
            template::render_or_default(c.client.as_deref(), "pagerduty.default.client", n)?
        } else {
            String::new()
        },
        client_url: if trigger {
            template::render_or_default(c.client_url.as_deref(), "pagerduty.default.clientURL", n)?
        } else {
            String::new()
        },
        details: details(n, &c.details)?,
    };
    let mut body = serde_json::to_string(&event).expect("an event always serialises");
    if body.len() > MAX_EVENT_BYTES {
        event.details = Map::from_iter([("error".to_owned(), DETAILS_REMOVED.into())]);
        body = serde_json::to_string(&event).expect("an event always serialises");
    }
    Ok(body)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    V1,
    V2,
}

/// Alertmanager's retry rules for PagerDuty: 5xx and the API's rate-limit
/// status (429 for v2, 403 for v1) are retried, other failures are final.
fn check(response: &http::Response, api: Api) -> Result<Answer, PluginError> {
    let answer: Answer = serde_json::from_slice(&response.body).unwrap_or_default();
    if response.is_success() {
        return Ok(answer);
    }
    let mut message = format!("unexpected status code {}", response.status);
    if response.status == 400 && (!answer.message.is_empty() || !answer.errors.is_empty()) {
        message = format!("{message}: {}: {}", answer.message, answer.errors.join(","));
    } else {
        let body = response.text();
        let body = body.trim();
        if !body.is_empty() {
            message.push_str(": ");
            message.extend(body.chars().take(ERROR_BODY_CHARS));
        }
    }
    let rate_limited = match api {
        Api::V2 => response.status == 429,
        Api::V1 => response.status == 403,
    };
    if response.status / 100 == 5 || rate_limited {
        Err(PluginError::transient(message))
    } else {
        Err(PluginError::permanent(message))
    }
}

struct PagerDuty;

impl Notifier for PagerDuty {
    type Config = Config;

    fn describe() -> PluginInfo {
        lookout_plugin_sdk::plugin_info!("pagerduty")
            .description(
                "Sends notifications to PagerDuty: Events API v2 with a routing_key, the generic \
                 Events API v1 with a service_key; dedup key is the SHA-256 of the group key.",
            )
            .http(["events.pagerduty.com"])
    }

    fn notify(
        notification: Notification,
        config: Config,
        timeout: Duration,
    ) -> Result<Delivery, PluginError> {
        let (api, body) = match (&config.routing_key, &config.service_key) {
            (Some(key), None) => (Api::V2, event_v2(&notification, &config, key)?),
            (None, Some(key)) => (Api::V1, event_v1(&notification, &config, key)?),
            (None, None) => {
                return Err(PluginError::config(
                    "missing routing_key (Events API v2) or service_key (Events API v1)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "set one of routing_key (Events API v2) and service_key (v1), not both",
                ));
            }
        };
        let url = config.url.clone().unwrap_or_else(|| {
            match api {
                Api::V2 => V2_URL,
                Api::V1 => V1_URL,
            }
            .to_owned()
        });
        let response = config.http_config.post_json(
            &url,
            body,
            timeout,
            config.http_config.authorization()?,
            "posting to PagerDuty",
        )?;
        let answer = check(&response, api)?;
        let ours = group_hash(&notification.group_key);
        let remote = match api {
            Api::V2 => answer.dedup_key,
            Api::V1 => answer.incident_key,
        };
        let event = action(&notification);
        let version = match api {
            Api::V2 => "v2",
            Api::V1 => "v1",
        };
        Ok(Delivery::new(format!(
            "PagerDuty accepted the {event} event (Events API {version})"
        ))
        .remote_id(if remote.is_empty() { ours } else { remote }))
    }
}

lookout_plugin_sdk::export_notifier!(PagerDuty);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::{Alert, parse_config};
    use serde_json::json;

    fn alert(status: &str, instance: &str) -> Alert {
        Alert {
            status: status.into(),
            labels: vec![
                ("alertname".into(), "Down".into()),
                ("instance".into(), instance.into()),
            ],
            annotations: vec![],
            starts_at: "2024-01-01T00:00:00Z".into(),
            ends_at: "0001-01-01T00:00:00Z".into(),
            generator_url: "http://prom/x".into(),
            fingerprint: instance.into(),
        }
    }

    fn notification(statuses: &[&str]) -> Notification {
        Notification {
            receiver: "pager".into(),
            status: if statuses.contains(&"firing") {
                "firing"
            } else {
                "resolved"
            }
            .into(),
            alerts: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| alert(s, &format!("h{i}")))
                .collect(),
            group_labels: vec![("alertname".into(), "Down".into())],
            common_labels: vec![("alertname".into(), "Down".into())],
            common_annotations: vec![],
            external_url: "http://lookout".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn dedup_key_is_the_sha256_of_the_group_key() {
        // sha256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            group_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(group_hash("{}:{alertname=\"Down\"}").len(), 64);
    }

    #[test]
    fn v2_event_has_alertmanagers_defaults() {
        let n = notification(&["firing", "resolved"]);
        let config: Config = parse_config(r#"{"routing_key": "rk"}"#).unwrap();
        let event: Value = serde_json::from_str(&event_v2(&n, &config, "rk").unwrap()).unwrap();
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], group_hash(&n.group_key));
        assert_eq!(event["client"], "lookout");
        assert_eq!(
            event["client_url"],
            "http://lookout/#/alerts?receiver=pager"
        );
        assert_eq!(event["payload"]["summary"], "[FIRING:1] Down ");
        assert_eq!(event["payload"]["source"], "lookout");
        assert_eq!(event["payload"]["severity"], "error");
        assert_eq!(event["payload"]["custom_details"]["num_firing"], 1);
        assert_eq!(event["payload"]["custom_details"]["num_resolved"], 1);
        assert_eq!(
            event["payload"]["custom_details"]["firing"][0]["labels"]["instance"],
            "h0"
        );
        assert!(event.get("links").is_none());
        let n = notification(&["resolved"]);
        let event: Value = serde_json::from_str(&event_v2(&n, &config, "rk").unwrap()).unwrap();
        assert_eq!(event["event_action"], "resolve");
    }

    #[test]
    fn configured_details_render_to_structures() {
        let n = notification(&["firing"]);
        let config: Config = parse_config(
            r#"{"routing_key": "rk", "details": {"count": "{{ len .Alerts }}",
                "who": "{{ .Receiver }}", "nested": {"a": ["{{ .Status }}"]}, "firing": "custom"}}"#,
        )
        .unwrap();
        let details = details(&n, &config.details).unwrap();
        assert_eq!(details["count"], 1);
        assert_eq!(details["who"], "pager");
        assert_eq!(details["nested"], json!({"a": ["firing"]}));
        assert_eq!(details["firing"], "custom");
        assert_eq!(details["num_firing"], 1);
    }

    #[test]
    fn oversized_events_lose_their_details() {
        let mut n = notification(&["firing"]);
        n.alerts[0].annotations = vec![("big".into(), "x".repeat(MAX_EVENT_BYTES))];
        let config: Config = parse_config(r#"{"service_key": "sk"}"#).unwrap();
        let event: Value = serde_json::from_str(&event_v1(&n, &config, "sk").unwrap()).unwrap();
        assert_eq!(event["details"], json!({"error": DETAILS_REMOVED}));
        assert_eq!(event["event_type"], "trigger");
        assert_eq!(event["incident_key"], group_hash(&n.group_key));
    }

    #[test]
    fn rate_limits_are_transient_per_api() {
        let response = |status, body: &str| http::Response {
            status,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        assert!(matches!(
            check(&response(429, ""), Api::V2),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            check(&response(403, ""), Api::V2),
            Err(PluginError::Permanent(_))
        ));
        assert!(matches!(
            check(&response(403, ""), Api::V1),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            check(&response(502, ""), Api::V1),
            Err(PluginError::Transient(_))
        ));
        assert_eq!(
            check(
                &response(400, r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#),
                Api::V2
            )
            .err(),
            Some(PluginError::Permanent(
                "unexpected status code 400: Event object is invalid: Length of 'routing_key' is incorrect".into()
            ))
        );
        let answer = check(
            &response(202, r#"{"status":"success","dedup_key":"k"}"#),
            Api::V2,
        )
        .unwrap();
        assert_eq!(answer.dedup_key, "k");
    }
}
