//! PromQL evaluation for lookout, with the semantics of Prometheus 2.42.
//!
//! The parser is [`promql_parser`]; this crate evaluates its syntax tree over
//! any [`SeriesSource`] (lookout's tsdb implements it) and renders results as
//! Prometheus' HTTP API does ([`value_to_json`]).
//!
//! ```
//! use lookout_promql::{Engine, Series, SeriesSource, Matcher, MatchOp, Value};
//!
//! /// One counter, scraped every 15 s.
//! struct OneCounter;
//! impl SeriesSource for OneCounter {
//!     fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
//!         let labels = vec![("__name__".to_string(), "http_requests_total".to_string())];
//!         let wanted = matchers.iter().all(|m| m.op == MatchOp::Equal && m.value == "http_requests_total");
//!         let samples = (0..100)
//!             .map(|i| (i * 15_000, i as f64 * 30.0))
//!             .filter(|(t, _)| (mint..=maxt).contains(t))
//!             .collect();
//!         Ok(if wanted { vec![Series { labels, samples }] } else { vec![] })
//!     }
//! }
//!
//! let engine = Engine::default();
//! let v = engine.instant(&OneCounter, "rate(http_requests_total[5m])", 1_200_000).unwrap();
//! let Value::Vector(samples) = v else { panic!("a vector") };
//! assert_eq!(samples[0].v, 2.0); // 30 per 15 s
//! assert!(samples[0].labels.is_empty()); // rate drops the metric name
//! ```
//!
//! # Concepts
//!
//! - **Selection happens once.** Every selector of a query is read from the
//!   source once, for the whole time range the query needs (steps, lookback,
//!   ranges, offsets, `@`, subqueries); the steps are then evaluated over
//!   in-memory slices with binary search. A [`SeriesSource`] is never called
//!   per step.
//! - **Evaluation is step-major like Prometheus'.** Each node of the syntax
//!   tree is evaluated once over all steps of its evaluation grid, producing
//!   series whose points sit on the grid's timestamps. Instant queries are
//!   range queries with one step.
//! - **Never a wrong answer.** Constructs whose Prometheus 2.42 semantics are
//!   not implemented (native-histogram functions, newer functions the parser
//!   accepts, `fill()` modifiers, `or` inside braces, ...) fail with
//!   [`QueryError::Unsupported`] naming the construct.
//!
//! # What evaluates
//!
//! Everything of Prometheus 2.42's PromQL over float samples: selectors
//! (`= != =~ !~`), range selectors, `offset` (also negative), `@` (also
//! `start()`/`end()`), subqueries; every function of 2.42 except the three
//! that only read native histograms (`histogram_count`, `histogram_sum`,
//! `histogram_fraction`), `holt_winters` included; all aggregations with
//! `by`/`without`; arithmetic, comparison (with `bool`), `atan2` and set
//! operators with `on`/`ignoring`/`group_left`/`group_right` and
//! Prometheus' errors for ambiguous matches.
//!
//! [`QueryError::Unsupported`] names what does not: the native-histogram
//! functions; functions and aggregations newer than 2.42 that the parser
//! knows (`mad_over_time`, `sort_by_label`, `limitk`, `info`, ...);
//! `fill()` modifiers; `or` inside braces; and `predict_linear` over an
//! `@`-pinned range in a range query, where 2.42 slides the window with the
//! steps although `@` pins it.
//!
//! `tests/conformance.rs` runs about two thousand instant and range queries
//! against a real Prometheus 2.42 over the same data and requires identical
//! answers.
//!
//! # Semantics worth knowing
//!
//! - Lookback: an instant selector takes the newest sample in
//!   `[t - lookback, t]`; a staleness marker (value bits
//!   [`STALE_NAN_BITS`]) as that sample means "no value".
//! - Range selectors take the samples in `[t - range, t]`, both ends
//!   included (Prometheus 2.x; 3.0 made the start exclusive), skipping
//!   staleness markers.
//! - Subqueries without a step use [`DEFAULT_SUBQUERY_STEP_MS`], Prometheus'
//!   default global evaluation interval.
//! - Ties in `sort`, `sort_desc`, `topk` and `bottomk` resolve as in
//!   Prometheus (its binary heap, then insertion sort) for up to 12
//!   elements; beyond that Go's unstable sort is not reproduced and equal
//!   values may come in another order.

mod aggregate;
mod binary;
#[cfg(test)]
mod engine_tests;
mod error;
mod eval;
mod functions;
mod json;
mod labels;
mod quantile;

use std::time::Duration;

pub use error::QueryError;
pub use eval::selector_weights;
pub use json::{value_json_text, value_to_json, write_value_json};

/// A series' labels, sorted by name; the metric name is the label `__name__`.
pub type Labels = Vec<(String, String)>;

/// The value bits of a Prometheus staleness marker: a sample with this NaN
/// ends its series at once instead of letting it linger for the lookback.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The step of a subquery written without one (`x[1h:]`): Prometheus uses
/// its global `evaluation_interval`, whose default is one minute.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// How a [`Matcher`] compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// The regex is anchored at both ends (`^(?:re)$`).
    Regex,
    NotRegex,
}

/// One label condition of a selector. A missing label has the value `""`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

/// A series with its samples `(milliseconds, value)` in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// Where series come from (lookout's tsdb implements it).
pub trait SeriesSource: Sync {
    /// Every series matching all `matchers` (regexes are anchored; a missing
    /// label is `""`), with its samples in `[mint, maxt]`, both inclusive.
    /// Samples whose value has the bits [`STALE_NAN_BITS`] are staleness
    /// markers and must be returned like any other sample.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String>;
}

/// A query result, as Prometheus' API types it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(i64, f64),
    String(i64, String),
    Vector(Vec<InstantSample>),
    Matrix(Vec<Series>),
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// Evaluates PromQL queries; holds only limits, so one engine serves every
/// query of a process.
#[derive(Clone, Debug)]
pub struct Engine {
    /// How far back an instant selector looks for a sample (Prometheus'
    /// `--query.lookback-delta`, 5 minutes).
    pub lookback: Duration,
    /// Most points a range query may produce per series: Prometheus' API
    /// refuses more than 11,000 so a week at 60 s or a year at 1 h fits,
    /// while a mistyped step cannot ask for millions.
    pub max_points_per_series: usize,
    /// Wall time a query may take (Prometheus' `--query.timeout`, 2 minutes);
    /// beyond it the query fails with [`QueryError::Timeout`].
    pub timeout: Duration,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            lookback: Duration::from_secs(5 * 60),
            max_points_per_series: 11_000,
            timeout: Duration::from_secs(2 * 60),
        }
    }
}

impl Engine {
    /// Evaluates `query` at `t_ms` (Prometheus' `/api/v1/query`).
    pub fn instant(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        t_ms: i64,
    ) -> Result<Value, QueryError> {
        eval::instant(self, src, query, t_ms)
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`
    /// (Prometheus' `/api/v1/query_range`). The result is always a
    /// [`Value::Matrix`] sorted by labels; a scalar expression gives one
    /// series with empty labels, as in Prometheus.
    pub fn range(
        &self,
        src: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        eval::range(self, src, query, start_ms, end_ms, step_ms)
    }
}
