//! What a plugin hands back: samples, probe reports, failure reasons and
//! plugin errors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::bindings::probe::lookout::plugin::types as wit;

/// Name of the sample the SDK adds to every probe report: 1 on success, 0 on
/// failure (blackbox_exporter's `probe_success`).
pub const PROBE_SUCCESS: &str = "probe_success";

/// Name of the sample the SDK adds to every probe report: the probe's
/// duration in seconds (blackbox_exporter's `probe_duration_seconds`).
pub const PROBE_DURATION_SECONDS: &str = "probe_duration_seconds";

/// Why a probe did not succeed, in a form the host can route on.
///
/// Mirrors the WIT enum `failure-reason`; [`as_str`](Self::as_str) gives the
/// WIT name (`"dns"`, `"connect"` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The target's name could not be resolved.
    Dns,
    /// A connection could not be established (refused, unreachable, reset).
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The target did not answer within the probe's timeout.
    Timeout,
    /// The target answered with a status outside the accepted range.
    Status,
    /// The response body failed a check.
    Body,
    /// A response header failed a check.
    Header,
    /// The target spoke, but not the expected protocol.
    Protocol,
    /// The sandbox refused the access (no grant for that host or port).
    Denied,
    /// The plugin's configuration is invalid for this target.
    Config,
    /// Anything else; see the message.
    Other,
}

impl FailureReason {
    /// Every reason, in WIT order.
    pub const ALL: [FailureReason; 11] = [
        Self::Dns,
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::Status,
        Self::Body,
        Self::Header,
        Self::Protocol,
        Self::Denied,
        Self::Config,
        Self::Other,
    ];

    /// The reason's WIT name: `"dns"`, `"connect"`, `"tls"`, `"timeout"`,
    /// `"status"`, `"body"`, `"header"`, `"protocol"`, `"denied"`, `"config"`
    /// or `"other"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Status => "status",
            Self::Body => "body",
            Self::Header => "header",
            Self::Protocol => "protocol",
            Self::Denied => "denied",
            Self::Config => "config",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not the WIT name of a [`FailureReason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFailureReason(pub String);

impl fmt::Display for UnknownFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown failure reason `{}`", self.0)
    }
}

impl std::error::Error for UnknownFailureReason {}

impl FromStr for FailureReason {
    type Err = UnknownFailureReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| UnknownFailureReason(s.to_owned()))
    }
}

impl From<FailureReason> for wit::FailureReason {
    fn from(reason: FailureReason) -> Self {
        match reason {
            FailureReason::Dns => Self::Dns,
            FailureReason::Connect => Self::Connect,
            FailureReason::Tls => Self::Tls,
            FailureReason::Timeout => Self::Timeout,
            FailureReason::Status => Self::Status,
            FailureReason::Body => Self::Body,
            FailureReason::Header => Self::Header,
            FailureReason::Protocol => Self::Protocol,
            FailureReason::Denied => Self::Denied,
            FailureReason::Config => Self::Config,
            FailureReason::Other => Self::Other,
        }
    }
}

/// One measurement, Prometheus style.
///
/// ```
/// use lookout_plugin_sdk::Sample;
///
/// let sample = Sample::new("probe_http_status_code", 200).label("phase", "final");
/// assert_eq!(sample.labels, [("phase".to_owned(), "final".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, `[a-zA-Z_][a-zA-Z0-9_]*` (`probe_duration_seconds`).
    pub name: String,
    /// Label pairs, in the order they were added.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch; `None` lets the host stamp the
    /// sample with the invocation's start time.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// A sample without labels, stamped by the host.
    pub fn new(name: impl Into<String>, value: impl Into<f64>) -> Self {
        Self {
            name: name.into(),
            labels: Vec::new(),
            value: value.into(),
            timestamp_ms: None,
        }
    }

    /// Adds the label `name="value"`.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// Stamps the sample with its own time (milliseconds since the Unix epoch).
    pub fn timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

impl From<Sample> for wit::Sample {
    fn from(sample: Sample) -> Self {
        Self {
            name: sample.name,
            labels: sample.labels,
            value: sample.value,
            timestamp_ms: sample.timestamp_ms,
        }
    }
}

/// What a probe found out about one target.
///
/// Build one with [`success`](Self::success) or [`failure`](Self::failure),
/// then add samples. When the report reaches the host the SDK adds
/// `probe_success` (1 or 0) and `probe_duration_seconds` unless the plugin
/// added samples of those names itself. When no duration was given
/// ([`failure`](Self::failure) sets none) the SDK uses the time the plugin's
/// `probe` function took.
///
/// ```
/// use std::time::Duration;
/// use lookout_plugin_sdk::{FailureReason, ProbeReport};
///
/// let up = ProbeReport::success(Duration::from_millis(12))
///     .with_sample("probe_http_status_code", 200)
///     .with_labeled_sample("probe_http_duration_seconds", &[("phase", "connect")], 0.004);
/// assert!(up.success);
///
/// let down = ProbeReport::failure(FailureReason::Status, "status 500 not in 200-299");
/// assert_eq!(down.failure_reason, Some(FailureReason::Status));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub success: bool,
    /// Time the check took; `None` means "the time `probe` took".
    pub duration: Option<Duration>,
    /// Why the probe failed; ignored when `success` is true, `Other` when a
    /// failed report has none.
    pub failure_reason: Option<FailureReason>,
    /// A short human-readable explanation, empty when there is nothing to say.
    pub message: String,
    pub samples: Vec<Sample>,
}

impl ProbeReport {
    /// The target is healthy; the check took `duration`.
    pub fn success(duration: Duration) -> Self {
        Self {
            success: true,
            duration: Some(duration),
            failure_reason: None,
            message: String::new(),
            samples: Vec::new(),
        }
    }

    /// The target is not healthy, for `reason`; `message` says what happened
    /// ("status 500 not in 200-299", "connection refused").
    pub fn failure(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            success: false,
            duration: None,
            failure_reason: Some(reason),
            message: message.into(),
            samples: Vec::new(),
        }
    }

    /// Sets the time the check took (overrides the measured call time).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the human-readable message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds a sample without labels.
    pub fn with_sample(self, name: impl Into<String>, value: impl Into<f64>) -> Self {
        self.with(Sample::new(name, value))
    }

    /// Adds a sample with labels.
    pub fn with_labeled_sample(
        self,
        name: impl Into<String>,
        labels: &[(&str, &str)],
        value: impl Into<f64>,
    ) -> Self {
        let sample = labels
            .iter()
            .fold(Sample::new(name, value), |sample, (k, v)| {
                sample.label(*k, *v)
            });
        self.with(sample)
    }

    /// Adds a sample built by hand.
    pub fn with(mut self, sample: Sample) -> Self {
        self.samples.push(sample);
        self
    }

    /// The report as the WIT record, with the standard samples added.
    /// `elapsed` is used when the report carries no duration.
    pub(crate) fn into_wit(self, elapsed: Duration) -> wit::ProbeResult {
        let duration = self.duration.unwrap_or(elapsed).as_secs_f64();
        let mut samples = self.samples;
        let has = |samples: &[Sample], name: &str| samples.iter().any(|s| s.name == name);
        if !has(&samples, PROBE_SUCCESS) {
            samples.push(Sample::new(PROBE_SUCCESS, u8::from(self.success)));
        }
        if !has(&samples, PROBE_DURATION_SECONDS) {
            samples.push(Sample::new(PROBE_DURATION_SECONDS, duration));
        }
        wit::ProbeResult {
            success: self.success,
            duration_seconds: duration,
            failure_reason: if self.success {
                None
            } else {
                Some(self.failure_reason.unwrap_or(FailureReason::Other).into())
            },
            message: self.message,
            samples: samples.into_iter().map(Into::into).collect(),
        }
    }
}

/// The invocation itself went wrong, as opposed to a probe that ran and found
/// the target down (that is a [`ProbeReport`] with `success: false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The configuration handed to the plugin is invalid. Not retried.
    Config(String),
    /// A passing problem; the scheduler tries again on the next tick.
    Transient(String),
    /// The plugin cannot work in this setting. Backed off.
    Permanent(String),
}

impl PluginError {
    /// [`PluginError::Config`] from anything printable.
    pub fn config(message: impl fmt::Display) -> Self {
        Self::Config(message.to_string())
    }

    /// [`PluginError::Transient`] from anything printable.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient(message.to_string())
    }

    /// [`PluginError::Permanent`] from anything printable.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::Permanent(message.to_string())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(message) => write!(f, "invalid configuration: {message}"),
            Self::Transient(message) => write!(f, "transient error: {message}"),
            Self::Permanent(message) => write!(f, "permanent error: {message}"),
        }
    }
}

impl std::error::Error for PluginError {}

impl From<PluginError> for wit::PluginError {
    fn from(error: PluginError) -> Self {
        match error {
            PluginError::Config(message) => Self::Config(message),
            PluginError::Transient(message) => Self::Transient(message),
            PluginError::Permanent(message) => Self::Permanent(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reason_names_match_the_wit_enum() {
        let names: Vec<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "dns", "connect", "tls", "timeout", "status", "body", "header", "protocol",
                "denied", "config", "other"
            ]
        );
        for reason in FailureReason::ALL {
            assert_eq!(reason.as_str().parse::<FailureReason>(), Ok(reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert!("DNS".parse::<FailureReason>().is_err());
    }

    #[test]
    fn standard_samples_are_added_once() {
        let result = ProbeReport::success(Duration::from_millis(250))
            .with_sample("probe_http_status_code", 200)
            .into_wit(Duration::from_secs(9));
        let names: Vec<_> = result.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "probe_http_status_code",
                PROBE_SUCCESS,
                PROBE_DURATION_SECONDS
            ]
        );
        assert_eq!(result.samples[1].value, 1.0);
        assert_eq!(result.samples[2].value, 0.25);
        assert_eq!(result.duration_seconds, 0.25);
        assert!(result.failure_reason.is_none());
    }

    #[test]
    fn samples_the_plugin_set_itself_are_kept() {
        let result = ProbeReport::success(Duration::ZERO)
            .with_sample(PROBE_SUCCESS, 0)
            .with_sample(PROBE_DURATION_SECONDS, 3)
            .into_wit(Duration::ZERO);
        assert_eq!(result.samples.len(), 2);
        assert_eq!(result.samples[0].value, 0.0);
        assert_eq!(result.samples[1].value, 3.0);
    }

    #[test]
    fn failure_without_duration_uses_the_measured_time() {
        let result = ProbeReport::failure(FailureReason::Connect, "connection refused")
            .into_wit(Duration::from_millis(1500));
        assert!(!result.success);
        assert_eq!(result.duration_seconds, 1.5);
        assert!(matches!(
            result.failure_reason,
            Some(wit::FailureReason::Connect)
        ));
        assert_eq!(result.message, "connection refused");
        assert_eq!(result.samples[0].name, PROBE_SUCCESS);
        assert_eq!(result.samples[0].value, 0.0);
    }

    #[test]
    fn failure_reason_defaults_to_other_and_is_dropped_on_success() {
        let mut report = ProbeReport::failure(FailureReason::Dns, "x");
        report.failure_reason = None;
        let failed = report.clone().into_wit(Duration::ZERO);
        assert!(matches!(
            failed.failure_reason,
            Some(wit::FailureReason::Other)
        ));
        report.success = true;
        report.failure_reason = Some(FailureReason::Dns);
        assert!(report.into_wit(Duration::ZERO).failure_reason.is_none());
    }

    #[test]
    fn labeled_samples_keep_label_order() {
        let report = ProbeReport::success(Duration::ZERO).with_labeled_sample(
            "m",
            &[("b", "2"), ("a", "1")],
            1.5,
        );
        assert_eq!(
            report.samples[0].labels,
            [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned())
            ]
        );
    }
}
