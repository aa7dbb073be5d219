//! `{{name}}`: a lookout notifier. It POSTs each notification, as
//! Alertmanager's webhook JSON, to the URL in its config; change `notify`
//! to speak your service's API.

use std::time::Duration;

use lookout_plugin_sdk::{Delivery, Notification, Notifier, PluginError, PluginInfo, http, plugin_info};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
}

struct Plugin;

impl Notifier for Plugin {
    type Config = Config;

    fn describe() -> PluginInfo {
        // The receiver's URL host is granted by lookout when it routes a
        // notification here, so nothing is asked for at install.
        plugin_info!("{{name}}").description("POSTs notifications as webhook JSON to a URL")
    }

    fn notify(notification: Notification, config: Config, timeout: Duration) -> Result<Delivery, PluginError> {
        let response = http::Request::post(config.url.as_str())
            .header("content-type", "application/json")
            .body(notification.to_webhook_json())
            .timeout(timeout)
            .send()
            .map_err(|e| PluginError::transient(format!("posting to {}: {e}", config.url)))?;
        match response.status {
            200..=299 => Ok(Delivery::new(format!("answered {}", response.status))),
            429 | 500..=599 => Err(PluginError::transient(format!("answered {}", response.status))),
            status => Err(PluginError::permanent(format!("answered {status}"))),
        }
    }
}

lookout_plugin_sdk::export_notifier!(Plugin);
