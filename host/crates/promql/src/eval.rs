//! The evaluator: query set-up, the evaluation grid, selectors, subqueries,
//! and the per-step machinery the operators and functions share.
//!
//! Every node is evaluated once over a [`Grid`] of step timestamps and
//! yields [`StepSeries`]: series whose points sit on grid timestamps, what
//! Prometheus' engine calls a matrix. Parents walk their children's series
//! step by step with a [`StepReader`] and collect their output in a
//! [`Builder`], which also enforces Prometheus' rule that one step may not
//! hold two samples with the same labels.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Once;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::function::{Function, register_extra_functions};
use promql_parser::parser::token;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::error::{exec, unsupported};
use crate::labels::{self, METRIC_NAME};
use crate::{
    DEFAULT_SUBQUERY_STEP_MS, Engine, InstantSample, Labels, MatchOp, Matcher, QueryError,
    STALE_NAN_BITS, Series, SeriesSource, Value, aggregate, binary, functions,
};

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

/// A point `(milliseconds, value)`.
pub(crate) type Pt = (i64, f64);

/// Prometheus' message when one step would hold two samples with the same labels.
pub(crate) const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Most computed samples a query may hold at once, Prometheus' default
/// `--query.max-samples`: the points of the node results alive at the same
/// time (a result is released when its parent is done). It keeps a runaway
/// subquery (`x[30d:1s]`) or a huge fan-out from exhausting memory; samples
/// read from the source are the source's memory and are not counted.
pub(crate) const MAX_SAMPLES: usize = 50_000_000;

const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

/// A series whose points sit on the timestamps of the grid it was evaluated on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub points: Vec<Pt>,
}

/// The timestamps a node is evaluated at: `start, start + step, .., end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step + 1) as usize
        }
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, i64)> + use<> {
        let g = *self;
        (0..g.len()).map(move |i| (i, g.ts(i)))
    }
}

pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Walks step-aligned series one step at a time.
pub(crate) struct StepReader<'s> {
    series: &'s [StepSeries],
    pos: Vec<usize>,
}

impl<'s> StepReader<'s> {
    pub fn new(series: &'s [StepSeries]) -> Self {
        StepReader {
            series,
            pos: vec![0; series.len()],
        }
    }

    /// Fills `out` with `(series index, value)` of the samples at `ts`, in
    /// series order. Steps must be read in increasing order.
    pub fn read(&mut self, ts: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in self.series.iter().enumerate() {
            let p = self.pos[i];
            if let Some(&(t, v)) = s.points.get(p)
                && t == ts
            {
                out.push((i, v));
                self.pos[i] = p + 1;
            }
        }
    }
}

/// Collects output samples step by step into series, in first-seen order.
#[derive(Default)]
pub(crate) struct Builder {
    series: Vec<StepSeries>,
    index: HashMap<Labels, usize>,
}

impl Builder {
    pub fn id(&mut self, labels: &Labels) -> usize {
        if let Some(&id) = self.index.get(labels) {
            return id;
        }
        self.id_owned(labels.clone())
    }

    pub fn id_owned(&mut self, labels: Labels) -> usize {
        if let Some(&id) = self.index.get(&labels) {
            return id;
        }
        let id = self.series.len();
        self.index.insert(labels.clone(), id);
        self.series.push(StepSeries {
            labels,
            points: Vec::new(),
        });
        id
    }

    /// Adds a sample; a second sample for the same series and step is
    /// Prometheus' "same labelset" error.
    pub fn push(&mut self, id: usize, ts: i64, v: f64) -> Result<()> {
        let points = &mut self.series[id].points;
        if points.last().is_some_and(|&(t, _)| t == ts) {
            return Err(exec(DUPLICATE_LABELSET));
        }
        points.push((ts, v));
        Ok(())
    }

    pub fn finish(self) -> Vec<StepSeries> {
        self.series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// The input of a range-vector function: a matrix selector's samples or a
/// subquery's points, without staleness markers, and where each step's
/// window ends.
pub(crate) struct RangeInput {
    pub series: Vec<(Labels, Vec<Pt>)>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub from_subquery: bool,
}

impl RangeInput {
    /// The inclusive end of the window evaluated at step `ts`; the window is
    /// `[end - range, end]`.
    pub fn window_end(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts) - self.offset
    }
}

/// Everything one query's evaluation shares.
pub(crate) struct Ctx<'a> {
    src: &'a dyn SeriesSource,
    pub lookback: i64,
    /// Resolve `@ start()` and `@ end()`.
    query_start: i64,
    query_end: i64,
    deadline: Instant,
    /// One selection per distinct selector and time range.
    selections: RefCell<HashMap<String, Rc<Vec<Series>>>>,
    /// Points of the node results alive now, against [`MAX_SAMPLES`].
    live_samples: Cell<usize>,
}

static REGISTER_EXTRA_FUNCTIONS: Once = Once::new();

/// `holt_winters` is in Prometheus 2.42 but the parser only knows its later
/// name; teach it the old one.
/// Distinct queries kept parsed; past this the cache starts over.
const PARSE_CACHE_SIZE: usize = 4096;

/// Parses `query`, once per distinct text: rule groups and dashboards send
/// the same queries over and over, and parsing (with its regex
/// compilation) costs as much as evaluating a small one.
fn parse(query: &str) -> std::result::Result<Expr, String> {
    static CACHE: std::sync::Mutex<Option<std::collections::HashMap<String, Expr>>> =
        std::sync::Mutex::new(None);
    if let Some(expr) = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|c| c.get(query))
    {
        return Ok(expr.clone());
    }
    let expr = parse_uncached(query)?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(Default::default);
    if cache.len() >= PARSE_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(query.to_string(), expr.clone());
    Ok(expr)
}

fn parse_uncached(query: &str) -> std::result::Result<Expr, String> {
    REGISTER_EXTRA_FUNCTIONS.call_once(|| {
        let holt = Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        // Fails only if a later parser version adds the function itself.
        let _ = register_extra_functions(vec![holt]);
    });
    promql_parser::parser::parse(query).map_err(|e| format!("parse error: {e}"))
}

fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

pub(crate) fn instant(
    engine: &Engine,
    src: &dyn SeriesSource,
    query: &str,
    t: i64,
) -> Result<Value> {
    let expr = parse(query)
        .map_err(|e| QueryError::BadData(format!("invalid parameter \"query\": {e}")))?;
    check_supported(&expr)?;
    let ctx = Ctx::new(engine, src, t, t);
    let grid = Grid {
        start: t,
        end: t,
        step: 1,
    };
    match expr.value_type() {
        ValueType::String => Ok(Value::String(t, string_arg(&expr)?)),
        ValueType::Matrix => Ok(Value::Matrix(ctx.eval_range_value(&expr, t)?)),
        ValueType::Scalar => {
            let v = ctx
                .eval(&expr, grid)?
                .first()
                .and_then(|s| s.points.first())
                .map_or(f64::NAN, |p| p.1);
            Ok(Value::Scalar(t, v))
        }
        ValueType::Vector => {
            let out = ctx.eval(&expr, grid)?;
            Ok(Value::Vector(
                out.into_iter()
                    .filter_map(|s| {
                        s.points.first().map(|p| InstantSample {
                            labels: s.labels,
                            t,
                            v: p.1,
                        })
                    })
                    .collect(),
            ))
        }
    }
}

/// `12345` as `12,345`, as Prometheus' resolution message spells its limit.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn range(
    engine: &Engine,
    src: &dyn SeriesSource,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value> {
    if end < start {
        return Err(QueryError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if step <= 0 {
        return Err(QueryError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if (end - start) / step > engine.max_points_per_series as i64 {
        return Err(QueryError::BadData(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            thousands(engine.max_points_per_series)
        )));
    }
    let expr = parse(query).map_err(QueryError::BadData)?;
    let t = expr.value_type();
    if t != ValueType::Vector && t != ValueType::Scalar {
        return Err(QueryError::BadData(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            documented_type(t)
        )));
    }
    check_supported(&expr)?;
    let ctx = Ctx::new(engine, src, start, end);
    let mut out = ctx.eval(&expr, Grid { start, end, step })?;
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(
        out.into_iter()
            .map(|s| Series {
                labels: s.labels,
                samples: s.points,
            })
            .collect(),
    ))
}

/// Functions of Prometheus 2.42 this crate evaluates.
const SUPPORTED_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "ln",
    "log10",
    "log2",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Refuses, before touching any data, what this crate cannot answer the way
/// Prometheus 2.42 would.
fn check_supported(e: &Expr) -> Result<()> {
    match e {
        Expr::Aggregate(a) => {
            let id = a.op.id();
            if id == token::T_LIMITK || id == token::T_LIMIT_RATIO {
                return Err(unsupported(format!(
                    "aggregation \"{}\" is not part of Prometheus 2.42",
                    a.op
                )));
            }
            if let Some(p) = &a.param {
                check_supported(p)?;
            }
            check_supported(&a.expr)
        }
        Expr::Unary(u) => check_supported(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(unsupported(
                    "fill modifiers of binary operators are not part of Prometheus 2.42",
                ));
            }
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Subquery(s) => check_supported(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            let name = c.func.name;
            if matches!(
                name,
                "histogram_count" | "histogram_sum" | "histogram_fraction"
            ) {
                return Err(unsupported(format!(
                    "function \"{name}\" works on native histograms, which lookout does not store"
                )));
            }
            if !SUPPORTED_FUNCTIONS.contains(&name) {
                return Err(unsupported(format!(
                    "function \"{name}\" is not part of Prometheus 2.42"
                )));
            }
            c.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Extension(x) => Err(unsupported(format!(
            "extension expression {}",
            x.expr.name()
        ))),
    }
}

fn check_selector(vs: &VectorSelector) -> Result<()> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported(
            "\"or\" between label matchers is not part of Prometheus 2.42",
        ));
    }
    Ok(())
}

/// The expression without enclosing parentheses.
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// A string argument (`label_replace`, `count_values`).
pub(crate) fn string_arg(e: &Expr) -> Result<String> {
    match unparen(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        other => Err(exec(format!("expected a string literal, got {other}"))),
    }
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The selector's matchers as lookout passes them to a [`SeriesSource`]:
/// the metric name first, as Prometheus orders them.
/// Each selector of `query` with how many samples of a series one step of
/// it reads (1 for an instant selector, about range ÷ 15 s for a range),
/// for a caller's cost estimate; `None` when the query does not parse or
/// has a subquery (whose cost its selectors do not tell).
pub fn selector_weights(query: &str) -> Option<Vec<(Vec<Matcher>, u64)>> {
    fn walk(e: &Expr, out: &mut Vec<(Vec<Matcher>, u64)>) -> Option<()> {
        match e {
            Expr::Aggregate(a) => {
                walk(&a.expr, out)?;
                a.param.as_deref().map_or(Some(()), |p| walk(p, out))
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out)?;
                walk(&b.rhs, out)
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Call(c) => c.args.args.iter().try_for_each(|a| walk(a, out)),
            Expr::VectorSelector(vs) => {
                out.push((matchers_of(vs), 1));
                Some(())
            }
            Expr::MatrixSelector(ms) => {
                let samples = ms.range.as_millis() as u64 / 15_000 + 1;
                out.push((matchers_of(&ms.vs), samples));
                Some(())
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Some(()),
            Expr::Subquery(_) | Expr::Extension(_) => None,
        }
    }
    let expr = parse(query).ok()?;
    let mut out = Vec::new();
    walk(&expr, &mut out)?;
    Some(out)
}

pub(crate) fn matchers_of(vs: &VectorSelector) -> Vec<Matcher> {
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher {
            name: METRIC_NAME.into(),
            op: MatchOp::Equal,
            value: name.clone(),
        });
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            ParserMatchOp::Equal => MatchOp::Equal,
            ParserMatchOp::NotEqual => MatchOp::NotEqual,
            ParserMatchOp::Re(_) => MatchOp::Regex,
            ParserMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(Matcher {
            name: m.name.clone(),
            op,
            value: m.value.clone(),
        });
    }
    out
}

impl<'a> Ctx<'a> {
    fn new(engine: &Engine, src: &'a dyn SeriesSource, query_start: i64, query_end: i64) -> Self {
        Ctx {
            src,
            lookback: engine.lookback.as_millis() as i64,
            query_start,
            query_end,
            deadline: Instant::now() + engine.timeout,
            selections: RefCell::new(HashMap::new()),
            live_samples: Cell::new(0),
        }
    }

    /// Counts `n` more samples held by the query.
    fn account(&self, n: usize) -> Result<()> {
        let total = self.live_samples.get().saturating_add(n);
        self.live_samples.set(total);
        if total > MAX_SAMPLES {
            return Err(exec(TOO_MANY_SAMPLES));
        }
        Ok(())
    }

    pub fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout(
                "query timed out in expression evaluation".into(),
            ));
        }
        Ok(())
    }

    pub fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// The series of a selector with samples in `[mint, maxt]`, sorted by
    /// labels, read from the source at most once per query.
    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Rc<Vec<Series>>> {
        let matchers = matchers_of(vs);
        let key = format!("{matchers:?}/{mint}/{maxt}");
        if let Some(found) = self.selections.borrow().get(&key) {
            return Ok(found.clone());
        }
        self.check_deadline()?;
        let mut series = self
            .src
            .select(&matchers, mint, maxt)
            .map_err(|e| QueryError::Source(format!("expanding series: {e}")))?;
        for s in &mut series {
            if !s.labels.is_sorted() {
                s.labels.sort();
            }
            if !s.samples.is_sorted_by_key(|p| p.0) {
                s.samples.sort_by_key(|p| p.0);
            }
            s.samples.retain(|p| p.0 >= mint && p.0 <= maxt);
        }
        series.retain(|s| !s.samples.is_empty());
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let series = Rc::new(merge_duplicates(series));
        self.selections.borrow_mut().insert(key, series.clone());
        Ok(series)
    }

    /// Evaluates an instant-vector or scalar expression over `g`.
    pub fn eval(&self, e: &Expr, g: Grid) -> Result<Vec<StepSeries>> {
        self.check_deadline()?;
        if g.len() > MAX_SAMPLES {
            return Err(exec(TOO_MANY_SAMPLES));
        }
        let before = self.live_samples.get();
        let out = self.eval_node(e, g)?;
        // The children's results are gone; this one lives on.
        self.live_samples.set(before);
        self.account(out.iter().map(|s| s.points.len()).sum())?;
        Ok(out)
    }

    fn eval_node(&self, e: &Expr, g: Grid) -> Result<Vec<StepSeries>> {
        match e {
            Expr::NumberLiteral(n) => Ok(vec![constant(n.val, g)]),
            Expr::Paren(p) => self.eval_node(&p.expr, g),
            Expr::Unary(u) => {
                let mut out = self.eval(&u.expr, g)?;
                for s in &mut out {
                    labels::del(&mut s.labels, METRIC_NAME);
                    for p in &mut s.points {
                        p.1 = -p.1;
                    }
                }
                if has_duplicate_labels(&out) {
                    return Err(exec(DUPLICATE_LABELSET));
                }
                Ok(out)
            }
            Expr::VectorSelector(vs) => self.eval_selector(vs, g, false),
            Expr::Call(c) => functions::eval_call(self, c, g),
            Expr::Aggregate(a) => aggregate::eval(self, a, g),
            Expr::Binary(b) => binary::eval(self, b, g),
            Expr::StringLiteral(_) | Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(exec(
                format!("expected an instant vector or scalar, got {e}"),
            )),
            Expr::Extension(x) => Err(unsupported(format!(
                "extension expression {}",
                x.expr.name()
            ))),
        }
    }

    /// A scalar expression's value at every step of `g`.
    pub fn eval_scalar(&self, e: &Expr, g: Grid) -> Result<Vec<f64>> {
        let out = self.eval(e, g)?;
        let mut values = vec![f64::NAN; g.len()];
        if let Some(s) = out.first() {
            for &(t, v) in &s.points {
                values[((t - g.start) / g.step) as usize] = v;
            }
        }
        Ok(values)
    }

    /// An instant selector: at each step the newest sample within the
    /// lookback, unless it is a staleness marker. With `sample_time` the
    /// value is the sample's timestamp in seconds (`timestamp()`).
    pub fn eval_selector(
        &self,
        vs: &VectorSelector,
        g: Grid,
        sample_time: bool,
    ) -> Result<Vec<StepSeries>> {
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let first = at.unwrap_or(g.start) - offset;
        let last = at.unwrap_or(g.end) - offset;
        let data = self.select(vs, first - self.lookback, last)?;
        let mut out = Vec::with_capacity(data.len());
        for s in data.iter() {
            self.check_deadline()?;
            let mut points = Vec::with_capacity(g.len().min(s.samples.len() + 1));
            // Number of samples at or before the reference time. Steps and
            // samples are both ascending and usually about one apart, so a
            // forward walk beats a binary search per step.
            let mut upto = 0usize;
            for (_, ts) in g.iter() {
                let reference = at.unwrap_or(ts) - offset;
                while upto < s.samples.len() && s.samples[upto].0 <= reference {
                    upto += 1;
                }
                if upto == 0 {
                    continue;
                }
                let (t, v) = s.samples[upto - 1];
                if t < reference - self.lookback || is_stale(v) {
                    continue;
                }
                points.push((ts, if sample_time { t as f64 / 1000.0 } else { v }));
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
        Ok(out)
    }

    /// The samples behind a range-vector argument evaluated over `g`.
    pub fn range_input(&self, e: &Expr, g: Grid) -> Result<RangeInput> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let offset = offset_ms(&ms.vs.offset);
                let at = self.at_ms(&ms.vs.at);
                let range = ms.range.as_millis() as i64;
                let mint = at.unwrap_or(g.start) - offset - range;
                let maxt = at.unwrap_or(g.end) - offset;
                let data = self.select(&ms.vs, mint, maxt)?;
                let series = data
                    .iter()
                    .map(|s| {
                        (
                            s.labels.clone(),
                            s.samples
                                .iter()
                                .copied()
                                .filter(|p| !is_stale(p.1))
                                .collect(),
                        )
                    })
                    .collect();
                Ok(RangeInput {
                    series,
                    range,
                    offset,
                    at,
                    from_subquery: false,
                })
            }
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let at = self.at_ms(&sq.at);
                let range = sq.range.as_millis() as i64;
                let step = sq
                    .step
                    .map(|d| d.as_millis() as i64)
                    .filter(|&s| s > 0)
                    .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                let end = at.unwrap_or(g.end) - offset;
                let first = at.unwrap_or(g.start) - offset - range;
                // The first step-aligned timestamp at or after `first`
                // (Go's division truncates toward zero, as Rust's does).
                let mut start = step * (first / step);
                if start < first {
                    start += step;
                }
                let inner = if start > end {
                    Vec::new()
                } else {
                    self.eval(&sq.expr, Grid { start, end, step })?
                };
                let series = inner
                    .into_iter()
                    .map(|s| {
                        (
                            s.labels,
                            s.points.into_iter().filter(|p| !is_stale(p.1)).collect(),
                        )
                    })
                    .collect();
                Ok(RangeInput {
                    series,
                    range,
                    offset,
                    at,
                    from_subquery: true,
                })
            }
            other => Err(exec(format!("expected a range vector, got {other}"))),
        }
    }

    /// A range vector as an instant query's result: the raw samples of each
    /// series' window.
    fn eval_range_value(&self, e: &Expr, t: i64) -> Result<Vec<Series>> {
        let input = self.range_input(
            e,
            Grid {
                start: t,
                end: t,
                step: 1,
            },
        )?;
        let maxt = input.window_end(t);
        let mint = maxt - input.range;
        let mut out: Vec<Series> = input
            .series
            .into_iter()
            .map(|(labels, pts)| Series {
                labels,
                samples: pts
                    .into_iter()
                    .filter(|p| p.0 >= mint && p.0 <= maxt)
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// Merges series a source returned more than once (same labels), as
/// Prometheus' storage merges overlapping blocks: one sample per timestamp.
fn merge_duplicates(sorted: Vec<Series>) -> Vec<Series> {
    if sorted.windows(2).all(|w| w[0].labels != w[1].labels) {
        return sorted;
    }
    let mut out: Vec<Series> = Vec::with_capacity(sorted.len());
    for s in sorted {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.samples.extend(s.samples);
                last.samples.sort_by_key(|p| p.0);
                last.samples.dedup_by_key(|p| p.0);
            }
            _ => out.push(s),
        }
    }
    out
}

/// A scalar's series: empty labels, `v` at every step.
pub(crate) fn constant(v: f64, g: Grid) -> StepSeries {
    StepSeries {
        labels: Vec::new(),
        points: g.iter().map(|(_, ts)| (ts, v)).collect(),
    }
}

pub(crate) fn has_duplicate_labels(series: &[StepSeries]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    series.iter().any(|s| !seen.insert(&s.labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_series_from_a_source_are_merged() {
        let s = |samples: &[(i64, f64)]| Series {
            labels: vec![("a".into(), "1".into())],
            samples: samples.to_vec(),
        };
        let merged = merge_duplicates(vec![s(&[(0, 1.0), (20, 3.0)]), s(&[(10, 2.0), (20, 3.0)])]);
        assert_eq!(merged, vec![s(&[(0, 1.0), (10, 2.0), (20, 3.0)])]);
    }

    #[test]
    fn grid_counts_steps() {
        assert_eq!(
            Grid {
                start: 0,
                end: 0,
                step: 1
            }
            .len(),
            1
        );
        assert_eq!(
            Grid {
                start: 0,
                end: 100,
                step: 30
            }
            .len(),
            4
        );
        assert_eq!(
            Grid {
                start: 10,
                end: 0,
                step: 30
            }
            .len(),
            0
        );
        assert_eq!(thousands(11_000), "11,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
