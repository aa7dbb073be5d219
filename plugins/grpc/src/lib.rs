//! `grpc` probe: asks a server's standard gRPC health service
//! (`grpc.health.v1.Health/Check`) whether a service is serving —
//! blackbox_exporter's `grpc` prober (0.23), over plaintext HTTP/2 or TLS.
//!
//! Target: `host:port` (`[v6]:port` for an IPv6 literal). As blackbox
//! reads it, an `http://` or `https://` prefix and a path are allowed and
//! ignored (the scheme does not choose TLS; `tls` does), and without a port
//! the probe uses 80, or 443 with `tls: true`.
//!
//! Configuration (all optional), blackbox_exporter's `grpc:` module map:
//!
//! ```json
//! { "service": "app",
//!   "tls": true,
//!   "tls_config": {"ca": "-----BEGIN CERTIFICATE-----…", "server_name": "…",
//!                  "insecure_skip_verify": false, "min_version": "TLS12"},
//!   "preferred_ip_protocol": "ip6", "ip_protocol_fallback": true }
//! ```
//!
//! `service` is the name asked about (`""`, the default, is the server as a
//! whole). `tls` speaks TLS from the first byte, offering ALPN `h2`, with
//! `tls_config` (a configuration file's `ca_file` is read by lookout and
//! handed over as `ca`; the server name defaults to the target's host).
//! `preferred_ip_protocol` / `ip_protocol_fallback` choose the address as
//! blackbox does.
//!
//! The probe succeeds when the call returns gRPC status OK and the
//! response says `SERVING`.
//!
//! Grants: `tcp` to `{target}`.
//!
//! Samples, as blackbox_exporter's grpc prober: `probe_success`,
//! `probe_duration_seconds`, `probe_grpc_status_code` (the call's gRPC
//! status; for a connection that failed, what a gRPC client reports:
//! 14 UNAVAILABLE, or 4 DEADLINE_EXCEEDED when time ran out),
//! `probe_grpc_healthcheck_response{serving_status}` (1 for the status the
//! server gave, 0 for the other values of the enum `UNKNOWN`, `SERVING`,
//! `NOT_SERVING`, `SERVICE_UNKNOWN`; all 0 when the call failed),
//! `probe_grpc_duration_seconds{phase="resolve"|"check"}`, `probe_grpc_ssl`
//! (1 when the call succeeded over TLS), `probe_dns_lookup_time_seconds`,
//! `probe_ip_protocol`, `probe_ip_addr_hash`,
//! `probe_ssl_earliest_cert_expiry` (0 unless a TLS call succeeded) and, for
//! a TLS call that succeeded, `probe_tls_version_info{version}` and
//! `probe_ssl_last_chain_info{fingerprint_sha256, subject, issuer,
//! subjectalternative}`.
//!
//! Failure reasons: `config` (a target that is not `host[:port]`), `dns`,
//! `connect` (refused, reset, closed early), `tls` (handshake or
//! certificate), `timeout`, `protocol` (the server does not speak HTTP/2,
//! breaks it, resets the stream or sends a malformed response), `status`
//! (a gRPC status other than OK, or a serving status other than
//! `SERVING`), `denied` (no tcp grant for that address). A bad
//! configuration (an unknown field, a bad `tls_config`, an unknown
//! `preferred_ip_protocol`) fails the invocation with a config error
//! naming the field.
//!
//! Where it differs from blackbox_exporter 0.23: the whole check is bounded
//! by the probe's timeout (blackbox's gRPC call has no deadline), and the
//! probe connects to the address it resolved and reported rather than
//! resolving the name a second time.
//!
//! HTTP/2 ([`frame`], [`call`]) and HPACK ([`hpack`]) are spoken here, over
//! the SDK's TCP and TLS streams: the async stacks (h2, tonic) need a
//! runtime the sandbox does not have.

mod call;
mod frame;
mod health;
mod hpack;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::net::{self, IpPreference, TcpStream, remaining};
use lookout_plugin_sdk::tls::{self, ClientConfig, ServerName, Stream, TlsConfig, TlsStream};
use lookout_plugin_sdk::{
    FailureReason, PluginError, PluginInfo, Probe, ProbeReport, Sample, TARGET, plugin_info,
};
use serde::Deserialize;

use crate::call::CallError;
use crate::health::code;

/// Longest `service` accepted: the request must fit the initial HTTP/2
/// window and one frame without waiting for the server's settings, and no
/// real service name comes near it.
const MAX_SERVICE_BYTES: usize = 4096;

/// The TLS samples blackbox_exporter's grpc prober reports (the SDK's
/// session samples hold more, for the http prober).
const TLS_SAMPLES: [&str; 3] = [
    "probe_ssl_earliest_cert_expiry",
    "probe_tls_version_info",
    "probe_ssl_last_chain_info",
];

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The service asked about; empty for the whole server.
    service: String,
    /// TLS from the first byte.
    tls: bool,
    tls_config: TlsConfig,
    preferred_ip_protocol: Option<String>,
    ip_protocol_fallback: Option<bool>,
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "service": { "type": "string", "default": "", "description": "Service name asked about; empty for the whole server." },
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

struct GrpcProbe;

impl Probe for GrpcProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("grpc")
            .description(
                "Asks a server's gRPC health service whether a service is serving, over \
                 plaintext HTTP/2 or TLS (blackbox_exporter's grpc prober). Target: host:port.",
            )
            .config_schema(CONFIG_SCHEMA)
            .tcp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let setup = Setup::new(&config)?;
        let target = match Target::parse(target, config.tls) {
            Ok(target) => target,
            Err(message) => return Ok(ProbeReport::failure(FailureReason::Config, message)),
        };
        let mut samples = Vec::new();
        let report = match check(&target, &config, &setup, deadline, &mut samples) {
            Ok(()) => ProbeReport::success(started.elapsed()),
            Err((reason, message)) => {
                ProbeReport::failure(reason, message).duration(started.elapsed())
            }
        };
        Ok(samples.into_iter().fold(report, ProbeReport::with))
    }
}

lookout_plugin_sdk::export_probe!(GrpcProbe);

/// What the configuration settles before any target is touched.
struct Setup {
    preference: IpPreference,
    /// The rustls configuration with ALPN `h2`, when `tls` is on.
    tls: Option<Arc<ClientConfig>>,
    /// The serialised `HealthCheckRequest`.
    request: Vec<u8>,
}

impl Setup {
    fn new(config: &Config) -> Result<Setup, PluginError> {
        if config.service.len() > MAX_SERVICE_BYTES {
            return Err(PluginError::config(format!(
                "service: {} bytes, longer than the {MAX_SERVICE_BYTES} allowed",
                config.service.len()
            )));
        }
        let preference = IpPreference::from_options(
            config.preferred_ip_protocol.as_deref(),
            config.ip_protocol_fallback,
        )
        .map_err(|e| PluginError::config(e.message()))?;
        if let Some(name) = &config.tls_config.server_name {
            tls::server_name(name)
                .map_err(|e| PluginError::config(format!("tls_config.server_name: {e}")))?;
        }
        let tls = config
            .tls
            .then(|| {
                // gRPC servers negotiate HTTP/2 by ALPN; some refuse a
                // client that offers nothing.
                tls::client_config(&config.tls_config).map(|shared| {
                    let mut with_alpn = (*shared).clone();
                    with_alpn.alpn_protocols = vec![b"h2".to_vec()];
                    Arc::new(with_alpn)
                })
            })
            .transpose()?;
        Ok(Setup {
            preference,
            tls,
            request: health::encode_check_request(&config.service),
        })
    }
}

/// A target as blackbox_exporter's grpc prober reads it.
#[derive(Debug, PartialEq)]
struct Target {
    /// Without brackets for an IPv6 literal.
    host: String,
    port: u16,
    /// `host:port` for `:authority` (brackets kept).
    authority: String,
}

impl Target {
    fn parse(target: &str, tls: bool) -> Result<Target, String> {
        let bad = |why: &str| format!("target `{target}` is not host:port ({why})");
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
            .unwrap_or(target);
        let hostport = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (host, port) = lookout_plugin_sdk::target::split_port(hostport).map_err(bad)?;
        let port = match port.filter(|p| !p.is_empty()) {
            None if tls => 443,
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            authority,
        })
    }
}

/// A failed probe: its reason and what happened.
type Failure = (FailureReason, String);

/// Resolves, connects, calls Check; pushes blackbox's samples on the way.
fn check(
    target: &Target,
    config: &Config,
    setup: &Setup,
    deadline: Instant,
    samples: &mut Vec<Sample>,
) -> Result<(), Failure> {
    let server_name = match &setup.tls {
        None => None,
        Some(_) => {
            let name = config
                .tls_config
                .server_name
                .as_deref()
                .unwrap_or(&target.host);
            Some(tls::server_name(name).map_err(|e| (FailureReason::Config, e.to_string()))?)
        }
    };
    let resolving = Instant::now();
    let resolved = net::choose_address(
        &target.host,
        target.port,
        setup.preference,
        remaining(deadline),
    );
    let lookup = resolving.elapsed().as_secs_f64();
    samples.push(Sample::new("probe_dns_lookup_time_seconds", lookup));
    let address = match resolved {
        Ok(address) => address,
        Err(error) => {
            // What blackbox shows when resolving failed: its gauges, unset.
            samples.extend([
                Sample::new("probe_ip_protocol", 0),
                Sample::new("probe_ip_addr_hash", 0),
                duration_sample("resolve", 0.0),
                Sample::new("probe_grpc_ssl", 0),
                Sample::new("probe_grpc_status_code", 0),
                Sample::new("probe_ssl_earliest_cert_expiry", 0),
            ]);
            return Err((error.reason(), error.message().to_owned()));
        }
    };
    samples.push(Sample::new(
        "probe_ip_protocol",
        if address.is_ipv4() { 4 } else { 6 },
    ));
    samples.push(Sample::new(
        "probe_ip_addr_hash",
        net::ip_addr_hash(address.ip()),
    ));
    samples.push(duration_sample("resolve", lookup));

    let checking = Instant::now();
    let checked = health_check(address, target, setup, server_name, deadline);
    samples.push(duration_sample("check", checking.elapsed().as_secs_f64()));
    for (value, name) in health::SERVING_STATUSES.iter().enumerate() {
        let current = checked.serving == i32::try_from(value).ok();
        samples.push(serving_sample(name, current));
    }
    if let Some(unnamed) = checked
        .serving
        .filter(|&s| usize::try_from(s).map_or(true, |i| i >= health::SERVING_STATUSES.len()))
    {
        samples.push(serving_sample(&health::serving_status_name(unnamed), true));
    }
    let tls_ok = setup.tls.is_some() && checked.code == code::OK;
    samples.push(Sample::new("probe_grpc_ssl", u8::from(tls_ok)));
    if !checked.tls_samples.iter().any(|s| s.name == TLS_SAMPLES[0]) {
        samples.push(Sample::new(TLS_SAMPLES[0], 0));
    }
    samples.extend(checked.tls_samples);
    samples.push(Sample::new("probe_grpc_status_code", checked.code));
    match checked.failure {
        None => Ok(()),
        Some(failure) => Err(failure),
    }
}

fn duration_sample(phase: &str, seconds: f64) -> Sample {
    Sample::new("probe_grpc_duration_seconds", seconds).label("phase", phase)
}

fn serving_sample(status: &str, current: bool) -> Sample {
    Sample::new("probe_grpc_healthcheck_response", u8::from(current))
        .label("serving_status", status)
}

/// What the health check came to.
#[derive(Debug, PartialEq)]
struct Checked {
    /// The call's gRPC status code (or what a client reports for a failed
    /// connection).
    code: u32,
    /// The `HealthCheckResponse` status, when the call returned one.
    serving: Option<i32>,
    /// blackbox's TLS samples, for a TLS call that returned OK.
    tls_samples: Vec<Sample>,
    failure: Option<Failure>,
}

impl From<CallError> for Checked {
    fn from(error: CallError) -> Self {
        let message = format!(
            "{} (gRPC {} {})",
            error.message,
            error.code,
            health::code_name(error.code)
        );
        Checked {
            code: error.code,
            serving: None,
            tls_samples: Vec::new(),
            failure: Some((error.reason, message)),
        }
    }
}

/// Connects (with TLS when set up) and makes the call.
fn health_check(
    address: std::net::SocketAddr,
    target: &Target,
    setup: &Setup,
    server_name: Option<ServerName<'static>>,
    deadline: Instant,
) -> Checked {
    let tcp = match TcpStream::connect(address, remaining(deadline)) {
        Ok(tcp) => tcp,
        Err(error) => return CallError::from(error).into(),
    };
    let (mut stream, tls_samples) = match (&setup.tls, server_name) {
        (Some(config), Some(name)) => match TlsStream::connect(tcp, config.clone(), name, deadline)
        {
            Ok(session) => {
                let samples = tls::session_samples(&session)
                    .into_iter()
                    .filter(|s| TLS_SAMPLES.contains(&s.name.as_str()))
                    .collect();
                (Stream::Tls(Box::new(session)), samples)
            }
            Err(error) => return CallError::from(error).into(),
        },
        _ => (Stream::Plain(tcp), Vec::new()),
    };
    let request = call::Request {
        scheme: if setup.tls.is_some() { "https" } else { "http" },
        authority: &target.authority,
        path: health::CHECK_PATH,
        message: &setup.request,
        timeout: remaining(deadline),
    };
    let response = match call::unary(&mut stream, &request, deadline) {
        Ok(response) => response,
        Err(error) => return error.into(),
    };
    verdict(&response, tls_samples)
}

/// The outcome of a call that got a response.
fn verdict(response: &call::Response, tls_samples: Vec<Sample>) -> Checked {
    let status = health::status_of(response);
    if status.code != code::OK {
        let mut message = format!(
            "gRPC status {} {}",
            status.code,
            health::code_name(status.code)
        );
        if !status.message.is_empty() {
            message = format!("{message}: {}", status.message);
        }
        return Checked {
            code: status.code,
            serving: None,
            tls_samples: Vec::new(),
            failure: Some((FailureReason::Status, message)),
        };
    }
    let serving = health::split_messages(&response.body).and_then(|messages| match messages[..] {
        [message] => health::decode_check_response(message),
        _ => Err(format!(
            "{} response messages to a unary call, not 1",
            messages.len()
        )),
    });
    match serving {
        // As grpc-go: an OK call with an unreadable response is INTERNAL.
        Err(why) => Checked {
            code: code::INTERNAL,
            serving: None,
            tls_samples: Vec::new(),
            failure: Some((
                FailureReason::Protocol,
                format!("bad health response: {why}"),
            )),
        },
        Ok(serving) => Checked {
            code: code::OK,
            serving: Some(serving),
            tls_samples,
            failure: (serving != 1).then(|| {
                let name = health::serving_status_name(serving);
                (FailureReason::Status, format!("serving status {name}"))
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str, tls: bool) -> Result<(String, u16, String), String> {
        Target::parse(text, tls).map(|t| (t.host, t.port, t.authority))
    }

    fn owned(host: &str, port: u16, authority: &str) -> Result<(String, u16, String), String> {
        Ok((host.into(), port, authority.into()))
    }

    #[test]
    fn targets_are_read_like_blackbox() {
        assert_eq!(
            target("localhost:50051", false),
            owned("localhost", 50051, "localhost:50051")
        );
        assert_eq!(target("[::1]:9000", true), owned("::1", 9000, "[::1]:9000"));
        assert_eq!(
            target("example.com", false),
            owned("example.com", 80, "example.com:80")
        );
        assert_eq!(
            target("example.com", true),
            owned("example.com", 443, "example.com:443")
        );
        assert_eq!(
            target("example.com:", false),
            owned("example.com", 80, "example.com:80")
        );
        assert_eq!(target("[::1]", true), owned("::1", 443, "[::1]:443"));
        assert_eq!(target("::1", false), owned("::1", 80, "[::1]:80"));
        // The scheme neither chooses TLS nor the port; a path is ignored.
        assert_eq!(
            target("https://svc.internal:8443/ignored", false),
            owned("svc.internal", 8443, "svc.internal:8443")
        );
        for bad in [
            ":80",
            "",
            "host:http",
            "host:0",
            "host:70000",
            "[::1",
            "[::1]x",
            "http://",
        ] {
            let error = target(bad, false).unwrap_err();
            assert!(error.contains("is not host:port"), "{bad}: {error}");
        }
    }

    #[test]
    fn configuration_is_checked_before_probing() {
        let config = |json: &str| serde_json::from_str::<Config>(json);
        assert!(
            config(r#"{"servce": "x"}"#).is_err(),
            "unknown fields are refused"
        );
        let error = |json: &str| match Setup::new(&config(json).unwrap()) {
            Err(PluginError::Config(message)) => message,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{json} accepted"),
        };
        assert!(error(r#"{"preferred_ip_protocol": "ip5"}"#).contains("preferred_ip_protocol"));
        assert!(error(r#"{"tls": true, "tls_config": {"ca": "junk"}}"#).contains("tls_config.ca"));
        assert!(
            error(r#"{"tls": true, "tls_config": {"min_version": "TLS10"}}"#)
                .contains("tls_config.min_version")
        );
        assert!(
            error(r#"{"tls_config": {"server_name": "a b"}}"#).contains("tls_config.server_name")
        );
        let long = format!(r#"{{"service": "{}"}}"#, "s".repeat(MAX_SERVICE_BYTES + 1));
        assert!(error(&long).starts_with("service:"));

        let setup = Setup::new(&config(r#"{"service": "app", "tls": true}"#).unwrap()).unwrap();
        assert_eq!(setup.tls.unwrap().alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(setup.request, b"\x0a\x03app");
        assert!(Setup::new(&Config::default()).unwrap().tls.is_none());
    }

    fn response(trailers: &[(&str, &str)], body: Vec<u8>) -> call::Response {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        call::Response {
            headers: pairs(&[(":status", "200"), ("content-type", "application/grpc")]),
            trailers: Some(pairs(trailers)),
            body,
        }
    }

    #[test]
    fn verdicts_follow_blackbox() {
        let tls = vec![Sample::new("probe_ssl_earliest_cert_expiry", 1.9e9)];
        let serving = verdict(
            &response(&[("grpc-status", "0")], health::frame_message(&[0x08, 1])),
            tls.clone(),
        );
        assert_eq!(
            serving,
            Checked {
                code: 0,
                serving: Some(1),
                tls_samples: tls.clone(),
                failure: None
            }
        );

        let not_serving = verdict(
            &response(&[("grpc-status", "0")], health::frame_message(&[0x08, 2])),
            tls.clone(),
        );
        assert_eq!(not_serving.serving, Some(2));
        assert_eq!(
            not_serving.tls_samples, tls,
            "an OK call keeps its TLS samples"
        );
        assert_eq!(
            not_serving.failure,
            Some((FailureReason::Status, "serving status NOT_SERVING".into()))
        );

        let unknown = verdict(
            &response(
                &[("grpc-status", "5"), ("grpc-message", "unknown service")],
                Vec::new(),
            ),
            tls.clone(),
        );
        assert_eq!(unknown.code, 5);
        assert_eq!(unknown.serving, None);
        assert!(
            unknown.tls_samples.is_empty(),
            "blackbox reports TLS only for OK calls"
        );
        assert_eq!(
            unknown.failure,
            Some((
                FailureReason::Status,
                "gRPC status 5 NOT_FOUND: unknown service".into()
            ))
        );

        let empty = verdict(&response(&[("grpc-status", "0")], Vec::new()), Vec::new());
        assert_eq!(empty.code, code::INTERNAL);
        assert_eq!(empty.failure.unwrap().0, FailureReason::Protocol);
    }

    #[test]
    fn call_errors_carry_their_grpc_code() {
        let checked = Checked::from(CallError::from(net::Error::new(
            FailureReason::Connect,
            "connecting to 127.0.0.1:1: connection refused",
        )));
        assert_eq!(checked.code, code::UNAVAILABLE);
        assert_eq!(
            checked.failure,
            Some((
                FailureReason::Connect,
                "connecting to 127.0.0.1:1: connection refused (gRPC 14 UNAVAILABLE)".into()
            ))
        );
    }
}
