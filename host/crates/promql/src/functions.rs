//! PromQL functions: range-vector functions (`rate`, `*_over_time`, ..)
//! evaluated series by series over sliding windows, and instant-vector
//! functions evaluated step by step.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use promql_parser::parser::{Call, Expr};
use regex::Regex;

use crate::Labels;
use crate::error::{exec, unsupported};
use crate::eval::{
    Builder, Ctx, DUPLICATE_LABELSET, Grid, Pt, RangeInput, Result, StepReader, StepSeries,
    has_duplicate_labels, string_arg, unparen,
};
use crate::labels::{self, BUCKET_LABEL, METRIC_NAME};
use crate::quantile::{Bucket, bucket_quantile, quantile};

pub(crate) fn eval_call(ctx: &Ctx, call: &Call, g: Grid) -> Result<Vec<StepSeries>> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    match name {
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "predict_linear"
        | "resets" | "changes" | "avg_over_time" | "min_over_time" | "max_over_time"
        | "sum_over_time" | "count_over_time" | "quantile_over_time" | "stddev_over_time"
        | "stdvar_over_time" | "last_over_time" | "present_over_time" | "absent_over_time"
        | "holt_winters" => eval_range_function(ctx, name, &args, g),
        "time" => Ok(vec![StepSeries {
            labels: Vec::new(),
            points: g.iter().map(|(_, ts)| (ts, ts as f64 / 1000.0)).collect(),
        }]),
        "pi" => Ok(vec![crate::eval::constant(std::f64::consts::PI, g)]),
        "vector" => {
            let values = ctx.eval_scalar(args[0], g)?;
            Ok(vec![StepSeries {
                labels: Vec::new(),
                points: g.iter().map(|(i, ts)| (ts, values[i])).collect(),
            }])
        }
        "scalar" => {
            let input = ctx.eval(args[0], g)?;
            let mut reader = StepReader::new(&input);
            let mut at = Vec::new();
            let mut points = Vec::with_capacity(g.len());
            for (_, ts) in g.iter() {
                reader.read(ts, &mut at);
                points.push((ts, if at.len() == 1 { at[0].1 } else { f64::NAN }));
            }
            Ok(vec![StepSeries {
                labels: Vec::new(),
                points,
            }])
        }
        "absent" => {
            let input = ctx.eval(args[0], g)?;
            let labels = absent_labels(args[0]);
            let mut reader = StepReader::new(&input);
            let mut at = Vec::new();
            let mut points = Vec::new();
            for (_, ts) in g.iter() {
                reader.read(ts, &mut at);
                if at.is_empty() {
                    points.push((ts, 1.0));
                }
            }
            Ok(if points.is_empty() {
                Vec::new()
            } else {
                vec![StepSeries { labels, points }]
            })
        }
        "timestamp" => {
            // Of a plain selector: the sample's own time; of anything else
            // the evaluation time, as every computed sample carries it.
            let input = match unparen(args[0]) {
                Expr::VectorSelector(vs) => ctx.eval_selector(vs, g, true)?,
                other => {
                    let mut input = ctx.eval(other, g)?;
                    for s in &mut input {
                        for p in &mut s.points {
                            p.1 = p.0 as f64 / 1000.0;
                        }
                    }
                    input
                }
            };
            map_series(
                ctx,
                &input,
                g,
                |l| Ok(labels::without_name(l)),
                |_, v| Some(v),
            )
        }
        "sort" | "sort_desc" => {
            let input = ctx.eval(args[0], g)?;
            let descending = name == "sort_desc";
            let mut ids: Vec<Option<usize>> = vec![None; input.len()];
            per_step(ctx, &input, g, |_, ts, at, b| {
                let mut items = at.to_vec();
                go_sort_by_value(&mut items, |x| x.1, descending);
                for (idx, v) in items {
                    let id = *ids[idx].get_or_insert_with(|| b.id(&input[idx].labels));
                    b.push(id, ts, v)?;
                }
                Ok(())
            })
        }
        "histogram_quantile" => histogram_quantile(ctx, args[0], args[1], g),
        "label_replace" => label_replace(ctx, &args, g),
        "label_join" => label_join(ctx, &args, g),
        "clamp" | "clamp_min" | "clamp_max" => {
            let input = ctx.eval(args[0], g)?;
            let (min, max) = match name {
                "clamp" => (
                    Some(ctx.eval_scalar(args[1], g)?),
                    Some(ctx.eval_scalar(args[2], g)?),
                ),
                "clamp_min" => (Some(ctx.eval_scalar(args[1], g)?), None),
                _ => (None, Some(ctx.eval_scalar(args[1], g)?)),
            };
            map_series(
                ctx,
                &input,
                g,
                |l| Ok(labels::without_name(l)),
                |i, v| {
                    let lo = min.as_ref().map(|m| m[i]);
                    let hi = max.as_ref().map(|m| m[i]);
                    match (lo, hi) {
                        (Some(lo), Some(hi)) if hi < lo => None,
                        (Some(lo), Some(hi)) => Some(go_max(lo, go_min(hi, v))),
                        (Some(lo), None) => Some(go_max(lo, v)),
                        (None, Some(hi)) => Some(go_min(hi, v)),
                        (None, None) => Some(v),
                    }
                },
            )
        }
        "round" => {
            let input = ctx.eval(args[0], g)?;
            let to_nearest = match args.get(1) {
                Some(a) => ctx.eval_scalar(a, g)?,
                None => vec![1.0; g.len()],
            };
            map_series(
                ctx,
                &input,
                g,
                |l| Ok(labels::without_name(l)),
                |i, v| {
                    // Inverted as Prometheus does: fewer floating point surprises.
                    let inverse = 1.0 / to_nearest[i];
                    Some((v * inverse + 0.5).floor() / inverse)
                },
            )
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_function(name);
            match args.first() {
                None => Ok(vec![StepSeries {
                    labels: Vec::new(),
                    // Go's integer division truncates toward zero.
                    points: g.iter().map(|(_, ts)| (ts, f(ts / 1000))).collect(),
                }]),
                Some(a) => {
                    let input = ctx.eval(a, g)?;
                    map_series(
                        ctx,
                        &input,
                        g,
                        |l| Ok(labels::without_name(l)),
                        |_, v| Some(f(go_float_to_int(v))),
                    )
                }
            }
        }
        _ => {
            let f =
                math_function(name).ok_or_else(|| unsupported(format!("function \"{name}\"")))?;
            let input = ctx.eval(args[0], g)?;
            map_series(
                ctx,
                &input,
                g,
                |l| Ok(labels::without_name(l)),
                |_, v| Some(f(v)),
            )
        }
    }
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Go's `int64(f)` on amd64: truncation, with NaN and out-of-range values
/// becoming the minimum integer.
pub(crate) fn go_float_to_int(v: f64) -> i64 {
    if (-TWO_POW_63..TWO_POW_63).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// 2^63, which is `float64(math.MaxInt64)` in Go.
pub(crate) const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// The date functions, from Unix seconds in UTC; NaN where the time is
/// beyond what a calendar can hold.
fn date_function(name: &str) -> fn(i64) -> f64 {
    fn at(secs: i64) -> Option<chrono::NaiveDateTime> {
        DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc())
    }
    match name {
        "days_in_month" => |s| {
            at(s).map_or(f64::NAN, |d| {
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                let first_next = NaiveDate::from_ymd_opt(y, m, 1).expect("valid date");
                let first = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("valid date");
                (first_next - first).num_days() as f64
            })
        },
        "day_of_month" => |s| at(s).map_or(f64::NAN, |d| d.day() as f64),
        "day_of_week" => |s| at(s).map_or(f64::NAN, |d| d.weekday().num_days_from_sunday() as f64),
        "day_of_year" => |s| at(s).map_or(f64::NAN, |d| d.ordinal() as f64),
        "hour" => |s| at(s).map_or(f64::NAN, |d| d.hour() as f64),
        "minute" => |s| at(s).map_or(f64::NAN, |d| d.minute() as f64),
        "month" => |s| at(s).map_or(f64::NAN, |d| d.month() as f64),
        _ => |s| at(s).map_or(f64::NAN, |d| d.year() as f64),
    }
}

/// Go's `math.Max`: +Inf wins over NaN, NaN over everything else.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN over everything else.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}

/// Runs `f` once per step with the input samples at that step.
pub(crate) fn per_step(
    ctx: &Ctx,
    input: &[StepSeries],
    g: Grid,
    mut f: impl FnMut(usize, i64, &[(usize, f64)], &mut Builder) -> Result<()>,
) -> Result<Vec<StepSeries>> {
    let mut reader = StepReader::new(input);
    let mut at = Vec::new();
    let mut b = Builder::default();
    for (i, ts) in g.iter() {
        if i % 512 == 0 {
            ctx.check_deadline()?;
        }
        reader.read(ts, &mut at);
        f(i, ts, &at, &mut b)?;
    }
    Ok(b.finish())
}

/// Like [`per_step`] over two inputs, read side by side.
pub(crate) fn per_step_pair(
    ctx: &Ctx,
    lhs: &[StepSeries],
    rhs: &[StepSeries],
    g: Grid,
    mut f: impl FnMut(usize, i64, &[(usize, f64)], &[(usize, f64)], &mut Builder) -> Result<()>,
) -> Result<Vec<StepSeries>> {
    let (mut lr, mut rr) = (StepReader::new(lhs), StepReader::new(rhs));
    let (mut l_at, mut r_at) = (Vec::new(), Vec::new());
    let mut b = Builder::default();
    for (i, ts) in g.iter() {
        if i % 512 == 0 {
            ctx.check_deadline()?;
        }
        lr.read(ts, &mut l_at);
        rr.read(ts, &mut r_at);
        f(i, ts, &l_at, &r_at, &mut b)?;
    }
    Ok(b.finish())
}

/// A function of each sample that relabels each series the same way at
/// every step; `value` gets the step index and may drop the sample.
pub(crate) fn map_series(
    ctx: &Ctx,
    input: &[StepSeries],
    g: Grid,
    mut relabel: impl FnMut(&Labels) -> Result<Labels>,
    mut value: impl FnMut(usize, f64) -> Option<f64>,
) -> Result<Vec<StepSeries>> {
    let mut ids: Vec<Option<usize>> = vec![None; input.len()];
    per_step(ctx, input, g, |i, ts, at, b| {
        for &(idx, v) in at {
            if let Some(out) = value(i, v) {
                let id = match ids[idx] {
                    Some(id) => id,
                    None => {
                        let id = b.id_owned(relabel(&input[idx].labels)?);
                        ids[idx] = Some(id);
                        id
                    }
                };
                b.push(id, ts, out)?;
            }
        }
        Ok(())
    })
}

/// Sorts by value as Go's `sort.Sort` over Prometheus' value heaps does:
/// insertion sort for up to 12 elements (so ties keep Prometheus' order),
/// otherwise a stable sort; NaN goes last either way.
pub(crate) fn go_sort_by_value<T>(items: &mut [T], value: impl Fn(&T) -> f64, descending: bool) {
    // "a goes before b" of sort.Reverse over the heap's Less.
    let before = |a: f64, b: f64| {
        if descending {
            b.is_nan() || b < a
        } else {
            b.is_nan() || b > a
        }
    };
    if items.len() <= 12 {
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 && before(value(&items[j]), value(&items[j - 1])) {
                items.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        items.sort_by(|a, b| {
            let (x, y) = (value(a), value(b));
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if descending => y.partial_cmp(&x).expect("not NaN"),
                _ => x.partial_cmp(&y).expect("not NaN"),
            }
        });
    }
}

/// The labels `absent()` reports: those fixed by `=` matchers, except a
/// label matched more than once (Prometheus' backwards compatibility).
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match unparen(arg) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Vec::new(),
    };
    let mut out: Labels = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            labels::set(&mut out, &m.name, &m.value);
            has.push(&m.name);
        } else {
            labels::del(&mut out, &m.name);
        }
    }
    out
}

fn eval_range_function(ctx: &Ctx, name: &str, args: &[&Expr], g: Grid) -> Result<Vec<StepSeries>> {
    let matrix_arg = if name == "quantile_over_time" { 1 } else { 0 };
    let mut scalars = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != matrix_arg {
            scalars.push(ctx.eval_scalar(a, g)?);
        }
    }
    let input = ctx.range_input(args[matrix_arg], g)?;
    if name == "predict_linear" && input.at.is_some() && g.len() > 1 {
        // Prometheus 2.42 slides such a window with the steps although `@`
        // pins it; neither answer would be right to give.
        return Err(unsupported(
            "@ modifier on the range argument of predict_linear in a range query",
        ));
    }
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for (labels, pts) in &input.series {
        ctx.check_deadline()?;
        let mut points = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, ts) in g.iter() {
            let maxt = input.window_end(ts);
            let mint = maxt - input.range;
            lo += pts[lo..].partition_point(|p| p.0 < mint);
            hi = hi.max(lo);
            hi += pts[hi..].partition_point(|p| p.0 <= maxt);
            let window = &pts[lo..hi];
            if window.is_empty() {
                continue;
            }
            let v = match name {
                "rate" => extrapolated_rate(window, maxt, input.range, true, true),
                "increase" => extrapolated_rate(window, maxt, input.range, true, false),
                "delta" => extrapolated_rate(window, maxt, input.range, false, false),
                "irate" => instant_value(window, true),
                "idelta" => instant_value(window, false),
                "deriv" => (window.len() >= 2).then(|| linear_regression(window, window[0].0).0),
                "predict_linear" => (window.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(window, ts);
                    slope * scalars[0][i] + intercept
                }),
                "resets" => Some(resets(window)),
                "changes" => Some(changes(window)),
                "avg_over_time" => Some(avg_over_time(window)),
                "min_over_time" => Some(min_over_time(window)),
                "max_over_time" => Some(max_over_time(window)),
                "sum_over_time" => Some(sum_over_time(window)),
                "count_over_time" => Some(window.len() as f64),
                "quantile_over_time" => {
                    scratch.clear();
                    scratch.extend(window.iter().map(|p| p.1));
                    Some(quantile(scalars[0][i], &mut scratch))
                }
                "stddev_over_time" => Some(stdvar_over_time(window).sqrt()),
                "stdvar_over_time" => Some(stdvar_over_time(window)),
                "last_over_time" => Some(window[window.len() - 1].1),
                "present_over_time" | "absent_over_time" => Some(1.0),
                "holt_winters" => holt_winters(window, scalars[0][i], scalars[1][i])?,
                _ => return Err(unsupported(format!("function \"{name}\""))),
            };
            if let Some(v) = v {
                points.push((ts, v));
            }
        }
        if !points.is_empty() {
            // last_over_time acts like an offset and keeps the metric name.
            let labels = if name == "last_over_time" {
                labels.clone()
            } else {
                labels::without_name(labels)
            };
            out.push(StepSeries { labels, points });
        }
    }
    if name == "absent_over_time" {
        return Ok(absent_over_time(&input, args[matrix_arg], &out, g));
    }
    if has_duplicate_labels(&out) {
        return Err(exec(DUPLICATE_LABELSET));
    }
    Ok(out)
}

/// One series valued 1 at the steps where no input series had samples.
fn absent_over_time(
    input: &RangeInput,
    arg: &Expr,
    found: &[StepSeries],
    g: Grid,
) -> Vec<StepSeries> {
    let mut present = vec![false; g.len()];
    for s in found {
        for p in &s.points {
            present[((p.0 - g.start) / g.step) as usize] = true;
        }
    }
    let points: Vec<Pt> = g
        .iter()
        .filter(|&(i, _)| !present[i])
        .map(|(_, ts)| (ts, 1.0))
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    // Prometheus replaces a subquery by an anonymous selector first.
    let labels = if input.from_subquery {
        Vec::new()
    } else {
        absent_labels(arg)
    };
    vec![StepSeries { labels, points }]
}

/// `rate`, `increase` and `delta`: the change over the window, counter
/// resets compensated for counters, extrapolated towards the window's
/// boundaries when the first/last samples are close to them (within 1.1
/// average sample intervals), else by half an interval; counters are not
/// extrapolated below zero.
pub(crate) fn extrapolated_rate(
    w: &[Pt],
    range_end: i64,
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let range_start = range_end - range;
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for p in &w[1..] {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
    }
    let mut duration_to_start = (first.0 - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled_interval = (last.0 - first.0) as f64 / 1000.0;
    let average_interval = sampled_interval / (w.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let duration_to_zero = sampled_interval * (first.1 / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_interval * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_interval / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_interval / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= (range / 1000) as f64 + (range % 1000) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Pt], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let mut v = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let interval = last.0 - prev.0;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Neumaier's compensated summation step: returns the new sum and compensation.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares fit of the window; returns the slope per second and the
/// value at `intercept_time`. A constant series has slope 0.
pub(crate) fn linear_regression(w: &[Pt], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn resets(w: &[Pt]) -> f64 {
    w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64
}

fn changes(w: &[Pt]) -> f64 {
    w.windows(2)
        .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
        .count() as f64
}

fn avg_over_time(w: &[Pt]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

fn sum_over_time(w: &[Pt]) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0);
    for &(_, v) in w {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

fn min_over_time(w: &[Pt]) -> f64 {
    let mut min = w[0].1;
    for &(_, v) in w {
        if v < min || min.is_nan() {
            min = v;
        }
    }
    min
}

fn max_over_time(w: &[Pt]) -> f64 {
    let mut max = w[0].1;
    for &(_, v) in w {
        if v > max || max.is_nan() {
            max = v;
        }
    }
    max
}

fn stdvar_over_time(w: &[Pt]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Double exponential smoothing with smoothing factor `sf` and trend factor `tf`.
fn holt_winters(w: &[Pt], sf: f64, tf: f64) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let (mut s0, mut s1, mut b) = (0.0, w[0].1, w[1].1 - w[0].1);
    for (i, &(_, v)) in w.iter().enumerate().skip(1) {
        let x = sf * v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

fn histogram_quantile(ctx: &Ctx, q_arg: &Expr, v_arg: &Expr, g: Grid) -> Result<Vec<StepSeries>> {
    let q = ctx.eval_scalar(q_arg, g)?;
    let input = ctx.eval(v_arg, g)?;
    // Per input series: its bucket bound and its histogram (the labels but
    // `le`, metric name included, as Prometheus' signature).
    let mut group_index: std::collections::HashMap<Labels, usize> = Default::default();
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut series_group: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for s in &input {
        let le = labels::get(&s.labels, BUCKET_LABEL);
        let Some(bound) = parse_go_float(le) else {
            series_group.push(None);
            continue;
        };
        let key: Labels = s
            .labels
            .iter()
            .filter(|(n, _)| n != BUCKET_LABEL)
            .cloned()
            .collect();
        let next = group_index.len();
        let gid = *group_index.entry(key).or_insert_with(|| {
            group_labels.push(
                s.labels
                    .iter()
                    .filter(|(n, _)| n != BUCKET_LABEL && n != METRIC_NAME)
                    .cloned()
                    .collect(),
            );
            next
        });
        series_group.push(Some((gid, bound)));
    }
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); group_labels.len()];
    let mut out_ids: Vec<Option<usize>> = vec![None; group_labels.len()];
    let mut order = Vec::new();
    per_step(ctx, &input, g, |i, ts, at, b| {
        order.clear();
        for &(idx, v) in at {
            if let Some((gid, bound)) = series_group[idx] {
                if buckets[gid].is_empty() {
                    order.push(gid);
                }
                buckets[gid].push(Bucket {
                    upper_bound: bound,
                    count: v,
                });
            }
        }
        for &gid in &order {
            let v = bucket_quantile(q[i], &mut buckets[gid]);
            buckets[gid].clear();
            let id = *out_ids[gid].get_or_insert_with(|| b.id(&group_labels[gid]));
            b.push(id, ts, v)?;
        }
        Ok(())
    })
}

/// Go's `strconv.ParseFloat` for the bucket bounds exposition formats use.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

fn label_replace(ctx: &Ctx, args: &[&Expr], g: Grid) -> Result<Vec<StepSeries>> {
    let dst = string_arg(args[1])?;
    let replacement = string_arg(args[2])?;
    let src = string_arg(args[3])?;
    let regex_text = string_arg(args[4])?;
    // Prometheus evaluates the vector before the function checks its arguments.
    let input = ctx.eval(args[0], g)?;
    let re = Regex::new(&format!("^(?:{regex_text})$")).map_err(|_| {
        exec(format!(
            "invalid regular expression in label_replace(): {regex_text}"
        ))
    })?;
    if !labels::is_valid_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    map_series(
        ctx,
        &input,
        g,
        |l| {
            let value = labels::get(l, &src);
            let Some(caps) = re.captures(value) else {
                return Ok(l.clone());
            };
            let mut res = String::new();
            caps.expand(&replacement, &mut res);
            let mut out = l.clone();
            labels::set(&mut out, &dst, &res);
            Ok(out)
        },
        |_, v| Some(v),
    )
}

fn label_join(ctx: &Ctx, args: &[&Expr], g: Grid) -> Result<Vec<StepSeries>> {
    let dst = string_arg(args[1])?;
    let sep = string_arg(args[2])?;
    let input = ctx.eval(args[0], g)?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let src = string_arg(a)?;
        if !labels::is_valid_name(&src) {
            return Err(exec(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        srcs.push(src);
    }
    if !labels::is_valid_name(&dst) {
        return Err(exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    map_series(
        ctx,
        &input,
        g,
        |l| {
            let joined = srcs
                .iter()
                .map(|s| labels::get(l, s))
                .collect::<Vec<_>>()
                .join(&sep);
            let mut out = l.clone();
            labels::set(&mut out, &dst, &joined);
            Ok(out)
        },
        |_, v| Some(v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // 5 samples 15 s apart, +10 each, window [0, 60 s] ending on the last sample:
        // sampled interval 60 s covers the whole window, no extrapolation.
        let w: Vec<Pt> = (0..5)
            .map(|i| (i * 15_000, 100.0 + 10.0 * i as f64))
            .collect();
        assert!(close(
            extrapolated_rate(&w, 60_000, 60_000, true, false).unwrap(),
            40.0
        ));
        assert!(close(
            extrapolated_rate(&w, 60_000, 60_000, true, true).unwrap(),
            40.0 / 60.0
        ));
        // Window [-15 s, 75 s] (range 90 s): 15 s gaps on both sides are
        // below 1.1 * 15 s, so extrapolate by them: 40 * 90 / 60.
        assert!(close(
            extrapolated_rate(&w, 75_000, 90_000, true, false).unwrap(),
            60.0
        ));
        // Window [-60 s, 120 s]: 60 s gaps exceed the threshold; extrapolate
        // half an interval on each side: 40 * 75 / 60.
        assert!(close(
            extrapolated_rate(&w, 120_000, 180_000, true, false).unwrap(),
            50.0
        ));
        assert_eq!(extrapolated_rate(&w[..1], 60_000, 60_000, true, true), None);
    }

    #[test]
    fn rate_does_not_extrapolate_counters_below_zero() {
        // Starts at 5 and grows 10 per 15 s: zero is 7.5 s before the first
        // sample, closer than the 15 s gap to the window start.
        let w: Vec<Pt> = (0..5)
            .map(|i| (15_000 + i * 15_000, 5.0 + 10.0 * i as f64))
            .collect();
        // window [0, 75 s]: start extrapolation 7.5 s, end gap 0.
        let got = extrapolated_rate(&w, 75_000, 75_000, true, false).unwrap();
        assert!(close(got, 40.0 * 67.5 / 60.0), "{got}");
        // delta is not a counter: full 15 s.
        let got = extrapolated_rate(&w, 75_000, 75_000, false, false).unwrap();
        assert!(close(got, 40.0 * 75.0 / 60.0), "{got}");
    }

    #[test]
    fn counter_resets_add_the_value_before_the_reset() {
        // 10, 20, 5 (reset), 15: increase 10 + 5... raw delta 5, plus 20.
        let w: Vec<Pt> = vec![(0, 10.0), (15_000, 20.0), (30_000, 5.0), (45_000, 15.0)];
        assert!(close(
            extrapolated_rate(&w, 45_000, 45_000, true, false).unwrap(),
            25.0
        ));
        assert_eq!(resets(&w), 1.0);
        assert_eq!(changes(&w), 3.0);
        // irate after a reset uses the new value alone.
        assert!(close(instant_value(&w[..3], true).unwrap(), 5.0 / 15.0));
        assert!(close(instant_value(&w[..3], false).unwrap(), -15.0));
    }

    #[test]
    fn linear_regression_predicts() {
        // v = 2 * t_seconds + 1
        let w: Vec<Pt> = (0..10)
            .map(|i| (i * 10_000, 2.0 * (i * 10) as f64 + 1.0))
            .collect();
        let (slope, intercept) = linear_regression(&w, 90_000);
        assert!(close(slope, 2.0));
        assert!(close(intercept, 181.0));
        // predict_linear(.., 60) at t = 90 s
        assert!(close(slope * 60.0 + intercept, 301.0));
        let flat: Vec<Pt> = vec![(0, 3.0), (1000, 3.0)];
        assert_eq!(linear_regression(&flat, 0), (0.0, 3.0));
    }

    #[test]
    fn over_time_aggregates() {
        let w: Vec<Pt> = vec![
            (0, 2.0),
            (1, 4.0),
            (2, 4.0),
            (3, 4.0),
            (4, 5.0),
            (5, 5.0),
            (6, 7.0),
            (7, 9.0),
        ];
        assert!(close(avg_over_time(&w), 5.0));
        assert!(close(stdvar_over_time(&w), 4.0));
        assert!(close(sum_over_time(&w), 40.0));
        assert_eq!(min_over_time(&w), 2.0);
        assert_eq!(max_over_time(&w), 9.0);
        let nan_first: Vec<Pt> = vec![(0, f64::NAN), (1, 1.0)];
        assert_eq!(max_over_time(&nan_first), 1.0);
        let inf: Vec<Pt> = vec![(0, f64::INFINITY), (1, 1.0)];
        assert_eq!(avg_over_time(&inf), f64::INFINITY);
    }

    #[test]
    fn go_min_max_propagate_nan() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(go_min(2.0, 1.0), 1.0);
    }

    #[test]
    fn sorting_matches_go_for_small_inputs() {
        let mut v = vec![(0, 2.0), (1, f64::NAN), (2, 1.0), (3, 2.0)];
        go_sort_by_value(&mut v, |x| x.1, false);
        let order: Vec<usize> = v.iter().map(|x| x.0).collect();
        assert_eq!(order, vec![2, 0, 3, 1]);
        go_sort_by_value(&mut v, |x| x.1, true);
        let order: Vec<usize> = v.iter().map(|x| x.0).collect();
        assert_eq!(order, vec![0, 3, 2, 1]);
    }

    #[test]
    fn dates_in_utc() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let t = 1_709_214_300;
        assert_eq!(date_function("days_in_month")(t), 29.0);
        assert_eq!(date_function("day_of_month")(t), 29.0);
        assert_eq!(date_function("day_of_week")(t), 4.0);
        assert_eq!(date_function("day_of_year")(t), 60.0);
        assert_eq!(date_function("hour")(t), 13.0);
        assert_eq!(date_function("minute")(t), 45.0);
        assert_eq!(date_function("month")(t), 2.0);
        assert_eq!(date_function("year")(t), 2024.0);
    }

    #[test]
    fn holt_winters_smooths() {
        let w: Vec<Pt> = vec![(0, 1.0), (1, 2.0), (2, 3.0)];
        // A straight line is followed exactly.
        assert!(close(holt_winters(&w, 0.5, 0.5).unwrap().unwrap(), 3.0));
        assert!(holt_winters(&w, 1.0, 0.5).is_err());
    }
}
