//! `http` probe: checks that a URL answers as expected, with
//! blackbox_exporter's `http` prober options and metric names.
//!
//! Target: an `http://` or `https://` URL, or `ws://` / `wss://` for a
//! WebSocket upgrade (success is `101` with the right
//! `Sec-WebSocket-Accept`; then `websocket.send` is sent as a text message
//! and a message must match `websocket.expect`). Configuration (all optional),
//! blackbox_exporter's http module as JSON:
//!
//! ```json
//! {
//!   "method": "GET",
//!   "valid_status_codes": [200, 204],
//!   "valid_http_versions": ["HTTP/1.1"],
//!   "headers": {"accept": "application/json"},
//!   "body": "…",
//!   "follow_redirects": true,
//!   "fail_if_ssl": false, "fail_if_not_ssl": false,
//!   "fail_if_body_matches_regexp": ["maintenance"],
//!   "fail_if_body_not_matches_regexp": ["\"status\":\"ok\""],
//!   "fail_if_header_matches": [{"header": "server", "regexp": "^old", "allow_missing": true}],
//!   "fail_if_header_not_matches": [{"header": "content-type", "regexp": "json"}],
//!   "fail_if_body_json_not_matches": [{"path": "checks.0.status", "equals": "up"},
//!                                     {"path": "version", "regexp": "^2\\."}],
//!   "basic_auth": {"username": "…", "password": "…"}, "bearer_token": "…",
//!   "tls_config": {"ca": "-----BEGIN CERTIFICATE-----…", "server_name": "…",
//!                  "insecure_skip_verify": false, "min_version": "TLS12"},
//!   "preferred_ip_protocol": "ip6", "ip_protocol_fallback": true,
//!   "body_size_limit": 1048576,
//!   "websocket": {"send": "ping", "expect": "^pong"}
//! }
//! ```
//!
//! Checks run in blackbox_exporter's order once a response came: the status
//! (`valid_status_codes`: codes, classes `"2xx"` or ranges `"200-299"`;
//! empty means any 2xx), `valid_http_versions`, `fail_if_ssl` /
//! `fail_if_not_ssl`, the body regexes, the header regexes (a missing
//! header fails unless `allow_missing`), then lookout's JSON assertions
//! (`path` as in the http-json exporter: `a.b.0.c`; `equals` compares the
//! value's text, `regexp` matches it). `tls_config.ca` is PEM text; where a
//! configuration names `ca_file`, lookout reads the file and hands over its
//! contents. Redirects are followed (at most 10) unless `follow_redirects`
//! is false. The request speaks HTTP/1.1 over the probe's own connection,
//! so `enable_http2` is accepted and has no effect.
//!
//! Failure reasons: `config`, `dns`, `connect`, `tls` (handshake,
//! certificate, `fail_if_ssl`), `timeout`, `denied`, `status` (also an HTTP
//! version not in `valid_http_versions`), `body`, `header`, `protocol`.
//!
//! Samples, blackbox_exporter's: `probe_success`, `probe_duration_seconds`,
//! `probe_http_status_code`, `probe_http_version`,
//! `probe_http_content_length` (-1 when the server sent no length),
//! `probe_http_uncompressed_body_length`, `probe_http_redirects`,
//! `probe_http_ssl`, `probe_http_duration_seconds{phase}` (resolve, connect,
//! tls, processing, transfer; summed over redirects),
//! `probe_http_last_modified_timestamp_seconds`, `probe_failed_due_to_regex`,
//! `probe_dns_lookup_time_seconds`, `probe_ip_protocol`,
//! `probe_ip_addr_hash`; over TLS `probe_ssl_earliest_cert_expiry`,
//! `probe_ssl_last_chain_expiry_timestamp_seconds`,
//! `probe_ssl_last_chain_info{fingerprint_sha256,subject,issuer,subjectalternative}`
//! `probe_tls_version_info{version}` and `probe_tls_cipher_info{cipher}`.

mod client;
mod websocket;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::encoding::base64;
use lookout_plugin_sdk::http::{StatusCodes, Url};
use lookout_plugin_sdk::tls::{self, TlsConfig};
use lookout_plugin_sdk::{FailureReason, PluginError, PluginInfo, Probe, ProbeReport, TARGET, net};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use client::Outcome;
use lookout_plugin_sdk::net::IpPreference;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    method: Option<String>,
    valid_status_codes: StatusCodes,
    valid_http_versions: Vec<String>,
    headers: BTreeMap<String, String>,
    body: String,
    follow_redirects: Option<bool>,
    fail_if_ssl: bool,
    fail_if_not_ssl: bool,
    fail_if_body_matches_regexp: Vec<String>,
    fail_if_body_not_matches_regexp: Vec<String>,
    fail_if_header_matches: Vec<HeaderMatch>,
    fail_if_header_not_matches: Vec<HeaderMatch>,
    fail_if_body_json_not_matches: Vec<JsonMatch>,
    basic_auth: Option<BasicAuth>,
    bearer_token: Option<String>,
    tls_config: TlsConfig,
    preferred_ip_protocol: Option<String>,
    ip_protocol_fallback: Option<bool>,
    body_size_limit: usize,
    /// For `ws://` / `wss://` targets: a message to send once upgraded and
    /// a regex a message from the server must match.
    websocket: WebsocketDialogue,
    /// The probe speaks HTTP/1.1; accepted so blackbox modules load as-is.
    #[allow(dead_code)]
    enable_http2: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMatch {
    header: String,
    regexp: String,
    #[serde(default)]
    allow_missing: bool,
}

/// A JSON body assertion: the value at `path` equals `equals` (compared as
/// text) and/or matches `regexp`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonMatch {
    path: String,
    #[serde(default)]
    equals: Option<Value>,
    #[serde(default)]
    regexp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct WebsocketDialogue {
    send: Option<String>,
    expect: Option<String>,
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
    json: Vec<(String, Option<String>, Option<Regex>)>,
}

fn regex(option: &str, text: &str) -> Result<Regex, PluginError> {
    Regex::new(text).map_err(|e| PluginError::config(format!("{option} {text:?}: {e}")))
}

/// A JSON value as text: strings bare, everything else as JSON.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value at a dotted path (`a.b.0.c`; numbers index arrays).
fn json_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, key| match v {
            Value::Array(items) => items.get(key.parse::<usize>().ok()?),
            Value::Object(map) => map.get(key),
            _ => None,
        })
}

/// Why a probe failed: the reason, the explanation, whether a regex did it.
type Failure = (FailureReason, String, bool);

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
        let json = config
            .fail_if_body_json_not_matches
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let option = format!("fail_if_body_json_not_matches[{i}]");
                if m.equals.is_none() && m.regexp.is_none() {
                    return Err(PluginError::config(format!(
                        "{option}: set `equals` or `regexp`"
                    )));
                }
                let re = m.regexp.as_deref().map(|r| regex(&option, r)).transpose()?;
                Ok((m.path.clone(), m.equals.as_ref().map(json_text), re))
            })
            .collect::<Result<_, _>>()?;
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
            json,
        })
    }

    /// blackbox_exporter's checks of a response that came, in its order
    /// (then lookout's JSON assertions): the first failing one, if any.
    fn failure(&self, config: &Config, response: &client::Response, ssl: bool) -> Option<Failure> {
        if !config.valid_http_versions.is_empty()
            && !config.valid_http_versions.contains(&response.version)
        {
            return Some((
                FailureReason::Status,
                format!(
                    "{} is not in valid_http_versions {:?}",
                    response.version, config.valid_http_versions
                ),
                false,
            ));
        }
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
        let body = String::from_utf8_lossy(&response.body);
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
        for (name, re, allow_missing) in &self.header_matches {
            let mut found = response.header_values(name).peekable();
            if found.peek().is_none() && !allow_missing {
                return Some((FailureReason::Header, format!("no {name} header"), false));
            }
            if found.any(|v| re.is_match(v)) {
                return Some((
                    FailureReason::Header,
                    format!("header {name} matched {:?}", re.as_str()),
                    true,
                ));
            }
        }
        for (name, re, allow_missing) in &self.header_not_matches {
            let mut found = response.header_values(name).peekable();
            if found.peek().is_none() {
                if *allow_missing {
                    continue;
                }
                return Some((FailureReason::Header, format!("no {name} header"), false));
            }
            if !found.any(|v| re.is_match(v)) {
                return Some((
                    FailureReason::Header,
                    format!("header {name} did not match {:?}", re.as_str()),
                    true,
                ));
            }
        }
        if !self.json.is_empty() {
            let document: Value = match serde_json::from_str(&body) {
                Ok(document) => document,
                Err(e) => {
                    return Some((FailureReason::Body, format!("body is not JSON: {e}"), false));
                }
            };
            for (path, equals, re) in &self.json {
                let Some(value) = json_at(&document, path) else {
                    return Some((
                        FailureReason::Body,
                        format!("no JSON value at {path:?}"),
                        false,
                    ));
                };
                let text = json_text(value);
                if let Some(expected) = equals
                    && text != *expected
                {
                    return Some((
                        FailureReason::Body,
                        format!("JSON {path:?} is {text:?}, not {expected:?}"),
                        false,
                    ));
                }
                if let Some(re) = re
                    && !re.is_match(&text)
                {
                    return Some((
                        FailureReason::Body,
                        format!("JSON {path:?} = {text:?} did not match {:?}", re.as_str()),
                        true,
                    ));
                }
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
                "Checks that an http(s) URL answers as expected, with blackbox_exporter's \
                 http prober options and metrics (phases, TLS certificates). Target: the URL.",
            )
            .config_schema(include_str!("config-schema.json"))
            // Its own connections (wasi:sockets), so that it can time them
            // and read the certificates.
            .tcp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let checks = Checks::compile(&config)?;
        // A WebSocket target is its handshake's http(s) URL plus the upgrade.
        let (target, is_websocket) = match target.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => {
                (format!("http://{rest}"), true)
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => {
                (format!("https://{rest}"), true)
            }
            _ => (target.to_string(), false),
        };
        let url = Url::parse(&target).map_err(|e| PluginError::config(e.message()))?;
        let expect = config
            .websocket
            .expect
            .as_deref()
            .map(|re| regex("websocket.expect", re))
            .transpose()?;
        let dialogue = websocket::Dialogue {
            key: websocket::new_key(),
            send: config.websocket.send.as_deref(),
            expect: expect.as_ref(),
        };
        if !is_websocket && (dialogue.send.is_some() || dialogue.expect.is_some()) {
            return Err(PluginError::config(
                "websocket options need a ws:// or wss:// target",
            ));
        }
        // A WebSocket handshake succeeds with 101 unless told otherwise.
        let valid_status_codes = if is_websocket && config.valid_status_codes.is_default() {
            StatusCodes::default().with_code(101)
        } else {
            config.valid_status_codes.clone()
        };
        let mut headers: Vec<(String, String)> = config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match (&config.basic_auth, &config.bearer_token) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "set at most one of basic_auth and bearer_token",
                ));
            }
            (Some(basic), None) => {
                let pair = format!("{}:{}", basic.username, basic.password);
                headers.push((
                    "Authorization".into(),
                    format!("Basic {}", base64(pair.as_bytes())),
                ));
            }
            (None, Some(token)) => {
                headers.push(("Authorization".into(), format!("Bearer {token}")))
            }
            (None, None) => {}
        }
        let ip = IpPreference::from_options(
            config.preferred_ip_protocol.as_deref(),
            config.ip_protocol_fallback,
        )
        .map_err(|e| PluginError::config(e.message()))?;
        // Built now for an https target, so a bad CA is a configuration
        // error; an http target builds it only if a redirect leads to TLS.
        let tls_client = std::cell::OnceCell::new();
        if url.https {
            let _ = tls_client.set(tls::client_config(&config.tls_config)?);
        }
        let outcome = client::exchange(client::Request {
            method: config.method.as_deref().unwrap_or("GET"),
            url,
            headers: &headers,
            body: config.body.as_bytes(),
            follow_redirects: config.follow_redirects.unwrap_or(true),
            ip,
            tls: &config.tls_config,
            tls_client,
            server_name: config.tls_config.server_name.as_deref(),
            deadline,
            body_limit: config.body_size_limit,
            websocket: is_websocket.then_some(&dialogue),
        });
        let mut failed_due_to_regex = false;
        let report = match (&outcome.error, &outcome.response) {
            (Some(error), _) => ProbeReport::failure(error.reason(), error.message()),
            (None, Some(response)) => match valid_status_codes.check(response.status) {
                Err(error) => ProbeReport::from(error),
                Ok(()) => match checks.failure(&config, response, outcome.ssl) {
                    Some((reason, message, by_regex)) => {
                        failed_due_to_regex = by_regex;
                        ProbeReport::failure(reason, message)
                    }
                    None => ProbeReport::success(started.elapsed()),
                },
            },
            (None, None) => ProbeReport::failure(FailureReason::Other, "no response"),
        };
        Ok(with_samples(report, &outcome, failed_due_to_regex))
    }
}

/// blackbox_exporter's samples of an http probe: all of them, 0 where
/// nothing was measured, TLS ones only over TLS.
fn with_samples(
    mut report: ProbeReport,
    outcome: &Outcome,
    failed_due_to_regex: bool,
) -> ProbeReport {
    let empty = client::Response::default();
    let response = outcome.response.as_ref().unwrap_or(&empty);
    let version = response
        .version
        .strip_prefix("HTTP/")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let phases = [
        ("resolve", outcome.phases.resolve),
        ("connect", outcome.phases.connect),
        ("tls", outcome.phases.tls),
        ("processing", outcome.phases.processing),
        ("transfer", outcome.phases.transfer),
    ];
    for (phase, took) in phases {
        report = report.with_labeled_sample(
            "probe_http_duration_seconds",
            &[("phase", phase)],
            took.as_secs_f64(),
        );
    }
    let content_length = match (&outcome.response, response.content_length) {
        (Some(_), Some(n)) => n as f64,
        (Some(_), None) => -1.0,
        (None, _) => 0.0,
    };
    report = report
        .with_sample("probe_http_status_code", response.status)
        .with_sample("probe_http_version", version)
        .with_sample("probe_http_content_length", content_length)
        .with_sample(
            "probe_http_uncompressed_body_length",
            response.body.len() as f64,
        )
        .with_sample("probe_http_redirects", outcome.redirects)
        .with_sample(
            "probe_http_ssl",
            u8::from(outcome.ssl && outcome.response.is_some()),
        )
        .with_sample("probe_failed_due_to_regex", u8::from(failed_due_to_regex))
        .with_sample(
            "probe_dns_lookup_time_seconds",
            outcome.dns_lookup.as_secs_f64(),
        );
    if let Some(modified) = response
        .header_values("last-modified")
        .next()
        .and_then(parse_http_date)
    {
        report = report.with_sample(
            "probe_http_last_modified_timestamp_seconds",
            modified as f64,
        );
    }
    if let Some(ip) = outcome.address {
        report = report
            .with_sample("probe_ip_protocol", if ip.is_ipv6() { 6 } else { 4 })
            .with_sample("probe_ip_addr_hash", net::ip_addr_hash(ip));
    }
    if outcome.ssl {
        report = outcome
            .tls_samples
            .iter()
            .cloned()
            .fold(report, ProbeReport::with);
    }
    report
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn parse_http_date(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace().skip(1);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

lookout_plugin_sdk::export_probe!(HttpProbe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_read() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn json_paths_and_config_errors() {
        let doc: Value = serde_json::from_str(r#"{"a": {"b": [{"c": 5}, "x"]}}"#).unwrap();
        assert_eq!(json_at(&doc, "a.b.0.c"), Some(&Value::from(5)));
        assert_eq!(json_at(&doc, "a.b.1").map(json_text), Some("x".into()));
        assert_eq!(json_at(&doc, "a.z"), None);
        let config: Config =
            serde_json::from_str(r#"{"fail_if_body_json_not_matches": [{"path": "a"}]}"#).unwrap();
        assert!(Checks::compile(&config).is_err());
        let config: Config =
            serde_json::from_str(r#"{"fail_if_body_matches_regexp": ["("]}"#).unwrap();
        let Err(PluginError::Config(message)) = Checks::compile(&config) else {
            panic!("a bad regex is a config error")
        };
        assert!(message.contains("fail_if_body_matches_regexp"), "{message}");
    }
}
