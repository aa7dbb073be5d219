//! A Prometheus configuration (`prometheus.yml`) loaded as-is.
//!
//! Each `scrape_configs` entry becomes a job of the `prometheus-scrape`
//! exporter plugin: `static_configs` targets (with their labels),
//! `scrape_interval`, `scrape_timeout`, `metrics_path`, `scheme`, `params`,
//! `honor_labels`, `honor_timestamps`; `global` supplies the defaults
//! Prometheus uses (1m interval, 10s timeout). `storage.tsdb.retention.time`
//! and `retention.size` set retention. Jobs that need service discovery
//! lookout does not have (`consul_sd_configs` …) are skipped with a warning
//! naming the job; settings that belong to later parts of lookout (rule
//! files, alerting, remote write) are kept or reported as warnings rather
//! than refused, so a real configuration loads unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, ConfigError, Job, Schedule, parse_duration};
use crate::model::{Grants, Limits};

/// The plugin every scrape job runs.
pub const SCRAPE_PLUGIN: &str = "prometheus-scrape";

/// Prometheus' defaults (config/config.go).
const DEFAULT_SCRAPE_INTERVAL: &str = "1m";
const DEFAULT_SCRAPE_TIMEOUT: &str = "10s";
const DEFAULT_EVALUATION_INTERVAL: &str = "1m";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromConfig {
    #[serde(default)]
    global: Global,
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    alerting: Option<serde_norway::Value>,
    #[serde(default)]
    remote_write: Option<serde_norway::Value>,
    #[serde(default)]
    remote_read: Option<serde_norway::Value>,
    #[serde(default)]
    storage: Option<Storage>,
    #[serde(default)]
    tracing: Option<serde_norway::Value>,
    #[serde(default)]
    scrape_config_files: Option<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Global {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    query_log_file: Option<String>,
    body_size_limit: Option<String>,
    sample_limit: Option<u64>,
    label_limit: Option<u64>,
    label_name_length_limit: Option<u64>,
    label_value_length_limit: Option<u64>,
    target_limit: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Storage {
    tsdb: Option<TsdbStorage>,
    exemplars: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TsdbStorage {
    #[serde(rename = "retention.time")]
    retention_time: Option<String>,
    #[serde(rename = "retention.size")]
    retention_size: Option<String>,
    out_of_order_time_window: Option<String>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    honor_labels: bool,
    honor_timestamps: Option<bool>,
    #[serde(default)]
    static_configs: Vec<StaticConfig>,
    /// Everything else: service discovery, relabeling, auth, TLS …
    #[serde(flatten)]
    other: BTreeMap<String, serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticConfig {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses a Prometheus configuration into lookout's.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let located = |line: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        column: 1,
        message,
    };
    let raw: PromConfig = serde_norway::from_str(text).map_err(|e| super::yaml_error(&e, file))?;
    let global_line = line_of(text, "global:");
    let duration = |value: &str, what: &str, line: usize| {
        parse_duration(value).map_err(|e| located(line, format!("{what}: {e}")))
    };
    let default_interval = duration(
        raw.global
            .scrape_interval
            .as_deref()
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL),
        "global.scrape_interval",
        global_line,
    )?;
    let default_timeout = duration(
        raw.global
            .scrape_timeout
            .as_deref()
            .unwrap_or(DEFAULT_SCRAPE_TIMEOUT),
        "global.scrape_timeout",
        global_line,
    )?;
    let evaluation_interval = duration(
        raw.global
            .evaluation_interval
            .as_deref()
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL),
        "global.evaluation_interval",
        global_line,
    )?;

    let mut warnings = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    for scrape in raw.scrape_configs {
        let name = scrape.job_name.clone();
        let line = line_of(text, &format!("job_name: '{name}'"))
            .max(line_of(text, &format!("job_name: \"{name}\"")))
            .max(line_of(text, &format!("job_name: {name}")));
        if jobs.iter().any(|j| j.name == name) {
            return Err(located(
                line,
                format!("found multiple scrape configs with job name {name:?}"),
            ));
        }
        let discovery: Vec<&String> = scrape
            .other
            .keys()
            .filter(|k| k.ends_with("_sd_configs"))
            .collect();
        if !discovery.is_empty() {
            let kinds: Vec<&str> = discovery.iter().map(|k| k.as_str()).collect();
            warnings.push(format!(
                "{file}:{line}: job {name:?} skipped: it discovers targets with {} (lookout supports static_configs)",
                kinds.join(", ")
            ));
            continue;
        }
        for key in scrape.other.keys() {
            warnings.push(format!(
                "{file}:{line}: job {name:?}: `{key}` is not supported yet and is ignored"
            ));
        }
        let every = match &scrape.scrape_interval {
            Some(v) => duration(v, &format!("job {name:?}: scrape_interval"), line)?,
            None => default_interval,
        };
        let timeout = match &scrape.scrape_timeout {
            Some(v) => duration(v, &format!("job {name:?}: scrape_timeout"), line)?,
            // Prometheus caps the global timeout at the job's interval.
            None => default_timeout.min(every),
        };
        if timeout > every {
            return Err(located(
                line,
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {name:?}"
                ),
            ));
        }
        let mut targets = Vec::new();
        let mut target_labels = Vec::new();
        for group in &scrape.static_configs {
            for target in &group.targets {
                targets.push(target.clone());
                let mut labels: Vec<(String, String)> = raw
                    .global
                    .external_labels
                    .iter()
                    .chain(&group.labels)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.sort();
                labels.dedup_by(|later, earlier| {
                    // A group label overrides an external one of the same name.
                    if later.0 == earlier.0 {
                        earlier.1 = later.1.clone();
                        true
                    } else {
                        false
                    }
                });
                target_labels.push(labels);
            }
        }
        if targets.is_empty() {
            warnings.push(format!(
                "{file}:{line}: job {name:?} has no static targets and is skipped"
            ));
            continue;
        }
        let mut plugin_config = serde_json::Map::new();
        if let Some(path) = &scrape.metrics_path {
            plugin_config.insert("metrics_path".into(), path.clone().into());
        }
        if let Some(scheme) = &scrape.scheme {
            plugin_config.insert("scheme".into(), scheme.clone().into());
        }
        if !scrape.params.is_empty() {
            plugin_config.insert(
                "params".into(),
                serde_json::to_value(&scrape.params).unwrap_or_default(),
            );
        }
        if let Some(honor) = scrape.honor_timestamps {
            plugin_config.insert("honor_timestamps".into(), honor.into());
        }
        jobs.push(Job {
            name,
            plugin: SCRAPE_PLUGIN.to_string(),
            plugin_line: line,
            module: None,
            schedule: Schedule::Every(every),
            targets,
            target_labels,
            honor_labels: scrape.honor_labels,
            config_json: serde_json::Value::Object(plugin_config).to_string(),
            grants: Grants::default(),
            limits: Limits {
                timeout,
                ..Limits::default()
            },
            confirm: None,
            every_while_failing: None,
        });
    }

    let exemplars = raw.storage.as_ref().is_some_and(|s| s.exemplars.is_some());
    let g = &raw.global;
    for (present, what) in [
        (raw.alerting.is_some(), "alerting"),
        (raw.remote_write.is_some(), "remote_write"),
        (raw.remote_read.is_some(), "remote_read"),
        (raw.tracing.is_some(), "tracing"),
        (raw.scrape_config_files.is_some(), "scrape_config_files"),
        (exemplars, "storage.exemplars"),
        (g.query_log_file.is_some(), "global.query_log_file"),
        (g.body_size_limit.is_some(), "global.body_size_limit"),
        (g.sample_limit.is_some(), "global.sample_limit"),
        (g.label_limit.is_some(), "global.label_limit"),
        (
            g.label_name_length_limit.is_some(),
            "global.label_name_length_limit",
        ),
        (
            g.label_value_length_limit.is_some(),
            "global.label_value_length_limit",
        ),
        (g.target_limit.is_some(), "global.target_limit"),
    ] {
        if present {
            warnings.push(format!(
                "{file}: `{what}` is not supported yet and is ignored"
            ));
        }
    }

    let storage_line = line_of(text, "storage:");
    let tsdb = raw.storage.and_then(|s| s.tsdb);
    let retention = match tsdb.as_ref().and_then(|t| t.retention_time.as_deref()) {
        Some(v) => duration(v, "storage.tsdb.retention.time", storage_line)?,
        None => super::DEFAULT_RETENTION,
    };
    let out_of_order_window = match tsdb
        .as_ref()
        .and_then(|t| t.out_of_order_time_window.as_deref())
    {
        Some(v) => duration(v, "storage.tsdb.out_of_order_time_window", storage_line)?,
        None => Duration::ZERO,
    };
    let retention_bytes = match tsdb.as_ref().and_then(|t| t.retention_size.as_deref()) {
        Some(v) => Some(
            parse_base2_size(v)
                .map_err(|e| located(storage_line, format!("storage.tsdb.retention.size: {e}")))?,
        ),
        None => None,
    };

    Ok(Config {
        source: file.to_string(),
        listen: super::DEFAULT_LISTEN
            .parse()
            .expect("default listen address"),
        token_file: None,
        retention,
        retention_bytes,
        out_of_order_window,
        max_concurrency: super::DEFAULT_MAX_CONCURRENCY,
        jobs,
        detectors: Vec::new(),
        plugin_policy: Default::default(),
        evaluation_interval,
        rule_patterns: raw.rule_files,
        alertmanager_config: None,
        external_url: None,
        plugin_receivers: Vec::new(),
        blackbox: None,
        for_grace_period: super::DEFAULT_FOR_GRACE_PERIOD,
        for_outage_tolerance: super::DEFAULT_FOR_OUTAGE_TOLERANCE,
        rule_files: Vec::new(),
        warnings,
    })
}

/// 1-based line of the first line containing `needle`, or 0.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

/// Prometheus' sizes (`10GB`, `512MB`): base 2, as its `units.Base2Bytes`.
fn parse_base2_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split]
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512MB, 10GB)"))?;
    let shift = match text[split..].trim() {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        other => return Err(format!("unknown unit {other:?} in {text:?}")),
    };
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> String {
        let path = format!(
            "{}/../../shared/fixtures/seed-configs/",
            std::path::PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
            )
            .display()
        );
        std::fs::read_to_string(format!("{path}{name}")).expect("seed config")
    }

    #[test]
    fn seed_scrape_config_loads_static_jobs_and_skips_consul() {
        let c = parse(&seed("prometheus-scrape.yml"), "prometheus-scrape.yml").unwrap();
        let names: Vec<&str> = c.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "node",
                "registry_a",
                "registry_b",
                "teg_layer",
                "spire_server"
            ]
        );
        let teg = &c.jobs[3];
        assert_eq!(teg.plugin, SCRAPE_PLUGIN);
        assert_eq!(teg.targets, ["host.docker.internal:8080"]);
        assert_eq!(teg.schedule, Schedule::Every(Duration::from_secs(15)));
        assert_eq!(teg.limits.timeout, Duration::from_secs(10));
        assert_eq!(teg.config_json, r#"{"metrics_path":"/api/metrics"}"#);
        assert_eq!(c.evaluation_interval, Duration::from_secs(15));
        assert_eq!(c.rule_patterns, ["alert_rules.yml"]);
        let skipped = c
            .warnings
            .iter()
            .find(|w| w.contains("\"agents\" skipped"))
            .expect("a warning for agents");
        assert!(skipped.contains("consul_sd_configs"), "{skipped}");
        assert!(skipped.starts_with("prometheus-scrape.yml:"), "{skipped}");
    }

    #[test]
    fn seed_tuning_config_sets_intervals_and_retention() {
        let c = parse(&seed("prometheus-tuning.yml"), "prometheus-tuning.yml").unwrap();
        assert_eq!(c.retention, Duration::from_secs(30 * 86400));
        assert_eq!(c.retention_bytes, Some(10 << 30));
        assert_eq!(c.evaluation_interval, Duration::from_secs(15));
        assert!(c.jobs.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("global:\n  scrape_interval: soon\n", "p.yml").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("global.scrape_interval"), "{e}");
        let e = parse("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n    static_configs:\n      - targets: ['x:1']\n", "p.yml").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        let e = parse("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n        lables: {a: b}\n", "p.yml").unwrap_err();
        assert!(e.message.contains("lables"), "{e}");
        assert!(e.line >= 4, "{e}");
        let e = parse("globl: {}\n", "p.yml").unwrap_err();
        assert!(e.message.contains("globl"), "{e}");
    }

    #[test]
    fn static_labels_reach_targets_and_sizes_are_base_2() {
        let text = "global:\n  external_labels: {region: eu}\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1', 'y:2']\n        labels: {env: prod, region: us}\n";
        let c = parse(text, "p.yml").unwrap();
        let expected = vec![
            ("env".to_string(), "prod".to_string()),
            ("region".to_string(), "us".to_string()),
        ];
        assert_eq!(c.jobs[0].target_labels, vec![expected.clone(), expected]);
        assert_eq!(parse_base2_size("512MB").unwrap(), 512 << 20);
        assert!(parse_base2_size("5XB").is_err());
    }
}
