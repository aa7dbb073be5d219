//! The operator's configuration: a TOML file of jobs (plugin + schedule +
//! targets + plugin config + grants), limits and server settings.
//!
//! Every error names the file, line and column of the offending value:
//! syntax errors and unknown keys come from serde (`deny_unknown_fields`),
//! bad values (durations, sizes, cron expressions, duplicate names) are
//! checked here against the spans serde kept.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:9470"
//! token_file = "api-token"   # mutating API calls need this bearer token
//!                            # (default: <data>/api-token, created at first start)
//!
//! [storage]
//! retention = "15d"          # results and series older than this are deleted
//! retention_size = "10GB"    # and the oldest series chunks beyond this size
//!
//! [alerting]
//! config = "alertmanager.yml"   # Alertmanager's routing, unchanged
//!
//! [[alerting.receivers]]        # any installed notifier plugin as a receiver
//! name = "team-chat"
//! plugin = "my-notifier"
//! config = { room = "ops" }
//! grants = { http = ["chat.example.com"] }
//!
//! [plugins]
//! require_signatures = true     # every plugin used must be signed by a trusted key
//! trusted_keys = ["ops.pub"]    # `lookout plugin keygen`, relative to this file
//!
//! [[detectors]]                # anomaly detection / forecasting over stored series
//! name = "latency"
//! plugin = "seasonal"           # an installed detector plugin
//! series = 'probe_duration_seconds{job="website"}'   # PromQL, evaluated every `every`
//! every = "15s"
//! config = { threshold = 4 }    # the plugin's own settings (its sensitivity)
//! forecast = { horizon = "4h", threshold = 0 }       # forecasting plugins only
//!
//! [[jobs]]
//! name = "website"
//! plugin = "http"
//! every = "30s"                 # or: cron = "*/5 * * * *"
//! targets = ["https://example.com/"]
//! timeout = "5s"
//! config = { valid_status_codes = [200, 301] }
//! grants = { http = ["example.com"] }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{Grants, Limits};
use crate::runtime::limits;

pub mod blackbox;
mod prometheus;

/// Default address of the API: loopback only, like every exporter's
/// recommended deployment; exposing it is an explicit choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9470";

/// Default retention of results, Prometheus' own default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// Default rule evaluation interval, Prometheus' own.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// Prometheus' defaults for restoring `for` state after a restart.
pub const DEFAULT_FOR_GRACE_PERIOD: Duration = Duration::from_secs(600);
pub const DEFAULT_FOR_OUTAGE_TOLERANCE: Duration = Duration::from_secs(3600);

/// Default number of invocations running at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub source: String,
    pub listen: SocketAddr,
    /// Where the API token is (mutating endpoints need it); `None`: the
    /// data directory's `api-token`, created at first start.
    pub token_file: Option<PathBuf>,
    pub retention: Duration,
    /// Cap on the time-series engine's size on disk, oldest chunks dropped first.
    pub retention_bytes: Option<u64>,
    /// How far back a sample may arrive out of order and still be stored
    /// (Prometheus' `out_of_order_time_window`; 0 refuses, as its default).
    pub out_of_order_window: Duration,
    pub max_concurrency: usize,
    pub jobs: Vec<Job>,
    /// `[[detectors]]`: detector plugins over stored series.
    pub detectors: Vec<DetectorJob>,
    /// `[plugins]`: signatures required, keys trusted.
    pub plugin_policy: PluginPolicy,
    /// How often rule groups evaluate (Prometheus' `evaluation_interval`).
    pub evaluation_interval: Duration,
    /// Rule files named by the configuration, resolved against its directory.
    pub rule_files: Vec<PathBuf>,
    /// `rule_files` as written, before resolution.
    pub rule_patterns: Vec<String>,
    /// The Alertmanager configuration routing this instance's alerts.
    pub alertmanager_config: Option<PathBuf>,
    /// Where people reach lookout, for links in notifications.
    pub external_url: Option<String>,
    /// `[[alerting.receivers]]`: receivers delivered by notifier plugins.
    pub plugin_receivers: Vec<PluginReceiver>,
    /// blackbox_exporter modules (`[probes] blackbox_modules`, or the file
    /// itself), for jobs that name one and for `/probe`.
    pub blackbox: Option<blackbox::BlackboxModules>,
    /// After a restart, an alert whose `for` is at least this long gets its
    /// pending time back (Prometheus' `--rules.alert.for-grace-period`, 10m).
    pub for_grace_period: Duration,
    /// State older than this is not restored (`--rules.alert.for-outage-tolerance`, 1h).
    pub for_outage_tolerance: Duration,
    /// What loaded but is not acted on (skipped jobs, unsupported
    /// settings); `check` prints them and `serve` logs them.
    pub warnings: Vec<String>,
}

/// One job: a plugin run on a schedule against each of its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub plugin: String,
    /// Line of the `plugin` key, for errors found later (plugin not installed).
    pub plugin_line: usize,
    /// The blackbox module the job runs, when it names one instead of a
    /// plugin and config.
    pub module: Option<String>,
    pub schedule: Schedule,
    pub targets: Vec<String>,
    /// Labels added to every series of a target, index-aligned with
    /// `targets` (Prometheus' target labels, e.g. from `static_configs`).
    pub target_labels: Vec<Vec<(String, String)>>,
    /// Whether labels the plugin returns win over target labels
    /// (Prometheus' `honor_labels`); otherwise they are kept as `exported_*`.
    pub honor_labels: bool,
    /// The plugin's configuration, as the JSON the plugin receives.
    pub config_json: String,
    /// Grants added to what the plugin's install granted.
    pub grants: Grants,
    pub limits: Limits,
    /// N-of-M confirmation of a probe's verdict (`confirm = "3/5"`).
    pub confirm: Option<Confirm>,
    /// The interval while the last probe failed (`every_while_failing`).
    pub every_while_failing: Option<Duration>,
}

/// A target counts as down when at least `failures` of its last `of`
/// probes failed (Uptime Kuma's retries are `confirm = "N/N"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confirm {
    pub failures: u32,
    pub of: u32,
}

impl FromStr for Confirm {
    type Err = String;

    fn from_str(text: &str) -> Result<Confirm, String> {
        let bad =
            || format!("`{text}` is not N/M (e.g. 3/5: down when 3 of the last 5 probes failed)");
        let (n, m) = text.split_once('/').ok_or_else(bad)?;
        let failures: u32 = n.trim().parse().map_err(|_| bad())?;
        let of: u32 = m.trim().parse().map_err(|_| bad())?;
        if failures == 0 || failures > of || of > 100 {
            return Err(format!("`{text}`: need 1 ≤ N ≤ M ≤ 100"));
        }
        Ok(Confirm { failures, of })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    /// A cron expression (seconds field included) and its source text.
    Cron(Box<cron::Schedule>, String),
}

impl Schedule {
    /// The time between runs, or for cron the gap between its next two runs.
    pub fn nominal_interval(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(s, _) => {
                let mut next = s.upcoming(chrono::Utc);
                match (next.next(), next.next()) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
                    _ => Duration::from_secs(60),
                }
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", format_duration(*d)),
            Schedule::Cron(_, text) => format!("cron {text}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    alerting: RawAlerting,
    #[serde(default)]
    probes: RawProbes,
    #[serde(default)]
    jobs: Vec<RawJob>,
    #[serde(default)]
    detectors: Vec<RawDetector>,
    #[serde(default)]
    plugins: RawPlugins,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    /// Every plugin a job, detector or receiver uses must have been
    /// installed with a signature by one of `trusted_keys`.
    require_signatures: Option<Spanned<bool>>,
    /// Public key files (`lookout plugin keygen`), relative to this file.
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
}

/// `[plugins]`: which plugins may run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginPolicy {
    pub require_signatures: bool,
    /// Fingerprints of the trusted keys (see `signing`).
    pub trusted_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    name: Spanned<String>,
    plugin: Spanned<String>,
    series: Spanned<String>,
    every: Option<Spanned<String>>,
    #[serde(default)]
    config: Option<toml::Table>,
    forecast: Option<Spanned<RawForecast>>,
    history: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForecast {
    horizon: String,
    threshold: Option<f64>,
}

/// Default interval of a detector: one point per 15 s, a common scrape.
pub const DEFAULT_DETECTOR_EVERY: Duration = Duration::from_secs(15);

/// Default span a detector learns from at its first start, and catches up
/// on after lookout was down.
pub const DEFAULT_DETECTOR_HISTORY: Duration = Duration::from_secs(3600);

/// Default deadline of one call into a detector plugin (a shard of series).
pub const DEFAULT_DETECTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// `[[detectors]]`: a detector plugin run over the series a PromQL
/// expression yields, every `every`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorJob {
    pub name: String,
    pub plugin: String,
    pub plugin_line: usize,
    /// PromQL; each series it yields is one detector state.
    pub series: String,
    pub every: Duration,
    pub config_json: String,
    pub forecast: Option<ForecastConfig>,
    pub history: Duration,
    pub limits: Limits,
}

/// What a forecasting detector is asked after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastConfig {
    pub horizon: Duration,
    pub threshold: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProbes {
    /// A blackbox_exporter configuration (`modules:`), relative to this file.
    blackbox_modules: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    /// The token mutating API endpoints require, relative to this file.
    token_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    retention: Option<Spanned<String>>,
    retention_size: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    /// An Alertmanager configuration (alertmanager.yml), relative to this file.
    config: Option<String>,
    /// Where people reach lookout (links in notifications).
    external_url: Option<String>,
    /// Receivers delivered by any installed notifier plugin.
    #[serde(default)]
    receivers: Vec<RawPluginReceiver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginReceiver {
    name: Spanned<String>,
    plugin: Spanned<String>,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default = "send_resolved_default")]
    send_resolved: bool,
    #[serde(default)]
    grants: Grants,
}

/// As Alertmanager's webhook: resolved notifications are sent.
fn send_resolved_default() -> bool {
    true
}

/// A receiver of lookout's own config: an installed notifier plugin with
/// its configuration and grants. Alertmanager routes may name it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginReceiver {
    pub name: String,
    pub plugin: String,
    pub plugin_line: usize,
    pub config: serde_json::Value,
    pub send_resolved: bool,
    pub grants: Grants,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    /// Prometheus rule files (globs allowed), relative to this file.
    #[serde(default)]
    files: Vec<String>,
    evaluation_interval: Option<Spanned<String>>,
    /// Prometheus' `--rules.alert.for-grace-period`.
    for_grace_period: Option<Spanned<String>>,
    /// Prometheus' `--rules.alert.for-outage-tolerance`.
    for_outage_tolerance: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    max_concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    plugin: Option<Spanned<String>>,
    /// A blackbox module instead of plugin + config.
    module: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
    targets: Spanned<Vec<String>>,
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    honor_labels: bool,
    confirm: Option<Spanned<String>>,
    every_while_failing: Option<Spanned<String>>,
}

/// Reads and validates a configuration file: lookout's TOML, or a
/// Prometheus `prometheus.yml` (`.yml`/`.yaml`), which loads as-is.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    let file = path.display().to_string();
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut config = match path.extension().and_then(|e| e.to_str()) {
        Some("yml" | "yaml") if blackbox::looks_like_blackbox(&text) => {
            // blackbox_exporter's own file: its modules answer `/probe`.
            let mut config = parse("", &file)?;
            config.blackbox = Some(blackbox::parse(&text, &file, base)?);
            config
        }
        Some("yml" | "yaml") => prometheus::parse(&text, &file)?,
        _ => parse_in(&text, &file, base)?,
    };
    config.rule_files =
        crate::rules::resolve_rule_files(base, &config.rule_patterns, &mut config.warnings);
    config.alertmanager_config = config.alertmanager_config.map(|p| base.join(p));
    config.token_file = config.token_file.map(|p| base.join(p));
    Ok(config)
}

/// Parses configuration text; `file` names it in errors. Files it refers
/// to are read relative to the working directory.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_in(text, file, Path::new("."))
}

/// Parses configuration text; files it refers to are relative to `base`.
fn parse_in(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(span, e.message().to_string())
    })?;

    let listen = match &raw.server.listen {
        Some(v) => v.get_ref().parse().map_err(|_| {
            at(
                v.span(),
                format!(
                    "listen address `{}` is not host:port (e.g. 127.0.0.1:9470)",
                    v.get_ref()
                ),
            )
        })?,
        None => DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
    };
    let retention = match &raw.storage.retention {
        Some(v) => parse_duration(v.get_ref())
            .map_err(|e| at(v.span(), format!("storage.retention: {e}")))?,
        None => DEFAULT_RETENTION,
    };
    let retention_bytes = match &raw.storage.retention_size {
        Some(v) => Some(
            parse_size(v.get_ref())
                .map_err(|e| at(v.span(), format!("storage.retention_size: {e}")))?,
        ),
        None => None,
    };
    let evaluation_interval = match &raw.rules.evaluation_interval {
        Some(v) => parse_duration(v.get_ref())
            .map_err(|e| at(v.span(), format!("rules.evaluation_interval: {e}")))?,
        None => DEFAULT_EVALUATION_INTERVAL,
    };
    let rule_duration = |v: &Option<Spanned<String>>, what: &str, default: Duration| match v {
        Some(v) => {
            parse_duration(v.get_ref()).map_err(|e| at(v.span(), format!("rules.{what}: {e}")))
        }
        None => Ok(default),
    };
    let for_grace_period = rule_duration(
        &raw.rules.for_grace_period,
        "for_grace_period",
        DEFAULT_FOR_GRACE_PERIOD,
    )?;
    let for_outage_tolerance = rule_duration(
        &raw.rules.for_outage_tolerance,
        "for_outage_tolerance",
        DEFAULT_FOR_OUTAGE_TOLERANCE,
    )?;
    let max_concurrency = match &raw.scheduler.max_concurrency {
        Some(v) if *v.get_ref() < 1 || *v.get_ref() > limits::MAX_INSTANCES as i64 => {
            return Err(at(
                v.span(),
                format!(
                    "scheduler.max_concurrency must be between 1 and {}",
                    limits::MAX_INSTANCES
                ),
            ));
        }
        Some(v) => *v.get_ref() as usize,
        None => DEFAULT_MAX_CONCURRENCY,
    };

    let blackbox = match &raw.probes.blackbox_modules {
        Some(path) => Some(blackbox::load(&base.join(path.get_ref()))?),
        None => None,
    };
    let mut jobs: Vec<Job> = Vec::new();
    for raw_job in raw.jobs {
        let name = raw_job.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(at(
                raw_job.name.span(),
                format!("job name `{name}` must be non-empty [A-Za-z0-9._-]"),
            ));
        }
        if jobs.iter().any(|j| j.name == name) {
            return Err(at(
                raw_job.name.span(),
                format!("job `{name}` is defined twice"),
            ));
        }
        // Where the job's plugin and options come from.
        enum Source {
            Plugin(String, usize),
            Module(blackbox::BlackboxModule, usize),
        }
        let source = match (&raw_job.plugin, &raw_job.module) {
            (Some(_), Some(m)) => {
                return Err(at(
                    m.span(),
                    format!("job `{name}`: set `plugin` or `module`, not both"),
                ));
            }
            (None, None) => {
                return Err(at(
                    raw_job.name.span(),
                    format!("job `{name}` needs `plugin = \"…\"` or a blackbox `module = \"…\"`"),
                ));
            }
            (Some(p), None) => {
                Source::Plugin(p.get_ref().clone(), line_col(text, p.span().start).0)
            }
            (None, Some(m)) => {
                let Some(modules) = &blackbox else {
                    return Err(at(
                        m.span(),
                        format!(
                            "job `{name}`: module `{}` needs a blackbox file: [probes] blackbox_modules = \"blackbox.yml\"",
                            m.get_ref()
                        ),
                    ));
                };
                let Some(module) = modules.modules.get(m.get_ref()) else {
                    let known: Vec<&str> = modules.modules.keys().map(|k| k.as_str()).collect();
                    return Err(at(
                        m.span(),
                        format!(
                            "job `{name}`: module `{}` is not in {} (its modules: {})",
                            m.get_ref(),
                            modules.source,
                            known.join(", ")
                        ),
                    ));
                };
                if raw_job.config.is_some() {
                    return Err(at(
                        m.span(),
                        format!(
                            "job `{name}`: a module job takes its options from the module; remove `config`"
                        ),
                    ));
                }
                Source::Module(module.clone(), line_col(text, m.span().start).0)
            }
        };
        let schedule = match (&raw_job.every, &raw_job.cron) {
            (Some(_), Some(c)) => {
                return Err(at(
                    c.span(),
                    format!("job `{name}`: set `every` or `cron`, not both"),
                ));
            }
            (None, None) => {
                return Err(at(
                    raw_job.name.span(),
                    format!(
                        "job `{name}` needs a schedule: `every = \"15s\"` or `cron = \"*/5 * * * *\"`"
                    ),
                ));
            }
            (Some(every), None) => {
                let d = parse_duration(every.get_ref())
                    .map_err(|e| at(every.span(), format!("job `{name}`: every: {e}")))?;
                if d < Duration::from_millis(100) {
                    return Err(at(
                        every.span(),
                        format!("job `{name}`: every must be at least 100ms"),
                    ));
                }
                Schedule::Every(d)
            }
            (None, Some(expr)) => Schedule::Cron(
                Box::new(
                    parse_cron(expr.get_ref())
                        .map_err(|e| at(expr.span(), format!("job `{name}`: cron: {e}")))?,
                ),
                expr.get_ref().clone(),
            ),
        };
        if raw_job.targets.get_ref().is_empty() {
            return Err(at(
                raw_job.targets.span(),
                format!("job `{name}` has no targets"),
            ));
        }
        if let Some(bad) = raw_job
            .labels
            .keys()
            .find(|k| !lookout_expfmt::is_label_name(k) || k.starts_with("__"))
        {
            return Err(at(
                raw_job.name.span(),
                format!("job `{name}`: label name `{bad}` is invalid"),
            ));
        }
        let mut limits = Limits::default();
        if let Some(t) = &raw_job.timeout {
            let d = parse_duration(t.get_ref())
                .map_err(|e| at(t.span(), format!("job `{name}`: timeout: {e}")))?;
            if d.is_zero() || d > limits::MAX_TIMEOUT {
                return Err(at(
                    t.span(),
                    format!(
                        "job `{name}`: timeout must be between 1ms and {}",
                        format_duration(limits::MAX_TIMEOUT)
                    ),
                ));
            }
            if let Schedule::Every(every) = &schedule
                && d > *every
            {
                return Err(at(
                    t.span(),
                    format!(
                        "job `{name}`: timeout {} is longer than its interval {}",
                        t.get_ref(),
                        format_duration(*every)
                    ),
                ));
            }
            limits.timeout = d;
        } else if let Source::Module(
            blackbox::BlackboxModule {
                timeout: Some(t), ..
            },
            _,
        ) = &source
        {
            // As blackbox_exporter: the module's timeout, capped by how
            // often it runs (Prometheus' scrape timeout there).
            limits.timeout = (*t).min(limits::MAX_TIMEOUT);
            if let Schedule::Every(every) = &schedule {
                limits.timeout = limits.timeout.min(*every);
            }
        } else if let Schedule::Every(every) = &schedule {
            limits.timeout = limits.timeout.min(*every);
        }
        if let Some(m) = &raw_job.memory {
            let bytes = parse_size(m.get_ref())
                .map_err(|e| at(m.span(), format!("job `{name}`: memory: {e}")))?;
            if !(1 << 20..=limits::MAX_MEMORY_BYTES).contains(&bytes) {
                return Err(at(
                    m.span(),
                    format!(
                        "job `{name}`: memory must be between 1MiB and {}MiB",
                        limits::MAX_MEMORY_BYTES >> 20
                    ),
                ));
            }
            limits.memory_bytes = bytes;
        }
        let confirm = match &raw_job.confirm {
            Some(c) => Some(
                c.get_ref()
                    .parse::<Confirm>()
                    .map_err(|e| at(c.span(), format!("job `{name}`: confirm: {e}")))?,
            ),
            None => None,
        };
        let every_while_failing = match &raw_job.every_while_failing {
            Some(v) => {
                let d = parse_duration(v.get_ref())
                    .map_err(|e| at(v.span(), format!("job `{name}`: every_while_failing: {e}")))?;
                if d < Duration::from_millis(100) || d > schedule.nominal_interval() {
                    return Err(at(
                        v.span(),
                        format!(
                            "job `{name}`: every_while_failing must be between 100ms and the job's interval ({})",
                            format_duration(schedule.nominal_interval())
                        ),
                    ));
                }
                Some(d)
            }
            None => None,
        };
        let (plugin, plugin_line, config_json, module) = match source {
            Source::Module(module, line) => {
                (module.plugin, line, module.config_json, Some(module.name))
            }
            Source::Plugin(plugin, line) => (
                plugin,
                line,
                serde_json::to_string(&raw_job.config.unwrap_or_default())
                    .map_err(|e| at(raw_job.name.span(), format!("job `{name}`: config: {e}")))?,
                None,
            ),
        };
        jobs.push(Job {
            name,
            plugin,
            plugin_line,
            module,
            schedule,
            target_labels: vec![
                raw_job.labels.clone().into_iter().collect();
                raw_job.targets.get_ref().len()
            ],
            targets: raw_job.targets.into_inner(),
            honor_labels: raw_job.honor_labels,
            config_json,
            grants: raw_job.grants,
            limits,
            confirm,
            every_while_failing,
        });
    }
    let mut plugin_policy = PluginPolicy {
        require_signatures: raw
            .plugins
            .require_signatures
            .as_ref()
            .is_some_and(|r| *r.get_ref()),
        ..PluginPolicy::default()
    };
    for key in &raw.plugins.trusted_keys {
        let path = base.join(key.get_ref());
        let public = crate::signing::read_public(&path)
            .map_err(|e| at(key.span(), format!("plugins.trusted_keys: {e}")))?;
        plugin_policy
            .trusted_keys
            .push(crate::signing::fingerprint(&public));
    }
    if let Some(required) = &raw.plugins.require_signatures
        && *required.get_ref()
        && plugin_policy.trusted_keys.is_empty()
    {
        return Err(at(
            required.span(),
            "plugins.require_signatures needs at least one key in plugins.trusted_keys".into(),
        ));
    }
    let mut detectors: Vec<DetectorJob> = Vec::new();
    for d in raw.detectors {
        let name = d.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(at(
                d.name.span(),
                format!("detector name `{name}` must be non-empty [A-Za-z0-9._-]"),
            ));
        }
        if detectors.iter().any(|x| x.name == name) {
            return Err(at(
                d.name.span(),
                format!("detector `{name}` is defined twice"),
            ));
        }
        if let Err(e) = promql_parser::parser::parse(d.series.get_ref()) {
            return Err(at(
                d.series.span(),
                format!("detector `{name}`: series: bad PromQL: {e}"),
            ));
        }
        let duration = |v: &Option<Spanned<String>>, what: &str, default: Duration| match v {
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(at(
                    v.span(),
                    format!("detector `{name}`: {what} must not be 0"),
                )),
                Err(e) => Err(at(v.span(), format!("detector `{name}`: {what}: {e}"))),
            },
            None => Ok(default),
        };
        let every = duration(&d.every, "every", DEFAULT_DETECTOR_EVERY)?;
        let history = duration(&d.history, "history", DEFAULT_DETECTOR_HISTORY)?;
        let timeout = duration(&d.timeout, "timeout", DEFAULT_DETECTOR_TIMEOUT)?;
        if timeout > limits::MAX_TIMEOUT {
            return Err(at(
                d.timeout
                    .as_ref()
                    .expect("a timeout over the cap was written")
                    .span(),
                format!(
                    "detector `{name}`: timeout must be at most {}",
                    format_duration(limits::MAX_TIMEOUT)
                ),
            ));
        }
        let mut job_limits = Limits {
            timeout,
            ..Limits::default()
        };
        if let Some(m) = &d.memory {
            let bytes = parse_size(m.get_ref())
                .map_err(|e| at(m.span(), format!("detector `{name}`: memory: {e}")))?;
            if !(1 << 20..=limits::MAX_MEMORY_BYTES).contains(&bytes) {
                return Err(at(
                    m.span(),
                    format!(
                        "detector `{name}`: memory must be between 1MiB and {}MiB",
                        limits::MAX_MEMORY_BYTES >> 20
                    ),
                ));
            }
            job_limits.memory_bytes = bytes;
        }
        let forecast = match &d.forecast {
            Some(f) => {
                let horizon = parse_duration(&f.get_ref().horizon)
                    .ok()
                    .filter(|h| !h.is_zero())
                    .ok_or_else(|| {
                        at(
                            f.span(),
                            format!(
                                "detector `{name}`: forecast.horizon `{}` is not a duration above 0 (e.g. \"4h\")",
                                f.get_ref().horizon
                            ),
                        )
                    })?;
                Some(ForecastConfig {
                    horizon,
                    threshold: f.get_ref().threshold,
                })
            }
            None => None,
        };
        detectors.push(DetectorJob {
            name,
            plugin: d.plugin.get_ref().clone(),
            plugin_line: line_col(text, d.plugin.span().start).0,
            series: d.series.into_inner(),
            every,
            config_json: serde_json::to_string(&d.config.unwrap_or_default())
                .map_err(|e| at(d.name.span(), format!("detector: config: {e}")))?,
            forecast,
            history,
            limits: job_limits,
        });
    }
    let mut plugin_receivers: Vec<PluginReceiver> = Vec::new();
    for r in raw.alerting.receivers {
        let name = r.name.get_ref().clone();
        if name.is_empty() || plugin_receivers.iter().any(|p| p.name == name) {
            return Err(at(
                r.name.span(),
                format!("receiver name `{name}` is empty or used twice"),
            ));
        }
        let config = serde_json::to_value(r.config.unwrap_or_default())
            .map_err(|e| at(r.name.span(), format!("receiver `{name}`: config: {e}")))?;
        plugin_receivers.push(PluginReceiver {
            name,
            plugin: r.plugin.get_ref().clone(),
            plugin_line: line_col(text, r.plugin.span().start).0,
            config,
            send_resolved: r.send_resolved,
            grants: r.grants,
        });
    }
    Ok(Config {
        source: file.to_string(),
        listen,
        token_file: raw.server.token_file.map(PathBuf::from),
        retention,
        retention_bytes,
        out_of_order_window: Duration::ZERO,
        max_concurrency,
        jobs,
        detectors,
        plugin_policy,
        evaluation_interval,
        // Resolved by `load`, which knows the file's directory.
        rule_patterns: raw.rules.files,
        alertmanager_config: raw.alerting.config.map(PathBuf::from),
        external_url: raw.alerting.external_url,
        plugin_receivers,
        blackbox,
        for_grace_period,
        for_outage_tolerance,
        rule_files: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The configuration `lookout serve` runs without `--config`: lookout
/// probes its own API over HTTP and TCP, exports the machine's metrics and
/// watches them for anomalies, so a fresh install monitors something real
/// and shows results at once. Jobs and detectors whose plugin is not
/// `installed` are left out, each with a warning saying what to install.
pub fn embedded_default(listen: SocketAddr, installed: impl Fn(&str) -> bool) -> Config {
    let text = include_str!("default-config.toml").replace("{listen}", &listen.to_string());
    let mut config =
        parse(&text, "<embedded default config>").expect("the embedded default config is valid");
    let warnings = &mut config.warnings;
    leave_out_uninstalled(
        &mut config.jobs,
        "job",
        |j| (&j.name, &j.plugin),
        &installed,
        warnings,
    );
    leave_out_uninstalled(
        &mut config.detectors,
        "detector",
        |d| (&d.name, &d.plugin),
        &installed,
        warnings,
    );
    config
}

/// Drops the `items` (jobs or detectors) whose plugin is not installed,
/// with a warning for each.
fn leave_out_uninstalled<T>(
    items: &mut Vec<T>,
    kind: &str,
    name_and_plugin: impl Fn(&T) -> (&String, &String),
    installed: &impl Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) {
    items.retain(|item| {
        let (name, plugin) = name_and_plugin(item);
        let keep = installed(plugin);
        if !keep {
            warnings.push(format!(
                "embedded default: {kind} `{name}` left out: plugin `{plugin}` is not installed \
                 (`cargo xtask run` installs the first-party plugins)"
            ));
        }
        keep
    });
}

/// Replaces each `NAME_file: path` with `NAME: <the file's text, trimmed>`,
/// at any depth (`password_file`, `bearer_token_file`, `ca_file` …), as the
/// Prometheus tools do when they load a file: a plugin reads no files, it
/// gets what they hold. Relative paths start at `base`.
pub fn inline_file_references(value: &mut serde_json::Value, base: &Path) -> Result<(), String> {
    match value {
        serde_json::Value::Object(map) => {
            let references: Vec<String> = map
                .keys()
                .filter(|k| k.ends_with("_file"))
                .cloned()
                .collect();
            for key in references {
                let Some(serde_json::Value::String(path)) = map.remove(&key) else {
                    continue;
                };
                let text = std::fs::read_to_string(base.join(&path))
                    .map_err(|e| format!("{key} {path:?}: {e}"))?;
                let name = key.trim_end_matches("_file").to_string();
                map.insert(name, serde_json::Value::String(text.trim().to_string()));
            }
            map.values_mut()
                .try_for_each(|v| inline_file_references(v, base))
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| inline_file_references(v, base)),
        _ => Ok(()),
    }
}

/// A YAML file's syntax or shape error, at the line and column the parser
/// says.
fn yaml_error(e: &serde_norway::Error, file: &str) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    ConfigError {
        file: file.to_string(),
        line,
        column,
        message: e.to_string(),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses `500ms`, `15s`, `1m30s`, `2h`, `15d`, `1w` (Prometheus' units).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (use e.g. 500ms, 15s, 1m30s, 2h, 15d)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "y" => Duration::from_secs(365 * 86_400),
            _ => return Err(bad()),
        };
        total += unit * n as u32;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `100MB`, or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size (use e.g. 64MiB, 1GiB, 512KiB)");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    let unit: u64 = match text[split..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// Accepts crontab's five fields (minute first) or the cron crate's six or
/// seven (seconds first, optional year).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_string(),
        _ => {
            return Err(format!(
                "`{expr}` has {fields} fields; expected 5 (minute hour day-of-month month day-of-week) or 6-7 with seconds first"
            ));
        }
    };
    cron::Schedule::from_str(&full)
        .map_err(|e| format!("`{expr}` is not a valid cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:9999"

[[jobs]]
name = "web"
plugin = "http"
every = "15s"
targets = ["http://127.0.0.1:8080/"]
timeout = "5s"
memory = "32MiB"
config = { valid_status_codes = [200, 204] }
grants = { http = ["example.com"] }

[[jobs]]
name = "nightly"
plugin = "tcp"
cron = "*/5 * * * *"
targets = ["127.0.0.1:22"]
"#;

    #[test]
    fn good_config_parses_with_defaults_filled() {
        let c = parse(GOOD, "t.toml").unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.retention, DEFAULT_RETENTION);
        assert_eq!(c.jobs.len(), 2);
        let web = &c.jobs[0];
        assert_eq!(web.schedule, Schedule::Every(Duration::from_secs(15)));
        assert_eq!(web.limits.timeout, Duration::from_secs(5));
        assert_eq!(web.limits.memory_bytes, 32 << 20);
        assert_eq!(web.config_json, r#"{"valid_status_codes":[200,204]}"#);
        assert_eq!(web.grants.http, vec!["example.com".to_string()]);
        assert_eq!(web.plugin_line, 7);
        assert_eq!(
            c.jobs[1].schedule.nominal_interval(),
            Duration::from_secs(300)
        );
        assert_eq!(c.jobs[1].config_json, "{}");
    }

    fn err(text: &str) -> ConfigError {
        parse(text, "bad.toml").unwrap_err()
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let e = err(
            "[[jobs]]\nname = \"a\"\nplugin = \"http\"\nevery = \"1s\"\ntargets = [\"x\"]\nintervall = \"5s\"\n",
        );
        assert_eq!((e.file.as_str(), e.line), ("bad.toml", 6), "{e}");
        assert!(e.message.contains("unknown field `intervall`"), "{e}");
    }

    #[test]
    fn bad_cron_names_the_job_and_line() {
        let e = err(
            "[[jobs]]\nname = \"a\"\nplugin = \"http\"\ncron = \"61 * * * *\"\ntargets = [\"x\"]\n",
        );
        assert_eq!(e.line, 4, "{e}");
        assert!(
            e.message
                .starts_with("job `a`: cron: `61 * * * *` is not a valid cron expression"),
            "{e}"
        );
        let e =
            err("[[jobs]]\nname = \"a\"\nplugin = \"http\"\ncron = \"* *\"\ntargets = [\"x\"]\n");
        assert!(e.message.contains("has 2 fields"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let e =
            err("[[jobs]]\nname = \"a\"\nplugin = \"http\"\nevery = \"fast\"\ntargets = [\"x\"]\n");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("`fast` is not a duration"), "{e}");
        let e = err(
            "[[jobs]]\nname = \"a\"\nplugin = \"http\"\nevery = \"1s\"\ntimeout = \"5s\"\ntargets = [\"x\"]\n",
        );
        assert!(e.message.contains("longer than its interval"), "{e}");
        let e = err("[[jobs]]\nname = \"a\"\nplugin = \"http\"\nevery = \"1s\"\ntargets = []\n");
        assert!(e.message.contains("has no targets"), "{e}");
        let e = err(
            "[[jobs]]\nname = \"a\"\nplugin = \"p\"\nevery = \"1s\"\ntargets = [\"x\"]\n[[jobs]]\nname = \"a\"\nplugin = \"p\"\nevery = \"1s\"\ntargets = [\"x\"]\n",
        );
        assert_eq!(
            (e.line, e.message.as_str()),
            (7, "job `a` is defined twice")
        );
        let e = err("[server]\nlisten = \"everywhere\"\n");
        assert_eq!(e.line, 2);
        let e = err(
            "[[jobs]]\nname = \"a\"\nplugin = \"http\"\nevery = \"1s\"\ntargets = [\"x\"]\ngrants = { sockets = [\"*\"] }\n",
        );
        assert!(e.message.contains("unknown field `sockets`"), "{e}");
    }

    #[test]
    fn jobs_run_blackbox_modules_from_a_modules_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("blackbox.yml"),
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      valid_status_codes: [200]\n  tcp_connect:\n    prober: tcp\n",
        )
        .unwrap();
        let write = |text: &str| {
            let path = dir.path().join("lookout.toml");
            std::fs::write(&path, text).unwrap();
            load(&path)
        };
        let head = "[probes]\nblackbox_modules = \"blackbox.yml\"\n";
        let config = write(&format!(
            "{head}[[jobs]]\nname = \"web\"\nmodule = \"http_2xx\"\nevery = \"2s\"\ntargets = [\"http://a/\"]\n\n[[jobs]]\nname = \"port\"\nmodule = \"tcp_connect\"\nevery = \"1m\"\ntimeout = \"3s\"\ntargets = [\"a:1\"]\n"
        ))
        .unwrap();
        let web = &config.jobs[0];
        assert_eq!(web.plugin, "http");
        assert_eq!(web.module.as_deref(), Some("http_2xx"));
        assert_eq!(web.config_json, r#"{"valid_status_codes":[200]}"#);
        // The module's 5 s, capped by the 2 s interval.
        assert_eq!(web.limits.timeout, Duration::from_secs(2));
        assert_eq!(web.plugin_line, 5);
        assert_eq!(config.jobs[1].limits.timeout, Duration::from_secs(3));
        assert_eq!(config.blackbox.as_ref().unwrap().modules.len(), 2);

        let err = write(&format!(
            "{head}[[jobs]]\nname = \"web\"\nmodule = \"icmp\"\nevery = \"2s\"\ntargets = [\"a\"]\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains("module `icmp` is not in"), "{err}");
        assert!(err.message.contains("http_2xx, tcp_connect"), "{err}");

        let err = write(
            "[[jobs]]\nname = \"web\"\nmodule = \"http_2xx\"\nevery = \"2s\"\ntargets = [\"a\"]\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("[probes] blackbox_modules"), "{err}");

        let err = write(&format!(
            "{head}[[jobs]]\nname = \"web\"\nmodule = \"http_2xx\"\nplugin = \"http\"\nevery = \"2s\"\ntargets = [\"a\"]\n"
        ))
        .unwrap_err();
        assert!(err.message.contains("not both"), "{err}");

        // The modules file itself loads as a configuration that serves /probe.
        let config = load(&dir.path().join("blackbox.yml")).unwrap();
        assert!(config.jobs.is_empty());
        assert_eq!(config.blackbox.unwrap().modules.len(), 2);
    }

    #[test]
    fn confirmation_and_the_failing_interval_are_checked() {
        let job = |extra: &str| {
            parse(
                &format!(
                    "[[jobs]]\nname = \"w\"\nplugin = \"http\"\nevery = \"30s\"\ntargets = [\"http://a/\"]\n{extra}"
                ),
                "t.toml",
            )
        };
        let config = job("confirm = \"3/5\"\nevery_while_failing = \"5s\"\n").unwrap();
        assert_eq!(config.jobs[0].confirm, Some(Confirm { failures: 3, of: 5 }));
        assert_eq!(
            config.jobs[0].every_while_failing,
            Some(Duration::from_secs(5))
        );
        for (bad, why) in [
            ("confirm = \"5/3\"", "1 ≤ N ≤ M"),
            ("confirm = \"three\"", "not N/M"),
            ("every_while_failing = \"1m\"", "between 100ms"),
        ] {
            let err = job(bad).unwrap_err();
            assert_eq!(err.line, 6, "{err}");
            assert!(err.message.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("15d").unwrap(),
            Duration::from_secs(15 * 86400)
        );
        assert!(
            parse_duration("").is_err()
                && parse_duration("5").is_err()
                && parse_duration("s5").is_err()
        );
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn embedded_default_is_valid_and_probes_the_listen_address() {
        let c = embedded_default("127.0.0.1:12345".parse().unwrap(), |_| true);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let probes: Vec<&Job> = c
            .jobs
            .iter()
            .filter(|j| j.plugin == "http" || j.plugin == "tcp")
            .collect();
        assert_eq!(probes.len(), 2);
        assert!(
            probes
                .iter()
                .all(|j| j.targets.iter().all(|t| t.contains("127.0.0.1:12345")))
        );
        assert!(c.jobs.iter().any(|j| j.plugin == "node"));
        assert!(!c.detectors.is_empty());
    }

    #[test]
    fn embedded_default_leaves_out_what_is_not_installed_and_says_so() {
        let c = embedded_default("127.0.0.1:12345".parse().unwrap(), |p| p == "http");
        assert_eq!(c.jobs.len(), 1);
        assert_eq!(c.jobs[0].plugin, "http");
        assert!(c.detectors.is_empty());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("job `node`") && w.contains("plugin `node` is not installed")),
            "{:?}",
            c.warnings
        );
        assert!(c.warnings.iter().any(|w| w.contains("job `lookout-tcp`")));
    }
}
