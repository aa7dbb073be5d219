//! `http` probe: checks that a URL answers with an accepted status, in the
//! manner of blackbox_exporter's `http` prober.
//!
//! Target: an `http://` or `https://` URL. Configuration (all optional):
//!
//! ```json
//! {
//!   "method": "GET",
//!   "valid_status_codes": [200, 204],
//!   "headers": {"accept": "application/json"},
//!   "body": "…",
//!   "follow_redirects": true
//! }
//! ```
//!
//! `valid_status_codes` lists codes, classes (`"2xx"`) or ranges
//! (`"200-299"`); empty means any 2xx. Redirects are followed (up to 10)
//! unless `follow_redirects` is false.
//!
//! Samples: `probe_success`, `probe_duration_seconds`,
//! `probe_http_status_code`, `probe_http_content_length` (the
//! `content-length` header, else the bytes read), `probe_http_redirects`,
//! `probe_http_ssl` (1 if the final URL is https); all 0 when no response
//! came, as blackbox_exporter reports them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::http::{self, StatusCodes};
use lookout_plugin_sdk::{PluginError, PluginInfo, Probe, ProbeReport, TARGET};
use serde::Deserialize;

/// blackbox_exporter's default limit.
const MAX_REDIRECTS: u32 = 10;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    method: Option<String>,
    valid_status_codes: StatusCodes,
    headers: BTreeMap<String, String>,
    body: String,
    follow_redirects: Option<bool>,
}

struct HttpProbe;

impl Probe for HttpProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        lookout_plugin_sdk::plugin_info!("http")
            .description(
                "Checks that an http(s) URL answers with an accepted status code \
                 (blackbox_exporter's http prober). Target: the URL.",
            )
            .config_schema(
                r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "method": { "type": "string", "default": "GET" },
    "valid_status_codes": {
      "description": "Codes (200), classes (\"2xx\") or ranges (\"200-299\"); empty means any 2xx.",
      "type": "array",
      "items": { "type": ["integer", "string"] }
    },
    "headers": { "type": "object", "additionalProperties": { "type": "string" } },
    "body": { "type": "string" },
    "follow_redirects": { "type": "boolean", "default": true }
  }
}"#,
            )
            .http([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let follow = config.follow_redirects.unwrap_or(true);
        let method = config.method.as_deref().unwrap_or("GET");
        let request = http::Request::new(method, target)
            .headers(config.headers)
            .body(config.body)
            .timeout(timeout)
            .follow_redirects(if follow { MAX_REDIRECTS } else { 0 });
        // Without a response the HTTP client's error says why (dns, connect,
        // tls, timeout, denied …) and every sample is 0.
        let (report, response) = match request.send() {
            Ok(response) => match config.valid_status_codes.check(response.status) {
                Ok(()) => (ProbeReport::success(started.elapsed()), response),
                Err(error) => (ProbeReport::from(error), response),
            },
            Err(error) => (ProbeReport::from(error), http::Response::default()),
        };
        let length = response.content_length() as f64;
        let ssl = response.url.starts_with("https://");
        Ok(report
            .with_sample("probe_http_status_code", response.status)
            .with_sample("probe_http_content_length", length)
            .with_sample("probe_http_redirects", response.redirects)
            .with_sample("probe_http_ssl", u8::from(ssl)))
    }
}

lookout_plugin_sdk::export_probe!(HttpProbe);
