//! The host's own figures, served at `/metrics` in Prometheus text format.
//!
//! Each notable event is a method here ([`Telemetry::invocation_finished`]
//! …) that both counts and logs, so the metric and the log line of one
//! event cannot drift apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::model::{InvocationRecord, Outcome};

/// Upper bounds of the invocation-duration histogram, in seconds: from a
/// trivial plugin (~20 µs) to the maximum deadline.
const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if v <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Default)]
struct Figures {
    invocations: BTreeMap<(String, String, &'static str), u64>,
    failures: BTreeMap<(String, String), u64>,
    durations: BTreeMap<String, Histogram>,
    traps: BTreeMap<String, u64>,
    limit_hits: BTreeMap<(String, &'static str), u64>,
    skipped_ticks: BTreeMap<String, u64>,
    storage_errors: u64,
    backoff: BTreeMap<(String, String), bool>,
    /// (receiver, integration) → notifications delivered.
    notifications: BTreeMap<(String, String), u64>,
    /// (receiver, integration, reason) → failed delivery attempts.
    notification_failures: BTreeMap<(String, String, String), u64>,
    /// (receiver, integration) → notifications given up.
    dead_letters: BTreeMap<(String, String), u64>,
    /// Integration → time of each delivery attempt.
    notification_latency: BTreeMap<String, Histogram>,
}

/// What `/metrics` reads from elsewhere at scrape time.
pub struct Gauges {
    pub plugins_installed: usize,
    /// Notifications queued in the outbox, due or waiting to retry.
    pub outbox_depth: usize,
}

/// Counters and histograms of everything the host does.
pub struct Telemetry {
    figures: Mutex<Figures>,
    started_unix: f64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Telemetry {
            figures: Mutex::new(Figures::default()),
            started_unix,
        }
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        // A panic while holding the lock leaves counters, not invariants.
        self.figures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An invocation finished and its result is stored.
    pub fn invocation_finished(
        &self,
        record: &InvocationRecord,
        kind: Option<crate::model::FailureKind>,
    ) {
        let outcome = match record.outcome {
            Outcome::Success => "success",
            Outcome::TargetFailure => "target_failure",
            Outcome::PluginFailure => "plugin_failure",
        };
        let mut f = self.figures();
        *f.invocations
            .entry((record.plugin.clone(), record.job.clone(), outcome))
            .or_default() += 1;
        f.durations
            .entry(record.plugin.clone())
            .or_default()
            .observe(record.duration_seconds);
        if let Some(reason) = &record.failure_reason {
            *f.failures
                .entry((record.plugin.clone(), reason.clone()))
                .or_default() += 1;
        }
        if let Some(kind) = kind {
            use crate::model::FailureKind as K;
            match kind {
                K::Trap => *f.traps.entry(record.plugin.clone()).or_default() += 1,
                K::Deadline | K::MemoryLimit | K::StackOverflow | K::OutputLimit => {
                    *f.limit_hits
                        .entry((record.plugin.clone(), kind.as_str()))
                        .or_default() += 1
                }
                _ => {}
            }
        }
        drop(f);
        match record.outcome {
            Outcome::PluginFailure => tracing::warn!(
                plugin = %record.plugin, job = %record.job, target = %record.target,
                reason = record.failure_reason.as_deref().unwrap_or(""), "invocation failed: {}", record.message
            ),
            // Network denials are logged by the sandbox as they happen; a file
            // or environment variable that was not granted never reaches the
            // host (it does not exist for the plugin), so the plugin's own
            // report is where the host learns of the attempt.
            Outcome::TargetFailure if record.failure_reason.as_deref() == Some("denied") => {
                tracing::warn!(
                    plugin = %record.plugin, job = %record.job, target = %record.target,
                    "capability denied: {}", record.message
                )
            }
            Outcome::TargetFailure => tracing::info!(
                plugin = %record.plugin, job = %record.job, target = %record.target,
                reason = record.failure_reason.as_deref().unwrap_or(""), "target unhealthy: {}", record.message
            ),
            Outcome::Success => tracing::debug!(
                plugin = %record.plugin, job = %record.job, target = %record.target,
                duration = record.duration_seconds, "invocation succeeded"
            ),
        }
    }

    /// A tick passed while the previous invocation was still running or no
    /// invocation slot was free.
    pub fn tick_skipped(&self, job: &str, target: &str, why: &str) {
        *self
            .figures()
            .skipped_ticks
            .entry(job.to_string())
            .or_default() += 1;
        tracing::warn!(job, target, "skipped a scheduled run: {why}");
    }

    /// A result could not be committed; it is not acknowledged anywhere.
    pub fn storage_failed(&self, job: &str, target: &str, error: &str) {
        self.figures().storage_errors += 1;
        tracing::error!(job, target, error, "result not stored");
    }

    /// A job's target entered or left back-off.
    pub fn backoff_changed(
        &self,
        job: &str,
        target: &str,
        backing_off: bool,
        delay: Duration,
        failures: u32,
    ) {
        self.figures()
            .backoff
            .insert((job.to_string(), target.to_string()), backing_off);
        if backing_off {
            tracing::warn!(job, target, failures, delay = ?delay, "plugin keeps failing; backing off");
        } else {
            tracing::info!(job, target, "plugin recovered; back-off cleared");
        }
    }

    /// A notification delivery attempt ended: `Ok` delivered, `Err(reason)`
    /// failed (`plugin_transient`, `deadline`, `host` …) and `dead` when that
    /// was the last try.
    pub fn notification_attempt(
        &self,
        receiver: &str,
        integration: &str,
        took: Duration,
        outcome: Result<(), (&str, bool)>,
    ) {
        let mut f = self.figures();
        f.notification_latency
            .entry(integration.to_string())
            .or_default()
            .observe(took.as_secs_f64());
        let key = (receiver.to_string(), integration.to_string());
        match outcome {
            Ok(()) => *f.notifications.entry(key).or_default() += 1,
            Err((reason, dead)) => {
                *f.notification_failures
                    .entry((key.0.clone(), key.1.clone(), reason.to_string()))
                    .or_default() += 1;
                if dead {
                    *f.dead_letters.entry(key).or_default() += 1;
                }
            }
        }
    }

    /// The metrics in Prometheus text exposition format 0.0.4.
    pub fn render(&self, gauges: &Gauges) -> String {
        let f = self.figures();
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "lookout_build_info",
            "gauge",
            "lookout's version.",
        );
        let _ = writeln!(
            out,
            "lookout_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        family(
            &mut out,
            "lookout_start_time_seconds",
            "gauge",
            "Unix time lookout started.",
        );
        let _ = writeln!(out, "lookout_start_time_seconds {}", self.started_unix);
        family(
            &mut out,
            "lookout_plugins_installed",
            "gauge",
            "Plugins in the registry.",
        );
        let _ = writeln!(
            out,
            "lookout_plugins_installed {}",
            gauges.plugins_installed
        );

        family(
            &mut out,
            "lookout_invocations_total",
            "counter",
            "Plugin invocations by outcome (success, target_failure, plugin_failure).",
        );
        for ((plugin, job, outcome), n) in &f.invocations {
            let _ = writeln!(
                out,
                "lookout_invocations_total{{plugin=\"{}\",job=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(plugin),
                esc(job)
            );
        }
        family(
            &mut out,
            "lookout_invocation_failures_total",
            "counter",
            "Failed invocations by plugin and reason (probe reasons and host reasons).",
        );
        for ((plugin, reason), n) in &f.failures {
            let _ = writeln!(
                out,
                "lookout_invocation_failures_total{{plugin=\"{}\",reason=\"{}\"}} {n}",
                esc(plugin),
                esc(reason)
            );
        }
        family(
            &mut out,
            "lookout_invocation_duration_seconds",
            "histogram",
            "Wall time of invocations, instantiation included.",
        );
        render_histograms(
            &mut out,
            "lookout_invocation_duration_seconds",
            "plugin",
            &f.durations,
        );
        family(
            &mut out,
            "lookout_plugin_traps_total",
            "counter",
            "Invocations that ended in a trap (panic, unreachable, bad memory access).",
        );
        for (plugin, n) in &f.traps {
            let _ = writeln!(
                out,
                "lookout_plugin_traps_total{{plugin=\"{}\"}} {n}",
                esc(plugin)
            );
        }
        family(
            &mut out,
            "lookout_plugin_limit_hits_total",
            "counter",
            "Invocations stopped by a sandbox limit (deadline, memory_limit, stack_overflow, output_limit).",
        );
        for ((plugin, limit), n) in &f.limit_hits {
            let _ = writeln!(
                out,
                "lookout_plugin_limit_hits_total{{plugin=\"{}\",limit=\"{limit}\"}} {n}",
                esc(plugin)
            );
        }
        family(
            &mut out,
            "lookout_scheduler_skipped_ticks_total",
            "counter",
            "Scheduled runs skipped because the previous run or every slot was busy.",
        );
        for (job, n) in &f.skipped_ticks {
            let _ = writeln!(
                out,
                "lookout_scheduler_skipped_ticks_total{{job=\"{}\"}} {n}",
                esc(job)
            );
        }
        family(
            &mut out,
            "lookout_job_backoff",
            "gauge",
            "1 while a job's target is backed off after repeated plugin failures.",
        );
        for ((job, target), on) in &f.backoff {
            let _ = writeln!(
                out,
                "lookout_job_backoff{{job=\"{}\",target=\"{}\"}} {}",
                esc(job),
                esc(target),
                u8::from(*on)
            );
        }
        family(
            &mut out,
            "lookout_storage_write_errors_total",
            "counter",
            "Results that could not be committed to the database.",
        );
        let _ = writeln!(
            out,
            "lookout_storage_write_errors_total {}",
            f.storage_errors
        );
        family(
            &mut out,
            "lookout_notifications_total",
            "counter",
            "Notifications delivered, by receiver and integration.",
        );
        for ((receiver, integration), n) in &f.notifications {
            let _ = writeln!(
                out,
                "lookout_notifications_total{{receiver=\"{}\",integration=\"{}\"}} {n}",
                esc(receiver),
                esc(integration)
            );
        }
        family(
            &mut out,
            "lookout_notifications_failed_total",
            "counter",
            "Failed delivery attempts, by receiver, integration and reason.",
        );
        for ((receiver, integration, reason), n) in &f.notification_failures {
            let _ = writeln!(
                out,
                "lookout_notifications_failed_total{{receiver=\"{}\",integration=\"{}\",reason=\"{}\"}} {n}",
                esc(receiver),
                esc(integration),
                esc(reason)
            );
        }
        family(
            &mut out,
            "lookout_notifications_dead_letters_total",
            "counter",
            "Notifications given up (permanent error or retries exhausted), now in the dead-letter list.",
        );
        for ((receiver, integration), n) in &f.dead_letters {
            let _ = writeln!(
                out,
                "lookout_notifications_dead_letters_total{{receiver=\"{}\",integration=\"{}\"}} {n}",
                esc(receiver),
                esc(integration)
            );
        }
        family(
            &mut out,
            "lookout_notification_latency_seconds",
            "histogram",
            "Time of each delivery attempt through a notifier plugin.",
        );
        render_histograms(
            &mut out,
            "lookout_notification_latency_seconds",
            "integration",
            &f.notification_latency,
        );
        family(
            &mut out,
            "lookout_notification_outbox_depth",
            "gauge",
            "Notifications in the durable outbox, due or waiting to retry.",
        );
        let _ = writeln!(
            out,
            "lookout_notification_outbox_depth {}",
            gauges.outbox_depth
        );
        out
    }
}

/// The series of a histogram family, one histogram per value of `label`.
fn render_histograms(
    out: &mut String,
    name: &str,
    label: &str,
    histograms: &BTreeMap<String, Histogram>,
) {
    for (value, h) in histograms {
        let v = esc(value);
        for (bound, count) in DURATION_BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{v}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{v}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{{label}=\"{v}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{v}\"}} {}", h.count);
    }
}

/// Escapes a label value for the text format.
fn esc(v: &str) -> std::borrow::Cow<'_, str> {
    lookout_expfmt::escape_label_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FailureKind;

    #[test]
    fn render_counts_outcomes_reasons_and_limits() {
        let t = Telemetry::new();
        let mut r = InvocationRecord {
            job: "web".into(),
            target: "http://x\"y".into(),
            plugin: "http".into(),
            started_ms: 0,
            duration_seconds: 0.003,
            success: false,
            outcome: Outcome::PluginFailure,
            failure_reason: Some("deadline".into()),
            message: String::new(),
            samples: vec![],
            confirmed_success: None,
        };
        t.invocation_finished(&r, Some(FailureKind::Deadline));
        r.outcome = Outcome::Success;
        r.failure_reason = None;
        t.invocation_finished(&r, None);
        t.backoff_changed("web", "a\"b", true, Duration::from_secs(2), 3);
        let text = t.render(&Gauges {
            plugins_installed: 2,
            outbox_depth: 0,
        });
        assert!(text.contains(
            "lookout_invocations_total{plugin=\"http\",job=\"web\",outcome=\"plugin_failure\"} 1"
        ));
        assert!(text.contains(
            "lookout_invocations_total{plugin=\"http\",job=\"web\",outcome=\"success\"} 1"
        ));
        assert!(
            text.contains(
                "lookout_invocation_failures_total{plugin=\"http\",reason=\"deadline\"} 1"
            )
        );
        assert!(
            text.contains("lookout_plugin_limit_hits_total{plugin=\"http\",limit=\"deadline\"} 1")
        );
        assert!(text.contains(
            "lookout_invocation_duration_seconds_bucket{plugin=\"http\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "lookout_invocation_duration_seconds_bucket{plugin=\"http\",le=\"0.001\"} 0"
        ));
        assert!(text.contains("lookout_job_backoff{job=\"web\",target=\"a\\\"b\"} 1"));
        assert!(text.contains("lookout_plugins_installed 2"));
    }
}
