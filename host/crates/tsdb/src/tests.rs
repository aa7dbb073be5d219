//! Tests of the engine through its public API, with a look at the redb
//! tables where what matters is what is on disk.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::tables::{BLOCK_CHUNKS, CHUNKS, POSTINGS, SERIES, SERIES_BY_LABELS, WAL};
use crate::*;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    l.sort();
    l
}

fn metric(name: &str, extra: &[(&str, &str)]) -> Labels {
    let mut pairs = vec![("__name__", name)];
    pairs.extend_from_slice(extra);
    labels(&pairs)
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(name, MatchOp::Equal, value).unwrap()
}

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(name, op, value).unwrap()
}

fn open_db(path: &Path) -> Arc<Database> {
    Arc::new(Database::create(path.join("lookout.redb")).unwrap())
}

fn open(path: &Path, options: Options) -> Tsdb {
    Tsdb::open(open_db(path), options).unwrap()
}

/// Chunk rows in both chunk tables.
fn chunk_rows(db: &Database) -> u64 {
    len_of(db, CHUNKS) + len_of(db, BLOCK_CHUNKS)
}

fn len_of<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Database,
    def: TableDefinition<K, V>,
) -> u64 {
    db.begin_read()
        .unwrap()
        .open_table(def)
        .unwrap()
        .len()
        .unwrap()
}

fn values(tsdb: &Tsdb, name: &str) -> Vec<(i64, f64)> {
    let found = tsdb
        .select(&[eq("__name__", name)], i64::MIN, i64::MAX)
        .unwrap();
    assert!(found.len() <= 1, "{found:?}");
    found
        .first()
        .map(|s| s.samples.iter().map(|s| (s.t, s.v)).collect())
        .unwrap_or_default()
}

/// One sample per 15 s for each of `series` series, `batches` batches of
/// `per_batch` timestamps.
fn ingest_regular(
    tsdb: &Tsdb,
    name: &str,
    series: usize,
    batches: usize,
    per_batch: usize,
    start: i64,
) {
    for b in 0..batches {
        let mut rows = Vec::new();
        for j in 0..per_batch {
            let t = start + ((b * per_batch + j) as i64) * 15_000;
            for s in 0..series {
                rows.push((
                    metric(name, &[("s", &format!("{s:03}"))]),
                    t,
                    (t / 1000) as f64 + s as f64,
                ));
            }
        }
        let out = tsdb.append(&rows).unwrap();
        assert_eq!(out.appended, rows.len(), "{out:?}");
    }
}

#[test]
fn appended_samples_come_back_sorted_by_labels_within_an_inclusive_range() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    let b = metric("up", &[("job", "b")]);
    let a = metric("up", &[("job", "a")]);
    let other = metric("other", &[]);
    let out = tsdb
        .append(&[
            (b.clone(), T0, 1.0),
            (a.clone(), T0, 2.0),
            (b.clone(), T0 + 10, 3.0),
            (other, T0 + 10, 4.0),
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            appended: 4,
            ..Default::default()
        }
    );
    let found = tsdb.select(&[eq("__name__", "up")], T0, T0 + 10).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].labels, a);
    assert_eq!(found[1].labels, b);
    assert_eq!(
        found[1].samples,
        vec![Sample { t: T0, v: 1.0 }, Sample { t: T0 + 10, v: 3.0 }]
    );
    // Inclusive bounds; a series without samples in the range is left out.
    let found = tsdb
        .select(&[eq("__name__", "up")], T0 + 10, T0 + 10)
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].labels, b);
    assert!(
        tsdb.select(&[eq("__name__", "up")], T0 + 11, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert!(
        tsdb.select(&[eq("__name__", "up")], T0 + 10, T0)
            .unwrap()
            .is_empty(),
        "mint > maxt"
    );
}

#[test]
fn selectors_that_match_the_empty_string_are_refused_but_label_lookups_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    tsdb.append(&[(metric("up", &[("job", "a")]), T0, 1.0)])
        .unwrap();
    for matchers in [
        vec![],
        vec![eq("foo", "")],
        vec![m("job", MatchOp::Regex, ".*")],
        vec![m("job", MatchOp::NotEqual, "x")],
    ] {
        assert!(matches!(
            tsdb.select(&matchers, 0, i64::MAX),
            Err(TsdbError::UnselectiveMatchers)
        ));
        assert!(matches!(
            tsdb.series(&matchers, 0, i64::MAX),
            Err(TsdbError::UnselectiveMatchers)
        ));
    }
    assert_eq!(
        tsdb.label_names(&[], 0, i64::MAX).unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(
        tsdb.label_values("job", &[m("job", MatchOp::NotEqual, "x")], 0, i64::MAX)
            .unwrap(),
        vec!["a"]
    );
}

#[test]
fn missing_labels_match_as_empty_strings_and_regexes_are_anchored() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    let with_foo = metric("x", &[("foo", "bar")]);
    let without = metric("x", &[("job", "node")]);
    let nodes = metric("x", &[("job", "nodes")]);
    tsdb.append(&[
        (with_foo.clone(), T0, 1.0),
        (without.clone(), T0, 2.0),
        (nodes.clone(), T0, 3.0),
    ])
    .unwrap();
    let names =
        |matchers: &[Matcher]| -> Vec<Labels> { tsdb.series(matchers, 0, i64::MAX).unwrap() };
    assert_eq!(
        names(&[eq("__name__", "x"), eq("foo", "")]),
        vec![without.clone(), nodes.clone()]
    );
    assert_eq!(
        names(&[eq("__name__", "x"), m("foo", MatchOp::NotEqual, "")]),
        vec![with_foo.clone()]
    );
    assert_eq!(
        names(&[m("foo", MatchOp::NotEqual, "")]),
        vec![with_foo.clone()],
        "{{foo!=\"\"}} alone selects"
    );
    assert_eq!(
        names(&[m("job", MatchOp::Regex, "node")]),
        vec![without.clone()],
        "=~ is anchored at the end"
    );
    assert_eq!(
        names(&[m("job", MatchOp::Regex, "ode")]),
        Vec::<Labels>::new(),
        "=~ is anchored at the start"
    );
    assert_eq!(
        names(&[m("job", MatchOp::Regex, "node|nodes")]),
        vec![without.clone(), nodes.clone()]
    );
    assert_eq!(
        names(&[m("job", MatchOp::Regex, "no.*")]),
        vec![without.clone(), nodes.clone()]
    );
    assert_eq!(
        names(&[eq("__name__", "x"), m("job", MatchOp::NotRegex, "node")]),
        vec![with_foo.clone(), nodes.clone()]
    );
    assert_eq!(
        names(&[eq("__name__", "x"), m("job", MatchOp::Regex, "")]),
        vec![with_foo.clone()]
    );
    assert_eq!(
        names(&[eq("__name__", "x"), eq("job", "none")]),
        Vec::<Labels>::new()
    );
}

#[test]
fn out_of_order_and_duplicate_samples_follow_prometheus_without_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    let s = metric("m", &[]);
    let row = |t: i64, v: f64| (s.clone(), t, v);
    assert_eq!(
        tsdb.append(&[row(T0, 1.0), row(T0 + 10, 2.0)])
            .unwrap()
            .appended,
        2
    );
    let out = tsdb
        .append(&[
            row(T0 + 5, 9.0),
            row(T0 + 10, 2.0),
            row(T0 + 10, 3.0),
            row(T0 + 20, 4.0),
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            appended: 1,
            out_of_order: 2,
            duplicates: 1,
            too_old: 0
        }
    );
    // Inside one batch too, and NaNs compare by bits: the staleness marker
    // again is a duplicate, an ordinary NaN after it is not.
    let out = tsdb
        .append(&[
            row(T0 + 30, stale_nan()),
            row(T0 + 30, stale_nan()),
            row(T0 + 30, f64::NAN),
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            appended: 1,
            out_of_order: 1,
            duplicates: 1,
            too_old: 0
        }
    );
    let got = values(&tsdb, "m");
    assert_eq!(got.len(), 4);
    assert!(is_stale(got[3].1));
    // Across a restart the newest sample is still known, from the write-ahead table...
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    assert_eq!(
        tsdb.append(&[row(T0 + 30, stale_nan()), row(T0 + 29, 1.0)])
            .unwrap()
            .appended,
        0
    );
    // ...and from the chunks after a flush.
    tsdb.flush().unwrap();
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    let out = tsdb
        .append(&[
            row(T0 + 30, stale_nan()),
            row(T0 + 29, 1.0),
            row(T0 + 30, 0.0),
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            appended: 0,
            out_of_order: 2,
            duplicates: 1,
            too_old: 0
        }
    );
}

#[test]
fn out_of_order_window_accepts_recent_samples_even_into_cut_chunks_and_refuses_older() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        out_of_order_window: Duration::from_secs(3600),
        ..Default::default()
    };
    let tsdb = open(dir.path(), options.clone());
    let s = metric("m", &[]);
    // 250 samples 15 s apart: two chunks cut, the rest in the head.
    let rows: Vec<_> = (0..250)
        .map(|i| (s.clone(), T0 + i * 15_000, i as f64))
        .collect();
    tsdb.append(&rows).unwrap();
    assert!(tsdb.stats().unwrap().chunks >= 1);
    let newest = T0 + 249 * 15_000;
    let out = tsdb
        .append(&[
            (s.clone(), newest - 7_500, 1.5),         // into the head's range
            (s.clone(), newest - 1_800_000 - 1, 2.5), // into a cut chunk
            (s.clone(), newest - 3_600_001, 3.5),     // older than the window
            (s.clone(), newest - 15_000, 248.0),      // duplicate of a head sample
            (s.clone(), T0 + 100 * 15_000, 100.0),    // duplicate in a chunk
            (s.clone(), T0 + 101 * 15_000, -1.0),     // another value at a chunk's timestamp
            (s.clone(), newest - 7_500, 1.5),         // duplicate within the batch
        ])
        .unwrap();
    assert_eq!(
        out,
        AppendOutcome {
            appended: 2,
            out_of_order: 1,
            duplicates: 3,
            too_old: 1
        }
    );
    let check = |tsdb: &Tsdb| {
        let got = values(tsdb, "m");
        assert_eq!(got.len(), 252);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "time order");
        assert!(got.contains(&(newest - 7_500, 1.5)));
        assert!(got.contains(&(newest - 1_800_000 - 1, 2.5)));
    };
    check(&tsdb);
    drop(tsdb);
    let tsdb = open(dir.path(), options.clone());
    check(&tsdb);
    // Flushing merges the out-of-order samples into the chunks.
    tsdb.flush().unwrap();
    check(&tsdb);
    assert_eq!(tsdb.stats().unwrap().head_samples, 0);
    drop(tsdb);
    let tsdb = open(dir.path(), options);
    check(&tsdb);
    // A sample before every chunk but inside the window of a sparse series.
    let sparse = metric("sparse", &[]);
    tsdb.append(&[(sparse.clone(), T0 + 10 * MIN, 1.0)])
        .unwrap();
    tsdb.flush().unwrap();
    assert_eq!(
        tsdb.append(&[(sparse.clone(), T0, 0.5)]).unwrap().appended,
        1
    );
    tsdb.flush().unwrap();
    assert_eq!(
        values(&tsdb, "sparse"),
        vec![(T0, 0.5), (T0 + 10 * MIN, 1.0)]
    );
}

#[test]
fn staleness_markers_end_series_a_scrape_no_longer_returns_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    let a = metric("a", &[("job", "j")]);
    let b = metric("b", &[("job", "j")]);
    let other = metric("c", &[("job", "other")]);
    assert_eq!(
        tsdb.append_scrape("j/t1", T0, &[(a.clone(), 1.0), (b.clone(), 1.0)])
            .unwrap()
            .appended,
        2
    );
    assert_eq!(
        tsdb.append_scrape("j/t2", T0, &[(other.clone(), 1.0)])
            .unwrap()
            .appended,
        1
    );
    // Same set: no marker.
    assert_eq!(
        tsdb.append_scrape("j/t1", T0 + 15_000, &[(a.clone(), 2.0), (b.clone(), 2.0)])
            .unwrap()
            .appended,
        2
    );
    // b disappears: it gets a marker, the other key's series does not.
    let out = tsdb
        .append_scrape("j/t1", T0 + 30_000, &[(a.clone(), 3.0)])
        .unwrap();
    assert_eq!(out.appended, 2, "a's sample and b's marker");
    let got = values(&tsdb, "b");
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].0, T0 + 30_000);
    assert!(is_stale(got[2].1));
    assert!(!values(&tsdb, "c").iter().any(|s| is_stale(s.1)));
    // Only once: b is no longer in the key's set.
    assert_eq!(
        tsdb.append_scrape("j/t1", T0 + 45_000, &[(a.clone(), 4.0)])
            .unwrap()
            .appended,
        1
    );

    // The set survives a restart (without a flush, then with one).
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    tsdb.flush().unwrap();
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    // A failed scrape (nothing returned) ends everything it wrote.
    let out = tsdb.append_scrape("j/t1", T0 + 60_000, &[]).unwrap();
    assert_eq!(out.appended, 1);
    let got = values(&tsdb, "a");
    assert_eq!(
        got.last().map(|s| (s.0, is_stale(s.1))),
        Some((T0 + 60_000, true))
    );
    assert_eq!(values(&tsdb, "b").len(), 3, "b got no second marker");
    // b comes back.
    assert_eq!(
        tsdb.append_scrape("j/t1", T0 + 75_000, &[(b.clone(), 5.0)])
            .unwrap()
            .appended,
        1
    );
    assert_eq!(values(&tsdb, "b").last(), Some(&(T0 + 75_000, 5.0)));
}

#[test]
fn retention_by_time_deletes_chunk_rows_and_series_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        retention: Some(Duration::from_secs(24 * 3600)),
        ..Default::default()
    };
    let tsdb = open(dir.path(), options.clone());
    let old = metric("old", &[]);
    let both = metric("both", &[]);
    // 2 days of a sample a minute for `both`, the first day for `old`.
    for day_minute in (0..2 * 24 * 60).step_by(60) {
        let mut rows = Vec::new();
        for i in day_minute..day_minute + 60 {
            let t = T0 + i as i64 * MIN;
            rows.push((both.clone(), t, i as f64));
            if i < 24 * 60 {
                rows.push((old.clone(), t, i as f64));
            }
        }
        tsdb.append(&rows).unwrap();
    }
    tsdb.flush().unwrap();
    let db = open_db_shared(&tsdb);
    let chunks_before = chunk_rows(&db);
    let series_before = len_of(&db, SERIES);
    assert_eq!(series_before, 2);
    let now = T0 + 2 * 24 * HOUR;
    let report = tsdb.enforce_retention(now).unwrap();
    assert_eq!(report.series_deleted, 1);
    assert!(report.chunks_deleted > 0);
    // The rows are gone from redb, not just hidden.
    assert_eq!(chunk_rows(&db), chunks_before - report.chunks_deleted);
    assert_eq!(len_of(&db, SERIES), 1);
    assert_eq!(len_of(&db, SERIES_BY_LABELS), 1);
    let postings = db
        .begin_read()
        .unwrap()
        .open_multimap_table(POSTINGS)
        .unwrap()
        .len()
        .unwrap();
    assert_eq!(postings, 1, "only both's __name__ posting is left");
    assert!(values(&tsdb, "old").is_empty());
    let left = values(&tsdb, "both");
    let cutoff = now - 24 * HOUR;
    // Whole chunks: nothing whose chunk ended before the cutoff, nothing newer lost.
    assert!(left.first().unwrap().0 <= cutoff && left.first().unwrap().0 > cutoff - 2 * HOUR);
    assert_eq!(left.last().unwrap().0, T0 + (2 * 24 * 60 - 1) * MIN);
    assert_eq!(
        report.samples_deleted as usize,
        24 * 60 + (2 * 24 * 60 - left.len())
    );
    let stats = tsdb.stats().unwrap();
    assert_eq!(stats.series, 1);
    assert_eq!(stats.samples as usize, left.len());
    // Again: nothing more to delete. The old series can come back.
    assert_eq!(
        tsdb.enforce_retention(now).unwrap(),
        RetentionReport::default()
    );
    tsdb.append(&[(old.clone(), now, 1.0)]).unwrap();
    assert_eq!(values(&tsdb, "old"), vec![(now, 1.0)]);
    drop(tsdb);
    drop(db);
    let tsdb = open(dir.path(), options);
    assert_eq!(values(&tsdb, "old"), vec![(now, 1.0)]);
    assert_eq!(values(&tsdb, "both").len(), left.len());
}

/// The database a `Tsdb` was opened on (tests only).
fn open_db_shared(tsdb: &Tsdb) -> Arc<Database> {
    tsdb.database().clone()
}

#[test]
fn retention_by_size_deletes_the_oldest_chunks_first_until_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(
        dir.path(),
        Options {
            retention: None,
            ..Default::default()
        },
    );
    ingest_regular(&tsdb, "m", 50, 40, 40, T0);
    tsdb.flush().unwrap();
    let before = tsdb.stats().unwrap();
    let limit = before.disk_bytes() / 2;
    drop(tsdb);
    let db = open_db(dir.path());
    let tsdb = Tsdb::open(
        db.clone(),
        Options {
            retention: None,
            retention_bytes: Some(limit),
            ..Default::default()
        },
    )
    .unwrap();
    let report = tsdb.enforce_retention(T0).unwrap();
    assert!(report.chunks_deleted > 0);
    let after = tsdb.stats().unwrap();
    assert_eq!(chunk_rows(&db), before.chunks - report.chunks_deleted);
    assert_eq!(after.chunks, before.chunks - report.chunks_deleted);
    assert!(
        after.disk_bytes() < before.disk_bytes(),
        "{after:?} vs {before:?}"
    );
    assert!(
        after.chunk_bytes <= limit + limit / 4,
        "chunk pages {} vs limit {limit}",
        after.chunk_bytes
    );
    // Oldest first: every series lost its beginning, none its end.
    let found = tsdb
        .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(found.len(), 50);
    let end = T0 + (40 * 40 - 1) * 15_000;
    let starts: Vec<i64> = found.iter().map(|s| s.samples[0].t).collect();
    assert!(found.iter().all(|s| s.samples.last().unwrap().t == end));
    assert!(starts.iter().all(|&t| t > T0));
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(
        spread <= 2 * 120 * 15_000,
        "deleted across series by age: spread {spread}"
    );
}

#[test]
fn label_names_and_values_respect_matchers_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    tsdb.append(&[
        (metric("up", &[("job", "node"), ("instance", "a")]), T0, 1.0),
        (
            metric("up", &[("job", "prom"), ("instance", "b")]),
            T0 + HOUR,
            1.0,
        ),
        (
            metric("probe_success", &[("job", "blackbox"), ("module", "http")]),
            T0 + 2 * HOUR,
            1.0,
        ),
    ])
    .unwrap();
    let all = (i64::MIN, i64::MAX);
    assert_eq!(
        tsdb.label_names(&[], all.0, all.1).unwrap(),
        vec!["__name__", "instance", "job", "module"]
    );
    assert_eq!(
        tsdb.label_names(&[eq("__name__", "up")], all.0, all.1)
            .unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(
        tsdb.label_names(&[], T0 + 2 * HOUR, all.1).unwrap(),
        vec!["__name__", "job", "module"]
    );
    assert_eq!(
        tsdb.label_values("__name__", &[], all.0, all.1).unwrap(),
        vec!["probe_success", "up"]
    );
    assert_eq!(
        tsdb.label_values("job", &[], all.0, all.1).unwrap(),
        vec!["blackbox", "node", "prom"]
    );
    assert_eq!(
        tsdb.label_values("job", &[], T0 + 1, T0 + HOUR).unwrap(),
        vec!["prom"]
    );
    assert_eq!(
        tsdb.label_values("job", &[eq("__name__", "up")], all.0, all.1)
            .unwrap(),
        vec!["node", "prom"]
    );
    assert_eq!(
        tsdb.label_values("module", &[eq("__name__", "up")], all.0, all.1)
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        tsdb.label_values("nope", &[], all.0, all.1).unwrap(),
        Vec::<String>::new()
    );
    // The same after the data moved into chunks.
    tsdb.flush().unwrap();
    assert_eq!(
        tsdb.label_values("job", &[], T0 + 1, T0 + HOUR).unwrap(),
        vec!["prom"]
    );
    assert_eq!(
        tsdb.series(&[eq("__name__", "up")], T0 + 1, T0 + HOUR)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn heads_survive_a_restart_without_flush_by_replaying_the_write_ahead_table() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    // 3 series × 300 samples in batches of 10 timestamps: chunks are cut
    // mid-way, so the write-ahead table holds only part of the data.
    ingest_regular(&tsdb, "m", 3, 30, 10, T0);
    let before = tsdb
        .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    let stats = tsdb.stats().unwrap();
    assert_eq!(stats.samples, 900);
    assert!(
        stats.chunks > 0 && stats.head_samples > 0 && stats.head_samples < 900,
        "{stats:?}"
    );
    let wal_rows = len_of(tsdb.database(), WAL);
    assert!(
        wal_rows > 0 && wal_rows < 30,
        "cut batches were truncated: {wal_rows} rows left"
    );
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    assert_eq!(
        tsdb.select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap(),
        before
    );
    assert_eq!(tsdb.stats().unwrap(), stats);
    // Appending after the replay continues where it left off; flush empties the WAL.
    ingest_regular(&tsdb, "m", 3, 5, 10, T0 + 300 * 15_000);
    tsdb.flush().unwrap();
    assert_eq!(len_of(tsdb.database(), WAL), 0);
    assert_eq!(tsdb.stats().unwrap().head_samples, 0);
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    let after = tsdb
        .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(after.len(), 3);
    for s in &after {
        assert_eq!(s.samples.len(), 350);
        assert!(
            s.samples
                .iter()
                .enumerate()
                .all(|(i, x)| x.t == T0 + i as i64 * 15_000)
        );
    }
}

#[test]
fn a_flushed_short_chunk_is_completed_by_the_next_cut() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    for i in 0..600 {
        tsdb.append(&[(metric("m", &[]), T0 + i * 15_000, i as f64)])
            .unwrap();
        if i % 50 == 49 {
            tsdb.flush().unwrap();
        }
    }
    tsdb.flush().unwrap();
    let stats = tsdb.stats().unwrap();
    assert_eq!(stats.samples, 600);
    assert!(
        stats.chunks <= 6,
        "flushes every 50 samples left {} chunks for 600 samples",
        stats.chunks
    );
    assert_eq!(values(&tsdb, "m").len(), 600);
}

#[test]
fn a_series_that_stops_is_cut_and_its_write_ahead_rows_go() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    tsdb.append(&[(metric("gone", &[]), T0, 1.0)]).unwrap();
    // Another series keeps going for 3 hours at one sample a minute.
    for i in 0..180 {
        tsdb.append(&[(metric("live", &[]), T0 + i * MIN, 1.0)])
            .unwrap();
    }
    let wal_rows = len_of(tsdb.database(), WAL);
    assert!(
        wal_rows < 120,
        "the stopped series pins {wal_rows} write-ahead rows"
    );
    assert_eq!(values(&tsdb, "gone"), vec![(T0, 1.0)]);
}

#[test]
fn an_invalid_label_set_fails_the_whole_batch_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    let good = metric("good", &[]);
    let unsorted: Labels = vec![("b".into(), "1".into()), ("a".into(), "1".into())];
    let err = tsdb
        .append(&[(good.clone(), T0, 1.0), (unsorted, T0, 1.0)])
        .unwrap_err();
    assert!(matches!(err, TsdbError::InvalidLabels(_)), "{err}");
    assert!(values(&tsdb, "good").is_empty());
    assert_eq!(tsdb.stats().unwrap().series, 0);
    assert_eq!(len_of(tsdb.database(), SERIES), 0);
    let dup: Labels = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    assert!(tsdb.append(&[(dup, T0, 1.0)]).is_err());
    assert!(tsdb.append(&[(vec![], T0, 1.0)]).is_err());
    // The writer's state was rolled back: the same sample is new again.
    assert_eq!(tsdb.append(&[(good.clone(), T0, 1.0)]).unwrap().appended, 1);
    assert_eq!(values(&tsdb, "good"), vec![(T0, 1.0)]);
}

#[test]
fn a_label_with_an_empty_value_is_the_same_as_no_label() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    tsdb.append(&[
        (labels(&[("__name__", "m"), ("a", "")]), T0, 1.0),
        (metric("m", &[]), T0 + 1, 2.0),
    ])
    .unwrap();
    let found = tsdb
        .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].labels, metric("m", &[]));
    assert_eq!(found[0].samples.len(), 2);
}

#[test]
fn readers_never_see_part_of_a_batch_while_heads_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Arc::new(open(dir.path(), Options::default()));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (tsdb, done) = (tsdb.clone(), done.clone());
        std::thread::spawn(move || {
            // A minute apart: heads are cut and 2 h blocks move while readers read.
            for i in 0..600 {
                let rows: Vec<_> = (0..20)
                    .map(|s| {
                        (
                            metric("m", &[("s", &format!("{s:03}"))]),
                            T0 + i * MIN,
                            i as f64,
                        )
                    })
                    .collect();
                tsdb.append(&rows).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut checks = 0;
    while !done.load(Ordering::SeqCst) || checks == 0 {
        let found = tsdb
            .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap();
        let lens: Vec<usize> = found.iter().map(|s| s.samples.len()).collect();
        if let Some(&n) = lens.first() {
            assert!(
                lens.iter().all(|&l| l == n),
                "partial batch visible: {lens:?}"
            );
            assert_eq!(found.len(), 20);
            for s in &found {
                assert!(
                    s.samples
                        .iter()
                        .enumerate()
                        .all(|(i, x)| x.t == T0 + i as i64 * MIN),
                    "a gap"
                );
            }
        }
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 10, "only {checks} reads raced the writer");
    assert!(
        len_of(tsdb.database(), BLOCK_CHUNKS) > 0,
        "no block moved while reading"
    );
}

#[test]
fn stats_count_series_samples_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    assert_eq!(tsdb.stats().unwrap().samples, 0);
    ingest_regular(&tsdb, "m", 10, 25, 10, T0);
    let s = tsdb.stats().unwrap();
    assert_eq!((s.series, s.samples), (10, 2500));
    tsdb.flush().unwrap();
    let s = tsdb.stats().unwrap();
    assert_eq!((s.series, s.samples, s.head_samples), (10, 2500, 0));
    assert_eq!(s.chunks, chunk_rows(tsdb.database()));
    assert!(
        s.chunk_payload_bytes > 0 && s.chunk_bytes >= s.chunk_payload_bytes && s.index_bytes > 0
    );
}

#[test]
fn old_chunks_move_to_the_block_table_and_reads_and_merges_span_both_tables() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        out_of_order_window: Duration::from_secs(24 * 3600),
        retention: None,
        ..Default::default()
    };
    let tsdb = open(dir.path(), options.clone());
    // 10 series, 12 h at one sample a minute, an hour per batch; the move
    // budget is tiny in tests, so moves span many commits.
    let series = |s: usize| metric("m", &[("s", &format!("{s}"))]);
    for hour in 0..12 {
        let mut rows = Vec::new();
        for i in hour * 60..(hour + 1) * 60 {
            for s in 0..10 {
                rows.push((series(s), T0 + i as i64 * MIN, i as f64));
            }
        }
        tsdb.append(&rows).unwrap();
        if hour == 7 {
            // A restart in the middle of a move picks it up where it was.
            drop(tsdb);
            let reopened = open(dir.path(), options.clone());
            return finish(reopened, dir, options, series);
        }
    }
    unreachable!();

    fn finish(
        tsdb: Tsdb,
        dir: tempfile::TempDir,
        options: Options,
        series: impl Fn(usize) -> Labels,
    ) {
        for hour in 8..12 {
            let mut rows = Vec::new();
            for i in hour * 60..(hour + 1) * 60 {
                for s in 0..10 {
                    rows.push((series(s), T0 + i as i64 * MIN, i as f64));
                }
            }
            tsdb.append(&rows).unwrap();
        }
        let db = tsdb.database().clone();
        let (hot, blocks) = (len_of(&db, CHUNKS), len_of(&db, BLOCK_CHUNKS));
        // Moves are under way (5 chunks a commit in tests): both tables hold chunks.
        assert!(
            blocks > 0 && hot > 0,
            "{blocks} chunks moved, {hot} in the hot table"
        );
        let check = |tsdb: &Tsdb, extra: &[(i64, f64)]| {
            let found = tsdb
                .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
                .unwrap();
            assert_eq!(found.len(), 10);
            for (n, s) in found.iter().enumerate() {
                let mut want: Vec<(i64, f64)> = (0..12 * 60)
                    .map(|i| (T0 + i as i64 * MIN, i as f64))
                    .collect();
                if n == 0 {
                    want.extend_from_slice(extra);
                    want.sort_by_key(|x| x.0);
                }
                let got: Vec<(i64, f64)> = s.samples.iter().map(|x| (x.t, x.v)).collect();
                assert_eq!(got, want, "series {n}");
            }
            // A range in the middle, crossing tables and blocks.
            let part = tsdb
                .select(&[eq("s", "3")], T0 + 90 * MIN + 1, T0 + 400 * MIN)
                .unwrap();
            assert_eq!(part[0].samples.len(), 310);
            assert_eq!(
                tsdb.series(&[eq("s", "3")], T0 + 30 * MIN, T0 + 30 * MIN)
                    .unwrap()
                    .len(),
                1
            );
        };
        check(&tsdb, &[]);
        // Out-of-order samples into moved chunks: in one, between two, and
        // before the first.
        let out = tsdb
            .append(&[
                (series(0), T0 + 30 * MIN + 7, -1.0),
                (series(0), T0 + 119 * MIN + 30_000, -2.0),
                (series(0), T0 - 5 * MIN, -3.0),
                (series(0), T0 + 30 * MIN, 30.0),
            ])
            .unwrap();
        assert_eq!(
            out,
            AppendOutcome {
                appended: 3,
                duplicates: 1,
                ..Default::default()
            }
        );
        let extra = [
            (T0 + 30 * MIN + 7, -1.0),
            (T0 + 119 * MIN + 30_000, -2.0),
            (T0 - 5 * MIN, -3.0),
        ];
        check(&tsdb, &extra);
        tsdb.flush().unwrap();
        check(&tsdb, &extra);
        assert_eq!(tsdb.stats().unwrap().samples, 10 * 12 * 60 + 3);
        drop(tsdb);
        drop(db);
        let tsdb = open(dir.path(), options);
        check(&tsdb, &extra);
        assert_eq!(tsdb.stats().unwrap().samples, 10 * 12 * 60 + 3);
    }
}

#[test]
fn timestamps_at_the_ends_of_time_survive_cuts_moves_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        out_of_order_window: Duration::from_secs(3600),
        retention: None,
        ..Default::default()
    };
    let tsdb = open(dir.path(), options.clone());
    let ts = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
    for &t in &ts {
        tsdb.append(&[(metric("edge", &[]), t, t as f64)]).unwrap();
    }
    // A sample at i64::MAX makes every block "closed": everything moves.
    tsdb.flush().unwrap();
    for _ in 0..5 {
        tsdb.append(&[(metric("other", &[]), i64::MAX, 1.0)])
            .unwrap();
        tsdb.flush().unwrap();
    }
    let want: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
    assert_eq!(values(&tsdb, "edge"), want);
    assert_eq!(
        tsdb.select(&[eq("__name__", "edge")], i64::MAX, i64::MAX)
            .unwrap()[0]
            .samples
            .len(),
        1
    );
    assert_eq!(
        tsdb.select(&[eq("__name__", "edge")], i64::MIN, i64::MIN)
            .unwrap()[0]
            .samples
            .len(),
        1
    );
    assert_eq!(
        tsdb.label_values("__name__", &[], i64::MIN, i64::MIN)
            .unwrap(),
        vec!["edge"]
    );
    drop(tsdb);
    let tsdb = open(dir.path(), options);
    assert_eq!(values(&tsdb, "edge"), want);
    assert_eq!(
        tsdb.append(&[(metric("edge", &[]), i64::MAX, 0.0)])
            .unwrap()
            .out_of_order,
        1
    );
}

#[test]
fn the_engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tsdb>();
}

// ---- kill -9 ------------------------------------------------------------

const CRASH_DIR: &str = "LOOKOUT_TSDB_CRASH_DIR";
const CRASH_SERIES: usize = 40;

/// Timestamps of batch `k`: 1 to 4 samples per series, a minute after the
/// previous batch's, so that heads are cut, series stop and blocks move
/// to the block table while the child is being killed.
fn crash_batch_width(k: i64) -> i64 {
    1 + k % 4
}

const CRASH_STEP: i64 = MIN;

fn crash_batch(k: i64) -> Vec<(Labels, i64, f64)> {
    let mut rows = Vec::new();
    for s in 0..CRASH_SERIES {
        for j in 0..crash_batch_width(k) {
            rows.push((
                metric("crash", &[("s", &format!("{s:02}"))]),
                k * CRASH_STEP + j,
                (k * 10 + j) as f64,
            ));
        }
    }
    if k % 5 == 0 {
        // A new series in this batch: index rows are part of it too.
        rows.push((
            metric("crash", &[("new", &k.to_string())]),
            k * CRASH_STEP,
            k as f64,
        ));
    }
    rows
}

/// Not a test on its own: the child process of the kill -9 test.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let tsdb = open(
        Path::new(&dir),
        Options {
            retention: None,
            ..Default::default()
        },
    );
    let newest = tsdb
        .select(&[eq("__name__", "crash")], i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .filter_map(|s| s.samples.last().map(|x| x.t))
        .max();
    let mut k = newest.map_or(1, |t| t / CRASH_STEP + 1);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready {k}").unwrap();
    loop {
        let out = tsdb.append(&crash_batch(k)).unwrap();
        assert_eq!(out.appended, crash_batch(k).len());
        writeln!(stdout, "ack {k}").unwrap();
        stdout.flush().unwrap();
        if k % 37 == 0 {
            tsdb.flush().unwrap();
        }
        k += 1;
    }
}

fn verify_crash_db(dir: &Path, acked: i64) -> i64 {
    let tsdb = open(
        dir,
        Options {
            retention: None,
            ..Default::default()
        },
    );
    let mut by_batch: BTreeMap<i64, Vec<(Labels, i64, f64)>> = BTreeMap::new();
    for s in tsdb
        .select(&[eq("__name__", "crash")], i64::MIN, i64::MAX)
        .unwrap()
    {
        for x in &s.samples {
            by_batch
                .entry(x.t / CRASH_STEP)
                .or_default()
                .push((s.labels.clone(), x.t, x.v));
        }
    }
    let newest = by_batch.keys().next_back().copied().unwrap_or(0);
    assert!(
        newest >= acked,
        "acknowledged batch {acked} lost (newest present {newest})"
    );
    for k in 1..=newest {
        let mut want = crash_batch(k);
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let got = by_batch.remove(&k).unwrap_or_default();
        assert_eq!(
            got.len(),
            want.len(),
            "batch {k} (acked up to {acked}) is partial: {} of {} samples",
            got.len(),
            want.len()
        );
        assert_eq!(got, want, "batch {k} differs");
    }
    newest
}

#[test]
fn kill_9_loses_no_acknowledged_batch_and_leaves_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut acked = 0i64;
    for cycle in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "tests::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(k) = line.strip_prefix("ack ") {
                    let _ = tx.send(k.parse::<i64>().unwrap());
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child acknowledged nothing");
        acked = acked.max(first);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 400);
        let start = Instant::now();
        while start.elapsed() < delay {
            if let Ok(k) = rx.recv_timeout(Duration::from_millis(5)) {
                acked = acked.max(k);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for k in rx.try_iter() {
            acked = acked.max(k);
        }
        let newest = verify_crash_db(dir.path(), acked);
        assert!(
            newest <= acked + 1,
            "cycle {cycle}: batch {newest} present but only {acked} acknowledged and one in flight"
        );
    }
    assert!(acked > 40, "too few batches to mean anything: {acked}");
    // The kills also landed while chunks moved to the block table.
    let db = open_db(dir.path());
    let moved = len_of(&db, BLOCK_CHUNKS);
    eprintln!("kill -9: 20 kills, {acked} batches acknowledged, {moved} chunks in the block table");
    assert!(
        moved > 0 || acked < 300,
        "{acked} batches but no chunk moved"
    );
}

#[test]
fn a_moved_block_keeps_one_chunk_per_series_and_everything_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        out_of_order_window: Duration::from_secs(24 * 3600),
        retention: Some(Duration::from_secs(24 * 3600)),
        ..Default::default()
    };
    let tsdb = open(dir.path(), options.clone());
    // 3 series, 10 h at 15 s (480 samples, four chunks, per 2 h block),
    // an hour per batch: the first blocks move while the rest arrives.
    ingest_regular(&tsdb, "m", 3, 10, 240, T0);
    let want = |s: usize| -> Vec<(i64, f64)> {
        (0..2400)
            .map(|i| {
                let t = T0 + i * 15_000;
                (t, (t / 1000) as f64 + s as f64)
            })
            .collect()
    };
    let check = |tsdb: &Tsdb, extra: &[(i64, f64)]| {
        let found = tsdb
            .select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(found.len(), 3);
        for (s, series) in found.iter().enumerate() {
            let mut want = want(s);
            if s == 0 {
                want.extend_from_slice(extra);
                want.sort_by_key(|x| x.0);
            }
            let got: Vec<(i64, f64)> = series.samples.iter().map(|x| (x.t, x.v)).collect();
            assert_eq!(got, want, "series {s}");
        }
    };
    check(&tsdb, &[]);
    let db = tsdb.database().clone();
    let read = db.begin_read().unwrap();
    let blocks = read.open_table(BLOCK_CHUNKS).unwrap();
    let mut per_key = BTreeMap::new();
    for row in blocks.iter().unwrap() {
        let (k, _) = row.unwrap();
        let (block, id, _) = k.value();
        *per_key.entry((block, id)).or_insert(0) += 1;
    }
    drop((blocks, read));
    assert!(per_key.len() >= 6, "{per_key:?}");
    assert!(
        per_key.values().all(|&n| n == 1),
        "a block holds one chunk per series: {per_key:?}"
    );
    assert_eq!(tsdb.stats().unwrap().chunks, chunk_rows(&db));
    // An out-of-order sample lands in a merged chunk; a restart keeps it all.
    let late = (T0 + 30 * MIN + 7_000, -1.0);
    let out = tsdb
        .append(&[(metric("m", &[("s", "000")]), late.0, late.1)])
        .unwrap();
    assert_eq!(out.appended, 1, "{out:?}");
    drop(tsdb);
    drop(db);
    let tsdb = open(dir.path(), options);
    check(&tsdb, &[late]);
    tsdb.flush().unwrap();
    assert_eq!(tsdb.stats().unwrap().chunks, chunk_rows(tsdb.database()));
    // Retention past everything leaves no series behind: the per-series
    // chunk counts stayed right through the merges.
    let report = tsdb.enforce_retention(T0 + 40 * HOUR).unwrap();
    assert_eq!(report.series_deleted, 3, "{report:?}");
    assert_eq!(chunk_rows(tsdb.database()), 0);
    assert_eq!(tsdb.stats().unwrap().series, 0);
}

#[test]
fn compacting_backfilled_blocks_merges_their_chunks_and_keeps_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = open(dir.path(), Options::default());
    // A backfill's order: one series after the other, 10 h at 15 s each, so
    // the later series' old chunks go straight into the block table.
    let series = |s: usize| metric("m", &[("s", &format!("{s}"))]);
    for s in 0..3 {
        let rows: Vec<_> = (0..2400)
            .map(|i| {
                (
                    series(s),
                    T0 + i * 15_000,
                    (i * (s as i64 + 1)) as f64 / 4.0,
                )
            })
            .collect();
        for batch in rows.chunks(1000) {
            tsdb.append(batch).unwrap();
        }
    }
    tsdb.flush().unwrap();
    let read_all = |tsdb: &Tsdb| {
        tsdb.select(&[eq("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap()
    };
    let before = read_all(&tsdb);
    let rows_before = chunk_rows(tsdb.database());
    let merged = tsdb.compact_blocks().unwrap();
    assert!(merged > 0, "nothing to merge");
    assert_eq!(chunk_rows(tsdb.database()), rows_before - merged);
    assert_eq!(tsdb.stats().unwrap().chunks, rows_before - merged);
    assert_eq!(read_all(&tsdb), before);
    // Nothing left to merge, and a restart reads the same.
    assert_eq!(tsdb.compact_blocks().unwrap(), 0);
    drop(tsdb);
    let tsdb = open(dir.path(), Options::default());
    assert_eq!(read_all(&tsdb), before);
    // The series go on from where they were.
    tsdb.append(&[(series(2), T0 + 2400 * 15_000, 1.0)])
        .unwrap();
    let after = read_all(&tsdb);
    assert_eq!(after[2].samples.len(), 2401);
}
