//! Alertmanager-style routing in `serve`: alerts from the rule engine (and
//! from `POST /api/v2/alerts`) go through lookout-alerting's dispatcher
//! (routes, grouping, inhibition, silences, time intervals, dedup); each
//! notification it releases is queued in the durable outbox **in the same
//! redb transaction** as the dispatcher state that released it, then
//! delivered by the matching notifier plugin.
//!
//! Delivery: `webhook_configs` → the `webhook` plugin, `slack_configs` →
//! `slack`, `pagerduty_configs` → `pagerduty`, `email_configs` → `email`;
//! the integration's configuration (secrets included) is the plugin's
//! config, and the destination's host (URL or smarthost) is granted for
//! that delivery only. Transient failures retry with exponential back-off
//! (500 ms × 1.5, ±50 % jitter, at most 60 s); permanent ones go to the
//! dead letters. A notification still queued when lookout is killed is
//! delivered after the restart, with the same dedup key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout_alerting::{AmConfig, Dispatcher, DispatcherSnapshot};
use tokio::sync::{Notify, watch};

use crate::model::{Grants, Limits, Notification, NotificationAlert};
use crate::registry::Registry;
use crate::runtime::Invocation;
use crate::storage::{AlertingCommit, HistoryEvent, OutboxItem, OutboxOutcome, Storage, now_ms};

/// Key of the dispatcher's snapshot in the alerting state table.
const DISPATCHER_STATE: &str = "alerting/dispatcher";

/// First retry delay, growth factor and cap (Alertmanager's back-off).
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_FACTOR: f64 = 1.5;
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Notifications one delivery attempt may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The running dispatcher and delivery of `serve`.
pub struct Alerting {
    dispatcher: Mutex<Dispatcher>,
    storage: Arc<Storage>,
    external_url: String,
    started: DateTime<Utc>,
    flush: Notify,
    deliver: Notify,
    /// What lookout's own receivers (`[[alerting.receivers]]`) grant their
    /// plugins, by receiver name.
    receiver_grants: HashMap<String, Grants>,
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

impl Alerting {
    /// A dispatcher for `config`, restored from its last committed state.
    pub fn open(
        config: AmConfig,
        storage: Arc<Storage>,
        external_url: String,
        receiver_grants: HashMap<String, Grants>,
    ) -> Arc<Alerting> {
        let now = Utc::now();
        let mut dispatcher = Dispatcher::new(config.clone());
        match storage.alerting_state(DISPATCHER_STATE) {
            Ok(Some(bytes)) => match serde_json::from_slice::<DispatcherSnapshot>(&bytes) {
                Ok(snapshot) => {
                    let silences = dispatcher.silences().clone();
                    dispatcher = Dispatcher::restore(config, silences, snapshot, now);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable dispatcher snapshot"),
            },
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "reading the dispatcher snapshot"),
        }
        Arc::new(Alerting {
            dispatcher: Mutex::new(dispatcher),
            storage,
            external_url,
            started: now,
            flush: Notify::new(),
            deliver: Notify::new(),
            receiver_grants,
        })
    }

    /// Runs `f` on the dispatcher (API queries and silences).
    pub fn with<T>(&self, f: impl FnOnce(&mut Dispatcher) -> T) -> T {
        f(&mut self.dispatcher.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// Commits the dispatcher's state (after a silence change, say).
    pub fn persist(&self) -> Result<(), crate::storage::StorageError> {
        self.with(|d| {
            let snapshot = serde_json::to_vec(&d.snapshot())
                .map_err(|e| crate::storage::StorageError::Database(e.to_string()))?;
            // Under the lock, as every snapshot: never an older over a newer.
            self.storage.commit_alerting(&AlertingCommit {
                state: vec![(DISPATCHER_STATE.into(), snapshot)],
                ..Default::default()
            })
        })?;
        self.flush.notify_one();
        Ok(())
    }

    /// Takes alerts in (from rules or the API) and wakes the dispatcher.
    pub fn insert(
        &self,
        alerts: Vec<lookout_alerting::Alert>,
    ) -> Result<(), lookout_alerting::DispatchError> {
        let now = Utc::now();
        self.with(|d| alerts.into_iter().try_for_each(|a| d.insert(a, now)))?;
        self.flush.notify_one();
        Ok(())
    }

    /// Starts the dispatcher and delivery tasks.
    pub fn spawn(
        self: &Arc<Self>,
        registry: Arc<Registry>,
        shutdown: watch::Receiver<bool>,
        telemetry: Arc<crate::telemetry::Telemetry>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let flusher = {
            let this = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let wait = this
                        .with(|d| d.next_deadline())
                        .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                        .unwrap_or(Duration::from_secs(3600));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = this.flush.notified() => {}
                        _ = shutdown.changed() => return,
                    }
                    let this2 = this.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || this2.flush_due()).await {
                        tracing::error!(error = %e, "dispatcher flush panicked");
                    }
                }
            })
        };
        let deliverer = {
            let this = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let next = this.deliver_due(&registry, &telemetry).await;
                    let wait = next.map_or(Duration::from_secs(3600), |ms| {
                        Duration::from_millis((ms - now_ms()).max(0) as u64)
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = this.deliver.notified() => {}
                        _ = shutdown.changed() => return,
                    }
                }
            })
        };
        vec![flusher, deliverer]
    }

    /// Releases due notifications into the outbox, with the dispatcher
    /// state that released them, in one commit.
    fn flush_due(&self) {
        let mut dispatcher = self.dispatcher.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        let released = dispatcher.flush_due(now);
        if released.is_empty() {
            return;
        }
        let mut commit = AlertingCommit::default();
        for n in &released {
            let data = lookout_alerting::TemplateData::new(n, &self.external_url, 0);
            let notification = Notification {
                receiver: n.receiver.clone(),
                status: n.status().as_str().to_string(),
                alerts: n
                    .alerts
                    .iter()
                    .map(|a| NotificationAlert {
                        status: a.status.as_str().to_string(),
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at: a
                            .starts_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        ends_at: a
                            .ends_at
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                        generator_url: a.generator_url.clone(),
                        fingerprint: a.fingerprint.to_string(),
                    })
                    .collect(),
                group_labels: n.group_labels.clone(),
                common_labels: data.common_labels.clone(),
                common_annotations: data.common_annotations.clone(),
                external_url: self.external_url.clone(),
                group_key: n.group_key.clone(),
                truncated_alerts: 0,
            };
            commit.outbox.push(OutboxItem {
                receiver: n.receiver.clone(),
                integration: n.integration.index,
                integration_kind: n.integration.kind.as_str().to_string(),
                notification_id: n.id.clone(),
                notification,
                dedup_key: n.dedup_key.clone(),
                attempts: 0,
                next_attempt_ms: now.timestamp_millis(),
                retry_deadline_ms: n.retry_deadline.timestamp_millis(),
                created_ms: now.timestamp_millis(),
                last_error: None,
            });
            commit.history.push(HistoryEvent {
                at_ms: now.timestamp_millis(),
                kind: "queued".into(),
                labels: n.group_labels.clone(),
                receiver: Some(format!("{}/{}", n.receiver, n.integration)),
                group_key: Some(n.group_key.clone()),
                detail: format!("{} alerts ({})", n.alerts.len(), n.reason.as_str()),
            });
        }
        match serde_json::to_vec(&dispatcher.snapshot()) {
            Ok(bytes) => commit.state.push((DISPATCHER_STATE.into(), bytes)),
            Err(e) => tracing::error!(error = %e, "serialising the dispatcher"),
        }
        // Committed under the lock: snapshots reach the disk in the order
        // they were taken.
        let committed = self.storage.commit_alerting(&commit);
        drop(dispatcher);
        match committed {
            Ok(_) => self.deliver.notify_one(),
            Err(e) => tracing::error!(error = %e, "queueing notifications"),
        }
    }

    /// Attempts every due delivery; returns when the next one is due.
    async fn deliver_due(
        &self,
        registry: &Registry,
        telemetry: &crate::telemetry::Telemetry,
    ) -> Option<i64> {
        let items = match self.storage.outbox() {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox");
                return Some(now_ms() + 1000);
            }
        };
        let mut next: Option<i64> = None;
        for (id, item) in items {
            if item.next_attempt_ms > now_ms() {
                next = Some(next.map_or(item.next_attempt_ms, |n| n.min(item.next_attempt_ms)));
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = self.deliver_one(registry, &item).await;
            let took = started.elapsed();
            let now = now_ms();
            let target = format!(
                "{}/{}[{}]",
                item.receiver, item.integration_kind, item.integration
            );
            let event = |kind: &str, detail: String| HistoryEvent {
                at_ms: now,
                kind: kind.into(),
                labels: item.notification.group_labels.clone(),
                receiver: Some(target.clone()),
                group_key: Some(item.notification.group_key.clone()),
                detail,
            };
            let (settle, history, report) = match outcome {
                Ok(message) => {
                    telemetry.notification_attempt(
                        &item.receiver,
                        &item.integration_kind,
                        took,
                        Ok(()),
                    );
                    (
                        OutboxOutcome::Delivered,
                        event("notified", message),
                        Some(lookout_alerting::Delivery::Delivered),
                    )
                }
                Err((permanent, reason, error))
                    if permanent
                        || now
                            >= item
                                .retry_deadline_ms
                                .max(item.created_ms + RETRY_MAX.as_millis() as i64) =>
                {
                    telemetry.notification_attempt(
                        &item.receiver,
                        &item.integration_kind,
                        took,
                        Err((reason, true)),
                    );
                    tracing::warn!(receiver = %target, error = %error, "notification given up: dead letter");
                    let mut dead = item.clone();
                    dead.last_error = Some(error.clone());
                    (
                        OutboxOutcome::Dead(dead),
                        event("dead_letter", error.clone()),
                        Some(lookout_alerting::Delivery::Failed(error)),
                    )
                }
                Err((_, reason, error)) => {
                    telemetry.notification_attempt(
                        &item.receiver,
                        &item.integration_kind,
                        took,
                        Err((reason, false)),
                    );
                    let mut retry = item.clone();
                    retry.attempts += 1;
                    retry.next_attempt_ms = now + backoff(retry.attempts).as_millis() as i64;
                    retry.last_error = Some(error.clone());
                    next =
                        Some(next.map_or(retry.next_attempt_ms, |n| n.min(retry.next_attempt_ms)));
                    tracing::info!(receiver = %target, attempt = retry.attempts, error = %error, "delivery failed; retrying");
                    (
                        OutboxOutcome::Retry(retry),
                        event("delivery_failed", error),
                        None,
                    )
                }
            };
            // The dispatcher learns the outcome (its notification log, the
            // group's flush done) and that state is stored with the settled
            // outbox row, under the dispatcher's lock like every snapshot so
            // an older one never overwrites a newer: after a crash, what was
            // delivered is not sent again and the group does not wait out
            // its flush deadline.
            let reported = report.is_some();
            let settled = self.with(|d| {
                let state = report.and_then(|report| {
                    if let Err(e) = d.report(&item.notification_id, report, Utc::now()) {
                        tracing::debug!(error = %e, "delivery report for a flush the dispatcher no longer tracks");
                    }
                    serde_json::to_vec(&d.snapshot())
                        .map_err(|e| tracing::error!(error = %e, "encoding the dispatcher state"))
                        .ok()
                });
                self.storage.settle_outbox(
                    id,
                    settle,
                    &[history],
                    state.as_deref().map(|b| (DISPATCHER_STATE, b)),
                )
            });
            if let Err(e) = settled {
                tracing::error!(error = %e, "settling a delivery");
            }
            if reported {
                // A reported flush lets its group's timer run again: the
                // flusher may be asleep until the flush's deadline.
                self.flush.notify_one();
            }
        }
        next
    }

    /// One delivery through the receiver's plugin: `Ok(message)`, or
    /// `Err((permanent, reason, why))`; `reason` is the failure kind
    /// (`plugin_transient` …) or `host` for what failed before the plugin.
    async fn deliver_one(
        &self,
        registry: &Registry,
        item: &OutboxItem,
    ) -> Result<String, (bool, &'static str, String)> {
        use lookout_alerting::config::receivers::{IntegrationKind, IntegrationRef};
        let found = self.with(|d| {
            let receiver = d.config().receiver(&item.receiver)?;
            let kind = IntegrationKind::from_name(&item.integration_kind)?;
            let index = item.integration;
            // Alertmanager's integrations go to the plugin of their name;
            // lookout's own receivers name theirs.
            let plugin = match kind {
                IntegrationKind::Plugin => receiver.plugin_configs.get(index)?.plugin.clone(),
                other => other.as_str().to_string(),
            };
            let config = receiver.integration_config_json(IntegrationRef { kind, index })?;
            Some((plugin, config))
        });
        let Some((plugin_name, config)) = found else {
            return Err((
                true,
                "host",
                format!(
                    "receiver {} has no {} integration {} any more",
                    item.receiver, item.integration_kind, item.integration
                ),
            ));
        };
        let (config, timeout) = plugin_config(config).map_err(|e| (true, "host", e))?;
        let record = registry.record(&plugin_name).map_err(|e| {
            (
                true,
                "host",
                format!("notifier plugin `{plugin_name}`: {e}"),
            )
        })?;
        let plugin = registry
            .load(&plugin_name)
            .map_err(|e| (true, "host", e.to_string()))?;
        let mut grants = record.grants.union(&destination_grants(&config));
        if let Some(granted) = self.receiver_grants.get(&item.receiver) {
            grants = grants.union(granted);
        }
        let limits = Limits {
            timeout,
            ..Limits::default()
        };
        let config = config.to_string();
        let inv = Invocation {
            job: "notify",
            target: &item.receiver,
            config: &config,
            grants: &grants,
            limits: &limits,
        };
        match registry
            .runtime()
            .notify(&plugin, &item.notification, &inv)
            .await
        {
            Ok(delivery) => Ok(delivery.message),
            Err(e) => {
                use crate::model::FailureKind as K;
                let permanent =
                    matches!(e.kind, K::PluginConfig | K::PluginPermanent | K::WrongWorld);
                Err((
                    permanent,
                    e.kind.as_str(),
                    format!("{}: {}", e.kind, e.message),
                ))
            }
        }
    }
}

/// What routes alerts when no Alertmanager configuration is given: one
/// receiver without integrations, so alerts, groups and silences still
/// work through the v2 API (amtool) and nothing is sent.
pub fn default_config() -> AmConfig {
    load_config(None, &[]).expect("the default alerting config is valid")
}

/// The Alertmanager configuration `serve` routes by: the file, or without
/// one a route to lookout's first own receiver (else to none), with the
/// receivers of lookout's config (`[[alerting.receivers]]`) added for its
/// routes to name.
pub fn load_config(
    path: Option<&std::path::Path>,
    own: &[crate::config::PluginReceiver],
) -> Result<AmConfig, anyhow::Error> {
    use anyhow::Context;
    let (text, file) = match path {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let text = match own.first() {
                Some(r) => format!("route:\n  receiver: {:?}\n", r.name),
                None => "route:\n  receiver: default\nreceivers:\n  - name: default\n".into(),
            };
            (text, "<default alerting config>".into())
        }
    };
    let extra = own
        .iter()
        .map(|r| lookout_alerting::config::Receiver {
            name: r.name.clone(),
            plugin_configs: vec![lookout_alerting::PluginIntegration {
                plugin: r.plugin.clone(),
                config: r.config.clone(),
                send_resolved: r.send_resolved,
            }],
            ..Default::default()
        })
        .collect();
    Ok(lookout_alerting::parse_config_with_receivers(
        &text,
        &file,
        &|name| std::env::var(name).ok(),
        extra,
    )?)
}

/// [`Alerting::open`]'s grants for lookout's own receivers.
pub fn receiver_grants(own: &[crate::config::PluginReceiver]) -> HashMap<String, Grants> {
    own.iter()
        .map(|r| (r.name.clone(), r.grants.clone()))
        .collect()
}

/// What a notifier plugin is given for an Alertmanager integration, and
/// the delivery's deadline. The host does what Alertmanager does around
/// the integration itself: reads `*_file` references (`url_file`,
/// `password_file` …; a plugin reads no files) into the values they stand
/// for, and takes `timeout` as the deadline. `update_message: false`,
/// Alertmanager's default, is dropped: lookout's Slack plugin posts every
/// notification as a new message (it refuses `true`, naming the option).
fn plugin_config(mut config: serde_json::Value) -> Result<(serde_json::Value, Duration), String> {
    let timeout = match config.as_object_mut().and_then(|c| c.remove("timeout")) {
        Some(serde_json::Value::String(text)) => {
            // The inverse of how the Alertmanager config wrote it.
            lookout_alerting::timeutil::parse_go_duration(&text)
                .map_err(|e| format!("timeout {text:?}: {e}"))?
        }
        _ => DELIVERY_TIMEOUT,
    };
    if let Some(c) = config.as_object_mut()
        && c.get("update_message") == Some(&serde_json::Value::Bool(false))
    {
        c.remove("update_message");
    }
    crate::config::inline_file_references(&mut config, std::path::Path::new(""))?;
    Ok((config, timeout))
}

/// The destination a receiver's configuration names, granted for its
/// deliveries: the host of `url`/`api_url` (HTTP) or the `smarthost` (TCP).
fn destination_grants(config: &serde_json::Value) -> Grants {
    let mut grants = Grants::default();
    for key in ["url", "api_url", "app_url"] {
        if let Some(url) = config.get(key).and_then(|v| v.as_str()) {
            let (host, port) = crate::runtime::target_host_port(url);
            let default_port = if url.starts_with("http://") { 80 } else { 443 };
            grants
                .http
                .push(format!("{host}:{}", port.unwrap_or(default_port)));
        }
    }
    if let Some(smarthost) = config.get("smarthost").and_then(|v| v.as_str()) {
        grants.tcp.push(smarthost.to_string());
    }
    grants
}

/// 500 ms × 1.5^(attempt−1), capped at 60 s, with ±50 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base =
        RETRY_FIRST.as_secs_f64() * RETRY_FACTOR.powi(attempt.saturating_sub(1).min(40) as i32);
    let capped = base.min(RETRY_MAX.as_secs_f64());
    let jitter = 0.5 + rand::random::<f64>();
    Duration::from_secs_f64((capped * jitter).min(RETRY_MAX.as_secs_f64()))
}

impl crate::rules::AlertSink for Alerting {
    fn alerts(&self, alerts: Vec<lookout_rules::AlertToSend>) {
        let converted = alerts
            .into_iter()
            .map(|a| lookout_alerting::Alert {
                labels: a.alert.labels.iter().cloned().collect(),
                annotations: a.alert.annotations.iter().cloned().collect(),
                starts_at: to_utc(a.alert.starts_at_ms().unwrap_or(a.alert.active_at_ms)),
                ends_at: a.alert.ends_at_ms().map(to_utc),
                generator_url: a.generator_url,
                updated_at: Utc::now(),
                timeout: false,
            })
            .collect();
        if let Err(e) = self.insert(converted) {
            tracing::warn!(error = %e, "alert refused by the dispatcher");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_half_and_caps_at_a_minute() {
        for _ in 0..100 {
            let first = backoff(1).as_secs_f64();
            assert!((0.25..=0.75).contains(&first), "{first}");
            let fifth = backoff(5).as_secs_f64();
            let nominal = 0.5 * 1.5f64.powi(4);
            assert!(fifth >= nominal * 0.5 && fifth <= nominal * 1.5, "{fifth}");
            assert!(backoff(40).as_secs_f64() <= 60.0);
        }
    }

    #[test]
    fn destinations_are_granted_per_delivery() {
        let g = destination_grants(&serde_json::json!({"url": "http://127.0.0.1:9999/hook"}));
        assert_eq!(g.http, vec!["127.0.0.1:9999".to_string()]);
        let g = destination_grants(&serde_json::json!({"smarthost": "mail.local:587"}));
        assert_eq!(g.tcp, vec!["mail.local:587".to_string()]);
        let g = destination_grants(
            &serde_json::json!({"api_url": "https://hooks.slack.com/services/x"}),
        );
        assert_eq!(g.http, vec!["hooks.slack.com:443".to_string()]);
    }

    #[test]
    fn plugins_get_file_references_read_and_no_alertmanager_only_keys() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("url");
        std::fs::write(&secret, "https://hooks.example.com/x\n").unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let (config, timeout) = plugin_config(serde_json::json!({
            "api_url_file": secret,
            "update_message": false,
            "timeout": "3s",
            "http_config": {"basic_auth": {"username": "u", "password_file": password},
                            "tls_config": {"ca_file": ca}},
        }))
        .unwrap();
        assert_eq!(timeout, Duration::from_secs(3));
        assert_eq!(
            config,
            serde_json::json!({
                "api_url": "https://hooks.example.com/x",
                "http_config": {"basic_auth": {"username": "u", "password": "hunter2"},
                                "tls_config": {"ca": "-----BEGIN CERTIFICATE-----"}},
            })
        );
        let (_, timeout) = plugin_config(serde_json::json!({"update_message": true})).unwrap();
        assert_eq!(timeout, DELIVERY_TIMEOUT);
        let err = plugin_config(serde_json::json!({"url_file": "/nonexistent/x"})).unwrap_err();
        assert!(err.contains("url_file \"/nonexistent/x\""), "{err}");
    }
}
