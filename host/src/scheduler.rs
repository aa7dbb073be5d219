//! Runs every job against each of its targets on the job's schedule.
//!
//! One tokio task per (job, target), so a slow plugin only ever delays its
//! own next run: a run still going when the next tick comes makes that tick
//! a counted skip, never a queue. A global semaphore bounds how many
//! instances are alive at once (at most the runtime's pool size).
//!
//! Runs are spread out: an `every` job's targets start at an offset derived
//! from a hash of (job, target) within the interval, as Prometheus spreads
//! scrapes, then keep a fixed cadence; cron jobs fire at their times plus a
//! small per-target jitter.
//!
//! Back-off: a target whose *plugin* fails (trap, limit, deadline, a config
//! or permanent plugin error) [`BACKOFF_AFTER`] times in a row is retried at doubling intervals
//! up to [`MAX_BACKOFF`]. A probe that runs and finds its target down is not
//! a plugin failure: it keeps its schedule, because that is when monitoring
//! matters most. The state is visible in `/api/v1/jobs` and `/metrics`.
//!
//! What blackbox_exporter leaves to the scraper, a probe job does itself:
//! with `confirm = "N/M"` each result also carries the confirmed verdict
//! (down while at least N of the last M probes failed), stored as
//! `probe_success_confirmed` beside the raw `probe_success`; with
//! `every_while_failing` the next probe after a failure comes after that
//! shorter interval, so a confirmation (or a recovery) is seen sooner.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::config::{Job, Schedule};
use crate::model::{FailureKind, InvocationRecord, Outcome, World, shown_target};
use crate::runtime::{Invocation, Plugin, Runtime};
use crate::storage::{ResultSink, now_ms};
use crate::telemetry::Telemetry;

/// Consecutive plugin failures before a target is backed off.
pub const BACKOFF_AFTER: u32 = 3;

/// Longest back-off; a job whose interval is longer keeps its interval.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Largest start-up spread and cron jitter.
const MAX_JITTER: Duration = Duration::from_secs(1);

/// What the API shows about one (job, target).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub runs: u64,
    pub last_started_ms: Option<i64>,
    pub last_outcome: Option<Outcome>,
    pub last_failure_reason: Option<String>,
    pub next_run_ms: Option<i64>,
    pub consecutive_plugin_failures: u32,
    /// Set while backed off: when the next attempt is allowed.
    pub backoff_until_ms: Option<i64>,
    pub skipped_ticks: u64,
}

/// What the API shows about one job.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub plugin: String,
    pub world: World,
    pub schedule: String,
    pub timeout_seconds: f64,
    pub memory_bytes: u64,
    pub targets: Vec<TargetStatus>,
}

/// Live status of every job, shared with the API.
#[derive(Default)]
pub struct JobBoard {
    jobs: Mutex<BTreeMap<String, JobStatus>>,
}

impl JobBoard {
    pub fn snapshot(&self) -> Vec<JobStatus> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn update(&self, job: &str, target: &str, f: impl FnOnce(&mut TargetStatus)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = jobs
            .get_mut(job)
            .and_then(|j| j.targets.iter_mut().find(|t| t.target == target))
        {
            f(t);
        }
    }
}

/// A job ready to run: its config and its loaded plugin.
pub struct ScheduledJob {
    pub job: Job,
    pub plugin: Plugin,
    /// Install grants plus the job's own.
    pub grants: crate::model::Grants,
}

pub struct Scheduler<S: ResultSink + 'static> {
    runtime: Arc<Runtime>,
    sink: Arc<S>,
    telemetry: Arc<Telemetry>,
    board: Arc<JobBoard>,
    slots: Arc<Semaphore>,
}

impl<S: ResultSink + 'static> Scheduler<S> {
    pub fn new(
        runtime: Arc<Runtime>,
        sink: Arc<S>,
        telemetry: Arc<Telemetry>,
        max_concurrency: usize,
    ) -> Self {
        let slots = max_concurrency.clamp(1, crate::runtime::limits::MAX_INSTANCES as usize);
        Scheduler {
            runtime,
            sink,
            telemetry,
            board: Arc::new(JobBoard::default()),
            slots: Arc::new(Semaphore::new(slots)),
        }
    }

    pub fn board(&self) -> Arc<JobBoard> {
        self.board.clone()
    }

    /// Starts every (job, target) task; they stop when `shutdown` turns true.
    pub fn start(
        &self,
        jobs: Vec<ScheduledJob>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        for scheduled in jobs {
            let job = Arc::new(scheduled);
            self.board
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    job.job.name.clone(),
                    JobStatus {
                        name: job.job.name.clone(),
                        plugin: job.job.plugin.clone(),
                        world: job.plugin.world(),
                        schedule: job.job.schedule.describe(),
                        timeout_seconds: job.job.limits.timeout.as_secs_f64(),
                        memory_bytes: job.job.limits.memory_bytes,
                        targets: job
                            .job
                            .targets
                            .iter()
                            .map(|t| TargetStatus {
                                target: shown_target(t),
                                ..Default::default()
                            })
                            .collect(),
                    },
                );
            for (index, target) in job.job.targets.iter().enumerate() {
                let series = crate::ingest::SeriesOptions {
                    target_labels: job
                        .job
                        .target_labels
                        .get(index)
                        .cloned()
                        .unwrap_or_default(),
                    honor_labels: job.job.honor_labels,
                };
                let task = TargetTask {
                    job: job.clone(),
                    target: target.clone(),
                    shown: shown_target(target),
                    series,
                    runtime: self.runtime.clone(),
                    sink: self.sink.clone(),
                    telemetry: self.telemetry.clone(),
                    board: self.board.clone(),
                    slots: self.slots.clone(),
                };
                handles.push(tokio::spawn(task.run(shutdown.clone())));
            }
        }
        handles
    }
}

struct TargetTask<S: ResultSink + 'static> {
    job: Arc<ScheduledJob>,
    /// What the plugin is given.
    target: String,
    /// What results, series, logs and the API show: the target without a
    /// password (`postgres://app:xxxxx@db:5432/`).
    shown: String,
    /// How this target's samples become series (its labels, honor_labels).
    series: crate::ingest::SeriesOptions,
    runtime: Arc<Runtime>,
    sink: Arc<S>,
    telemetry: Arc<Telemetry>,
    board: Arc<JobBoard>,
    slots: Arc<Semaphore>,
}

impl<S: ResultSink + 'static> TargetTask<S> {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let job = &self.job.job;
        let spread = spread_fraction(&job.name, &self.target);
        let mut next = first_run(&job.schedule, spread);
        let mut failures = 0u32;
        let mut backoff_until: Option<Instant> = None;
        // The last M probe verdicts (true = failed), for `confirm`.
        let mut verdicts: std::collections::VecDeque<bool> = std::collections::VecDeque::new();
        let running = Arc::new(tokio::sync::Mutex::new(()));
        // Samples are stamped with the tick's time, not the moment the task
        // woke: regular timestamps compress to almost nothing (delta-of-delta
        // zero), where a few ms of timer jitter cost ~0.7 B per sample.
        // Prometheus stamps scrapes with their scheduled time the same way.
        let (base_instant, base_ms) = (Instant::now(), now_ms());
        let tick_ms = |tick: Instant| {
            base_ms + tick.saturating_duration_since(base_instant).as_millis() as i64
        };
        loop {
            self.board.update(&job.name, &self.shown, |s| {
                s.next_run_ms = Some(instant_to_ms(next))
            });
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let tick = next;
            next = next_run(&job.schedule, tick, spread);

            if backoff_until.is_some_and(|until| Instant::now() < until) {
                continue;
            }
            // One run per target at a time: a run still going makes this tick a skip.
            let Ok(guard) = running.clone().try_lock_owned() else {
                self.board
                    .update(&job.name, &self.shown, |s| s.skipped_ticks += 1);
                self.telemetry.tick_skipped(
                    &job.name,
                    &self.shown,
                    "previous run still in progress",
                );
                continue;
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                drop(guard);
                self.board
                    .update(&job.name, &self.shown, |s| s.skipped_ticks += 1);
                self.telemetry.tick_skipped(
                    &job.name,
                    &self.shown,
                    "every invocation slot is busy",
                );
                continue;
            };
            let (mut record, kind) = self.invoke(tick_ms(tick)).await;
            drop(permit);
            drop(guard);
            if let Some(confirm) = job.confirm
                && self.job.plugin.world() == World::Probe
            {
                record.confirmed_success =
                    Some(confirmed_success(&mut verdicts, confirm, record.success));
            }
            if let Some(fast) = job.every_while_failing
                && !record.success
            {
                // Sooner than the schedule, never later; and not back to
                // back when the probe itself takes longer than `fast`.
                next = next.min((tick + fast).max(Instant::now() + fast / 2));
            }

            // Acknowledge (count, show, back off) only what is stored.
            let outcome = record.outcome;
            let reason = record.failure_reason.clone();
            let started = record.started_ms;
            if let Err(e) = self.sink.record(record.clone(), &self.series).await {
                self.telemetry
                    .storage_failed(&job.name, &self.shown, &e.to_string());
                continue;
            }
            self.telemetry.invocation_finished(&record, kind);

            // A transient plugin error (a scrape target that is down) is
            // retried on the next tick like Prometheus does; only traps,
            // limits and config or permanent errors mean the plugin itself
            // keeps failing.
            if outcome == Outcome::PluginFailure && kind != Some(FailureKind::PluginTransient) {
                failures += 1;
                if failures >= BACKOFF_AFTER {
                    let delay = backoff_delay(job.schedule.nominal_interval(), failures);
                    backoff_until = Some(Instant::now() + delay);
                    self.telemetry
                        .backoff_changed(&job.name, &self.shown, true, delay, failures);
                }
            } else {
                if backoff_until.take().is_some() {
                    self.telemetry.backoff_changed(
                        &job.name,
                        &self.shown,
                        false,
                        Duration::ZERO,
                        failures,
                    );
                }
                failures = 0;
            }
            let until_ms = backoff_until.map(instant_to_ms);
            self.board.update(&job.name, &self.shown, |s| {
                s.runs += 1;
                s.last_started_ms = Some(started);
                s.last_outcome = Some(outcome);
                s.last_failure_reason = reason;
                s.consecutive_plugin_failures = failures;
                s.backoff_until_ms = until_ms;
            });
        }
    }

    async fn invoke(&self, started_ms: i64) -> (InvocationRecord, Option<FailureKind>) {
        let job = &self.job.job;
        let t0 = Instant::now();
        let inv = Invocation {
            job: &job.name,
            target: &self.target,
            config: &job.config_json,
            grants: &self.job.grants,
            limits: &job.limits,
        };
        let mut record = InvocationRecord {
            job: job.name.clone(),
            target: self.shown.clone(),
            plugin: self.job.plugin.name().to_string(),
            started_ms,
            duration_seconds: 0.0,
            success: false,
            outcome: Outcome::PluginFailure,
            failure_reason: None,
            message: String::new(),
            samples: Vec::new(),
            confirmed_success: None,
        };
        let mut kind = None;
        let result = match self.job.plugin.world() {
            World::Exporter => self
                .runtime
                .collect(&self.job.plugin, &inv)
                .await
                .map(|samples| {
                    record.success = true;
                    record.outcome = Outcome::Success;
                    record.samples = samples;
                }),
            _ => self.runtime.probe(&self.job.plugin, &inv).await.map(|r| {
                record.success = r.success;
                record.outcome = if r.success {
                    Outcome::Success
                } else {
                    Outcome::TargetFailure
                };
                record.failure_reason = r.failure_reason;
                record.message = r.message;
                record.samples = r.samples;
            }),
        };
        if let Err(e) = result {
            record.failure_reason = Some(e.kind.as_str().to_string());
            record.message = e.message;
            kind = Some(e.kind);
        }
        record.duration_seconds = t0.elapsed().as_secs_f64();
        (record, kind)
    }
}

/// Adds a probe's verdict to the window of the last `confirm.of` and says
/// whether the target counts as up: down while at least `confirm.failures`
/// of them failed.
fn confirmed_success(
    verdicts: &mut std::collections::VecDeque<bool>,
    confirm: crate::config::Confirm,
    success: bool,
) -> bool {
    verdicts.push_back(!success);
    while verdicts.len() > confirm.of as usize {
        verdicts.pop_front();
    }
    verdicts.iter().filter(|failed| **failed).count() < confirm.failures as usize
}

/// A stable fraction in [0, 1) for spreading a target's runs.
fn spread_fraction(job: &str, target: &str) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (job, target).hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

fn first_run(schedule: &Schedule, spread: f64) -> Instant {
    let now = Instant::now();
    match schedule {
        Schedule::Every(every) => now + (*every).min(MAX_JITTER).mul_f64(spread),
        Schedule::Cron(..) => next_run(schedule, now, spread),
    }
}

fn next_run(schedule: &Schedule, after: Instant, spread: f64) -> Instant {
    match schedule {
        Schedule::Every(every) => {
            let next = after + *every;
            // After a long stall (suspend, overload) do not fire a burst of
            // catch-up runs: skip to the next tick in the future.
            let now = Instant::now();
            if next + *every < now {
                now + *every
            } else {
                next
            }
        }
        Schedule::Cron(cron, _) => {
            let now_wall = chrono::Utc::now();
            let wait = cron
                .after(&now_wall)
                .next()
                .and_then(|t| (t - now_wall).to_std().ok())
                .unwrap_or(Duration::from_secs(3600));
            Instant::now() + wait + MAX_JITTER.mul_f64(spread / 2.0)
        }
    }
}

/// interval × 2^(failures − BACKOFF_AFTER + 1), at most MAX_BACKOFF (or the
/// interval when that is longer).
pub fn backoff_delay(interval: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(BACKOFF_AFTER).min(16) + 1;
    let cap = MAX_BACKOFF.max(interval);
    interval.saturating_mul(1 << exponent).min(cap)
}

fn instant_to_ms(at: Instant) -> i64 {
    let now = Instant::now();
    if at >= now {
        now_ms() + (at - now).as_millis() as i64
    } else {
        now_ms() - (now - at).as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_is_n_failures_of_the_last_m() {
        let confirm = crate::config::Confirm { failures: 2, of: 3 };
        let mut window = std::collections::VecDeque::new();
        let verdicts: Vec<bool> = [true, false, true, false, false, true, true, true]
            .into_iter()
            .map(|success| confirmed_success(&mut window, confirm, success))
            .collect();
        // One failure in three is not enough; the second makes it down, and
        // it stays down until the window holds fewer than two failures.
        assert_eq!(
            verdicts,
            [true, true, true, false, false, false, true, true]
        );
        assert_eq!(window.len(), 3);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff_delay(s, 3), Duration::from_secs(2));
        assert_eq!(backoff_delay(s, 4), Duration::from_secs(4));
        assert_eq!(backoff_delay(s, 5), Duration::from_secs(8));
        assert_eq!(backoff_delay(s, 40), MAX_BACKOFF);
        let hour = Duration::from_secs(3600);
        assert_eq!(
            backoff_delay(hour, 3),
            hour,
            "a long interval is never shortened"
        );
    }

    #[test]
    fn spread_is_stable_and_in_range() {
        let a = spread_fraction("job", "t1");
        assert_eq!(a, spread_fraction("job", "t1"));
        assert!((0.0..1.0).contains(&a));
    }

    #[test]
    fn every_schedule_keeps_cadence_and_skips_stalls() {
        let every = Schedule::Every(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(next_run(&every, now, 0.0), now + Duration::from_secs(10));
        let long_ago = now - Duration::from_secs(100);
        assert!(
            next_run(&every, long_ago, 0.0) > now,
            "no catch-up burst after a stall"
        );
    }
}
