//! The `data` of Prometheus' `/api/v1/rules` and `/api/v1/alerts`, with
//! Prometheus 2.42's field names and renderings (durations in seconds as
//! numbers, times in RFC 3339, alert values as Go's `%e` strings).

use serde_json::{Map, Value, json};

use crate::alerting::Alert;
use crate::gofmt;
use crate::group::GroupState;
use crate::rulefile::Rule;

/// Which rules `/api/v1/rules?type=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RuleTypeFilter {
    #[default]
    All,
    /// `type=alert`
    Alerting,
    /// `type=record`
    Recording,
}

impl RuleTypeFilter {
    /// Parses the `type` parameter as Prometheus does (case-insensitive;
    /// empty is all); the error is Prometheus' message.
    pub fn parse(param: &str) -> Result<Self, String> {
        match param.to_ascii_lowercase().as_str() {
            "" => Ok(RuleTypeFilter::All),
            "alert" => Ok(RuleTypeFilter::Alerting),
            "record" => Ok(RuleTypeFilter::Recording),
            _ => Err(format!("not supported value {}", gofmt::quote(param))),
        }
    }
}

fn labels_obj(l: &[(String, String)]) -> Value {
    let m: Map<String, Value> = l
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(m)
}

fn map_obj(l: &std::collections::BTreeMap<String, String>) -> Value {
    let m: Map<String, Value> = l
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(m)
}

fn time_json(ms: Option<i64>) -> Value {
    match ms {
        Some(ms) => Value::String(gofmt::rfc3339_ms(ms)),
        None => Value::String("0001-01-01T00:00:00Z".to_string()),
    }
}

/// One alert as the API shows it.
pub fn alert_json(a: &Alert) -> Value {
    let mut o = Map::new();
    o.insert("labels".into(), labels_obj(&a.labels));
    o.insert("annotations".into(), labels_obj(&a.annotations));
    o.insert("state".into(), Value::String(a.state.as_str().into()));
    o.insert("activeAt".into(), time_json(Some(a.active_at_ms)));
    if let Some(k) = a.keep_firing_since_ms {
        o.insert("keepFiringSince".into(), time_json(Some(k)));
    }
    o.insert(
        "value".into(),
        Value::String(gofmt::format_e(a.value, None, false)),
    );
    Value::Object(o)
}

/// `/api/v1/rules`' `data`: `{"groups": [...]}`, groups sorted by file then
/// name as Prometheus lists them.
pub fn rules_json(groups: &[&GroupState], filter: RuleTypeFilter) -> Value {
    let mut sorted: Vec<&&GroupState> = groups.iter().collect();
    sorted.sort_by(|a, b| (a.file(), a.name()).cmp(&(b.file(), b.name())));
    let groups: Vec<Value> = sorted
        .into_iter()
        .map(|g| {
            let rules: Vec<Value> = g
                .rules()
                .filter_map(|r| {
                    let spec = r.spec();
                    let query = canonical_query(spec.expr());
                    let mut o = Map::new();
                    match &spec {
                        Rule::Alerting(a) => {
                            if filter == RuleTypeFilter::Recording {
                                return None;
                            }
                            o.insert(
                                "state".into(),
                                json!(r.state().map(|s| s.as_str()).unwrap_or("inactive")),
                            );
                            o.insert("name".into(), json!(a.name));
                            o.insert("query".into(), json!(query));
                            o.insert("duration".into(), json!(a.for_ms as f64 / 1000.0));
                            o.insert(
                                "keepFiringFor".into(),
                                json!(a.keep_firing_for_ms as f64 / 1000.0),
                            );
                            o.insert("labels".into(), map_obj(&a.labels));
                            o.insert("annotations".into(), map_obj(&a.annotations));
                            o.insert(
                                "alerts".into(),
                                Value::Array(
                                    r.active_alerts().into_iter().map(alert_json).collect(),
                                ),
                            );
                            o.insert("health".into(), json!(r.health().as_str()));
                            if let Some(e) = r.last_error() {
                                o.insert("lastError".into(), json!(e));
                            }
                            o.insert(
                                "evaluationTime".into(),
                                json!(r.evaluation_duration().as_secs_f64()),
                            );
                            o.insert("lastEvaluation".into(), time_json(r.last_evaluation_ms()));
                            o.insert("type".into(), json!("alerting"));
                        }
                        Rule::Recording(rec) => {
                            if filter == RuleTypeFilter::Alerting {
                                return None;
                            }
                            o.insert("name".into(), json!(rec.name));
                            o.insert("query".into(), json!(query));
                            if !rec.labels.is_empty() {
                                o.insert("labels".into(), map_obj(&rec.labels));
                            }
                            o.insert("health".into(), json!(r.health().as_str()));
                            if let Some(e) = r.last_error() {
                                o.insert("lastError".into(), json!(e));
                            }
                            o.insert(
                                "evaluationTime".into(),
                                json!(r.evaluation_duration().as_secs_f64()),
                            );
                            o.insert("lastEvaluation".into(), time_json(r.last_evaluation_ms()));
                            o.insert("type".into(), json!("recording"));
                        }
                    }
                    Some(Value::Object(o))
                })
                .collect();
            json!({
                "name": g.name(),
                "file": g.file(),
                "rules": rules,
                "interval": g.interval_ms() as f64 / 1000.0,
                "limit": g.spec().limit,
                "evaluationTime": g.evaluation_duration().as_secs_f64(),
                "lastEvaluation": time_json(g.last_evaluation_ms()),
            })
        })
        .collect();
    json!({ "groups": groups })
}

/// `/api/v1/alerts`' `data`: `{"alerts": [...]}`, the pending and firing
/// alerts of every alerting rule.
pub fn alerts_json(groups: &[&GroupState]) -> Value {
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|g| g.rules().collect::<Vec<_>>())
        .flat_map(|r| {
            r.active_alerts()
                .into_iter()
                .map(alert_json)
                .collect::<Vec<_>>()
        })
        .collect();
    json!({ "alerts": alerts })
}

/// The expression as Prometheus prints it back (`rule.Query().String()`).
pub fn canonical_query(expr: &str) -> String {
    match crate::rulefile::parse_promql(expr) {
        Ok(e) => e.to_string(),
        Err(_) => expr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_print_as_prometheus_does() {
        for (given, want) in [
            (
                "up{job=~\"registry_.*\"} == 0",
                "up{job=~\"registry_.*\"} == 0",
            ),
            ("sum   by(job)(rate(x[5m]))", "sum by (job) (rate(x[5m]))"),
            (
                "x509_cert_expiry - time() < 7 * 24 * 3600",
                "x509_cert_expiry - time() < 7 * 24 * 3600",
            ),
            (
                "histogram_quantile(0.95, rate(b_bucket[5m])) > 1",
                "histogram_quantile(0.95, rate(b_bucket[5m])) > 1",
            ),
        ] {
            assert_eq!(canonical_query(given), want);
        }
    }
}
