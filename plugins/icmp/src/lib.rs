//! `icmp` probe: pings a host, blackbox_exporter's `icmp` prober.
//!
//! Target: a host name or an IP address (`example.com`, `192.0.2.1`,
//! `2001:db8::1`, `[2001:db8::1]`); no port, no URL.
//!
//! Configuration: the fields of blackbox_exporter's `icmp:` module, all
//! optional, with its defaults:
//!
//! ```json
//! { "preferred_ip_protocol": "ip6", "ip_protocol_fallback": true,
//!   "source_ip_address": "192.0.2.10", "payload_size": 0,
//!   "dont_fragment": false, "ttl": 64 }
//! ```
//!
//! - `preferred_ip_protocol`: `ip6` (the default, as in blackbox_exporter)
//!   or `ip4`, the address family a name is resolved to;
//! - `ip_protocol_fallback`: when the name has no address of that family,
//!   use one of the other (default `true`); when `false`, the probe fails
//!   with `dns` — also for an IP literal of the other family;
//! - `source_ip_address`: the local address to send from;
//! - `payload_size`: bytes of echo data; `0` sends blackbox_exporter's
//!   "Prometheus Blackbox Exporter" (28 bytes), `n` sends `n` bytes starting
//!   with that text;
//! - `dont_fragment`: forbid fragmentation (IPv4's DF bit; IPv6 senders
//!   then do not fragment either): a request over the path MTU fails;
//! - `ttl`: the request's TTL / hop limit, 0–255 (`0`: the system default).
//!
//! Grants: `icmp: ["{target}"]`, which also lets the plugin resolve the
//! target's name. The host sends the echo on an unprivileged ping socket
//! where `net.ipv4.ping_group_range` allows one, else on a raw socket when
//! lookout has `CAP_NET_RAW`; with neither, every probe fails (`other`) with
//! a message saying what to allow.
//!
//! Failure reasons: `config` (the target is not a host or IP address, the
//! source address does not exist, the payload is too large for the family),
//! `dns` (name not resolved, or no address of the family asked for),
//! `timeout` (no reply in time), `connect` (no route, or an ICMP error such
//! as destination unreachable or time exceeded), `denied` (no icmp grant
//! for the address), `other`.
//!
//! Samples (blackbox_exporter's): `probe_success`, `probe_duration_seconds`,
//! `probe_dns_lookup_time_seconds`, `probe_ip_protocol` (4 or 6; 0 when
//! unresolved), `probe_ip_addr_hash` (FNV-1a of the address bytes, to notice
//! a change of address), `probe_icmp_duration_seconds{phase="resolve"|"setup"|"rtt"}`,
//! and `probe_icmp_reply_hop_limit` (the reply's TTL or hop limit, when known).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::{
    Error, FailureReason, PluginError, PluginInfo, Probe, ProbeReport, Sample, TARGET, icmp, net,
    plugin_info,
};
use serde::Deserialize;

/// What blackbox_exporter sends, and the start of a larger payload.
const PAYLOAD_TEXT: &[u8] = b"Prometheus Blackbox Exporter";

/// blackbox_exporter's default TTL (`DefaultICMPTTL`).
const DEFAULT_TTL: i64 = 64;

/// The largest echo payload of either family (IPv6's); the host refuses
/// more than 65,507 bytes to an IPv4 address.
const MAX_PAYLOAD_SIZE: i64 = 65_527;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    preferred_ip_protocol: String,
    ip_protocol_fallback: bool,
    source_ip_address: Option<String>,
    payload_size: i64,
    dont_fragment: bool,
    ttl: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preferred_ip_protocol: "ip6".into(),
            ip_protocol_fallback: true,
            source_ip_address: None,
            payload_size: 0,
            dont_fragment: false,
            ttl: DEFAULT_TTL,
        }
    }
}

/// An address family, as blackbox_exporter's `ip4` / `ip6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// `probe_ip_protocol`'s value.
    fn number(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// The configuration, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    preferred: Family,
    fallback: bool,
    source: Option<IpAddr>,
    payload: Vec<u8>,
    dont_fragment: bool,
    ttl: Option<u8>,
}

impl Config {
    fn settings(self) -> Result<Settings, PluginError> {
        let preferred = match self.preferred_ip_protocol.as_str() {
            "ip6" | "" => Family::V6,
            "ip4" => Family::V4,
            other => {
                return Err(PluginError::config(format!(
                    "preferred_ip_protocol: {other:?} is neither \"ip4\" nor \"ip6\""
                )));
            }
        };
        let source = self
            .source_ip_address
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    PluginError::config(format!("source_ip_address: {s:?} is not an IP address"))
                })
            })
            .transpose()?;
        let ttl = match self.ttl {
            0 => None,
            1..=255 => Some(self.ttl as u8),
            t if t < 0 => return Err(PluginError::config("ttl: cannot be negative")),
            _ => return Err(PluginError::config("ttl: cannot exceed 255")),
        };
        if !(0..=MAX_PAYLOAD_SIZE).contains(&self.payload_size) {
            return Err(PluginError::config(format!(
                "payload_size: {} is not between 0 and {MAX_PAYLOAD_SIZE}",
                self.payload_size
            )));
        }
        Ok(Settings {
            preferred,
            fallback: self.ip_protocol_fallback,
            source,
            payload: payload(self.payload_size as usize),
            dont_fragment: self.dont_fragment,
            ttl,
        })
    }
}

/// blackbox_exporter's echo data: its name, or `size` bytes starting with it.
fn payload(size: usize) -> Vec<u8> {
    if size == 0 {
        return PAYLOAD_TEXT.to_vec();
    }
    let mut data = vec![0; size];
    let n = size.min(PAYLOAD_TEXT.len());
    data[..n].copy_from_slice(&PAYLOAD_TEXT[..n]);
    data
}

/// What the target names.
#[derive(Debug, PartialEq)]
enum Host<'a> {
    Address(IpAddr),
    Name(&'a str),
}

fn parse_target(target: &str) -> Result<Host<'_>, Error> {
    let target = target.trim();
    let unbracketed = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(target);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Host::Address(ip));
    }
    if target.is_empty() || target.contains([':', '/', '?', '#', '@', '[', ']', ' ']) {
        return Err(Error::new(
            FailureReason::Config,
            format!(
                "target {target:?} is not a host name or IP address (the icmp probe takes \
                 neither a port nor a URL)"
            ),
        ));
    }
    Ok(Host::Name(target))
}

/// Picks the address to ping among what the target resolved to, as
/// blackbox_exporter does: the first of the preferred family, else (with
/// fallback) one of the other.
fn choose(addresses: &[IpAddr], settings: &Settings, target: &str) -> Result<IpAddr, Error> {
    let preferred = addresses
        .iter()
        .find(|ip| Family::of(**ip) == settings.preferred);
    match (preferred, addresses.first()) {
        (Some(ip), _) => Ok(*ip),
        (None, Some(other)) if settings.fallback => Ok(*other),
        _ => Err(Error::new(
            FailureReason::Dns,
            format!(
                "{target} has no {} address (ip_protocol_fallback is off)",
                settings.preferred.name()
            ),
        )),
    }
}

/// FNV-1a (32 bit) of the address bytes: blackbox_exporter's
/// `probe_ip_addr_hash`, which only needs to change when the address does.
fn ip_hash(ip: IpAddr) -> u32 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// The measurements of one probe, filled in as it goes; every one that
/// blackbox_exporter always exposes starts at 0.
#[derive(Default)]
struct Measured {
    dns_lookup: Duration,
    address: Option<IpAddr>,
    resolve: Duration,
    setup: Duration,
    rtt: Duration,
    hop_limit: Option<u8>,
}

impl Measured {
    fn samples(&self) -> Vec<Sample> {
        let phase = |name: &str, took: Duration| {
            Sample::new("probe_icmp_duration_seconds", took.as_secs_f64()).label("phase", name)
        };
        let mut samples = vec![
            Sample::new(
                "probe_dns_lookup_time_seconds",
                self.dns_lookup.as_secs_f64(),
            ),
            Sample::new(
                "probe_ip_protocol",
                self.address.map_or(0, |ip| Family::of(ip).number()),
            ),
            Sample::new("probe_ip_addr_hash", self.address.map_or(0, ip_hash)),
            phase("resolve", self.resolve),
            phase("setup", self.setup),
            phase("rtt", self.rtt),
        ];
        if let Some(hop_limit) = self.hop_limit {
            samples.push(Sample::new("probe_icmp_reply_hop_limit", hop_limit));
        }
        samples
    }
}

fn ping(
    target: &str,
    settings: &Settings,
    deadline: Instant,
    measured: &mut Measured,
) -> Result<(), Error> {
    let host = parse_target(target)?;
    let resolving = Instant::now();
    let addresses = match host {
        Host::Address(ip) => Ok(vec![ip]),
        Host::Name(name) => net::resolve(name, 0, left(deadline))
            .map(|found| found.into_iter().map(|a| a.ip()).collect()),
    };
    measured.dns_lookup = resolving.elapsed();
    let address = choose(&addresses?, settings, target)?;
    measured.resolve = measured.dns_lookup;
    measured.address = Some(address);

    let mut request = icmp::EchoRequest::new(address)
        .payload(settings.payload.clone())
        .dont_fragment(settings.dont_fragment);
    if let Some(source) = settings.source {
        request = request.source(source);
    }
    if let Some(ttl) = settings.ttl {
        request = request.ttl(ttl);
    }
    let reply = request.send(left(deadline))?;
    measured.setup = reply.setup;
    measured.rtt = reply.rtt;
    measured.hop_limit = reply.hop_limit;
    Ok(())
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

struct IcmpProbe;

impl Probe for IcmpProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("icmp")
            .description(
                "Pings a host with an ICMP echo request and measures the round trip \
                 (blackbox_exporter's icmp prober). Target: a host name or IP address.",
            )
            .config_schema(CONFIG_SCHEMA)
            .icmp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let settings = config.settings()?;
        let mut measured = Measured::default();
        let report = match ping(target, &settings, started + timeout, &mut measured) {
            Ok(()) => ProbeReport::success(started.elapsed()),
            Err(error) => ProbeReport::from(error),
        };
        Ok(measured
            .samples()
            .into_iter()
            .fold(report, ProbeReport::with))
    }
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "preferred_ip_protocol": { "enum": ["ip4", "ip6"], "default": "ip6", "description": "Address family a name is resolved to." },
    "ip_protocol_fallback": { "type": "boolean", "default": true, "description": "Use the other family when the name has none of the preferred one." },
    "source_ip_address": { "type": "string", "description": "Local address to send from." },
    "payload_size": { "type": "integer", "minimum": 0, "maximum": 65527, "default": 0, "description": "Bytes of echo data; 0 sends \"Prometheus Blackbox Exporter\"." },
    "dont_fragment": { "type": "boolean", "default": false, "description": "Forbid fragmenting the request." },
    "ttl": { "type": "integer", "minimum": 0, "maximum": 255, "default": 64, "description": "TTL / hop limit of the request; 0 keeps the system default." }
  }
}"#;

lookout_plugin_sdk::export_probe!(IcmpProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::parse_config;

    fn settings(json: &str) -> Result<Settings, PluginError> {
        parse_config::<Config>(json)?.settings()
    }

    #[test]
    fn defaults_are_blackbox_exporters() {
        let s = settings("{}").unwrap();
        assert_eq!(s.preferred, Family::V6, "blackbox_exporter prefers ip6");
        assert!(s.fallback);
        assert_eq!(s.ttl, Some(64));
        assert_eq!(s.payload, b"Prometheus Blackbox Exporter");
        assert!(!s.dont_fragment && s.source.is_none());
    }

    #[test]
    fn fields_are_read_and_checked() {
        let s = settings(
            r#"{"preferred_ip_protocol":"ip4","ip_protocol_fallback":false,
                "source_ip_address":"192.0.2.10","payload_size":40,"dont_fragment":true,"ttl":0}"#,
        )
        .unwrap();
        assert_eq!(s.preferred, Family::V4);
        assert!(!s.fallback && s.dont_fragment);
        assert_eq!(s.source, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(s.ttl, None, "ttl 0 keeps the system default");
        assert_eq!(s.payload.len(), 40);
        assert!(s.payload.starts_with(b"Prometheus Blackbox Exporter\0"));
        assert_eq!(payload(10), b"Prometheus");

        for (json, says) in [
            (r#"{"ttl":256}"#, "ttl: cannot exceed 255"),
            (r#"{"ttl":-1}"#, "ttl: cannot be negative"),
            (r#"{"payload_size":70000}"#, "payload_size: 70000"),
            (
                r#"{"preferred_ip_protocol":"ipv4"}"#,
                "preferred_ip_protocol",
            ),
            (r#"{"source_ip_address":"eth0"}"#, "source_ip_address"),
            (r#"{"timeout":"5s"}"#, "timeout"),
        ] {
            match settings(json) {
                Err(PluginError::Config(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn targets_are_hosts_or_addresses() {
        let ip = |s: &str| Host::Address(s.parse().unwrap());
        assert_eq!(parse_target("127.0.0.1").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_target("::1").unwrap(), ip("::1"));
        assert_eq!(parse_target("[2001:db8::1]").unwrap(), ip("2001:db8::1"));
        assert_eq!(
            parse_target(" example.com ").unwrap(),
            Host::Name("example.com")
        );
        for bad in ["", "example.com:80", "http://example.com/", "[example.com]"] {
            let error = parse_target(bad).unwrap_err();
            assert_eq!(error.reason(), FailureReason::Config, "{bad:?}");
        }
    }

    #[test]
    fn address_choice_prefers_the_family_and_falls_back() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut s = settings("{}").unwrap();
        assert_eq!(choose(&[v4, v6], &s, "x").unwrap(), v6);
        assert_eq!(choose(&[v4], &s, "x").unwrap(), v4, "fallback to ip4");
        s.fallback = false;
        let error = choose(&[v4], &s, "x").unwrap_err();
        assert_eq!(error.reason(), FailureReason::Dns);
        assert_eq!(
            error.message(),
            "x has no IPv6 address (ip_protocol_fallback is off)"
        );
        s.preferred = Family::V4;
        assert_eq!(choose(&[v6, v4], &s, "x").unwrap(), v4);
    }

    #[test]
    fn address_hash_is_fnv1a_of_the_address_bytes() {
        // Four bytes for IPv4, sixteen for IPv6 (Go's To4 / To16).
        assert_eq!(ip_hash("0.0.0.0".parse().unwrap()), 0x4b95_f515);
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
        assert_eq!(ip_hash("::1".parse().unwrap()), 1_751_717_746);
    }

    #[test]
    fn failed_probes_still_report_blackboxs_samples() {
        let samples = Measured::default().samples();
        let names: Vec<(&str, Option<&str>)> = samples
            .iter()
            .map(|s| (s.name.as_str(), s.labels.first().map(|(_, v)| v.as_str())))
            .collect();
        assert_eq!(
            names,
            [
                ("probe_dns_lookup_time_seconds", None),
                ("probe_ip_protocol", None),
                ("probe_ip_addr_hash", None),
                ("probe_icmp_duration_seconds", Some("resolve")),
                ("probe_icmp_duration_seconds", Some("setup")),
                ("probe_icmp_duration_seconds", Some("rtt")),
            ]
        );
        assert!(samples.iter().all(|s| s.value == 0.0));
    }
}
