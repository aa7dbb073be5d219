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
//!   "follow_redirects": true,
//!   "fail_if_ssl": false, "fail_if_not_ssl": false,
//!   "fail_if_body_matches_regexp": ["maintenance"],
//!   "fail_if_body_not_matches_regexp": ["\"status\":\"ok\""],
//!   "fail_if_header_matches": [{"header": "server", "regexp": "^old", "allow_missing": true}],
//!   "fail_if_header_not_matches": [{"header": "content-type", "regexp": "json"}],
//!   "basic_auth": {"username": "…", "password": "…"}, "bearer_token": "…"
//! }
//! ```
//!
//! These are blackbox_exporter's http module options, checked in its order
//! once the status is accepted: `fail_if_ssl`/`fail_if_not_ssl` (reason
//! `tls`), the body regexes (`body`), the header regexes (`header`; a
//! missing header fails unless `allow_missing`). `probe_failed_due_to_regex`
//! is 1 when a regex failed the probe.
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

use lookout_plugin_sdk::encoding::base64;
use lookout_plugin_sdk::http::{self, StatusCodes};
use lookout_plugin_sdk::{FailureReason, PluginError, PluginInfo, Probe, ProbeReport, TARGET};
use regex::Regex;
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
    fail_if_ssl: bool,
    fail_if_not_ssl: bool,
    fail_if_body_matches_regexp: Vec<String>,
    fail_if_body_not_matches_regexp: Vec<String>,
    fail_if_header_matches: Vec<HeaderMatch>,
    fail_if_header_not_matches: Vec<HeaderMatch>,
    basic_auth: Option<BasicAuth>,
    bearer_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMatch {
    header: String,
    regexp: String,
    #[serde(default)]
    allow_missing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    #[serde(default)]
    password: String,
}

/// The configured regexes, compiled once per probe; a bad one is a
/// configuration error naming it.
struct Checks {
    body_matches: Vec<Regex>,
    body_not_matches: Vec<Regex>,
    header_matches: Vec<(String, Regex, bool)>,
    header_not_matches: Vec<(String, Regex, bool)>,
}

fn regex(option: &str, text: &str) -> Result<Regex, PluginError> {
    Regex::new(text).map_err(|e| PluginError::config(format!("{option} {text:?}: {e}")))
}

impl Checks {
    fn compile(config: &Config) -> Result<Checks, PluginError> {
        let all = |option: &str, list: &[String]| -> Result<Vec<Regex>, PluginError> {
            list.iter().map(|t| regex(option, t)).collect()
        };
        let headers = |option: &str, list: &[HeaderMatch]| -> Result<_, PluginError> {
            list.iter()
                .map(|h| Ok((h.header.clone(), regex(option, &h.regexp)?, h.allow_missing)))
                .collect()
        };
        Ok(Checks {
            body_matches: all(
                "fail_if_body_matches_regexp",
                &config.fail_if_body_matches_regexp,
            )?,
            body_not_matches: all(
                "fail_if_body_not_matches_regexp",
                &config.fail_if_body_not_matches_regexp,
            )?,
            header_matches: headers("fail_if_header_matches", &config.fail_if_header_matches)?,
            header_not_matches: headers(
                "fail_if_header_not_matches",
                &config.fail_if_header_not_matches,
            )?,
        })
    }

    /// blackbox_exporter's checks of a response that came, in its order:
    /// the first failing one, if any (and whether a regex failed it).
    fn failure(
        &self,
        config: &Config,
        response: &http::Response,
    ) -> Option<(FailureReason, String, bool)> {
        let ssl = response.url.starts_with("https://");
        if config.fail_if_ssl && ssl {
            return Some((
                FailureReason::Tls,
                "the final URL is https (fail_if_ssl)".into(),
                false,
            ));
        }
        if config.fail_if_not_ssl && !ssl {
            return Some((
                FailureReason::Tls,
                "the final URL is not https (fail_if_not_ssl)".into(),
                false,
            ));
        }
        let body = response.text();
        if let Some(re) = self.body_matches.iter().find(|re| re.is_match(&body)) {
            return Some((
                FailureReason::Body,
                format!("body matched {:?}", re.as_str()),
                true,
            ));
        }
        if let Some(re) = self.body_not_matches.iter().find(|re| !re.is_match(&body)) {
            return Some((
                FailureReason::Body,
                format!("body did not match {:?}", re.as_str()),
                true,
            ));
        }
        let values = |name: &str| -> Vec<String> {
            response
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        for (name, re, allow_missing) in &self.header_matches {
            let found = values(name);
            if found.is_empty() && !allow_missing {
                return Some((FailureReason::Header, format!("no {name} header"), false));
            }
            if found.iter().any(|v| re.is_match(v)) {
                return Some((
                    FailureReason::Header,
                    format!("header {name} matched {:?}", re.as_str()),
                    true,
                ));
            }
        }
        for (name, re, allow_missing) in &self.header_not_matches {
            let found = values(name);
            if found.is_empty() {
                if *allow_missing {
                    continue;
                }
                return Some((FailureReason::Header, format!("no {name} header"), false));
            }
            if !found.iter().any(|v| re.is_match(v)) {
                return Some((
                    FailureReason::Header,
                    format!("header {name} did not match {:?}", re.as_str()),
                    true,
                ));
            }
        }
        None
    }
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
                r##"{
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
    "follow_redirects": { "type": "boolean", "default": true },
    "fail_if_ssl": { "type": "boolean", "default": false },
    "fail_if_not_ssl": { "type": "boolean", "default": false },
    "fail_if_body_matches_regexp": { "type": "array", "items": { "type": "string" } },
    "fail_if_body_not_matches_regexp": { "type": "array", "items": { "type": "string" } },
    "fail_if_header_matches": { "type": "array", "items": { "$ref": "#/$defs/header_match" } },
    "fail_if_header_not_matches": { "type": "array", "items": { "$ref": "#/$defs/header_match" } },
    "basic_auth": {
      "type": "object",
      "additionalProperties": false,
      "properties": { "username": { "type": "string" }, "password": { "type": "string" } },
      "required": ["username"]
    },
    "bearer_token": { "type": "string" }
  },
  "$defs": {
    "header_match": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "header": { "type": "string" },
        "regexp": { "type": "string" },
        "allow_missing": { "type": "boolean", "default": false }
      },
      "required": ["header", "regexp"]
    }
  }
}"##,
            )
            .http([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let checks = Checks::compile(&config)?;
        let follow = config.follow_redirects.unwrap_or(true);
        let method = config.method.as_deref().unwrap_or("GET");
        let mut request = http::Request::new(method, target)
            .headers(config.headers.clone())
            .body(config.body.clone())
            .timeout(timeout)
            .follow_redirects(if follow { MAX_REDIRECTS } else { 0 });
        match (&config.basic_auth, &config.bearer_token) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "set at most one of basic_auth and bearer_token",
                ));
            }
            (Some(basic), None) => {
                let pair = format!("{}:{}", basic.username, basic.password);
                request = request.header(
                    "authorization",
                    format!("Basic {}", base64(pair.as_bytes())),
                );
            }
            (None, Some(token)) => {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            (None, None) => {}
        }
        // Without a response the HTTP client's error says why (dns, connect,
        // tls, timeout, denied …) and every sample is 0.
        let mut failed_due_to_regex = false;
        let (report, response) = match request.send() {
            Ok(response) => match config.valid_status_codes.check(response.status) {
                Err(error) => (ProbeReport::from(error), response),
                Ok(()) => match checks.failure(&config, &response) {
                    Some((reason, message, by_regex)) => {
                        failed_due_to_regex = by_regex;
                        (ProbeReport::failure(reason, message), response)
                    }
                    None => (ProbeReport::success(started.elapsed()), response),
                },
            },
            Err(error) => (ProbeReport::from(error), http::Response::default()),
        };
        let length = response.content_length() as f64;
        let ssl = response.url.starts_with("https://");
        Ok(report
            .with_sample("probe_http_status_code", response.status)
            .with_sample("probe_http_content_length", length)
            .with_sample("probe_http_redirects", response.redirects)
            .with_sample("probe_http_ssl", u8::from(ssl))
            .with_sample("probe_failed_due_to_regex", u8::from(failed_due_to_regex)))
    }
}

lookout_plugin_sdk::export_probe!(HttpProbe);
