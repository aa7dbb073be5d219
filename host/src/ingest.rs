//! Where a finished invocation goes: its result record into [`Storage`],
//! its samples into the time-series engine as series labelled exactly as
//! Prometheus would store them had it scraped the same exporter.
//!
//! For each invocation of job `j` against target `t`:
//! - every plugin sample gets `job="j"` and `instance="t"`; a sample that
//!   already carries `job` or `instance` keeps it as `exported_job` /
//!   `exported_instance` (Prometheus' `honor_labels: false`);
//! - `up` is 1 when the plugin ran (a probe that found its target down still
//!   ran), 0 when the invocation failed — then no plugin samples are written;
//! - `scrape_duration_seconds` and `scrape_samples_scraped` as Prometheus
//!   writes them;
//! - a probe that found its target down adds `probe_failure_reason{reason}`
//!   1 (`dns`, `connect`, `tls`, `timeout`, `status` …), which goes stale
//!   with the next success; a job with N-of-M confirmation adds
//!   `probe_success_confirmed` next to the raw `probe_success`;
//! - series the previous invocation of the same job and target wrote and
//!   this one did not get a staleness marker, so they end at once;
//! - a sample with its own timestamp (an exporter exposing one) is stored
//!   at that time and, as in Prometheus, is not subject to staleness.

use std::sync::Arc;

use lookout_tsdb::{Labels, Tsdb};

use crate::model::{InvocationRecord, Outcome};
use crate::storage::{ResultSink, Storage, StorageError};

/// Series stamped with the invocation's time: labels and value.
pub type ScrapeRows = Vec<(Labels, f64)>;
/// Series carrying their own timestamp: labels, ms, value.
pub type TimestampedRows = Vec<(Labels, i64, f64)>;

/// What a job adds to its targets' series, from its configuration.
#[derive(Clone, Debug, Default)]
pub struct SeriesOptions {
    /// Target labels besides `job` and `instance` (static_configs labels).
    pub target_labels: Vec<(String, String)>,
    /// Prometheus' `honor_labels`: scraped labels win over target labels.
    pub honor_labels: bool,
}

/// Stores results and their series; the scheduler's sink in `serve`.
pub struct ResultWriter {
    pub storage: Arc<Storage>,
    pub tsdb: Arc<Tsdb>,
}

impl ResultSink for ResultWriter {
    async fn record(
        &self,
        record: InvocationRecord,
        options: &SeriesOptions,
    ) -> Result<(), StorageError> {
        let (scraped, timestamped) = series_rows(&record, options);
        let key = format!("{}\u{0}{}", record.job, record.target);
        let t = record.started_ms;
        self.storage.record(record).await?;
        let tsdb = self.tsdb.clone();
        tokio::task::spawn_blocking(move || {
            tsdb.append_scrape(&key, t, &scraped)?;
            if !timestamped.is_empty() {
                tsdb.append(&timestamped)?;
            }
            Ok::<_, lookout_tsdb::TsdbError>(())
        })
        .await
        .map_err(|e| StorageError::Database(e.to_string()))?
        .map_err(|e| StorageError::Database(format!("time series: {e}")))?;
        Ok(())
    }
}

/// The series one invocation produces: those stamped with the invocation's
/// start, and those carrying their own timestamp.
pub fn series_rows(
    record: &InvocationRecord,
    options: &SeriesOptions,
) -> (ScrapeRows, TimestampedRows) {
    let ran = record.outcome != Outcome::PluginFailure;
    let mut target: Labels = options.target_labels.clone();
    target.retain(|(k, _)| k != "job" && k != "instance");
    target.push(("instance".to_string(), record.target.clone()));
    target.push(("job".to_string(), record.job.clone()));
    target.sort();

    let mut rows = Vec::with_capacity(record.samples.len() + 3);
    let mut timestamped = Vec::new();
    if ran {
        for sample in &record.samples {
            let labels = merge_labels(&sample.name, &sample.labels, &target, options.honor_labels);
            match sample.timestamp_ms {
                Some(t) => timestamped.push((labels, t, sample.value)),
                None => rows.push((labels, sample.value)),
            }
        }
    }
    let own = |name: &str| -> Labels { merge_labels(name, &[], &target, false) };
    rows.push((own("up"), if ran { 1.0 } else { 0.0 }));
    if record.outcome == Outcome::TargetFailure
        && let Some(reason) = &record.failure_reason
    {
        let reason = [("reason".to_string(), reason.clone())];
        rows.push((
            merge_labels("probe_failure_reason", &reason, &target, false),
            1.0,
        ));
    }
    if let Some(confirmed) = record.confirmed_success {
        rows.push((
            own("probe_success_confirmed"),
            f64::from(u8::from(confirmed)),
        ));
    }
    rows.push((own("scrape_duration_seconds"), record.duration_seconds));
    rows.push((
        own("scrape_samples_scraped"),
        if ran {
            record.samples.len() as f64
        } else {
            0.0
        },
    ));
    (rows, timestamped)
}

/// A scraped sample's labels combined with the target's, as Prometheus'
/// scrape loop does: on a clash the target wins and the scraped value is
/// kept as `exported_<name>` (or, with `honor_labels`, the scraped value
/// wins); empty values are dropped; a repeated scraped label keeps its first value.
fn merge_labels(
    name: &str,
    scraped: &[(String, String)],
    target: &[(String, String)],
    honor_labels: bool,
) -> Labels {
    let mut labels: Labels = Vec::with_capacity(scraped.len() + target.len() + 1);
    labels.push(("__name__".to_string(), name.to_string()));
    for (k, v) in scraped {
        if k != "__name__" && !labels.iter().any(|(n, _)| n == k) {
            labels.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in target {
        match labels.iter().position(|(n, _)| n == k) {
            None => labels.push((k.clone(), v.clone())),
            Some(_) if honor_labels => {}
            Some(i) => {
                let mut exported = format!("exported_{k}");
                while labels.iter().any(|(n, _)| *n == exported) {
                    exported = format!("exported_{exported}");
                }
                labels[i].0 = exported;
                labels.push((k.clone(), v.clone()));
            }
        }
    }
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;

    fn record(outcome: Outcome, samples: Vec<Sample>) -> InvocationRecord {
        InvocationRecord {
            job: "blackbox".into(),
            target: "http://a/".into(),
            plugin: "http".into(),
            started_ms: 1000,
            duration_seconds: 0.25,
            success: outcome == Outcome::Success,
            outcome,
            failure_reason: None,
            message: String::new(),
            samples,
            confirmed_success: None,
        }
    }

    fn find<'a>(rows: &'a [(Labels, f64)], name: &str) -> Option<&'a (Labels, f64)> {
        rows.iter()
            .find(|(l, _)| l.iter().any(|(k, v)| k == "__name__" && v == name))
    }

    #[test]
    fn samples_get_job_and_instance_like_a_prometheus_scrape() {
        let sample = Sample {
            name: "probe_success".into(),
            labels: vec![
                ("phase".into(), "connect".into()),
                ("job".into(), "inner".into()),
            ],
            value: 1.0,
            timestamp_ms: None,
        };
        let (rows, _) = series_rows(
            &record(Outcome::Success, vec![sample]),
            &SeriesOptions::default(),
        );
        let (labels, value) = find(&rows, "probe_success").unwrap();
        assert_eq!(*value, 1.0);
        let expected: Labels = [
            ("__name__", "probe_success"),
            ("exported_job", "inner"),
            ("instance", "http://a/"),
            ("job", "blackbox"),
            ("phase", "connect"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, &expected);
        assert_eq!(find(&rows, "up").unwrap().1, 1.0);
        assert_eq!(find(&rows, "scrape_samples_scraped").unwrap().1, 1.0);
        assert_eq!(find(&rows, "scrape_duration_seconds").unwrap().1, 0.25);
    }

    #[test]
    fn a_target_failure_is_up_and_a_plugin_failure_is_down() {
        let s = Sample {
            name: "probe_success".into(),
            labels: vec![],
            value: 0.0,
            timestamp_ms: None,
        };
        let (rows, _) = series_rows(
            &record(Outcome::TargetFailure, vec![s.clone()]),
            &SeriesOptions::default(),
        );
        assert_eq!(find(&rows, "up").unwrap().1, 1.0);
        assert!(find(&rows, "probe_success").is_some());
        let (rows, _) = series_rows(
            &record(Outcome::PluginFailure, vec![s]),
            &SeriesOptions::default(),
        );
        assert_eq!(find(&rows, "up").unwrap().1, 0.0);
        assert!(
            find(&rows, "probe_success").is_none(),
            "a failed invocation writes no plugin samples"
        );
    }

    #[test]
    fn target_labels_and_honor_labels_follow_prometheus() {
        let s = Sample {
            name: "m".into(),
            labels: vec![
                ("env".into(), "scraped".into()),
                ("empty".into(), "".into()),
            ],
            value: 1.0,
            timestamp_ms: None,
        };
        let options = SeriesOptions {
            target_labels: vec![("env".into(), "prod".into())],
            honor_labels: false,
        };
        let (rows, _) = series_rows(&record(Outcome::Success, vec![s.clone()]), &options);
        let (labels, _) = find(&rows, "m").unwrap();
        assert!(labels.contains(&("env".into(), "prod".into())));
        assert!(labels.contains(&("exported_env".into(), "scraped".into())));
        assert!(
            !labels.iter().any(|(k, _)| k == "empty"),
            "empty values are dropped"
        );
        let (up, _) = find(&rows, "up").unwrap();
        assert!(
            up.contains(&("env".into(), "prod".into())),
            "target labels reach up too"
        );
        let honored = SeriesOptions {
            honor_labels: true,
            ..options
        };
        let (rows, _) = series_rows(&record(Outcome::Success, vec![s]), &honored);
        let (labels, _) = find(&rows, "m").unwrap();
        assert!(labels.contains(&("env".into(), "scraped".into())));
        assert!(!labels.iter().any(|(k, _)| k == "exported_env"));
    }

    #[test]
    fn exported_timestamps_are_kept() {
        let s = Sample {
            name: "x".into(),
            labels: vec![],
            value: 2.0,
            timestamp_ms: Some(42),
        };
        let (rows, timestamped) = series_rows(
            &record(Outcome::Success, vec![s]),
            &SeriesOptions::default(),
        );
        assert!(find(&rows, "x").is_none());
        assert_eq!(timestamped.len(), 1);
        assert_eq!((timestamped[0].1, timestamped[0].2), (42, 2.0));
    }
}
