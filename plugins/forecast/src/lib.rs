//! `forecast` detector: fits the series' recent trend, predicts where it is
//! heading ("when will the disk be full?") and flags points far off the
//! trend.
//!
//! Two methods:
//!
//! - `linear` (default): a least-squares line through the last `window`
//!   points, by timestamp (Prometheus' `predict_linear` over a window).
//! - `holt`: Holt's linear exponential smoothing (double exponential
//!   smoothing): a level and a slope that follow the series with weights
//!   `alpha` and `beta`, so recent behaviour counts most and no window is
//!   stored.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `method` | `"linear"` | `"linear"` or `"holt"` |
//! | `window` | 60 | `linear`: points the line is fitted to (3–100,000) |
//! | `alpha` | 0.2 | `holt`: level smoothing, 0 < alpha ≤ 1 |
//! | `beta` | 0.05 | `holt`: slope smoothing, 0 < beta ≤ 1 |
//! | `threshold` | 3.0 | the score from which a point is anomalous (the sensitivity) |
//! | `min_points` | 30 | points seen before the first score and forecast (3..=`window`) |
//!
//! Timestamps, not point counts, are the time axis: slopes are per second,
//! so gaps and any scrape interval work.
//!
//! Score: `|x − prediction|` in standard errors of the prediction, before
//! the point is learnt; NaN until `min_points` have been seen. Both
//! methods keep an exponentially weighted (weight 0.02, about 35 points of
//! memory) root mean square of their past prediction errors; a point at or
//! beyond `threshold` enters it, and Holt's level and slope, as if it lay
//! on the band edge (its error clipped to `± threshold · σ`), so a spike
//! barely bends the trend while a lasting change is still learnt.
//! - `linear`: the prediction is the fitted line at the point's time; the
//!   standard error is the larger of the regression's prediction error,
//!   `s · √(1 + 1/n + (t − t̄)² / Σ(tᵢ − t̄)²)` with `s` the residual standard
//!   deviation of the fit (`n − 2` degrees of freedom), and the recent
//!   errors' root mean square (a line through a curve, such as a daily
//!   cycle, errs more just ahead of its window than within it).
//! - `holt`: the prediction is `level + slope · Δt`, the standard error the
//!   recent errors' root mean square. The first `min_points` points are
//!   fitted by least squares to start level, slope and error.
//!
//! A fit without spread (residuals below 10⁻⁹ of the values' size: a
//! perfectly straight series) scores 0 for a point on the line and
//! `threshold × 2` off it. Non-finite values are ignored (verdict NaN).
//!
//! Forecast (`forecast(horizon, threshold)`): the value the fitted line
//! (linear) or `level + slope · h` (holt) gives `horizon` after the last
//! point, and the seconds until that straight path reaches `threshold` from
//! the side it is on at the last point (0 when on it); none when the slope
//! points away or the crossing is beyond the horizon. Free bytes falling
//! from 1000 by 10 a minute reach 0 in 6000 s.
//!
//! State: `linear` the last `window` points (16 bytes each, 993 bytes by
//! default); `holt` 98 bytes.

use std::collections::VecDeque;

use lookout_plugin_sdk::detect::{
    Forecast, Point, StateReader, StateWriter, Verdict, check_threshold,
};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes. The first
/// number after it says which method wrote it.
const STATE_VERSION: u8 = 1;
const MAX_WINDOW: usize = 100_000;
/// Weight of each new prediction error in the error variance (both
/// methods): about 35 points of memory, so a change of noise level is learnt within hours at
/// 5-minute points and minutes at 15-second ones.
const ERROR_WEIGHT: f64 = 0.02;
/// Residuals below this fraction of the values' size are rounding error.
const NEGLIGIBLE: f64 = 1e-9;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum Method {
    #[default]
    Linear,
    Holt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    method: Method,
    window: Option<usize>,
    alpha: Option<f64>,
    beta: Option<f64>,
    threshold: f64,
    min_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            method: Method::Linear,
            window: None,
            alpha: None,
            beta: None,
            threshold: 3.0,
            min_points: 30,
        }
    }
}

/// The checked configuration.
struct Settings {
    method: Method,
    window: usize,
    alpha: f64,
    beta: f64,
    threshold: f64,
    min_points: usize,
}

impl Config {
    fn check(self) -> Result<Settings, PluginError> {
        let only_for = |field: &str, method: &str| {
            Err(PluginError::config(format!(
                "`{field}` applies to method \"{method}\" only"
            )))
        };
        match self.method {
            Method::Linear if self.alpha.is_some() => return only_for("alpha", "holt"),
            Method::Linear if self.beta.is_some() => return only_for("beta", "holt"),
            Method::Holt if self.window.is_some() => return only_for("window", "linear"),
            _ => {}
        }
        let window = self.window.unwrap_or(60);
        if !(3..=MAX_WINDOW).contains(&window) {
            return Err(PluginError::config(format!(
                "`window` must be 3 to {MAX_WINDOW} points, not {window}"
            )));
        }
        let most_points = if self.method == Method::Linear {
            window
        } else {
            MAX_WINDOW
        };
        if !(3..=most_points).contains(&self.min_points) {
            return Err(PluginError::config(format!(
                "`min_points` must be 3 to {most_points}{}, not {}",
                if self.method == Method::Linear {
                    " (`window`)"
                } else {
                    ""
                },
                self.min_points
            )));
        }
        let weight = |field: &str, value: Option<f64>, default: f64| match value {
            None => Ok(default),
            Some(v) if v > 0.0 && v <= 1.0 => Ok(v),
            Some(v) => Err(PluginError::config(format!(
                "`{field}` must be above 0 and at most 1, not {v}"
            ))),
        };
        let alpha = weight("alpha", self.alpha, 0.2)?;
        let beta = weight("beta", self.beta, 0.05)?;
        check_threshold(self.threshold)?;
        Ok(Settings {
            method: self.method,
            window,
            alpha,
            beta,
            threshold: self.threshold,
            min_points: self.min_points,
        })
    }
}

/// `score` of a `distance` from a prediction with standard error
/// `deviation`, where `size` is the magnitude of the values (for what
/// counts as no spread at all).
fn score(distance: f64, deviation: f64, size: f64, threshold: f64) -> f64 {
    let negligible = NEGLIGIBLE * size.max(1.0);
    if deviation > negligible {
        distance / deviation
    } else if distance > negligible {
        threshold * 2.0
    } else {
        0.0
    }
}

/// When the straight path `start + slope · t` (t in seconds ≥ 0) first
/// reaches `threshold`, within `horizon` seconds.
fn seconds_to_reach(start: f64, slope: f64, threshold: f64, horizon: f64) -> Option<f64> {
    if start == threshold {
        return Some(0.0);
    }
    let seconds = (threshold - start) / slope;
    // Negative when the slope points away; infinite or NaN when flat.
    (seconds.is_finite() && seconds >= 0.0 && seconds <= horizon).then_some(seconds)
}

/// A least-squares line, in seconds relative to a reference time.
struct Line {
    n: f64,
    mean_t: f64,
    mean_x: f64,
    /// Σ(tᵢ − t̄)².
    spread_t: f64,
    slope: f64,
    /// Residual standard deviation (n − 2 degrees of freedom).
    residual_sd: f64,
    /// Largest |x| fitted, for what counts as no spread.
    size: f64,
}

impl Line {
    fn fit(times: &VecDeque<i64>, values: &VecDeque<f64>, reference_ms: i64) -> Line {
        let seconds = |t: i64| (t - reference_ms) as f64 / 1000.0;
        let n = values.len() as f64;
        let mean_t = times.iter().map(|&t| seconds(t)).sum::<f64>() / n;
        let mean_x = values.iter().sum::<f64>() / n;
        let (mut spread_t, mut co_spread, mut size) = (0.0, 0.0, 0.0_f64);
        for (&t, &x) in times.iter().zip(values) {
            let dt = seconds(t) - mean_t;
            spread_t += dt * dt;
            co_spread += dt * (x - mean_x);
            size = size.max(x.abs());
        }
        // All points at one time: no slope to speak of.
        let slope = if spread_t > 0.0 {
            co_spread / spread_t
        } else {
            0.0
        };
        let squared_residuals: f64 = times
            .iter()
            .zip(values)
            .map(|(&t, &x)| (x - mean_x - slope * (seconds(t) - mean_t)).powi(2))
            .sum();
        Line {
            n,
            mean_t,
            mean_x,
            spread_t,
            slope,
            residual_sd: (squared_residuals / (n - 2.0)).sqrt(),
            size,
        }
    }

    fn at(&self, t: f64) -> f64 {
        self.mean_x + self.slope * (t - self.mean_t)
    }

    /// Standard error of a new observation at `t`.
    fn prediction_error(&self, t: f64) -> f64 {
        let leverage = if self.spread_t > 0.0 {
            (t - self.mean_t).powi(2) / self.spread_t
        } else {
            0.0
        };
        self.residual_sd * (1.0 + 1.0 / self.n + leverage).sqrt()
    }
}

/// The last `window` points, for the `linear` method.
struct LinearModel {
    times: VecDeque<i64>,
    values: VecDeque<f64>,
    /// Exponentially weighted mean square of the errors of past
    /// predictions (0 before the first).
    error_variance: f64,
}

/// Holt's level and slope, for the `holt` method.
#[derive(Default)]
struct HoltModel {
    /// Whether level, slope and error are still being started by a
    /// least-squares fit (the first `min_points` points).
    warming_up: bool,
    /// Points learnt from (saturating).
    count: u64,
    /// Timestamp of the last point learnt (ms).
    last_ms: i64,
    /// The smoothed value at `last_ms`.
    level: f64,
    /// Per second.
    slope: f64,
    /// Exponentially weighted mean square of one-step errors.
    error_variance: f64,
    /// The warm-up's least-squares fit, over seconds since its first point.
    warmup: RunningFit,
}

/// Means and centred sums of squares and products, updated a point at a
/// time (Welford's method: no cancellation between large sums).
#[derive(Default, Clone, Copy)]
struct RunningFit {
    first_ms: i64,
    mean_t: f64,
    mean_x: f64,
    /// Σ(t − t̄)².
    spread_t: f64,
    /// Σ(t − t̄)(x − x̄).
    co_spread: f64,
    /// Σ(x − x̄)².
    spread_x: f64,
}

enum Model {
    Linear(LinearModel),
    Holt(HoltModel),
}

struct Trend {
    settings: Settings,
    model: Model,
}

impl HoltModel {
    fn observe(&mut self, point: Point, settings: &Settings) -> Verdict {
        if self.warming_up {
            self.warm_up(point, settings.min_points as u64);
            return Verdict::LEARNING;
        }
        let dt = (point.timestamp_ms - self.last_ms).max(0) as f64 / 1000.0;
        let predicted = self.level + self.slope * dt;
        let mut error = point.value - predicted;
        let deviation = self.error_variance.sqrt();
        let size = predicted.abs().max(point.value.abs());
        let verdict = Verdict::scored(
            score(error.abs(), deviation, size, settings.threshold),
            settings.threshold,
        );
        if verdict.anomalous && deviation > NEGLIGIBLE * size.max(1.0) {
            let edge = settings.threshold * deviation;
            error = error.clamp(-edge, edge);
        }
        self.level = predicted + settings.alpha * error;
        if dt > 0.0 {
            // Component form β·(Δlevel / Δt) + (1 − β)·slope, simplified.
            self.slope += settings.alpha * settings.beta * error / dt;
        }
        self.error_variance =
            (1.0 - ERROR_WEIGHT) * self.error_variance + ERROR_WEIGHT * error * error;
        self.last_ms = self.last_ms.max(point.timestamp_ms);
        self.count = self.count.saturating_add(1);
        verdict
    }

    fn warm_up(&mut self, point: Point, min_points: u64) {
        let fit = &mut self.warmup;
        if self.count == 0 {
            fit.first_ms = point.timestamp_ms;
            self.last_ms = point.timestamp_ms;
        }
        let t = (point.timestamp_ms - fit.first_ms) as f64 / 1000.0;
        self.count += 1;
        let n = self.count as f64;
        let (dt, dx) = (t - fit.mean_t, point.value - fit.mean_x);
        fit.mean_t += dt / n;
        fit.mean_x += dx / n;
        fit.spread_t += dt * (t - fit.mean_t);
        fit.co_spread += dt * (point.value - fit.mean_x);
        fit.spread_x += dx * (point.value - fit.mean_x);
        self.last_ms = self.last_ms.max(point.timestamp_ms);
        if self.count >= min_points {
            self.slope = if fit.spread_t > 0.0 {
                fit.co_spread / fit.spread_t
            } else {
                0.0
            };
            let last_t = (self.last_ms - fit.first_ms) as f64 / 1000.0;
            self.level = fit.mean_x + self.slope * (last_t - fit.mean_t);
            let squared_residuals = (fit.spread_x - self.slope * fit.co_spread).max(0.0);
            self.error_variance = squared_residuals / (n - 2.0);
            self.warmup = RunningFit::default();
            self.warming_up = false;
        }
    }

    fn forecast(&self, horizon: f64, threshold: Option<f64>) -> Forecast {
        Forecast {
            value: self.level + self.slope * horizon,
            seconds_to_threshold: threshold
                .and_then(|limit| seconds_to_reach(self.level, self.slope, limit, horizon)),
        }
    }
}

impl LinearModel {
    fn observe(&mut self, point: Point, settings: &Settings) -> Verdict {
        let verdict = if self.values.len() >= settings.min_points {
            let line = Line::fit(&self.times, &self.values, point.timestamp_ms);
            let mut error = point.value - line.at(0.0);
            // A line through a curve errs more ahead of the window than
            // within it: the recent errors of actual predictions say so.
            let deviation = line.prediction_error(0.0).max(self.error_variance.sqrt());
            let size = line.size.max(point.value.abs());
            let verdict = Verdict::scored(
                score(error.abs(), deviation, size, settings.threshold),
                settings.threshold,
            );
            if verdict.anomalous && deviation > NEGLIGIBLE * size.max(1.0) {
                let edge = settings.threshold * deviation;
                error = error.clamp(-edge, edge);
            }
            self.error_variance =
                (1.0 - ERROR_WEIGHT) * self.error_variance + ERROR_WEIGHT * error * error;
            verdict
        } else {
            Verdict::LEARNING
        };
        if self.values.len() == settings.window {
            self.times.pop_front();
            self.values.pop_front();
        }
        self.times.push_back(point.timestamp_ms);
        self.values.push_back(point.value);
        verdict
    }

    fn forecast(&self, horizon: f64, threshold: Option<f64>) -> Forecast {
        let last_ms = *self.times.back().expect("forecast after min_points");
        let line = Line::fit(&self.times, &self.values, last_ms);
        let start = line.at(0.0);
        Forecast {
            value: line.at(horizon),
            seconds_to_threshold: threshold
                .and_then(|limit| seconds_to_reach(start, line.slope, limit, horizon)),
        }
    }
}

impl Detector for Trend {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("forecast").description(
            "Trend forecaster: a least-squares line over a window (or Holt's smoothing) predicts \
             the series and when it reaches a threshold; points far off the trend are anomalous.",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        let settings = config.check()?;
        let model = match settings.method {
            Method::Linear => Model::Linear(LinearModel {
                times: VecDeque::with_capacity(settings.window),
                values: VecDeque::with_capacity(settings.window),
                error_variance: 0.0,
            }),
            Method::Holt => Model::Holt(HoltModel {
                warming_up: true,
                ..HoltModel::default()
            }),
        };
        Ok(Trend { settings, model })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        match &mut self.model {
            Model::Linear(model) => model.observe(point, &self.settings),
            Model::Holt(model) => model.observe(point, &self.settings),
        }
    }

    fn forecast(&self, horizon_ms: i64, threshold: Option<f64>) -> Option<Forecast> {
        if horizon_ms < 0 {
            return None;
        }
        let horizon = horizon_ms as f64 / 1000.0;
        match &self.model {
            Model::Linear(model) if model.values.len() >= self.settings.min_points => {
                Some(model.forecast(horizon, threshold))
            }
            Model::Holt(model) if !model.warming_up => Some(model.forecast(horizon, threshold)),
            _ => None,
        }
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        match &self.model {
            Model::Linear(model) => {
                state.u64(0).u64(model.times.len() as u64);
                for &t in &model.times {
                    state.i64(t);
                }
                state.f64s(model.values.iter().copied());
                state.f64(model.error_variance);
            }
            Model::Holt(model) => {
                let fit = &model.warmup;
                state
                    .u64(1)
                    .bool(model.warming_up)
                    .u64(model.count)
                    .i64(model.last_ms)
                    .f64(model.level)
                    .f64(model.slope)
                    .f64(model.error_variance)
                    .i64(fit.first_ms);
                for v in [
                    fit.mean_t,
                    fit.mean_x,
                    fit.spread_t,
                    fit.co_spread,
                    fit.spread_x,
                ] {
                    state.f64(v);
                }
            }
        }
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = Trend::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        let method = reader.u64()?;
        match (&mut detector.model, method) {
            (Model::Linear(model), 0) => {
                let len = reader.u64()?;
                if len > MAX_WINDOW as u64 {
                    return Err(PluginError::permanent(format!(
                        "saved state holds {len} points where at most {MAX_WINDOW} fit"
                    )));
                }
                let times = (0..len)
                    .map(|_| reader.i64())
                    .collect::<Result<Vec<_>, _>>()?;
                let values = reader.f64s(MAX_WINDOW)?;
                model.error_variance = reader.f64()?;
                if values.len() != times.len() || values.iter().any(|v| !v.is_finite()) {
                    return Err(PluginError::permanent(
                        "saved state's times and values do not match",
                    ));
                }
                // A smaller window than when the state was saved keeps the newest.
                let skip = values.len().saturating_sub(detector.settings.window);
                model.times.extend(times.into_iter().skip(skip));
                model.values.extend(values.into_iter().skip(skip));
            }
            (Model::Holt(model), 1) => {
                model.warming_up = reader.bool()?;
                model.count = reader.u64()?;
                model.last_ms = reader.i64()?;
                model.level = reader.f64()?;
                model.slope = reader.f64()?;
                model.error_variance = reader.f64()?;
                let fit = &mut model.warmup;
                fit.first_ms = reader.i64()?;
                for v in [
                    &mut fit.mean_t,
                    &mut fit.mean_x,
                    &mut fit.spread_t,
                    &mut fit.co_spread,
                    &mut fit.spread_x,
                ] {
                    *v = reader.f64()?;
                }
                // A `min_points` changed since the save takes effect for a
                // warm-up still under way; a finished one stays finished.
            }
            _ => {
                return Err(PluginError::permanent("saved state is of the other method"));
            }
        }
        reader.finish()?;
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(Trend);

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn linear(window: usize, min_points: usize) -> Trend {
        Trend::create(Config {
            window: Some(window),
            min_points,
            ..Config::default()
        })
        .unwrap()
    }

    fn holt(min_points: usize) -> Trend {
        Trend::create(holt_config(min_points)).unwrap()
    }

    fn holt_config(min_points: usize) -> Config {
        Config {
            method: Method::Holt,
            min_points,
            ..Config::default()
        }
    }

    /// Small deterministic noise in [−0.5, 0.5).
    fn noise(i: i64) -> f64 {
        ((i * 7919 + 13) % 101) as f64 / 101.0 - 0.5
    }

    #[test]
    fn free_disk_falling_10_a_minute_from_1000_reaches_0_in_100_minutes() {
        for mut d in [linear(30, 10), holt(10)] {
            // Sampled every minute for the half hour before: 1300, 1290 … 1000.
            for minute in -30..=0 {
                let v = d.observe(Point {
                    timestamp_ms: minute * MINUTE,
                    value: 1000.0 - 10.0 * minute as f64,
                });
                assert!(v.score.is_nan() || v.score == 0.0, "{v:?}");
            }
            let f = d.forecast(120 * MINUTE, Some(0.0)).unwrap();
            assert!((f.value - -200.0).abs() < 1e-6, "{f:?}");
            let seconds = f.seconds_to_threshold.unwrap();
            assert!((seconds - 6000.0).abs() < 1e-6, "{seconds}");
            // Not within an hour; never for a threshold it moves away from.
            let f = d.forecast(60 * MINUTE, Some(0.0)).unwrap();
            assert!((f.value - 400.0).abs() < 1e-6 && f.seconds_to_threshold.is_none());
            let f = d.forecast(600 * MINUTE, Some(2000.0)).unwrap();
            assert_eq!(f.seconds_to_threshold, None);
            // Already there: 0 seconds; no threshold asked: none.
            let f = d.forecast(MINUTE, Some(1000.0)).unwrap();
            assert_eq!(f.seconds_to_threshold, Some(0.0));
            assert_eq!(d.forecast(MINUTE, None).unwrap().seconds_to_threshold, None);
        }
    }

    #[test]
    fn forecasts_nothing_before_min_points() {
        for mut d in [linear(30, 10), holt(10)] {
            for i in 0..9 {
                d.observe(Point {
                    timestamp_ms: i * MINUTE,
                    value: i as f64,
                });
                assert!(d.forecast(MINUTE, Some(100.0)).is_none());
            }
            d.observe(Point {
                timestamp_ms: 9 * MINUTE,
                value: 9.0,
            });
            let f = d.forecast(MINUTE, Some(100.0)).unwrap();
            assert!((f.value - 10.0).abs() < 1e-9, "{f:?}");
            assert!(d.forecast(-1, None).is_none());
        }
    }

    #[test]
    fn linear_score_is_the_regression_prediction_error() {
        // Points (0, 0), (1 s, 2), (2 s, 1), (3 s, 3): t̄ 1.5, x̄ 1.5,
        // Σ(t − t̄)² = 2.25 + 0.25 + 0.25 + 2.25 = 5,
        // Σ(t − t̄)(x − x̄) = 2.25 − 0.25 − 0.25 + 2.25 = 4, slope 0.8.
        let mut d = linear(4, 4);
        for (t, x) in [(0, 0.0), (1, 2.0), (2, 1.0), (3, 3.0)] {
            d.observe(Point {
                timestamp_ms: t * 1000,
                value: x,
            });
        }
        // Fitted 0.3 + 0.8 t: residuals −0.3, 0.9, −0.9, 0.3, SSR 1.8,
        // s² = 1.8 / 2 = 0.9. At t = 4: prediction 3.5, leverage
        // (4 − 1.5)² / 5 = 1.25, standard error √(0.9 · (1 + 1/4 + 1.25)) = 1.5,
        // so 10 scores 6.5 / 1.5.
        let v = d.observe(Point {
            timestamp_ms: 4000,
            value: 10.0,
        });
        let expected = 6.5 / 1.5;
        assert!((v.score - expected).abs() < 1e-12, "{v:?} vs {expected}");
        assert!(v.anomalous);
    }

    #[test]
    fn flags_a_point_off_the_trend_only() {
        for mut d in [
            Trend::create(Config::default()).unwrap(),
            Trend::create(holt_config(30)).unwrap(),
        ] {
            let flagged: Vec<i64> = (0..400)
                .filter(|&i| {
                    let off = if i == 250 { 6.0 } else { 0.0 };
                    let value = 50.0 + 0.05 * i as f64 + noise(i) + off;
                    d.observe(Point {
                        timestamp_ms: i * 15_000,
                        value,
                    })
                    .anomalous
                })
                .collect();
            assert_eq!(flagged, vec![250]);
        }
    }

    #[test]
    fn a_line_through_a_daily_curve_learns_how_far_off_it_runs() {
        // Five days of a daily sine (±10) with noise of ±0.5 at 5-minute
        // points and a spike of +8 on day 4. The line through the last 60
        // points (5 hours) misses the curve by far more than its residuals
        // say; the recent prediction errors widen the band to match.
        let step = 5 * MINUTE;
        let mut d = Trend::create(Config::default()).unwrap();
        let spike_at = 4 * 288 + 100;
        let flagged: Vec<i64> = (0..5 * 288)
            .filter(|&i| {
                let phase = (i * step) as f64 / (24 * 60 * MINUTE) as f64;
                let spike = if i == spike_at { 8.0 } else { 0.0 };
                let value = 50.0 + 10.0 * (std::f64::consts::TAU * phase).sin() + noise(i) + spike;
                d.observe(Point {
                    timestamp_ms: i * step,
                    value,
                })
                .anomalous
            })
            .collect();
        assert!(flagged.contains(&spike_at), "{flagged:?}");
        assert!(flagged.len() <= 5, "{flagged:?}");
    }

    #[test]
    fn holt_learns_a_new_slope() {
        let mut d = holt(30);
        let value = |i: i64| {
            if i < 300 {
                100.0 + 0.1 * i as f64
            } else {
                130.0 - 0.2 * (i - 300) as f64
            }
        };
        for i in 0..600 {
            d.observe(Point {
                timestamp_ms: i * MINUTE,
                value: value(i) + noise(i),
            });
        }
        // −0.2 a minute is −1/300 a second.
        let Model::Holt(model) = &d.model else {
            unreachable!()
        };
        assert!((model.slope * 60.0 - -0.2).abs() < 0.01, "{}", model.slope);
        let f = d.forecast(10 * MINUTE, None).unwrap();
        assert!((f.value - (value(609))).abs() < 1.0, "{f:?}");
    }

    #[test]
    fn a_straight_series_that_bends_is_reported() {
        let mut d = linear(20, 10);
        for i in 0..20 {
            d.observe(Point {
                timestamp_ms: i * 1000,
                value: 3.0 * i as f64,
            });
        }
        let on_line = d.observe(Point {
            timestamp_ms: 20_000,
            value: 60.0,
        });
        assert_eq!(on_line.score, 0.0);
        let v = d.observe(Point {
            timestamp_ms: 21_000,
            value: 60.0,
        });
        assert!(v.anomalous && v.score == 6.0, "{v:?}");
    }

    #[test]
    fn non_finite_values_are_ignored() {
        for mut d in [linear(10, 3), holt(3)] {
            for i in 0..5 {
                d.observe(Point {
                    timestamp_ms: i * 1000,
                    value: i as f64,
                });
            }
            let before = d.save();
            assert!(
                d.observe(Point {
                    timestamp_ms: 6000,
                    value: f64::NAN
                })
                .score
                .is_nan()
            );
            assert_eq!(d.save(), before);
        }
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let configs = || {
            [
                Config {
                    window: Some(40),
                    min_points: 10,
                    ..Config::default()
                },
                holt_config(10),
            ]
        };
        for (config, again) in configs().into_iter().zip(configs()) {
            let mut a = Trend::create(config).unwrap();
            // Restore in the middle of the warm-up too.
            for i in 0..5 {
                a.observe(Point {
                    timestamp_ms: i * 15_000,
                    value: (i as f64 * 0.7).sin() + 0.1 * i as f64,
                });
            }
            let mut b = Trend::restore(again, &a.save()).unwrap();
            for i in 5..80 {
                let p = Point {
                    timestamp_ms: i * 15_000,
                    value: (i as f64 * 0.7).sin()
                        + 0.1 * i as f64
                        + if i == 70 { 5.0 } else { 0.0 },
                };
                assert_eq!(a.observe(p).score.to_bits(), b.observe(p).score.to_bits());
            }
            assert_eq!(a.save(), b.save());
            assert_eq!(
                a.forecast(MINUTE, Some(20.0)),
                b.forecast(MINUTE, Some(20.0))
            );
        }
        // The other method's state, another version, truncation: refused.
        let holt_state = holt(10).save();
        assert!(Trend::restore(Config::default(), &holt_state).is_err());
        assert!(Trend::restore(Config::default(), &[9, 0]).is_err());
        assert!(Trend::restore(holt_config(10), &holt_state[..30]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |c: Config| match Trend::create(c) {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error"),
        };
        let linear_with = |window, min_points| Config {
            window: Some(window),
            min_points,
            ..Config::default()
        };
        assert!(err(linear_with(2, 2)).contains("`window`"));
        assert!(err(linear_with(10, 11)).contains("`min_points`"));
        assert!(err(linear_with(10, 2)).contains("`min_points`"));
        assert!(
            err(Config {
                alpha: Some(0.5),
                ..Config::default()
            })
            .contains("`alpha` applies to method \"holt\"")
        );
        assert!(
            err(Config {
                window: Some(10),
                ..holt_config(5)
            })
            .contains("`window`")
        );
        assert!(
            err(Config {
                beta: Some(0.0),
                ..holt_config(5)
            })
            .contains("`beta`")
        );
        assert!(
            err(Config {
                threshold: -3.0,
                ..Config::default()
            })
            .contains("`threshold`")
        );
        assert!(matches!(
            lookout_plugin_sdk::parse_config::<Config>(r#"{"method": "cubic"}"#),
            Err(PluginError::Config(m)) if m.contains("cubic")
        ));
    }

    /// `cargo test --release -p lookout-plugin-forecast -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let series = |i: i64| 100.0 + (i as f64 * 0.01).sin() * 10.0 + ((i * 7919) % 13) as f64;
        let point = |i: i64| Point {
            timestamp_ms: i * 15_000,
            value: series(i),
        };
        fn holt_default() -> Config {
            holt_config(30)
        }
        let configs = [
            ("linear", Config::default as fn() -> Config),
            ("holt", holt_default),
        ];
        for (name, config) in configs {
            let mut d = Trend::create(config()).unwrap();
            for i in 0..1000 {
                d.observe(point(i));
            }
            let mut state = d.save();
            let rounds = 100_000;
            let started = std::time::Instant::now();
            for i in 1000..1000 + rounds {
                let mut d = Trend::restore(config(), &state).unwrap();
                std::hint::black_box(d.observe(point(i)));
                state = d.save();
            }
            let per_batch = started.elapsed() / rounds as u32;
            let mut d = Trend::create(config()).unwrap();
            let points: Vec<Point> = (0..1_000_000).map(point).collect();
            let started = std::time::Instant::now();
            for &p in &points {
                std::hint::black_box(d.observe(p));
            }
            let per_point = started.elapsed() / points.len() as u32;
            println!(
                "forecast {name}: state {} bytes; restore+observe(1)+save {per_batch:?}; \
                 observe {per_point:?}/point",
                state.len()
            );
        }
    }
}
