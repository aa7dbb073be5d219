//! `http-json` exporter: numbers from any JSON API become samples, with
//! labels taken from the document, in the manner of Prometheus'
//! json_exporter.
//!
//! Target: an `http://` or `https://` URL answering JSON. Configuration:
//!
//! ```json
//! {
//!   "headers": {"accept": "application/json"},
//!   "metrics": [
//!     {"name": "app_queue_depth", "each": "queues", "path": "depth",
//!      "labels": {"queue": "{name}"}},
//!     {"name": "app_uptime_seconds", "path": "status.uptime"},
//!     {"name": "app_info", "value": 1, "labels": {"version": "{build.version}"}}
//!   ]
//! }
//! ```
//!
//! A path is field names and array indices joined by dots (`a.b.0.c`).
//! `each` names an array (or object) of the document: the metric is taken
//! once per element, its `path` and labels read from that element. `path`
//! reads a number, a boolean (1 or 0) or a numeric string; an element where
//! it is missing or null gives no sample. `value` instead of `path` sets a
//! constant (info metrics). A label value is text with `{path}` references
//! (missing ones read as empty); `{}` is the element itself.
//!
//! A non-2xx answer, a body that is not JSON, or no sample at all from a
//! non-empty `metrics` fails the collection.

use std::collections::BTreeMap;
use std::time::Duration;

use lookout_plugin_sdk::{Exporter, PluginError, PluginInfo, Sample, TARGET, http, plugin_info};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    headers: BTreeMap<String, String>,
    metrics: Vec<MetricConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricConfig {
    name: String,
    #[serde(default)]
    each: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

struct HttpJson;

impl Exporter for HttpJson {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("http-json")
            .description(
                "Turns numbers of a JSON API into samples, labels from the document \
                 (Prometheus' json_exporter). Target: the URL.",
            )
            .http([TARGET])
    }

    fn collect(
        target: &str,
        config: Config,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PluginError> {
        for m in &config.metrics {
            check_metric(m)?;
        }
        let mut request = http::Request::get(target)
            .header("accept", "application/json")
            .timeout(timeout);
        for (name, value) in &config.headers {
            request = request.header(name, value);
        }
        let response = request.send()?;
        if !(200..300).contains(&response.status) {
            return Err(PluginError::transient(format!(
                "{target} answered HTTP status {}",
                response.status
            )));
        }
        let document: Value = serde_json::from_slice(&response.body)
            .map_err(|e| PluginError::transient(format!("{target} answered no JSON: {e}")))?;
        let samples = samples(&document, &config.metrics);
        if samples.is_empty() && !config.metrics.is_empty() {
            return Err(PluginError::transient(format!(
                "no configured path matched the JSON of {target}"
            )));
        }
        Ok(samples)
    }
}

fn check_metric(m: &MetricConfig) -> Result<(), PluginError> {
    let valid_name = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    if !valid_name(&m.name) {
        return Err(PluginError::config(format!(
            "metric name {:?} is not a Prometheus metric name",
            m.name
        )));
    }
    if let Some(bad) = m
        .labels
        .keys()
        .find(|l| !valid_name(l) || l.contains(':') || l.starts_with("__"))
    {
        return Err(PluginError::config(format!(
            "metric {}: {bad:?} is not a label name",
            m.name
        )));
    }
    match (&m.path, m.value) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(PluginError::config(format!(
            "metric {}: set one of path and value",
            m.name
        ))),
    }
}

/// The samples `metrics` read from `document`.
fn samples(document: &Value, metrics: &[MetricConfig]) -> Vec<Sample> {
    let mut out = Vec::new();
    for m in metrics {
        let elements: Vec<&Value> = match &m.each {
            None => vec![document],
            Some(each) => match lookup(document, each) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(Value::Object(map)) => map.values().collect(),
                _ => Vec::new(),
            },
        };
        for element in elements {
            let value = match (&m.path, m.value) {
                (Some(path), _) => lookup(element, path).and_then(number),
                (None, value) => value,
            };
            let Some(value) = value else {
                continue;
            };
            let sample = m
                .labels
                .iter()
                .fold(Sample::new(m.name.clone(), value), |s, (k, template)| {
                    s.label(k.clone(), expand(template, element))
                });
            out.push(sample);
        }
    }
    out
}

/// The value at a dotted path (`a.b.0.c`; empty: the value itself).
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, part| match v {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `template` with each `{path}` replaced by the text at that path.
fn expand(template: &str, element: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let path = &rest[open + 1..open + close];
        match lookup(element, path) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

lookout_plugin_sdk::export_exporter!(HttpJson);

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(json: &str) -> MetricConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn paths_elements_and_labels() {
        let doc: Value = serde_json::from_str(
            r#"{"status": {"uptime": 3600.5, "healthy": true, "load": "0.25"},
                "build": {"version": "1.4.2"},
                "queues": [{"name": "mail", "depth": 12}, {"name": "sms", "depth": null},
                           {"name": "push", "depth": 3}],
                "shards": {"a": {"docs": 10}, "b": {"docs": 20}}}"#,
        )
        .unwrap();
        let metrics = [
            metric(r#"{"name": "uptime", "path": "status.uptime"}"#),
            metric(r#"{"name": "healthy", "path": "status.healthy"}"#),
            metric(r#"{"name": "load", "path": "status.load"}"#),
            metric(
                r#"{"name": "queue_depth", "each": "queues", "path": "depth", "labels": {"queue": "q-{name}"}}"#,
            ),
            metric(r#"{"name": "docs", "each": "shards", "path": "docs"}"#),
            metric(
                r#"{"name": "info", "value": 1, "labels": {"version": "{build.version}", "missing": "{nope}"}}"#,
            ),
            metric(r#"{"name": "first_queue", "path": "queues.0.depth"}"#),
        ];
        let got: Vec<String> = samples(&doc, &metrics)
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let text = got.join("\n");
        for expected in [
            "uptime",
            "3600.5",
            "healthy",
            "0.25",
            "q-mail",
            "q-push",
            "1.4.2",
            "first_queue",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(
            !text.contains("q-sms"),
            "a null value gives no sample: {text}"
        );
        assert_eq!(got.len(), 3 + 2 + 2 + 1 + 1);
    }

    #[test]
    fn bad_metrics_are_config_errors() {
        assert!(check_metric(&metric(r#"{"name": "1bad", "path": "a"}"#)).is_err());
        assert!(check_metric(&metric(r#"{"name": "ok", "path": "a", "value": 1}"#)).is_err());
        assert!(check_metric(&metric(r#"{"name": "ok"}"#)).is_err());
        assert!(
            check_metric(&metric(
                r#"{"name": "ok", "path": "a", "labels": {"__x": "y"}}"#
            ))
            .is_err()
        );
        assert!(
            check_metric(&metric(
                r#"{"name": "ok", "path": "a", "labels": {"x": "{y}"}}"#
            ))
            .is_ok()
        );
    }
}
