//! `prometheus-scrape` exporter: scrapes a Prometheus `/metrics` endpoint
//! (text format 0.0.4 or OpenMetrics) the way Prometheus does.
//!
//! Target: `host:port`, as in a `static_configs` target. Configuration (all
//! optional, Prometheus' `scrape_config` names):
//!
//! ```json
//! { "metrics_path": "/metrics", "scheme": "http", "params": {"module": ["http_2xx"]},
//!   "honor_timestamps": true }
//! ```
//!
//! lookout adds `job`, `instance`, `up`, `scrape_duration_seconds` and
//! `scrape_samples_scraped` to what this returns, as Prometheus would. A
//! non-2xx answer or an unparsable body fails the scrape (`up` 0), as in
//! Prometheus.

use std::collections::BTreeMap;
use std::time::Duration;

use lookout_expfmt::Format;
use lookout_plugin_sdk::{Exporter, PluginError, PluginInfo, Sample, TARGET, http, plugin_info};
use serde::Deserialize;

/// What Prometheus 2.42 sends: OpenMetrics preferred, text accepted.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    metrics_path: String,
    scheme: String,
    params: BTreeMap<String, Vec<String>>,
    honor_timestamps: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_timestamps: true,
        }
    }
}

struct Scrape;

impl Exporter for Scrape {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("prometheus-scrape")
            .description("Scrapes a Prometheus /metrics endpoint (text 0.0.4 or OpenMetrics). Target: host:port.")
            .http([TARGET])
    }

    fn collect(
        target: &str,
        config: Config,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PluginError> {
        if config.scheme != "http" && config.scheme != "https" {
            return Err(PluginError::config(format!(
                "scheme {:?} is neither http nor https",
                config.scheme
            )));
        }
        let url = scrape_url(target, &config);
        let response = http::Request::get(&url)
            .header("accept", ACCEPT)
            .timeout(timeout)
            .send()?;
        if !(200..300).contains(&response.status) {
            return Err(PluginError::transient(format!(
                "server returned HTTP status {}",
                response.status
            )));
        }
        let format = Format::from_content_type(response.header_str("content-type").unwrap_or(""));
        let scraped = lookout_expfmt::parse(&response.text(), format)
            .map_err(|e| PluginError::transient(format!("parsing the scrape of {url}: {e}")))?;
        Ok(scraped
            .samples
            .into_iter()
            .map(|s| {
                let sample = s
                    .labels
                    .into_iter()
                    .fold(Sample::new(s.name, s.value), |sample, (k, v)| {
                        sample.label(k, v)
                    });
                match s.timestamp_ms {
                    Some(t) if config.honor_timestamps => sample.timestamp_ms(t),
                    _ => sample,
                }
            })
            .collect())
    }
}

/// `scheme://target/metrics_path?params`, parameters URL-encoded.
fn scrape_url(target: &str, config: &Config) -> String {
    let path = if config.metrics_path.starts_with('/') {
        config.metrics_path.clone()
    } else {
        format!("/{}", config.metrics_path)
    };
    let mut url = format!("{}://{target}{path}", config.scheme);
    let query: Vec<String> = config
        .params
        .iter()
        .flat_map(|(k, values)| {
            values
                .iter()
                .map(move |v| format!("{}={}", encode(k), encode(v)))
        })
        .collect();
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query.join("&"));
    }
    url
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

lookout_plugin_sdk::export_exporter!(Scrape);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_scrape_config() {
        let mut c = Config::default();
        assert_eq!(
            scrape_url("127.0.0.1:9100", &c),
            "http://127.0.0.1:9100/metrics"
        );
        c.metrics_path = "api/metrics".into();
        c.params
            .insert("module".into(), vec!["http 2xx".into(), "b".into()]);
        assert_eq!(
            scrape_url("h:1", &c),
            "http://h:1/api/metrics?module=http%202xx&module=b"
        );
    }
}
