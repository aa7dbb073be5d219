//! lookout's database: one redb file (`lookout.redb` in the data
//! directory) holding the plugin registry, every invocation's result and
//! each plugin's key-value state.
//!
//! Durability: every write commits with redb's default
//! `Durability::Immediate` (fsync) before the caller hears back, so a
//! result the API has shown survives kill -9. Results arrive from many tasks
//! at once; [`Storage::record`] hands them to one writer thread that commits
//! whatever has queued in one transaction (group commit: a commit costs
//! ~4 ms of fsync here, so one per result would cap throughput near 250/s).
//!
//! Samples also travel inside the result record (what the plugin returned,
//! as returned); the time-series engine (`lookout-tsdb`) shares this
//! database file through [`Storage::database`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::model::{Grants, InvocationRecord, World};
use crate::runtime::PluginStateStore;

/// name → JSON [`PluginRecord`].
const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
/// (job, target, started_ms, seq) → JSON [`InvocationRecord`].
const RESULTS: TableDefinition<(&str, &str, i64, u64), &[u8]> = TableDefinition::new("results");
/// (started_ms, seq) → (job, target): the time index retention walks.
const RESULTS_BY_TIME: TableDefinition<(i64, u64), (&str, &str)> =
    TableDefinition::new("results_by_time");
/// (plugin, key) → value: each plugin's private state.
const PLUGIN_KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("plugin_kv");

/// Alerting state by name (rule groups' `for` state, the dispatcher's
/// groups and notification log, silences), each a serialised snapshot.
const ALERTING_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("alerting_state");
/// id → JSON [`OutboxItem`]: notifications waiting for delivery.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("alerting_outbox");
/// id → JSON [`OutboxItem`]: notifications a receiver refused for good.
const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerting_dead_letters");
/// (ms, seq) → JSON [`HistoryEvent`]: what alerts did and who was told.
const ALERT_HISTORY: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("alerting_history");
/// (detector job, series key) → what the detector saved for that series
/// (see `detection`).
const DETECTOR_STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("detector_state");

/// Results one group commit takes at most; bounds a commit's latency.
const MAX_GROUP_COMMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "database {path} is in use by another lookout process (stop `lookout serve` first, or use another --data directory)"
    )]
    InUse { path: String },
    #[error("database: {0}")]
    Database(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("storage writer has stopped")]
    WriterGone,
}

fn db_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Database(e.to_string())
}

/// An installed plugin, as the registry keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    pub world: World,
    pub version: String,
    pub description: String,
    /// Hex sha256 of the component; also its file name under `plugins/`.
    pub sha256: String,
    pub size_bytes: u64,
    /// What the plugin asked for in `describe`.
    pub requested: Grants,
    /// What the installer granted (the operator may add per job in the config).
    pub grants: Grants,
    pub config_schema: Option<String>,
    pub installed_ms: i64,
    /// Where it was installed from: a file path, a URL, an OCI reference
    /// with its manifest digest. None for records older than the field.
    #[serde(default)]
    pub source: Option<String>,
    /// Fingerprint of the trusted key whose signature was verified at
    /// install (see `signing`); none for an unsigned install.
    #[serde(default)]
    pub signed_by: Option<String>,
}

/// Where finished invocations go (`ingest::ResultWriter` in `serve`: the
/// result record here, its samples to the time-series engine).
pub trait ResultSink: Send + Sync {
    /// Stores `record` durably; `series` says how its samples become series.
    fn record(
        &self,
        record: InvocationRecord,
        series: &crate::ingest::SeriesOptions,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// A notification waiting for (another) delivery attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub receiver: String,
    /// Index of the integration within its kind's list in the receiver.
    pub integration: usize,
    /// The integration's kind (`webhook`, `slack`, `pagerduty`, `email`):
    /// also the name of the notifier plugin that delivers it.
    #[serde(default)]
    pub integration_kind: String,
    /// The dispatcher's id of this notification, to report the outcome.
    #[serde(default)]
    pub notification_id: String,
    pub notification: crate::model::Notification,
    /// Stable per alert group: receivers deduplicate on it across retries and restarts.
    pub dedup_key: String,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    /// Retries end here (the dispatcher's group_interval budget).
    #[serde(default)]
    pub retry_deadline_ms: i64,
    pub created_ms: i64,
    pub last_error: Option<String>,
}

/// One line of the alert and notification history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub at_ms: i64,
    /// `firing`, `resolved`, `notified`, `delivery_failed`, `dead_letter`, `acknowledged`.
    pub kind: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub receiver: Option<String>,
    pub group_key: Option<String>,
    pub detail: String,
}

/// What one alerting step changes, committed in a single transaction so a
/// notification exists exactly when the state change that caused it does.
#[derive(Debug, Default)]
pub struct AlertingCommit {
    pub state: Vec<(String, Vec<u8>)>,
    pub outbox: Vec<OutboxItem>,
    pub history: Vec<HistoryEvent>,
}

/// Filters for reading results back.
#[derive(Clone, Debug, Default)]
pub struct ResultQuery {
    pub job: Option<String>,
    pub target: Option<String>,
    /// Only results that started at or after this time (ms since epoch).
    pub since_ms: Option<i64>,
    /// The newest this many, returned oldest first.
    pub limit: usize,
}

type WriteRequest = (InvocationRecord, oneshot::Sender<Result<(), StorageError>>);

/// The database handle; clone-cheap through `Arc`.
pub struct Storage {
    db: Arc<Database>,
    writer: std::sync::mpsc::Sender<WriteRequest>,
}

impl Storage {
    /// Opens (or creates) `lookout.redb` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Arc<Storage>, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(db_err)?;
        let path = data_dir.join("lookout.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse {
                path: path.display().to_string(),
            },
            other => db_err(other),
        })?;
        let db = Arc::new(db);
        let tx = db.begin_write().map_err(db_err)?;
        {
            tx.open_table(PLUGINS).map_err(db_err)?;
            tx.open_table(RESULTS).map_err(db_err)?;
            tx.open_table(RESULTS_BY_TIME).map_err(db_err)?;
            tx.open_table(PLUGIN_KV).map_err(db_err)?;
            tx.open_table(ALERTING_STATE).map_err(db_err)?;
            tx.open_table(OUTBOX).map_err(db_err)?;
            tx.open_table(DEAD_LETTERS).map_err(db_err)?;
            tx.open_table(ALERT_HISTORY).map_err(db_err)?;
            tx.open_table(DETECTOR_STATE).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;

        // Sequence numbers only break ties between results of the same
        // millisecond; starting from the clock keeps them unique across restarts.
        let seq = AtomicU64::new(now_ms() as u64 * 1_000_000);
        let (writer, queue) = std::sync::mpsc::channel::<WriteRequest>();
        let db2 = db.clone();
        std::thread::Builder::new()
            .name("lookout-storage".into())
            .spawn(move || write_loop(&db2, &seq, queue))
            .map_err(db_err)?;
        Ok(Arc::new(Storage { db, writer }))
    }

    /// The database, for the time-series engine that shares the file.
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    // ---- plugin registry -------------------------------------------------

    pub fn put_plugin(&self, record: &PluginRecord) -> Result<(), StorageError> {
        let json = serde_json::to_vec(record).map_err(db_err)?;
        let tx = self.db.begin_write().map_err(db_err)?;
        tx.open_table(PLUGINS)
            .map_err(db_err)?
            .insert(record.name.as_str(), json.as_slice())
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    pub fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(PLUGINS).map_err(db_err)?;
        match table.get(name).map_err(db_err)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(v.value())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn plugins(&self) -> Result<Vec<PluginRecord>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(PLUGINS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Removes the plugin's record and its key-value state; returns whether it existed.
    pub fn remove_plugin(&self, name: &str) -> Result<bool, StorageError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let existed = tx
            .open_table(PLUGINS)
            .map_err(db_err)?
            .remove(name)
            .map_err(db_err)?
            .is_some();
        {
            let mut kv = tx.open_table(PLUGIN_KV).map_err(db_err)?;
            let end = format!("{name}\0");
            kv.retain_in((name, "")..(end.as_str(), ""), |_, _| false)
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(existed)
    }

    // ---- detectors -----------------------------------------------------------

    /// Writes detector states (`None` deletes one) in one durable commit.
    pub fn put_detector_states(
        &self,
        detector: &str,
        states: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), StorageError> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_quick_repair(true);
        {
            let mut table = tx.open_table(DETECTOR_STATE).map_err(db_err)?;
            for (series, state) in states {
                match state {
                    Some(bytes) => {
                        table
                            .insert((detector, series.as_str()), bytes.as_slice())
                            .map_err(db_err)?;
                    }
                    None => {
                        table.remove((detector, series.as_str())).map_err(db_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Every state saved for `detector`, by series key.
    pub fn detector_states(&self, detector: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(DETECTOR_STATE).map_err(db_err)?;
        let end = format!("{detector}\0");
        let mut out = Vec::new();
        for entry in table
            .range((detector, "")..(end.as_str(), ""))
            .map_err(db_err)?
        {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value().1.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    // ---- alerting ----------------------------------------------------------

    /// Commits state snapshots, new outbox items and history together
    /// (durable before return); returns the outbox ids assigned.
    pub fn commit_alerting(&self, commit: &AlertingCommit) -> Result<Vec<u64>, StorageError> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_quick_repair(true);
        let mut ids = Vec::with_capacity(commit.outbox.len());
        {
            let mut state = tx.open_table(ALERTING_STATE).map_err(db_err)?;
            for (key, bytes) in &commit.state {
                state
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            let mut outbox = tx.open_table(OUTBOX).map_err(db_err)?;
            let first = outbox
                .last()
                .map_err(db_err)?
                .map_or(1, |(k, _)| k.value() + 1);
            for (id, item) in (first..).zip(&commit.outbox) {
                let json = serde_json::to_vec(item).map_err(db_err)?;
                outbox.insert(id, json.as_slice()).map_err(db_err)?;
                ids.push(id);
            }
            append_history(&tx, &commit.history)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(ids)
    }

    /// A state snapshot written by [`Storage::commit_alerting`].
    pub fn alerting_state(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(ALERTING_STATE).map_err(db_err)?;
        Ok(table.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Every queued notification, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>, StorageError> {
        read_items(&self.db, OUTBOX)
    }

    /// How many notifications the outbox holds.
    pub fn outbox_depth(&self) -> Result<usize, StorageError> {
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(OUTBOX).map_err(db_err)?;
        Ok(table.len().map_err(db_err)? as usize)
    }

    pub fn dead_letters(&self) -> Result<Vec<(u64, OutboxItem)>, StorageError> {
        read_items(&self.db, DEAD_LETTERS)
    }

    /// Records a delivery outcome: delivered (removed), retry later
    /// (rewritten with its new attempt time), or dead (moved to the dead
    /// letters) — with its history line, in one transaction.
    pub fn settle_outbox(
        &self,
        id: u64,
        outcome: OutboxOutcome,
        history: &[HistoryEvent],
        state: Option<(&str, &[u8])>,
    ) -> Result<(), StorageError> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_quick_repair(true);
        {
            if let Some((key, bytes)) = state {
                tx.open_table(ALERTING_STATE)
                    .map_err(db_err)?
                    .insert(key, bytes)
                    .map_err(db_err)?;
            }
            let mut outbox = tx.open_table(OUTBOX).map_err(db_err)?;
            match outcome {
                OutboxOutcome::Delivered => {
                    outbox.remove(id).map_err(db_err)?;
                }
                OutboxOutcome::Retry(item) => {
                    let json = serde_json::to_vec(&item).map_err(db_err)?;
                    outbox.insert(id, json.as_slice()).map_err(db_err)?;
                }
                OutboxOutcome::Dead(item) => {
                    outbox.remove(id).map_err(db_err)?;
                    let json = serde_json::to_vec(&item).map_err(db_err)?;
                    tx.open_table(DEAD_LETTERS)
                        .map_err(db_err)?
                        .insert(id, json.as_slice())
                        .map_err(db_err)?;
                }
            }
            append_history(&tx, history)?;
        }
        tx.commit().map_err(db_err)
    }

    /// History since `since_ms`, oldest first, at most `limit` (newest kept).
    pub fn alert_history(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<HistoryEvent>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(ALERT_HISTORY).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.range((since_ms, 0)..).map_err(db_err)?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = entry.map_err(db_err)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?,
            );
        }
        out.reverse();
        Ok(out)
    }

    // ---- results ---------------------------------------------------------

    /// Commits a result durably; returns once it is on disk.
    pub async fn record(&self, record: InvocationRecord) -> Result<(), StorageError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send((record, done))
            .map_err(|_| StorageError::WriterGone)?;
        wait.await.map_err(|_| StorageError::WriterGone)?
    }

    pub fn results(&self, query: &ResultQuery) -> Result<Vec<InvocationRecord>, StorageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(RESULTS).map_err(db_err)?;
        let since = query.since_ms.unwrap_or(i64::MIN);
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let mut out = Vec::new();
        let mut push = |v: &[u8]| -> Result<(), StorageError> {
            out.push(
                serde_json::from_slice::<InvocationRecord>(v)
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?,
            );
            Ok(())
        };
        match (&query.job, &query.target) {
            (Some(job), Some(target)) => {
                let range = table
                    .range(
                        (job.as_str(), target.as_str(), since, 0)
                            ..=(job.as_str(), target.as_str(), i64::MAX, u64::MAX),
                    )
                    .map_err(db_err)?;
                for entry in range.rev().take(limit) {
                    push(entry.map_err(db_err)?.1.value())?;
                }
            }
            _ => {
                // Across targets (or jobs) there is no single time-ordered
                // range: scan the job's (or every) key and keep the newest.
                let end_job = query.job.as_ref().map(|j| format!("{j}\0"));
                let range = match (&query.job, &end_job) {
                    (Some(job), Some(end)) => table
                        .range((job.as_str(), "", i64::MIN, 0)..(end.as_str(), "", i64::MIN, 0)),
                    _ => table.range::<(&str, &str, i64, u64)>(..),
                }
                .map_err(db_err)?;
                for entry in range {
                    let (k, v) = entry.map_err(db_err)?;
                    let (_, target, started, _) = k.value();
                    if started >= since && query.target.as_deref().is_none_or(|t| t == target) {
                        push(v.value())?;
                    }
                }
                out.sort_by_key(|r| r.started_ms);
                if out.len() > limit {
                    out.drain(..out.len() - limit);
                }
                return Ok(out);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Deletes results that started before `cutoff_ms`; returns how many.
    pub fn delete_results_before(&self, cutoff_ms: i64) -> Result<u64, StorageError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let mut deleted = 0;
        {
            let mut by_time = tx.open_table(RESULTS_BY_TIME).map_err(db_err)?;
            let mut results = tx.open_table(RESULTS).map_err(db_err)?;
            let old: Vec<((i64, u64), (String, String))> = by_time
                .range(..(cutoff_ms, 0))
                .map_err(db_err)?
                .map(|e| {
                    e.map(|(k, v)| {
                        (
                            k.value(),
                            (v.value().0.to_string(), v.value().1.to_string()),
                        )
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            for ((started, seq), (job, target)) in old {
                results
                    .remove((job.as_str(), target.as_str(), started, seq))
                    .map_err(db_err)?;
                by_time.remove((started, seq)).map_err(db_err)?;
                deleted += 1;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(deleted)
    }
}

fn write_loop(db: &Database, seq: &AtomicU64, queue: std::sync::mpsc::Receiver<WriteRequest>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP_COMMIT {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(db, seq, batch.iter().map(|(r, _)| r));
        for (_, done) in batch {
            let _ = done.send(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| StorageError::Database(e.to_string())),
            );
        }
    }
}

fn commit_batch<'a>(
    db: &Database,
    seq: &AtomicU64,
    records: impl Iterator<Item = &'a InvocationRecord>,
) -> Result<(), StorageError> {
    let mut tx = db.begin_write().map_err(db_err)?;
    // Record allocator state so recovery after a crash is near-instant.
    tx.set_quick_repair(true);
    {
        let mut results = tx.open_table(RESULTS).map_err(db_err)?;
        let mut by_time = tx.open_table(RESULTS_BY_TIME).map_err(db_err)?;
        for record in records {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let json = serde_json::to_vec(record).map_err(db_err)?;
            results
                .insert(
                    (
                        record.job.as_str(),
                        record.target.as_str(),
                        record.started_ms,
                        n,
                    ),
                    json.as_slice(),
                )
                .map_err(db_err)?;
            by_time
                .insert(
                    (record.started_ms, n),
                    (record.job.as_str(), record.target.as_str()),
                )
                .map_err(db_err)?;
        }
    }
    tx.commit().map_err(db_err)
}

impl PluginStateStore for Storage {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let tx = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = tx.open_table(PLUGIN_KV).map_err(|e| e.to_string())?;
        Ok(table
            .get((plugin, key))
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec()))
    }

    fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(PLUGIN_KV)
            .map_err(|e| e.to_string())?
            .insert((plugin, key), value)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    fn delete(&self, plugin: &str, key: &str) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(PLUGIN_KV)
            .map_err(|e| e.to_string())?
            .remove((plugin, key))
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }
}

/// Rewrites `lookout.redb` in `data_dir` down to its live pages (redb
/// reuses freed pages but never shrinks the file by itself). Needs the file
/// to itself: call once every [`Storage`] handle is dropped; the writer
/// thread lets go a moment later, so this waits up to 5 s for it.
pub fn compact(data_dir: &Path) -> Result<(), StorageError> {
    let path = data_dir.join("lookout.redb");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut db = loop {
        match Database::open(&path) {
            Ok(db) => break db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StorageError::InUse {
                    path: path.display().to_string(),
                });
            }
            Err(e) => return Err(db_err(e)),
        }
    };
    // Each pass moves what it can; a few passes reach the fixed point.
    for _ in 0..8 {
        if !db.compact().map_err(db_err)? {
            break;
        }
    }
    Ok(())
}

/// How a delivery attempt ended, for [`Storage::settle_outbox`].
#[derive(Debug)]
pub enum OutboxOutcome {
    Delivered,
    Retry(OutboxItem),
    Dead(OutboxItem),
}

fn append_history(
    tx: &redb::WriteTransaction,
    events: &[HistoryEvent],
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(ALERT_HISTORY).map_err(db_err)?;
    for event in events {
        // Ties within a millisecond are ordered by the next free sequence.
        let seq = table
            .range((event.at_ms, 0)..=(event.at_ms, u64::MAX))
            .map_err(db_err)?
            .next_back()
            .transpose()
            .map_err(db_err)?
            .map_or(0, |(k, _)| k.value().1 + 1);
        let json = serde_json::to_vec(event).map_err(db_err)?;
        table
            .insert((event.at_ms, seq), json.as_slice())
            .map_err(db_err)?;
    }
    Ok(())
}

fn read_items(
    db: &Database,
    table: TableDefinition<u64, &[u8]>,
) -> Result<Vec<(u64, OutboxItem)>, StorageError> {
    let tx = db.begin_read().map_err(db_err)?;
    let table = tx.open_table(table).map_err(db_err)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        out.push((
            k.value(),
            serde_json::from_slice(v.value()).map_err(|e| StorageError::Corrupt(e.to_string()))?,
        ));
    }
    Ok(out)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn record(job: &str, target: &str, started_ms: i64) -> InvocationRecord {
        InvocationRecord {
            job: job.into(),
            target: target.into(),
            plugin: "http".into(),
            started_ms,
            duration_seconds: 0.01,
            success: true,
            outcome: Outcome::Success,
            failure_reason: None,
            message: String::new(),
            samples: vec![],
            confirmed_success: None,
        }
    }

    #[tokio::test]
    async fn results_filter_by_job_target_and_time_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            for (job, target, t) in [
                ("a", "x", 10),
                ("a", "y", 20),
                ("a", "x", 30),
                ("b", "x", 40),
                ("ab", "x", 50),
            ] {
                storage.record(record(job, target, t)).await.unwrap();
            }
            let q = |job: Option<&str>, target: Option<&str>, since: Option<i64>| {
                let query = ResultQuery {
                    job: job.map(Into::into),
                    target: target.map(Into::into),
                    since_ms: since,
                    limit: 0,
                };
                storage
                    .results(&query)
                    .unwrap()
                    .iter()
                    .map(|r| r.started_ms)
                    .collect::<Vec<_>>()
            };
            assert_eq!(q(Some("a"), Some("x"), None), vec![10, 30]);
            assert_eq!(
                q(Some("a"), None, None),
                vec![10, 20, 30],
                "job `a` must not include job `ab`"
            );
            assert_eq!(q(Some("a"), None, Some(15)), vec![20, 30]);
            assert_eq!(q(None, Some("x"), None), vec![10, 30, 40, 50]);
            let newest = storage
                .results(&ResultQuery {
                    limit: 2,
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(
                newest.iter().map(|r| r.started_ms).collect::<Vec<_>>(),
                vec![40, 50]
            );
        }
        // The writer thread holds an Arc to the database; give it a moment to
        // notice its channel closed before reopening.
        let storage = loop {
            match Storage::open(dir.path()) {
                Ok(s) => break s,
                Err(StorageError::InUse { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(storage.results(&ResultQuery::default()).unwrap().len(), 5);
        assert_eq!(storage.delete_results_before(35).unwrap(), 3);
        let left: Vec<i64> = storage
            .results(&ResultQuery::default())
            .unwrap()
            .iter()
            .map(|r| r.started_ms)
            .collect();
        assert_eq!(left, vec![40, 50]);
    }

    #[test]
    fn alerting_commits_outbox_and_history_together_and_settles() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let notification: crate::model::Notification = serde_json::from_value(serde_json::json!({
            "receiver": "team", "status": "firing", "alerts": [], "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "", "groupKey": "{}:{}", "truncatedAlerts": 0
        }))
        .unwrap();
        let item = OutboxItem {
            receiver: "team".into(),
            integration: 0,
            integration_kind: "webhook".into(),
            notification_id: "n1".into(),
            notification,
            dedup_key: "k".into(),
            attempts: 0,
            next_attempt_ms: 10,
            retry_deadline_ms: 20,
            created_ms: 10,
            last_error: None,
        };
        let event = |kind: &str, at_ms| HistoryEvent {
            at_ms,
            kind: kind.into(),
            labels: Default::default(),
            receiver: Some("team".into()),
            group_key: None,
            detail: String::new(),
        };
        let ids = storage
            .commit_alerting(&AlertingCommit {
                state: vec![("dispatcher".into(), b"snapshot".to_vec())],
                outbox: vec![item.clone(), item.clone()],
                history: vec![event("firing", 10), event("firing", 10)],
            })
            .unwrap();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(
            storage.alerting_state("dispatcher").unwrap(),
            Some(b"snapshot".to_vec())
        );
        assert_eq!(storage.outbox().unwrap().len(), 2);
        storage
            .settle_outbox(1, OutboxOutcome::Delivered, &[event("notified", 11)], None)
            .unwrap();
        storage
            .settle_outbox(
                2,
                OutboxOutcome::Dead(item),
                &[event("dead_letter", 12)],
                None,
            )
            .unwrap();
        assert!(storage.outbox().unwrap().is_empty());
        assert_eq!(storage.dead_letters().unwrap().len(), 1);
        let kinds: Vec<String> = storage
            .alert_history(0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["firing", "firing", "notified", "dead_letter"]);
        assert_eq!(
            storage.alert_history(11, 1).unwrap()[0].kind,
            "dead_letter",
            "limit keeps the newest"
        );
    }

    #[test]
    fn plugin_state_is_scoped_by_plugin_and_removed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        storage.set("a", "k", b"1").unwrap();
        storage.set("ab", "k", b"2").unwrap();
        assert_eq!(storage.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(storage.get("b", "k").unwrap(), None);
        storage.remove_plugin("a").unwrap();
        assert_eq!(storage.get("a", "k").unwrap(), None);
        assert_eq!(
            storage.get("ab", "k").unwrap(),
            Some(b"2".to_vec()),
            "removing `a` must not touch `ab`"
        );
    }
}
