//! [`Tsdb`]: the write path (plan a batch in memory, commit it durably,
//! then show it to readers), the read path, retention and recovery.
//!
//! # Concurrency
//!
//! One writer at a time (`Mutex<Writer>`), like redb itself. A write
//! decides everything against the writer's own state, commits, and only
//! then takes the head's write lock for the few microseconds it needs to
//! push the accepted samples into the in-memory heads and drop the ones it
//! cut. Readers hold the head's read lock while they begin their redb read
//! transaction and copy head samples, so what they see is consistent: a
//! snapshot taken before a commit is paired with the heads from before it.
//! A snapshot taken just after a commit may be paired with heads from just
//! before it: readers then ignore chunk data past each head's
//! `sealed_maxt` (the chunks that commit cut, whose samples the old head
//! still holds), so they see the state before the commit, never part of
//! it. Readers never wait for an fsync.
//!
//! If a commit fails, the writer's state is restored from the undo log of
//! the write (`Writer::rollback`), so memory never runs ahead of disk.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{
    Database, Durability, ReadOnlyMultimapTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableStats, WriteTransaction,
};

use crate::bits::{get_uvarint, put_uvarint, unzigzag, zigzag};
use crate::codec::{self, CodecError, Encoder};
use crate::labels::{self, FxHashMap};
use crate::tables::*;
use crate::wal::{self, WalRecord};
use crate::{
    AppendOutcome, Labels, MatchOp, Matcher, Options, RetentionReport, Sample, Series, Stats,
    TsdbError, stale_nan,
};

/// Samples per chunk. Prometheus cuts at 120: enough for compression to
/// pay off, few enough that a query decodes little it does not need.
/// A cut may produce chunks of up to twice this, rather than a short
/// remainder.
pub(crate) const CHUNK_SAMPLES: u32 = 120;
/// A chunk spans less than this: Prometheus' 2 h head block. Bounds how far
/// back a query looks for a chunk reaching into its range, and how coarse
/// retention is.
const CHUNK_SPAN_MS: i64 = 2 * 3600 * 1000;
/// Chunks move to `BLOCK_CHUNKS` grouped by blocks of this length.
const BLOCK_MS: i64 = CHUNK_SPAN_MS;
/// Heads whose series stopped receiving samples are cut once the newest
/// data is a chunk span past them, or the write-ahead table would keep
/// their batches forever. At most this many per append, bounding its
/// latency; the rest follow in the next appends.
const MAX_STALE_CUTS: usize = 10_000;
/// Chunks moved to the block table per commit, bounding the latency a move
/// adds to one append (~120 B each: a few MB at most). Tiny in tests, so
/// that moves span many commits there.
const MOVE_BUDGET: usize = if cfg!(test) { 5 } else { 20_000 };

/// The id of a slot no series occupies.
const FREE: u64 = u64::MAX;

impl From<redb::TransactionError> for TsdbError {
    fn from(e: redb::TransactionError) -> Self {
        TsdbError::Database(e.to_string())
    }
}
impl From<redb::TableError> for TsdbError {
    fn from(e: redb::TableError) -> Self {
        TsdbError::Database(e.to_string())
    }
}
impl From<redb::StorageError> for TsdbError {
    fn from(e: redb::StorageError) -> Self {
        TsdbError::Database(e.to_string())
    }
}
impl From<redb::CommitError> for TsdbError {
    fn from(e: redb::CommitError) -> Self {
        TsdbError::Database(e.to_string())
    }
}
impl From<redb::SetDurabilityError> for TsdbError {
    fn from(e: redb::SetDurabilityError) -> Self {
        TsdbError::Database(e.to_string())
    }
}
impl From<CodecError> for TsdbError {
    fn from(e: CodecError) -> Self {
        TsdbError::Corrupt(e.to_string())
    }
}

/// The time-series engine. `Send + Sync`; share it in an `Arc`. Open one
/// per database.
pub struct Tsdb {
    db: Arc<Database>,
    options: Options,
    /// `out_of_order_window` in ms.
    window_ms: i64,
    writer: Mutex<Writer>,
    head: RwLock<Head>,
}

/// What the writer knows about a series; indexed by slot, like
/// [`Head::series`]. The fields up to `oldest_t` are persisted in
/// `SERIES_STATE` at every cut (see [`encode_state`]).
#[derive(Clone, Copy, Debug)]
struct SeriesState {
    id: u64,
    /// Last write-ahead batch whose samples of this series are all in chunks.
    watermark: u64,
    chunks: u32,
    /// (first timestamp, samples) of the newest chunk.
    last_chunk: Option<(i64, u32)>,
    /// Last timestamp of the newest chunk: samples after it go to the head,
    /// others (out of order) to the out-of-order buffer.
    sealed_maxt: Option<i64>,
    /// Newest timestamp and value bits, in chunks or head.
    newest: Option<(i64, u64)>,
    /// No sample is older (a lower bound, not always the exact oldest).
    oldest_t: i64,
    head_len: u32,
    head_min_t: i64,
    head_max_t: i64,
    ooo_len: u32,
    /// Write-ahead batch of the oldest sample not yet in a chunk (0: none).
    pin: u64,
    /// That sample's timestamp.
    pin_t: i64,
    /// Epoch of the write that last changed this state (for rollback).
    touched: u64,
    /// Epoch of the write cutting this series, and its index in the cut list.
    cut_mark: u64,
    cut_index: u32,
}

impl SeriesState {
    fn new(id: u64) -> Self {
        SeriesState {
            id,
            watermark: 0,
            chunks: 0,
            last_chunk: None,
            sealed_maxt: None,
            newest: None,
            oldest_t: i64::MAX,
            head_len: 0,
            head_min_t: i64::MAX,
            head_max_t: i64::MIN,
            ooo_len: 0,
            pin: 0,
            pin_t: 0,
            touched: 0,
            cut_mark: 0,
            cut_index: 0,
        }
    }

    fn accept(
        &mut self,
        slot: u32,
        seq: u64,
        s: Sample,
        ooo: bool,
        pins: &mut BTreeSet<(u64, u32)>,
    ) {
        if ooo {
            self.ooo_len += 1;
        } else {
            self.head_len += 1;
            self.head_min_t = self.head_min_t.min(s.t);
            self.head_max_t = self.head_max_t.max(s.t);
        }
        if self.newest.is_none_or(|(t, _)| s.t > t) {
            self.newest = Some((s.t, s.v.to_bits()));
        }
        self.oldest_t = self.oldest_t.min(s.t);
        if self.pin == 0 {
            self.pin = seq;
            self.pin_t = s.t;
            pins.insert((seq, slot));
        }
    }

    /// Samples of the newest chunk the head's next cut would merge with it
    /// (a chunk left short by a flush or a span limit).
    fn mergeable_tail(&self) -> u32 {
        match self.last_chunk {
            Some((mint, count))
                if count < CHUNK_SAMPLES && span(mint, self.head_min_t) < CHUNK_SPAN_MS as i128 =>
            {
                count
            }
            _ => 0,
        }
    }

    fn needs_cut(&self) -> bool {
        if self.ooo_len >= CHUNK_SAMPLES {
            return true;
        }
        self.head_len > 0
            && (self.head_len + self.mergeable_tail() >= CHUNK_SAMPLES
                || span(self.head_min_t, self.head_max_t) >= CHUNK_SPAN_MS as i128)
    }
}

/// `SERIES_STATE` value: uvarint watermark, uvarint chunks, a flag byte
/// (1 newest chunk, 2 sealed, 4 newest sample), then as flagged: zigzag
/// first timestamp + uvarint count of the newest chunk; zigzag sealed end;
/// zigzag timestamp + 8 bytes value bits of the newest sample; then zigzag
/// oldest timestamp.
fn encode_state(st: &SeriesState, out: &mut Vec<u8>) {
    out.clear();
    put_uvarint(out, st.watermark);
    put_uvarint(out, st.chunks as u64);
    let flags = st.last_chunk.is_some() as u8
        | (st.sealed_maxt.is_some() as u8) << 1
        | (st.newest.is_some() as u8) << 2;
    out.push(flags);
    if let Some((mint, count)) = st.last_chunk {
        put_uvarint(out, zigzag(mint));
        put_uvarint(out, count as u64);
    }
    if let Some(sealed) = st.sealed_maxt {
        put_uvarint(out, zigzag(sealed));
    }
    if let Some((t, bits)) = st.newest {
        put_uvarint(out, zigzag(t));
        out.extend_from_slice(&bits.to_le_bytes());
    }
    put_uvarint(out, zigzag(st.oldest_t));
}

fn decode_state(id: u64, bytes: &[u8]) -> Result<SeriesState, TsdbError> {
    let corrupt = || TsdbError::Corrupt(format!("state of series {id} is unreadable"));
    let mut pos = 0;
    let varint = |pos: &mut usize| get_uvarint(bytes, pos).ok_or_else(corrupt);
    let mut st = SeriesState::new(id);
    st.watermark = varint(&mut pos)?;
    st.chunks = u32::try_from(varint(&mut pos)?).map_err(|_| corrupt())?;
    let flags = *bytes.get(pos).ok_or_else(corrupt)?;
    pos += 1;
    if flags & 1 != 0 {
        let mint = unzigzag(varint(&mut pos)?);
        let count = u32::try_from(varint(&mut pos)?).map_err(|_| corrupt())?;
        st.last_chunk = Some((mint, count));
    }
    if flags & 2 != 0 {
        st.sealed_maxt = Some(unzigzag(varint(&mut pos)?));
    }
    if flags & 4 != 0 {
        let t = unzigzag(varint(&mut pos)?);
        let raw = bytes.get(pos..pos + 8).ok_or_else(corrupt)?;
        pos += 8;
        st.newest = Some((t, u64::from_le_bytes(raw.try_into().unwrap())));
    }
    st.oldest_t = unzigzag(varint(&mut pos)?);
    if pos != bytes.len() {
        return Err(corrupt());
    }
    Ok(st)
}

fn span(from: i64, to: i64) -> i128 {
    to as i128 - from as i128
}

/// Start of the block holding `t` (saturating at the ends of time).
fn block_of(t: i64) -> i64 {
    t.saturating_sub(t.rem_euclid(BLOCK_MS))
}

/// The earliest possible start of a chunk holding a sample at `t`.
fn earliest_start(t: i64) -> i64 {
    t.saturating_sub(CHUNK_SPAN_MS - 1)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Totals {
    chunks: u64,
    samples: u64,
    payload_bytes: u64,
}

impl Totals {
    fn add(&mut self, count: u32, bytes: usize) {
        self.chunks += 1;
        self.samples += count as u64;
        self.payload_bytes += bytes as u64;
    }

    fn sub(&mut self, count: u32, bytes: usize) {
        self.chunks = self.chunks.saturating_sub(1);
        self.samples = self.samples.saturating_sub(count as u64);
        self.payload_bytes = self.payload_bytes.saturating_sub(bytes as u64);
    }
}

/// Which table each chunk is in (see `tables.rs`, "Where chunks live").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Layout {
    /// Chunks of blocks before this are in `BLOCK_CHUNKS`.
    split: i64,
    /// The block being moved and the first series id not moved yet.
    moving: Option<(i64, u64)>,
    /// Chunks in `CHUNKS` per block.
    hot_blocks: BTreeMap<i64, u64>,
}

impl Layout {
    fn in_blocks(&self, id: u64, mint: i64) -> bool {
        let block = block_of(mint);
        block < self.split
            || self
                .moving
                .is_some_and(|(b, cursor)| b == block && id < cursor)
    }
}

#[derive(Clone, Copy)]
struct Accepted {
    slot: u32,
    /// Goes to the out-of-order buffer (at or before the newest chunk's end).
    ooo: bool,
    s: Sample,
}

/// Scratch of one write, reused so the hot path does not allocate.
#[derive(Default)]
struct Batch {
    accepted: Vec<Accepted>,
    touched: Vec<u32>,
    undo: Vec<(u32, SeriesState)>,
    new_series: Vec<(u32, Arc<Labels>)>,
    cuts: Vec<u32>,
    wal: WalRecord,
    /// Samples accepted in this batch, when out-of-order ones can be: a
    /// later one with the same timestamp is a duplicate.
    seen: FxHashMap<(u32, i64), u64>,
    /// The last chunk decoded to look for duplicates of out-of-order samples.
    ooo_chunk: Option<(u64, i64, Vec<Sample>)>,
    scrape_ids: Vec<u64>,
    saved_next_series_id: u64,
    saved_totals: Totals,
    saved_max_t: i64,
    saved_layout: Layout,
}

struct Writer {
    /// Label set → slot. SipHash with a random key: label sets come from
    /// scraped targets and plugins, and must not be able to force collisions.
    by_labels: HashMap<Arc<Labels>, u32>,
    series: Vec<SeriesState>,
    free_slots: Vec<u32>,
    /// (batch, slot) of every series with samples not yet in chunks;
    /// the first is the oldest write-ahead row still needed.
    pins: BTreeSet<(u64, u32)>,
    next_seq: u64,
    /// No write-ahead row has a smaller key.
    wal_low: u64,
    next_series_id: u64,
    /// Newest timestamp ingested (i64::MIN when none).
    max_t: i64,
    totals: Totals,
    layout: Layout,
    epoch: u64,
    /// Scrape key → sorted series ids of its last scrape (a cache of SCRAPES).
    scrapes: HashMap<String, Vec<u64>>,
    batch: Batch,
    encoder: Encoder,
    chunk_buf: Vec<u8>,
    label_buf: Vec<u8>,
}

impl Writer {
    fn begin(&mut self, samples: usize) {
        self.epoch += 1;
        let b = &mut self.batch;
        b.accepted.clear();
        b.accepted.reserve(samples);
        b.touched.clear();
        b.undo.clear();
        b.new_series.clear();
        b.cuts.clear();
        b.wal.clear();
        b.wal.reserve(samples);
        b.seen.clear();
        b.ooo_chunk = None;
        b.scrape_ids.clear();
        b.saved_next_series_id = self.next_series_id;
        b.saved_totals = self.totals;
        b.saved_max_t = self.max_t;
        b.saved_layout.clone_from(&self.layout);
    }

    /// Records the series' state before this write first changes it.
    #[inline]
    fn touch(&mut self, slot: u32) {
        let st = &mut self.series[slot as usize];
        if st.touched != self.epoch {
            self.batch.undo.push((slot, *st));
            st.touched = self.epoch;
            self.batch.touched.push(slot);
        }
    }

    fn mark_cut(&mut self, slot: u32) {
        self.touch(slot);
        let st = &mut self.series[slot as usize];
        if st.cut_mark != self.epoch {
            st.cut_mark = self.epoch;
            st.cut_index = self.batch.cuts.len() as u32;
            self.batch.cuts.push(slot);
        }
    }

    /// Undoes a write whose commit did not happen.
    fn rollback(&mut self) {
        for &(slot, old) in &self.batch.undo {
            let cur = self.series[slot as usize];
            if cur.pin != 0 {
                self.pins.remove(&(cur.pin, slot));
            }
            if old.pin != 0 {
                self.pins.insert((old.pin, slot));
            }
            self.series[slot as usize] = old;
        }
        for (slot, labels) in self.batch.new_series.drain(..) {
            self.by_labels.remove(&*labels);
            self.series[slot as usize] = SeriesState::new(FREE);
            self.free_slots.push(slot);
        }
        self.next_series_id = self.batch.saved_next_series_id;
        self.totals = self.batch.saved_totals;
        self.max_t = self.batch.saved_max_t;
        self.layout.clone_from(&self.batch.saved_layout);
    }

    /// The slot of `labels`, creating the series if it is new.
    #[inline]
    fn slot_for(&mut self, labels: &Labels) -> Result<u32, TsdbError> {
        if let Some(&slot) = self.by_labels.get(labels) {
            return Ok(slot);
        }
        self.slot_for_new(labels)
    }

    #[cold]
    fn slot_for_new(&mut self, labels: &Labels) -> Result<u32, TsdbError> {
        let normalized = labels::normalize(labels);
        let labels = normalized.as_ref().unwrap_or(labels);
        if normalized.is_some()
            && let Some(&slot) = self.by_labels.get(labels)
        {
            return Ok(slot);
        }
        labels::validate(labels)?;
        let id = self.next_series_id;
        self.next_series_id += 1;
        let state = SeriesState::new(id);
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.series[slot as usize] = state;
                slot
            }
            None => {
                self.series.push(state);
                (self.series.len() - 1) as u32
            }
        };
        let labels = Arc::new(labels.clone());
        self.by_labels.insert(labels.clone(), slot);
        self.batch.new_series.push((slot, labels));
        Ok(slot)
    }
}

/// What readers see: every series' labels and head samples.
struct Head {
    slot_of: FxHashMap<u64, u32>,
    series: Vec<HeadSeries>,
    /// Samples in heads and out-of-order buffers.
    samples: u64,
    totals: Totals,
}

struct HeadSeries {
    id: u64,
    labels: Arc<Labels>,
    /// Samples after the newest chunk, in time order.
    samples: Vec<Sample>,
    /// Accepted out-of-order samples at or before the newest chunk's end,
    /// in time order, until the next cut merges them into chunks.
    ooo: Vec<Sample>,
    /// Bounds of the series' data, chunks included (never narrower than it).
    min_t: i64,
    max_t: i64,
    /// The newest chunk's end as of the writes shown: chunk data after it
    /// belongs to a commit whose heads are not shown yet.
    sealed_maxt: Option<i64>,
}

impl HeadSeries {
    fn new(id: u64, labels: Arc<Labels>) -> Self {
        HeadSeries {
            id,
            labels,
            samples: Vec::new(),
            ooo: Vec::new(),
            min_t: i64::MAX,
            max_t: i64::MIN,
            sealed_maxt: None,
        }
    }
}

/// Inserts keeping time order; the usual case is an append.
#[inline]
fn insert_sorted(v: &mut Vec<Sample>, s: Sample) {
    if v.last().is_none_or(|l| l.t < s.t) {
        v.push(s);
        return;
    }
    let i = v.partition_point(|x| x.t < s.t);
    if v.get(i).is_some_and(|x| x.t == s.t) {
        return;
    }
    v.insert(i, s);
}

fn sort_samples(v: &mut Vec<Sample>) {
    if !v.windows(2).all(|w| w[0].t < w[1].t) {
        v.sort_by_key(|s| s.t);
        v.dedup_by_key(|s| s.t);
    }
}

fn find(v: &[Sample], t: i64) -> Option<u64> {
    v.binary_search_by_key(&t, |s| s.t)
        .ok()
        .map(|i| v[i].v.to_bits())
}

fn label_value<'a>(labels: &'a Labels, name: &str) -> &'a str {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => &labels[i].1,
        Err(_) => "",
    }
}

fn page_bytes(s: TableStats) -> u64 {
    s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes()
}

type HotTable<'t> = Table<'t, (u64, i64), &'static [u8]>;
type BlockTable<'t> = Table<'t, (i64, u64, i64), &'static [u8]>;

/// Both chunk tables of a write transaction; [`Layout`] says which one a
/// chunk belongs in.
struct Store<'t> {
    hot: HotTable<'t>,
    blocks: BlockTable<'t>,
}

impl<'t> Store<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, TsdbError> {
        Ok(Store {
            hot: txn.open_table(CHUNKS)?,
            blocks: txn.open_table(BLOCK_CHUNKS)?,
        })
    }

    fn insert(
        &mut self,
        layout: &mut Layout,
        id: u64,
        mint: i64,
        bytes: &[u8],
    ) -> Result<(), TsdbError> {
        let existed = if layout.in_blocks(id, mint) {
            self.blocks
                .insert((block_of(mint), id, mint), bytes)?
                .is_some()
        } else {
            *layout.hot_blocks.entry(block_of(mint)).or_default() += 1;
            self.hot.insert((id, mint), bytes)?.is_some()
        };
        if existed {
            return Err(TsdbError::Corrupt(format!(
                "chunk ({id}, {mint}) would overlap another"
            )));
        }
        Ok(())
    }

    /// Removes a chunk; its (samples, bytes) if it was there.
    fn remove(
        &mut self,
        layout: &mut Layout,
        id: u64,
        mint: i64,
    ) -> Result<Option<(u32, usize)>, TsdbError> {
        // Where the layout says, but look in both: a misplaced chunk must not
        // become an undeletable one.
        let order = if layout.in_blocks(id, mint) {
            [true, false]
        } else {
            [false, true]
        };
        for in_blocks in order {
            let removed = if in_blocks {
                self.blocks.remove((block_of(mint), id, mint))?
            } else {
                self.hot.remove((id, mint))?
            };
            if let Some(row) = removed {
                let bytes = row.value();
                let found = (codec::header(mint, bytes)?.count, bytes.len());
                drop(row);
                if !in_blocks {
                    decrement(&mut layout.hot_blocks, block_of(mint));
                }
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn read(&self, id: u64, mint: i64, out: &mut Vec<Sample>) -> Result<(), TsdbError> {
        if let Some(row) = self.hot.get((id, mint))? {
            codec::decode(mint, row.value(), out)?;
        } else if let Some(row) = self.blocks.get((block_of(mint), id, mint))? {
            codec::decode(mint, row.value(), out)?;
        } else {
            return Err(TsdbError::Corrupt(format!(
                "chunk ({id}, {mint}) is missing"
            )));
        }
        Ok(())
    }
}

fn decrement(counts: &mut BTreeMap<i64, u64>, block: i64) {
    if let Some(n) = counts.get_mut(&block) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&block);
        }
    }
}

/// Calls `f(first timestamp, chunk)` for the chunks of series `id` starting
/// in `[lo, hi]`, in time order, until it returns false.
fn chunks_in<H, B>(
    hot: &H,
    blocks: &B,
    id: u64,
    lo: i64,
    hi: i64,
    f: impl FnMut(i64, &[u8]) -> Result<bool, TsdbError>,
) -> Result<(), TsdbError>
where
    H: ReadableTable<(u64, i64), &'static [u8]>,
    B: ReadableTable<(i64, u64, i64), &'static [u8]>,
{
    chunks_in_until(hot, blocks, i64::MAX, id, lo, hi, f)
}

/// The newest block start in the block table (`None`: it is empty); a
/// select reads it once, so that no series probes blocks past it.
fn last_block_in<B>(blocks: &B) -> Result<Option<i64>, TsdbError>
where
    B: ReadableTable<(i64, u64, i64), &'static [u8]>,
{
    Ok(blocks.last()?.map(|(k, _)| k.value().0))
}

/// [`chunks_in`] knowing the block table holds no block after
/// `last_stored_block`.
fn chunks_in_until<H, B>(
    hot: &H,
    blocks: &B,
    last_stored_block: i64,
    id: u64,
    lo: i64,
    hi: i64,
    mut f: impl FnMut(i64, &[u8]) -> Result<bool, TsdbError>,
) -> Result<(), TsdbError>
where
    H: ReadableTable<(u64, i64), &'static [u8]>,
    B: ReadableTable<(i64, u64, i64), &'static [u8]>,
{
    if lo > hi {
        return Ok(());
    }
    // The block table first: a series' chunks there precede those in the
    // hot table. Blocks without any chunk are skipped, not probed.
    let last_block = block_of(hi).min(last_stored_block);
    let mut block = block_of(lo);
    while block <= last_block {
        let block_last = block.saturating_add(BLOCK_MS - 1);
        let mut any = false;
        for row in blocks.range((block, id, lo.max(block))..=(block, id, hi.min(block_last)))? {
            let (k, v) = row?;
            any = true;
            if !f(k.value().2, v.value())? {
                return Ok(());
            }
        }
        if block >= last_block || block_last == i64::MAX {
            break;
        }
        if any {
            block = block_last + 1;
            continue;
        }
        // Nothing of this series here: jump to the next block holding any
        // chunk at all rather than probing every block of a long range.
        match blocks.range((block_last + 1, 0u64, i64::MIN)..)?.next() {
            Some(row) => {
                let next = row?.0.value().0;
                if next > last_block {
                    break;
                }
                block = next;
            }
            None => break,
        }
    }
    for row in hot.range((id, lo)..=(id, hi))? {
        let (k, v) = row?;
        if !f(k.value().1, v.value())? {
            return Ok(());
        }
    }
    Ok(())
}

impl Tsdb {
    /// Creates the engine's tables if needed and rebuilds the heads from the
    /// series' states and the write-ahead table.
    pub fn open(db: Arc<Database>, options: Options) -> Result<Tsdb, TsdbError> {
        let window_ms = options
            .out_of_order_window
            .as_millis()
            .min(i64::MAX as u128) as i64;
        let txn = begin_write(&db)?;
        {
            txn.open_table(SERIES_BY_LABELS)?;
            txn.open_table(SERIES)?;
            txn.open_multimap_table(POSTINGS)?;
            txn.open_table(CHUNKS)?;
            txn.open_table(BLOCK_CHUNKS)?;
            txn.open_table(SERIES_STATE)?;
            txn.open_table(WAL)?;
            txn.open_table(SCRAPES)?;
            let mut meta = txn.open_table(META)?;
            let format = meta.get(META_FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(TsdbError::Corrupt(format!(
                        "time-series tables have format version {other}; this build reads version {FORMAT_VERSION}"
                    )));
                }
            }
        }
        txn.commit()?;
        let (writer, head) = load(&db)?;
        Ok(Tsdb {
            db,
            options,
            window_ms,
            writer: Mutex::new(writer),
            head: RwLock::new(head),
        })
    }

    #[cfg(test)]
    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.db
    }

    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>, TsdbError> {
        self.writer.lock().map_err(|_| TsdbError::Poisoned)
    }

    fn read_head(&self) -> Result<RwLockReadGuard<'_, Head>, TsdbError> {
        self.head.read().map_err(|_| TsdbError::Poisoned)
    }

    fn write_head(&self) -> Result<RwLockWriteGuard<'_, Head>, TsdbError> {
        self.head.write().map_err(|_| TsdbError::Poisoned)
    }

    // ---- writing ---------------------------------------------------------

    /// Stores `samples` (labels, ms timestamp, value) in one durable redb
    /// commit; returns after it. Out-of-order and duplicate samples are
    /// counted, not errors. An invalid label set fails the whole batch and
    /// nothing of it is stored.
    pub fn append(&self, samples: &[(Labels, i64, f64)]) -> Result<AppendOutcome, TsdbError> {
        if samples.is_empty() {
            return Ok(AppendOutcome::default());
        }
        self.write(
            samples.len(),
            samples.iter().map(|(l, t, v)| (l, *t, *v)),
            None,
        )
    }

    /// Like [`append`](Self::append) with every sample at `t`; then every
    /// series the previous `append_scrape` with the same `scrape_key` wrote
    /// and this one does not gets a staleness marker at `t`, in the same
    /// commit. The set of series per key is stored, so this holds across
    /// restarts. An empty `samples` (a failed scrape) ends every series.
    pub fn append_scrape(
        &self,
        scrape_key: &str,
        t: i64,
        samples: &[(Labels, f64)],
    ) -> Result<AppendOutcome, TsdbError> {
        self.write(
            samples.len(),
            samples.iter().map(|(l, v)| (l, t, *v)),
            Some((scrape_key, t)),
        )
    }

    fn write<'a>(
        &self,
        n: usize,
        rows: impl Iterator<Item = (&'a Labels, i64, f64)>,
        scrape: Option<(&str, i64)>,
    ) -> Result<AppendOutcome, TsdbError> {
        let mut guard = self.lock_writer()?;
        let w = &mut *guard;
        w.begin(n);
        let result = self.write_locked(w, rows, scrape);
        if result.is_err() {
            w.rollback();
        }
        result
    }

    fn write_locked<'a>(
        &self,
        w: &mut Writer,
        rows: impl Iterator<Item = (&'a Labels, i64, f64)>,
        scrape: Option<(&str, i64)>,
    ) -> Result<AppendOutcome, TsdbError> {
        let seq = w.next_seq;
        let txn = begin_write(&self.db)?;
        let head = self.read_head()?;
        let mut store = Store::open(&txn)?;
        let mut outcome = AppendOutcome::default();

        for (labels, t, v) in rows {
            let slot = w.slot_for(labels)?;
            if scrape.is_some() {
                w.batch.scrape_ids.push(w.series[slot as usize].id);
            }
            self.offer(w, &head, &store, slot, Sample { t, v }, seq, &mut outcome)?;
        }

        let mut scrape_update = None;
        if let Some((key, t)) = scrape {
            let mut current = std::mem::take(&mut w.batch.scrape_ids);
            current.sort_unstable();
            current.dedup();
            let previous = match w.scrapes.remove(key) {
                Some(p) => p,
                None => decode_ids(
                    txn.open_table(SCRAPES)?
                        .get(key)?
                        .as_ref()
                        .map(|v| v.value())
                        .unwrap_or(&[]),
                )?,
            };
            let mut cur = current.iter().peekable();
            for &id in &previous {
                while cur.next_if(|&&c| c < id).is_some() {}
                if cur.peek() == Some(&&id) {
                    continue;
                }
                if let Some(&slot) = head.slot_of.get(&id)
                    && w.series[slot as usize].id == id
                {
                    self.offer(
                        w,
                        &head,
                        &store,
                        slot,
                        Sample { t, v: stale_nan() },
                        seq,
                        &mut outcome,
                    )?;
                }
            }
            scrape_update = Some((key, previous != current, current));
        }

        // Heads to cut: full ones, and those of series that stopped.
        for i in 0..w.batch.touched.len() {
            let slot = w.batch.touched[i];
            if w.series[slot as usize].needs_cut() {
                w.mark_cut(slot);
            }
        }
        let stale: Vec<u32> = w
            .pins
            .iter()
            .take_while(|&&(_, slot)| {
                span(w.series[slot as usize].pin_t, w.max_t) >= CHUNK_SPAN_MS as i128
            })
            .take(MAX_STALE_CUTS)
            .map(|&(_, slot)| slot)
            .collect();
        for slot in stale {
            w.mark_cut(slot);
        }

        let scrape_changed = scrape_update.as_ref().is_some_and(|u| u.1);
        if w.batch.accepted.is_empty() && w.batch.cuts.is_empty() && !scrape_changed {
            // Nothing to store: no commit, no fsync.
            if let Some((key, _, current)) = scrape_update {
                w.scrapes.insert(key.to_string(), current);
            }
            return Ok(outcome);
        }

        self.write_new_series(&txn, w)?;
        self.cut_all(w, &head, &txn, &mut store, seq)?;
        move_blocks(w, &head, &txn, &mut store)?;

        // The write-ahead row, unless this batch's samples are all in
        // chunks already, and the rows nothing needs any more.
        let needed_from = w.pins.first().map_or(seq + 1, |p| p.0);
        {
            let mut wal_table = txn.open_table(WAL)?;
            if !w.batch.wal.is_empty() && seq >= needed_from {
                wal_table.insert(seq, w.batch.wal.bytes())?;
            }
            if w.wal_low < needed_from {
                wal_table.retain_in(w.wal_low..needed_from, |_, _| false)?;
            }
        }
        if let Some((key, true, current)) = &scrape_update {
            let mut bytes = Vec::with_capacity(current.len() * 2 + 4);
            encode_ids(current, &mut bytes);
            txn.open_table(SCRAPES)?.insert(*key, bytes.as_slice())?;
        }
        self.write_meta(&txn, w)?;
        drop(store);
        drop(head);
        txn.commit()?;

        self.apply(w)?;
        w.next_seq = seq + 1;
        w.wal_low = w.wal_low.max(needed_from);
        if let Some((key, _, current)) = scrape_update {
            w.scrapes.insert(key.to_string(), current);
        }
        Ok(outcome)
    }

    /// Judges one sample against its series and accepts it or counts why not.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn offer(
        &self,
        w: &mut Writer,
        head: &Head,
        store: &Store<'_>,
        slot: u32,
        s: Sample,
        seq: u64,
        outcome: &mut AppendOutcome,
    ) -> Result<(), TsdbError> {
        let st = &w.series[slot as usize];
        let bits = s.v.to_bits();
        let ooo = match st.newest {
            None => false,
            Some((newest, _)) if s.t > newest => false,
            Some((newest, newest_bits)) if s.t == newest => {
                if newest_bits == bits {
                    outcome.duplicates += 1;
                } else {
                    outcome.out_of_order += 1;
                }
                return Ok(());
            }
            Some((newest, _)) => {
                if self.window_ms == 0 {
                    outcome.out_of_order += 1;
                    return Ok(());
                }
                if span(s.t, newest) > self.window_ms as i128 {
                    outcome.too_old += 1;
                    return Ok(());
                }
                match self.existing(w, head, store, slot, s.t)? {
                    Some(b) if b == bits => {
                        outcome.duplicates += 1;
                        return Ok(());
                    }
                    Some(_) => {
                        outcome.out_of_order += 1;
                        return Ok(());
                    }
                    None => {}
                }
                w.series[slot as usize]
                    .sealed_maxt
                    .is_some_and(|m| s.t <= m)
            }
        };
        w.touch(slot);
        let st = &mut w.series[slot as usize];
        st.accept(slot, seq, s, ooo, &mut w.pins);
        let id = st.id;
        w.max_t = w.max_t.max(s.t);
        w.batch.accepted.push(Accepted { slot, ooo, s });
        w.batch.wal.push(id, s.t, s.v);
        if self.window_ms > 0 {
            w.batch.seen.insert((slot, s.t), bits);
        }
        outcome.appended += 1;
        Ok(())
    }

    /// The value bits already stored for the series at `t`, if any (only
    /// asked for out-of-order samples).
    fn existing(
        &self,
        w: &mut Writer,
        head: &Head,
        store: &Store<'_>,
        slot: u32,
        t: i64,
    ) -> Result<Option<u64>, TsdbError> {
        if let Some(&bits) = w.batch.seen.get(&(slot, t)) {
            return Ok(Some(bits));
        }
        let st = w.series[slot as usize];
        if let Some(h) = head.series.get(slot as usize).filter(|h| h.id == st.id)
            && let Some(bits) = find(&h.samples, t).or_else(|| find(&h.ooo, t))
        {
            return Ok(Some(bits));
        }
        if st.sealed_maxt.is_none_or(|m| t > m) {
            return Ok(None);
        }
        // The chunk that can hold t: the last one starting in (t − span, t].
        let mut holder = None;
        chunks_in(
            &store.hot,
            &store.blocks,
            st.id,
            earliest_start(t),
            t,
            |mint, bytes| {
                holder = Some((mint, codec::header(mint, bytes)?.maxt));
                Ok(true)
            },
        )?;
        let Some((mint, maxt)) = holder.filter(|&(_, maxt)| maxt >= t) else {
            return Ok(None);
        };
        let cached = matches!(&w.batch.ooo_chunk, Some((id, m, _)) if *id == st.id && *m == mint);
        if !cached {
            let mut samples = Vec::new();
            store.read(st.id, mint, &mut samples)?;
            debug_assert_eq!(samples.last().map(|s| s.t), Some(maxt));
            w.batch.ooo_chunk = Some((st.id, mint, samples));
        }
        Ok(w.batch
            .ooo_chunk
            .as_ref()
            .and_then(|(_, _, samples)| find(samples, t)))
    }

    fn write_new_series(&self, txn: &WriteTransaction, w: &mut Writer) -> Result<(), TsdbError> {
        if w.batch.new_series.is_empty() {
            return Ok(());
        }
        let mut by_labels = txn.open_table(SERIES_BY_LABELS)?;
        let mut series = txn.open_table(SERIES)?;
        let mut postings = txn.open_multimap_table(POSTINGS)?;
        for (slot, labels) in &w.batch.new_series {
            let id = w.series[*slot as usize].id;
            labels::encode(labels, &mut w.label_buf);
            by_labels.insert(w.label_buf.as_slice(), id)?;
            series.insert(id, w.label_buf.as_slice())?;
            for (name, value) in labels.iter() {
                postings.insert((name.as_str(), value.as_str()), id)?;
            }
        }
        Ok(())
    }

    fn write_meta(&self, txn: &WriteTransaction, w: &Writer) -> Result<(), TsdbError> {
        let b = &w.batch;
        let changed_id = w.next_series_id != b.saved_next_series_id;
        let changed_totals = w.totals != b.saved_totals;
        let changed_layout =
            w.layout.split != b.saved_layout.split || w.layout.moving != b.saved_layout.moving;
        if !changed_id && !changed_totals && !changed_layout {
            return Ok(());
        }
        let mut meta = txn.open_table(META)?;
        if changed_id {
            meta.insert(META_NEXT_SERIES_ID, w.next_series_id)?;
        }
        if changed_totals {
            meta.insert(META_CHUNKS, w.totals.chunks)?;
            meta.insert(META_CHUNK_SAMPLES, w.totals.samples)?;
            meta.insert(META_CHUNK_BYTES, w.totals.payload_bytes)?;
        }
        if changed_layout {
            meta.insert(META_SPLIT, w.layout.split as u64)?;
            match w.layout.moving {
                Some((block, cursor)) => {
                    meta.insert(META_MOVING_BLOCK, block as u64)?;
                    meta.insert(META_MOVING_CURSOR, cursor)?;
                }
                None => {
                    meta.remove(META_MOVING_BLOCK)?;
                    meta.remove(META_MOVING_CURSOR)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the chunks of every series marked for cutting, with this
    /// write's accepted samples of those series. `watermark`: the last
    /// write-ahead batch whose samples of these series are now all in chunks.
    fn cut_all(
        &self,
        w: &mut Writer,
        head: &Head,
        txn: &WriteTransaction,
        store: &mut Store<'_>,
        watermark: u64,
    ) -> Result<(), TsdbError> {
        if w.batch.cuts.is_empty() {
            return Ok(());
        }
        let n = w.batch.cuts.len();
        let mut in_order: Vec<Vec<Sample>> = vec![Vec::new(); n];
        let mut out_of_order: Vec<Vec<Sample>> = vec![Vec::new(); n];
        for a in &w.batch.accepted {
            let st = &w.series[a.slot as usize];
            if st.cut_mark == w.epoch {
                let list = if a.ooo {
                    &mut out_of_order
                } else {
                    &mut in_order
                };
                list[st.cut_index as usize].push(a.s);
            }
        }
        let mut states = txn.open_table(SERIES_STATE)?;
        let mut record = Vec::new();
        for i in 0..n {
            let slot = w.batch.cuts[i];
            let pending = std::mem::take(&mut in_order[i]);
            let ooo = std::mem::take(&mut out_of_order[i]);
            self.cut_series(w, head, store, slot, pending, ooo)?;
            let st = &mut w.series[slot as usize];
            st.watermark = watermark;
            encode_state(st, &mut record);
            states.insert(st.id, record.as_slice())?;
        }
        Ok(())
    }

    /// Moves a series' head and out-of-order samples into chunks.
    fn cut_series(
        &self,
        w: &mut Writer,
        head: &Head,
        store: &mut Store<'_>,
        slot: u32,
        batch_pending: Vec<Sample>,
        mut ooo: Vec<Sample>,
    ) -> Result<(), TsdbError> {
        let st = w.series[slot as usize];
        let id = st.id;
        let mut pending = Vec::new();
        if let Some(h) = head.series.get(slot as usize).filter(|h| h.id == id) {
            pending.reserve(h.samples.len() + batch_pending.len() + CHUNK_SAMPLES as usize);
            pending.extend_from_slice(&h.samples);
            ooo.extend_from_slice(&h.ooo);
        }
        pending.extend_from_slice(&batch_pending);
        sort_samples(&mut pending);
        sort_samples(&mut ooo);

        let mut chunks = ChunkCount {
            last: st.last_chunk,
            count: st.chunks,
        };
        let mut sealed = st.sealed_maxt;
        let mut out = ChunkWriter {
            store,
            layout: &mut w.layout,
            encoder: &mut w.encoder,
            buf: &mut w.chunk_buf,
            totals: &mut w.totals,
        };
        if !ooo.is_empty() {
            merge_out_of_order(&mut out, id, &ooo, &mut chunks)?;
        }
        if let Some(first) = pending.first() {
            // Complete a chunk a flush or a span limit left short.
            if let Some((mint, count)) = chunks.last
                && count < CHUNK_SAMPLES
                && span(mint, first.t) < CHUNK_SPAN_MS as i128
            {
                let mut merged = Vec::with_capacity(count as usize + pending.len());
                out.store.read(id, mint, &mut merged)?;
                out.remove(id, mint, &mut chunks)?;
                merged.extend_from_slice(&pending);
                pending = merged;
            }
            out.write(id, &pending, &mut chunks)?;
            let last_t = pending[pending.len() - 1].t;
            sealed = Some(sealed.map_or(last_t, |m| m.max(last_t)));
        }
        let st = &mut w.series[slot as usize];
        if st.pin != 0 {
            w.pins.remove(&(st.pin, slot));
        }
        st.pin = 0;
        st.head_len = 0;
        st.ooo_len = 0;
        st.head_min_t = i64::MAX;
        st.head_max_t = i64::MIN;
        st.last_chunk = chunks.last;
        st.chunks = chunks.count;
        st.sealed_maxt = sealed;
        Ok(())
    }

    /// Shows a committed write to readers.
    fn apply(&self, w: &mut Writer) -> Result<(), TsdbError> {
        let mut head = self.write_head()?;
        let head = &mut *head;
        for (slot, labels) in &w.batch.new_series {
            let slot = *slot as usize;
            let id = w.series[slot].id;
            if head.series.len() <= slot {
                head.series
                    .resize_with(slot + 1, || HeadSeries::new(FREE, Arc::default()));
            }
            head.series[slot] = HeadSeries::new(id, labels.clone());
            head.slot_of.insert(id, slot as u32);
        }
        for a in &w.batch.accepted {
            let h = &mut head.series[a.slot as usize];
            h.min_t = h.min_t.min(a.s.t);
            h.max_t = h.max_t.max(a.s.t);
            if w.series[a.slot as usize].cut_mark == w.epoch {
                continue;
            }
            insert_sorted(if a.ooo { &mut h.ooo } else { &mut h.samples }, a.s);
            head.samples += 1;
        }
        for &slot in &w.batch.cuts {
            let h = &mut head.series[slot as usize];
            h.sealed_maxt = w.series[slot as usize].sealed_maxt;
            head.samples -= (h.samples.len() + h.ooo.len()) as u64;
            h.samples.clear();
            h.ooo.clear();
            if h.samples.capacity() > 4 * CHUNK_SAMPLES as usize {
                h.samples.shrink_to(CHUNK_SAMPLES as usize);
            }
            h.ooo.shrink_to(0);
        }
        head.totals = w.totals;
        Ok(())
    }

    /// Cuts every head into chunks and empties the write-ahead table, in one
    /// durable commit. Call it on shutdown (the next open then has nothing
    /// to replay) and now and then; the short chunks it leaves are
    /// completed by the next cut of their series.
    pub fn flush(&self) -> Result<(), TsdbError> {
        let mut guard = self.lock_writer()?;
        let w = &mut *guard;
        w.begin(0);
        let result = self.flush_locked(w);
        if result.is_err() {
            w.rollback();
        }
        result
    }

    fn flush_locked(&self, w: &mut Writer) -> Result<(), TsdbError> {
        let pinned: Vec<u32> = w.pins.iter().map(|&(_, slot)| slot).collect();
        if pinned.is_empty() && w.wal_low >= w.next_seq {
            return Ok(());
        }
        for slot in pinned {
            w.mark_cut(slot);
        }
        let txn = begin_write(&self.db)?;
        let head = self.read_head()?;
        let mut store = Store::open(&txn)?;
        // Every batch so far is now in chunks.
        let watermark = w.next_seq - 1;
        self.cut_all(w, &head, &txn, &mut store, watermark)?;
        move_blocks(w, &head, &txn, &mut store)?;
        drop(store);
        txn.open_table(WAL)?
            .retain_in(w.wal_low..w.next_seq, |_, _| false)?;
        self.write_meta(&txn, w)?;
        drop(head);
        txn.commit()?;
        self.apply(w)?;
        w.wal_low = w.next_seq;
        Ok(())
    }

    /// Rewrites each series' chunks of each block in the block table as one
    /// chunk, as moving a block there does. Backfill writes old data
    /// straight into the block table, 120 samples a chunk; this makes it as
    /// compact as data that arrived live. One durable commit; returns how
    /// many chunks fewer there are.
    pub fn compact_blocks(&self) -> Result<u64, TsdbError> {
        let mut guard = self.lock_writer()?;
        let w = &mut *guard;
        w.begin(0);
        let result = self.compact_blocks_locked(w);
        if result.is_err() {
            w.rollback();
        }
        result
    }

    fn compact_blocks_locked(&self, w: &mut Writer) -> Result<u64, TsdbError> {
        let txn = begin_write(&self.db)?;
        let head = self.read_head()?;
        let mut store = Store::open(&txn)?;
        // (block, series) pairs with more than one chunk.
        let mut groups = Vec::new();
        let mut run: Option<((i64, u64), usize)> = None;
        for row in store.blocks.iter()? {
            let (block, id, _) = row?.0.value();
            match &mut run {
                Some((key, n)) if *key == (block, id) => *n += 1,
                _ => {
                    if let Some((key, n)) = run.replace(((block, id), 1))
                        && n > 1
                    {
                        groups.push(key);
                    }
                }
            }
        }
        if let Some((key, n)) = run
            && n > 1
        {
            groups.push(key);
        }
        let before = w.totals.chunks;
        let mut states = None;
        let mut samples = Vec::new();
        for (block, id) in groups {
            let mut rows = Vec::new();
            for row in store
                .blocks
                .range((block, id, i64::MIN)..=(block, id, i64::MAX))?
            {
                let (k, v) = row?;
                rows.push((k.value().2, v.value().to_vec()));
            }
            let Some(plan) = merge_plan(w, &head, id, &rows) else {
                continue;
            };
            for (mint, _) in &rows {
                store.blocks.remove((block, id, *mint))?;
            }
            write_merged(
                w,
                &plan,
                &txn,
                &mut states,
                &mut store,
                block,
                &rows,
                &mut samples,
            )?;
        }
        drop(states);
        drop(store);
        let merged = before - w.totals.chunks;
        if merged == 0 {
            return Ok(0);
        }
        self.write_meta(&txn, w)?;
        drop(head);
        txn.commit()?;
        self.apply(w)?;
        Ok(merged)
    }

    // ---- retention ---------------------------------------------------------

    /// Deletes whole chunks whose newest sample is older than
    /// `now_ms − retention`, then the oldest chunks (by 2 h block, then
    /// by first timestamp among recent ones) until the engine's tables fit
    /// in `retention_bytes`; series left without samples leave the index. One durable commit. The rows are deleted and their pages
    /// reused by redb; the file itself only shrinks by `Database::compact`,
    /// which needs the database to itself.
    ///
    /// The size is measured as the pages of all `tsdb_` tables (head samples
    /// count through the write-ahead table); heads are never deleted, so a
    /// limit below their size cannot be met.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, TsdbError> {
        if self.options.retention.is_none() && self.options.retention_bytes.is_none() {
            return Ok(RetentionReport::default());
        }
        let mut guard = self.lock_writer()?;
        let w = &mut *guard;
        w.begin(0);
        let result = self.retention_locked(w, now_ms);
        if result.is_err() {
            w.rollback();
        }
        result
    }

    fn retention_locked(&self, w: &mut Writer, now_ms: i64) -> Result<RetentionReport, TsdbError> {
        let mut report = RetentionReport::default();
        let txn = begin_write(&self.db)?;
        let head = self.read_head()?;
        // Series id → chunks deleted.
        let mut deleted: FxHashMap<u64, u32> = FxHashMap::default();
        let mut lower_bound = i64::MIN;
        {
            let mut store = Store::open(&txn)?;
            let mut count = |id: u64, chunk_count: u32, bytes: usize, totals: &mut Totals| {
                *deleted.entry(id).or_default() += 1;
                report.chunks_deleted += 1;
                report.samples_deleted += chunk_count as u64;
                report.bytes_deleted += bytes as u64;
                totals.sub(chunk_count, bytes);
            };
            if let Some(retention) = self.options.retention {
                let cutoff =
                    now_ms.saturating_sub(retention.as_millis().min(i64::MAX as u128) as i64);
                // What is left starts after cutoff − span (invariant 1).
                lower_bound = earliest_start(cutoff);
                let totals = &mut w.totals;
                // Chunks ending before the cutoff start in its block or before.
                let end = block_of(cutoff).saturating_add(BLOCK_MS);
                store
                    .blocks
                    .retain_in(..(end, 0u64, i64::MIN), |(_, id, mint), bytes| {
                        match codec::header(mint, bytes) {
                            Ok(h) if h.maxt < cutoff => {
                                count(id, h.count, bytes.len(), totals);
                                false
                            }
                            // A corrupt chunk is kept: retention is no place to lose it silently.
                            _ => true,
                        }
                    })?;
                if w.layout
                    .hot_blocks
                    .first_key_value()
                    .is_some_and(|(&b, _)| b < end)
                {
                    let hot_blocks = &mut w.layout.hot_blocks;
                    store
                        .hot
                        .retain(|(id, mint), bytes| match codec::header(mint, bytes) {
                            Ok(h) if h.maxt < cutoff => {
                                count(id, h.count, bytes.len(), totals);
                                decrement(hot_blocks, block_of(mint));
                                false
                            }
                            _ => true,
                        })?;
                }
            }
            if let Some(limit) = self.options.retention_bytes {
                let size = tables_bytes(&txn, &store)?;
                if size > limit {
                    // Freeing a row frees its bytes spread over pages as full as its table's.
                    let fill = |s: TableStats| {
                        (s.stored_bytes() as f64 / page_bytes(s).max(1) as f64).clamp(0.05, 1.0)
                    };
                    let mut excess = (size - limit) as f64;
                    // The block table is in time order (by 2 h block): delete from its start.
                    let block_fill = fill(store.blocks.stats()?);
                    while excess > 0.0 {
                        let oldest: Vec<(i64, u64, i64)> = store
                            .blocks
                            .iter()?
                            .take(1024)
                            .map(|row| row.map(|(k, _)| k.value()))
                            .collect::<Result<_, redb::StorageError>>()?;
                        if oldest.is_empty() {
                            break;
                        }
                        for key in oldest {
                            if excess <= 0.0 {
                                break;
                            }
                            if let Some(row) = store.blocks.remove(key)? {
                                let bytes = row.value();
                                let h = codec::header(key.2, bytes)?;
                                count(key.1, h.count, bytes.len(), &mut w.totals);
                                excess -= (bytes.len() + 24 + 8) as f64 / block_fill;
                            }
                        }
                    }
                    if excess > 0.0 {
                        let hot_fill = fill(store.hot.stats()?);
                        let mut hot: Vec<(i64, u64)> = Vec::new();
                        for row in store.hot.iter()? {
                            let (id, mint) = row?.0.value();
                            hot.push((mint, id));
                        }
                        hot.sort_unstable();
                        for (mint, id) in hot {
                            if excess <= 0.0 {
                                break;
                            }
                            if let Some(row) = store.hot.remove((id, mint))? {
                                let bytes = row.value();
                                let h = codec::header(mint, bytes)?;
                                count(id, h.count, bytes.len(), &mut w.totals);
                                excess -= (bytes.len() + 16 + 8) as f64 / hot_fill;
                                drop(row);
                                decrement(&mut w.layout.hot_blocks, block_of(mint));
                            }
                        }
                    }
                }
            }
        }
        if deleted.is_empty() {
            return Ok(report);
        }

        let mut gc = Vec::new();
        let mut states = txn.open_table(SERIES_STATE)?;
        let mut record = Vec::new();
        for (&id, &n) in &deleted {
            let Some(&slot) = head
                .slot_of
                .get(&id)
                .filter(|&&s| w.series[s as usize].id == id)
            else {
                continue;
            };
            w.touch(slot);
            let st = &mut w.series[slot as usize];
            st.chunks = st.chunks.saturating_sub(n);
            if st.ooo_len == 0 {
                st.oldest_t = st.oldest_t.max(lower_bound.min(st.head_min_t));
            }
            if st.chunks == 0 {
                st.last_chunk = None;
                if st.head_len == 0 && st.ooo_len == 0 && st.pin == 0 {
                    gc.push(slot);
                    continue;
                }
            }
            encode_state(st, &mut record);
            states.insert(id, record.as_slice())?;
        }
        // Series left with nothing leave the index.
        if !gc.is_empty() {
            let mut by_labels = txn.open_table(SERIES_BY_LABELS)?;
            let mut series = txn.open_table(SERIES)?;
            let mut postings = txn.open_multimap_table(POSTINGS)?;
            for &slot in &gc {
                let id = w.series[slot as usize].id;
                let h = &head.series[slot as usize];
                labels::encode(&h.labels, &mut w.label_buf);
                by_labels.remove(w.label_buf.as_slice())?;
                series.remove(id)?;
                states.remove(id)?;
                for (name, value) in h.labels.iter() {
                    postings.remove((name.as_str(), value.as_str()), id)?;
                }
            }
            report.series_deleted = gc.len() as u64;
        }
        drop(states);
        self.write_meta(&txn, w)?;
        drop(head);
        txn.commit()?;

        let mut head = self.write_head()?;
        let head = &mut *head;
        for &slot in &w.batch.touched {
            head.series[slot as usize].min_t = w.series[slot as usize].oldest_t;
        }
        for &slot in &gc {
            let h = std::mem::replace(
                &mut head.series[slot as usize],
                HeadSeries::new(FREE, Arc::default()),
            );
            head.slot_of.remove(&h.id);
            w.by_labels.remove(&*h.labels);
            w.series[slot as usize] = SeriesState::new(FREE);
            w.free_slots.push(slot);
        }
        head.totals = w.totals;
        Ok(report)
    }

    // ---- reading -----------------------------------------------------------

    /// Series matching all `matchers` with their samples in `[mint, maxt]`
    /// (inclusive), sorted by labels; series without samples there are left
    /// out. At least one matcher must not match the empty string.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, TsdbError> {
        require_selective(matchers)?;
        if mint > maxt {
            return Ok(Vec::new());
        }
        struct Pick {
            id: u64,
            labels: Arc<Labels>,
            head: Vec<Sample>,
            min_t: i64,
            sealed_maxt: Option<i64>,
        }
        let (txn, picks) = {
            let head = self.read_head()?;
            let txn = self.db.begin_read()?;
            let slots = resolve(&txn, &head, matchers)?;
            let mut picks = Vec::with_capacity(slots.len());
            for slot in slots {
                let h = &head.series[slot as usize];
                if h.max_t < mint || h.min_t > maxt {
                    continue;
                }
                let mut samples = Vec::new();
                copy_range(&h.ooo, mint, maxt, &mut samples);
                copy_range(&h.samples, mint, maxt, &mut samples);
                picks.push(Pick {
                    id: h.id,
                    labels: h.labels.clone(),
                    head: samples,
                    min_t: h.min_t,
                    sealed_maxt: h.sealed_maxt,
                });
            }
            (txn, picks)
        };
        let hot = txn.open_table(CHUNKS)?;
        let blocks = txn.open_table(BLOCK_CHUNKS)?;
        let last_block = last_block_in(&blocks)?.unwrap_or(i64::MIN);
        let mut scratch = Vec::new();
        let mut out = Vec::with_capacity(picks.len());
        for pick in picks {
            let mut samples = Vec::new();
            if let Some(sealed) = pick.sealed_maxt {
                let lo = earliest_start(mint).max(pick.min_t);
                let maxt = maxt.min(sealed);
                chunks_in_until(
                    &hot,
                    &blocks,
                    last_block,
                    pick.id,
                    lo,
                    maxt,
                    |cmint, bytes| {
                        let h = codec::header(cmint, bytes)?;
                        if h.maxt < mint {
                            return Ok(true);
                        }
                        if cmint >= mint && h.maxt <= maxt {
                            codec::decode(cmint, bytes, &mut samples)?;
                        } else {
                            scratch.clear();
                            codec::decode(cmint, bytes, &mut scratch)?;
                            samples.extend(scratch.iter().filter(|s| s.t >= mint && s.t <= maxt));
                        }
                        Ok(true)
                    },
                )?;
            }
            samples.extend_from_slice(&pick.head);
            sort_samples(&mut samples);
            if !samples.is_empty() {
                out.push(Series {
                    labels: (*pick.labels).clone(),
                    samples,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Label sets of the series matching `matchers` with data in
    /// `[mint, maxt]`, sorted. Whether a series has data in the range is
    /// decided at chunk granularity: a chunk overlapping the range counts.
    pub fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        require_selective(matchers)?;
        if mint > maxt {
            return Ok(Vec::new());
        }
        let head = self.read_head()?;
        let txn = self.db.begin_read()?;
        let reader = ChunkReader::open(&txn)?;
        let mut out = Vec::new();
        for slot in resolve(&txn, &head, matchers)? {
            let h = &head.series[slot as usize];
            if reader.has_data(h, mint, maxt)? {
                out.push((*h.labels).clone());
            }
        }
        out.sort();
        Ok(out)
    }

    /// How many series match `matchers`, whatever their time range: a
    /// cost estimate that reads no chunk.
    pub fn count_series(&self, matchers: &[Matcher]) -> Result<usize, TsdbError> {
        require_selective(matchers)?;
        let head = self.read_head()?;
        let txn = self.db.begin_read()?;
        Ok(resolve(&txn, &head, matchers)?.len())
    }

    /// Label names of the series matching `matchers` (all series if empty)
    /// with data in `[mint, maxt]`, sorted.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let head = self.read_head()?;
        let txn = self.db.begin_read()?;
        let reader = ChunkReader::open(&txn)?;
        let slots = if matchers.is_empty() {
            all_slots(&head)
        } else {
            resolve(&txn, &head, matchers)?
        };
        let mut names = BTreeSet::new();
        for slot in slots {
            let h = &head.series[slot as usize];
            if h.labels.iter().all(|(n, _)| names.contains(n)) || !reader.has_data(h, mint, maxt)? {
                continue;
            }
            for (n, _) in h.labels.iter() {
                if !names.contains(n) {
                    names.insert(n.clone());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the series matching `matchers` (all
    /// series if empty) with data in `[mint, maxt]`, sorted.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, TsdbError> {
        if mint > maxt || name.is_empty() {
            return Ok(Vec::new());
        }
        let head = self.read_head()?;
        let txn = self.db.begin_read()?;
        let reader = ChunkReader::open(&txn)?;
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            let postings = txn.open_multimap_table(POSTINGS)?;
            let end = format!("{name}\0");
            for row in postings.range::<(&str, &str)>((name, "")..(end.as_str(), ""))? {
                let (key, ids) = row?;
                for id in ids {
                    let id = id?.value();
                    if let Some(&slot) = head.slot_of.get(&id)
                        && reader.has_data(&head.series[slot as usize], mint, maxt)?
                    {
                        values.insert(key.value().1.to_string());
                        break;
                    }
                }
            }
        } else {
            for slot in resolve(&txn, &head, matchers)? {
                let h = &head.series[slot as usize];
                let value = label_value(&h.labels, name);
                if !value.is_empty() && !values.contains(value) && reader.has_data(h, mint, maxt)? {
                    values.insert(value.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Counts and sizes. Walks the tables' pages, so it costs in proportion
    /// to the database's size: for metrics scraped now and then, not for a
    /// hot path.
    pub fn stats(&self) -> Result<Stats, TsdbError> {
        let (series, head_samples, totals) = {
            let head = self.read_head()?;
            (head.slot_of.len() as u64, head.samples, head.totals)
        };
        let txn = self.db.begin_read()?;
        let index_bytes = page_bytes(txn.open_table(SERIES)?.stats()?)
            + page_bytes(txn.open_table(SERIES_BY_LABELS)?.stats()?)
            + page_bytes(txn.open_table(SERIES_STATE)?.stats()?)
            + page_bytes(txn.open_multimap_table(POSTINGS)?.stats()?);
        Ok(Stats {
            series,
            samples: totals.samples + head_samples,
            chunks: totals.chunks,
            head_samples,
            chunk_payload_bytes: totals.payload_bytes,
            chunk_bytes: page_bytes(txn.open_table(CHUNKS)?.stats()?)
                + page_bytes(txn.open_table(BLOCK_CHUNKS)?.stats()?),
            index_bytes,
            wal_bytes: page_bytes(txn.open_table(WAL)?.stats()?),
        })
    }
}

/// Every write transaction of the engine starts here.
fn begin_write(db: &Database) -> Result<WriteTransaction, TsdbError> {
    let mut txn = db.begin_write()?;
    // Durability::Immediate (redb's default, set here so it cannot change
    // unnoticed): commit() returns only after fsync. That is what lets
    // append() promise that an acknowledged batch survives kill -9 — and
    // why appends should be batches (~4 ms of fsync per commit here).
    txn.set_durability(Durability::Immediate)?;
    // Quick repair: each commit also records the allocator state, so the
    // first open after a crash takes milliseconds instead of a walk of the
    // whole file (measured 2–15 ms instead of ~400 ms for 553 MB).
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Rebuilds writer and head state from the tables: series and their
/// states, where hot chunks are, then the write-ahead rows not yet in chunks.
fn load(db: &Database) -> Result<(Writer, Head), TsdbError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let meta_get =
        |key: &str| -> Result<Option<u64>, TsdbError> { Ok(meta.get(key)?.map(|v| v.value())) };
    let totals = Totals {
        chunks: meta_get(META_CHUNKS)?.unwrap_or(0),
        samples: meta_get(META_CHUNK_SAMPLES)?.unwrap_or(0),
        payload_bytes: meta_get(META_CHUNK_BYTES)?.unwrap_or(0),
    };
    let mut layout = Layout {
        split: meta_get(META_SPLIT)?.map_or(i64::MIN, |v| v as i64),
        moving: match (meta_get(META_MOVING_BLOCK)?, meta_get(META_MOVING_CURSOR)?) {
            (Some(block), Some(cursor)) => Some((block as i64, cursor)),
            _ => None,
        },
        hot_blocks: BTreeMap::new(),
    };
    for row in txn.open_table(CHUNKS)?.iter()? {
        let (_, mint) = row?.0.value();
        *layout.hot_blocks.entry(block_of(mint)).or_default() += 1;
    }
    let mut w = Writer {
        by_labels: HashMap::new(),
        series: Vec::new(),
        free_slots: Vec::new(),
        pins: BTreeSet::new(),
        next_seq: 1,
        wal_low: 1,
        next_series_id: meta_get(META_NEXT_SERIES_ID)?.unwrap_or(1).max(1),
        max_t: i64::MIN,
        totals,
        layout,
        epoch: 0,
        scrapes: HashMap::new(),
        batch: Batch::default(),
        encoder: Encoder::default(),
        chunk_buf: Vec::new(),
        label_buf: Vec::new(),
    };
    let mut head = Head {
        slot_of: FxHashMap::default(),
        series: Vec::new(),
        samples: 0,
        totals,
    };

    let states = txn.open_table(SERIES_STATE)?;
    let mut max_seq = 0;
    for row in txn.open_table(SERIES)?.iter()? {
        let (k, v) = row?;
        let id = k.value();
        let labels = Arc::new(labels::decode(v.value())?);
        let st = match states.get(id)? {
            Some(state) => decode_state(id, state.value())?,
            None => SeriesState::new(id),
        };
        max_seq = max_seq.max(st.watermark);
        let slot = w.series.len() as u32;
        let mut h = HeadSeries::new(id, labels.clone());
        h.min_t = st.oldest_t;
        h.max_t = st.newest.map_or(i64::MIN, |(t, _)| t);
        h.sealed_maxt = st.sealed_maxt;
        w.max_t = w.max_t.max(h.max_t);
        w.series.push(st);
        w.by_labels.insert(labels, slot);
        head.series.push(h);
        head.slot_of.insert(id, slot);
    }

    // Replay: samples of a series in batches after its watermark.
    let mut first_key = None;
    for row in txn.open_table(WAL)?.iter()? {
        let (k, v) = row?;
        let seq = k.value();
        first_key.get_or_insert(seq);
        max_seq = max_seq.max(seq);
        wal::for_each(v.value(), |id, t, v| {
            let Some(&slot) = head.slot_of.get(&id) else {
                // Removed by retention, so persisted before.
                return;
            };
            let st = &mut w.series[slot as usize];
            if seq <= st.watermark {
                return;
            }
            let s = Sample { t, v };
            let ooo = st.sealed_maxt.is_some_and(|m| t <= m);
            let h = &mut head.series[slot as usize];
            let list = if ooo { &mut h.ooo } else { &mut h.samples };
            let before = list.len();
            insert_sorted(list, s);
            if list.len() == before {
                // A timestamp seen already; acceptance never lets one repeat.
                return;
            }
            h.min_t = h.min_t.min(t);
            h.max_t = h.max_t.max(t);
            head.samples += 1;
            st.accept(slot, seq, s, ooo, &mut w.pins);
            w.max_t = w.max_t.max(t);
        })?;
    }
    w.next_seq = max_seq + 1;
    w.wal_low = first_key.unwrap_or(w.next_seq);
    Ok((w, head))
}

/// Moves chunks of closed blocks from the hot table to the block table in
/// key order, at most [`MOVE_BUDGET`] per call. A block is closed once the
/// newest data is a chunk span past its end: by then the heads that could
/// still cut chunks starting in it have been cut.
fn move_blocks(
    w: &mut Writer,
    head: &Head,
    txn: &WriteTransaction,
    store: &mut Store<'_>,
) -> Result<(), TsdbError> {
    if w.max_t == i64::MIN {
        return Ok(());
    }
    let closed_before = block_of(w.max_t.saturating_sub(CHUNK_SPAN_MS));
    let mut states = None;
    let mut samples = Vec::new();
    let mut budget = MOVE_BUDGET;
    loop {
        let (block, mut cursor) = match w.layout.moving {
            Some(moving) => moving,
            None => match w.layout.hot_blocks.first_key_value() {
                Some((&block, _)) if block < closed_before => {
                    w.layout.split = w.layout.split.max(block);
                    (block, 0)
                }
                _ => return Ok(()),
            },
        };
        let block_end = block.saturating_add(BLOCK_MS);
        loop {
            if budget == 0 {
                w.layout.moving = Some((block, cursor));
                return Ok(());
            }
            let id = match store.hot.range((cursor, i64::MIN)..)?.next() {
                Some(row) => row?.0.value().0,
                None => break,
            };
            let mut rows = Vec::new();
            for row in store.hot.range((id, block)..(id, block_end))? {
                let (k, v) = row?;
                rows.push((k.value().1, v.value().to_vec()));
            }
            for (mint, _) in &rows {
                store.hot.remove((id, *mint))?;
                decrement(&mut w.layout.hot_blocks, block);
            }
            budget = budget.saturating_sub(rows.len() + 1);
            cursor = id + 1;
            if let Some(plan) = merge_plan(w, head, id, &rows) {
                write_merged(
                    w,
                    &plan,
                    txn,
                    &mut states,
                    store,
                    block,
                    &rows,
                    &mut samples,
                )?;
            } else {
                for (mint, bytes) in &rows {
                    insert_block_chunk(store, (block, id, *mint), bytes)?;
                }
            }
        }
        // Every series done: the block is all in the block table.
        w.layout.hot_blocks.remove(&block);
        w.layout.moving = None;
        w.layout.split = w.layout.split.max(block_end);
    }
}

/// Merged block chunks stay under this: rows of a quarter page at most
/// keep redb's half-split leaves reasonably full (larger ones, a page or
/// two to a value, waste more than their headers cost).
const MERGED_CHUNK_BYTES: usize = 1024;

/// How a series' chunks `rows` (in key order) of one block are written
/// back: each range of rows becomes one chunk.
struct MergePlan {
    slot: u32,
    groups: Vec<std::ops::Range<usize>>,
}

/// The plan for a series' chunks of one block, if it merges anything:
/// runs of neighbours under [`MERGED_CHUNK_BYTES`] and the sample limit,
/// never taking in the series' newest chunk (whose key and count its state
/// records for the next cut to extend).
fn merge_plan(w: &Writer, head: &Head, id: u64, rows: &[(i64, Vec<u8>)]) -> Option<MergePlan> {
    if rows.len() < 2 {
        return None;
    }
    let slot = *head.slot_of.get(&id)?;
    let st = w.series.get(slot as usize).filter(|st| st.id == id)?;
    let newest = st.last_chunk.map(|(mint, _)| mint);
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut bytes, mut samples) = (0usize, 0usize);
    for (i, (mint, chunk)) in rows.iter().enumerate() {
        let count = codec::header(*mint, chunk).ok()?.count as usize;
        let joins = match groups.last() {
            Some(last) => {
                last.end == i
                    && newest != Some(*mint)
                    && newest != Some(rows[last.start].0)
                    && bytes + chunk.len() <= MERGED_CHUNK_BYTES
                    && samples + count <= codec::MAX_SAMPLES
            }
            None => false,
        };
        if joins {
            let last = groups.last_mut().expect("joins a group");
            last.end = i + 1;
            bytes += chunk.len();
            samples += count;
        } else {
            groups.push(i..i + 1);
            (bytes, samples) = (chunk.len(), count);
        }
    }
    groups
        .iter()
        .any(|g| g.len() > 1)
        .then_some(MergePlan { slot, groups })
}

/// Writes a series' chunks `rows` of one block, already removed from
/// their table, into the block table as `plan` groups them: a chunk costs
/// a key, a header and a full first sample (~0.4 B per sample at 120
/// samples). The series' chunk count changes with its state row, in the
/// caller's transaction.
#[allow(clippy::too_many_arguments)]
fn write_merged<'t>(
    w: &mut Writer,
    plan: &MergePlan,
    txn: &'t WriteTransaction,
    states: &mut Option<redb::Table<'t, u64, &'static [u8]>>,
    store: &mut Store<'_>,
    block: i64,
    rows: &[(i64, Vec<u8>)],
    samples: &mut Vec<Sample>,
) -> Result<(), TsdbError> {
    let id = w.series[plan.slot as usize].id;
    for group in &plan.groups {
        let group = &rows[group.clone()];
        if let [(mint, bytes)] = group {
            insert_block_chunk(store, (block, id, *mint), bytes)?;
            continue;
        }
        samples.clear();
        for (mint, bytes) in group {
            let count = codec::header(*mint, bytes)?.count;
            w.totals.sub(count, bytes.len());
            codec::decode(*mint, bytes, samples)?;
        }
        w.encoder.encode(samples, &mut w.chunk_buf);
        insert_block_chunk(store, (block, id, samples[0].t), &w.chunk_buf)?;
        w.totals.add(samples.len() as u32, w.chunk_buf.len());
    }
    w.touch(plan.slot);
    let st = &mut w.series[plan.slot as usize];
    st.chunks = st
        .chunks
        .saturating_sub((rows.len() - plan.groups.len()) as u32);
    let states = match states {
        Some(table) => table,
        None => states.insert(txn.open_table(SERIES_STATE)?),
    };
    let mut record = Vec::new();
    encode_state(st, &mut record);
    states.insert(id, record.as_slice())?;
    Ok(())
}

fn insert_block_chunk(
    store: &mut Store<'_>,
    key: (i64, u64, i64),
    bytes: &[u8],
) -> Result<(), TsdbError> {
    if store.blocks.insert(key, bytes)?.is_some() {
        return Err(TsdbError::Corrupt(format!(
            "chunk ({}, {}) is in both chunk tables",
            key.1, key.2
        )));
    }
    Ok(())
}

/// Pages of every `tsdb_` table.
fn tables_bytes(txn: &WriteTransaction, store: &Store<'_>) -> Result<u64, TsdbError> {
    Ok(page_bytes(store.hot.stats()?)
        + page_bytes(store.blocks.stats()?)
        + page_bytes(txn.open_table(SERIES)?.stats()?)
        + page_bytes(txn.open_table(SERIES_BY_LABELS)?.stats()?)
        + page_bytes(txn.open_table(SERIES_STATE)?.stats()?)
        + page_bytes(txn.open_multimap_table(POSTINGS)?.stats()?)
        + page_bytes(txn.open_table(WAL)?.stats()?)
        + page_bytes(txn.open_table(SCRAPES)?.stats()?)
        + page_bytes(txn.open_table(META)?.stats()?))
}

/// A series' chunk count and newest chunk while a cut rewrites them.
struct ChunkCount {
    last: Option<(i64, u32)>,
    count: u32,
}

/// What writing chunks needs, borrowed from the writer and the transaction.
struct ChunkWriter<'a, 't> {
    store: &'a mut Store<'t>,
    layout: &'a mut Layout,
    encoder: &'a mut Encoder,
    buf: &'a mut Vec<u8>,
    totals: &'a mut Totals,
}

impl ChunkWriter<'_, '_> {
    fn remove(&mut self, id: u64, mint: i64, chunks: &mut ChunkCount) -> Result<(), TsdbError> {
        if let Some((count, bytes)) = self.store.remove(self.layout, id, mint)? {
            self.totals.sub(count, bytes);
            chunks.count = chunks.count.saturating_sub(1);
        }
        Ok(())
    }

    /// Writes `samples` (time-ordered) as chunks of about [`CHUNK_SAMPLES`],
    /// each spanning less than [`CHUNK_SPAN_MS`]. The last of them becomes
    /// the series' newest chunk if it is newer than the one recorded.
    fn write(
        &mut self,
        id: u64,
        samples: &[Sample],
        chunks: &mut ChunkCount,
    ) -> Result<(), TsdbError> {
        let n = samples.len();
        let full = CHUNK_SAMPLES as usize;
        let mut start = 0;
        for i in 1..=n {
            let end_here = i == n
                || (i - start >= full && n - i >= full)
                || span(samples[start].t, samples[i].t) >= CHUNK_SPAN_MS as i128;
            if !end_here {
                continue;
            }
            let piece = &samples[start..i];
            self.encoder.encode(piece, self.buf);
            self.store.insert(self.layout, id, piece[0].t, self.buf)?;
            self.totals.add(piece.len() as u32, self.buf.len());
            chunks.count += 1;
            if chunks.last.is_none_or(|(mint, _)| piece[0].t >= mint) {
                chunks.last = Some((piece[0].t, piece.len() as u32));
            }
            start = i;
        }
        Ok(())
    }
}

/// Merges out-of-order samples (time-ordered, none newer than the newest
/// chunk) into the chunks whose ranges they fall in, keeping chunks
/// disjoint (invariant 1): a sample goes to the chunk that can hold it
/// (the last one starting in `(t − span, t]`), with the samples after it up
/// to the next chunk's start; a sample no chunk can hold starts chunks of
/// its own in that gap.
fn merge_out_of_order(
    out: &mut ChunkWriter<'_, '_>,
    id: u64,
    ooo: &[Sample],
    chunks: &mut ChunkCount,
) -> Result<(), TsdbError> {
    let last_t = ooo[ooo.len() - 1].t;
    let mut i = 0;
    while i < ooo.len() {
        let t = ooo[i].t;
        let mut holder = None;
        chunks_in(
            &out.store.hot,
            &out.store.blocks,
            id,
            earliest_start(t),
            t,
            |mint, _| {
                holder = Some(mint);
                Ok(true)
            },
        )?;
        let from = holder.unwrap_or(t);
        let mut next = None;
        if from < last_t {
            chunks_in(
                &out.store.hot,
                &out.store.blocks,
                id,
                from + 1,
                last_t,
                |mint, _| {
                    next = Some(mint);
                    Ok(false)
                },
            )?;
        }
        let j = i + ooo[i..].partition_point(|s| next.is_none_or(|n| s.t < n));
        let mut merged = Vec::with_capacity(CHUNK_SAMPLES as usize + (j - i));
        if let Some(mint) = holder {
            out.store.read(id, mint, &mut merged)?;
            out.remove(id, mint, chunks)?;
            if chunks.last.is_some_and(|(m, _)| m == mint) {
                chunks.last = None;
            }
        }
        merged.extend_from_slice(&ooo[i..j]);
        sort_samples(&mut merged);
        // Pieces become the newest chunk only if they replace it (or there
        // is none): a sample no chunk holds precedes the newest chunk.
        out.write(id, &merged, chunks)?;
        i = j;
    }
    Ok(())
}

/// Read side of both chunk tables.
struct ChunkReader {
    hot: redb::ReadOnlyTable<(u64, i64), &'static [u8]>,
    blocks: redb::ReadOnlyTable<(i64, u64, i64), &'static [u8]>,
}

impl ChunkReader {
    fn open(txn: &ReadTransaction) -> Result<Self, TsdbError> {
        Ok(ChunkReader {
            hot: txn.open_table(CHUNKS)?,
            blocks: txn.open_table(BLOCK_CHUNKS)?,
        })
    }

    /// Whether the series has data in `[mint, maxt]`, at chunk granularity.
    fn has_data(&self, h: &HeadSeries, mint: i64, maxt: i64) -> Result<bool, TsdbError> {
        if h.max_t < mint || h.min_t > maxt {
            return Ok(false);
        }
        if mint <= h.min_t && h.max_t <= maxt {
            // Every series in the index has data, and all of it is in range.
            return Ok(true);
        }
        let in_range = |v: &[Sample]| {
            let i = v.partition_point(|s| s.t < mint);
            v.get(i).is_some_and(|s| s.t <= maxt)
        };
        if in_range(&h.samples) || in_range(&h.ooo) {
            return Ok(true);
        }
        let Some(sealed) = h.sealed_maxt.filter(|&s| mint <= s) else {
            return Ok(false);
        };
        let mut found = false;
        chunks_in(
            &self.hot,
            &self.blocks,
            h.id,
            earliest_start(mint).max(h.min_t),
            maxt.min(sealed),
            |cmint, bytes| {
                found = codec::header(cmint, bytes)?.maxt >= mint;
                Ok(!found)
            },
        )?;
        Ok(found)
    }
}

fn copy_range(src: &[Sample], mint: i64, maxt: i64, out: &mut Vec<Sample>) {
    let lo = src.partition_point(|s| s.t < mint);
    let hi = src.partition_point(|s| s.t <= maxt);
    if lo < hi {
        out.extend_from_slice(&src[lo..hi]);
    }
}

fn require_selective(matchers: &[Matcher]) -> Result<(), TsdbError> {
    if matchers.iter().any(|m| !m.matches("")) {
        Ok(())
    } else {
        Err(TsdbError::UnselectiveMatchers)
    }
}

fn all_slots(head: &Head) -> Vec<u32> {
    let mut slots: Vec<u32> = head.slot_of.values().copied().collect();
    slots.sort_unstable();
    slots
}

/// Slots of the series matching every matcher. Equality (and plain `a|b`)
/// matchers that need a label go through the postings and are
/// intersected; if there is none, the first matcher that needs a label
/// does; every other matcher filters the candidates by their labels.
fn resolve(
    txn: &ReadTransaction,
    head: &Head,
    matchers: &[Matcher],
) -> Result<Vec<u32>, TsdbError> {
    let needs_label = |m: &&Matcher| !m.matches("");
    let exact = |m: &&Matcher| m.op == MatchOp::Equal || m.literal_alternatives().is_some();
    let mut by_postings: Vec<&Matcher> =
        matchers.iter().filter(needs_label).filter(exact).collect();
    if by_postings.is_empty()
        && let Some(first) = matchers.iter().find(needs_label)
    {
        by_postings.push(first);
    }
    let mut candidates: Option<Vec<u64>> = None;
    // Postings read, smallest first; a list much longer than the candidates
    // left is not read at all: checking those candidates' labels in memory
    // is cheaper (`up{instance="a"}` must not read every `up` series).
    let mut used: Vec<&Matcher> = Vec::new();
    if !by_postings.is_empty() {
        let postings = txn.open_multimap_table(POSTINGS)?;
        let mut sized = Vec::with_capacity(by_postings.len());
        for m in by_postings {
            sized.push((postings_len(&postings, m)?, m));
        }
        sized.sort_by_key(|(len, _)| *len);
        for (len, m) in sized {
            if candidates
                .as_ref()
                .is_some_and(|c| (c.len() as u64).saturating_mul(8) < len)
            {
                break;
            }
            let ids = postings_for(&postings, m)?;
            let narrowed = match candidates {
                None => ids,
                Some(c) => intersect(&c, &ids),
            };
            if narrowed.is_empty() {
                return Ok(Vec::new());
            }
            candidates = Some(narrowed);
            used.push(m);
        }
    }
    let rest: Vec<&Matcher> = matchers
        .iter()
        .filter(|m| !used.iter().any(|p| std::ptr::eq(*p, *m)))
        .collect();
    let mut slots = Vec::new();
    let mut check = |slot: u32| {
        let h = &head.series[slot as usize];
        if rest
            .iter()
            .all(|m| m.matches(label_value(&h.labels, &m.name)))
        {
            slots.push(slot);
        }
    };
    match candidates {
        Some(ids) => {
            for id in ids {
                // Absent: created by a commit whose heads are not shown yet.
                if let Some(&slot) = head.slot_of.get(&id) {
                    check(slot);
                }
            }
        }
        None => all_slots(head).into_iter().for_each(check),
    }
    Ok(slots)
}

/// How many ids `m`'s postings hold, without reading them (a regex that
/// is not a list of literals would need a scan: counted as unbounded).
fn postings_len(
    postings: &ReadOnlyMultimapTable<(&'static str, &'static str), u64>,
    m: &Matcher,
) -> Result<u64, TsdbError> {
    if m.op == MatchOp::Equal {
        return Ok(postings.get((m.name.as_str(), m.value.as_str()))?.len());
    }
    match m.literal_alternatives() {
        Some(values) => {
            let mut len = 0;
            for value in values {
                len += postings.get((m.name.as_str(), value))?.len();
            }
            Ok(len)
        }
        None => Ok(u64::MAX),
    }
}

fn postings_for(
    postings: &ReadOnlyMultimapTable<(&'static str, &'static str), u64>,
    m: &Matcher,
) -> Result<Vec<u64>, TsdbError> {
    let mut ids = Vec::new();
    if m.op == MatchOp::Equal {
        for id in postings.get((m.name.as_str(), m.value.as_str()))? {
            ids.push(id?.value());
        }
        return Ok(ids);
    }
    if let Some(values) = m.literal_alternatives() {
        for value in values {
            for id in postings.get((m.name.as_str(), value))? {
                ids.push(id?.value());
            }
        }
    } else {
        let end = format!("{}\0", m.name);
        for row in postings.range::<(&str, &str)>((m.name.as_str(), "")..(end.as_str(), ""))? {
            let (key, values) = row?;
            if m.matches(key.value().1) {
                for id in values {
                    ids.push(id?.value());
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn encode_ids(ids: &[u64], out: &mut Vec<u8>) {
    put_uvarint(out, ids.len() as u64);
    let mut prev = 0;
    for &id in ids {
        put_uvarint(out, id - prev);
        prev = id;
    }
}

fn decode_ids(bytes: &[u8]) -> Result<Vec<u64>, TsdbError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let corrupt = || TsdbError::Corrupt("stored scrape series set is unreadable".into());
    let mut pos = 0;
    let n = get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?;
    let mut ids = Vec::with_capacity((n as usize).min(bytes.len()));
    let mut prev = 0u64;
    for _ in 0..n {
        prev = prev
            .checked_add(get_uvarint(bytes, &mut pos).ok_or_else(corrupt)?)
            .ok_or_else(corrupt)?;
        ids.push(prev);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_state_round_trips() {
        let mut st = SeriesState::new(7);
        st.watermark = 99;
        st.chunks = 3;
        st.last_chunk = Some((i64::MIN, 120));
        st.sealed_maxt = Some(-5);
        st.newest = Some((i64::MAX, f64::NAN.to_bits()));
        st.oldest_t = -1;
        let mut bytes = Vec::new();
        encode_state(&st, &mut bytes);
        let back = decode_state(7, &bytes).unwrap();
        assert_eq!(
            (
                back.watermark,
                back.chunks,
                back.last_chunk,
                back.sealed_maxt,
                back.newest,
                back.oldest_t
            ),
            (
                99,
                3,
                Some((i64::MIN, 120)),
                Some(-5),
                Some((i64::MAX, f64::NAN.to_bits())),
                -1
            )
        );
        encode_state(&SeriesState::new(1), &mut bytes);
        assert_eq!(decode_state(1, &bytes).unwrap().last_chunk, None);
        assert!(decode_state(1, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn blocks_cover_every_timestamp_including_the_extremes() {
        for t in [
            i64::MIN,
            i64::MIN + 1,
            -BLOCK_MS - 1,
            -1,
            0,
            1,
            BLOCK_MS,
            i64::MAX - 1,
            i64::MAX,
        ] {
            let b = block_of(t);
            assert!(
                b <= t && (t as i128) < b as i128 + BLOCK_MS as i128,
                "{t} in block {b}"
            );
            assert_eq!(block_of(b), b);
        }
    }
}
