//! `ewma` detector: how many standard deviations a point lies from an
//! exponentially weighted moving mean, with an exponentially weighted
//! variance (the bands `mean ± threshold · σ`).
//!
//! Unlike `zscore`'s window, the weights fade smoothly, so the model costs
//! three numbers whatever its memory, and recent points count most.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `alpha` | 0.05 | weight of each new point, 0 < alpha ≤ 1 (larger forgets faster) |
//! | `half_life` | — | instead of `alpha`: points after which a point's weight has halved (`alpha = 1 − 2^(−1/half_life)`; the default alpha is a half-life of about 13.5 points) |
//! | `threshold` | 3.5 | the score from which a point is anomalous (the sensitivity) |
//! | `min_points` | 30 | points seen before the first score (at least 2) |
//! | `adapt_on_anomaly` | false | whether an anomalous point updates the model with its full weight |
//!
//! Score: `|x − mean| / σ`, computed before the point updates the model;
//! NaN until `min_points` have been seen. The first points are averaged
//! evenly (weight `max(alpha, 1/n)`), so the estimates are sound as soon as
//! scoring starts. A flat model (σ 0) scores 0 for a point equal to its
//! mean and `threshold × 2` for any other, as in `zscore`. Non-finite values
//! are ignored (their verdict is NaN).
//!
//! Anomalous points: by default (`adapt_on_anomaly: false`) a point at or
//! beyond the band updates the model as if it lay on the band edge (its
//! residual is clipped to `± threshold · σ`, a Huber-type robust update).
//! A single spike then moves the mean by at most `alpha · threshold · σ`
//! and widens σ by a few percent instead of many-fold, so the next spike is
//! still seen. A lasting level shift is still learnt: every clipped point
//! pulls the mean towards the new level and widens σ a little (about 24 %
//! a point with the defaults), until the points fall inside the bands
//! again. A model that is still flat takes every point fully (clipping at
//! a zero-width band would freeze it). With `adapt_on_anomaly: true`
//! every point updates the model fully.
//!
//! State: the point count, the mean and the variance (25 bytes).

use lookout_plugin_sdk::detect::{Point, StateReader, StateWriter, Verdict, check_threshold};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes.
const STATE_VERSION: u8 = 1;
const DEFAULT_ALPHA: f64 = 0.05;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    alpha: Option<f64>,
    half_life: Option<f64>,
    threshold: f64,
    min_points: u64,
    adapt_on_anomaly: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            alpha: None,
            half_life: None,
            threshold: 3.5,
            min_points: 30,
            adapt_on_anomaly: false,
        }
    }
}

impl Config {
    /// Validates the fields and resolves `alpha` from `half_life`.
    fn check(self) -> Result<Settings, PluginError> {
        let alpha = match (self.alpha, self.half_life) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config("give `alpha` or `half_life`, not both"));
            }
            (Some(alpha), None) => {
                if !(alpha > 0.0 && alpha <= 1.0) {
                    return Err(PluginError::config(format!(
                        "`alpha` must be above 0 and at most 1, not {alpha}"
                    )));
                }
                alpha
            }
            (None, Some(half_life)) => {
                if !(half_life.is_finite() && half_life > 0.0) {
                    return Err(PluginError::config(format!(
                        "`half_life` must be a positive number of points, not {half_life}"
                    )));
                }
                1.0 - 0.5_f64.powf(1.0 / half_life)
            }
            (None, None) => DEFAULT_ALPHA,
        };
        check_threshold(self.threshold)?;
        if self.min_points < 2 {
            return Err(PluginError::config(format!(
                "`min_points` must be at least 2, not {}",
                self.min_points
            )));
        }
        Ok(Settings {
            alpha,
            threshold: self.threshold,
            min_points: self.min_points,
            adapt_on_anomaly: self.adapt_on_anomaly,
        })
    }
}

/// The checked configuration.
struct Settings {
    alpha: f64,
    threshold: f64,
    min_points: u64,
    adapt_on_anomaly: bool,
}

struct Ewma {
    settings: Settings,
    /// Points learnt from (saturating); decides warm-up and early weights.
    count: u64,
    mean: f64,
    variance: f64,
}

impl Ewma {
    /// Below this, a deviation is rounding error of values this large.
    fn negligible(&self) -> f64 {
        f64::EPSILON * self.mean.abs().max(1.0)
    }

    fn score(&self, value: f64) -> f64 {
        let deviation = self.variance.sqrt();
        let distance = (value - self.mean).abs();
        if deviation > self.negligible() {
            distance / deviation
        } else if distance > self.negligible() {
            self.settings.threshold * 2.0
        } else {
            0.0
        }
    }

    fn learn(&mut self, value: f64, anomalous: bool) {
        // Even weights until 1/n falls below alpha: the first point is the
        // mean, the first two give their population variance.
        let weight = self.settings.alpha.max(1.0 / (self.count as f64 + 1.0));
        let mut residual = value - self.mean;
        let deviation = self.variance.sqrt();
        if anomalous && !self.settings.adapt_on_anomaly && deviation > self.negligible() {
            let edge = self.settings.threshold * deviation;
            residual = residual.clamp(-edge, edge);
        }
        self.mean += weight * residual;
        // West's / Finch's incremental exponentially weighted variance.
        self.variance = (1.0 - weight) * (self.variance + weight * residual * residual);
        self.count = self.count.saturating_add(1);
    }
}

impl Detector for Ewma {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("ewma").description(
            "Exponentially weighted mean and variance: distance from the moving mean in moving \
             standard deviations; anomalous points are learnt clipped to the band edge.",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        Ok(Ewma {
            settings: config.check()?,
            count: 0,
            mean: 0.0,
            variance: 0.0,
        })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        let verdict = if self.count >= self.settings.min_points {
            Verdict::scored(self.score(point.value), self.settings.threshold)
        } else {
            Verdict::LEARNING
        };
        self.learn(point.value, verdict.anomalous);
        verdict
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state.u64(self.count).f64(self.mean).f64(self.variance);
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = Ewma::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        detector.count = reader.u64()?;
        detector.mean = reader.f64()?;
        detector.variance = reader.f64()?;
        reader.finish()?;
        if !(detector.mean.is_finite() && detector.variance.is_finite() && detector.variance >= 0.0)
        {
            return Err(PluginError::permanent(
                "saved state holds a non-finite mean or variance",
            ));
        }
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(Ewma);

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: i64, value: f64) -> Point {
        Point {
            timestamp_ms: i * 15_000,
            value,
        }
    }

    fn detector(alpha: f64, min_points: u64, adapt_on_anomaly: bool) -> Ewma {
        Ewma::create(Config {
            alpha: Some(alpha),
            threshold: 3.0,
            min_points,
            adapt_on_anomaly,
            ..Config::default()
        })
        .unwrap()
    }

    /// 10 plus a repeating ±0.5 pattern: σ about 0.33.
    fn calm(i: usize) -> f64 {
        10.0 + [0.0, 0.3, -0.2, 0.5, -0.4, 0.1, -0.1, 0.2, -0.5, 0.1][i % 10]
    }

    #[test]
    fn hand_computed_updates_clip_anomalies_unless_told_to_adapt() {
        for (adapt, mean, variance) in [(false, 2.5, 2.75), (true, 3.0, 4.5)] {
            let mut d = detector(0.5, 2, adapt);
            // 0 is the mean; 2 (weight 1/2) gives mean 1, variance ½·(0 + ½·2²) = 1.
            assert!(d.observe(point(0, 0.0)).score.is_nan());
            assert!(d.observe(point(1, 2.0)).score.is_nan());
            assert_eq!((d.mean, d.variance), (1.0, 1.0));
            // 5 is 4σ away: anomalous at 3.
            let v = d.observe(point(2, 5.0));
            assert_eq!(v.score, 4.0);
            assert!(v.anomalous);
            // Clipped to the band edge, residual 3: mean 1 + ½·3 = 2.5,
            // variance ½·(1 + ½·3²) = 2.75. Adapting, residual 4: mean 3,
            // variance ½·(1 + ½·4²) = 4.5.
            assert_eq!((d.mean, d.variance), (mean, variance), "adapt {adapt}");
        }
    }

    #[test]
    fn half_life_sets_alpha() {
        let d = Ewma::create(Config {
            half_life: Some(1.0),
            ..Config::default()
        })
        .unwrap();
        assert_eq!(d.settings.alpha, 0.5);
        let d = Ewma::create(Config::default()).unwrap();
        assert_eq!(d.settings.alpha, DEFAULT_ALPHA);
    }

    #[test]
    fn flags_spikes_only_and_a_spike_does_not_hide_the_next() {
        let mut d = Ewma::create(Config::default()).unwrap();
        let mut verdicts = Vec::new();
        for i in 0..300 {
            let spike = match i {
                100 => 90.0,
                105 => 2.0,
                200 => -3.0,
                _ => 0.0,
            };
            verdicts.push(d.observe(point(i as i64, calm(i) + spike)));
        }
        assert!(verdicts[..30].iter().all(|v| v.score.is_nan()));
        let flagged: Vec<usize> = (0..300).filter(|&i| verdicts[i].anomalous).collect();
        assert_eq!(flagged, vec![100, 105, 200]);

        // Adapting to the big spike widens σ so much that +2 passes unseen.
        let mut d = Ewma::create(Config {
            adapt_on_anomaly: true,
            ..Config::default()
        })
        .unwrap();
        let flagged: Vec<usize> = (0..120)
            .filter(|&i| {
                let spike = [(100, 90.0), (105, 2.0)]
                    .iter()
                    .find(|s| s.0 == i)
                    .map_or(0.0, |s| s.1);
                d.observe(point(i as i64, calm(i) + spike)).anomalous
            })
            .collect();
        assert_eq!(flagged, vec![100]);
    }

    #[test]
    fn a_level_shift_is_reported_then_learnt() {
        let mut d = Ewma::create(Config::default()).unwrap();
        let flagged: Vec<usize> = (0..600)
            .filter(|&i| {
                let shift = if i >= 200 { 5.0 } else { 0.0 };
                d.observe(point(i as i64, calm(i) + shift)).anomalous
            })
            .collect();
        // The shift (15σ) is reported at once, for a while, then not.
        assert_eq!(flagged[0], 200);
        let last = *flagged.last().unwrap();
        assert!(last < 260, "still flagged at {last}: {flagged:?}");
        assert!((d.mean - 15.0).abs() < 0.5, "mean {}", d.mean);
    }

    #[test]
    fn a_flat_series_that_moves_is_reported_and_learnt() {
        let mut d = detector(0.1, 5, false);
        for i in 0..10 {
            d.observe(point(i, 7.0));
        }
        assert_eq!(d.observe(point(10, 7.0)).score, 0.0);
        let v = d.observe(point(11, 7.5));
        assert_eq!(v.score, 6.0);
        assert!(v.anomalous);
        assert!(d.mean > 7.0 && d.variance > 0.0);
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut d = detector(0.1, 2, false);
        for i in 0..5 {
            d.observe(point(i, i as f64));
        }
        let before = d.save();
        assert!(d.observe(point(5, f64::NAN)).score.is_nan());
        assert!(!d.observe(point(6, f64::NEG_INFINITY)).anomalous);
        assert_eq!(d.save(), before);
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let mut a = Ewma::create(Config::default()).unwrap();
        for i in 0..50 {
            a.observe(point(i, (i as f64 * 0.7).sin()));
        }
        let mut b = Ewma::restore(Config::default(), &a.save()).unwrap();
        for i in 50..80 {
            let p = point(i, (i as f64 * 0.7).sin() + if i == 70 { 5.0 } else { 0.0 });
            assert_eq!(a.observe(p).score.to_bits(), b.observe(p).score.to_bits());
        }
        assert_eq!(a.save(), b.save());
        assert!(Ewma::restore(Config::default(), &[9, 0]).is_err());
        assert!(Ewma::restore(Config::default(), &a.save()[..20]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |c: Config| match Ewma::create(c) {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error"),
        };
        let with = |alpha, half_life| Config {
            alpha,
            half_life,
            ..Config::default()
        };
        assert!(err(with(Some(0.0), None)).contains("`alpha`"));
        assert!(err(with(Some(1.5), None)).contains("`alpha`"));
        assert!(err(with(None, Some(-3.0))).contains("`half_life`"));
        assert!(err(with(Some(0.1), Some(3.0))).contains("not both"));
        assert!(
            err(Config {
                threshold: 0.0,
                ..Config::default()
            })
            .contains("`threshold`")
        );
        assert!(
            err(Config {
                min_points: 1,
                ..Config::default()
            })
            .contains("`min_points`")
        );
        assert!(matches!(
            lookout_plugin_sdk::parse_config::<Config>(r#"{"apha": 0.1}"#),
            Err(PluginError::Config(m)) if m.contains("apha")
        ));
    }

    /// `cargo test --release -p lookout-plugin-ewma -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let series = |i: i64| 100.0 + (i as f64 * 0.01).sin() * 10.0 + ((i * 7919) % 13) as f64;
        let mut d = Ewma::create(Config::default()).unwrap();
        for i in 0..1000 {
            d.observe(point(i, series(i)));
        }
        let mut state = d.save();
        let rounds = 1_000_000;
        let started = std::time::Instant::now();
        for i in 1000..1000 + rounds {
            let mut d = Ewma::restore(Config::default(), &state).unwrap();
            std::hint::black_box(d.observe(point(i, series(i))));
            state = d.save();
        }
        let per_batch = started.elapsed() / rounds as u32;
        let mut d = Ewma::create(Config::default()).unwrap();
        let points: Vec<Point> = (0..1_000_000).map(|i| point(i, series(i))).collect();
        let started = std::time::Instant::now();
        for &p in &points {
            std::hint::black_box(d.observe(p));
        }
        let per_point = started.elapsed() / points.len() as u32;
        println!(
            "ewma: state {} bytes; restore+observe(1)+save {per_batch:?}; observe {per_point:?}/point",
            state.len()
        );
    }
}
