//! Aggregation operators (`sum by (job) (..)`, `topk`, `count_values`, ..).
//!
//! Groups are fixed per input series, so each series' group is computed
//! once; only `count_values` (whose group depends on the value) groups per
//! step. Output order within a step is the order in which groups first
//! appear, as in Prometheus.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::Labels;
use crate::error::{exec, unsupported};
use crate::eval::{Builder, Ctx, Grid, Result, StepSeries, string_arg};
use crate::functions::{TWO_POW_63, go_float_to_int, go_sort_by_value, per_step};
use crate::json::format_decimal;
use crate::labels;
use crate::quantile::quantile;

pub(crate) fn eval(ctx: &Ctx, a: &AggregateExpr, g: Grid) -> Result<Vec<StepSeries>> {
    let op = a.op.id();
    let (mut grouping, without) = match &a.modifier {
        None => (Vec::new(), false),
        Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
        Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
    };
    grouping.sort();
    grouping.dedup();

    if op == T_COUNT_VALUES {
        let param = a
            .param
            .as_ref()
            .ok_or_else(|| exec("count_values needs a label name"))?;
        let value_label = string_arg(param)?;
        let input = ctx.eval(&a.expr, g)?;
        if !labels::is_valid_name(&value_label) {
            return Err(exec(format!(
                "invalid label name {}",
                labels::go_quote(&value_label)
            )));
        }
        return count_values(ctx, &input, g, &value_label, grouping, without);
    }
    let param = match &a.param {
        Some(p) => Some(ctx.eval_scalar(p, g)?),
        None => None,
    };
    let input = ctx.eval(&a.expr, g)?;

    // Each input series' group, and each group's labels.
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|s| {
            let key = group_key(&s.labels, &grouping, without);
            let next = group_labels.len();
            *index.entry(key).or_insert_with_key(|k| {
                group_labels.push(k.clone());
                next
            })
        })
        .collect();

    match op {
        T_TOPK | T_BOTTOMK => {
            let k = param.ok_or_else(|| exec("topk/bottomk need a parameter"))?;
            select_k(
                ctx,
                &input,
                g,
                &series_group,
                group_labels.len(),
                &k,
                op == T_TOPK,
            )
        }
        T_QUANTILE => {
            let q = param.ok_or_else(|| exec("quantile needs a parameter"))?;
            let mut values: Vec<Vec<f64>> = vec![Vec::new(); group_labels.len()];
            let mut out_ids: Vec<Option<usize>> = vec![None; group_labels.len()];
            let mut order = Vec::new();
            per_step(ctx, &input, g, |i, ts, at, b| {
                order.clear();
                for &(idx, v) in at {
                    let gid = series_group[idx];
                    if values[gid].is_empty() {
                        order.push(gid);
                    }
                    values[gid].push(v);
                }
                for &gid in &order {
                    let v = quantile(q[i], &mut values[gid]);
                    values[gid].clear();
                    push_group(b, &mut out_ids, &group_labels, gid, ts, v)?;
                }
                Ok(())
            })
        }
        T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {
            let mut acc: Vec<Acc> = vec![Acc::default(); group_labels.len()];
            let mut seen_at: Vec<usize> = vec![usize::MAX; group_labels.len()];
            let mut out_ids: Vec<Option<usize>> = vec![None; group_labels.len()];
            let mut order = Vec::new();
            per_step(ctx, &input, g, |i, ts, at, b| {
                order.clear();
                for &(idx, v) in at {
                    let gid = series_group[idx];
                    if seen_at[gid] != i {
                        seen_at[gid] = i;
                        order.push(gid);
                        acc[gid] = Acc::first(op, v);
                    } else {
                        acc[gid].add(op, v);
                    }
                }
                for &gid in &order {
                    push_group(b, &mut out_ids, &group_labels, gid, ts, acc[gid].result(op))?;
                }
                Ok(())
            })
        }
        _ => Err(unsupported(format!("aggregation \"{}\"", a.op))),
    }
}

/// The labels of the group a series belongs to: `by` keeps the listed
/// labels, `without` drops them and the metric name.
fn group_key(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        labels::drop_with_name(l, grouping)
    } else if grouping.is_empty() {
        Vec::new()
    } else {
        labels::keep(l, grouping)
    }
}

fn push_group(
    b: &mut Builder,
    out_ids: &mut [Option<usize>],
    group_labels: &[Labels],
    gid: usize,
    ts: i64,
    v: f64,
) -> Result<()> {
    let id = *out_ids[gid].get_or_insert_with(|| b.id(&group_labels[gid]));
    b.push(id, ts, v)
}

/// Running state of one group at one step, as Prometheus keeps it.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: usize,
}

impl Acc {
    fn first(op: TokenId, v: f64) -> Acc {
        let value = match op {
            T_STDDEV | T_STDVAR => 0.0,
            T_GROUP => 1.0,
            _ => v,
        };
        Acc {
            value,
            mean: v,
            count: 1,
        }
    }

    fn add(&mut self, op: TokenId, v: f64) {
        match op {
            T_SUM => self.value += v,
            T_AVG => {
                self.count += 1;
                if self.mean.is_infinite() {
                    // Inf + x - Inf would be NaN; the mean is already right.
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                let n = self.count as f64;
                self.mean += v / n - self.mean / n;
            }
            T_MAX if self.value < v || self.value.is_nan() => self.value = v,
            T_MIN if self.value > v || self.value.is_nan() => self.value = v,
            T_COUNT => self.count += 1,
            T_STDDEV | T_STDVAR => {
                self.count += 1;
                let delta = v - self.mean;
                self.mean += delta / self.count as f64;
                self.value += delta * (v - self.mean);
            }
            _ => {}
        }
    }

    fn result(&self, op: TokenId) -> f64 {
        match op {
            T_AVG => self.mean,
            T_COUNT => self.count as f64,
            T_STDVAR => self.value / self.count as f64,
            T_STDDEV => (self.value / self.count as f64).sqrt(),
            _ => self.value,
        }
    }
}

/// Go's `%v` of a float64 (`strconv 'g'`, shortest): used in messages.
fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format_decimal(v)
    }
}

/// Go's `int64(f)` on amd64 after Prometheus' range check.
fn k_of(f: f64) -> Result<i64> {
    if !(-TWO_POW_63..=TWO_POW_63).contains(&f) {
        return Err(exec(format!("Scalar value {} overflows int64", go_g(f))));
    }
    Ok(go_float_to_int(f))
}

/// `topk` (`top`) or `bottomk`: the k largest (smallest) samples per
/// group, selected with Go's binary heap so ties resolve as in Prometheus
/// (the earlier series stays), output largest (smallest) first.
fn select_k(
    ctx: &Ctx,
    input: &[StepSeries],
    g: Grid,
    series_group: &[usize],
    groups: usize,
    k: &[f64],
    top: bool,
) -> Result<Vec<StepSeries>> {
    let mut heaps: Vec<Vec<(usize, f64)>> = vec![Vec::new(); groups];
    let mut out_ids: Vec<Option<usize>> = vec![None; input.len()];
    let mut order = Vec::new();
    // The heap's order: the root is the sample to evict first. NaN is
    // always "less" (Prometheus' heaps put NaN first).
    let less = |a: f64, b: f64| {
        if top {
            a.is_nan() || a < b
        } else {
            a.is_nan() || a > b
        }
    };
    per_step(ctx, input, g, |i, ts, at, b| {
        let k = k_of(k[i])?;
        if k < 1 {
            return Ok(());
        }
        let k = k as usize;
        order.clear();
        for &(idx, v) in at {
            let gid = series_group[idx];
            let heap = &mut heaps[gid];
            if heap.is_empty() {
                order.push(gid);
                heap.push((idx, v));
                continue;
            }
            let root = heap[0].1;
            let replace = if top { root < v } else { root > v };
            if heap.len() < k || replace || root.is_nan() {
                if heap.len() == k {
                    if k == 1 {
                        heap[0] = (idx, v);
                        continue;
                    }
                    heap_pop(heap, &less);
                }
                heap_push(heap, (idx, v), &less);
            }
        }
        for &gid in &order {
            let heap = &mut heaps[gid];
            if heap.len() > 1 {
                go_sort_by_value(heap, |x| x.1, top);
            }
            for &(idx, v) in heap.iter() {
                let id = *out_ids[idx].get_or_insert_with(|| b.id(&input[idx].labels));
                b.push(id, ts, v)?;
            }
            heap.clear();
        }
        Ok(())
    })
}

/// Go's `container/heap.Push`.
fn heap_push(h: &mut Vec<(usize, f64)>, x: (usize, f64), less: &impl Fn(f64, f64) -> bool) {
    h.push(x);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap.Pop`, discarding the root.
fn heap_pop(h: &mut Vec<(usize, f64)>, less: &impl Fn(f64, f64) -> bool) {
    let n = h.len() - 1;
    h.swap(0, n);
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(h[j2].1, h[j1].1) {
            j = j2;
        }
        if !less(h[j].1, h[i].1) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    h.pop();
}

/// `count_values("label", v)`: counts samples per value, the value becoming
/// a label formatted as Go's `FormatFloat(v, 'f', -1)`.
fn count_values(
    ctx: &Ctx,
    input: &[StepSeries],
    g: Grid,
    value_label: &str,
    mut grouping: Vec<String>,
    without: bool,
) -> Result<Vec<StepSeries>> {
    if !without {
        grouping.push(value_label.to_string());
        grouping.sort();
    }
    let mut groups: Vec<(Labels, usize)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    per_step(ctx, input, g, |_, ts, at, b| {
        groups.clear();
        index.clear();
        for &(idx, v) in at {
            let mut metric = input[idx].labels.clone();
            labels::set(&mut metric, value_label, &format_decimal(v));
            let key = group_key(&metric, &grouping, without);
            match index.get(&key) {
                Some(&gi) => groups[gi].1 += 1,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, 1));
                }
            }
        }
        for (key, count) in groups.drain(..) {
            let id = b.id_owned(key);
            b.push(id, ts, count as f64)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_heap_keeps_the_earlier_of_equal_values() {
        let less = |a: f64, b: f64| a.is_nan() || a < b;
        let mut h = Vec::new();
        for (i, v) in [3.0, 1.0, 2.0, 1.0].into_iter().enumerate() {
            heap_push(&mut h, (i, v), &less);
        }
        assert_eq!(h[0], (1, 1.0), "the first 1.0 is the root");
        heap_pop(&mut h, &less);
        assert_eq!(h[0], (3, 1.0));
        heap_pop(&mut h, &less);
        assert_eq!(h[0].1, 2.0);
    }

    #[test]
    fn k_is_checked_like_prometheus() {
        assert_eq!(k_of(2.9).unwrap(), 2);
        assert_eq!(k_of(-0.5).unwrap(), 0);
        assert_eq!(
            k_of(f64::NAN).unwrap_err().to_string(),
            "Scalar value NaN overflows int64"
        );
        assert_eq!(
            k_of(1e19).unwrap_err().to_string(),
            "Scalar value 1e+19 overflows int64"
        );
    }

    #[test]
    fn stddev_uses_welford() {
        let mut acc = Acc::first(T_STDDEV, 2.0);
        for v in [4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            acc.add(T_STDDEV, v);
        }
        assert!((acc.result(T_STDDEV) - 2.0).abs() < 1e-12);
        assert!((acc.result(T_STDVAR) - 4.0).abs() < 1e-12);
    }
}
