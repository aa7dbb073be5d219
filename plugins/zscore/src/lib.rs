//! `zscore` detector: how many standard deviations a point lies from the
//! mean of the points just before it (a rolling, windowed z-score).
//!
//! This is the Numenta Anomaly Benchmark's "windowed Gaussian" detector and
//! lookout's baseline: every other detector plugin is scored against it.
//! It reacts to spikes and to the first points of a level shift, and
//! forgets a shift once the window has filled with the new level.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `window` | 120 | points the mean and deviation are taken over (2–100,000) |
//! | `threshold` | 3.0 | the score from which a point is anomalous (the sensitivity) |
//! | `min_points` | 30 | points seen before the first score (2..=`window`) |
//!
//! Score: `|x − mean| / stddev` of the previous `window` points; NaN until
//! `min_points` have been seen. A flat window (deviation 0) scores 0 for a
//! point equal to it and `threshold × 2` for any other, so a constant
//! series that moves is reported.
//!
//! State: the last `window` values (8 bytes each).

use std::collections::VecDeque;

use lookout_plugin_sdk::detect::{
    Point, StateReader, StateWriter, Verdict, check_threshold, check_window,
};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes.
const STATE_VERSION: u8 = 1;
const MAX_WINDOW: usize = 100_000;

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
            threshold: 3.0,
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

struct ZScore {
    config: Config,
    window: VecDeque<f64>,
}

impl ZScore {
    fn score(&self, value: f64) -> f64 {
        let n = self.window.len() as f64;
        let mean = self.window.iter().sum::<f64>() / n;
        let variance = self.window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let deviation = variance.sqrt();
        let distance = (value - mean).abs();
        if deviation > f64::EPSILON * mean.abs().max(1.0) {
            distance / deviation
        } else if distance > f64::EPSILON * mean.abs().max(1.0) {
            self.config.threshold * 2.0
        } else {
            0.0
        }
    }
}

impl Detector for ZScore {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("zscore").description(
            "Rolling z-score: distance from the mean of the previous `window` points in standard \
             deviations (NAB's windowed Gaussian; lookout's baseline detector).",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        let config = config.check()?;
        Ok(ZScore {
            window: VecDeque::with_capacity(config.window),
            config,
        })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        let verdict = if self.window.len() >= self.config.min_points {
            Verdict::scored(self.score(point.value), self.config.threshold)
        } else {
            Verdict::LEARNING
        };
        if self.window.len() == self.config.window {
            self.window.pop_front();
        }
        self.window.push_back(point.value);
        verdict
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state.f64s(self.window.iter().copied());
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = ZScore::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        let values = reader.f64s(MAX_WINDOW)?;
        reader.finish()?;
        // A smaller window than when the state was saved keeps the newest.
        let skip = values.len().saturating_sub(detector.config.window);
        detector.window.extend(values.into_iter().skip(skip));
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(ZScore);

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: i64, value: f64) -> Point {
        Point {
            timestamp_ms: i * 15_000,
            value,
        }
    }

    fn detector(window: usize, min_points: usize) -> ZScore {
        ZScore::create(Config {
            window,
            min_points,
            threshold: 3.0,
        })
        .unwrap()
    }

    #[test]
    fn learns_then_flags_a_spike_only() {
        let mut d = detector(20, 10);
        let mut verdicts = Vec::new();
        for i in 0..40 {
            let value = if i == 30 { 50.0 } else { 10.0 + (i % 2) as f64 };
            verdicts.push(d.observe(point(i, value)));
        }
        assert!(
            verdicts[..10]
                .iter()
                .all(|v| v.score.is_nan() && !v.anomalous)
        );
        // Alternating 10/11: mean 10.5, deviation 0.5; 50 is 79 deviations away.
        assert!(
            (verdicts[30].score - 79.0).abs() < 1e-9,
            "{:?}",
            verdicts[30]
        );
        assert!(verdicts[30].anomalous);
        assert_eq!(verdicts.iter().filter(|v| v.anomalous).count(), 1);
        // An ordinary point scores 1 (half a unit from the mean of 10.5).
        assert!((verdicts[20].score - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_flat_series_that_moves_is_reported() {
        let mut d = detector(10, 5);
        for i in 0..10 {
            d.observe(point(i, 7.0));
        }
        assert_eq!(d.observe(point(10, 7.0)).score, 0.0);
        assert!(d.observe(point(11, 7.5)).anomalous);
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let mut a = detector(30, 10);
        for i in 0..50 {
            a.observe(point(i, (i as f64 * 0.7).sin()));
        }
        let mut b = ZScore::restore(Config::default_with(30, 10), &a.save()).unwrap();
        for i in 50..80 {
            let p = point(i, (i as f64 * 0.7).sin() + if i == 70 { 5.0 } else { 0.0 });
            assert_eq!(a.observe(p).score.to_bits(), b.observe(p).score.to_bits());
        }
        assert!(ZScore::restore(Config::default(), &[9, 0]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |c: Config| match ZScore::create(c) {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error"),
        };
        assert!(err(Config::default_with(1, 1)).contains("`window`"));
        assert!(err(Config::default_with(10, 11)).contains("`min_points`"));
        assert!(
            err(Config {
                threshold: -1.0,
                ..Config::default()
            })
            .contains("`threshold`")
        );
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
