//! Rule evaluation in `serve`: Prometheus rule files evaluated group by
//! group on their intervals over the time-series engine (lookout-rules does
//! the semantics; this module schedules, stores and serves).
//!
//! Each evaluation writes what the group produced (recorded series,
//! `ALERTS`, `ALERTS_FOR_STATE`, staleness markers) to the tsdb, records
//! alert transitions in the alert history, and commits the group's `for`
//! state to redb so pending and firing alerts survive a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout_rules::{AlertToSend, GroupOptions, GroupState, PersistedGroupState, RestorePolicy};
use tokio::sync::watch;

use crate::query::QueryService;
use crate::storage::{AlertingCommit, HistoryEvent, Storage, now_ms};

/// Where firing and resolved alerts go (the Alertmanager-style dispatcher).
pub trait AlertSink: Send + Sync {
    fn alerts(&self, alerts: Vec<AlertToSend>);
}

/// The loaded rule groups, shared with the API.
#[derive(Default)]
pub struct RuleBoard {
    pub groups: Vec<Arc<Mutex<GroupState>>>,
}

impl RuleBoard {
    /// Runs `f` with every group locked, in file order.
    pub fn with_groups<T>(&self, f: impl FnOnce(&[&GroupState]) -> T) -> T {
        let guards: Vec<_> = self
            .groups
            .iter()
            .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        let refs: Vec<&GroupState> = guards.iter().map(|g| &**g).collect();
        f(&refs)
    }
}

/// Why rule files did not load.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("reading rule file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(lookout_rules::RuleError),
}

/// Parses every rule file; the first problem stops the load.
pub fn load(paths: &[PathBuf], evaluation_interval: Duration) -> Result<RuleBoard, RulesError> {
    let mut board = RuleBoard::default();
    let options = GroupOptions {
        default_interval_ms: evaluation_interval.as_millis() as i64,
        ..GroupOptions::default()
    };
    for path in paths {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: display.clone(),
            source,
        })?;
        let file = lookout_rules::parse_rule_file(&text, &display).map_err(RulesError::Invalid)?;
        for group in file.groups {
            board.groups.push(Arc::new(Mutex::new(GroupState::new(
                group,
                &display,
                options.clone(),
            ))));
        }
    }
    Ok(board)
}

/// Expands `rule_files` entries relative to the configuration's directory;
/// `*` and `?` in the file name match as in Prometheus' globs. A pattern
/// matching nothing yields nothing (as in Prometheus) and a warning.
pub fn resolve_rule_files(
    base: &Path,
    patterns: &[String],
    warnings: &mut Vec<String>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        let full = base.join(pattern);
        let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let found: Vec<PathBuf> = if name.contains(['*', '?']) {
            let dir = full.parent().unwrap_or(base);
            let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard(name, n)))
                .map(|e| e.path())
                .collect();
            matches.sort();
            matches
        } else if full.exists() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        if found.is_empty() {
            warnings.push(format!(
                "rule_files entry {pattern:?} matches no file (looked in {})",
                base.display()
            ));
        }
        out.extend(found);
    }
    out
}

fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn state_key(group: &GroupState) -> String {
    format!("rules\u{0}{}\u{0}{}", group.file(), group.name())
}

/// Restores each group's `for` state from its last committed snapshot,
/// with Prometheus' grace period and outage tolerance.
pub fn restore(board: &RuleBoard, storage: &Storage, grace: Duration, outage_tolerance: Duration) {
    let now = now_ms();
    let policy = RestorePolicy {
        for_grace_period_ms: grace.as_millis() as i64,
        outage_tolerance_ms: outage_tolerance.as_millis() as i64,
    };
    for group in &board.groups {
        let mut group = group.lock().unwrap_or_else(|p| p.into_inner());
        match storage.alerting_state(&state_key(&group)) {
            Ok(Some(bytes)) => match serde_json::from_slice::<PersistedGroupState>(&bytes) {
                Ok(state) => group.restore(&state, now, &policy),
                Err(e) => {
                    tracing::warn!(group = group.name(), error = %e, "ignoring unreadable rule state")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::error!(group = group.name(), error = %e, "reading rule state"),
        }
    }
}

/// Starts one evaluation task per group.
pub fn spawn(
    board: &RuleBoard,
    query: QueryService,
    storage: Arc<Storage>,
    sink: Arc<dyn AlertSink>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    board
        .groups
        .iter()
        .map(|group| {
            let (group, query, storage, sink) =
                (group.clone(), query.clone(), storage.clone(), sink.clone());
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let interval = {
                    let g = group.lock().unwrap_or_else(|p| p.into_inner());
                    Duration::from_millis(g.interval_ms().max(1) as u64)
                };
                loop {
                    // Prometheus' slot: a stable offset per group within the interval.
                    let now = now_ms();
                    let slot = {
                        let g = group.lock().unwrap_or_else(|p| p.into_inner());
                        let ts = g.eval_timestamp(now);
                        if ts <= g.last_evaluation_ms().unwrap_or(i64::MIN) {
                            ts + interval.as_millis() as i64
                        } else {
                            ts
                        }
                    };
                    let wait = Duration::from_millis((slot - now).max(0) as u64);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                    let (group, query, storage, sink) =
                        (group.clone(), query.clone(), storage.clone(), sink.clone());
                    let done = tokio::task::spawn_blocking(move || {
                        evaluate(&group, &query, &storage, &*sink, slot)
                    })
                    .await;
                    if let Err(e) = done {
                        tracing::error!(error = %e, "rule evaluation panicked");
                    }
                }
            })
        })
        .collect()
}

/// One evaluation of one group at `ts`, stored and handed on.
fn evaluate(
    group: &Mutex<GroupState>,
    query: &QueryService,
    storage: &Storage,
    sink: &dyn AlertSink,
    ts: i64,
) {
    let mut group = group.lock().unwrap_or_else(|p| p.into_inner());
    let out = query.eval_group(&mut group, ts);
    for error in &out.errors {
        tracing::warn!(group = group.name(), rule = %error.rule, "rule evaluation failed: {}", error.message);
    }
    if !out.samples_to_write.is_empty() {
        let rows: Vec<(lookout_tsdb::Labels, i64, f64)> = out
            .samples_to_write
            .iter()
            .map(|(labels, v)| (labels.clone(), ts, *v))
            .collect();
        if let Err(e) = query.tsdb().append(&rows) {
            tracing::error!(group = group.name(), error = %e, "storing rule output");
        }
    }
    let history: Vec<HistoryEvent> = out
        .transitions
        .iter()
        .filter(|t| {
            matches!(t.to.as_str(), "firing" | "inactive") && t.from.as_str() != t.to.as_str()
        })
        .map(|t| HistoryEvent {
            at_ms: t.at_ms,
            kind: if t.to.as_str() == "firing" {
                "firing".into()
            } else {
                "resolved".into()
            },
            labels: t.labels.iter().cloned().collect(),
            receiver: None,
            group_key: None,
            detail: format!("{} (value {})", t.rule, t.value),
        })
        .collect();
    let state = match serde_json::to_vec(&group.persisted_state()) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(group = group.name(), error = %e, "serialising rule state");
            return;
        }
    };
    let commit = AlertingCommit {
        state: vec![(state_key(&group), state)],
        outbox: Vec::new(),
        history,
    };
    if let Err(e) = storage.commit_alerting(&commit) {
        tracing::error!(group = group.name(), error = %e, "committing rule state");
    }
    drop(group);
    if !out.alerts.is_empty() {
        sink.alerts(out.alerts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_file_globs_match_names() {
        assert!(wildcard("*.yml", "alerts.yml"));
        assert!(wildcard("rule?.yaml", "rule1.yaml"));
        assert!(!wildcard("*.yml", "alerts.yaml"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), "groups: []\n").unwrap();
        std::fs::write(dir.path().join("b.yml"), "groups: []\n").unwrap();
        let mut warnings = Vec::new();
        let found = resolve_rule_files(
            dir.path(),
            &["*.yml".into(), "missing.yml".into()],
            &mut warnings,
        );
        assert_eq!(found.len(), 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("missing.yml"));
    }

    #[test]
    fn seed_rule_files_load() {
        let seeds = format!(
            "{}/../../shared/fixtures/seed-configs/",
            std::path::PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
            )
            .display()
        );
        let paths = [
            PathBuf::from(format!("{seeds}alert-rules.yml")),
            PathBuf::from(format!("{seeds}x0tta6bl4-alert-rules.yml")),
        ];
        let board = load(&paths, Duration::from_secs(15)).unwrap();
        assert!(board.groups.len() >= 2);
    }
}
