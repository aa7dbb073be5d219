//! `{{name}}`: a lookout probe. It GETs the target URL and succeeds on a
//! 2xx answer; change `probe` to check what matters to you.

use std::time::{Duration, Instant};

use lookout_plugin_sdk::{
    FailureReason, PluginError, PluginInfo, Probe, ProbeReport, TARGET, http, plugin_info,
};
use serde::Deserialize;

/// The job's `config` table; unknown fields are refused.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Text the body must contain.
    expect: Option<String>,
}

struct Plugin;

impl Probe for Plugin {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("{{name}}")
            .description("GETs the target URL and succeeds on a 2xx answer")
            // Ask only for what the plugin needs: here, the job's target.
            .http([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let response = match http::Request::get(target).timeout(timeout).send() {
            Ok(response) => response,
            Err(error) => {
                return Ok(ProbeReport::failure(error.reason(), error.to_string())
                    .duration(started.elapsed()));
            }
        };
        let report = if !response.is_success() {
            ProbeReport::failure(FailureReason::Status, format!("status {}", response.status))
        } else if config.expect.as_ref().is_some_and(|text| !response.text().contains(text.as_str())) {
            ProbeReport::failure(FailureReason::Body, "the body lacks the expected text")
        } else {
            ProbeReport::success(started.elapsed())
        };
        Ok(report
            .duration(started.elapsed())
            .with_sample("probe_http_status_code", response.status))
    }
}

lookout_plugin_sdk::export_probe!(Plugin);
