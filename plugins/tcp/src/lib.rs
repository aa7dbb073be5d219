//! `tcp` probe: checks that a TCP port accepts connections and, optionally,
//! speaks as expected — blackbox_exporter's `tcp` prober, TLS included.
//!
//! Target: `host:port` (`[v6]:port` for an IPv6 literal). Configuration (all
//! optional), blackbox_exporter's tcp module:
//!
//! ```json
//! { "query_response": [
//!     { "expect": "^\\+OK (\\S+)", "labels": [{"name": "server", "value": "${1}"}] },
//!     { "send": "STARTTLS" },
//!     { "expect": "^220" },
//!     { "starttls": true },
//!     { "send": "PING" },
//!     { "expect": "^\\+PONG" } ],
//!   "tls": false,
//!   "tls_config": {"ca": "-----BEGIN CERTIFICATE-----…", "server_name": "…", "insecure_skip_verify": false},
//!   "preferred_ip_protocol": "ip6", "ip_protocol_fallback": true }
//! ```
//!
//! In order: an `expect` reads reply lines until one matches the regex (the
//! probe fails — `probe_failed_due_to_regex` 1 when the connection closes
//! first, reason `timeout` when the time runs out first, as in
//! blackbox_exporter); a `send` writes its text and a newline, `${1}`
//! … and `${name}` standing for the groups of the last match; `labels` make
//! `probe_expect_info{…} 1` from that match; `starttls` upgrades the
//! connection to TLS with `tls_config`. `tls: true` speaks TLS from the
//! start. The older `send` / `expect` pair (written once connected / a
//! plain substring of the reply) still works.
//!
//! Failure reasons: `config` (target is not `host:port`), `dns` (name not
//! resolved), `connect` (refused, unreachable, reset), `tls` (handshake or
//! certificate), `timeout`, `denied` (the sandbox refused the connection:
//! no tcp grant for that address), `protocol` (the connection closed, or
//! the reply grew past 64 KiB, without `expect` appearing).
//!
//! Samples: `probe_success`, `probe_duration_seconds`,
//! `probe_dns_lookup_time_seconds`, `probe_ip_protocol` (4 or 6),
//! `probe_ip_addr_hash`, `probe_tcp_connect_duration_seconds`,
//! `probe_failed_due_to_regex`, `probe_expect_info`; over TLS
//! `probe_ssl_earliest_cert_expiry`, `probe_ssl_last_chain_info`,
//! `probe_tls_version_info` and the others of the http probe.

use std::time::{Duration, Instant};

use lookout_plugin_sdk::net::{self, IpPreference, TcpStream, remaining};
use lookout_plugin_sdk::tls::{self, Stream, TlsConfig, TlsStream};
use lookout_plugin_sdk::{
    FailureReason, PluginError, PluginInfo, Probe, ProbeReport, Sample, TARGET, plugin_info,
};
use regex::Regex;
use serde::Deserialize;

/// Largest reply searched for `expect`: a banner or a short answer, not a
/// download.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Written once connected.
    send: Option<String>,
    /// Substring the reply must contain.
    expect: Option<String>,
    /// blackbox_exporter's steps, in order.
    query_response: Vec<QueryResponse>,
    /// TLS from the first byte.
    tls: bool,
    tls_config: TlsConfig,
    preferred_ip_protocol: Option<String>,
    ip_protocol_fallback: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct QueryResponse {
    expect: Option<String>,
    send: Option<String>,
    labels: Vec<ExpectLabel>,
    starttls: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectLabel {
    name: String,
    value: String,
}

/// A `query_response` step with its regex compiled.
struct Step<'c> {
    expect: Option<Regex>,
    spec: &'c QueryResponse,
}

fn compile(config: &Config) -> Result<Vec<Step<'_>>, PluginError> {
    config
        .query_response
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let expect = spec
                .expect
                .as_deref()
                .map(|re| {
                    Regex::new(re).map_err(|e| {
                        PluginError::config(format!("query_response[{i}].expect {re:?}: {e}"))
                    })
                })
                .transpose()?;
            Ok(Step { expect, spec })
        })
        .collect()
}

struct TcpProbe;

impl Probe for TcpProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("tcp")
            .description(
                "Checks that a TCP port accepts connections and optionally speaks as \
                 expected, over TLS too (blackbox_exporter's tcp prober). Target: host:port.",
            )
            .config_schema(CONFIG_SCHEMA)
            .tcp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let steps = compile(&config)?;
        let mut samples = Vec::new();
        let report = match check(target, &config, &steps, started + timeout, &mut samples) {
            Ok(()) => ProbeReport::success(started.elapsed()),
            Err(error) => ProbeReport::from(error),
        };
        Ok(samples.into_iter().fold(report, ProbeReport::with))
    }
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "send": { "type": "string", "description": "Written once connected." },
    "expect": { "type": "string", "description": "Substring the reply must contain." },
    "query_response": {
      "description": "blackbox_exporter's steps: expect (a regex a reply line must match), send (a line; ${1} stands for a group of the last match), labels of probe_expect_info.",
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "expect": { "type": "string" },
          "send": { "type": "string" },
          "labels": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "value": { "type": "string" } } } },
          "starttls": { "type": "boolean" }
        }
      }
    },
    "tls": { "type": "boolean", "default": false },
    "tls_config": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "ca": { "type": "string" },
        "server_name": { "type": "string" },
        "insecure_skip_verify": { "type": "boolean" },
        "min_version": { "enum": ["TLS12", "TLS13"] },
        "max_version": { "enum": ["TLS12", "TLS13"] }
      }
    },
    "preferred_ip_protocol": { "enum": ["ip4", "ip6"], "default": "ip6" },
    "ip_protocol_fallback": { "type": "boolean", "default": true }
  }
}"#;

/// Resolves, connects, sends and reads; pushes a sample per finished phase.
fn check(
    target: &str,
    config: &Config,
    steps: &[Step<'_>],
    deadline: Instant,
    samples: &mut Vec<Sample>,
) -> Result<(), net::Error> {
    let (host, port) = split_target(target)?;
    let preference = IpPreference::from_options(
        config.preferred_ip_protocol.as_deref(),
        config.ip_protocol_fallback,
    )?;
    let tls_setup = (config.tls || steps.iter().any(|s| s.spec.starttls))
        .then(|| tls::client_config(&config.tls_config))
        .transpose()
        .map_err(|e| net::Error::new(FailureReason::Config, e.to_string()))?;
    let resolving = Instant::now();
    let address = net::choose_address(host, port, preference, remaining(deadline))?;
    samples.push(Sample::new(
        "probe_dns_lookup_time_seconds",
        resolving.elapsed().as_secs_f64(),
    ));
    // As blackbox_exporter: known once resolved, connected or not.
    let version = if address.is_ipv4() { 4 } else { 6 };
    samples.push(Sample::new("probe_ip_protocol", version));
    samples.push(Sample::new(
        "probe_ip_addr_hash",
        net::ip_addr_hash(address.ip()),
    ));
    let mut failed_regex = false;
    let outcome = (|| {
        let connecting = Instant::now();
        let tcp = TcpStream::connect(address, remaining(deadline))?;
        samples.push(Sample::new(
            "probe_tcp_connect_duration_seconds",
            connecting.elapsed().as_secs_f64(),
        ));
        let tls_with = |tcp| {
            let name = config.tls_config.server_name.as_deref().unwrap_or(host);
            let name = tls::server_name(name)
                .map_err(|e| net::Error::new(FailureReason::Config, e.to_string()))?;
            let setup = tls_setup.clone().expect("TLS set up when asked for");
            TlsStream::connect(tcp, setup, name, deadline)
        };
        let mut stream = if config.tls {
            let session = tls_with(tcp)?;
            samples.extend(tls::session_samples(&session));
            Stream::Tls(Box::new(session))
        } else {
            Stream::Plain(tcp)
        };
        if let Some(send) = &config.send {
            stream.write_all(send.as_bytes(), deadline)?;
        }
        if let Some(expect) = &config.expect {
            read_until(&mut stream, expect, deadline)?;
        }
        let dialogue = query_response(stream, steps, deadline, samples, &tls_with);
        failed_regex = dialogue
            .as_ref()
            .is_err_and(|e| e.reason() == FailureReason::Protocol);
        dialogue
    })();
    // As blackbox_exporter: on every probe, 1 when an expect was not met.
    samples.push(Sample::new(
        "probe_failed_due_to_regex",
        f64::from(u8::from(failed_regex)),
    ));
    outcome
}

/// blackbox_exporter's `query_response` dialogue.
fn query_response(
    mut stream: Stream,
    steps: &[Step<'_>],
    deadline: Instant,
    samples: &mut Vec<Sample>,
    tls_with: &dyn Fn(TcpStream) -> Result<TlsStream, net::Error>,
) -> Result<(), net::Error> {
    let mut lines = LineReader::default();
    // The last matching line, for `${1}` in later sends and labels.
    let mut matched: Option<(String, Regex)> = None;
    for step in steps {
        if let Some(re) = &step.expect {
            let line = loop {
                // As blackbox_exporter: running out of time is a timeout,
                // not a regex failure (only a reply that ended is).
                let line = lines.next_line(&mut stream, deadline).map_err(|e| {
                    if e.reason() == FailureReason::Timeout {
                        net::Error::new(
                            FailureReason::Timeout,
                            format!("no reply line matched {:?} in time", re.as_str()),
                        )
                    } else {
                        e
                    }
                })?;
                match line {
                    Some(line) if re.is_match(&line) => break line,
                    Some(_) => continue,
                    None => {
                        return Err(net::Error::new(
                            FailureReason::Protocol,
                            format!("connection closed before a line matched {:?}", re.as_str()),
                        ));
                    }
                }
            };
            matched = Some((line, re.clone()));
            if !step.spec.labels.is_empty() {
                let sample = step
                    .spec
                    .labels
                    .iter()
                    .fold(Sample::new("probe_expect_info", 1.0), |s, l| {
                        s.label(l.name.clone(), expand(&matched, &l.value))
                    });
                samples.push(sample);
            }
        }
        if let Some(send) = &step.spec.send {
            let line = format!("{}\n", expand(&matched, send));
            stream.write_all(line.as_bytes(), deadline)?;
        }
        if step.spec.starttls {
            let Stream::Plain(tcp) = stream else {
                return Err(net::Error::new(
                    FailureReason::Protocol,
                    "starttls on a connection that is already TLS",
                ));
            };
            // What the server sent before the handshake is not part of it.
            lines = LineReader::default();
            let session = tls_with(tcp)?;
            samples.extend(tls::session_samples(&session));
            stream = Stream::Tls(Box::new(session));
        }
    }
    Ok(())
}

/// `template` with `${1}`, `$name` … of the last match expanded.
fn expand(matched: &Option<(String, Regex)>, template: &str) -> String {
    match matched {
        Some((line, re)) => {
            let mut out = String::new();
            if let Some(caps) = re.captures(line) {
                caps.expand(template, &mut out);
            }
            out
        }
        None => template.to_owned(),
    }
}

/// Reply lines, as Go's line scanner gives them (no `\n`, no `\r`).
#[derive(Default)]
struct LineReader {
    pending: Vec<u8>,
    closed: bool,
}

impl LineReader {
    /// The next line; `None` once the connection closed with nothing left.
    fn next_line(
        &mut self,
        stream: &mut Stream,
        deadline: Instant,
    ) -> Result<Option<String>, net::Error> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.closed {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.pending);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.pending.len() > MAX_REPLY {
                let message = format!("a reply line longer than {MAX_REPLY} bytes");
                return Err(net::Error::new(FailureReason::Protocol, message));
            }
            let mut buffer = [0; 4096];
            match stream.read(&mut buffer, deadline)? {
                0 => self.closed = true,
                read => self.pending.extend_from_slice(&buffer[..read]),
            }
        }
    }
}

/// Splits `host:port` (`[v6]:port`); anything else is a config failure.
fn split_target(target: &str) -> Result<(&str, u16), net::Error> {
    target
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| {
            let message = format!("target `{target}` is not host:port");
            net::Error::new(FailureReason::Config, message)
        })
}

fn read_until(stream: &mut Stream, expect: &str, deadline: Instant) -> Result<(), net::Error> {
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    while !contains(&reply, expect.as_bytes()) {
        if reply.len() > MAX_REPLY {
            let message = format!("`{expect}` not in the first {MAX_REPLY} bytes of the reply");
            return Err(net::Error::new(FailureReason::Protocol, message));
        }
        match stream.read(&mut buffer, deadline)? {
            0 => {
                let message = format!("connection closed before `{expect}` was received");
                return Err(net::Error::new(FailureReason::Protocol, message));
            }
            read => reply.extend_from_slice(&buffer[..read]),
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

lookout_plugin_sdk::export_probe!(TcpProbe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_and_labels_expand_the_last_match() {
        let re = Regex::new(r"^\+OK (?P<name>\S+) v(\d+)").unwrap();
        let matched = Some(("+OK cache v7 ready".to_owned(), re));
        assert_eq!(expand(&matched, "HELLO ${name} ${2}"), "HELLO cache 7");
        assert_eq!(expand(&None, "PING"), "PING");
    }

    #[test]
    fn bad_regexes_are_config_errors() {
        let config: Config =
            serde_json::from_str(r#"{"query_response": [{"starttls": true}]}"#).unwrap();
        assert!(compile(&config).is_ok());
        let config: Config =
            serde_json::from_str(r#"{"query_response": [{"expect": "("}]}"#).unwrap();
        assert!(compile(&config).is_err());
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"+PONG\r\n", b"PONG"));
        assert!(contains(b"anything", b""));
        assert!(!contains(b"PON", b"PONG"));
    }

    #[test]
    fn targets_must_be_host_port() {
        for target in [
            "example.com",
            ":80",
            "example.com:http",
            "example.com:99999",
        ] {
            let error = split_target(target).unwrap_err();
            assert_eq!(error.reason(), FailureReason::Config, "{target}");
            assert!(
                error.message().contains("is not host:port"),
                "{}",
                error.message()
            );
        }
        assert_eq!(split_target("localhost:22").unwrap(), ("localhost", 22));
        assert_eq!(split_target("[::1]:8080").unwrap(), ("[::1]", 8080));
    }
}
