//! `dns` probe: asks a DNS server one question and checks the reply, as
//! blackbox_exporter's `dns` prober does.
//!
//! Target: the DNS server, `host[:port]` (port 53 by default; `[v6]:port`
//! or a bare IPv6 address). Configuration: the `dns:` map of a
//! blackbox_exporter module, same names, same defaults:
//!
//! ```json
//! { "query_name": "example.com", "query_type": "MX",
//!   "valid_rcodes": ["NOERROR"],
//!   "validate_answer_rrs": { "fail_if_not_matches_regexp": ["\tMX\t10 mail\\.example\\.com\\.$"] } }
//! ```
//!
//! - `query_name` (required): the name asked about; made fully qualified.
//! - `query_type`: `A`, `AAAA`, `CNAME`, `MX`, `NS`, `SOA`, `TXT`, `PTR`,
//!   `SRV`, `CAA` … any of miekg/dns' mnemonics, upper case; default `ANY`.
//! - `query_class`: `IN` (default), `CH`, `HS`, `CS`, `NONE`, `ANY`.
//! - `transport_protocol`: `udp` (default) or `tcp`. A truncated UDP reply
//!   (TC bit) is taken as it is, without retrying over TCP, as blackbox
//!   does; the report's message says so.
//! - `preferred_ip_protocol` (`ip6` default, or `ip4`) and
//!   `ip_protocol_fallback` (default true): which address of the server's
//!   name to use.
//! - `recursion_desired` (default true): the RD bit of the query.
//! - `valid_rcodes` (default `[NOERROR]`): response codes that pass.
//! - `validate_answer_rrs`, `validate_authority_rrs`,
//!   `validate_additional_rrs`: each with `fail_if_matches_regexp`,
//!   `fail_if_not_matches_regexp`, `fail_if_all_match_regexp`,
//!   `fail_if_none_matches_regexp`, applied to every record of the section
//!   written as Go's miekg/dns `RR.String()` writes it
//!   (`example.com.<TAB>3600<TAB>IN<TAB>A<TAB>192.0.2.1`), so regexes
//!   written for blackbox_exporter keep working. Regexes are unanchored.
//!   With blackbox's meanings: `fail_if_matches_regexp` fails if any
//!   record matches any regex; `fail_if_not_matches_regexp` fails if any
//!   record misses one of them, or if the section is empty;
//!   `fail_if_all_match_regexp` fails unless every record matches every
//!   regex (despite the name; an empty section passes);
//!   `fail_if_none_matches_regexp` fails unless some record matches some
//!   regex (an empty section fails). Records of types this probe does not
//!   decode (DS, RRSIG …) are written in RFC 3597's generic form
//!   (`\# 4 c0000201`), where miekg writes their own form.
//! - `dns_over_tls`, `source_ip_address`: not supported (a config error
//!   when set); `tls_config` is ignored, as blackbox ignores it without
//!   `dns_over_tls`.
//!
//! Unlike blackbox_exporter, which fails the probe at run time, a bad
//! regex, an unknown rcode name or an empty `valid_rcodes` list is a
//! configuration error naming the field. UDP replies are read whole;
//! blackbox reads 512 bytes of a datagram (the query carries no EDNS), so
//! only a server that ignores that limit is judged differently.
//!
//! Grants: `udp` and `tcp` to `{target}`.
//!
//! Failure reasons: `config` (target is not `host[:port]`), `dns` (the
//! server's name does not resolve, or not to the required IP version),
//! `connect` (refused: no server on that port), `timeout`, `protocol`
//! (a reply that does not decode, a TCP reply with another id), `status`
//! (rcode not in `valid_rcodes`), `body` (a `validate_*_rrs` rule failed),
//! `denied` (the sandbox refused the address).
//!
//! Samples (blackbox_exporter's): `probe_success`,
//! `probe_duration_seconds`, `probe_dns_lookup_time_seconds`,
//! `probe_ip_protocol`, `probe_ip_addr_hash`,
//! `probe_dns_duration_seconds{phase="resolve"|"connect"|"request"}`,
//! `probe_dns_answer_rrs`, `probe_dns_authority_rrs`,
//! `probe_dns_additional_rrs`, `probe_dns_query_succeeded` (a reply was
//! received and decoded) and, for `SOA` queries that got a reply,
//! `probe_dns_serial`.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::net;
use lookout_plugin_sdk::{
    FailureReason, PluginError, PluginInfo, Probe, ProbeReport, Sample, TARGET, plugin_info,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

mod exchange;
mod text;
mod validate;
mod wire;

use exchange::{Timing, Transport};
use validate::{RrValidator, RrValidatorConfig};
use wire::{Message, RData, TYPE_SOA};

/// Port of a target without one.
const DNS_PORT: u16 = 53;

/// The `dns:` map of a blackbox_exporter module.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    query_name: String,
    query_type: String,
    query_class: String,
    transport_protocol: String,
    preferred_ip_protocol: String,
    ip_protocol_fallback: bool,
    recursion_desired: bool,
    valid_rcodes: Option<Vec<String>>,
    validate_answer_rrs: RrValidatorConfig,
    validate_authority_rrs: RrValidatorConfig,
    validate_additional_rrs: RrValidatorConfig,
    dns_over_tls: bool,
    source_ip_address: String,
    /// Only meaningful with `dns_over_tls`; accepted so that blackbox
    /// modules carrying one load.
    #[serde(rename = "tls_config")]
    _tls_config: Option<IgnoredAny>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            query_name: String::new(),
            query_type: String::new(),
            query_class: String::new(),
            transport_protocol: String::new(),
            preferred_ip_protocol: String::new(),
            ip_protocol_fallback: true,
            recursion_desired: true,
            valid_rcodes: None,
            validate_answer_rrs: RrValidatorConfig::default(),
            validate_authority_rrs: RrValidatorConfig::default(),
            validate_additional_rrs: RrValidatorConfig::default(),
            dns_over_tls: false,
            source_ip_address: String::new(),
            _tls_config: None,
        }
    }
}

/// A configuration checked and compiled.
struct Module {
    query_name: String,
    name_wire: Vec<u8>,
    qtype: u16,
    qclass: u16,
    transport: Transport,
    prefer_ipv6: bool,
    ip_fallback: bool,
    recursion_desired: bool,
    valid_rcodes: Vec<u16>,
    answer: RrValidator,
    authority: RrValidator,
    additional: RrValidator,
}

impl Module {
    fn compile(config: Config) -> Result<Module, PluginError> {
        if config.query_name.is_empty() {
            return Err(PluginError::config("query_name must be set"));
        }
        let name_wire = wire::name_to_wire(&config.query_name)
            .map_err(|e| PluginError::config(format!("query_name: {e}")))?;
        let qtype = match config.query_type.as_str() {
            "" => text::type_code("ANY").expect("ANY is a type"),
            name => text::type_code(name).ok_or_else(|| {
                PluginError::config(format!(
                    "query_type {name:?} is not a DNS type (upper case mnemonics: A, AAAA, MX …)"
                ))
            })?,
        };
        let qclass = match config.query_class.as_str() {
            "" => text::class_code("IN").expect("IN is a class"),
            name => text::class_code(name).ok_or_else(|| {
                PluginError::config(format!(
                    "query_class {name:?} is not a DNS class (IN, CH, HS, CS, NONE, ANY)"
                ))
            })?,
        };
        let transport = match config.transport_protocol.as_str() {
            "" | "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => {
                return Err(PluginError::config(format!(
                    "transport_protocol {other:?}: expected udp or tcp"
                )));
            }
        };
        let prefer_ipv6 = match config.preferred_ip_protocol.as_str() {
            "" | "ip6" => true,
            "ip4" => false,
            other => {
                return Err(PluginError::config(format!(
                    "preferred_ip_protocol {other:?}: expected ip4 or ip6"
                )));
            }
        };
        if config.dns_over_tls {
            return Err(PluginError::config("dns_over_tls is not supported yet"));
        }
        if !config.source_ip_address.is_empty() {
            return Err(PluginError::config(
                "source_ip_address is not supported: the sandbox binds the wildcard address",
            ));
        }
        let valid_rcodes = match &config.valid_rcodes {
            None => vec![0],
            Some(names) if names.is_empty() => {
                return Err(PluginError::config(
                    "valid_rcodes is empty: no reply could pass (leave it out for NOERROR)",
                ));
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    text::rcode_code(name).ok_or_else(|| {
                        PluginError::config(format!(
                            "valid_rcodes: {name:?} is not a response code (NOERROR, NXDOMAIN, \
                             SERVFAIL, REFUSED …)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Module {
            answer: RrValidator::compile(&config.validate_answer_rrs, "validate_answer_rrs")?,
            authority: RrValidator::compile(
                &config.validate_authority_rrs,
                "validate_authority_rrs",
            )?,
            additional: RrValidator::compile(
                &config.validate_additional_rrs,
                "validate_additional_rrs",
            )?,
            query_name: config.query_name,
            name_wire,
            qtype,
            qclass,
            transport,
            prefer_ipv6,
            ip_fallback: config.ip_protocol_fallback,
            recursion_desired: config.recursion_desired,
            valid_rcodes,
        })
    }
}

/// What one probe measured; every sample blackbox always exports starts at
/// 0, as there.
#[derive(Default)]
struct Measurements {
    lookup: Duration,
    ip_protocol: u8,
    ip_addr_hash: u32,
    timing: Timing,
    answer_rrs: usize,
    authority_rrs: usize,
    additional_rrs: usize,
    query_succeeded: bool,
    /// Set for SOA queries that got a reply.
    serial: Option<u32>,
}

impl Measurements {
    fn samples(&self) -> Vec<Sample> {
        let count = |n: usize| n as f64;
        let mut samples = vec![
            Sample::new("probe_dns_lookup_time_seconds", self.lookup.as_secs_f64()),
            Sample::new("probe_ip_protocol", self.ip_protocol),
            Sample::new("probe_ip_addr_hash", self.ip_addr_hash),
        ];
        for (phase, took) in [
            ("resolve", self.lookup),
            ("connect", self.timing.connect),
            ("request", self.timing.request),
        ] {
            samples.push(
                Sample::new("probe_dns_duration_seconds", took.as_secs_f64()).label("phase", phase),
            );
        }
        samples.extend([
            Sample::new("probe_dns_answer_rrs", count(self.answer_rrs)),
            Sample::new("probe_dns_authority_rrs", count(self.authority_rrs)),
            Sample::new("probe_dns_additional_rrs", count(self.additional_rrs)),
            Sample::new("probe_dns_query_succeeded", u8::from(self.query_succeeded)),
        ]);
        if let Some(serial) = self.serial {
            samples.push(Sample::new("probe_dns_serial", serial));
        }
        samples
    }
}

struct DnsProbe;

impl Probe for DnsProbe {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("dns")
            .description(
                "Asks a DNS server one question over UDP or TCP and checks the response code \
                 and records (blackbox_exporter's dns prober). Target: the server, host[:port].",
            )
            .config_schema(CONFIG_SCHEMA)
            .udp([TARGET])
            .tcp([TARGET])
    }

    fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
        let started = Instant::now();
        let module = Module::compile(config)?;
        let deadline = started + timeout;
        let mut measured = Measurements::default();
        let report = match check(target, &module, deadline, &mut measured) {
            Ok(note) => ProbeReport::success(started.elapsed()).message(note),
            Err(error) => ProbeReport::from(error).duration(started.elapsed()),
        };
        Ok(measured
            .samples()
            .into_iter()
            .fold(report, ProbeReport::with))
    }
}

/// Resolves the server, asks, and judges the reply; `Ok` carries a note for
/// the report's message (empty when there is nothing to say).
fn check(
    target: &str,
    module: &Module,
    deadline: Instant,
    measured: &mut Measurements,
) -> Result<String, net::Error> {
    let (host, port) = split_target(target)?;

    let resolving = Instant::now();
    let resolved = net::resolve(host, port, net::remaining(deadline))
        .and_then(|addresses| choose_address(host, &addresses, module));
    measured.lookup = resolving.elapsed();
    let server = resolved?;
    measured.ip_protocol = if server.is_ipv4() { 4 } else { 6 };
    measured.ip_addr_hash = net::ip_addr_hash(server.ip());

    let id = query_id();
    let query = wire::encode_query(
        id,
        &module.name_wire,
        module.qtype,
        module.qclass,
        module.recursion_desired,
    );
    let reply = exchange::exchange(
        module.transport,
        server,
        &query,
        id,
        deadline,
        &mut measured.timing,
    )?;
    measured.answer_rrs = reply.answer.len();
    measured.authority_rrs = reply.authority.len();
    measured.additional_rrs = reply.additional.len();
    measured.query_succeeded = true;
    if module.qtype == TYPE_SOA {
        // The last SOA of the answer, 0 if there is none (as blackbox).
        let serial = reply
            .answer
            .iter()
            .rev()
            .find_map(|record| match &record.data {
                RData::Soa(soa) => Some(soa.serial),
                _ => None,
            });
        measured.serial = Some(serial.unwrap_or(0));
    }
    judge(&reply, module)?;
    Ok(truncation_note(&reply, module))
}

/// The rcode and then each section's rules, in blackbox's order.
fn judge(reply: &Message, module: &Module) -> Result<(), net::Error> {
    if !module.valid_rcodes.contains(&reply.rcode) {
        let valid: Vec<String> = module
            .valid_rcodes
            .iter()
            .map(|&c| text::rcode_name(c))
            .collect();
        let message = format!(
            "rcode {} for {} is not one of valid_rcodes [{}]",
            text::rcode_name(reply.rcode),
            module.query_name,
            valid.join(", ")
        );
        return Err(net::Error::new(FailureReason::Status, message));
    }
    let sections = [
        ("answer", &module.answer, &reply.answer),
        ("authority", &module.authority, &reply.authority),
        ("additional", &module.additional, &reply.additional),
    ];
    for (section, validator, records) in sections {
        validator.check(records).map_err(|why| {
            net::Error::new(FailureReason::Body, format!("{section} records: {why}"))
        })?;
    }
    Ok(())
}

fn truncation_note(reply: &Message, module: &Module) -> String {
    if reply.truncated && module.transport == Transport::Udp {
        "the reply was truncated (TC): it holds only the records that fit a datagram; \
         transport_protocol tcp gets them all"
            .into()
    } else {
        String::new()
    }
}

/// Splits `host[:port]` as blackbox does (Go's `net.SplitHostPort`, port 53
/// when there is none); a bare IPv6 address is a host.
fn split_target(target: &str) -> Result<(&str, u16), net::Error> {
    let bad = |why: &str| {
        net::Error::new(
            FailureReason::Config,
            format!("target `{target}` is not host[:port]: {why}"),
        )
    };
    let (host, port) = lookout_plugin_sdk::target::split_port(target).map_err(bad)?;
    let port = match port {
        None => DNS_PORT,
        Some(port) => port.parse().map_err(|_| bad("the port is not a number"))?,
    };
    Ok((host, port))
}

/// The address blackbox would pick: the first of the preferred IP version;
/// otherwise, with fallback, the last of the other one.
fn choose_address(
    host: &str,
    addresses: &[SocketAddr],
    module: &Module,
) -> Result<SocketAddr, net::Error> {
    let preferred = |a: &&SocketAddr| a.is_ipv6() == module.prefer_ipv6;
    if let Some(address) = addresses.iter().find(preferred) {
        return Ok(*address);
    }
    let version = if module.prefer_ipv6 { "IPv6" } else { "IPv4" };
    match addresses.last() {
        Some(address) if module.ip_fallback => Ok(*address),
        _ => Err(net::Error::new(
            FailureReason::Dns,
            format!("{host} has no {version} address (ip_protocol_fallback is false)"),
        )),
    }
}

/// A random query id (RFC 5452: ids must not be guessable), from the
/// randomly keyed std hasher, which the host seeds through wasi:random.
fn query_id() -> u16 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish() as u16
}

const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["query_name"],
  "$defs": {
    "regexes": { "type": "array", "items": { "type": "string" } },
    "validator": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "fail_if_matches_regexp": { "$ref": "#/$defs/regexes" },
        "fail_if_all_match_regexp": { "$ref": "#/$defs/regexes" },
        "fail_if_not_matches_regexp": { "$ref": "#/$defs/regexes" },
        "fail_if_none_matches_regexp": { "$ref": "#/$defs/regexes" }
      }
    }
  },
  "properties": {
    "query_name": { "type": "string", "description": "The name asked about." },
    "query_type": { "type": "string", "default": "ANY", "description": "A, AAAA, CNAME, MX, NS, SOA, TXT, PTR, SRV, CAA, ANY …" },
    "query_class": { "type": "string", "default": "IN", "enum": ["IN", "CH", "HS", "CS", "NONE", "ANY"] },
    "transport_protocol": { "type": "string", "default": "udp", "enum": ["udp", "tcp"] },
    "preferred_ip_protocol": { "type": "string", "default": "ip6", "enum": ["ip4", "ip6"] },
    "ip_protocol_fallback": { "type": "boolean", "default": true },
    "recursion_desired": { "type": "boolean", "default": true },
    "valid_rcodes": { "type": "array", "items": { "type": "string" }, "default": ["NOERROR"] },
    "validate_answer_rrs": { "$ref": "#/$defs/validator" },
    "validate_authority_rrs": { "$ref": "#/$defs/validator" },
    "validate_additional_rrs": { "$ref": "#/$defs/validator" },
    "dns_over_tls": { "type": "boolean", "const": false, "description": "Not supported." },
    "source_ip_address": { "type": "string", "maxLength": 0, "description": "Not supported." },
    "tls_config": { "type": "object", "description": "Ignored (only used with dns_over_tls)." }
  }
}"##;

lookout_plugin_sdk::export_probe!(DnsProbe);

#[cfg(test)]
mod tests {
    use super::*;

    fn module(json: &str) -> Result<Module, PluginError> {
        let config: Config = serde_json::from_str(json).map_err(PluginError::config)?;
        Module::compile(config)
    }

    fn config_error(json: &str) -> String {
        match module(json) {
            Err(PluginError::Config(message)) => message,
            Err(other) => panic!("{json}: {other}"),
            Ok(_) => panic!("{json} was accepted"),
        }
    }

    #[test]
    fn defaults_are_blackboxs() {
        let m = module(r#"{"query_name": "example.com"}"#).unwrap();
        assert_eq!(m.qtype, 255, "ANY");
        assert_eq!(m.qclass, 1, "IN");
        assert_eq!(m.transport, Transport::Udp);
        assert!(m.prefer_ipv6 && m.ip_fallback && m.recursion_desired);
        assert_eq!(m.valid_rcodes, [0]);
        let m = module(
            r#"{"query_name": "x.", "query_type": "SOA", "query_class": "CH",
                "transport_protocol": "tcp", "preferred_ip_protocol": "ip4",
                "ip_protocol_fallback": false, "recursion_desired": false,
                "valid_rcodes": ["NOERROR", "NXDOMAIN"], "tls_config": {"insecure_skip_verify": true}}"#,
        )
        .unwrap();
        assert_eq!((m.qtype, m.qclass), (6, 3));
        assert_eq!(m.transport, Transport::Tcp);
        assert!(!m.prefer_ipv6 && !m.ip_fallback && !m.recursion_desired);
        assert_eq!(m.valid_rcodes, [0, 3]);
    }

    #[test]
    fn bad_configs_name_the_field() {
        for (json, field) in [
            ("{}", "query_name"),
            (r#"{"query_name": "a..b"}"#, "query_name"),
            (r#"{"query_name": "x", "query_type": "a"}"#, "query_type"),
            (
                r#"{"query_name": "x", "query_class": "INET"}"#,
                "query_class",
            ),
            (
                r#"{"query_name": "x", "transport_protocol": "quic"}"#,
                "transport_protocol",
            ),
            (
                r#"{"query_name": "x", "preferred_ip_protocol": "ip5"}"#,
                "preferred_ip_protocol",
            ),
            (
                r#"{"query_name": "x", "valid_rcodes": ["NOPE"]}"#,
                "valid_rcodes",
            ),
            (r#"{"query_name": "x", "valid_rcodes": []}"#, "valid_rcodes"),
            (
                r#"{"query_name": "x", "dns_over_tls": true}"#,
                "dns_over_tls",
            ),
            (
                r#"{"query_name": "x", "source_ip_address": "10.0.0.1"}"#,
                "source_ip_address",
            ),
            (
                r#"{"query_name": "x", "validate_answer_rrs": {"fail_if_matches_regexp": ["("]}}"#,
                "validate_answer_rrs.fail_if_matches_regexp[0]",
            ),
            (r#"{"query_name": "x", "query_nam": "y"}"#, "query_nam"),
        ] {
            let message = config_error(json);
            assert!(message.contains(field), "{json}: {message}");
        }
    }

    #[test]
    fn targets_split_like_go() {
        assert_eq!(split_target("127.0.0.1:5353").unwrap(), ("127.0.0.1", 5353));
        assert_eq!(
            split_target("ns1.example.com").unwrap(),
            ("ns1.example.com", 53)
        );
        assert_eq!(split_target("[::1]:5353").unwrap(), ("::1", 5353));
        assert_eq!(split_target("[::1]").unwrap(), ("::1", 53));
        assert_eq!(split_target("2001:db8::53").unwrap(), ("2001:db8::53", 53));
        for bad in [":53", "host:domain", "host:99999", "[::1", "[::1]x", ""] {
            let error = split_target(bad).unwrap_err();
            assert_eq!(error.reason(), FailureReason::Config, "{bad}");
        }
    }

    #[test]
    fn address_choice_follows_preference_then_fallback() {
        let v4: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let v4b: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        let with = |json: &str| module(&format!(r#"{{"query_name": "x", {json}}}"#)).unwrap();
        let prefer6 = with(r#""preferred_ip_protocol": "ip6""#);
        let prefer4 = with(r#""preferred_ip_protocol": "ip4""#);
        let strict6 = with(r#""preferred_ip_protocol": "ip6", "ip_protocol_fallback": false"#);
        assert_eq!(choose_address("h", &[v4, v6], &prefer6).unwrap(), v6);
        assert_eq!(choose_address("h", &[v6, v4], &prefer4).unwrap(), v4);
        assert_eq!(choose_address("h", &[v4, v4b], &prefer6).unwrap(), v4b);
        let error = choose_address("h", &[v4], &strict6).unwrap_err();
        assert_eq!(error.reason(), FailureReason::Dns);
        assert!(error.message().contains("no IPv6 address"), "{error}");
    }

    #[test]
    fn replies_are_judged_by_rcode_then_sections() {
        use wire::tests::{header, record};
        let m = module(
            r#"{"query_name": "x", "valid_rcodes": ["NXDOMAIN"],
                "validate_authority_rrs": {"fail_if_none_matches_regexp": ["\tSOA\t"]}}"#,
        )
        .unwrap();
        let mut nxdomain = header(1, 0x8183, [0, 0, 1, 0]);
        let mut soa = wire::name_to_wire("ns.x").unwrap();
        soa.extend(wire::name_to_wire("h.x").unwrap());
        soa.extend([0; 20]);
        nxdomain.extend(record("x", TYPE_SOA, 1, 60, &soa));
        let reply = wire::decode(&nxdomain).unwrap();
        assert!(judge(&reply, &m).is_ok());

        let noerror = wire::decode(&header(1, 0x8180, [0, 0, 0, 0])).unwrap();
        let error = judge(&noerror, &m).unwrap_err();
        assert_eq!(error.reason(), FailureReason::Status);
        assert!(error.message().contains("rcode NOERROR"), "{error}");

        let m = module(
            r#"{"query_name": "x", "validate_authority_rrs": {"fail_if_matches_regexp": ["SOA"]}}"#,
        )
        .unwrap();
        let mut nodata = header(1, 0x8180, [0, 0, 1, 0]);
        nodata.extend(record("x", TYPE_SOA, 1, 60, &soa));
        let error = judge(&wire::decode(&nodata).unwrap(), &m).unwrap_err();
        assert_eq!(error.reason(), FailureReason::Body);
        assert!(error.message().starts_with("authority records:"), "{error}");
    }

    #[test]
    fn samples_start_at_zero_and_serial_only_for_soa() {
        let names: Vec<String> = Measurements::default()
            .samples()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(!names.iter().any(|n| n == "probe_dns_serial"));
        assert_eq!(
            names
                .iter()
                .filter(|n| *n == "probe_dns_duration_seconds")
                .count(),
            3
        );
        let soa = Measurements {
            serial: Some(7),
            ..Measurements::default()
        };
        let serial = soa
            .samples()
            .into_iter()
            .find(|s| s.name == "probe_dns_serial")
            .unwrap();
        assert_eq!(serial.value, 7.0);
    }
}
