//! Quantiles: over classic histogram buckets (`histogram_quantile`) and over
//! plain values (`quantile`, `quantile_over_time`).

/// One classic histogram bucket: observations `<= upper_bound`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// The `q`-quantile of a classic histogram, interpolating linearly inside
/// the bucket where the rank falls (Prometheus' `bucketQuantile`):
///
/// - `q < 0` is -Inf, `q > 1` is +Inf, NaN is NaN;
/// - without a `+Inf` bucket, fewer than two buckets or no observations: NaN;
/// - buckets with the same bound are merged and counts forced monotonic
///   (scrapes are not atomic, a higher bucket may lag a lower one);
/// - a rank in the `+Inf` bucket gives the highest finite bound; a rank in
///   the first bucket interpolates from 0, unless its bound is `<= 0`.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets
        .last()
        .is_none_or(|b| b.upper_bound != f64::INFINITY)
    {
        return f64::NAN;
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (excluding +Inf) whose cumulative count reaches the rank.
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.count < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut max = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

/// The `q`-quantile of `values` (Prometheus' `quantile`): the weighted
/// average of the two values around rank `q * (n - 1)`. Sorts `values`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Prometheus sorts NaN first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).expect("not NaN"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect()
    }

    #[test]
    fn bucket_quantile_interpolates_inside_the_bucket() {
        // 100 observations: 10 <= 0.1, 60 <= 0.5, 90 <= 1, all <= +Inf.
        let mut bs = b(&[
            (1.0, 90.0),
            (0.1, 10.0),
            (f64::INFINITY, 100.0),
            (0.5, 60.0),
        ]);
        // rank 50 lies in (0.1, 0.5]: 0.1 + 0.4 * (40 / 50)
        assert!((bucket_quantile(0.5, &mut bs.clone()) - 0.42).abs() < 1e-12);
        // rank 5 lies in the first bucket: interpolate from 0.
        assert!((bucket_quantile(0.05, &mut bs.clone()) - 0.05).abs() < 1e-12);
        // rank 95 is in +Inf: the highest finite bound.
        assert_eq!(bucket_quantile(0.95, &mut bs.clone()), 1.0);
        assert_eq!(bucket_quantile(-0.1, &mut bs.clone()), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &mut bs), f64::INFINITY);
    }

    #[test]
    fn bucket_quantile_edge_cases() {
        assert!(
            bucket_quantile(0.5, &mut b(&[(1.0, 5.0), (2.0, 10.0)])).is_nan(),
            "no +Inf bucket"
        );
        assert!(
            bucket_quantile(0.5, &mut b(&[(f64::INFINITY, 10.0)])).is_nan(),
            "only +Inf"
        );
        assert!(
            bucket_quantile(0.5, &mut b(&[(1.0, 0.0), (f64::INFINITY, 0.0)])).is_nan(),
            "no observations"
        );
        // Non-monotonic counts are raised to the running maximum: 1 -> 8.
        let mut bs = b(&[(0.5, 8.0), (1.0, 6.0), (f64::INFINITY, 10.0)]);
        // rank 9 lies in +Inf after fixing? counts 8, 8, 10: rank 9 > 8 -> +Inf bucket.
        assert_eq!(bucket_quantile(0.9, &mut bs), 1.0);
        // A first bucket with a negative bound answers that bound.
        assert_eq!(
            bucket_quantile(0.1, &mut b(&[(-1.0, 5.0), (f64::INFINITY, 10.0)])),
            -1.0
        );
        // Duplicate bounds are merged.
        let mut dup = b(&[(1.0, 2.0), (1.0, 2.0), (f64::INFINITY, 8.0)]);
        assert!((bucket_quantile(0.25, &mut dup) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn quantile_weights_neighbours() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, &mut [3.0, 1.0]), 1.0);
        assert_eq!(quantile(1.0, &mut [3.0, 1.0]), 3.0);
        assert!((quantile(0.9, &mut [1.0, 2.0, 3.0, 4.0, 5.0]) - 4.6).abs() < 1e-12);
        assert!(quantile(0.5, &mut []).is_nan());
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
    }
}
