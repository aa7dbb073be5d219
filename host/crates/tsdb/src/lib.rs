//! lookout's time-series engine: Prometheus' storage model in one redb
//! database.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lookout_tsdb::{MatchOp, Matcher, Options, Tsdb};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Arc::new(redb::Database::create("lookout.redb")?);
//! let tsdb = Tsdb::open(db, Options::default())?;
//! let up = vec![("__name__".to_string(), "up".to_string()), ("job".to_string(), "node".to_string())];
//! tsdb.append(&[(up.clone(), 1_700_000_000_000, 1.0)])?; // durable when it returns
//! let found = tsdb.select(&[Matcher::new("__name__", MatchOp::Equal, "up")?], 0, i64::MAX)?;
//! assert_eq!(found[0].samples.len(), 1);
//! tsdb.flush()?; // on shutdown: nothing left to replay at the next start
//! # Ok(()) }
//! ```
//!
//! # How data is kept
//!
//! - **Series index**: each label set gets a `u64` id; postings (a redb
//!   multimap table) map every `(name, value)` to the ids carrying it.
//!   Selecting intersects the postings of matchers that need a label
//!   present, then filters by the rest.
//! - **Chunks**: ~120 samples (less than 2 h) of one series, compressed
//!   (see `codec.rs`: Gorilla's delta-of-delta timestamps; values as XOR
//!   floats or, when they are short decimals, as integer deltas), one row
//!   each. Recent chunks are keyed by (series id, first timestamp); once
//!   the data is 2 h past their 2 h block, they move in key order to a
//!   table keyed by (block, series id, first timestamp), whose appends redb
//!   packs into full pages — the cut-time table is only ~60 % full.
//! - **Head**: the open chunk of every series lives in memory as plain
//!   samples. Each append batch is also written, in the same durable redb
//!   transaction, as one row of a write-ahead table; when heads are cut to
//!   chunks, the write-ahead rows nothing needs any more are deleted in
//!   that transaction. [`Tsdb::open`] rebuilds the heads by replaying the
//!   write-ahead table. A kill -9 at any point loses no acknowledged
//!   sample and never leaves part of a batch.
//!
//! The tables and their invariants are listed in `tables.rs`.
//!
//! # Semantics copied from Prometheus
//!
//! - Out of order: by default a sample older than its series' newest is
//!   refused; with [`Options::out_of_order_window`] it is accepted when it
//!   is at most that much older. The same timestamp with the same value is
//!   a duplicate (ignored); with another value it is refused.
//! - Staleness: [`Tsdb::append_scrape`] ends the series a scrape no
//!   longer returns with a staleness marker ([`STALE_NAN_BITS`]).
//! - Matchers: anchored regexes, a missing label equals the empty string,
//!   and a selector needs one matcher that does not match the empty string.
//! - Retention by age and by size, deleting whole chunks, oldest first.

mod bits;
mod codec;
mod engine;
mod labels;
mod matcher;
mod tables;
#[cfg(test)]
mod tests;
mod wal;

use std::time::Duration;

pub use engine::Tsdb;
pub use matcher::{MatchOp, Matcher};

/// A label set: sorted by name, names unique, the metric name under
/// `__name__`. A label with an empty value is the same as no label.
pub type Labels = Vec<(String, String)>;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    pub v: f64,
}

/// The bits of Prometheus' staleness marker, a NaN no arithmetic produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (by its bits: every NaN compares
/// unequal, and an ordinary NaN is a value, not a marker).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// In time order, one per timestamp.
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Chunks whose newest sample is older than this are deleted by
    /// [`Tsdb::enforce_retention`] (`storage.tsdb.retention.time`).
    pub retention: Option<Duration>,
    /// The engine's tables are kept under this many bytes by deleting the
    /// oldest chunks (`storage.tsdb.retention.size`).
    pub retention_bytes: Option<u64>,
    /// How much older than its series' newest sample a sample may be and
    /// still be accepted. Zero, the default, refuses every out-of-order
    /// sample, like Prometheus without `out_of_order_time_window`.
    pub out_of_order_window: Duration,
}

impl Default for Options {
    /// Prometheus' defaults: 15 days, no size limit, no out-of-order window.
    fn default() -> Self {
        Options {
            retention: Some(Duration::from_secs(15 * 24 * 3600)),
            retention_bytes: None,
            out_of_order_window: Duration::ZERO,
        }
    }
}

/// What became of the samples of one append.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Stored (staleness markers written by [`Tsdb::append_scrape`] included).
    pub appended: usize,
    /// Refused: older than the series' newest sample (without an
    /// out-of-order window), or the same timestamp with another value.
    pub out_of_order: usize,
    /// Ignored: the same timestamp and the same value (bits) again.
    pub duplicates: usize,
    /// Refused: older than the series' newest sample by more than the
    /// out-of-order window (only counted when a window is set).
    pub too_old: usize,
}

/// What [`Tsdb::enforce_retention`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub chunks_deleted: u64,
    pub samples_deleted: u64,
    /// Series left without any sample, removed from the index.
    pub series_deleted: u64,
    /// Payload bytes of the deleted chunks.
    pub bytes_deleted: u64,
}

/// Sizes, for `/metrics` and capacity planning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub series: u64,
    /// In chunks and in the head.
    pub samples: u64,
    pub chunks: u64,
    /// Samples not yet cut into chunks (they are in the write-ahead table).
    pub head_samples: u64,
    /// Compressed chunk payloads alone.
    pub chunk_payload_bytes: u64,
    /// Pages of the chunk table (payloads, keys, b-tree overhead, free space
    /// inside pages).
    pub chunk_bytes: u64,
    /// Pages of the series index and postings.
    pub index_bytes: u64,
    /// Pages of the write-ahead table.
    pub wal_bytes: u64,
}

impl Stats {
    /// Bytes on disk of chunks and index (what a size retention counts,
    /// with the write-ahead table).
    pub fn disk_bytes(&self) -> u64 {
        self.chunk_bytes + self.index_bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("invalid regex in matcher {matcher}: {error}")]
    InvalidRegex { matcher: String, error: String },
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// Prometheus refuses such selectors too: they would select every series.
    #[error("a selector needs at least one matcher that does not match the empty string")]
    UnselectiveMatchers,
    #[error("database: {0}")]
    Database(String),
    #[error("stored time-series data is corrupt: {0}")]
    Corrupt(String),
    #[error("the time-series engine is unusable after a panic in another thread; reopen it")]
    Poisoned,
}
