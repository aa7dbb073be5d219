//! Detector jobs (`[[detectors]]`): a detector plugin run over the series a
//! PromQL expression yields, its verdicts and forecasts written back as
//! series, its learned state persisted.
//!
//! Every `every`, at a tick aligned to the interval, a detector evaluates
//! its expression over the ticks it has not seen yet (a range query at step
//! `every`: one step normally, more after lookout was down, up to `history`
//! back; at the first start it learns from `history` of stored data). Each
//! resulting series is one detector state: the new points go to the plugin
//! in shards of [`SHARD_SERIES`] series per fresh instance, which restores
//! each series' state, observes, forecasts when asked, and saves.
//!
//! Outputs, labelled like the source series (without its name) plus
//! `detector="<name>"`: `anomaly_score`, `anomaly` (0/1), and for
//! forecasting detectors `forecast` (the value `horizon` ahead) and
//! `forecast_seconds_to_threshold` (+Inf when the threshold is not reached
//! within the horizon). Rules use them like any metric. Points learned from
//! history older than 5 minutes (PromQL's lookback) give no outputs: a
//! first start learns hours of history without writing them back.
//!
//! Durability: states are committed to redb every [`CHECKPOINT_EVERY`] and at
//! shutdown. After a crash, the ticks since the last checkpoint are
//! replayed from the stored series (they are in the tsdb), so a restart
//! loses nothing the detector learned; outputs replayed for ticks already
//! written are refused by the tsdb as duplicates.
//!
//! A series silent for longer than `history` (at least an hour) is
//! forgotten: dropped from memory, its state deleted at the next
//! checkpoint, an open anomaly ended at its last point.
//!
//! The API's intelligence endpoints read [`DetectionBoard`]: current
//! anomalies with a confidence, forecasts, and anomalies that started close
//! together grouped oldest first (a root-cause hint).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::DetectorJob;
use crate::model::{Grants, Point};
use crate::query::QueryService;
use crate::runtime::{DetectRequest, ForecastRequest, Invocation, Plugin, Runtime};
use crate::storage::{Storage, now_ms};

/// Series per call into a detector plugin (one fresh instance each): the
/// saved states of a shard come back within the output cap (64 × a k-means
/// ensemble's 14 KB is under 1 MiB), and instantiating costs ~12 µs a shard.
pub const SHARD_SERIES: usize = 64;

/// Points per call: a first round learning hours of history sends many
/// points per series, and verdicts come back within the output cap.
pub const SHARD_POINTS: usize = 50_000;

/// How often learned states are committed (and at shutdown).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// How far before the last tick a plain selector's samples are read again:
/// a sample is stamped with its scrape's start and may be stored later.
const RAW_OVERLAP_MS: i64 = 60_000;

/// Least silence after which a series is forgotten (see `round`).
const STALE_AFTER_MS: i64 = 3_600_000;

/// How far back from a tick outputs are written (PromQL's lookback).
const OUTPUT_LOOKBACK_MS: i64 = 300_000;

/// Verdicts a series' confidence is taken over.
const CONFIDENCE_POINTS: u32 = 10;

/// Ended anomalies kept for insights, and for how long.
const EPISODES_KEPT: usize = 10_000;
const EPISODE_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// Format of a persisted series state.
const PERSISTED_VERSION: u8 = 2;
/// Version 1 lacked the verdict block (score, open anomaly, recent
/// verdicts); such states still load, as not anomalous.
const PERSISTED_VERSION_1: u8 = 1;
/// The key, in a job's states, of the anomalies that ended (JSON), so
/// insights survive a restart; no series key starts with a control byte.
const ENDED_KEY: &str = "\u{1}ended";

/// Series keys with their last values, and their requests, for one call.
type Shard = (Vec<(String, f64)>, Vec<DetectRequest>);

/// One detector job and everything it learned, shared with the API.
pub struct DetectorTask {
    pub job: DetectorJob,
    state: Mutex<DetectorState>,
}

#[derive(Default)]
struct DetectorState {
    series: HashMap<String, SeriesState>,
    /// The last tick processed (every series' points up to it are learned).
    last_tick_ms: Option<i64>,
    /// Anomalies that ended, newest last.
    ended: VecDeque<Episode>,
    rounds: u64,
    last_error: Option<String>,
    last_round_ms: Option<i64>,
    last_round_seconds: f64,
    last_checkpoint_ms: Option<i64>,
    /// Series dropped since the last checkpoint, whose states it deletes.
    forgotten: Vec<String>,
    /// `ended` changed since the last checkpoint.
    ended_dirty: bool,
}

struct SeriesState {
    labels: Vec<(String, String)>,
    saved: Option<Vec<u8>>,
    /// Newest point learned.
    last_ms: i64,
    last_value: f64,
    score: f64,
    anomalous: bool,
    /// Start of the current anomaly.
    since_ms: Option<i64>,
    peak_score: f64,
    /// The last verdicts, newest in bit 0.
    recent: u32,
    recent_len: u32,
    forecast: Option<crate::model::Forecast>,
    /// Changed since the last checkpoint.
    dirty: bool,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct Episode {
    detector: String,
    labels: BTreeMap<String, String>,
    started_ms: i64,
    ended_ms: Option<i64>,
    peak_score: f64,
}

/// Every detector job, for the scheduler and the API.
#[derive(Clone, Default)]
pub struct DetectionBoard {
    tasks: Vec<Arc<DetectorTask>>,
}

impl DetectionBoard {
    /// Loads each job's persisted states (dropping those written for another
    /// plugin, config or expression).
    pub fn open(jobs: &[DetectorJob], storage: &Storage) -> DetectionBoard {
        let tasks = jobs
            .iter()
            .map(|job| {
                let mut state = DetectorState::default();
                let fingerprint = fingerprint(job);
                match storage.detector_states(&job.name) {
                    Ok(saved) => {
                        let mut stale = Vec::new();
                        for (key, bytes) in saved {
                            if key == ENDED_KEY {
                                // What happened stays true under a new config.
                                match serde_json::from_slice::<VecDeque<Episode>>(&bytes) {
                                    Ok(ended) => state.ended = ended,
                                    Err(e) => tracing::warn!(detector = %job.name, error = %e, "unreadable ended anomalies; starting without them"),
                                }
                                continue;
                            }
                            match decode_persisted(&bytes, fingerprint) {
                                Some(series) => {
                                    state.last_tick_ms = state.last_tick_ms.max(Some(series.last_ms));
                                    state.series.insert(key, series);
                                }
                                None => stale.push((key, None)),
                            }
                        }
                        if !stale.is_empty() {
                            tracing::info!(detector = %job.name, series = stale.len(), "dropping states learned with another plugin, config or series expression");
                            if let Err(e) = storage.put_detector_states(&job.name, &stale) {
                                tracing::error!(detector = %job.name, error = %e, "dropping stale detector states");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(detector = %job.name, error = %e, "reading detector states")
                    }
                }
                Arc::new(DetectorTask {
                    job: job.clone(),
                    state: Mutex::new(state),
                })
            })
            .collect();
        DetectionBoard { tasks }
    }

    /// Starts one task per detector job.
    pub fn spawn(
        &self,
        plugins: HashMap<String, Plugin>,
        runtime: Arc<Runtime>,
        query: QueryService,
        storage: Arc<Storage>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.tasks
            .iter()
            .filter_map(|task| {
                let Some(plugin) = plugins.get(&task.job.plugin).cloned() else {
                    tracing::error!(detector = %task.job.name, plugin = %task.job.plugin, "detector plugin not loaded; detector not started");
                    return None;
                };
                let (task, runtime, query, storage, mut shutdown) = (
                    task.clone(),
                    runtime.clone(),
                    query.clone(),
                    storage.clone(),
                    shutdown.clone(),
                );
                Some(tokio::spawn(async move {
                    let every_ms = task.job.every.as_millis().max(1) as i64;
                    // The first round learns all of `history`: worth keeping
                    // at once, not only after CHECKPOINT_EVERY.
                    let mut checkpointed: Option<Instant> = None;
                    loop {
                        let now = now_ms();
                        let tick = now - now.rem_euclid(every_ms);
                        task.round(&plugin, &runtime, &query, tick).await;
                        if checkpointed.is_none_or(|at| at.elapsed() >= CHECKPOINT_EVERY) {
                            task.checkpoint(&storage).await;
                            checkpointed = Some(Instant::now());
                        }
                        let next = tick + every_ms;
                        let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => {
                                task.checkpoint(&storage).await;
                                return;
                            }
                        }
                    }
                }))
            })
            .collect()
    }

    /// One round of every detector at `tick`, as the running tasks do each
    /// interval; for benchmarks and tests that drive time themselves.
    pub async fn round_at(
        &self,
        plugins: &HashMap<String, Plugin>,
        runtime: &Runtime,
        query: &QueryService,
        tick: i64,
    ) {
        for task in &self.tasks {
            if let Some(plugin) = plugins.get(&task.job.plugin) {
                task.round(plugin, runtime, query, tick).await;
            }
        }
    }

    /// Series whose latest verdict is anomalous, highest score first.
    pub fn anomalies(&self, detector: Option<&str>) -> Vec<AnomalyView> {
        let mut out = Vec::new();
        for task in self.selected(detector) {
            let state = task.lock();
            for series in state.series.values().filter(|s| s.anomalous) {
                out.push(AnomalyView {
                    detector: task.job.name.clone(),
                    plugin: task.job.plugin.clone(),
                    labels: series.labels.iter().cloned().collect(),
                    value: series.last_value,
                    score: series.score,
                    confidence: series.confidence(),
                    started_ms: series.since_ms.unwrap_or(series.last_ms),
                    at_ms: series.last_ms,
                });
            }
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out
    }

    /// The latest forecast of every series of forecasting detectors, soonest
    /// threshold crossing first.
    pub fn predictions(&self, detector: Option<&str>) -> Vec<PredictionView> {
        let mut out = Vec::new();
        for task in self.selected(detector) {
            let Some(ask) = task.job.forecast else {
                continue;
            };
            let state = task.lock();
            for series in state.series.values() {
                let Some(forecast) = series.forecast else {
                    continue;
                };
                out.push(PredictionView {
                    detector: task.job.name.clone(),
                    plugin: task.job.plugin.clone(),
                    labels: series.labels.iter().cloned().collect(),
                    value: series.last_value,
                    at_ms: series.last_ms,
                    horizon_seconds: ask.horizon.as_secs_f64(),
                    forecast: forecast.value,
                    threshold: ask.threshold,
                    seconds_to_threshold: forecast.seconds_to_threshold,
                });
            }
        }
        out.sort_by(|a, b| {
            let key = |p: &PredictionView| p.seconds_to_threshold.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        out
    }

    /// Anomalies (current, and ended within `lookback_ms`) grouped by start:
    /// an anomaly starting within `window_ms` of the previous one in time
    /// order joins its group. Groups newest first; inside a group the
    /// earliest start comes first, as the likeliest cause.
    pub fn insights(&self, window_ms: i64, lookback_ms: i64) -> Vec<InsightView> {
        let since = now_ms() - lookback_ms;
        let mut episodes: Vec<Episode> = Vec::new();
        for task in &self.tasks {
            let state = task.lock();
            episodes.extend(
                state
                    .ended
                    .iter()
                    .filter(|e| e.ended_ms.unwrap_or(i64::MAX) >= since)
                    .cloned(),
            );
            for series in state.series.values() {
                if let Some(started_ms) = series.since_ms {
                    episodes.push(Episode {
                        detector: task.job.name.clone(),
                        labels: series.labels.iter().cloned().collect(),
                        started_ms,
                        ended_ms: None,
                        peak_score: series.peak_score,
                    });
                }
            }
        }
        episodes.sort_by_key(|e| e.started_ms);
        let mut groups: Vec<Vec<Episode>> = Vec::new();
        for episode in episodes {
            match groups.last_mut() {
                Some(group)
                    if episode.started_ms
                        - group.last().expect("groups are never empty").started_ms
                        <= window_ms =>
                {
                    group.push(episode)
                }
                _ => groups.push(vec![episode]),
            }
        }
        groups.reverse();
        groups
            .into_iter()
            .map(|anomalies| InsightView {
                started_ms: anomalies[0].started_ms,
                active: anomalies.iter().any(|e| e.ended_ms.is_none()),
                probable_cause: anomalies[0].clone().into(),
                anomalies: anomalies.into_iter().map(Into::into).collect(),
            })
            .collect()
    }

    /// Each detector's status, for `/api/v1/detectors`.
    pub fn status(&self) -> Vec<DetectorStatus> {
        self.tasks
            .iter()
            .map(|task| {
                let state = task.lock();
                DetectorStatus {
                    name: task.job.name.clone(),
                    plugin: task.job.plugin.clone(),
                    series_expr: task.job.series.clone(),
                    every_seconds: task.job.every.as_secs_f64(),
                    series: state.series.len(),
                    anomalous: state.series.values().filter(|s| s.anomalous).count(),
                    rounds: state.rounds,
                    last_tick_ms: state.last_tick_ms,
                    last_round_ms: state.last_round_ms,
                    last_round_seconds: state.last_round_seconds,
                    last_checkpoint_ms: state.last_checkpoint_ms,
                    last_error: state.last_error.clone(),
                }
            })
            .collect()
    }

    fn selected<'a>(
        &'a self,
        detector: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<DetectorTask>> {
        self.tasks
            .iter()
            .filter(move |t| detector.is_none_or(|d| t.job.name == d))
    }
}

impl DetectorTask {
    fn lock(&self) -> std::sync::MutexGuard<'_, DetectorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learns every tick up to `tick` and writes the outputs.
    async fn round(&self, plugin: &Plugin, runtime: &Runtime, query: &QueryService, tick: i64) {
        let started = Instant::now();
        let job = &self.job;
        let every_ms = job.every.as_millis().max(1) as i64;
        let history_start = tick - job.history.as_millis() as i64;
        let start = match self.lock().last_tick_ms {
            Some(last) => (last + every_ms).max(history_start),
            None => history_start,
        };
        if start > tick {
            return;
        }
        // A plain selector's samples are read as stored, each once (from a
        // little before the last tick, as a scrape may be stored after the
        // tick it is stamped with); any other expression is evaluated at
        // every tick not seen yet.
        let (expr, q) = (job.series.clone(), query.clone());
        let raw_start = (start - every_ms - RAW_OVERLAP_MS).max(history_start);
        let value =
            tokio::task::spawn_blocking(move || match q.raw_samples(&expr, raw_start, tick) {
                Some(raw) => raw,
                None => match q.range(&expr, start, tick, every_ms) {
                    Ok(lookout_promql::Value::Matrix(series)) => Ok(series),
                    Ok(_) => Ok(Vec::new()),
                    Err(e) => Err(e.to_string()),
                },
            })
            .await;
        let matrix = match value {
            Ok(Ok(series)) => series,
            Ok(Err(e)) => return self.failed(format!("evaluating `{}`: {e}", job.series)),
            Err(e) => return self.failed(format!("evaluating `{}`: {e}", job.series)),
        };

        // Each series' unseen points, with the state to resume from.
        let mut keys = Vec::new();
        let mut requests = Vec::new();
        {
            let mut state = self.lock();
            for series in matrix {
                let key = series_key(&series.labels);
                let entry = state
                    .series
                    .entry(key.clone())
                    .or_insert_with(|| SeriesState::new(series.labels.clone(), None, i64::MIN));
                let points: Vec<Point> = series
                    .samples
                    .iter()
                    .filter(|(t, v)| *t > entry.last_ms && v.is_finite())
                    .map(|&(timestamp_ms, value)| Point {
                        timestamp_ms,
                        value,
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                keys.push((key, points.last().expect("not empty").value));
                requests.push(DetectRequest {
                    state: entry.saved.clone(),
                    points,
                    forecast: job.forecast.map(|f| ForecastRequest {
                        horizon_ms: f.horizon.as_millis() as i64,
                        threshold: f.threshold,
                    }),
                });
            }
        }

        // Points learned from older history are not written back: the
        // outputs start where an instant query looks (the last 5 minutes).
        let write_from = tick - every_ms.max(OUTPUT_LOOKBACK_MS);
        let grants = Grants::default();
        let mut rows: Vec<(lookout_tsdb::Labels, i64, f64)> = Vec::new();
        let mut errors = Vec::new();
        // Shards of at most SHARD_SERIES series and SHARD_POINTS points
        // (a series with more points still goes whole, alone).
        let mut shards: Vec<Shard> = Vec::new();
        for (key, request) in keys.into_iter().zip(requests) {
            let fits = shards.last().is_some_and(|(k, r)| {
                k.len() < SHARD_SERIES
                    && r.iter().map(|r| r.points.len()).sum::<usize>() + request.points.len()
                        <= SHARD_POINTS
            });
            if !fits {
                shards.push((Vec::new(), Vec::new()));
            }
            let (k, r) = shards.last_mut().expect("just pushed");
            k.push(key);
            r.push(request);
        }
        for (shard_keys, shard) in shards {
            let target = format!("{} series", shard.len());
            let inv = Invocation {
                job: &job.name,
                target: &target,
                config: &job.config_json,
                grants: &grants,
                limits: &job.limits,
            };
            let outcomes = match runtime.detect(plugin, &inv, shard).await {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    // The shard keeps its states; its points come again
                    // next round (they are newer than what it learned).
                    errors.push(format!("{} ({}): {}", job.plugin, e.kind, e.message));
                    continue;
                }
            };
            let mut state = self.lock();
            for ((key, last_value), outcome) in shard_keys.iter().zip(outcomes) {
                let last_value = *last_value;
                let Some(series) = state.series.get_mut(key) else {
                    continue;
                };
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        errors.push(format!("{}: {e}", shown_labels(&series.labels)));
                        continue;
                    }
                };
                if let Some(why) = &outcome.restarted {
                    tracing::warn!(detector = %job.name, series = %shown_labels(&series.labels), "saved state refused, learning afresh: {why}");
                }
                let out_labels = output_labels(&series.labels, &job.name);
                let (score_labels, anomaly_labels) = (
                    named("anomaly_score", &out_labels),
                    named("anomaly", &out_labels),
                );
                let mut ended = None;
                for verdict in &outcome.verdicts {
                    if verdict.timestamp_ms >= write_from {
                        if !verdict.score.is_nan() {
                            rows.push((score_labels.clone(), verdict.timestamp_ms, verdict.score));
                        }
                        rows.push((
                            anomaly_labels.clone(),
                            verdict.timestamp_ms,
                            f64::from(u8::from(verdict.anomalous)),
                        ));
                    }
                    if let Some(episode) = series.learn(verdict) {
                        ended = Some(episode);
                    }
                }
                if let Some(last) = outcome.verdicts.last() {
                    series.last_ms = last.timestamp_ms;
                }
                series.last_value = last_value;
                series.saved = Some(outcome.state);
                series.dirty = true;
                if let Some(forecast) = outcome.forecast {
                    series.forecast = Some(forecast);
                    rows.push((
                        named("forecast", &out_labels),
                        series.last_ms,
                        forecast.value,
                    ));
                    if job.forecast.is_some_and(|f| f.threshold.is_some()) {
                        rows.push((
                            named("forecast_seconds_to_threshold", &out_labels),
                            series.last_ms,
                            forecast.seconds_to_threshold.unwrap_or(f64::INFINITY),
                        ));
                    }
                }
                if let Some((started_ms, ended_ms, peak_score)) = ended {
                    let episode = Episode {
                        detector: job.name.clone(),
                        labels: series.labels.iter().cloned().collect(),
                        started_ms,
                        ended_ms: Some(ended_ms),
                        peak_score,
                    };
                    state.ended.push_back(episode);
                    state.ended_dirty = true;
                }
            }
        }
        if !rows.is_empty() {
            let tsdb = query.tsdb().clone();
            match tokio::task::spawn_blocking(move || tsdb.append(&rows)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => errors.push(format!("storing detector output: {e}")),
                Err(e) => errors.push(format!("storing detector output: {e}")),
            }
        }
        let mut state = self.lock();
        let now = now_ms();
        // Series that stopped: forgotten (their state deleted at the next
        // checkpoint) once they have been silent longer than `history` or
        // an hour, whichever is longer; an open anomaly ends where it was.
        let silent_since = tick - (job.history.as_millis() as i64).max(STALE_AFTER_MS);
        state.forget_silent(silent_since, &job.name);
        while state.ended.len() > EPISODES_KEPT
            || state
                .ended
                .front()
                .is_some_and(|e| e.ended_ms.unwrap_or(now) < now - EPISODE_MEMORY_MS)
        {
            state.ended.pop_front();
            state.ended_dirty = true;
        }
        state.rounds += 1;
        state.last_round_ms = Some(now);
        state.last_round_seconds = started.elapsed().as_secs_f64();
        if errors.is_empty() {
            state.last_tick_ms = Some(tick);
            state.last_error = None;
        } else {
            // The tick stays unlearned, so failed shards get its points
            // again next round; series that did learn skip them (they are
            // not newer than what they saw).
            tracing::warn!(detector = %job.name, errors = errors.len(), "detector round: {}", errors[0]);
            state.last_error = Some(errors.swap_remove(0));
        }
    }

    fn failed(&self, message: String) {
        tracing::warn!(detector = %self.job.name, "{message}");
        let mut state = self.lock();
        state.last_error = Some(message);
        state.rounds += 1;
    }

    /// Commits the states changed since the last checkpoint.
    async fn checkpoint(&self, storage: &Arc<Storage>) {
        let fingerprint = fingerprint(&self.job);
        let changed: Vec<(String, Option<Vec<u8>>)> = {
            let mut state = self.lock();
            let mut changed: Vec<(String, Option<Vec<u8>>)> = state
                .series
                .iter_mut()
                .filter(|(_, s)| s.dirty && s.saved.is_some())
                .map(|(key, s)| {
                    s.dirty = false;
                    (key.clone(), Some(encode_persisted(s, fingerprint)))
                })
                .collect();
            changed.extend(state.forgotten.drain(..).map(|key| (key, None)));
            if std::mem::take(&mut state.ended_dirty) {
                let ended = serde_json::to_vec(&state.ended).expect("episodes serialise");
                changed.push((ENDED_KEY.to_string(), Some(ended)));
            }
            changed
        };
        if changed.is_empty() {
            self.lock().last_checkpoint_ms = Some(now_ms());
            return;
        }
        let (storage, name) = (storage.clone(), self.job.name.clone());
        let count = changed.len();
        match tokio::task::spawn_blocking(move || storage.put_detector_states(&name, &changed))
            .await
        {
            Ok(Ok(())) => {
                self.lock().last_checkpoint_ms = Some(now_ms());
                tracing::debug!(detector = %self.job.name, series = count, "detector states committed")
            }
            Ok(Err(e)) => {
                tracing::error!(detector = %self.job.name, error = %e, "committing detector states")
            }
            Err(e) => {
                tracing::error!(detector = %self.job.name, error = %e, "committing detector states")
            }
        }
    }
}

impl DetectorState {
    /// Drops series with no point since `silent_since`, remembering their
    /// keys for the checkpoint to delete; an open anomaly ends at the
    /// series' last point.
    fn forget_silent(&mut self, silent_since: i64, detector: &str) {
        let silent: Vec<String> = self
            .series
            .iter()
            .filter(|(_, s)| s.last_ms < silent_since && s.last_ms != i64::MIN)
            .map(|(key, _)| key.clone())
            .collect();
        for key in silent {
            let series = self.series.remove(&key).expect("listed above");
            if let Some(started_ms) = series.since_ms {
                self.ended.push_back(Episode {
                    detector: detector.to_string(),
                    labels: series.labels.iter().cloned().collect(),
                    started_ms,
                    ended_ms: Some(series.last_ms),
                    peak_score: series.peak_score,
                });
                self.ended_dirty = true;
            }
            self.forgotten.push(key);
        }
    }
}

impl SeriesState {
    /// A series resuming from `saved` (none: new), having learned up to
    /// `last_ms`; changed until the next checkpoint.
    fn new(labels: Vec<(String, String)>, saved: Option<Vec<u8>>, last_ms: i64) -> SeriesState {
        SeriesState {
            labels,
            saved,
            last_ms,
            last_value: f64::NAN,
            score: f64::NAN,
            anomalous: false,
            since_ms: None,
            peak_score: 0.0,
            recent: 0,
            recent_len: 0,
            forecast: None,
            dirty: true,
        }
    }

    /// Takes in one verdict; returns an anomaly that just ended (start,
    /// end, peak score).
    fn learn(&mut self, verdict: &crate::model::Verdict) -> Option<(i64, i64, f64)> {
        self.score = verdict.score;
        self.recent = (self.recent << 1) | u32::from(verdict.anomalous);
        self.recent_len = (self.recent_len + 1).min(CONFIDENCE_POINTS);
        let mut ended = None;
        match (self.anomalous, verdict.anomalous) {
            (false, true) => {
                self.since_ms = Some(verdict.timestamp_ms);
                self.peak_score = verdict.score;
            }
            (true, true) => self.peak_score = self.peak_score.max(verdict.score),
            (true, false) => {
                if let Some(since) = self.since_ms.take() {
                    ended = Some((since, verdict.timestamp_ms, self.peak_score));
                }
            }
            (false, false) => {}
        }
        self.anomalous = verdict.anomalous;
        ended
    }

    /// Share of the last [`CONFIDENCE_POINTS`] verdicts that were anomalous.
    fn confidence(&self) -> f64 {
        if self.recent_len == 0 {
            return 0.0;
        }
        let mask = (1u32 << self.recent_len) - 1;
        f64::from((self.recent & mask).count_ones()) / f64::from(self.recent_len)
    }
}

/// `/api/v1/anomalies` entry.
#[derive(Debug, Serialize)]
pub struct AnomalyView {
    pub detector: String,
    pub plugin: String,
    pub labels: BTreeMap<String, String>,
    /// The series' value at the latest point.
    pub value: f64,
    pub score: f64,
    /// Share of the series' last 10 verdicts that were anomalous.
    pub confidence: f64,
    pub started_ms: i64,
    pub at_ms: i64,
}

/// `/api/v1/predictions` entry.
#[derive(Debug, Serialize)]
pub struct PredictionView {
    pub detector: String,
    pub plugin: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub at_ms: i64,
    pub horizon_seconds: f64,
    pub forecast: f64,
    pub threshold: Option<f64>,
    pub seconds_to_threshold: Option<f64>,
}

/// `/api/v1/insights` entry: anomalies that started close together.
#[derive(Debug, Serialize)]
pub struct InsightView {
    pub started_ms: i64,
    /// Some member is still anomalous.
    pub active: bool,
    /// The member that started first.
    pub probable_cause: InsightMember,
    /// Oldest start first.
    pub anomalies: Vec<InsightMember>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InsightMember {
    pub detector: String,
    pub labels: BTreeMap<String, String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub peak_score: f64,
}

impl From<Episode> for InsightMember {
    fn from(e: Episode) -> Self {
        InsightMember {
            detector: e.detector,
            labels: e.labels,
            started_ms: e.started_ms,
            ended_ms: e.ended_ms,
            peak_score: e.peak_score,
        }
    }
}

/// `/api/v1/detectors` entry.
#[derive(Debug, Serialize)]
pub struct DetectorStatus {
    pub name: String,
    pub plugin: String,
    pub series_expr: String,
    pub every_seconds: f64,
    pub series: usize,
    pub anomalous: usize,
    pub rounds: u64,
    pub last_tick_ms: Option<i64>,
    pub last_round_ms: Option<i64>,
    pub last_round_seconds: f64,
    /// When learned states were last committed.
    pub last_checkpoint_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A series' identity: its labels as PromQL writes them.
fn series_key(labels: &[(String, String)]) -> String {
    shown_labels(labels)
}

fn shown_labels(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// The source's labels without its name, plus `detector`, sorted.
fn output_labels(source: &[(String, String)], detector: &str) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = source
        .iter()
        .filter(|(k, _)| k != "__name__" && k != "detector")
        .cloned()
        .collect();
    labels.push(("detector".into(), detector.into()));
    labels.sort();
    labels
}

/// `labels` with `__name__` = `name` (sorted: `__name__` goes where it
/// sorts, as everywhere in the tsdb).
fn named(name: &str, labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(labels.len() + 1);
    out.push(("__name__".to_string(), name.to_string()));
    out.extend(labels.iter().cloned());
    out.sort();
    out
}

/// What states were learned with: a state of another plugin, config or
/// expression is not restored. FNV-1a: stable across builds, unlike std's
/// hasher.
fn fingerprint(job: &DetectorJob) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in [&job.plugin, &job.config_json, &job.series] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// version, fingerprint, last point ms, labels (JSON, length-prefixed),
/// then the plugin's saved bytes.
/// A series' persisted state: version, job fingerprint, last point's
/// time, labels (JSON), the verdict block — latest score, whether an
/// anomaly is open and since when, its peak, the recent verdicts, the last
/// value — and the plugin's own saved bytes.
fn encode_persisted(series: &SeriesState, fingerprint: u64) -> Vec<u8> {
    let labels = serde_json::to_vec(&series.labels).expect("labels serialise");
    let saved = series.saved.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(21 + VERDICT_BLOCK + labels.len() + saved.len());
    out.push(PERSISTED_VERSION);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&series.last_ms.to_le_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    out.extend_from_slice(&labels);
    out.extend_from_slice(&series.score.to_le_bytes());
    out.push(u8::from(series.anomalous));
    out.extend_from_slice(&series.since_ms.unwrap_or(i64::MIN).to_le_bytes());
    out.extend_from_slice(&series.peak_score.to_le_bytes());
    out.extend_from_slice(&series.recent.to_le_bytes());
    out.extend_from_slice(&series.recent_len.to_le_bytes());
    out.extend_from_slice(&series.last_value.to_le_bytes());
    out.extend_from_slice(saved);
    out
}

/// Bytes of the verdict block: score, anomalous, since, peak, recent,
/// recent_len, the series' last value.
const VERDICT_BLOCK: usize = 8 + 1 + 8 + 8 + 4 + 4 + 8;

fn decode_persisted(bytes: &[u8], fingerprint: u64) -> Option<SeriesState> {
    let (&version, rest) = bytes.split_first()?;
    if !(version == PERSISTED_VERSION || version == PERSISTED_VERSION_1) || rest.len() < 20 {
        return None;
    }
    let found = u64::from_le_bytes(rest[0..8].try_into().ok()?);
    if found != fingerprint {
        return None;
    }
    let last_ms = i64::from_le_bytes(rest[8..16].try_into().ok()?);
    let len = u32::from_le_bytes(rest[16..20].try_into().ok()?) as usize;
    let labels: Vec<(String, String)> = serde_json::from_slice(rest.get(20..20 + len)?).ok()?;
    let mut at = 20 + len;
    let mut verdicts = None;
    if version == PERSISTED_VERSION {
        let block = rest.get(at..at + VERDICT_BLOCK)?;
        let f64_at = |i: usize| block[i..i + 8].try_into().map(f64::from_le_bytes);
        let since = i64::from_le_bytes(block[9..17].try_into().ok()?);
        verdicts = Some((
            f64_at(0).ok()?,
            block[8] != 0,
            (since != i64::MIN).then_some(since),
            f64_at(17).ok()?,
            u32::from_le_bytes(block[25..29].try_into().ok()?),
            u32::from_le_bytes(block[29..33].try_into().ok()?),
            f64_at(33).ok()?,
        ));
        at += VERDICT_BLOCK;
    }
    let saved = rest[at..].to_vec();
    let mut series = SeriesState::new(labels, Some(saved), last_ms);
    if let Some((score, anomalous, since_ms, peak_score, recent, recent_len, last_value)) = verdicts
    {
        series.last_value = last_value;
        series.score = score;
        series.anomalous = anomalous;
        series.since_ms = since_ms;
        series.peak_score = peak_score;
        series.recent = recent;
        series.recent_len = recent_len.min(CONFIDENCE_POINTS);
    }
    series.dirty = false;
    Some(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> DetectorJob {
        DetectorJob {
            name: "d".into(),
            plugin: "zscore".into(),
            plugin_line: 1,
            series: "up".into(),
            every: Duration::from_secs(15),
            config_json: "{}".into(),
            forecast: None,
            history: Duration::from_secs(3600),
            limits: Default::default(),
        }
    }

    fn verdict(t: i64, anomalous: bool) -> crate::model::Verdict {
        crate::model::Verdict {
            timestamp_ms: t,
            score: if anomalous { 5.0 } else { 1.0 },
            anomalous,
        }
    }

    #[test]
    fn persisted_state_round_trips_and_another_config_is_refused() {
        let j = job();
        let series = SeriesState {
            labels: vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
            saved: Some(vec![1, 2, 3]),
            last_ms: 42,
            last_value: 7.5,
            ..blank()
        };
        let mut series = series;
        series.learn(&verdict(40, false));
        series.learn(&verdict(41, true));
        series.learn(&verdict(42, true));
        let bytes = encode_persisted(&series, fingerprint(&j));
        let back = decode_persisted(&bytes, fingerprint(&j)).unwrap();
        assert_eq!(back.labels, series.labels);
        assert_eq!(back.saved, Some(vec![1, 2, 3]));
        assert_eq!(back.last_ms, 42);
        // The open anomaly and the recent verdicts come back with it.
        assert!(back.anomalous);
        assert_eq!(back.since_ms, Some(41));
        assert_eq!(back.peak_score, 5.0);
        assert_eq!(back.score, 5.0);
        assert_eq!(back.confidence(), series.confidence());
        assert_eq!(back.last_value, 7.5);
        // A state written by version 1 (no verdict block) still loads.
        let labels = serde_json::to_vec(&series.labels).unwrap();
        let mut v1 = vec![PERSISTED_VERSION_1];
        v1.extend_from_slice(&fingerprint(&j).to_le_bytes());
        v1.extend_from_slice(&42i64.to_le_bytes());
        v1.extend_from_slice(&(labels.len() as u32).to_le_bytes());
        v1.extend_from_slice(&labels);
        v1.extend_from_slice(&[1, 2, 3]);
        let old = decode_persisted(&v1, fingerprint(&j)).unwrap();
        assert_eq!(
            (old.saved, old.last_ms, old.anomalous),
            (Some(vec![1, 2, 3]), 42, false)
        );
        let other = DetectorJob {
            config_json: r#"{"threshold":4}"#.into(),
            ..job()
        };
        assert!(decode_persisted(&bytes, fingerprint(&other)).is_none());
        assert!(decode_persisted(&bytes[..10], fingerprint(&j)).is_none());
    }

    fn blank() -> SeriesState {
        SeriesState::new(Vec::new(), None, i64::MIN)
    }

    #[test]
    fn episodes_and_confidence_follow_the_verdicts() {
        let mut s = blank();
        for t in 0..8 {
            assert!(s.learn(&verdict(t, false)).is_none());
        }
        assert_eq!(s.confidence(), 0.0);
        assert!(s.learn(&verdict(8, true)).is_none());
        assert!(s.learn(&verdict(9, true)).is_none());
        assert_eq!(s.since_ms, Some(8));
        assert_eq!(s.confidence(), 0.2);
        assert_eq!(s.learn(&verdict(10, false)), Some((8, 10, 5.0)));
        assert_eq!(s.since_ms, None);
    }

    #[test]
    fn silent_series_are_forgotten_and_their_open_anomaly_ends() {
        let mut state = DetectorState::default();
        let mut live = blank();
        live.last_ms = 5_000;
        let mut gone = SeriesState::new(vec![("job".into(), "x".into())], None, 1_000);
        gone.learn(&verdict(1_000, true));
        let fresh = blank(); // created this round, no point learned yet
        state.series.insert("live".into(), live);
        state.series.insert("gone".into(), gone);
        state.series.insert("fresh".into(), fresh);
        state.forget_silent(2_000, "d");
        let mut kept: Vec<&String> = state.series.keys().collect();
        kept.sort();
        assert_eq!(kept, ["fresh", "live"]);
        assert_eq!(state.forgotten, ["gone"]);
        let ended = &state.ended[0];
        assert_eq!((ended.started_ms, ended.ended_ms), (1_000, Some(1_000)));
        assert_eq!(ended.labels["job"], "x");
    }

    #[test]
    fn outputs_keep_the_source_labels_but_its_name() {
        let source = vec![
            ("__name__".to_string(), "probe_duration_seconds".to_string()),
            ("instance".to_string(), "a:80".to_string()),
        ];
        let labels = output_labels(&source, "lat");
        assert_eq!(
            named("anomaly_score", &labels),
            vec![
                ("__name__".to_string(), "anomaly_score".to_string()),
                ("detector".to_string(), "lat".to_string()),
                ("instance".to_string(), "a:80".to_string()),
            ]
        );
    }
}
