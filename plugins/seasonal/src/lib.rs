//! `seasonal` detector: additive Holt-Winters (triple exponential
//! smoothing) with daily and weekly seasons; a point is anomalous when it
//! is far from what level, trend and the time of day and week predict.
//!
//! Where `zscore`, `mad` and `ewma` see the evening peak as unusual every
//! evening, this detector learns it: its bands follow the daily (and weekly)
//! shape, so it also sees a value that is normal for noon but not for 3 am,
//! or a daily pattern that moved.
//!
//! Configuration (all optional):
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `periods` | `["1d", "7d"]` | the seasons, as durations (`90m`, `12h`, `1d`, `1w`…) or seconds; 1–4 of them, from 2 s to 366 d |
//! | `buckets_per_period` | 96 for periods up to 1 d, one an hour above (168 for 7 d) | seasonal coefficients per period (2–10,080), one number per period |
//! | `alpha` | 0.05 | level smoothing per point, 0 < alpha ≤ 1 |
//! | `beta` | 0.005 | trend smoothing per point, 0 ≤ beta ≤ 1 (0: no trend) |
//! | `gamma` | 0.2 | seasonal smoothing per cycle, 0 < gamma ≤ 1: the share of a bucket's error learnt in one pass of the period |
//! | `threshold` | 3.5 | the score from which a point is anomalous (the sensitivity) |
//!
//! The model: `prediction(t) = level + trend · Δt + Σ season_p(t)`, with
//! the time of each period taken from the point's timestamp (UTC, from the
//! Unix epoch), so any scrape interval and gaps work. A season is
//! `buckets` coefficients at evenly spaced times of the period, linearly
//! interpolated between them: 96 coefficients a day are one every 15
//! minutes, and a week needs 168 (hourly) rather than one per point. After
//! each point, with `e` its prediction error:
//! `level ← level + trend·Δt + alpha·e`, `trend ← trend + alpha·beta·e/Δt`
//! (trend per second), and the two coefficients around the point move by
//! `g·(1 − alpha)·e` shared by their interpolation weights, where
//! `g = 1 − (1 − gamma)^(Δt / bucket width)` — so a bucket learns `gamma`
//! of its error per cycle whether it is passed by one point or by sixty.
//! Once a cycle, each season's mean is moved into the level, so the
//! seasons stay centred.
//!
//! Warm-up: until one full shortest period has been seen, scores are NaN;
//! its points are averaged per bucket of the shortest season, which starts
//! the level (their mean) and that season (the bucket means less the level;
//! buckets without points interpolated from their neighbours). Longer
//! seasons start at zero and are learnt from then on. The first error
//! deviation is the warm-up's von Neumann estimate `√(Σ(Δx)² / 2(n − 1))`,
//! the noise of consecutive points.
//!
//! Score: `|e| / σ`, where σ is the exponentially weighted (weight 0.02)
//! root mean square of past prediction errors. A point at or beyond
//! `threshold` updates the model as if it lay on the band edge (its error
//! clipped to `± threshold · σ`, the robust Holt-Winters of Gelper, Fried
//! and Croux), so a spike barely bends level and season while a lasting
//! change is learnt as every clipped point widens σ a little. A model
//! without spread (σ below 10⁻⁹ of the values: a perfectly regular series)
//! scores 0 for a point on the prediction and `threshold × 2` off it.
//! Non-finite values are ignored (verdict NaN).
//!
//! Forecast (`forecast(horizon, threshold)`): after warm-up, the prediction
//! `level + trend · h + Σ season_p(last + h)`; seconds until that path
//! first reaches `threshold` from the side it is on at the last point (0
//! when on it), by stepping the path a bucket width at a time (at most
//! 10,000 steps) and interpolating the crossing; none when it does not
//! within the horizon. `beta` is per point, so at a 15-second scrape the
//! trend follows the last hour or so: forecasts days ahead then extend a
//! short-term slope; lower `beta` (or 0) for those.
//!
//! State: the seasons' coefficients (8 bytes each) and a dozen numbers:
//! 2,218 bytes with the defaults (3,754 bytes during the warm-up, which
//! also keeps a sum and count per bucket of the shortest season). A state
//! saved with other `periods` or `buckets_per_period` is refused.

use lookout_plugin_sdk::detect::{
    Forecast, Point, StateReader, StateWriter, Verdict, check_threshold,
};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Format of the saved state; bump when its layout changes.
const STATE_VERSION: u8 = 1;
/// Weight of each new prediction error in the error variance: about 35
/// points of memory, so a change of noise level is learnt within hours at
/// 5-minute points and minutes at 15-second ones.
const ERROR_WEIGHT: f64 = 0.02;
/// Errors below this fraction of the values' size are rounding error.
const NEGLIGIBLE: f64 = 1e-9;
const MAX_PERIODS: usize = 4;
const MIN_PERIOD_MS: i64 = 2_000;
const MAX_PERIOD_MS: i64 = 366 * DAY_MS;
/// One coefficient a minute for a week: more buys nothing at scrape
/// intervals of a minute or more, and costs 8 bytes of state each.
const MAX_BUCKETS: usize = 10_080;
/// Forecast paths are stepped at most this many times.
const MAX_FORECAST_STEPS: f64 = 10_000.0;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A period from the configuration, in milliseconds: a duration string or
/// a number of seconds.
struct PeriodMs(i64);

impl<'de> Deserialize<'de> for PeriodMs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PeriodVisitor;

        impl serde::de::Visitor<'_> for PeriodVisitor {
            type Value = PeriodMs;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"1d\" or a number of seconds")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<PeriodMs, E> {
                parse_duration_ms(text).map(PeriodMs).ok_or_else(|| {
                    E::custom(format!(
                        "`periods`: `{text}` is not a duration (use e.g. 90m, 12h, 1d, 1w)"
                    ))
                })
            }

            fn visit_f64<E: serde::de::Error>(self, seconds: f64) -> Result<PeriodMs, E> {
                let ms = seconds * 1000.0;
                if ms.is_finite() && ms.abs() < i64::MAX as f64 {
                    Ok(PeriodMs(ms.round() as i64))
                } else {
                    Err(E::custom(format!("`periods`: {seconds} s is not a period")))
                }
            }

            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<PeriodMs, E> {
                self.visit_f64(seconds as f64)
            }

            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<PeriodMs, E> {
                self.visit_f64(seconds as f64)
            }
        }

        deserializer.deserialize_any(PeriodVisitor)
    }
}

/// Parses `500ms`, `15s`, `90m`, `1h30m`, `1d`, `1w` (Prometheus' units)
/// into milliseconds.
fn parse_duration_ms(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            "y" => 365 * DAY_MS,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit_ms)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    periods: Vec<PeriodMs>,
    buckets_per_period: Option<Vec<usize>>,
    alpha: f64,
    beta: f64,
    gamma: f64,
    threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            periods: vec![PeriodMs(DAY_MS), PeriodMs(7 * DAY_MS)],
            buckets_per_period: None,
            alpha: 0.05,
            beta: 0.005,
            gamma: 0.2,
            threshold: 3.5,
        }
    }
}

/// One seasonal period and how finely it is kept.
struct Season {
    period_ms: i64,
    buckets: usize,
    /// Milliseconds between coefficients.
    width_ms: f64,
}

impl Season {
    /// The coefficient at or before `t_ms` and the interpolation weight of
    /// the one after it (coefficients sit at bucket centres).
    fn position(&self, t_ms: i64) -> (usize, f64) {
        let phase = t_ms.rem_euclid(self.period_ms) as f64 / self.width_ms - 0.5;
        let below = phase.floor();
        let index = (below as i64).rem_euclid(self.buckets as i64) as usize;
        (index, phase - below)
    }

    /// The bucket `t_ms` falls in.
    fn bucket(&self, t_ms: i64) -> usize {
        let bucket = (t_ms.rem_euclid(self.period_ms) as f64 / self.width_ms) as usize;
        bucket.min(self.buckets - 1)
    }

    fn value(&self, coefficients: &[f64], (index, above): (usize, f64)) -> f64 {
        let next = (index + 1) % self.buckets;
        coefficients[index] * (1.0 - above) + coefficients[next] * above
    }
}

/// The checked configuration.
struct Settings {
    seasons: Vec<Season>,
    /// Index of the shortest season, the one the warm-up starts.
    shortest: usize,
    alpha: f64,
    beta: f64,
    gamma: f64,
    threshold: f64,
}

impl Config {
    fn check(self) -> Result<Settings, PluginError> {
        if self.periods.is_empty() || self.periods.len() > MAX_PERIODS {
            return Err(PluginError::config(format!(
                "`periods` must list 1 to {MAX_PERIODS} periods, not {}",
                self.periods.len()
            )));
        }
        let buckets = match &self.buckets_per_period {
            Some(buckets) if buckets.len() != self.periods.len() => {
                return Err(PluginError::config(format!(
                    "`buckets_per_period` must give one number per period ({}), not {}",
                    self.periods.len(),
                    buckets.len()
                )));
            }
            Some(buckets) => buckets.clone(),
            None => self
                .periods
                .iter()
                .map(|&PeriodMs(ms)| default_buckets(ms))
                .collect(),
        };
        let mut seasons = Vec::with_capacity(self.periods.len());
        for (&PeriodMs(period_ms), buckets) in self.periods.iter().zip(buckets) {
            if !(MIN_PERIOD_MS..=MAX_PERIOD_MS).contains(&period_ms) {
                return Err(PluginError::config(format!(
                    "`periods` must be from 2 s to 366 d, not {period_ms} ms"
                )));
            }
            if !(2..=MAX_BUCKETS).contains(&buckets) || buckets as i64 > period_ms / 1000 {
                return Err(PluginError::config(format!(
                    "`buckets_per_period` must be 2 to {MAX_BUCKETS} and at most one a second \
                     of its period, not {buckets} for {period_ms} ms"
                )));
            }
            seasons.push(Season {
                period_ms,
                buckets,
                width_ms: period_ms as f64 / buckets as f64,
            });
        }
        let shortest = (0..seasons.len())
            .min_by_key(|&i| seasons[i].period_ms)
            .expect("at least one season");
        let weight = |field: &str, value: f64, zero_allowed: bool| {
            let low_ok = if zero_allowed {
                value >= 0.0
            } else {
                value > 0.0
            };
            if low_ok && value <= 1.0 {
                Ok(value)
            } else {
                Err(PluginError::config(format!(
                    "`{field}` must be {} 0 and at most 1, not {value}",
                    if zero_allowed { "at least" } else { "above" }
                )))
            }
        };
        let alpha = weight("alpha", self.alpha, false)?;
        let beta = weight("beta", self.beta, true)?;
        let gamma = weight("gamma", self.gamma, false)?;
        check_threshold(self.threshold)?;
        Ok(Settings {
            seasons,
            shortest,
            alpha,
            beta,
            gamma,
            threshold: self.threshold,
        })
    }
}

/// 96 coefficients (every 15 minutes of a day) up to a day, one an hour
/// above; never more than one a second.
fn default_buckets(period_ms: i64) -> usize {
    let buckets = if period_ms <= DAY_MS {
        96
    } else {
        (period_ms + HOUR_MS - 1) / HOUR_MS
    };
    (buckets.min(period_ms / 1000) as usize).clamp(2, MAX_BUCKETS)
}

/// What the warm-up gathers to start the model.
#[derive(Default)]
struct Warmup {
    sum: f64,
    /// Σ (xᵢ − xᵢ₋₁)², for the von Neumann estimate of the noise.
    squared_steps: f64,
    last_value: f64,
    /// Per bucket of the shortest season.
    bucket_sums: Vec<f64>,
    bucket_counts: Vec<f64>,
}

struct Seasonal {
    settings: Settings,
    warming_up: bool,
    /// Points learnt from (saturating).
    count: u64,
    first_ms: i64,
    /// Timestamp of the latest point learnt.
    last_ms: i64,
    /// The deseasonalised value at `last_ms`.
    level: f64,
    /// Per second.
    trend: f64,
    /// Exponentially weighted mean square of the prediction errors.
    error_variance: f64,
    /// Per season, its coefficients.
    coefficients: Vec<Vec<f64>>,
    warmup: Warmup,
}

impl Seasonal {
    fn season_value(&self, t_ms: i64) -> f64 {
        self.settings
            .seasons
            .iter()
            .zip(&self.coefficients)
            .map(|(season, values)| season.value(values, season.position(t_ms)))
            .sum()
    }

    /// The forecast path `seconds` after the last point.
    fn path(&self, seconds: f64) -> f64 {
        let t_ms = self.last_ms + (seconds * 1000.0).round() as i64;
        self.level + self.trend * seconds + self.season_value(t_ms)
    }

    fn warm_up(&mut self, point: Point) {
        let warmup = &mut self.warmup;
        if self.count == 0 {
            self.first_ms = point.timestamp_ms;
            self.last_ms = point.timestamp_ms;
        } else {
            warmup.squared_steps += (point.value - warmup.last_value).powi(2);
        }
        let bucket = self.settings.seasons[self.settings.shortest].bucket(point.timestamp_ms);
        warmup.sum += point.value;
        warmup.last_value = point.value;
        warmup.bucket_sums[bucket] += point.value;
        warmup.bucket_counts[bucket] += 1.0;
        self.count += 1;
        self.last_ms = self.last_ms.max(point.timestamp_ms);
    }

    /// Starts level, the shortest season and σ from the warm-up.
    fn finish_warm_up(&mut self) {
        let warmup = std::mem::take(&mut self.warmup);
        let n = self.count as f64;
        self.level = warmup.sum / n;
        self.trend = 0.0;
        self.error_variance = if self.count >= 2 {
            warmup.squared_steps / (2.0 * (n - 1.0))
        } else {
            0.0
        };
        let seen: Vec<usize> = (0..warmup.bucket_counts.len())
            .filter(|&k| warmup.bucket_counts[k] > 0.0)
            .collect();
        let season = &mut self.coefficients[self.settings.shortest];
        let buckets = season.len();
        let mean_of = |k: usize| warmup.bucket_sums[k] / warmup.bucket_counts[k] - self.level;
        for (i, &k) in seen.iter().enumerate() {
            // Fill the buckets up to the next seen one (circularly) by
            // interpolating between the two.
            let next = seen[(i + 1) % seen.len()];
            let gap = (next + buckets - k - 1) % buckets + 1;
            let (from, to) = (mean_of(k), mean_of(next));
            for step in 0..gap {
                let weight = step as f64 / gap as f64;
                season[(k + step) % buckets] = from * (1.0 - weight) + to * weight;
            }
        }
        self.warming_up = false;
    }

    fn learn(&mut self, point: Point) -> Verdict {
        let settings = &self.settings;
        let dt_ms = (point.timestamp_ms - self.last_ms).max(0);
        let dt = dt_ms as f64 / 1000.0;
        let predicted_level = self.level + self.trend * dt;
        let predicted = predicted_level + self.season_value(point.timestamp_ms);
        let mut error = point.value - predicted;
        let deviation = self.error_variance.sqrt();
        let negligible = NEGLIGIBLE * predicted.abs().max(point.value.abs()).max(1.0);
        let score = if deviation > negligible {
            error.abs() / deviation
        } else if error.abs() > negligible {
            settings.threshold * 2.0
        } else {
            0.0
        };
        let verdict = Verdict::scored(score, settings.threshold);
        if verdict.anomalous && deviation > negligible {
            let edge = settings.threshold * deviation;
            error = error.clamp(-edge, edge);
        }
        self.level = predicted_level + settings.alpha * error;
        if dt > 0.0 {
            // Component form β·(Δlevel / Δt) + (1 − β)·trend, simplified.
            self.trend += settings.alpha * settings.beta * error / dt;
        }
        let seasonal_error = (1.0 - settings.alpha) * error;
        for (season, values) in settings.seasons.iter().zip(&mut self.coefficients) {
            let passes = (dt_ms as f64 / season.width_ms).min(1.0);
            let gain = 1.0 - (1.0 - settings.gamma).powf(passes);
            let (index, above) = season.position(point.timestamp_ms);
            values[index] += gain * (1.0 - above) * seasonal_error;
            values[(index + 1) % season.buckets] += gain * above * seasonal_error;
            // Once a cycle, move the season's mean into the level.
            if point.timestamp_ms.div_euclid(season.period_ms)
                != self.last_ms.div_euclid(season.period_ms)
            {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                values.iter_mut().for_each(|v| *v -= mean);
                self.level += mean;
            }
        }
        self.error_variance =
            (1.0 - ERROR_WEIGHT) * self.error_variance + ERROR_WEIGHT * error * error;
        self.last_ms = self.last_ms.max(point.timestamp_ms);
        self.count = self.count.saturating_add(1);
        verdict
    }
}

impl Detector for Seasonal {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("seasonal").description(
            "Holt-Winters (additive, daily and weekly seasons by timestamp): distance from the \
             predicted value in standard deviations of the prediction error; forecasts too.",
        )
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        let settings = config.check()?;
        let coefficients = settings
            .seasons
            .iter()
            .map(|s| vec![0.0; s.buckets])
            .collect();
        let shortest_buckets = settings.seasons[settings.shortest].buckets;
        Ok(Seasonal {
            warming_up: true,
            count: 0,
            first_ms: 0,
            last_ms: 0,
            level: 0.0,
            trend: 0.0,
            error_variance: 0.0,
            coefficients,
            warmup: Warmup {
                bucket_sums: vec![0.0; shortest_buckets],
                bucket_counts: vec![0.0; shortest_buckets],
                ..Warmup::default()
            },
            settings,
        })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        if !point.value.is_finite() {
            return Verdict::LEARNING;
        }
        if self.warming_up {
            let shortest_ms = self.settings.seasons[self.settings.shortest].period_ms;
            if self.count == 0 || point.timestamp_ms - self.first_ms < shortest_ms {
                self.warm_up(point);
                return Verdict::LEARNING;
            }
            self.finish_warm_up();
        }
        self.learn(point)
    }

    fn forecast(&self, horizon_ms: i64, threshold: Option<f64>) -> Option<Forecast> {
        if self.warming_up || horizon_ms < 0 {
            return None;
        }
        let horizon = horizon_ms as f64 / 1000.0;
        let value = self.path(horizon);
        let Some(threshold) = threshold else {
            return Some(Forecast {
                value,
                seconds_to_threshold: None,
            });
        };
        let narrowest = self
            .settings
            .seasons
            .iter()
            .map(|s| s.width_ms / 1000.0)
            .fold(f64::INFINITY, f64::min);
        let step = narrowest.max(horizon / MAX_FORECAST_STEPS);
        let start = self.path(0.0);
        let side = (start - threshold).signum();
        let mut seconds_to_threshold = (start == threshold).then_some(0.0);
        let (mut before_t, mut before) = (0.0, start);
        while seconds_to_threshold.is_none() && before_t < horizon {
            let t = (before_t + step).min(horizon);
            let now = self.path(t);
            if (now - threshold).signum() != side {
                let share = (threshold - before) / (now - before);
                seconds_to_threshold = Some(before_t + share * (t - before_t));
            }
            (before_t, before) = (t, now);
        }
        Some(Forecast {
            value,
            seconds_to_threshold,
        })
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state
            .bool(self.warming_up)
            .u64(self.count)
            .i64(self.first_ms)
            .i64(self.last_ms)
            .f64(self.level)
            .f64(self.trend)
            .f64(self.error_variance)
            .f64(self.warmup.sum)
            .f64(self.warmup.squared_steps)
            .f64(self.warmup.last_value);
        for values in &self.coefficients {
            state.f64s(values.iter().copied());
        }
        state.f64s(self.warmup.bucket_sums.iter().copied());
        state.f64s(self.warmup.bucket_counts.iter().copied());
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut detector = Seasonal::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        detector.warming_up = reader.bool()?;
        detector.count = reader.u64()?;
        detector.first_ms = reader.i64()?;
        detector.last_ms = reader.i64()?;
        detector.level = reader.f64()?;
        detector.trend = reader.f64()?;
        detector.error_variance = reader.f64()?;
        detector.warmup.sum = reader.f64()?;
        detector.warmup.squared_steps = reader.f64()?;
        detector.warmup.last_value = reader.f64()?;
        let mismatch =
            || PluginError::permanent("saved state has other periods or buckets than the config");
        for (season, values) in detector
            .settings
            .seasons
            .iter()
            .zip(&mut detector.coefficients)
        {
            *values = reader.f64s(MAX_BUCKETS)?;
            if values.len() != season.buckets {
                return Err(mismatch());
            }
        }
        let shortest_buckets = detector.settings.seasons[detector.settings.shortest].buckets;
        let warmup_buckets = if detector.warming_up {
            shortest_buckets
        } else {
            0
        };
        detector.warmup.bucket_sums = reader.f64s(MAX_BUCKETS)?;
        detector.warmup.bucket_counts = reader.f64s(MAX_BUCKETS)?;
        if detector.warmup.bucket_sums.len() != warmup_buckets
            || detector.warmup.bucket_counts.len() != warmup_buckets
        {
            return Err(mismatch());
        }
        reader.finish()?;
        Ok(detector)
    }
}

lookout_plugin_sdk::export_detector!(Seasonal);

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn config(json: &str) -> Config {
        lookout_plugin_sdk::parse_config(json).unwrap()
    }

    fn detector(json: &str) -> Seasonal {
        Seasonal::create(config(json)).unwrap()
    }

    /// Deterministic noise, uniform in [−1, 1): σ ≈ 0.58.
    fn noise(i: i64) -> f64 {
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64 * 2.0 - 1.0
    }

    /// 50 ± 10 over a day, peaking at 06:00 UTC (shifted by `shift_ms`).
    fn daily(t_ms: i64, shift_ms: i64) -> f64 {
        let phase = (t_ms - shift_ms).rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
        50.0 + 10.0 * (std::f64::consts::TAU * phase).sin()
    }

    #[test]
    fn durations_and_seconds_are_periods() {
        assert_eq!(parse_duration_ms("1d"), Some(DAY_MS));
        assert_eq!(parse_duration_ms("1h30m"), Some(90 * MINUTE));
        assert_eq!(parse_duration_ms("1w"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("1.5h"), None);
        assert_eq!(parse_duration_ms("d"), None);
        assert_eq!(parse_duration_ms(""), None);
        let d = detector(r#"{"periods": ["12h", 3600, 90.5]}"#);
        let periods: Vec<i64> = d.settings.seasons.iter().map(|s| s.period_ms).collect();
        assert_eq!(periods, vec![12 * HOUR_MS, HOUR_MS, 90_500]);
        let buckets: Vec<usize> = d.settings.seasons.iter().map(|s| s.buckets).collect();
        assert_eq!(buckets, vec![96, 96, 90]);
        assert_eq!(d.settings.shortest, 2);
        let d = detector("");
        let buckets: Vec<usize> = d.settings.seasons.iter().map(|s| s.buckets).collect();
        assert_eq!(buckets, vec![96, 168]);
    }

    #[test]
    fn warm_up_starts_level_and_season_from_bucket_means() {
        // A 1-hour period in 4 buckets, a point every 5 minutes: the
        // buckets see 10, 20, 30 and nothing (the last quarter is missing).
        let mut d = detector(r#"{"periods": ["1h"], "buckets_per_period": [4]}"#);
        for i in 0..9 {
            let v = d.observe(Point {
                timestamp_ms: i * 5 * MINUTE,
                value: [10.0, 20.0, 30.0][i as usize / 3],
            });
            assert!(v.score.is_nan());
        }
        assert!(d.forecast(MINUTE, None).is_none());
        // The first point of the next hour ends the warm-up: level 20,
        // buckets −10, 0, 10, and the missing one halfway from 10 back to −10.
        d.observe(Point {
            timestamp_ms: 60 * MINUTE,
            value: 10.0,
        });
        assert!(!d.warming_up);
        // Before learning from that point the season was [−10, 0, 10, 0];
        // σ started at √(Σ(Δx)² / 2(n − 1)) = √((100 + 100) / 16).
        let mut fresh = detector(r#"{"periods": ["1h"], "buckets_per_period": [4]}"#);
        for i in 0..9 {
            fresh.observe(Point {
                timestamp_ms: i * 5 * MINUTE,
                value: [10.0, 20.0, 30.0][i as usize / 3],
            });
        }
        fresh.finish_warm_up();
        assert_eq!(fresh.level, 20.0);
        assert_eq!(fresh.coefficients[0], vec![-10.0, 0.0, 10.0, 0.0]);
        assert_eq!(fresh.error_variance, 200.0 / 16.0);
    }

    #[test]
    fn a_daily_sine_is_learnt_and_its_phase_break_flagged() {
        // Ten days at a 5-minute step; from day 6, 10:00 the cycle runs 8
        // hours late. Both curves are at 55 then, so there is no jump: the
        // old one turns down, the new one keeps rising.
        let step = 5 * MINUTE;
        let break_at = 6 * DAY_MS + 10 * HOUR_MS;
        let mut d = detector("");
        let mut flagged = Vec::new();
        for i in 0..10 * DAY_MS / step {
            let t = i * step;
            let shift = if t >= break_at { 8 * HOUR_MS } else { 0 };
            let v = d.observe(Point {
                timestamp_ms: t,
                value: daily(t, shift) + noise(i),
            });
            assert_eq!(v.score.is_nan(), t < DAY_MS, "at {t}");
            if v.anomalous {
                flagged.push(t);
            }
        }
        let before: Vec<_> = flagged.iter().filter(|&&t| t < break_at).collect();
        assert!(
            before.len() <= 2,
            "false alarms before the break: {before:?}"
        );
        // The break is seen within 3 hours.
        let first_after = flagged.iter().find(|&&t| t >= break_at).copied();
        assert!(
            first_after.is_some_and(|t| t - break_at <= 3 * HOUR_MS),
            "{first_after:?}"
        );
        // … and the new phase is learnt: the last two days are quiet.
        let late: Vec<_> = flagged.iter().filter(|&&t| t >= 8 * DAY_MS).collect();
        assert!(late.len() <= 2, "still flagging after two days: {late:?}");
    }

    #[test]
    fn timestamps_not_point_counts_set_the_season() {
        // The same daily shape at 15-minute and 1-minute steps: both learn
        // it and flag a value normal at noon but not at 18:00.
        for step in [15 * MINUTE, MINUTE] {
            let mut d = detector(r#"{"periods": ["1d"]}"#);
            let mut flagged = Vec::new();
            let end = 4 * DAY_MS;
            let mut t = 0;
            let mut i = 0;
            while t < end {
                // 18:00 (the trough, 40) on day 3 gets noon's 50.
                let value = if t == 3 * DAY_MS + 18 * HOUR_MS {
                    50.0
                } else {
                    daily(t, 0) + 0.2 * noise(i)
                };
                if d.observe(Point {
                    timestamp_ms: t,
                    value,
                })
                .anomalous
                {
                    flagged.push(t);
                }
                t += step;
                i += 1;
            }
            assert_eq!(flagged, vec![3 * DAY_MS + 18 * HOUR_MS], "step {step}");
        }
    }

    #[test]
    fn forecasts_the_season_and_when_it_crosses() {
        let mut d = detector(r#"{"periods": ["1d"], "beta": 0}"#);
        let step = 5 * MINUTE;
        // Six days, ending at midnight (the sine at 50, rising).
        for i in 0..=6 * DAY_MS / step {
            d.observe(Point {
                timestamp_ms: i * step,
                value: daily(i * step, 0) + 0.1 * noise(i),
            });
        }
        let f = d.forecast(6 * HOUR_MS, Some(55.0)).unwrap();
        // 06:00 is the peak, 60.
        assert!((f.value - 60.0).abs() < 0.5, "{f:?}");
        // 55 is reached when sin = ½: 1/12 of a day, 7200 s.
        let seconds = f.seconds_to_threshold.unwrap();
        assert!((seconds - 7200.0).abs() < 300.0, "{seconds}");
        // 65 is never reached; 45 is reached on the way down, at 7/12 day.
        assert_eq!(
            d.forecast(DAY_MS, Some(65.0)).unwrap().seconds_to_threshold,
            None
        );
        let seconds = d.forecast(DAY_MS, Some(45.0)).unwrap().seconds_to_threshold;
        assert!(
            seconds.is_some_and(|s| (s - 50_400.0).abs() < 300.0),
            "{seconds:?}"
        );
        assert!(d.forecast(-1, None).is_none());
    }

    #[test]
    fn a_regular_series_that_moves_is_reported() {
        let mut d = detector(r#"{"periods": ["1h"], "buckets_per_period": [4]}"#);
        for i in 0..40 {
            let v = d.observe(Point {
                timestamp_ms: i * 5 * MINUTE,
                value: 7.0,
            });
            assert!(v.score.is_nan() || v.score == 0.0, "{v:?}");
        }
        let v = d.observe(Point {
            timestamp_ms: 40 * 5 * MINUTE,
            value: 7.5,
        });
        // Twice the default threshold of 3.5.
        assert!(v.anomalous && v.score == 7.0, "{v:?}");
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut d = detector(r#"{"periods": ["1h"]}"#);
        for i in 0..20 {
            d.observe(Point {
                timestamp_ms: i * 5 * MINUTE,
                value: i as f64,
            });
        }
        let before = d.save();
        assert!(
            d.observe(Point {
                timestamp_ms: 21 * 5 * MINUTE,
                value: f64::NAN
            })
            .score
            .is_nan()
        );
        assert_eq!(d.save(), before);
    }

    #[test]
    fn saved_state_restores_the_same_detector() {
        let json = r#"{"periods": ["2h", "1d"]}"#;
        let mut a = detector(json);
        let step = 5 * MINUTE;
        let value = |i: i64| daily(i * step, 0) + noise(i) + if i == 700 { 9.0 } else { 0.0 };
        // Save during the warm-up, then again after it.
        for i in 0..10 {
            a.observe(Point {
                timestamp_ms: i * step,
                value: value(i),
            });
        }
        let mut b = Seasonal::restore(config(json), &a.save()).unwrap();
        for i in 10..800 {
            let p = Point {
                timestamp_ms: i * step,
                value: value(i),
            };
            assert_eq!(a.observe(p).score.to_bits(), b.observe(p).score.to_bits());
            if i == 500 {
                b = Seasonal::restore(config(json), &b.save()).unwrap();
            }
        }
        assert_eq!(a.save(), b.save());
        assert_eq!(
            a.forecast(DAY_MS, Some(55.0)),
            b.forecast(DAY_MS, Some(55.0))
        );
        // Other seasons, another version, truncation: refused.
        assert!(Seasonal::restore(config(r#"{"periods": ["1d"]}"#), &a.save()).is_err());
        assert!(Seasonal::restore(config(json), &[9, 0]).is_err());
        assert!(Seasonal::restore(config(json), &a.save()[..100]).is_err());
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = |json: &str| match lookout_plugin_sdk::parse_config::<Config>(json)
            .and_then(Seasonal::create)
        {
            Err(PluginError::Config(m)) => m,
            _ => panic!("expected a config error for {json}"),
        };
        assert!(err(r#"{"periods": []}"#).contains("`periods`"));
        assert!(err(r#"{"periods": ["1 day"]}"#).contains("`periods`"));
        assert!(err(r#"{"periods": ["1s"]}"#).contains("`periods`"));
        assert!(err(r#"{"periods": [-60]}"#).contains("`periods`"));
        assert!(err(r#"{"buckets_per_period": [96]}"#).contains("`buckets_per_period`"));
        assert!(
            err(r#"{"periods": ["1m"], "buckets_per_period": [120]}"#)
                .contains("`buckets_per_period`")
        );
        assert!(err(r#"{"alpha": 0}"#).contains("`alpha`"));
        assert!(err(r#"{"beta": -0.1}"#).contains("`beta`"));
        assert!(err(r#"{"gamma": 2}"#).contains("`gamma`"));
        assert!(err(r#"{"threshold": 0}"#).contains("`threshold`"));
        assert!(err(r#"{"period": ["1d"]}"#).contains("period"));
    }

    /// `cargo test --release -p lookout-plugin-seasonal -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let step = 15_000;
        let point = |i: i64| Point {
            timestamp_ms: i * step,
            value: daily(i * step, 0) + noise(i),
        };
        // Past the warm-up (a day of 15-second points).
        let mut d = detector("");
        for i in 0..10_000 {
            d.observe(point(i));
        }
        let mut state = d.save();
        let rounds = 100_000;
        let started = std::time::Instant::now();
        for i in 10_000..10_000 + rounds {
            let mut d = Seasonal::restore(Config::default(), &state).unwrap();
            std::hint::black_box(d.observe(point(i)));
            state = d.save();
        }
        let per_batch = started.elapsed() / rounds as u32;
        let mut d = detector("");
        let points: Vec<Point> = (0..1_000_000).map(point).collect();
        let started = std::time::Instant::now();
        for &p in &points {
            std::hint::black_box(d.observe(p));
        }
        let per_point = started.elapsed() / points.len() as u32;
        let started = std::time::Instant::now();
        let forecast = d.forecast(7 * DAY_MS, Some(1e9));
        let forecast_time = started.elapsed();
        println!(
            "seasonal: state {} bytes; restore+observe(1)+save {per_batch:?}; \
             observe {per_point:?}/point; forecast 7d {forecast_time:?} ({forecast:?})",
            state.len()
        );
    }
}
