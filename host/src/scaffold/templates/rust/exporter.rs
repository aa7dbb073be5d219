//! `{{name}}`: a lookout exporter. It reports the system's load averages
//! from `/proc/loadavg` (node_exporter's names); change `collect` to gather
//! what matters to you.

use std::time::Duration;

use lookout_plugin_sdk::{Exporter, NoConfig, PluginError, PluginInfo, Sample, plugin_info};

struct Plugin;

impl Exporter for Plugin {
    type Config = NoConfig;

    fn describe() -> PluginInfo {
        plugin_info!("{{name}}")
            .description("Reports the load averages of the machine lookout runs on")
            // Read-only access to /proc; nothing else exists for the plugin.
            .files(["/proc"])
    }

    fn collect(_target: &str, _: NoConfig, _timeout: Duration) -> Result<Vec<Sample>, PluginError> {
        let text = std::fs::read_to_string("/proc/loadavg")
            .map_err(|e| PluginError::permanent(format!("reading /proc/loadavg: {e}")))?;
        let mut fields = text.split_whitespace();
        let mut samples = Vec::new();
        for name in ["node_load1", "node_load5", "node_load15"] {
            let value: f64 = fields
                .next()
                .and_then(|field| field.parse().ok())
                .ok_or_else(|| PluginError::permanent(format!("unexpected /proc/loadavg: {text}")))?;
            samples.push(Sample::new(name, value));
        }
        Ok(samples)
    }
}

lookout_plugin_sdk::export_exporter!(Plugin);
