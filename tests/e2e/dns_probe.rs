//! The `dns` probe side by side with the real blackbox_exporter (Debian's
//! `prometheus-blackbox-exporter`): both ask the same questions of a small
//! authoritative server written here, with the same module, and must agree
//! on `probe_success` and on the records they counted.
//!
//! The server answers for `example.test.` on one random 127.0.0.1 port over
//! UDP and TCP: A, AAAA, MX, TXT, SOA, NS with glue in the additional
//! section, a CNAME, NXDOMAIN with the SOA in the authority section, a name
//! answering SERVFAIL, one too big for a datagram (truncated over UDP), one
//! whose first UDP reply carries the wrong id, one whose reply is cut
//! short, one never answered, and `version.bind.` in the CHAOS class. Names it compresses as
//! real servers do, so decoding pointers is part of what is compared.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::support::{BlackboxExporter, Lookout, Result};

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const CLASS_CH: u16 = 3;

const NOERROR: u16 = 0;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;
const REFUSED: u16 = 5;

/// A DNS reply over UDP without EDNS is at most this long (RFC 1035 §4.2.1).
const MAX_UDP_REPLY: usize = 512;

/// One record of the test zone.
#[derive(Clone)]
struct Rr {
    name: &'static str,
    rtype: u16,
    class: u16,
    ttl: u32,
    data: Data,
}

#[derive(Clone)]
enum Data {
    A([u8; 4]),
    Aaaa(Ipv6Addr),
    /// NS and CNAME targets.
    Name(&'static str),
    Mx(u16, &'static str),
    Txt(Vec<String>),
    Soa {
        mname: &'static str,
        rname: &'static str,
        numbers: [u32; 5],
    },
}

fn rr(name: &'static str, rtype: u16, ttl: u32, data: Data) -> Rr {
    Rr {
        name,
        rtype,
        class: CLASS_IN,
        ttl,
        data,
    }
}

fn soa() -> Rr {
    rr(
        "example.test.",
        TYPE_SOA,
        3600,
        Data::Soa {
            mname: "ns1.example.test.",
            rname: "hostmaster.example.test.",
            numbers: [2024010101, 3600, 600, 86400, 300],
        },
    )
}

/// The zone `example.test.`.
fn zone() -> Vec<Rr> {
    let mut records = vec![
        soa(),
        rr(
            "example.test.",
            TYPE_NS,
            3600,
            Data::Name("ns1.example.test."),
        ),
        rr(
            "example.test.",
            TYPE_MX,
            3600,
            Data::Mx(10, "mail.example.test."),
        ),
        rr(
            "example.test.",
            TYPE_TXT,
            300,
            Data::Txt(vec!["v=spf1 -all".into()]),
        ),
        rr("ns1.example.test.", TYPE_A, 300, Data::A([127, 0, 0, 53])),
        rr("mail.example.test.", TYPE_A, 300, Data::A([192, 0, 2, 25])),
        rr("www.example.test.", TYPE_A, 300, Data::A([192, 0, 2, 10])),
        rr(
            "www.example.test.",
            TYPE_AAAA,
            300,
            Data::Aaaa("2001:db8::10".parse().unwrap()),
        ),
        rr(
            "wrongid.example.test.",
            TYPE_A,
            300,
            Data::A([192, 0, 2, 99]),
        ),
        rr(
            "malformed.example.test.",
            TYPE_A,
            300,
            Data::A([192, 0, 2, 98]),
        ),
        rr(
            "alias.example.test.",
            TYPE_CNAME,
            300,
            Data::Name("www.example.test."),
        ),
        rr(
            "txt.example.test.",
            TYPE_TXT,
            300,
            Data::Txt(vec!["hello \"world\"".into(), "second".into()]),
        ),
    ];
    // Too much for one datagram.
    for i in 0..40 {
        records.push(rr(
            "big.example.test.",
            TYPE_TXT,
            60,
            Data::Txt(vec![format!("{i:02}-{}", "x".repeat(57))]),
        ));
    }
    records
}

/// A question as the server read it.
struct Question {
    id: u16,
    flags: u16,
    /// Lower case, trailing dot.
    name: String,
    qtype: u16,
    qclass: u16,
}

fn parse_question(query: &[u8]) -> Option<Question> {
    let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
    let flags = u16::from_be_bytes([*query.get(2)?, *query.get(3)?]);
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*query.get(at + 2)?, *query.get(at + 3)?]);
    Some(Question {
        id,
        flags,
        name: labels.iter().map(|l| format!("{l}.")).collect(),
        qtype,
        qclass,
    })
}

/// A reply under construction, compressing names as it goes.
struct Writer {
    buf: Vec<u8>,
    /// Offsets of names (and their suffixes) already written.
    names: HashMap<String, u16>,
}

impl Writer {
    fn name(&mut self, name: &str) {
        let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
        for i in 0..labels.len() {
            let suffix = labels[i..].join(".").to_ascii_lowercase();
            if let Some(&offset) = self.names.get(&suffix) {
                self.buf.extend((0xC000 | offset).to_be_bytes());
                return;
            }
            if self.buf.len() < 0x3FFF {
                self.names.insert(suffix, self.buf.len() as u16);
            }
            self.buf.push(labels[i].len() as u8);
            self.buf.extend(labels[i].as_bytes());
        }
        self.buf.push(0);
    }

    fn record(&mut self, rr: &Rr) {
        self.name(rr.name);
        self.buf.extend(rr.rtype.to_be_bytes());
        self.buf.extend(rr.class.to_be_bytes());
        self.buf.extend(rr.ttl.to_be_bytes());
        let length_at = self.buf.len();
        self.buf.extend([0, 0]);
        match &rr.data {
            Data::A(octets) => self.buf.extend(octets),
            Data::Aaaa(ip) => self.buf.extend(ip.octets()),
            Data::Name(name) => self.name(name),
            Data::Mx(preference, exchange) => {
                self.buf.extend(preference.to_be_bytes());
                self.name(exchange);
            }
            Data::Txt(strings) => {
                for string in strings {
                    self.buf.push(string.len() as u8);
                    self.buf.extend(string.as_bytes());
                }
            }
            Data::Soa {
                mname,
                rname,
                numbers,
            } => {
                self.name(mname);
                self.name(rname);
                for number in numbers {
                    self.buf.extend(number.to_be_bytes());
                }
            }
        }
        let length = (self.buf.len() - length_at - 2) as u16;
        self.buf[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    }
}

/// What the server answers to one question.
#[derive(Default)]
struct Answer {
    rcode: u16,
    answer: Vec<Rr>,
    authority: Vec<Rr>,
    additional: Vec<Rr>,
}

impl Answer {
    fn encode(&self, question: &Question, id: u16) -> Vec<u8> {
        // QR, AA, RD echoed, RA clear: an authoritative server.
        let flags = 0x8400 | (question.flags & 0x0100) | self.rcode;
        let counts = [
            1,
            self.answer.len() as u16,
            self.authority.len() as u16,
            self.additional.len() as u16,
        ];
        let mut writer = Writer {
            buf: Vec::new(),
            names: HashMap::new(),
        };
        for field in [id, flags].into_iter().chain(counts) {
            writer.buf.extend(field.to_be_bytes());
        }
        // The question as asked; its name is offered for compression.
        writer.name(&question.name);
        writer.buf.extend(question.qtype.to_be_bytes());
        writer.buf.extend(question.qclass.to_be_bytes());
        for rr in self
            .answer
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            writer.record(rr);
        }
        writer.buf
    }
}

/// The zone's answer to a question, as an authoritative server gives it.
fn answer(zone: &[Rr], question: &Question) -> Answer {
    let name = question.name.as_str();
    if question.qclass == CLASS_CH {
        return match (name, question.qtype) {
            ("version.bind.", TYPE_TXT | TYPE_ANY) => Answer {
                answer: vec![Rr {
                    name: "version.bind.",
                    rtype: TYPE_TXT,
                    class: CLASS_CH,
                    ttl: 0,
                    data: Data::Txt(vec!["lookout-test".into()]),
                }],
                ..Answer::default()
            },
            _ => Answer {
                rcode: REFUSED,
                ..Answer::default()
            },
        };
    }
    if !(name == "example.test." || name.ends_with(".example.test.")) {
        return Answer {
            rcode: REFUSED,
            ..Answer::default()
        };
    }
    if name == "servfail.example.test." {
        return Answer {
            rcode: SERVFAIL,
            ..Answer::default()
        };
    }
    let at_name: Vec<&Rr> = zone.iter().filter(|r| r.name == name).collect();
    if at_name.is_empty() {
        return Answer {
            rcode: NXDOMAIN,
            authority: vec![soa()],
            ..Answer::default()
        };
    }
    let wanted = |r: &&Rr| question.qtype == TYPE_ANY || r.rtype == question.qtype;
    let mut records: Vec<Rr> = at_name.iter().copied().filter(wanted).cloned().collect();
    // Follow a CNAME for any other type, as RFC 1034 §3.6.2 says.
    if records.is_empty()
        && let Some(cname) = at_name.iter().find(|r| r.rtype == TYPE_CNAME)
        && let Data::Name(target) = cname.data
    {
        records.push((*cname).clone());
        records.extend(
            zone.iter()
                .filter(|r| r.name == target)
                .filter(wanted)
                .cloned(),
        );
    }
    if records.is_empty() {
        // NODATA: the name exists, the type does not.
        return Answer {
            authority: vec![soa()],
            ..Answer::default()
        };
    }
    // Glue: addresses of the NS and MX targets in the answer.
    let mut additional = Vec::new();
    for record in &records {
        if let Data::Name(target) | Data::Mx(_, target) = record.data
            && matches!(record.rtype, TYPE_NS | TYPE_MX)
        {
            additional.extend(
                zone.iter()
                    .filter(|r| r.name == target && r.rtype == TYPE_A)
                    .cloned(),
            );
        }
    }
    Answer {
        rcode: NOERROR,
        answer: records,
        authority: Vec::new(),
        additional,
    }
}

/// The datagrams (UDP) or messages (TCP) sent back for one query.
fn replies(zone: &[Rr], query: &[u8], over_udp: bool) -> Vec<Vec<u8>> {
    let Some(question) = parse_question(query) else {
        return Vec::new();
    };
    let answer = answer(zone, &question);
    let reply = answer.encode(&question, question.id);
    match question.name.as_str() {
        // A stale reply first: a UDP client must skip it, a TCP one fails.
        "wrongid.example.test." => {
            let stale = answer.encode(&question, question.id ^ 0x5555);
            if over_udp {
                vec![stale, reply]
            } else {
                vec![stale]
            }
        }
        // No reply at all: the client runs out of time.
        "silent.example.test." => Vec::new(),
        // The A record's data cut in half.
        "malformed.example.test." => vec![reply[..reply.len() - 2].to_vec()],
        _ if over_udp && reply.len() > MAX_UDP_REPLY => {
            // Truncated as servers do it: TC set, the question only.
            let empty = Answer {
                rcode: answer.rcode,
                ..Answer::default()
            };
            let mut truncated = empty.encode(&question, question.id);
            truncated[2] |= 0x02;
            vec![truncated]
        }
        _ => vec![reply],
    }
}

/// The test zone served on one 127.0.0.1 port over UDP and TCP, stopped on
/// drop.
struct ZoneServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ZoneServer {
    fn start() -> Result<ZoneServer> {
        // The TCP port of a free UDP port may be taken: try a few.
        let (udp, tcp) = (0..10)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .context("no port free for both UDP and TCP")?;
        let addr = udp.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let zone = Arc::new(zone());

        udp.set_read_timeout(Some(Duration::from_millis(50)))?;
        let (udp_stop, udp_zone) = (stop.clone(), zone.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0; 1500];
            while !udp_stop.load(Ordering::SeqCst) {
                let Ok((len, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                for reply in replies(&udp_zone, &buf[..len], true) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });

        tcp.set_nonblocking(true)?;
        let (tcp_stop, tcp_zone) = (stop.clone(), zone);
        let tcp_thread = std::thread::spawn(move || {
            while !tcp_stop.load(Ordering::SeqCst) {
                match tcp.accept() {
                    Ok((conn, _)) => {
                        let zone = tcp_zone.clone();
                        std::thread::spawn(move || serve_tcp(conn, &zone));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(ZoneServer {
            addr,
            stop,
            threads: vec![udp_thread, tcp_thread],
        })
    }
}

/// Length-prefixed queries in, replies out, until the client closes.
fn serve_tcp(mut conn: TcpStream, zone: &[Rr]) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    loop {
        let mut prefix = [0; 2];
        if conn.read_exact(&mut prefix).is_err() {
            return;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(prefix))];
        if conn.read_exact(&mut query).is_err() {
            return;
        }
        for reply in replies(zone, &query, false) {
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend(reply);
            if conn.write_all(&framed).is_err() {
                return;
            }
        }
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
/// One module, probed at `target` by both.
struct Case {
    module: &'static str,
    /// The `dns:` map: blackbox's YAML and the plugin's JSON.
    config: Value,
    target: Target,
    /// What both must say.
    success: bool,
    /// The plugin's failure reason, when it fails.
    reason: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Target {
    Zone,
    /// A port nobody listens on.
    Closed,
}

fn case(
    module: &'static str,
    target: Target,
    success: bool,
    reason: Option<&'static str>,
    config: Value,
) -> Case {
    Case {
        module,
        config,
        target,
        success,
        reason,
    }
}

fn cases() -> Vec<Case> {
    use Target::{Closed, Zone};
    vec![
        case(
            "a_www",
            Zone,
            true,
            None,
            json!({"query_name": "www.example.test", "query_type": "A",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r"^www\.example\.test\.\t300\tIN\tA\t192\.0\.2\.10$"]}}),
        ),
        case(
            "aaaa_www",
            Zone,
            true,
            None,
            json!({"query_name": "www.example.test", "query_type": "AAAA",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r"^www\.example\.test\.\t300\tIN\tAAAA\t2001:db8::10$"]}}),
        ),
        case(
            "mx_hit",
            Zone,
            true,
            None,
            json!({"query_name": "example.test", "query_type": "MX",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r"^example\.test\.\t3600\tIN\tMX\t10 mail\.example\.test\.$"]},
                "validate_additional_rrs": {"fail_if_none_matches_regexp":
                    [r"^mail\.example\.test\.\t300\tIN\tA\t192\.0\.2\.25$"]}}),
        ),
        case(
            "mx_miss",
            Zone,
            false,
            Some("body"),
            json!({"query_name": "example.test", "query_type": "MX",
                "validate_answer_rrs": {"fail_if_not_matches_regexp": [r"\tMX\t20 "]}}),
        ),
        case(
            "txt_quoted",
            Zone,
            true,
            None,
            json!({"query_name": "txt.example.test", "query_type": "TXT",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r#"^txt\.example\.test\.\t300\tIN\tTXT\t"hello \\"world\\"" "second"$"#]}}),
        ),
        case(
            "soa_serial",
            Zone,
            true,
            None,
            json!({"query_name": "example.test", "query_type": "SOA",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r"^example\.test\.\t3600\tIN\tSOA\tns1\.example\.test\. hostmaster\.example\.test\. 2024010101 3600 600 86400 300$"]}}),
        ),
        case(
            "ns_glue",
            Zone,
            true,
            None,
            json!({"query_name": "example.test", "query_type": "NS",
                "validate_answer_rrs": {"fail_if_all_match_regexp": [r"\tIN\tNS\tns1\.example\.test\.$"]},
                "validate_additional_rrs": {"fail_if_none_matches_regexp":
                    [r"^ns1\.example\.test\.\t300\tIN\tA\t127\.0\.0\.53$"]}}),
        ),
        case(
            "nxdomain_default",
            Zone,
            false,
            Some("status"),
            json!({"query_name": "nope.example.test", "query_type": "A"}),
        ),
        case(
            "nxdomain_valid",
            Zone,
            true,
            None,
            json!({"query_name": "nope.example.test", "query_type": "A",
                "valid_rcodes": ["NXDOMAIN"],
                "validate_authority_rrs": {"fail_if_none_matches_regexp":
                    [r"^example\.test\.\t3600\tIN\tSOA\tns1\.example\.test\. "]}}),
        ),
        case(
            "authority_rejected",
            Zone,
            false,
            Some("body"),
            json!({"query_name": "nope.example.test", "query_type": "A",
                "valid_rcodes": ["NXDOMAIN"],
                "validate_authority_rrs": {"fail_if_matches_regexp": ["SOA"]}}),
        ),
        case(
            "nodata",
            Zone,
            true,
            None,
            json!({"query_name": "mail.example.test", "query_type": "AAAA"}),
        ),
        case(
            "nodata_needs_answer",
            Zone,
            false,
            Some("body"),
            json!({"query_name": "mail.example.test", "query_type": "AAAA",
                "validate_answer_rrs": {"fail_if_not_matches_regexp": ["AAAA"]}}),
        ),
        case(
            "servfail",
            Zone,
            false,
            Some("status"),
            json!({"query_name": "servfail.example.test", "query_type": "A"}),
        ),
        case(
            "servfail_valid",
            Zone,
            true,
            None,
            json!({"query_name": "servfail.example.test", "query_type": "A",
                "valid_rcodes": ["NOERROR", "SERVFAIL"]}),
        ),
        case(
            "refused",
            Zone,
            false,
            Some("status"),
            json!({"query_name": "www.other.test", "query_type": "A"}),
        ),
        case(
            "cname_chain",
            Zone,
            true,
            None,
            json!({"query_name": "alias.example.test", "query_type": "A",
                "validate_answer_rrs": {
                    "fail_if_none_matches_regexp": [r"^alias\.example\.test\.\t300\tIN\tCNAME\twww\.example\.test\.$"],
                    "fail_if_all_match_regexp": [r"^[a-z]+\.example\.test\.\t300\tIN\t"]}}),
        ),
        case(
            "any_default_type",
            Zone,
            true,
            None,
            json!({"query_name": "www.example.test"}),
        ),
        case(
            "any_not_all_a",
            Zone,
            false,
            Some("body"),
            json!({"query_name": "www.example.test",
                "validate_answer_rrs": {"fail_if_all_match_regexp": [r"\tA\t"]}}),
        ),
        case(
            "over_tcp",
            Zone,
            true,
            None,
            json!({"query_name": "www.example.test", "query_type": "A",
                "transport_protocol": "tcp",
                "validate_answer_rrs": {"fail_if_matches_regexp": [r"198\.51\.100\."]}}),
        ),
        case(
            "truncated_udp",
            Zone,
            true,
            None,
            json!({"query_name": "big.example.test", "query_type": "TXT"}),
        ),
        case(
            "truncated_udp_needs_records",
            Zone,
            false,
            Some("body"),
            json!({"query_name": "big.example.test", "query_type": "TXT",
                "validate_answer_rrs": {"fail_if_none_matches_regexp": ["big"]}}),
        ),
        case(
            "big_over_tcp",
            Zone,
            true,
            None,
            json!({"query_name": "big.example.test", "query_type": "TXT",
                "transport_protocol": "tcp",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r#"^big\.example\.test\.\t60\tIN\tTXT\t"\d\d-x{57}"$"#]}}),
        ),
        case(
            "chaos_class",
            Zone,
            true,
            None,
            json!({"query_name": "version.bind", "query_type": "TXT", "query_class": "CH",
                "validate_answer_rrs": {"fail_if_not_matches_regexp":
                    [r#"^version\.bind\.\t0\tCH\tTXT\t"lookout-test"$"#]}}),
        ),
        case(
            "ip6_without_fallback",
            Zone,
            false,
            Some("dns"),
            json!({"query_name": "www.example.test", "query_type": "A",
                "preferred_ip_protocol": "ip6", "ip_protocol_fallback": false}),
        ),
        case(
            "ip4_preferred",
            Zone,
            true,
            None,
            json!({"query_name": "www.example.test", "query_type": "A",
                "preferred_ip_protocol": "ip4", "recursion_desired": false}),
        ),
        case(
            "stale_id_udp",
            Zone,
            true,
            None,
            json!({"query_name": "wrongid.example.test", "query_type": "A"}),
        ),
        case(
            "wrong_id_tcp",
            Zone,
            false,
            Some("protocol"),
            json!({"query_name": "wrongid.example.test", "query_type": "A",
                "transport_protocol": "tcp"}),
        ),
        case(
            "malformed_reply",
            Zone,
            false,
            Some("protocol"),
            json!({"query_name": "malformed.example.test", "query_type": "A"}),
        ),
        case(
            "no_reply",
            Zone,
            false,
            Some("timeout"),
            json!({"query_name": "silent.example.test", "query_type": "A"}),
        ),
        case(
            "closed_udp_port",
            Closed,
            false,
            Some("connect"),
            json!({"query_name": "www.example.test", "query_type": "A"}),
        ),
        case(
            "closed_tcp_port",
            Closed,
            false,
            Some("connect"),
            json!({"query_name": "www.example.test", "query_type": "A",
                "transport_protocol": "tcp"}),
        ),
    ]
}

/// blackbox_exporter's YAML for the cases: each config becomes a block map
/// whose strings are JSON-quoted (JSON's escapes are YAML's too).
fn blackbox_yaml(cases: &[Case]) -> String {
    fn emit(value: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        let Value::Object(map) = value else {
            unreachable!("configs are maps")
        };
        for (key, value) in map {
            match value {
                Value::Object(_) => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    emit(value, indent + 2, out);
                }
                Value::Array(items) => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    for item in items {
                        out.push_str(&format!("{pad}  - {item}\n"));
                    }
                }
                scalar => out.push_str(&format!("{pad}{key}: {scalar}\n")),
            }
        }
    }
    let mut out = String::from("modules:\n");
    for case in cases {
        out.push_str(&format!(
            "  {}:\n    prober: dns\n    timeout: 2s\n    dns:\n",
            case.module
        ));
        emit(&case.config, 6, &mut out);
    }
    out
}

/// A port with nothing behind it, over UDP and TCP.
fn closed_port() -> Result<u16> {
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    let port = udp.local_addr()?.port();
    // Held only to learn that the TCP side is free too.
    let tcp = TcpListener::bind(("127.0.0.1", port))?;
    drop((udp, tcp));
    Ok(port)
}

/// The plugin's result for one case: the sample values by name, with
/// labels as blackbox writes them.
fn lookout_probe(
    lookout: &Lookout,
    case: &Case,
    target: &str,
) -> Result<(Value, HashMap<String, f64>)> {
    let config = case.config.to_string();
    let out = lookout.run(&[
        "run",
        "dns",
        "--target",
        target,
        "--config",
        &config,
        "--timeout",
        "2s",
        "--json",
    ]);
    let result: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "lookout run dns ({}): {}{}",
            case.module,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let mut samples = HashMap::new();
    for sample in result["samples"].as_array().into_iter().flatten() {
        let name = sample["name"].as_str().unwrap_or_default();
        let labels: Vec<String> = sample["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|pair| format!("{}={}", pair[0].as_str().unwrap_or(""), pair[1]))
            .collect();
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", labels.join(","))
        };
        samples.insert(key, sample["value"].as_f64().unwrap_or(f64::NAN));
    }
    Ok((result, samples))
}

/// Samples both must report with the same value (when blackbox reports
/// them at all: `probe_dns_serial` only for SOA queries).
const COMPARED: &[&str] = &[
    "probe_success",
    "probe_dns_answer_rrs",
    "probe_dns_authority_rrs",
    "probe_dns_additional_rrs",
    "probe_dns_query_succeeded",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_dns_serial",
];

#[test]
fn dns_probe_agrees_with_blackbox_exporter() -> Result {
    let server = ZoneServer::start()?;
    let closed = closed_port()?;
    let cases = cases();
    let blackbox = BlackboxExporter::start(&blackbox_yaml(&cases))?;
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_dns")?;

    let mut disagreements = Vec::new();
    for case in &cases {
        let target = match case.target {
            Target::Zone => server.addr.to_string(),
            Target::Closed => format!("127.0.0.1:{closed}"),
        };
        let theirs = blackbox.probe_samples(case.module, &target)?;
        let (result, ours) = lookout_probe(&lookout, case, &target)?;
        let mut differences = Vec::new();
        // Without these the comparison below would be vacuous.
        for name in &COMPARED[..5] {
            if !theirs.contains_key(*name) {
                bail!(
                    "blackbox's /probe for {} has no {name}: {theirs:?}",
                    case.module
                );
            }
        }
        println!(
            "{:<28} success {} answer {} authority {} additional {} ({})",
            case.module,
            ours["probe_success"],
            ours["probe_dns_answer_rrs"],
            ours["probe_dns_authority_rrs"],
            ours["probe_dns_additional_rrs"],
            result["failure_reason"].as_str().unwrap_or("ok"),
        );
        for &name in COMPARED {
            let (a, b) = (theirs.get(name), ours.get(name));
            if a.is_some() && a != b {
                differences.push(format!("{name}: blackbox {a:?}, lookout {b:?}"));
            }
        }
        // probe_dns_serial only where blackbox has it.
        if ours.contains_key("probe_dns_serial") != theirs.contains_key("probe_dns_serial") {
            differences.push("probe_dns_serial present in one only".to_string());
        }
        if theirs.get("probe_success") != Some(&f64::from(u8::from(case.success))) {
            differences.push(format!(
                "blackbox probe_success {:?}, the case expects {}",
                theirs.get("probe_success"),
                case.success
            ));
        }
        if result["failure_reason"].as_str() != case.reason {
            differences.push(format!(
                "lookout failure_reason {} ({}), the case expects {:?}",
                result["failure_reason"], result["message"], case.reason
            ));
        }
        if differences.is_empty() {
            continue;
        }
        disagreements.push(format!(
            "{} @ {target}: {}",
            case.module,
            differences.join("; ")
        ));
    }
    println!(
        "dns: {}/{} module-target pairs agree with blackbox_exporter",
        cases.len() - disagreements.len(),
        cases.len()
    );
    if !disagreements.is_empty() {
        bail!("disagreements:\n{}", disagreements.join("\n"));
    }
    Ok(())
}

#[test]
fn dns_probe_refuses_bad_config_and_ungranted_servers() -> Result {
    let server = ZoneServer::start()?;
    let target = server.addr.to_string();
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_dns")?;
    for (config, field) in [
        (r#"{"query_type": "A"}"#, "query_name"),
        (
            r#"{"query_name": "x.test", "query_type": "a"}"#,
            "query_type",
        ),
        (
            r#"{"query_name": "x.test", "valid_rcodes": ["NOSUCH"]}"#,
            "valid_rcodes",
        ),
        (
            r#"{"query_name": "x.test", "validate_answer_rrs": {"fail_if_matches_regexp": ["("]}}"#,
            "validate_answer_rrs.fail_if_matches_regexp[0]",
        ),
    ] {
        let out = lookout.run(&["run", "dns", "--target", &target, "--config", config]);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config} was accepted: {text}");
        assert!(text.contains(field), "{config}: {text}");
    }

    // Installed without its udp/tcp grants, the plugin may not reach the
    // server.
    let denied = Lookout::new();
    let wasm = crate::support::wasm("lookout_plugin_dns");
    denied.ok(&["plugin", "install", "--no-grants", wasm.to_str().unwrap()])?;
    let config = r#"{"query_name": "www.example.test", "query_type": "A"}"#;
    let out = denied.run(&[
        "run", "dns", "--target", &target, "--config", config, "--json",
    ]);
    let result: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).to_string())?;
    assert_eq!(result["success"], false, "{result}");
    assert_eq!(result["failure_reason"], "denied", "{result}");
    Ok(())
}
