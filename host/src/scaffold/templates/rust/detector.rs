//! `{{name}}`: a lookout detector. It scores each point by how far it is
//! from an exponentially weighted moving average, in units of the average's
//! own deviation; change `observe` to judge points your way.

use lookout_plugin_sdk::detect::{Point, StateReader, StateWriter, Verdict};
use lookout_plugin_sdk::{Detector, PluginError, PluginInfo, plugin_info};
use serde::Deserialize;

/// Bumped whenever the saved state's layout changes: an older state is
/// then refused and the series starts afresh.
const STATE_VERSION: u8 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Weight of the newest point, in (0, 1].
    alpha: f64,
    /// Score at which a point is anomalous.
    threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { alpha: 0.1, threshold: 4.0 }
    }
}

struct Plugin {
    config: Config,
    points: u64,
    mean: f64,
    deviation: f64,
}

impl Detector for Plugin {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("{{name}}").description("Scores points by their distance from a moving average")
    }

    fn create(config: Config) -> Result<Self, PluginError> {
        if !(config.alpha > 0.0 && config.alpha <= 1.0) {
            return Err(PluginError::config("`alpha` must be in (0, 1]"));
        }
        lookout_plugin_sdk::detect::check_threshold(config.threshold)?;
        Ok(Plugin { config, points: 0, mean: 0.0, deviation: 0.0 })
    }

    fn observe(&mut self, point: Point) -> Verdict {
        // Learn from a few points before judging any.
        let score = if self.points < 10 || self.deviation == 0.0 {
            f64::NAN
        } else {
            (point.value - self.mean).abs() / self.deviation
        };
        let alpha = self.config.alpha;
        if self.points == 0 {
            self.mean = point.value;
        } else {
            self.deviation = (1.0 - alpha) * self.deviation + alpha * (point.value - self.mean).abs();
            self.mean = (1.0 - alpha) * self.mean + alpha * point.value;
        }
        self.points += 1;
        Verdict::scored(score, self.config.threshold)
    }

    fn save(&self) -> Vec<u8> {
        let mut state = StateWriter::new(STATE_VERSION);
        state.u64(self.points).f64(self.mean).f64(self.deviation);
        state.finish()
    }

    fn restore(config: Config, state: &[u8]) -> Result<Self, PluginError> {
        let mut plugin = Plugin::create(config)?;
        let mut reader = StateReader::new(state, STATE_VERSION)?;
        plugin.points = reader.u64()?;
        plugin.mean = reader.f64()?;
        plugin.deviation = reader.f64()?;
        reader.finish()?;
        Ok(plugin)
    }
}

lookout_plugin_sdk::export_detector!(Plugin);
