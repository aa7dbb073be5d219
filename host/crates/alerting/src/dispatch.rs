//! The dispatcher: alerts in, notifications out, driven by the host's clock.
//!
//! It is Alertmanager's alert store, dispatcher and notification pipeline
//! as one state machine with no I/O and no clock of its own:
//!
//! - [`Dispatcher::insert`] stores an alert (merging it with the stored one
//!   as Alertmanager does) and puts it into an aggregation group for every
//!   route it matches. A new group flushes after `group_wait` (at once if
//!   its alert is already older than that); afterwards every
//!   `group_interval`.
//! - [`Dispatcher::next_deadline`] says when to call
//!   [`Dispatcher::flush_due`] next.
//! - [`Dispatcher::flush_due`] flushes due groups through Alertmanager's
//!   pipeline — inhibition, then active/mute time intervals, then silences,
//!   then per integration the dedup rules against the notification log —
//!   and returns what must be sent.
//! - The host delivers each [`Notification`] (retrying per
//!   [`crate::retry`]) and calls [`Dispatcher::report`]. A delivery is
//!   recorded in the notification log; when every notification of a flush
//!   was delivered, the flushed resolved alerts are removed from the group
//!   (and an empty group is dropped), as Alertmanager does after a
//!   successful flush.
//! - [`Dispatcher::snapshot`] / [`Dispatcher::restore`] carry all of it
//!   (alerts, groups with their timers and outstanding flushes, the
//!   notification log, acknowledgements) across restarts.
//!
//! Lookout adds [`Dispatcher::acknowledge`]: an acknowledged group sends no
//! repeat notifications until its set of firing alerts changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::{Alert, AlertStatus, alert_order};
use crate::config::{AmConfig, IntegrationRef};
use crate::inhibit::Inhibitor;
use crate::labels::{Fingerprint, LabelSet, label_set_string};
use crate::retry::flush_budget;
use crate::route::RouteId;
use crate::silence::Silences;
use crate::timeinterval::intervals_containing;
use crate::timeutil::delta;

/// How long a notification log entry is kept at most (Alertmanager's
/// `--data.retention` default); an entry also expires after twice its
/// route's `repeat_interval`.
pub const NFLOG_RETENTION: Duration = Duration::from_secs(120 * 3600);
/// How often resolved alerts are dropped from the alert store
/// (Alertmanager's `--alerts.gc-interval` default).
pub const ALERT_GC_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// How often expired silences and log entries are dropped (Alertmanager's
/// maintenance interval).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Why a notification is sent (Alertmanager's `NotifyReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    /// Nothing to send.
    DoNotNotify,
    /// The group's first notification (or first since all resolved).
    FirstNotification,
    /// Firing alerts not in the last notification.
    NewAlertsInGroup,
    /// Resolved alerts not in the last notification (`send_resolved`).
    NewResolvedAlerts,
    /// Everything that fired has resolved.
    AllAlertsResolved,
    /// Nothing changed, but `repeat_interval` has passed.
    RepeatIntervalElapsed,
}

impl NotifyReason {
    /// Alertmanager's text for it.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReason::DoNotNotify => "none",
            NotifyReason::FirstNotification => "first notification",
            NotifyReason::NewAlertsInGroup => "new alerts added",
            NotifyReason::NewResolvedAlerts => "some alerts resolved",
            NotifyReason::AllAlertsResolved => "all alerts resolved",
            NotifyReason::RepeatIntervalElapsed => "repeat interval elapsed",
        }
    }
}

/// An alert as it goes out in a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    /// Firing or resolved at the flush.
    pub status: AlertStatus,
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End for a resolved alert; `None` (Go's zero time) for a firing one.
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule.
    pub generator_url: String,
    /// Label fingerprint.
    pub fingerprint: Fingerprint,
}

/// One notification to deliver through one integration of a receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id; pass it to [`Dispatcher::report`].
    pub id: String,
    /// Receiver name.
    pub receiver: String,
    /// Which integration of the receiver.
    pub integration: IntegrationRef,
    /// The route that grouped the alerts.
    pub route: RouteId,
    /// Alertmanager's id string of that route.
    pub route_id: String,
    /// Alertmanager's group key (`{}/{severity="critical"}:{alertname="X"}`).
    pub group_key: String,
    /// The group's labels.
    pub group_labels: LabelSet,
    /// The alerts to send, in Alertmanager's order. Resolved ones only when
    /// the integration has `send_resolved`.
    pub alerts: Vec<NotifiedAlert>,
    /// Why it is sent.
    pub reason: NotifyReason,
    /// SHA-256 of the group key, hex: PagerDuty's `dedup_key`, stable for
    /// the life of the group.
    pub dedup_key: String,
    /// When the group was flushed.
    pub flushed_at: DateTime<Utc>,
    /// Retries must end by then; afterwards the flush counts as failed.
    pub retry_deadline: DateTime<Utc>,
}

impl Notification {
    /// `firing` if any alert fires, else `resolved`.
    pub fn status(&self) -> AlertStatus {
        if self.alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }
}

/// PagerDuty's `dedup_key` and lookout's outbox key for a group: SHA-256 of
/// the group key in hex (Alertmanager's `notify.Key.Hash`).
pub fn group_key_hash(group_key: &str) -> String {
    hex::encode(Sha256::digest(group_key.as_bytes()))
}

/// The result of delivering a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Sent.
    Delivered,
    /// Not sent (retries exhausted or a permanent error).
    Failed(String),
}

/// Errors of the dispatcher's operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The alert cannot be accepted.
    #[error("invalid alert: {0}")]
    InvalidAlert(String),
    /// No outstanding notification has that id (its flush timed out, or the
    /// config was reloaded).
    #[error("unknown notification {0:?}")]
    UnknownNotification(String),
    /// No aggregation group has that key.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
}

/// Key of the notification log: one entry per group and integration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NflogKey {
    /// Group key.
    pub group_key: String,
    /// Receiver name.
    pub receiver: String,
    /// Integration.
    pub integration: IntegrationRef,
}

/// What was last delivered for a group through an integration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    /// Fingerprints of the firing alerts sent.
    pub firing: BTreeSet<Fingerprint>,
    /// Fingerprints of the resolved alerts sent.
    pub resolved: BTreeSet<Fingerprint>,
    /// When the delivery completed.
    pub timestamp: DateTime<Utc>,
    /// When the entry is dropped.
    pub expires_at: DateTime<Utc>,
}

/// An acknowledgement of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The firing alerts when acknowledged.
    pub firing: BTreeSet<Fingerprint>,
    /// When.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingLog {
    receiver: String,
    integration: IntegrationRef,
    firing: BTreeSet<Fingerprint>,
    resolved: BTreeSet<Fingerprint>,
    repeat_interval: Duration,
}

/// A flush whose notifications are not all reported yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingFlush {
    outstanding: BTreeMap<String, PendingLog>,
    failed: bool,
    /// Resolved alerts of the flush with their `updated_at`: removed from
    /// the group on success unless updated since.
    resolved: Vec<(Fingerprint, DateTime<Utc>)>,
    deadline: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AggrGroup {
    route: RouteId,
    labels: LabelSet,
    key: String,
    alerts: BTreeMap<Fingerprint, Alert>,
    next_flush: DateTime<Utc>,
    pending: Option<PendingFlush>,
    /// Time intervals muting the group at its last flush.
    muted_by: Vec<String>,
}

/// The dispatcher.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    config: AmConfig,
    inhibitor: Inhibitor,
    alerts: BTreeMap<Fingerprint, Alert>,
    groups: BTreeMap<(RouteId, Fingerprint), AggrGroup>,
    nflog: BTreeMap<NflogKey, NflogEntry>,
    acks: BTreeMap<String, Acknowledgement>,
    silences: Silences,
    flush_seq: u64,
    last_alert_gc: Option<DateTime<Utc>>,
    last_maintenance: Option<DateTime<Utc>>,
}

/// A group as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView<'a> {
    /// Route.
    pub route: RouteId,
    /// Receiver.
    pub receiver: &'a str,
    /// Group key.
    pub key: &'a str,
    /// Group labels.
    pub labels: &'a LabelSet,
    /// Alerts in the group.
    pub alerts: Vec<&'a Alert>,
    /// Time intervals muting it at its last flush.
    pub muted_by: &'a [String],
}

/// Everything a dispatcher holds, for persisting (silences are persisted
/// apart, see [`Silences::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatcherSnapshot {
    alerts: Vec<Alert>,
    groups: Vec<GroupSnapshot>,
    nflog: Vec<(NflogKey, NflogEntry)>,
    acks: BTreeMap<String, Acknowledgement>,
    flush_seq: u64,
    last_alert_gc: Option<DateTime<Utc>>,
    last_maintenance: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct GroupSnapshot {
    route_id: String,
    group: AggrGroup,
}

impl Dispatcher {
    /// A dispatcher for this config, with no alerts and no silences.
    pub fn new(config: AmConfig) -> Self {
        Dispatcher {
            inhibitor: Inhibitor::new(&config.inhibit_rules),
            config,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            nflog: BTreeMap::new(),
            acks: BTreeMap::new(),
            silences: Silences::new(),
            flush_seq: 0,
            last_alert_gc: None,
            last_maintenance: None,
        }
    }

    /// The config in use.
    pub fn config(&self) -> &AmConfig {
        &self.config
    }

    /// The silences.
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// The silences, to create or expire them.
    pub fn silences_mut(&mut self) -> &mut Silences {
        &mut self.silences
    }

    /// The inhibitor of the current config.
    pub fn inhibitor(&self) -> &Inhibitor {
        &self.inhibitor
    }

    /// Every stored alert (firing, and resolved ones not yet collected).
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> + Clone {
        self.alerts.values()
    }

    /// The stored alert with this fingerprint.
    pub fn alert(&self, fp: Fingerprint) -> Option<&Alert> {
        self.alerts.get(&fp)
    }

    /// The notification log.
    pub fn nflog(&self) -> impl Iterator<Item = (&NflogKey, &NflogEntry)> {
        self.nflog.iter()
    }

    /// Receives an alert at `now`: sets `updated_at`, derives a missing end
    /// from `resolve_timeout`, merges with the stored alert, and groups it.
    pub fn insert(&mut self, mut alert: Alert, now: DateTime<Utc>) -> Result<(), DispatchError> {
        if alert.labels.is_empty() {
            return Err(DispatchError::InvalidAlert(
                "at least one label pair required".into(),
            ));
        }
        if alert.labels.keys().any(String::is_empty) {
            return Err(DispatchError::InvalidAlert(
                "invalid label set: empty label name".into(),
            ));
        }
        if let Some(end) = alert.ends_at
            && end < alert.starts_at
        {
            return Err(DispatchError::InvalidAlert(
                "start time must be before end time".into(),
            ));
        }
        alert.updated_at = now;
        if alert.ends_at.is_none() {
            alert.timeout = true;
            alert.ends_at = Some(now + delta(self.config.global.resolve_timeout));
        }
        let fp = alert.fingerprint();
        if let Some(old) = self.alerts.get(&fp)
            && alert.overlaps(old)
        {
            alert = old.merge(&alert, now);
        }
        self.alerts.insert(fp, alert.clone());
        self.route_alert(alert, now);
        Ok(())
    }

    fn route_alert(&mut self, alert: Alert, now: DateTime<Utc>) {
        let fp = alert.fingerprint();
        for route in self.config.route.match_routes(&alert.labels) {
            let node = self.config.route.node(route);
            let labels = node.opts.group_by.group_labels(&alert.labels);
            let gid = (route, Fingerprint::of(&labels));
            let group = self.groups.entry(gid).or_insert_with(|| {
                let mut next_flush = now + delta(node.opts.group_wait);
                if alert.starts_at + delta(node.opts.group_wait) < now {
                    next_flush = now;
                }
                AggrGroup {
                    route,
                    key: format!("{}:{}", node.key, label_set_string(&labels)),
                    labels,
                    alerts: BTreeMap::new(),
                    next_flush,
                    pending: None,
                    muted_by: Vec::new(),
                }
            });
            group.alerts.insert(fp, alert.clone());
        }
    }

    /// When [`Dispatcher::flush_due`] has work next: the earliest group
    /// flush (groups waiting for reports excluded), flush deadline, or
    /// clean-up of stored alerts, log entries and silences.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let groups = self
            .groups
            .values()
            .map(|g| match &g.pending {
                Some(p) => p.deadline,
                None => g.next_flush,
            })
            .min();
        let alert_gc = self
            .last_alert_gc
            .filter(|_| !self.alerts.is_empty())
            .map(|t| t + delta(ALERT_GC_INTERVAL));
        let maintenance = self
            .last_maintenance
            .filter(|_| !self.nflog.is_empty() || !self.silences.is_empty())
            .map(|t| t + delta(MAINTENANCE_INTERVAL));
        [groups, alert_gc, maintenance].into_iter().flatten().min()
    }

    /// Flushes every group that is due and returns the notifications to
    /// deliver. Also expires flushes whose deadline passed (as failed) and
    /// runs the periodic clean-ups.
    pub fn flush_due(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        self.maintain(now);
        let overdue: Vec<(RouteId, Fingerprint)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.pending.as_ref().is_some_and(|p| p.deadline <= now))
            .map(|(k, _)| *k)
            .collect();
        for gid in overdue {
            if let Some(g) = self.groups.get_mut(&gid)
                && let Some(p) = g.pending.as_mut()
            {
                p.failed = true;
                p.outstanding.clear();
            }
            self.complete_flush(gid, now);
        }
        let mut due: Vec<(RouteId, Fingerprint)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.pending.is_none() && g.next_flush <= now)
            .map(|(k, _)| *k)
            .collect();
        due.sort_by(|a, b| self.groups[a].key.cmp(&self.groups[b].key).then(a.cmp(b)));
        let mut out = Vec::new();
        for gid in due {
            out.extend(self.flush_group(gid, now));
        }
        out
    }

    fn flush_group(
        &mut self,
        gid: (RouteId, Fingerprint),
        now: DateTime<Utc>,
    ) -> Vec<Notification> {
        let Some(group) = self.groups.get_mut(&gid) else {
            return Vec::new();
        };
        let node = self.config.route.node(group.route);
        let opts = node.opts.clone();
        let route_id = node.id.clone();
        group.next_flush = now + delta(opts.group_interval);
        if group.alerts.is_empty() {
            self.groups.remove(&gid);
            return Vec::new();
        }
        self.flush_seq += 1;
        let seq = self.flush_seq;
        let group = &self.groups[&gid];
        let key = group.key.clone();
        let group_labels = group.labels.clone();

        // The group's alerts as Alertmanager's flush sees them.
        let mut alerts: Vec<&Alert> = group.alerts.values().collect();
        alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
        let resolved_snapshot: Vec<(Fingerprint, DateTime<Utc>)> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| (a.fingerprint(), a.updated_at))
            .collect();
        let group_firing: BTreeSet<Fingerprint> = alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();

        // Pipeline: inhibition, active time, mute time, silences.
        let mut kept: Vec<&Alert> = alerts
            .into_iter()
            .filter(|a| {
                self.inhibitor
                    .inhibited_by(&a.labels, self.alerts.values(), now)
                    .is_none()
            })
            .collect();
        let mut muted_by = Vec::new();
        if !kept.is_empty() && !opts.active_time_intervals.is_empty() {
            let active = intervals_containing(
                &self.config.time_intervals,
                &opts.active_time_intervals,
                now,
            );
            if active.is_empty() {
                muted_by = opts.active_time_intervals.clone();
                kept.clear();
            }
        }
        if !kept.is_empty() && !opts.mute_time_intervals.is_empty() {
            let inside =
                intervals_containing(&self.config.time_intervals, &opts.mute_time_intervals, now);
            if !inside.is_empty() {
                muted_by = inside;
                kept.clear();
            }
        }
        kept.retain(|a| self.silences.mutes(&a.labels, now).is_empty());

        let notified: Vec<NotifiedAlert> = kept
            .iter()
            .map(|a| {
                let resolved = a.resolved_at(now);
                NotifiedAlert {
                    status: if resolved {
                        AlertStatus::Resolved
                    } else {
                        AlertStatus::Firing
                    },
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    ends_at: if resolved { a.ends_at } else { None },
                    generator_url: a.generator_url.clone(),
                    fingerprint: a.fingerprint(),
                }
            })
            .collect();
        let firing: BTreeSet<Fingerprint> = notified
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .map(|a| a.fingerprint)
            .collect();
        let resolved: BTreeSet<Fingerprint> = notified
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
            .map(|a| a.fingerprint)
            .collect();

        // Lookout's acknowledgement holds while the firing set is unchanged.
        if self
            .acks
            .get(&key)
            .is_some_and(|a| a.firing != group_firing)
        {
            self.acks.remove(&key);
        }
        let acked = self.acks.contains_key(&key);

        let mut notifications = Vec::new();
        let mut outstanding = BTreeMap::new();
        let mut immediate_logs = Vec::new();
        if !notified.is_empty() {
            let receiver = self
                .config
                .receiver(&opts.receiver)
                .cloned()
                .unwrap_or_default();
            let dedup_key = group_key_hash(&key);
            let deadline = now + delta(flush_budget(opts.group_interval));
            for (integration, send_resolved) in receiver.integrations() {
                let nkey = NflogKey {
                    group_key: key.clone(),
                    receiver: receiver.name.clone(),
                    integration,
                };
                let mut reason = needs_update(
                    self.nflog.get(&nkey),
                    &firing,
                    &resolved,
                    send_resolved,
                    opts.repeat_interval,
                    now,
                );
                if acked
                    && matches!(
                        reason,
                        NotifyReason::RepeatIntervalElapsed | NotifyReason::FirstNotification
                    )
                {
                    reason = NotifyReason::DoNotNotify;
                }
                if reason == NotifyReason::DoNotNotify {
                    continue;
                }
                let log = PendingLog {
                    receiver: receiver.name.clone(),
                    integration,
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                    repeat_interval: opts.repeat_interval,
                };
                // The retry stage sends nothing to an integration without
                // send_resolved when nothing fires, but still logs it.
                if !send_resolved && firing.is_empty() {
                    immediate_logs.push((nkey, log));
                    continue;
                }
                let alerts: Vec<NotifiedAlert> = notified
                    .iter()
                    .filter(|a| send_resolved || a.status == AlertStatus::Firing)
                    .cloned()
                    .collect();
                let id = format!("{}-{}-{}", &dedup_key[..16], seq, integration);
                outstanding.insert(id.clone(), log);
                notifications.push(Notification {
                    id,
                    receiver: receiver.name.clone(),
                    integration,
                    route: gid.0,
                    route_id: route_id.clone(),
                    group_key: key.clone(),
                    group_labels: group_labels.clone(),
                    alerts,
                    reason,
                    dedup_key: dedup_key.clone(),
                    flushed_at: now,
                    retry_deadline: deadline,
                });
            }
        }
        for (nkey, log) in immediate_logs {
            self.log(nkey, &log, now);
        }
        let deadline = now + delta(flush_budget(opts.group_interval));
        let group = self.groups.get_mut(&gid).expect("group exists");
        group.muted_by = muted_by;
        group.pending = Some(PendingFlush {
            outstanding,
            failed: false,
            resolved: resolved_snapshot,
            deadline,
        });
        if notifications.is_empty() {
            self.complete_flush(gid, now);
        }
        notifications
    }

    fn log(&mut self, key: NflogKey, log: &PendingLog, now: DateTime<Utc>) {
        let expiry = NFLOG_RETENTION.min(log.repeat_interval.saturating_mul(2));
        self.nflog.insert(
            key,
            NflogEntry {
                firing: log.firing.clone(),
                resolved: log.resolved.clone(),
                timestamp: now,
                expires_at: now + delta(expiry),
            },
        );
    }

    /// Reports the outcome of delivering a notification. A delivery is
    /// recorded in the notification log; once every notification of its
    /// flush is reported, a fully delivered flush removes its resolved
    /// alerts from the group.
    pub fn report(
        &mut self,
        notification_id: &str,
        outcome: Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), DispatchError> {
        let found = self.groups.iter().find_map(|(gid, g)| {
            g.pending
                .as_ref()
                .and_then(|p| p.outstanding.get(notification_id))
                .map(|_| (*gid, g.key.clone()))
        });
        let Some((gid, group_key)) = found else {
            return Err(DispatchError::UnknownNotification(
                notification_id.to_string(),
            ));
        };
        let pending = self
            .groups
            .get_mut(&gid)
            .and_then(|g| g.pending.as_mut())
            .expect("found above");
        let log = pending
            .outstanding
            .remove(notification_id)
            .expect("found above");
        match outcome {
            Delivery::Delivered => {
                let key = NflogKey {
                    group_key,
                    receiver: log.receiver.clone(),
                    integration: log.integration,
                };
                self.log(key, &log, now);
            }
            Delivery::Failed(_) => pending.failed = true,
        }
        let done = self.groups[&gid]
            .pending
            .as_ref()
            .is_some_and(|p| p.outstanding.is_empty());
        if done {
            self.complete_flush(gid, now);
        }
        Ok(())
    }

    fn complete_flush(&mut self, gid: (RouteId, Fingerprint), _now: DateTime<Utc>) {
        let Some(group) = self.groups.get_mut(&gid) else {
            return;
        };
        let Some(pending) = group.pending.take() else {
            return;
        };
        if pending.failed {
            return;
        }
        for (fp, updated_at) in pending.resolved {
            if group
                .alerts
                .get(&fp)
                .is_some_and(|a| a.updated_at == updated_at)
            {
                group.alerts.remove(&fp);
            }
        }
        if group.alerts.is_empty() {
            self.groups.remove(&gid);
        }
    }

    /// Acknowledges every group with this key: no repeat notifications
    /// until its set of firing alerts changes (lookout only).
    pub fn acknowledge(
        &mut self,
        group_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DispatchError> {
        let firing: BTreeSet<Fingerprint> = self
            .groups
            .values()
            .find(|g| g.key == group_key)
            .map(|g| {
                g.alerts
                    .values()
                    .filter(|a| !a.resolved_at(now))
                    .map(Alert::fingerprint)
                    .collect()
            })
            .ok_or_else(|| DispatchError::UnknownGroup(group_key.to_string()))?;
        self.acks
            .insert(group_key.to_string(), Acknowledgement { firing, at: now });
        Ok(())
    }

    /// Withdraws an acknowledgement; true if there was one.
    pub fn unacknowledge(&mut self, group_key: &str) -> bool {
        self.acks.remove(group_key).is_some()
    }

    /// The acknowledgement of a group, if any.
    pub fn acknowledgement(&self, group_key: &str) -> Option<&Acknowledgement> {
        self.acks.get(group_key)
    }

    /// The aggregation groups, ordered by group labels then receiver as the
    /// API orders them.
    pub fn groups(&self) -> Vec<GroupView<'_>> {
        let mut out: Vec<GroupView<'_>> = self
            .groups
            .values()
            .map(|g| {
                let mut alerts: Vec<&Alert> = g.alerts.values().collect();
                alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
                GroupView {
                    route: g.route,
                    receiver: &self.config.route.node(g.route).opts.receiver,
                    key: &g.key,
                    labels: &g.labels,
                    alerts,
                    muted_by: &g.muted_by,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            if a.labels == b.labels {
                a.receiver.cmp(b.receiver)
            } else if crate::labels::label_set_before(a.labels, b.labels) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        out
    }

    /// Time intervals muting any group that holds the alert.
    pub fn muted_by(&self, fp: Fingerprint) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for g in self.groups.values().filter(|g| g.alerts.contains_key(&fp)) {
            out.extend(g.muted_by.iter().cloned());
        }
        out.into_iter().collect()
    }

    /// Applies a new config as Alertmanager's reload does: groups are
    /// rebuilt from the stored alerts (a group whose alerts are older than
    /// `group_wait` flushes at once; the notification log keeps it from
    /// repeating itself); outstanding flushes are forgotten.
    pub fn reload(&mut self, config: AmConfig, now: DateTime<Utc>) {
        self.inhibitor = Inhibitor::new(&config.inhibit_rules);
        self.config = config;
        self.groups.clear();
        let alerts: Vec<Alert> = self.alerts.values().cloned().collect();
        for alert in alerts {
            self.route_alert(alert, now);
        }
    }

    /// Everything but the config and the silences, for persisting.
    pub fn snapshot(&self) -> DispatcherSnapshot {
        DispatcherSnapshot {
            alerts: self.alerts.values().cloned().collect(),
            groups: self
                .groups
                .values()
                .map(|g| GroupSnapshot {
                    route_id: self.config.route.node(g.route).id.clone(),
                    group: g.clone(),
                })
                .collect(),
            nflog: self
                .nflog
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            acks: self.acks.clone(),
            flush_seq: self.flush_seq,
            last_alert_gc: self.last_alert_gc,
            last_maintenance: self.last_maintenance,
        }
    }

    /// Rebuilds a dispatcher from a snapshot. Groups keep their timers and
    /// outstanding flushes when their route still exists in `config`;
    /// other alerts are routed afresh, as after a reload.
    pub fn restore(
        config: AmConfig,
        silences: Silences,
        snapshot: DispatcherSnapshot,
        now: DateTime<Utc>,
    ) -> Self {
        let mut d = Dispatcher::new(config);
        d.silences = silences;
        d.flush_seq = snapshot.flush_seq;
        d.last_alert_gc = snapshot.last_alert_gc;
        d.last_maintenance = snapshot.last_maintenance;
        d.nflog = snapshot.nflog.into_iter().collect();
        d.acks = snapshot.acks;
        d.alerts = snapshot
            .alerts
            .into_iter()
            .map(|a| (a.fingerprint(), a))
            .collect();
        for gs in snapshot.groups {
            let Some(route) = d.config.route.by_id(&gs.route_id) else {
                continue;
            };
            let mut group = gs.group;
            group.route = route;
            d.groups
                .insert((route, Fingerprint::of(&group.labels)), group);
        }
        // Alerts of groups that could not be restored are grouped again.
        let alerts: Vec<Alert> = d.alerts.values().cloned().collect();
        for alert in alerts {
            let fp = alert.fingerprint();
            let routes = d.config.route.match_routes(&alert.labels);
            let placed = routes.iter().all(|r| {
                let labels = d
                    .config
                    .route
                    .node(*r)
                    .opts
                    .group_by
                    .group_labels(&alert.labels);
                d.groups
                    .get(&(*r, Fingerprint::of(&labels)))
                    .is_some_and(|g| g.alerts.contains_key(&fp))
            });
            if !placed && !alert.resolved_at(now) {
                d.route_alert(alert, now);
            }
        }
        d
    }

    fn maintain(&mut self, now: DateTime<Utc>) {
        if self
            .last_alert_gc
            .is_none_or(|t| now >= t + delta(ALERT_GC_INTERVAL))
        {
            if self.last_alert_gc.is_some() {
                self.alerts.retain(|_, a| !a.resolved_at(now));
            }
            self.last_alert_gc = Some(now);
        }
        if self
            .last_maintenance
            .is_none_or(|t| now >= t + delta(MAINTENANCE_INTERVAL))
        {
            if self.last_maintenance.is_some() {
                self.nflog.retain(|_, e| e.expires_at > now);
                self.silences.gc(now);
            }
            self.last_maintenance = Some(now);
        }
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat_interval: Duration,
    now: DateTime<Utc>,
) -> NotifyReason {
    let Some(entry) = entry else {
        return if firing.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::FirstNotification
        };
    };
    if !firing.is_subset(&entry.firing) {
        return if entry.firing.is_empty() {
            NotifyReason::FirstNotification
        } else {
            NotifyReason::NewAlertsInGroup
        };
    }
    if firing.is_empty() {
        return if entry.firing.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::AllAlertsResolved
        };
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return NotifyReason::NewResolvedAlerts;
    }
    if entry.timestamp < now - delta(repeat_interval) {
        return NotifyReason::RepeatIntervalElapsed;
    }
    NotifyReason::DoNotNotify
}
