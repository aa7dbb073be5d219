//! `tcp` probe: checks that a TCP port accepts connections and, optionally,
//! answers as expected (blackbox_exporter's `tcp` prober without TLS).
//!
//! Target: `host:port` (`[v6]:port` for an IPv6 literal). Configuration (all
//! optional):
//!
//! ```json
//! { "send": "PING\r\n", "expect": "+PONG" }
//! ```
//!
//! `send` is written once connected; `expect` is a plain substring the reply
//! must contain before the timeout.
//!
//! Failure reasons: `config` (target is not `host:port`), `dns` (name not
//! resolved), `connect` (refused, unreachable, reset), `timeout`, `denied`
//! (the sandbox refused the connection: no tcp grant for that address),
//! `protocol` (the connection closed, or the reply grew past 64 KiB, without
//! `expect` appearing).
//!
//! Samples: `probe_success`, `probe_duration_seconds`,
//! `probe_dns_lookup_time_seconds`, `probe_ip_protocol` (4 or 6),
//! `probe_tcp_connect_duration_seconds`.

use std::time::{Duration, Instant};

use lookout_plugin_sdk::net::{self, TcpStream};
use lookout_plugin_sdk::{
    FailureReason, PluginError, PluginInfo, Probe, ProbeReport, Sample, TARGET, plugin_info,
};
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
}

struct TcpProbe;

impl Probe for TcpProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("tcp")
            .description(
                "Checks that a TCP port accepts connections and optionally answers with an \
                 expected string (blackbox_exporter's tcp prober, without TLS). \
                 Target: host:port.",
            )
            .config_schema(CONFIG_SCHEMA)
            .tcp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let mut samples = Vec::new();
        let report = match check(target, &config, started + timeout, &mut samples) {
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
    "expect": { "type": "string", "description": "Substring the reply must contain." }
  }
}"#;

/// Resolves, connects, sends and reads; pushes a sample per finished phase.
fn check(
    target: &str,
    config: &Config,
    deadline: Instant,
    samples: &mut Vec<Sample>,
) -> Result<(), net::Error> {
    let (host, port) = split_target(target)?;
    let resolving = Instant::now();
    let addresses = net::resolve(host, port, remaining(deadline))?;
    samples.push(Sample::new(
        "probe_dns_lookup_time_seconds",
        resolving.elapsed().as_secs_f64(),
    ));

    let connecting = Instant::now();
    let mut stream = connect(&addresses, deadline)?;
    samples.push(Sample::new(
        "probe_tcp_connect_duration_seconds",
        connecting.elapsed().as_secs_f64(),
    ));
    let version = if stream.peer_addr().is_ipv4() { 4 } else { 6 };
    samples.push(Sample::new("probe_ip_protocol", version));

    if let Some(send) = &config.send {
        stream.write_all(send.as_bytes(), deadline)?;
    }
    if let Some(expect) = &config.expect {
        read_until(&mut stream, expect, deadline)?;
    }
    Ok(())
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

/// Tries each address in turn; the last failure explains a total failure.
fn connect(addresses: &[std::net::SocketAddr], deadline: Instant) -> Result<TcpStream, net::Error> {
    let mut failure = None;
    for &address in addresses {
        match TcpStream::connect(address, remaining(deadline)) {
            Ok(stream) => return Ok(stream),
            Err(error) if error.reason() == FailureReason::Timeout => return Err(error),
            Err(error) => failure = Some(error),
        }
    }
    Err(failure.unwrap_or_else(|| net::Error::new(FailureReason::Dns, "no address")))
}

fn read_until(stream: &mut TcpStream, expect: &str, deadline: Instant) -> Result<(), net::Error> {
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

/// Time left before `deadline` (zero once it passed: the next wait then
/// fails with a timeout).
fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

lookout_plugin_sdk::export_probe!(TcpProbe);

#[cfg(test)]
mod tests {
    use super::*;

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
