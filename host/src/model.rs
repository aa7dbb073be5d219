//! Plain data shared by the runtime, storage, scheduler and API: what a
//! plugin is, what it may do, and what an invocation produced. No behaviour
//! beyond (de)serialisation and small derived values lives here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The four kinds of plugin, one per WIT world of `lookout:plugin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Probe,
    Exporter,
    Detector,
    Notifier,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::Probe => "probe",
            World::Exporter => "exporter",
            World::Detector => "detector",
            World::Notifier => "notifier",
        }
    }

    /// Whether the scheduler can run this world as a job against targets.
    pub fn is_schedulable(self) -> bool {
        matches!(self, World::Probe | World::Exporter)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin may reach. The same shape describes what a plugin asks for
/// (from its `describe`) and what an operator granted (install + job).
/// Everything absent is denied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Hosts for outbound wasi:http: `host`, `host:port`, `*.domain`, `*`, `{target}`.
    pub http: Vec<String>,
    /// TCP `host:port` patterns; `*` for either part; `{target}`.
    pub tcp: Vec<String>,
    /// UDP `host:port` patterns.
    pub udp: Vec<String>,
    /// Destinations of ICMP echo (`lookout:plugin/icmp`): `host`, `*`, `{target}`.
    pub icmp: Vec<String>,
    /// Absolute paths the plugin may read (never write).
    pub files: Vec<String>,
    /// Paths whose file systems' sizes and inode counts the plugin may read
    /// (`lookout:plugin/filesystem-stats`): absolute paths, each covering
    /// what is below it, or `*` for any path. `files` paths are covered too.
    pub statfs: Vec<String>,
    /// Environment variable names passed through.
    pub env: Vec<String>,
}

impl Grants {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty()
            && self.tcp.is_empty()
            && self.udp.is_empty()
            && self.icmp.is_empty()
            && self.files.is_empty()
            && self.statfs.is_empty()
            && self.env.is_empty()
    }

    /// Both sets together, without repeating a pattern.
    pub fn union(&self, other: &Grants) -> Grants {
        fn merge(a: &[String], b: &[String]) -> Vec<String> {
            let mut out = a.to_vec();
            for item in b {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            out
        }
        Grants {
            http: merge(&self.http, &other.http),
            tcp: merge(&self.tcp, &other.tcp),
            udp: merge(&self.udp, &other.udp),
            icmp: merge(&self.icmp, &other.icmp),
            files: merge(&self.files, &other.files),
            statfs: merge(&self.statfs, &other.statfs),
            env: merge(&self.env, &other.env),
        }
    }

    /// The patterns of `self` that `other` does not have.
    pub fn without(&self, other: &Grants) -> Grants {
        fn minus(a: &[String], b: &[String]) -> Vec<String> {
            a.iter().filter(|p| !b.contains(p)).cloned().collect()
        }
        Grants {
            http: minus(&self.http, &other.http),
            tcp: minus(&self.tcp, &other.tcp),
            udp: minus(&self.udp, &other.udp),
            icmp: minus(&self.icmp, &other.icmp),
            files: minus(&self.files, &other.files),
            statfs: minus(&self.statfs, &other.statfs),
            env: minus(&self.env, &other.env),
        }
    }

    /// One line per capability kind, for the CLI and logs.
    pub fn describe_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (kind, list) in [
            ("http", &self.http),
            ("tcp", &self.tcp),
            ("udp", &self.udp),
            ("icmp", &self.icmp),
            ("files (read-only)", &self.files),
            ("statfs", &self.statfs),
            ("env", &self.env),
        ] {
            if !list.is_empty() {
                lines.push(format!("{kind}: {}", list.join(", ")));
            }
        }
        if lines.is_empty() {
            lines.push("none".to_string());
        }
        lines
    }
}

/// What a plugin says about itself (its `describe` export).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub config_schema: Option<String>,
    /// Capabilities the plugin asks for.
    pub capabilities: Grants,
}

/// Per-invocation sandbox limits. Defaults are the constants in
/// [`crate::runtime::limits`]; a job may lower or raise them within the
/// runtime's ceilings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline for one invocation, instantiation included.
    pub timeout: Duration,
    /// Linear memory the plugin may grow to, in bytes.
    pub memory_bytes: u64,
    /// Largest result the host accepts, in bytes (see `ProbeResult::size_bytes`).
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        use crate::runtime::limits;
        Limits {
            timeout: limits::DEFAULT_TIMEOUT,
            memory_bytes: limits::DEFAULT_MEMORY_BYTES,
            output_bytes: limits::DEFAULT_OUTPUT_BYTES,
        }
    }
}

/// One measurement returned by a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// Bytes this sample occupies in a result, for the output cap.
    pub fn size_bytes(&self) -> u64 {
        let labels: usize = self.labels.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.name.len() + labels + 16) as u64
    }
}

/// One point of a series handed to a detector.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A detector's judgement of one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub timestamp_ms: i64,
    /// Larger is more anomalous; NaN while the detector is learning.
    pub score: f64,
    pub anomalous: bool,
}

/// A forecasting detector's expectation of a series' future.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The predicted value at the horizon.
    pub value: f64,
    /// Seconds until the predicted path reaches the threshold, if it does
    /// within the horizon.
    pub seconds_to_threshold: Option<f64>,
}

/// What a probe reported about one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub success: bool,
    pub duration_seconds: f64,
    pub failure_reason: Option<String>,
    pub message: String,
    pub samples: Vec<Sample>,
}

impl ProbeResult {
    pub fn size_bytes(&self) -> u64 {
        self.message.len() as u64 + self.samples.iter().map(Sample::size_bytes).sum::<u64>()
    }
}

/// Why an invocation itself failed (as opposed to a probe that ran and found
/// its target down). These are the host's reasons; plugin-reported probe
/// reasons (`dns`, `connect`, `status` …) are strings from the WIT enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The wall-clock deadline passed; the instance was interrupted.
    Deadline,
    /// The plugin trapped (panic, unreachable, bad memory access …).
    Trap,
    /// The plugin tried to grow memory past its cap.
    MemoryLimit,
    /// The plugin overflowed its wasm stack.
    StackOverflow,
    /// The plugin returned more than the output cap.
    OutputLimit,
    /// The plugin rejected its configuration.
    PluginConfig,
    /// The plugin reported a passing problem.
    PluginTransient,
    /// The plugin reported it cannot work in this setting.
    PluginPermanent,
    /// The instance could not be created (pool exhausted, link error).
    Instantiate,
    /// The plugin is of a world that cannot do what was asked.
    WrongWorld,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Deadline => "deadline",
            FailureKind::Trap => "trap",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::OutputLimit => "output_limit",
            FailureKind::PluginConfig => "plugin_config",
            FailureKind::PluginTransient => "plugin_transient",
            FailureKind::PluginPermanent => "plugin_permanent",
            FailureKind::Instantiate => "instantiate",
            FailureKind::WrongWorld => "wrong_world",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invocation that did not produce a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct InvocationError {
    pub kind: FailureKind,
    pub message: String,
}

impl InvocationError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        InvocationError {
            kind,
            message: message.into(),
        }
    }
}

/// Whether the invocation itself worked, and whether the target was healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The plugin ran and reported success.
    Success,
    /// The plugin ran and reported the target unhealthy (a probe failure).
    TargetFailure,
    /// The plugin did not complete: trap, limit, deadline or plugin error.
    PluginFailure,
}

/// A target as it may be shown: the password of a URL's user information
/// replaced by `xxxxx`, as Go's `url.Redacted` (and so Prometheus) shows it.
pub fn shown_target(target: &str) -> String {
    let Some((scheme, rest)) = target.split_once("://") else {
        return target.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:xxxxx@{host}{path}")
        }
        _ => target.to_string(),
    }
}

/// One invocation of a job's plugin against one target, as stored and served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub job: String,
    pub target: String,
    pub plugin: String,
    /// Start of the invocation, milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub duration_seconds: f64,
    pub success: bool,
    pub outcome: Outcome,
    /// A plugin reason (`status`, `connect` …) or a host reason (`deadline`, `trap` …).
    pub failure_reason: Option<String>,
    pub message: String,
    pub samples: Vec<Sample>,
    /// With N-of-M confirmation (`confirm = "3/5"`): whether the target
    /// counts as up after this probe, stored as `probe_success_confirmed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_success: Option<bool>,
}

/// One alert inside a notification (Alertmanager's webhook v4 fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationAlert {
    /// "firing" or "resolved".
    pub status: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// A group of alerts for one receiver, as Alertmanager's webhook v4 sends
/// it (the JSON field names are the webhook's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<NotificationAlert>,
    pub group_labels: std::collections::BTreeMap<String, String>,
    pub common_labels: std::collections::BTreeMap<String, String>,
    pub common_annotations: std::collections::BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u32,
}

/// What a notifier plugin reported after delivering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub remote_id: Option<String>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_targets_are_not_shown() {
        assert_eq!(
            shown_target("postgres://app:s3cret@db:5432/sales?sslmode=disable"),
            "postgres://app:xxxxx@db:5432/sales?sslmode=disable"
        );
        assert_eq!(
            shown_target("redis://:pw@cache:6379"),
            "redis://:xxxxx@cache:6379"
        );
        assert_eq!(
            shown_target("https://user@example.com/a@b"),
            "https://user@example.com/a@b"
        );
        assert_eq!(
            shown_target("http://example.com/x:y@z"),
            "http://example.com/x:y@z"
        );
        assert_eq!(shown_target("127.0.0.1:6379"), "127.0.0.1:6379");
    }

    #[test]
    fn icmp_grants_read_from_toml_and_from_records_that_predate_them() {
        // A job's `[jobs.grants]` table.
        let grants: Grants = toml::from_str("icmp = [\"{target}\", \"10.0.0.1\"]\n").unwrap();
        assert_eq!(grants.icmp, ["{target}", "10.0.0.1"]);
        assert!(!grants.is_empty());
        // Plugin records stored before lookout:plugin@0.2.0 have no `icmp`.
        let old: Grants =
            serde_json::from_str(r#"{"http":[],"tcp":["{target}"],"udp":[],"files":[],"env":[]}"#)
                .unwrap();
        assert!(old.icmp.is_empty());
        assert!(toml::from_str::<Grants>("ping = [\"x\"]\n").is_err());
    }

    #[test]
    fn icmp_grants_merge_and_show() {
        let install = Grants {
            icmp: vec!["{target}".into()],
            ..Grants::default()
        };
        let job = Grants {
            icmp: vec!["{target}".into(), "192.0.2.1".into()],
            ..Grants::default()
        };
        assert_eq!(install.union(&job).icmp, ["{target}", "192.0.2.1"]);
        assert_eq!(install.describe_lines(), ["icmp: {target}"]);
    }

    #[test]
    fn statfs_grants_read_merge_and_show() {
        let job: Grants = toml::from_str("statfs = [\"/srv\", \"*\"]\n").unwrap();
        assert_eq!(job.statfs, ["/srv", "*"]);
        assert!(!job.is_empty());
        // Records stored before the `statfs` capability have none.
        let old: Grants = serde_json::from_str(r#"{"files":["/proc"],"icmp":[]}"#).unwrap();
        assert!(old.statfs.is_empty());
        let install = Grants {
            statfs: vec!["*".into()],
            ..Grants::default()
        };
        assert_eq!(install.union(&job).statfs, ["*", "/srv"]);
        assert_eq!(install.describe_lines(), ["statfs: *"]);
    }
}
