//! The engine's redb tables. They live in lookout's one database beside the
//! other modules' tables, so every name starts with `tsdb_`.
//!
//! # Where chunks live
//!
//! Recently cut chunks go to `CHUNKS`, keyed by (series, first timestamp).
//! Cuts insert into the middle of that key space, so redb splits its
//! leaves in halves and the table's pages are ~60 % full. Once the newest
//! data is a block (2 h) past a block, its chunks move, in key order, to
//! `BLOCK_CHUNKS`, keyed by (block start, series, first timestamp), each
//! series' chunks of the block merged into one (the same idea as
//! Prometheus' head and blocks): a chunk row costs a key, a header and a
//! full first sample, and redb splits leaves in halves on appends too, so
//! fewer, larger rows are what keeps bytes per sample down. Backfill
//! writes old chunks straight into `BLOCK_CHUNKS`; `Tsdb::compact_blocks`
//! merges those. A move is done in steps of bounded size, `META`
//! recording how far it got, so that where any chunk lives follows from
//! its key (`Store::in_blocks`).
//!
//! # Invariants
//!
//! 1. **Chunks of a series never overlap in time, and none spans 2 h or
//!    more**, so the chunks overlapping `[mint, maxt]` are exactly those
//!    starting in `(mint − 2 h, maxt]` whose last timestamp is ≥ `mint`.
//!    Out-of-order samples are merged into the chunk whose range they fall
//!    in (re-encoding it) or become chunks of their own in a gap.
//! 2. For one series, every chunk in `BLOCK_CHUNKS` precedes every chunk
//!    in `CHUNKS`.
//! 3. **Every acknowledged sample is in a chunk or in the write-ahead table.**
//!    A sample of series `s` in write-ahead batch `n` is in a chunk iff
//!    `n ≤ SERIES_STATE[s].watermark`; replay skips exactly those. A batch
//!    row is deleted only once no series has an unpersisted sample in it or
//!    before it, in the same transaction that writes the chunks that make
//!    it redundant.
//! 4. **Batch sequence numbers only grow**: after a restart the next one is
//!    above every write-ahead key and every watermark.
//! 5. **Series ids are never reused** (`META["next_series_id"]`): a
//!    write-ahead row may still name a series that retention removed, and
//!    must not be replayed into a newcomer.
//! 6. Each append is one transaction holding its write-ahead row, the index
//!    rows of its new series, the chunks it cut and the write-ahead rows
//!    that made redundant: on disk a batch is all there or not at all.

use redb::{MultimapTableDefinition, TableDefinition};

/// Encoded label set (see `labels::encode`) → series id.
pub(crate) const SERIES_BY_LABELS: TableDefinition<&[u8], u64> =
    TableDefinition::new("tsdb_series_by_labels");
/// Series id → encoded label set.
pub(crate) const SERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("tsdb_series");
/// (label name, label value) → ids of the series carrying it; `__name__`
/// is a label like any other.
pub(crate) const POSTINGS: MultimapTableDefinition<(&str, &str), u64> =
    MultimapTableDefinition::new("tsdb_postings");
/// Recent chunks: (series id, first timestamp) → chunk (see `codec`: its
/// header holds the sample count and the last timestamp).
pub(crate) const CHUNKS: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("tsdb_chunks");
/// Older chunks: (2 h block start, series id, first timestamp) → chunk.
pub(crate) const BLOCK_CHUNKS: TableDefinition<(i64, u64, i64), &[u8]> =
    TableDefinition::new("tsdb_block_chunks");
/// Series id → what the writer must know of its chunks without reading
/// them, and the last write-ahead batch whose samples of this series are
/// all in chunks (invariant 3); see `engine::encode_state`.
pub(crate) const SERIES_STATE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("tsdb_series_state");
/// Batch sequence number → accepted samples of that batch (see `wal`).
pub(crate) const WAL: TableDefinition<u64, &[u8]> = TableDefinition::new("tsdb_wal");
/// Scrape key → ids of the series its last scrape wrote (sorted, delta
/// uvarints), for staleness markers across restarts.
pub(crate) const SCRAPES: TableDefinition<&str, &[u8]> = TableDefinition::new("tsdb_scrapes");
/// Counters and the format version.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("tsdb_meta");

pub(crate) const META_FORMAT: &str = "format_version";
pub(crate) const META_NEXT_SERIES_ID: &str = "next_series_id";
pub(crate) const META_CHUNKS: &str = "chunks";
pub(crate) const META_CHUNK_SAMPLES: &str = "chunk_samples";
pub(crate) const META_CHUNK_BYTES: &str = "chunk_payload_bytes";
/// Blocks before this (i64 bits) are all in `BLOCK_CHUNKS`.
pub(crate) const META_SPLIT: &str = "blocks_split";
/// The block being moved (i64 bits), absent when none is...
pub(crate) const META_MOVING_BLOCK: &str = "blocks_moving";
/// ...and the first series id of it not moved yet.
pub(crate) const META_MOVING_CURSOR: &str = "blocks_moving_cursor";

/// Bumped when a table's layout changes incompatibly.
pub(crate) const FORMAT_VERSION: u64 = 1;
