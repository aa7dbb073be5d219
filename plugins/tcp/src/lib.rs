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

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

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

/// Why the check failed, as the probe reports it.
type Failure = (FailureReason, String);

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
            Err((reason, message)) => ProbeReport::failure(reason, message),
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
) -> Result<(), Failure> {
    let resolving = Instant::now();
    let addresses = resolve(target)?;
    samples.push(Sample::new(
        "probe_dns_lookup_time_seconds",
        resolving.elapsed().as_secs_f64(),
    ));

    let connecting = Instant::now();
    let (mut stream, address) = connect(&addresses, deadline)?;
    samples.push(Sample::new(
        "probe_tcp_connect_duration_seconds",
        connecting.elapsed().as_secs_f64(),
    ));
    samples.push(Sample::new(
        "probe_ip_protocol",
        if address.is_ipv4() { 4 } else { 6 },
    ));

    if let Some(send) = &config.send {
        let what = format!("sending to {address}");
        // A refused timeout option only loses precision: the host's own
        // invocation timeout still bounds the call.
        let _ = stream.set_write_timeout(Some(remaining(deadline, &what)?));
        stream
            .write_all(send.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|error| io_failure(&error, &what, FailureReason::Connect))?;
    }
    if let Some(expect) = &config.expect {
        read_until(&mut stream, expect, deadline)?;
    }
    Ok(())
}

fn resolve(target: &str) -> Result<Vec<SocketAddr>, Failure> {
    let valid = target
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid {
        let message = format!("target `{target}` is not host:port");
        return Err((FailureReason::Config, message));
    }
    let what = format!("resolving {target}");
    let addresses: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|error| io_failure(&error, &what, FailureReason::Dns))?
        .collect();
    if addresses.is_empty() {
        return Err((FailureReason::Dns, format!("{what}: no address")));
    }
    Ok(addresses)
}

/// Tries each address in turn; the last failure explains a total failure.
fn connect(
    addresses: &[SocketAddr],
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let mut failure = (FailureReason::Dns, "no address".to_owned());
    for &address in addresses {
        let what = format!("connecting to {address}");
        let left = remaining(deadline, &what)?;
        let connected = match TcpStream::connect_timeout(&address, left) {
            Err(error) if error.kind() == ErrorKind::Unsupported => TcpStream::connect(address),
            connected => connected,
        };
        match connected {
            Ok(stream) => return Ok((stream, address)),
            Err(error) => failure = io_failure(&error, &what, FailureReason::Connect),
        }
    }
    Err(failure)
}

fn read_until(stream: &mut TcpStream, expect: &str, deadline: Instant) -> Result<(), Failure> {
    let what = format!("waiting for `{expect}`");
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    while !contains(&reply, expect.as_bytes()) {
        if reply.len() > MAX_REPLY {
            let message = format!("`{expect}` not in the first {MAX_REPLY} bytes of the reply");
            return Err((FailureReason::Protocol, message));
        }
        let _ = stream.set_read_timeout(Some(remaining(deadline, &what)?));
        match stream.read(&mut buffer) {
            Ok(0) => {
                let message = format!("connection closed before `{expect}` was received");
                return Err((FailureReason::Protocol, message));
            }
            Ok(read) => reply.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io_failure(&error, &what, FailureReason::Connect)),
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

/// Time left before `deadline`, or a timeout failure for `what`.
fn remaining(deadline: Instant, what: &str) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err((FailureReason::Timeout, format!("{what}: timed out")))
    } else {
        Ok(left)
    }
}

/// Classifies an I/O error of `what`; kinds without a better reason get
/// `otherwise`.
///
/// The sandbox's refusal (wasi:sockets `access-denied`) reaches std as
/// `EACCES`, that is `ErrorKind::PermissionDenied`.
fn io_failure(error: &io::Error, what: &str, otherwise: FailureReason) -> Failure {
    let (reason, detail) = match error.kind() {
        ErrorKind::PermissionDenied => (
            FailureReason::Denied,
            "denied by the sandbox (no tcp grant for this address)".into(),
        ),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => (FailureReason::Timeout, "timed out".into()),
        ErrorKind::ConnectionRefused => (FailureReason::Connect, "connection refused".into()),
        ErrorKind::ConnectionReset => (FailureReason::Connect, "connection reset".into()),
        ErrorKind::ConnectionAborted => (FailureReason::Connect, "connection aborted".into()),
        ErrorKind::HostUnreachable => (FailureReason::Connect, "host unreachable".into()),
        ErrorKind::NetworkUnreachable => (FailureReason::Connect, "network unreachable".into()),
        _ => (otherwise, error.to_string()),
    };
    (reason, format!("{what}: {detail}"))
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
            let (reason, message) = resolve(target).unwrap_err();
            assert_eq!(reason, FailureReason::Config, "{target}");
            assert!(message.contains("is not host:port"), "{message}");
        }
    }

    #[test]
    fn io_errors_are_classified() {
        let failure = |kind| io_failure(&io::Error::from(kind), "x", FailureReason::Other).0;
        assert_eq!(failure(ErrorKind::PermissionDenied), FailureReason::Denied);
        assert_eq!(failure(ErrorKind::TimedOut), FailureReason::Timeout);
        assert_eq!(failure(ErrorKind::WouldBlock), FailureReason::Timeout);
        assert_eq!(
            failure(ErrorKind::ConnectionRefused),
            FailureReason::Connect
        );
        assert_eq!(failure(ErrorKind::InvalidData), FailureReason::Other);
        let (_, message) = io_failure(
            &io::Error::from(ErrorKind::ConnectionRefused),
            "connecting to a:1",
            FailureReason::Other,
        );
        assert_eq!(message, "connecting to a:1: connection refused");
    }
}
