//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`
//! and the set operators, between scalars and vectors, with vector matching
//! (`on`, `ignoring`, `group_left`, `group_right`) and Prometheus' errors for
//! ambiguous matches.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::Labels;
use crate::error::{exec, unsupported};
use crate::eval::{Builder, Ctx, Grid, Result, StepSeries, constant};
use crate::functions::{map_series, per_step_pair};
use crate::labels::{self, METRIC_NAME};

pub(crate) fn eval(ctx: &Ctx, b: &BinaryExpr, g: Grid) -> Result<Vec<StepSeries>> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    match (b.lhs.value_type(), b.rhs.value_type()) {
        (ValueType::Scalar, ValueType::Scalar) => {
            let l = ctx.eval_scalar(&b.lhs, g)?;
            let r = ctx.eval_scalar(&b.rhs, g)?;
            let mut out = constant(0.0, g);
            for (i, p) in out.points.iter_mut().enumerate() {
                p.1 = scalar_binop(op, l[i], r[i])?;
            }
            Ok(vec![out])
        }
        (ValueType::Vector, ValueType::Scalar) => {
            let l = ctx.eval(&b.lhs, g)?;
            let r = ctx.eval_scalar(&b.rhs, g)?;
            vector_scalar(ctx, op, &l, &r, false, return_bool, g)
        }
        (ValueType::Scalar, ValueType::Vector) => {
            let l = ctx.eval_scalar(&b.lhs, g)?;
            let r = ctx.eval(&b.rhs, g)?;
            vector_scalar(ctx, op, &r, &l, true, return_bool, g)
        }
        (ValueType::Vector, ValueType::Vector) => {
            let l = ctx.eval(&b.lhs, g)?;
            let r = ctx.eval(&b.rhs, g)?;
            let matching = Matching::of(b);
            match op {
                T_LAND | T_LOR | T_LUNLESS => set_operation(ctx, op, &l, &r, &matching, g),
                _ => vector_vector(ctx, op, &l, &r, &matching, return_bool, g),
            }
        }
        (lt, rt) => Err(exec(format!("binary expression between {lt} and {rt}"))),
    }
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name: the result is no longer that metric.
fn drops_metric_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD)
}

fn scalar_binop(op: TokenId, l: f64, r: f64) -> Result<f64> {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    Ok(match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => l.powf(r),
        T_MOD => l % r,
        T_EQLC => b(l == r),
        T_NEQ => b(l != r),
        T_GTR => b(l > r),
        T_LSS => b(l < r),
        T_GTE => b(l >= r),
        T_LTE => b(l <= r),
        T_ATAN2 => l.atan2(r),
        _ => return Err(unsupported(format!("operator {op} between scalars"))),
    })
}

/// The value of `l op r` between vector elements and whether it is kept
/// (comparisons keep the left value when true).
fn element_binop(op: TokenId, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (scalar_binop(op, l, r)?, true),
    })
}

fn vector_scalar(
    ctx: &Ctx,
    op: TokenId,
    vector: &[StepSeries],
    scalar: &[f64],
    swap: bool,
    return_bool: bool,
    g: Grid,
) -> Result<Vec<StepSeries>> {
    let drop_name = drops_metric_name(op) || return_bool;
    let mut failure = None;
    let out = map_series(
        ctx,
        vector,
        g,
        |l| {
            Ok(if drop_name {
                labels::without_name(l)
            } else {
                l.clone()
            })
        },
        |i, v| {
            let (l, r) = if swap { (scalar[i], v) } else { (v, scalar[i]) };
            let (mut value, mut keep) = match element_binop(op, l, r) {
                Ok(x) => x,
                Err(e) => {
                    failure = Some(e);
                    return None;
                }
            };
            // A comparison always yields the vector's value, whichever side.
            if is_comparison(op) && swap {
                value = r;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            keep.then_some(value)
        },
    )?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// How two vectors' elements are paired.
struct Matching {
    card: VectorMatchCardinality,
    /// `on(..)` rather than `ignoring(..)`.
    on: bool,
    labels: Vec<String>,
    /// `group_left(..)`/`group_right(..)` labels copied from the "one" side.
    include: Vec<String>,
}

impl Matching {
    fn of(b: &BinaryExpr) -> Matching {
        let Some(m) = &b.modifier else {
            return Matching {
                card: VectorMatchCardinality::OneToOne,
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            };
        };
        let (on, labels) = match &m.matching {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        let include = m
            .card
            .labels()
            .map(|l| l.labels.clone())
            .unwrap_or_default();
        Matching {
            card: m.card.clone(),
            on,
            labels,
            include,
        }
    }

    /// The labels two elements must share to match; also what Prometheus'
    /// `MatchLabels` reports in errors.
    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            labels::keep(l, &self.labels)
        } else {
            labels::drop_with_name(l, &self.labels)
        }
    }
}

/// Interns signatures so steps compare integers.
fn signatures(m: &Matching, sides: [&[StepSeries]; 2]) -> (Vec<Vec<usize>>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut all: Vec<Labels> = Vec::new();
    let ids = sides
        .iter()
        .map(|side| {
            side.iter()
                .map(|s| {
                    let sig = m.signature(&s.labels);
                    let next = all.len();
                    *index.entry(sig).or_insert_with_key(|k| {
                        all.push(k.clone());
                        next
                    })
                })
                .collect()
        })
        .collect();
    (ids, all)
}

fn set_operation(
    ctx: &Ctx,
    op: TokenId,
    lhs: &[StepSeries],
    rhs: &[StepSeries],
    m: &Matching,
    g: Grid,
) -> Result<Vec<StepSeries>> {
    let (sigs, all) = signatures(m, [lhs, rhs]);
    let (lsig, rsig) = (&sigs[0], &sigs[1]);
    // Output ids of lhs series, then of rhs series.
    let split = lhs.len();
    let mut ids: Vec<Option<usize>> = vec![None; lhs.len() + rhs.len()];
    let mut mark: Vec<usize> = vec![usize::MAX; all.len()];
    per_step_pair(ctx, lhs, rhs, g, |i, ts, l, r, b| {
        let mut emit = |idx: usize, v: f64, b: &mut Builder| -> Result<()> {
            let labels = if idx < split {
                &lhs[idx].labels
            } else {
                &rhs[idx - split].labels
            };
            let id = *ids[idx].get_or_insert_with(|| b.id(labels));
            b.push(id, ts, v)
        };
        match op {
            T_LAND => {
                if l.is_empty() || r.is_empty() {
                    return Ok(());
                }
                for &(idx, _) in r {
                    mark[rsig[idx]] = i;
                }
                for &(idx, v) in l {
                    if mark[lsig[idx]] == i {
                        emit(idx, v, b)?;
                    }
                }
            }
            T_LOR => {
                for &(idx, v) in l {
                    mark[lsig[idx]] = i;
                    emit(idx, v, b)?;
                }
                for &(idx, v) in r {
                    if l.is_empty() || mark[rsig[idx]] != i {
                        emit(idx + split, v, b)?;
                    }
                }
            }
            _ => {
                if !l.is_empty() && !r.is_empty() {
                    for &(idx, _) in r {
                        mark[rsig[idx]] = i;
                    }
                }
                for &(idx, v) in l {
                    if r.is_empty() || mark[lsig[idx]] != i {
                        emit(idx, v, b)?;
                    }
                }
            }
        }
        Ok(())
    })
}

fn vector_vector(
    ctx: &Ctx,
    op: TokenId,
    lhs: &[StepSeries],
    rhs: &[StepSeries],
    m: &Matching,
    return_bool: bool,
    g: Grid,
) -> Result<Vec<StepSeries>> {
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    // Work as many-to-one: for group_right the right side is the "many".
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let (sigs, all) = signatures(m, [many, one]);
    let (many_sig, one_sig) = (&sigs[0], &sigs[1]);

    // Per signature, the one-side element seen at the current step.
    let mut one_at: Vec<(usize, usize, f64)> = vec![(usize::MAX, 0, 0.0); all.len()];
    let mut matched_at: Vec<usize> = vec![usize::MAX; all.len()];
    let mut inserted: HashSet<(usize, usize)> = HashSet::new();
    let mut result_ids: HashMap<(usize, usize), usize> = HashMap::new();
    let one_side = if one_to_many { "left" } else { "right" };

    per_step_pair(ctx, many, one, g, |i, ts, many_now, one_now, b| {
        if many_now.is_empty() || one_now.is_empty() {
            return Ok(());
        }
        for &(oi, v) in one_now {
            let sig = one_sig[oi];
            if one_at[sig].0 == i {
                let previous = &one[one_at[sig].1].labels;
                return Err(exec(format!(
                    "found duplicate series for the match group {} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels::to_string(&all[sig]),
                    labels::to_string(&one[oi].labels),
                    labels::to_string(previous),
                )));
            }
            one_at[sig] = (i, oi, v);
        }
        inserted.clear();
        for &(mi, v) in many_now {
            let sig = many_sig[mi];
            let (seen, oi, ov) = one_at[sig];
            if seen != i {
                continue;
            }
            let (l, r) = if one_to_many { (ov, v) } else { (v, ov) };
            let (mut value, keep) = element_binop(op, l, r)?;
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let id = match result_ids.get(&(mi, oi)) {
                Some(&id) => id,
                None => {
                    let mut metric = result_labels(&many[mi].labels, &one[oi].labels, op, m);
                    if return_bool {
                        labels::del(&mut metric, METRIC_NAME);
                    }
                    let id = b.id_owned(metric);
                    result_ids.insert((mi, oi), id);
                    id
                }
            };
            if one_to_one {
                if matched_at[sig] == i {
                    return Err(exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                matched_at[sig] = i;
            } else if !inserted.insert((sig, id)) {
                return Err(exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            b.push(id, ts, value)?;
        }
        Ok(())
    })
}

/// The labels of a matched pair (Prometheus' `resultMetric`): the "many"
/// side's, without the metric name for arithmetic, reduced to the `on`
/// labels (or without the `ignoring` ones) for one-to-one matching, plus
/// the `group_x` labels taken from the "one" side.
fn result_labels(many: &Labels, one: &Labels, op: TokenId, m: &Matching) -> Labels {
    let mut l = many.clone();
    if drops_metric_name(op) {
        labels::del(&mut l, METRIC_NAME);
    }
    if matches!(m.card, VectorMatchCardinality::OneToOne) {
        l = if m.on {
            labels::keep(&l, &m.labels)
        } else {
            labels::drop(&l, &m.labels)
        };
    }
    for name in &m.include {
        let v = labels::get(one, name).to_string();
        labels::set(&mut l, name, &v);
    }
    l
}
