//! `noop` probe: succeeds at once without doing anything.
//!
//! It measures what an invocation costs by itself (instantiation, the call,
//! config parsing, result conversion), so lookout's benchmarks use it as the
//! baseline. It takes no configuration and asks for no capabilities.

use std::time::Duration;

use lookout_plugin_sdk::{NoConfig, PluginError, PluginInfo, Probe, ProbeReport, plugin_info};

struct NoopProbe;

impl Probe for NoopProbe {
    type Config = NoConfig;

    fn describe() -> PluginInfo {
        plugin_info!("noop").description(
            "Succeeds at once without doing anything; the baseline of invocation-overhead \
             benchmarks.",
        )
    }

    fn probe(_target: &str, _: NoConfig, _timeout: Duration) -> Result<ProbeReport, PluginError> {
        Ok(ProbeReport::success(Duration::ZERO))
    }
}

lookout_plugin_sdk::export_probe!(NoopProbe);
