//! `kmeans` detector: an ensemble of k-means models of the series' recent
//! shape, after Netdata's machine-learning anomaly detection; a point is
//! anomalous only when every model finds it farther from its clusters than
//! 99 % of what that model was trained on.
//!
//! It looks at how the series moves, not where it is: each point becomes a
//! feature vector of its recent differences (Netdata's diff → smooth →
//! lag), so a level that is merely high is not unusual, while a spike, a
//! sudden step, a new oscillation or a series that stopped moving is. Each
//! model remembers a stretch of history; requiring all of them to agree
//! keeps a pattern seen in the last days (a nightly job) from being
//! reported, at the cost of reporting new patterns only while they are new.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `smooth_n` | 3 | differences averaged into each smoothed difference (1–60) |
//! | `lag_n` | 5 | earlier smoothed differences in a feature vector, besides the current one (0–20) |
//! | `train_window` | 1440 | points each model is trained on, the newest (20–10,000) |
//! | `train_every` | 720 | points between trainings; the first model is trained after this many (1–100,000) |
//! | `models` | 18 | models kept, the newest (1–64) |
//! | `threshold` | 1.0 | the score from which a point is anomalous (the sensitivity; 1 = beyond every model's 99th percentile) |
//!
//! The defaults are Netdata's for a 15-second series: a model of the last
//! 6 hours every 3 hours, 18 models spanning about 2¼ days (Netdata's 54 h).
//! They count points, not time: at a 5-minute scrape the same defaults mean
//! a model of 5 days every 2½ days.
//!
//! Features: with `d` the differences of consecutive values, a point's
//! smoothed difference is the mean of its last `smooth_n` differences,
//! `(xᵢ − xᵢ₋ₛ) / s`, and its feature vector is that and the `lag_n`
//! smoothed differences before it (`lag_n + 1` numbers).
//!
//! Training: the features of the last `train_window` points are clustered
//! with k-means, k = 2, started deterministically (one centre at the
//! features' mean, the other at the feature farthest from it), then
//! Lloyd's iterations until no point changes cluster (at most 10). The
//! model keeps its two centres and the 99th percentile of its training
//! points' distances to their nearest centre.
//!
//! Score: for each model, the point's distance to its nearest centre
//! divided by that model's 99th-percentile distance; the score is the
//! smallest of these (so score ≥ threshold ⇔ every model agrees). NaN until
//! the first model is trained. A model trained on a series that did not
//! move at all (percentile 0) scores 0 for a point that does not move
//! either and `threshold × 2` for one that does. Non-finite values are
//! ignored (verdict NaN).
//!
//! State: the last `train_window + lag_n + smooth_n` values and the models
//! (`2 · (lag_n + 1) + 1` numbers each): 13,625 bytes with the defaults.

use std::collections::VecDeque;

use lookout_plugin_sdk::detect::{Point, StateReader, StateWriter, Verdict, check_threshold};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes.
const STATE_VERSION: u8 = 1;
/// Clusters per model (Netdata's).
const K: usize = 2;
/// Lloyd's iterations per training at most: two well-separated clusters
/// settle in a few; noise without structure would move its centres a
/// little longer for no gain in scoring.
const MAX_LLOYD_ITERATIONS: usize = 10;
/// The training distance a point must exceed in every model.
const PERCENTILE: f64 = 0.99;
const MAX_SMOOTH_N: usize = 60;
const MAX_LAG_N: usize = 20;
const MAX_TRAIN_WINDOW: usize = 10_000;
const MAX_TRAIN_EVERY: u64 = 100_000;
const MAX_MODELS: usize = 64;
/// Distances below this fraction of the values' size are rounding error.
const NEGLIGIBLE: f64 = 1e-9;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    smooth_n: usize,
    lag_n: usize,
    train_window: usize,
    train_every: u64,
    models: usize,
    threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            smooth_n: 3,
            lag_n: 5,
            train_window: 1440,
            train_every: 720,
            models: 18,
            threshold: 1.0,
        }
    }
}

impl Config {
    fn check(self) -> Result<Config, PluginError> {
        let range = |field: &str, value: u64, low: u64, high: u64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(PluginError::config(format!(
                    "`{field}` must be {low} to {high}, not {value}"
                )))
            }
        };
        range("smooth_n", self.smooth_n as u64, 1, MAX_SMOOTH_N as u64)?;
        range("lag_n", self.lag_n as u64, 0, MAX_LAG_N as u64)?;
        range(
            "train_window",
            self.train_window as u64,
            20,
            MAX_TRAIN_WINDOW as u64,
        )?;
        range("train_every", self.train_every, 1, MAX_TRAIN_EVERY)?;
        range("models", self.models as u64, 1, MAX_MODELS as u64)?;
        check_threshold(self.threshold)?;
        Ok(self)
    }

    /// Numbers in a feature vector.
    fn dimensions(&self) -> usize {
        self.lag_n + 1
    }

    /// Values before a point that its feature vector needs.
    fn history(&self) -> usize {
        self.lag_n + self.smooth_n
    }
}

/// One trained k-means model.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    /// `K` centres of `dimensions` numbers each, one after the other.
    centres: Vec<f64>,
    /// The 99th percentile of the training points' distances to their
    /// nearest centre.
    typical_distance: f64,
}

/// The centre of `centres` (rows of `feature.len()` numbers) nearest to
/// `feature`, and its squared distance.
fn nearest(centres: &[f64], feature: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, centre) in centres.chunks_exact(feature.len()).enumerate() {
        let d = squared_distance(centre, feature);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

impl Model {
    fn nearest(&self, feature: &[f64]) -> (usize, f64) {
        nearest(&self.centres, feature)
    }

    /// Distance to the nearest centre in multiples of the typical one.
    fn score(&self, feature: &[f64], negligible: f64, threshold: f64) -> f64 {
        let distance = self.nearest(feature).1.sqrt();
        if self.typical_distance > negligible {
            distance / self.typical_distance
        } else if distance > negligible {
            threshold * 2.0
        } else {
            0.0
        }
    }

    /// k-means (k = 2) of `features` (rows of `dimensions` numbers).
    fn train(features: &[f64], dimensions: usize) -> Model {
        let rows = features.len() / dimensions;
        let row = |i: usize| &features[i * dimensions..(i + 1) * dimensions];
        // Deterministic start: the mean, and the row farthest from it.
        let mut centres = vec![0.0; K * dimensions];
        for i in 0..rows {
            for (c, v) in centres[..dimensions].iter_mut().zip(row(i)) {
                *c += v / rows as f64;
            }
        }
        let farthest = (0..rows)
            .map(|i| (i, squared_distance(&centres[..dimensions], row(i))))
            .fold(
                (0, -1.0),
                |best, (i, d)| if d > best.1 { (i, d) } else { best },
            )
            .0;
        centres[dimensions..].copy_from_slice(row(farthest));

        let mut assignment = vec![usize::MAX; rows];
        let mut sums = vec![0.0; K * dimensions];
        for _ in 0..MAX_LLOYD_ITERATIONS {
            let mut changed = false;
            sums.iter_mut().for_each(|s| *s = 0.0);
            let mut counts = [0usize; K];
            for (i, assigned) in assignment.iter_mut().enumerate() {
                let nearest = nearest(&centres, row(i)).0;
                changed |= *assigned != nearest;
                *assigned = nearest;
                counts[nearest] += 1;
                for (s, v) in sums[nearest * dimensions..].iter_mut().zip(row(i)) {
                    *s += v;
                }
            }
            if !changed {
                break;
            }
            for (cluster, &count) in counts.iter().enumerate() {
                // An empty cluster keeps its centre.
                if count > 0 {
                    let span = cluster * dimensions..(cluster + 1) * dimensions;
                    for (c, s) in centres[span.clone()].iter_mut().zip(&sums[span]) {
                        *c = s / count as f64;
                    }
                }
            }
        }
        let mut model = Model {
            centres,
            typical_distance: 0.0,
        };
        let mut distances: Vec<f64> = (0..rows).map(|i| model.nearest(row(i)).1).collect();
        let rank = ((PERCENTILE * rows as f64).ceil() as usize).clamp(1, rows) - 1;
        let (_, &mut at_rank, _) = distances.select_nth_unstable_by(rank, f64::total_cmp);
        model.typical_distance = at_rank.sqrt();
        model
    }
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

struct KMeans {
    config: Config,
    /// The newest values, enough for the features of `train_window` points.
    values: VecDeque<f64>,
    /// Points learnt since the last training (or since the start).
    since_training: u64,
    /// Oldest first.
    models: VecDeque<Model>,
}

impl KMeans {
    fn capacity(&self) -> usize {
        self.config.train_window + self.config.history()
    }

    /// The feature vector of the point whose value is `values[end − 1]`,
    /// written into `out`.
    fn feature(values: &VecDeque<f64>, end: usize, config: &Config, out: &mut [f64]) {
        let s = config.smooth_n;
        for (j, slot) in out.iter_mut().enumerate() {
            // Oldest lag first: slot j is lag (lag_n − j).
            let at = end - 1 - (config.lag_n - j);
            *slot = (values[at] - values[at - s]) / s as f64;
        }
    }

    fn train(&mut self) {
        let dimensions = self.config.dimensions();
        let history = self.config.history();
        let rows = self.values.len() - history;
        let mut features = vec![0.0; rows * dimensions];
        for (i, row) in features.chunks_exact_mut(dimensions).enumerate() {
            Self::feature(&self.values, history + i + 1, &self.config, row);
        }
        if self.models.len() == self.config.models {
            self.models.pop_front();
        }
        self.models.push_back(Model::train(&features, dimensions));
    }
}

impl Detector for KMeans {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("kmeans").description(
            "Netdata-style k-means ensemble on differenced, smoothed, lagged features: anomalous \
             when every recent model puts the point beyond its 99th-percentile distance.",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        let config = config.check()?;
        Ok(KMeans {
            values: VecDeque::with_capacity(config.train_window + config.history()),
            since_training: 0,
            models: VecDeque::with_capacity(config.models),
            config,
        })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        if self.values.len() == self.capacity() {
            self.values.pop_front();
        }
        self.values.push_back(point.value);
        let verdict = if self.models.is_empty() || self.values.len() <= self.config.history() {
            Verdict::LEARNING
        } else {
            let mut feature = [0.0; MAX_LAG_N + 1];
            let feature = &mut feature[..self.config.dimensions()];
            Self::feature(&self.values, self.values.len(), &self.config, feature);
            let negligible = NEGLIGIBLE * point.value.abs().max(1.0);
            let score = self
                .models
                .iter()
                .map(|m| m.score(feature, negligible, self.config.threshold))
                .fold(f64::INFINITY, f64::min);
            Verdict::scored(score, self.config.threshold)
        };
        self.since_training += 1;
        // Training needs two features at least.
        if self.since_training >= self.config.train_every
            && self.values.len() >= self.config.history() + K
        {
            self.train();
            self.since_training = 0;
        }
        verdict
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state.u64(self.since_training);
        state.f64s(self.values.iter().copied());
        state.u64(self.models.len() as u64);
        for model in &self.models {
            state.f64s(model.centres.iter().copied());
            state.f64(model.typical_distance);
        }
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = KMeans::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        detector.since_training = reader.u64()?;
        let values = reader.f64s(MAX_TRAIN_WINDOW + MAX_LAG_N + MAX_SMOOTH_N)?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(PluginError::permanent(
                "saved state holds a non-finite value",
            ));
        }
        let mut values = VecDeque::from(values);
        // A smaller window than when the state was saved keeps the newest.
        let surplus = values.len().saturating_sub(detector.capacity());
        values.drain(..surplus);
        detector.values = values;
        let count = reader.u64()?;
        if count > MAX_MODELS as u64 {
            return Err(PluginError::permanent(format!(
                "saved state holds {count} models where at most {MAX_MODELS} fit"
            )));
        }
        let centre_numbers = K * detector.config.dimensions();
        let mut models = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let centres = reader.f64s(K * (MAX_LAG_N + 1))?;
            if centres.len() != centre_numbers {
                return Err(PluginError::permanent(
                    "saved state's models have another `lag_n` than the config",
                ));
            }
            let typical_distance = reader.f64()?;
            models.push(Model {
                centres,
                typical_distance,
            });
        }
        reader.finish()?;
        let skip = models.len().saturating_sub(detector.config.models);
        detector.models.extend(models.into_iter().skip(skip));
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(KMeans);

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: i64, value: f64) -> Point {
        Point {
            timestamp_ms: i * 15_000,
            value,
        }
    }

    /// Deterministic noise, uniform in [−1, 1).
    fn noise(i: i64) -> f64 {
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64 * 2.0 - 1.0
    }

    fn small(
        lag_n: usize,
        smooth_n: usize,
        train_window: usize,
        train_every: u64,
        models: usize,
    ) -> KMeans {
        KMeans::create(Config {
            lag_n,
            smooth_n,
            train_window,
            train_every,
            models,
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn features_are_lagged_smoothed_differences() {
        // smooth_n 2, lag_n 1: values 0, 1, 3, 6, 10 (differences 1, 2, 3, 4);
        // the last point's smoothed difference is (10 − 3) / 2 = 3.5, the
        // one before (6 − 1) / 2 = 2.5.
        let config = Config {
            smooth_n: 2,
            lag_n: 1,
            ..Config::default()
        };
        let values: VecDeque<f64> = [0.0, 1.0, 3.0, 6.0, 10.0].into();
        let mut feature = [0.0; 2];
        KMeans::feature(&values, 5, &config, &mut feature);
        assert_eq!(feature, [2.5, 3.5]);
    }

    #[test]
    fn training_finds_two_clusters_and_their_99th_percentile() {
        // 1-d features: 99 points at 0 … 0.98 and one at 10.
        let mut features: Vec<f64> = (0..99).map(|i| i as f64 / 100.0).collect();
        features.push(10.0);
        let model = Model::train(&features, 1);
        // Start: the mean 0.5851 and the farthest point, 10; Lloyd keeps
        // the outlier alone, the other centre at the mean of 0 … 0.98, 0.49.
        assert_eq!(model.centres, vec![0.49, 10.0]);
        // Distances 0.49, 0.48 … 0.49 and 0: the 99th of 100 sorted is 0.49.
        assert!((model.typical_distance - 0.49).abs() < 1e-12);
        assert!((model.score(&[1.47], 1e-9, 1.0) - 2.0).abs() < 1e-12);
        assert_eq!(model.score(&[9.0], 1e-9, 1.0), 1.0 / 0.49);
    }

    #[test]
    fn learns_then_flags_a_spike_and_few_normal_points() {
        let mut d = small(2, 1, 200, 100, 4);
        let mut verdicts = Vec::new();
        for i in 0..1200 {
            let spike = if i == 900 { 12.0 } else { 0.0 };
            let value = 100.0 + 5.0 * (i as f64 / 40.0).sin() + noise(i) + spike;
            verdicts.push(d.observe(point(i, value)));
        }
        assert!(verdicts[..100].iter().all(|v| v.score.is_nan()));
        assert!(verdicts[100..].iter().all(|v| !v.score.is_nan()));
        // The spike's up and down differences stay in the next lag_n + 1
        // features: all four are reported, far beyond the threshold.
        assert!((900..=903).all(|i| verdicts[i].anomalous && verdicts[i].score > 3.0));
        // Ordinary noise lies beyond every model's 99th percentile about
        // 1 % of the time, and then only just.
        let normal: Vec<usize> = (100..1200).filter(|i| !(900..=903).contains(i)).collect();
        let false_alarms: Vec<f64> = normal
            .iter()
            .filter(|&&i| verdicts[i].anomalous)
            .map(|&i| verdicts[i].score)
            .collect();
        assert!(
            false_alarms.len() * 100 <= normal.len() * 2,
            "{false_alarms:?}"
        );
        assert!(false_alarms.iter().all(|&s| s < 1.5), "{false_alarms:?}");
    }

    #[test]
    fn a_pattern_change_is_flagged_only_once_every_model_agrees() {
        // A slow smooth series with bursts of fast oscillation. Models of
        // 100 points are trained every 50, 3 are kept. The burst at 200 is
        // new: reported. At 410 the model trained at 300 (on 200–299) still
        // knows it: not reported, though the two newer models alone would.
        // At 660 the models (trained at 550, 600, 650 on 450–649) have
        // seen no burst: reported again.
        let mut d = small(2, 1, 100, 50, 3);
        let bursts = [200..230, 410..420, 660..670];
        let burst = |i: i64| {
            let oscillation = if i % 2 == 0 { 3.0 } else { -3.0 };
            if bursts.iter().any(|r| r.contains(&i)) {
                oscillation
            } else {
                0.0
            }
        };
        let mut verdicts = Vec::new();
        let mut newer_models_disagree = 0;
        for i in 0..700 {
            let value = 20.0 + 4.0 * (i as f64 / 80.0).sin() + 0.1 * noise(i) + burst(i);
            if (410..420).contains(&i) {
                let mut values = d.values.clone();
                values.push_back(value);
                let mut feature = [0.0; 3];
                KMeans::feature(&values, values.len(), &d.config, &mut feature);
                let scores: Vec<f64> = d
                    .models
                    .iter()
                    .map(|m| m.score(&feature, 1e-9, 1.0))
                    .collect();
                if scores[1] > 5.0 && scores[2] > 5.0 {
                    newer_models_disagree += 1;
                }
            }
            verdicts.push(d.observe(point(i, value)));
        }
        let flagged = |r: std::ops::Range<usize>| r.filter(|&i| verdicts[i].anomalous).count();
        let strongest =
            |r: std::ops::Range<usize>| r.map(|i| verdicts[i].score).fold(0.0, f64::max);
        assert!(flagged(200..232) >= 30, "{}", flagged(200..232));
        assert!(strongest(200..232) > 20.0);
        // The old model holds the scores near 1 (a burst point or two may
        // lie just past its 99th percentile), the newer ones alone say > 5.
        assert!(flagged(410..422) <= 3, "{}", flagged(410..422));
        assert!(strongest(410..422) < 1.5, "{}", strongest(410..422));
        assert!(newer_models_disagree >= 8, "{newer_models_disagree}");
        assert!(flagged(660..672) >= 10, "{}", flagged(660..672));
        assert!(strongest(660..672) > 20.0);
    }

    #[test]
    fn a_series_that_never_moved_reports_its_first_move() {
        let mut d = small(1, 1, 20, 20, 2);
        for i in 0..40 {
            let v = d.observe(point(i, 5.0));
            assert!(v.score.is_nan() || v.score == 0.0, "{v:?}");
        }
        let v = d.observe(point(40, 6.0));
        assert!(v.anomalous && v.score == 2.0, "{v:?}");
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut d = small(1, 1, 20, 10, 2);
        for i in 0..30 {
            d.observe(point(i, noise(i)));
        }
        let before = d.save();
        assert!(d.observe(point(30, f64::NAN)).score.is_nan());
        assert_eq!(d.save(), before);
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let config = || Config {
            train_window: 100,
            train_every: 40,
            models: 3,
            ..Config::default()
        };
        let mut a = KMeans::create(config()).unwrap();
        let value =
            |i: i64| (i as f64 * 0.3).sin() * 5.0 + noise(i) + if i == 250 { 9.0 } else { 0.0 };
        for i in 0..30 {
            a.observe(point(i, value(i)));
        }
        let mut b = KMeans::restore(config(), &a.save()).unwrap();
        for i in 30..300 {
            let p = point(i, value(i));
            assert_eq!(
                a.observe(p).score.to_bits(),
                b.observe(p).score.to_bits(),
                "at {i}"
            );
            if i % 37 == 0 {
                b = KMeans::restore(config(), &b.save()).unwrap();
            }
        }
        assert_eq!(a.save(), b.save());
        assert_eq!(a.models.len(), 3);
        // Fewer models than saved keeps the newest.
        let c = KMeans::restore(
            Config {
                models: 1,
                ..config()
            },
            &a.save(),
        )
        .unwrap();
        assert_eq!(c.models.back(), a.models.back());
        assert_eq!(c.models.len(), 1);
        // Another lag_n, another version, truncation: refused.
        assert!(
            KMeans::restore(
                Config {
                    lag_n: 2,
                    ..config()
                },
                &a.save()
            )
            .is_err()
        );
        assert!(KMeans::restore(config(), &[9, 0]).is_err());
        assert!(KMeans::restore(config(), &a.save()[..100]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |c: Config| match KMeans::create(c) {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error"),
        };
        let d = Config::default;
        assert!(err(Config { smooth_n: 0, ..d() }).contains("`smooth_n`"));
        assert!(err(Config { lag_n: 21, ..d() }).contains("`lag_n`"));
        assert!(
            err(Config {
                train_window: 10,
                ..d()
            })
            .contains("`train_window`")
        );
        assert!(
            err(Config {
                train_every: 0,
                ..d()
            })
            .contains("`train_every`")
        );
        assert!(err(Config { models: 0, ..d() }).contains("`models`"));
        assert!(
            err(Config {
                threshold: f64::INFINITY,
                ..d()
            })
            .contains("`threshold`")
        );
        assert!(matches!(
            lookout_plugin_sdk::parse_config::<Config>(r#"{"k": 3}"#),
            Err(PluginError::Config(m)) if m.contains("`k`")
        ));
    }

    /// `cargo test --release -p lookout-plugin-kmeans -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let value = |i: i64| 100.0 + (i as f64 * 0.01).sin() * 10.0 + noise(i);
        // All 18 models trained and a full window.
        let mut d = KMeans::create(Config::default()).unwrap();
        for i in 0..20_000 {
            d.observe(point(i, value(i)));
        }
        assert_eq!(d.models.len(), 18);
        let mut state = d.save();
        let rounds = 100_000;
        let started = std::time::Instant::now();
        for i in 20_000..20_000 + rounds {
            let mut d = KMeans::restore(Config::default(), &state).unwrap();
            std::hint::black_box(d.observe(point(i, value(i))));
            state = d.save();
        }
        let per_batch = started.elapsed() / rounds as u32;
        let mut d = KMeans::create(Config::default()).unwrap();
        let points: Vec<Point> = (0..1_000_000).map(|i| point(i, value(i))).collect();
        let started = std::time::Instant::now();
        for &p in &points {
            std::hint::black_box(d.observe(p));
        }
        let per_point = started.elapsed() / points.len() as u32;
        let features: Vec<f64> = (0..1440 * 6).map(noise).collect();
        let started = std::time::Instant::now();
        std::hint::black_box(Model::train(&features, 6));
        let training = started.elapsed();
        println!(
            "kmeans: state {} bytes; restore+observe(1)+save {per_batch:?} (including a training \
             every 720); observe {per_point:?}/point; one training {training:?}",
            state.len()
        );
    }
}
