//! `mad` detector: how far a point lies from the median of the points just
//! before it, in robust standard deviations (the modified z-score of
//! Iglewicz and Hoaglin).
//!
//! The median and the median absolute deviation (MAD) ignore the outliers
//! that inflate a mean and a standard deviation, so one spike neither hides
//! the next one nor widens the band for the whole window as it does for
//! `zscore`. A level shift is reported until half the window has moved to
//! the new level, then the median jumps there at once.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `window` | 120 | points the median and MAD are taken over (2–100,000) |
//! | `threshold` | 3.5 | the score from which a point is anomalous (the sensitivity; Iglewicz–Hoaglin recommend 3.5) |
//! | `min_points` | 30 | points seen before the first score (2..=`window`) |
//!
//! Score: `|x − median| / (1.4826 · MAD)` of the previous `window` points
//! (1.4826 · MAD estimates the standard deviation of normal data); NaN until
//! `min_points` have been seen. When more than half the window holds one
//! value the MAD is 0; the score then uses the mean absolute deviation
//! around the median, `|x − median| / (1.2533 · meanAD)` (1.2533 · meanAD
//! also estimates a normal standard deviation), so a mostly constant series
//! with occasional moves still gets graded scores. A completely flat window
//! scores 0 for a point equal to it and `threshold × 2` for any other, as in
//! `zscore`. Non-finite values are ignored (their verdict is NaN).
//!
//! Cost: a sorted copy of the window is kept up to date by binary-search
//! insert and remove, and the MAD is read from it in `O(log window)`
//! (the deviations left and right of the median form two sorted runs).
//!
//! State: the last `window` values (8 bytes each, 969 bytes by default);
//! the sorted copy is rebuilt on restore.

use std::collections::VecDeque;

use lookout_plugin_sdk::detect::{
    Point, StateReader, StateWriter, Verdict, check_threshold, check_window,
};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes.
const STATE_VERSION: u8 = 1;
const MAX_WINDOW: usize = 100_000;
/// 1 / Φ⁻¹(3/4): turns the MAD of normal data into its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;
/// √(π/2): turns the mean absolute deviation of normal data into its
/// standard deviation.
const MEAN_AD_TO_SIGMA: f64 = 1.253_314;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    window: usize,
    threshold: f64,
    min_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 120,
            threshold: 3.5,
            min_points: 30,
        }
    }
}

impl Config {
    fn check(self) -> Result<Config, PluginError> {
        check_window(self.window, self.min_points, MAX_WINDOW)?;
        check_threshold(self.threshold)?;
        Ok(self)
    }
}

struct Mad {
    config: Config,
    /// The window in arrival order, so the oldest value can be evicted.
    recent: VecDeque<f64>,
    /// The same values in ascending order, for the median and the MAD.
    sorted: Vec<f64>,
}

impl Mad {
    fn median(&self) -> f64 {
        let n = self.sorted.len();
        if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0
        }
    }

    /// The median of `|v − median|` over the window.
    fn mad(&self, median: f64) -> f64 {
        let deviations = Deviations::new(&self.sorted, median);
        let n = self.sorted.len();
        if n % 2 == 1 {
            deviations.kth(n / 2)
        } else {
            (deviations.kth(n / 2 - 1) + deviations.kth(n / 2)) / 2.0
        }
    }

    fn mean_absolute_deviation(&self, median: f64) -> f64 {
        let total: f64 = self.sorted.iter().map(|v| (v - median).abs()).sum();
        total / self.sorted.len() as f64
    }

    fn score(&self, value: f64) -> f64 {
        let median = self.median();
        let distance = (value - median).abs();
        // Below this, a deviation is rounding error of values this large.
        let negligible = f64::EPSILON * median.abs().max(1.0);
        let mad = self.mad(median);
        if mad > negligible {
            return distance / (MAD_TO_SIGMA * mad);
        }
        let mean_ad = self.mean_absolute_deviation(median);
        if mean_ad > negligible {
            distance / (MEAN_AD_TO_SIGMA * mean_ad)
        } else if distance > negligible {
            self.config.threshold * 2.0
        } else {
            0.0
        }
    }

    fn insert(&mut self, value: f64) {
        let at = self.sorted.partition_point(|&v| v < value);
        self.sorted.insert(at, value);
    }

    fn remove(&mut self, value: f64) {
        let at = self.sorted.partition_point(|&v| v < value);
        debug_assert_eq!(self.sorted[at], value);
        self.sorted.remove(at);
    }
}

/// The absolute deviations from `median` of a sorted window, as two
/// ascending runs: `left[j] = median − sorted[split − 1 − j]` (values below
/// the median, nearest first) and `right[j] = sorted[split + j] − median`.
struct Deviations<'a> {
    sorted: &'a [f64],
    median: f64,
    split: usize,
}

impl<'a> Deviations<'a> {
    fn new(sorted: &'a [f64], median: f64) -> Self {
        Deviations {
            sorted,
            median,
            split: sorted.partition_point(|&v| v < median),
        }
    }

    fn left(&self, j: usize) -> f64 {
        self.median - self.sorted[self.split - 1 - j]
    }

    fn right(&self, j: usize) -> f64 {
        self.sorted[self.split + j] - self.median
    }

    /// The `k`-th smallest deviation (0-based), by binary search on how
    /// many of the `k + 1` smallest come from the left run.
    fn kth(&self, k: usize) -> f64 {
        let (left_len, right_len) = (self.split, self.sorted.len() - self.split);
        let take = k + 1;
        let (mut lo, mut hi) = (take.saturating_sub(right_len), take.min(left_len));
        loop {
            let from_left = (lo + hi) / 2;
            let from_right = take - from_left;
            if from_left < left_len
                && from_right > 0
                && self.right(from_right - 1) > self.left(from_left)
            {
                lo = from_left + 1;
            } else if from_left > 0
                && from_right < right_len
                && self.left(from_left - 1) > self.right(from_right)
            {
                hi = from_left - 1;
            } else {
                let last_left = (from_left > 0).then(|| self.left(from_left - 1));
                let last_right = (from_right > 0).then(|| self.right(from_right - 1));
                return match (last_left, last_right) {
                    (Some(l), Some(r)) => l.max(r),
                    (Some(v), None) | (None, Some(v)) => v,
                    (None, None) => unreachable!("k + 1 ≥ 1 deviations are taken"),
                };
            }
        }
    }
}

impl Detector for Mad {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("mad").description(
            "Rolling median/MAD: distance from the median of the previous `window` points in \
             robust standard deviations (Iglewicz–Hoaglin modified z-score).",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        let config = config.check()?;
        Ok(Mad {
            recent: VecDeque::with_capacity(config.window),
            sorted: Vec::with_capacity(config.window),
            config,
        })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        // −0.0 + 0.0 is +0.0: one zero keeps the sorted copy's order total.
        let value = point.value + 0.0;
        let verdict = if self.recent.len() >= self.config.min_points {
            Verdict::scored(self.score(value), self.config.threshold)
        } else {
            Verdict::LEARNING
        };
        if self.recent.len() == self.config.window
            && let Some(oldest) = self.recent.pop_front()
        {
            self.remove(oldest);
        }
        self.recent.push_back(value);
        self.insert(value);
        verdict
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state.f64s(self.recent.iter().copied());
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = Mad::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        let values = reader.f64s(MAX_WINDOW)?;
        reader.finish()?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(PluginError::permanent(
                "saved state holds a non-finite value",
            ));
        }
        // A smaller window than when the state was saved keeps the newest.
        let skip = values.len().saturating_sub(detector.config.window);
        detector.recent.extend(values.into_iter().skip(skip));
        detector.sorted.extend(detector.recent.iter().copied());
        detector.sorted.sort_unstable_by(f64::total_cmp);
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(Mad);

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: i64, value: f64) -> Point {
        Point {
            timestamp_ms: i * 15_000,
            value,
        }
    }

    fn detector(window: usize, min_points: usize) -> Mad {
        Mad::create(Config::default_with(window, min_points)).unwrap()
    }

    /// The MAD the slow way: sort the deviations.
    fn brute_force_mad(values: &[f64]) -> f64 {
        let median_of = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        let median = median_of(&mut values.to_vec());
        median_of(&mut values.iter().map(|v| (v - median).abs()).collect())
    }

    #[test]
    fn hand_computed_median_and_mad() {
        // Window 1, 2, 3, 4, 100: median 3, deviations 2, 1, 0, 1, 97 → MAD 1.
        let mut d = detector(5, 5);
        for (i, v) in [1.0, 2.0, 3.0, 4.0, 100.0].into_iter().enumerate() {
            assert!(d.observe(point(i as i64, v)).score.is_nan());
        }
        // 9 is 6 from the median: 6 / 1.4826 = 4.0469…, anomalous at 3.5.
        let v = d.observe(point(5, 9.0));
        assert!((v.score - 6.0 / 1.4826).abs() < 1e-12, "{v:?}");
        assert!(v.anomalous);
        // Window now 2, 3, 4, 100, 9: median 4, deviations 2, 1, 0, 96, 5 → MAD 2;
        // 5 scores 1 / (1.4826 · 2).
        let v = d.observe(point(6, 5.0));
        assert!((v.score - 1.0 / (1.4826 * 2.0)).abs() < 1e-12, "{v:?}");
        assert!(!v.anomalous);
    }

    #[test]
    fn even_window_averages_the_middle_values() {
        // Window 1, 2, 4, 10: median 3, deviations 2, 1, 1, 7 → MAD (1 + 2) / 2 = 1.5.
        let mut d = detector(4, 4);
        for (i, v) in [10.0, 1.0, 4.0, 2.0].into_iter().enumerate() {
            d.observe(point(i as i64, v));
        }
        let v = d.observe(point(4, 6.0));
        assert!((v.score - 3.0 / (1.4826 * 1.5)).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn mad_matches_sorting_the_deviations() {
        // A deterministic pseudo-random walk with ties, both window parities.
        for window in [7, 8, 31, 64] {
            let mut d = detector(window, 2);
            let mut x = 0.5_f64;
            let mut seen = VecDeque::new();
            for i in 0..500 {
                x = (x * 997.0 + 0.123).fract();
                let value = ((x * 20.0).floor() - 10.0) * if i % 50 == 0 { 9.0 } else { 1.0 };
                d.observe(point(i, value));
                seen.push_back(value);
                if seen.len() > window {
                    seen.pop_front();
                }
                let expected = brute_force_mad(&seen.iter().copied().collect::<Vec<_>>());
                assert_eq!(d.mad(d.median()), expected, "window {window}, step {i}");
            }
        }
    }

    #[test]
    fn learns_then_flags_spikes_only_and_one_spike_does_not_mask_the_next() {
        let mut d = detector(60, 20);
        let mut verdicts = Vec::new();
        for i in 0..200 {
            let noise = [0.0, 0.3, -0.2, 0.5, -0.4, 0.1, -0.1, 0.2][i % 8];
            let spike = match i {
                100 => 8.0,
                103 => -6.0,
                150 => 5.0,
                _ => 0.0,
            };
            verdicts.push(d.observe(point(i as i64, 10.0 + noise + spike)));
        }
        assert!(
            verdicts[..20]
                .iter()
                .all(|v| v.score.is_nan() && !v.anomalous)
        );
        let flagged: Vec<usize> = (0..200).filter(|&i| verdicts[i].anomalous).collect();
        assert_eq!(flagged, vec![100, 103, 150]);
    }

    #[test]
    fn a_mostly_constant_series_uses_the_mean_absolute_deviation() {
        // 9 zeros and one 5: median 0, MAD 0, meanAD 0.5.
        let mut d = detector(10, 10);
        for i in 0..10 {
            d.observe(point(i, if i == 4 { 5.0 } else { 0.0 }));
        }
        let v = d.observe(point(10, 1.0));
        assert!((v.score - 1.0 / (1.253_314 * 0.5)).abs() < 1e-12, "{v:?}");
        assert!(!v.anomalous);
    }

    #[test]
    fn a_flat_series_that_moves_is_reported() {
        let mut d = detector(10, 5);
        for i in 0..10 {
            d.observe(point(i, 7.0));
        }
        assert_eq!(d.observe(point(10, 7.0)).score, 0.0);
        let v = d.observe(point(11, 7.5));
        assert_eq!(v.score, 7.0);
        assert!(v.anomalous);
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut d = detector(5, 3);
        for i in 0..5 {
            d.observe(point(i, i as f64));
        }
        let before = d.save();
        assert!(d.observe(point(5, f64::NAN)).score.is_nan());
        assert!(!d.observe(point(6, f64::INFINITY)).anomalous);
        assert_eq!(d.save(), before);
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let mut a = detector(30, 10);
        for i in 0..50 {
            a.observe(point(i, (i as f64 * 0.7).sin()));
        }
        let mut b = Mad::restore(Config::default_with(30, 10), &a.save()).unwrap();
        for i in 50..80 {
            let p = point(i, (i as f64 * 0.7).sin() + if i == 70 { 5.0 } else { 0.0 });
            assert_eq!(a.observe(p).score.to_bits(), b.observe(p).score.to_bits());
        }
        assert_eq!(a.save(), b.save());
        // A smaller window keeps the newest values.
        let c = Mad::restore(Config::default_with(10, 5), &a.save()).unwrap();
        assert_eq!(
            c.recent,
            a.recent.range(20..).copied().collect::<VecDeque<_>>()
        );
        assert!(Mad::restore(Config::default(), &[9, 0]).is_err());
        assert!(Mad::restore(Config::default(), &a.save()[..20]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |c: Config| match Mad::create(c) {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error"),
        };
        assert!(err(Config::default_with(1, 1)).contains("`window`"));
        assert!(err(Config::default_with(10, 11)).contains("`min_points`"));
        assert!(
            err(Config {
                threshold: f64::NAN,
                ..Config::default()
            })
            .contains("`threshold`")
        );
        assert!(matches!(
            lookout_plugin_sdk::parse_config::<Config>(r#"{"windw": 5}"#),
            Err(PluginError::Config(m)) if m.contains("windw")
        ));
    }

    /// `cargo test --release -p lookout-plugin-mad -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let series = |i: i64| 100.0 + (i as f64 * 0.01).sin() * 10.0 + ((i * 7919) % 13) as f64;
        let mut d = detector_default();
        for i in 0..1000 {
            d.observe(point(i, series(i)));
        }
        let mut state = d.save();
        let rounds = 100_000;
        let started = std::time::Instant::now();
        for i in 1000..1000 + rounds {
            let mut d = Mad::restore(Config::default(), &state).unwrap();
            std::hint::black_box(d.observe(point(i, series(i))));
            state = d.save();
        }
        let per_batch = started.elapsed() / rounds as u32;
        let mut d = detector_default();
        let points: Vec<Point> = (0..1_000_000).map(|i| point(i, series(i))).collect();
        let started = std::time::Instant::now();
        for &p in &points {
            std::hint::black_box(d.observe(p));
        }
        let per_point = started.elapsed() / points.len() as u32;
        println!(
            "mad: state {} bytes; restore+observe(1)+save {per_batch:?}; observe {per_point:?}/point",
            state.len()
        );
    }

    fn detector_default() -> Mad {
        Mad::create(Config::default()).unwrap()
    }

    impl Config {
        fn default_with(window: usize, min_points: usize) -> Config {
            Config {
                window,
                min_points,
                ..Config::default()
            }
        }
    }
}
