//! The DNS wire format (RFC 1035): the query this probe sends and the reply
//! it reads.
//!
//! Decoding follows Go's miekg/dns (v1.1.50, what blackbox_exporter 0.23 is
//! built with) wherever it is lenient or strict, so that a reply fails or
//! passes here exactly when it does there: section counts larger than what
//! the message holds end the section quietly, a record whose data runs past
//! its RDLENGTH or past the message fails the whole reply, and record data
//! that stops at a field boundary leaves the remaining fields empty.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes of the fixed message header.
pub const HEADER_LEN: usize = 12;

/// Longest name on the wire (RFC 1035 §3.1), root label included.
const MAX_NAME_WIRE: usize = 255;

/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Compression pointers followed in one name before giving up: miekg's
/// bound, which also ends pointer loops.
const MAX_POINTERS: usize = MAX_NAME_WIRE.div_ceil(2) - 2;

/// Header flag bits.
const FLAG_QR: u16 = 1 << 15;
const FLAG_TC: u16 = 1 << 9;
const FLAG_RD: u16 = 1 << 8;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_HINFO: u16 = 13;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_DNAME: u16 = 39;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_SPF: u16 = 99;
pub const TYPE_CAA: u16 = 257;

/// A reply that cannot be decoded; the probe reports it as a protocol
/// failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(message.into()))
}

/// A query for one name, type and class.
pub fn encode_query(
    id: u16,
    name: &[u8],
    qtype: u16,
    qclass: u16,
    recursion_desired: bool,
) -> Vec<u8> {
    let flags = if recursion_desired { FLAG_RD } else { 0 };
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 4);
    for field in [id, flags, 1, 0, 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out
}

/// A name in presentation form (`www.example.com`, trailing dot optional,
/// `\.` and `\DDD` escapes as in zone files) as wire labels.
pub fn name_to_wire(name: &str) -> Result<Vec<u8>, String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("empty name".into());
    }
    let mut wire = Vec::with_capacity(bytes.len() + 2);
    let mut label = Vec::new();
    let mut i = 0;
    // `.` alone is the root.
    if bytes == b"." {
        return Ok(vec![0]);
    }
    let push_label = |label: &mut Vec<u8>, wire: &mut Vec<u8>| -> Result<(), String> {
        if label.is_empty() {
            return Err(format!("empty label in `{name}`"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "a label of `{name}` is longer than {MAX_LABEL} bytes"
            ));
        }
        wire.push(label.len() as u8);
        wire.append(label);
        Ok(())
    };
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                push_label(&mut label, &mut wire)?;
                i += 1;
            }
            b'\\' => {
                let rest = &bytes[i + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                    let value = rest[..3]
                        .iter()
                        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                    let byte = u8::try_from(value)
                        .map_err(|_| format!("escape \\{value} in `{name}` is not a byte"))?;
                    label.push(byte);
                    i += 4;
                } else if let Some(&escaped) = rest.first() {
                    label.push(escaped);
                    i += 2;
                } else {
                    return Err(format!("`{name}` ends with a lone backslash"));
                }
            }
            byte => {
                label.push(byte);
                i += 1;
            }
        }
    }
    // A name without the trailing dot is fully qualified all the same, as
    // blackbox_exporter makes it (dns.Fqdn).
    if !label.is_empty() {
        push_label(&mut label, &mut wire)?;
    }
    wire.push(0);
    if wire.len() > MAX_NAME_WIRE {
        return Err(format!("`{name}` is longer than {MAX_NAME_WIRE} bytes"));
    }
    Ok(wire)
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: u16,
    /// QR: this is a response.
    pub response: bool,
    /// TC: the server cut the reply short to fit a datagram.
    pub truncated: bool,
    /// The response code, extended by an OPT record's upper bits.
    pub rcode: u16,
    pub questions: Vec<Question>,
    pub answer: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Presentation form, as miekg keeps it (escaped, trailing dot).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Owner name in presentation form (escaped, trailing dot).
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// Record data of the types this probe knows; fields a short RDATA did not
/// reach keep their empty value, as in miekg.
#[derive(Debug, Clone, PartialEq)]
pub enum RData {
    /// `None` when the record has no data.
    A(Option<Ipv4Addr>),
    Aaaa(Option<Ipv6Addr>),
    /// NS, CNAME, PTR, DNAME: one name (presentation form, "" if absent).
    Name(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    /// TXT and SPF: the character strings, raw.
    Txt(Vec<Vec<u8>>),
    Soa(Soa),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Hinfo {
        cpu: Vec<u8>,
        os: Vec<u8>,
    },
    Caa {
        flags: u8,
        tag: Vec<u8>,
        value: Vec<u8>,
    },
    /// The EDNS pseudo-record; its options are checked, not kept.
    Opt,
    /// Any other type: the RDATA, raw (RFC 3597).
    Unknown(Vec<u8>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Soa {
    pub mname: String,
    pub rname: String,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

/// Decodes a whole reply.
pub fn decode(msg: &[u8]) -> Result<Message, DecodeError> {
    if msg.len() < HEADER_LEN {
        return fail(format!(
            "reply of {} bytes is shorter than a DNS header",
            msg.len()
        ));
    }
    let field = |i: usize| u16::from_be_bytes([msg[2 * i], msg[2 * i + 1]]);
    let (id, flags) = (field(0), field(1));
    let counts = [field(2), field(3), field(4), field(5)];
    let mut message = Message {
        id,
        response: flags & FLAG_QR != 0,
        truncated: flags & FLAG_TC != 0,
        rcode: flags & 0xF,
        questions: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let mut off = HEADER_LEN;
    // A bare header is a complete answer (servers send these with REFUSED).
    if off == msg.len() {
        return Ok(message);
    }
    for _ in 0..counts[0] {
        let start = off;
        let question = read_question(msg, &mut off)?;
        if off == start {
            break;
        }
        message.questions.push(question);
    }
    message.answer = read_records(msg, &mut off, counts[1], "answer")?;
    message.authority = read_records(msg, &mut off, counts[2], "authority")?;
    message.additional = read_records(msg, &mut off, counts[3], "additional")?;
    if let Some(opt) = message
        .additional
        .iter()
        .rev()
        .find(|r| r.rtype == TYPE_OPT)
    {
        message.rcode |= ((opt.ttl >> 24) as u16 & 0xFF) << 4;
    }
    Ok(message)
}

fn read_question(msg: &[u8], off: &mut usize) -> Result<Question, DecodeError> {
    let mut question = Question {
        name: read_name(msg, off)?,
        qtype: 0,
        qclass: 0,
    };
    // A question cut short after a field is kept as far as it goes.
    if *off == msg.len() {
        return Ok(question);
    }
    question.qtype = read_u16(msg, off, "question type")?;
    if *off == msg.len() {
        return Ok(question);
    }
    question.qclass = read_u16(msg, off, "question class")?;
    Ok(question)
}

/// `count` records; fewer if the message ends first.
fn read_records(
    msg: &[u8],
    off: &mut usize,
    count: u16,
    section: &str,
) -> Result<Vec<Record>, DecodeError> {
    let mut records = Vec::new();
    for _ in 0..count {
        // A count that promises more than the message holds is not an
        // error: the section ends here.
        if *off == msg.len() {
            break;
        }
        let record = read_record(msg, off)
            .map_err(|e| DecodeError(format!("{section} record {}: {e}", records.len() + 1)))?;
        records.push(record);
    }
    Ok(records)
}

fn read_record(msg: &[u8], off: &mut usize) -> Result<Record, DecodeError> {
    let name = read_name(msg, off)?;
    let rtype = read_u16(msg, off, "type")?;
    let class = read_u16(msg, off, "class")?;
    let ttl = read_u32(msg, off, "ttl")?;
    let rdlength = usize::from(read_u16(msg, off, "rdlength")?);
    let end = *off + rdlength;
    if end > msg.len() {
        return fail(format!(
            "rdlength {rdlength} runs past the end of the message"
        ));
    }
    // Names inside the data may point anywhere before its end, not after.
    let data = read_rdata(rtype, &msg[..end], off)?;
    if *off != end {
        return fail(format!(
            "{} bytes of data left over after its fields (rdlength {rdlength})",
            end - *off
        ));
    }
    Ok(Record {
        name,
        rtype,
        class,
        ttl,
        data,
    })
}

/// The data of a record of `rtype`, reading `msg[*off..]` (which ends where
/// the record does).
fn read_rdata(rtype: u16, msg: &[u8], off: &mut usize) -> Result<RData, DecodeError> {
    let empty = *off == msg.len();
    // After each field: stop if the data ends on a field boundary.
    let ended = |off: &usize| *off == msg.len();
    Ok(match rtype {
        TYPE_A if empty => RData::A(None),
        TYPE_A => {
            let octets: [u8; 4] = read_array(msg, off, "a")?;
            RData::A(Some(octets.into()))
        }
        TYPE_AAAA if empty => RData::Aaaa(None),
        TYPE_AAAA => {
            let octets: [u8; 16] = read_array(msg, off, "aaaa")?;
            RData::Aaaa(Some(octets.into()))
        }
        TYPE_NS | TYPE_CNAME | TYPE_PTR | TYPE_DNAME if empty => RData::Name(String::new()),
        TYPE_NS | TYPE_CNAME | TYPE_PTR | TYPE_DNAME => RData::Name(read_name(msg, off)?),
        TYPE_MX => {
            let mut exchange = String::new();
            let preference = if empty { 0 } else { read_u16(msg, off, "mx")? };
            if !ended(off) {
                exchange = read_name(msg, off)?;
            }
            RData::Mx {
                preference,
                exchange,
            }
        }
        TYPE_TXT | TYPE_SPF => {
            let mut strings = Vec::new();
            while !ended(off) {
                strings.push(read_character_string(msg, off)?);
            }
            RData::Txt(strings)
        }
        TYPE_SOA => {
            let mut soa = Soa::default();
            if !empty {
                soa.mname = read_name(msg, off)?;
                let numbers = [
                    &mut soa.serial,
                    &mut soa.refresh,
                    &mut soa.retry,
                    &mut soa.expire,
                    &mut soa.minimum,
                ];
                if !ended(off) {
                    soa.rname = read_name(msg, off)?;
                    for number in numbers {
                        if ended(off) {
                            break;
                        }
                        *number = read_u32(msg, off, "soa")?;
                    }
                }
            }
            RData::Soa(soa)
        }
        TYPE_SRV => {
            let mut numbers = [0u16; 3];
            let mut target = String::new();
            for number in &mut numbers {
                if ended(off) {
                    break;
                }
                *number = read_u16(msg, off, "srv")?;
            }
            if !ended(off) {
                target = read_name(msg, off)?;
            }
            let [priority, weight, port] = numbers;
            RData::Srv {
                priority,
                weight,
                port,
                target,
            }
        }
        TYPE_HINFO => {
            let (mut cpu, mut os) = (Vec::new(), Vec::new());
            if !empty {
                cpu = read_character_string(msg, off)?;
                if !ended(off) {
                    os = read_character_string(msg, off)?;
                }
            }
            RData::Hinfo { cpu, os }
        }
        TYPE_CAA => {
            let (mut flags, mut tag, mut value) = (0, Vec::new(), Vec::new());
            if !empty {
                let [byte]: [u8; 1] = read_array(msg, off, "caa")?;
                flags = byte;
                if !ended(off) {
                    tag = read_character_string(msg, off)?;
                    value = msg[*off..].to_vec();
                    *off = msg.len();
                }
            }
            RData::Caa { flags, tag, value }
        }
        TYPE_OPT => {
            // Options are code, length, data; one that overruns the record
            // makes the reply malformed.
            while !ended(off) {
                let [_, _, high, low]: [u8; 4] = read_array(msg, off, "opt")?;
                let len = usize::from(u16::from_be_bytes([high, low]));
                if *off + len > msg.len() {
                    return fail("overflow unpacking opt");
                }
                *off += len;
            }
            RData::Opt
        }
        _ => {
            let data = msg[*off..].to_vec();
            *off = msg.len();
            RData::Unknown(data)
        }
    })
}

fn read_array<const N: usize>(
    msg: &[u8],
    off: &mut usize,
    what: &str,
) -> Result<[u8; N], DecodeError> {
    let Some(bytes) = msg.get(*off..*off + N) else {
        return fail(format!("overflow unpacking {what}"));
    };
    *off += N;
    Ok(bytes.try_into().expect("slice of N bytes"))
}

fn read_u16(msg: &[u8], off: &mut usize, what: &str) -> Result<u16, DecodeError> {
    read_array(msg, off, what).map(u16::from_be_bytes)
}

fn read_u32(msg: &[u8], off: &mut usize, what: &str) -> Result<u32, DecodeError> {
    read_array(msg, off, what).map(u32::from_be_bytes)
}

/// A length-prefixed <character-string> (RFC 1035 §3.3), raw.
fn read_character_string(msg: &[u8], off: &mut usize) -> Result<Vec<u8>, DecodeError> {
    let [len]: [u8; 1] = read_array(msg, off, "txt")?;
    let Some(bytes) = msg.get(*off..*off + usize::from(len)) else {
        return fail("overflow unpacking txt");
    };
    *off += usize::from(len);
    Ok(bytes.to_vec())
}

/// A possibly compressed name at `*off`, in presentation form; `*off`
/// moves past it (past the first pointer, for a compressed one).
pub fn read_name(msg: &[u8], off: &mut usize) -> Result<String, DecodeError> {
    let mut name = String::new();
    let mut at = *off;
    let mut after_first_pointer = None;
    let mut pointers = 0;
    // Wire bytes still allowed, counting a length byte per label.
    let mut budget = MAX_NAME_WIRE as isize;
    loop {
        let Some(&len) = msg.get(at) else {
            return fail("name runs past the end of the message");
        };
        at += 1;
        match len & 0xC0 {
            0x00 if len == 0 => break,
            0x00 => {
                let len = usize::from(len);
                let Some(label) = msg.get(at..at + len) else {
                    return fail("label runs past the end of the message");
                };
                budget -= len as isize + 1;
                if budget <= 0 {
                    return fail("name longer than 255 bytes");
                }
                crate::text::escape_label(label, &mut name);
                name.push('.');
                at += len;
            }
            0xC0 => {
                let Some(&low) = msg.get(at) else {
                    return fail("compression pointer runs past the end of the message");
                };
                at += 1;
                if after_first_pointer.is_none() {
                    after_first_pointer = Some(at);
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return fail("too many compression pointers");
                }
                at = usize::from(len & 0x3F) << 8 | usize::from(low);
            }
            _ => return fail(format!("reserved label type 0x{:02x}", len & 0xC0)),
        }
    }
    *off = after_first_pointer.unwrap_or(at);
    if name.is_empty() {
        name.push('.');
    }
    Ok(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reply header: id, flags, counts.
    pub(crate) fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [id, flags, counts[0], counts[1], counts[2], counts[3]] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out
    }

    /// A record with an uncompressed owner name.
    pub(crate) fn record(name: &str, rtype: u16, class: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
        let mut out = name_to_wire(name).unwrap();
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn queries_are_encoded_as_rfc_1035_says() {
        let name = name_to_wire("www.example.com").unwrap();
        let query = encode_query(0xBEEF, &name, TYPE_AAAA, 1, true);
        let expected: &[u8] = &[
            0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header, RD set
            3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm',
            0, // name
            0, 28, 0, 1, // AAAA IN
        ];
        assert_eq!(query, expected);
        let no_recursion = encode_query(1, &name, TYPE_A, 3, false);
        assert_eq!(&no_recursion[2..4], &[0, 0]);
        assert_eq!(&no_recursion[no_recursion.len() - 2..], &[0, 3]);
    }

    #[test]
    fn names_are_made_fully_qualified_and_escapes_read() {
        assert_eq!(name_to_wire(".").unwrap(), [0]);
        assert_eq!(
            name_to_wire("example.com.").unwrap(),
            name_to_wire("example.com").unwrap()
        );
        assert_eq!(
            name_to_wire(r"a\.b.c").unwrap(),
            [3, b'a', b'.', b'b', 1, b'c', 0]
        );
        assert_eq!(
            name_to_wire(r"\065\032.x").unwrap(),
            [2, b'A', b' ', 1, b'x', 0]
        );
        assert!(name_to_wire("").is_err());
        assert!(name_to_wire("a..b").is_err());
        assert!(name_to_wire(".a").is_err());
        assert!(name_to_wire(r"a\").is_err());
        assert!(name_to_wire(r"\999.x").is_err());
        assert!(name_to_wire(&"x".repeat(64)).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(name_to_wire(&long).is_err(), "260 bytes on the wire");
    }

    #[test]
    fn a_reply_with_compressed_names_decodes() {
        let mut msg = header(7, 0x8180, [1, 2, 1, 1]);
        // Question at offset 12.
        msg.extend(name_to_wire("example.com").unwrap());
        msg.extend([0, 15, 0, 1]);
        // MX 10 mail.example.com, owner and exchange compressed.
        let mut mx = vec![0, 10, 4, b'm', b'a', b'i', b'l', 0xC0, 12];
        msg.extend([0xC0, 12, 0, 15, 0, 1, 0, 0, 0x0E, 0x10, 0, mx.len() as u8]);
        msg.append(&mut mx);
        // A second answer: CNAME to a name pointing into the first.
        let mail_at = (msg.len() - 7) as u8;
        msg.extend([0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, mail_at]);
        // Authority: NS.
        msg.extend(record(
            "example.com",
            TYPE_NS,
            1,
            60,
            &[2, b'n', b's', 0xC0, 12],
        ));
        // Additional: A of the NS.
        msg.extend(record("ns.example.com", TYPE_A, 1, 60, &[192, 0, 2, 1]));

        let reply = decode(&msg).unwrap();
        assert_eq!(reply.id, 7);
        assert!(reply.response && !reply.truncated);
        assert_eq!(reply.rcode, 0);
        assert_eq!(
            reply.questions,
            [Question {
                name: "example.com.".into(),
                qtype: 15,
                qclass: 1
            }]
        );
        assert_eq!(reply.answer.len(), 2);
        assert_eq!(reply.answer[0].name, "example.com.");
        assert_eq!(reply.answer[0].ttl, 3600);
        assert_eq!(
            reply.answer[0].data,
            RData::Mx {
                preference: 10,
                exchange: "mail.example.com.".into()
            }
        );
        assert_eq!(
            reply.answer[1].data,
            RData::Name("mail.example.com.".into())
        );
        assert_eq!(
            reply.authority[0].data,
            RData::Name("ns.example.com.".into())
        );
        assert_eq!(
            reply.additional[0].data,
            RData::A(Some(Ipv4Addr::new(192, 0, 2, 1)))
        );
    }

    #[test]
    fn every_known_type_decodes() {
        let soa_data = {
            let mut d = name_to_wire("ns1.example.com").unwrap();
            d.extend(name_to_wire("hostmaster.example.com").unwrap());
            for n in [2024010101u32, 3600, 600, 86400, 300] {
                d.extend(n.to_be_bytes());
            }
            d
        };
        let mut srv = vec![0, 1, 0, 2, 0x13, 0xC4];
        srv.extend(name_to_wire("sip.example.com").unwrap());
        let cases: Vec<(u16, Vec<u8>, RData)> = vec![
            (
                TYPE_AAAA,
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
                    .octets()
                    .to_vec(),
                RData::Aaaa(Some("2001:db8::1".parse().unwrap())),
            ),
            (
                TYPE_TXT,
                b"\x05hello\x00\x03a\"b".to_vec(),
                RData::Txt(vec![b"hello".to_vec(), vec![], b"a\"b".to_vec()]),
            ),
            (
                TYPE_SOA,
                soa_data,
                RData::Soa(Soa {
                    mname: "ns1.example.com.".into(),
                    rname: "hostmaster.example.com.".into(),
                    serial: 2024010101,
                    refresh: 3600,
                    retry: 600,
                    expire: 86400,
                    minimum: 300,
                }),
            ),
            (
                TYPE_SRV,
                srv,
                RData::Srv {
                    priority: 1,
                    weight: 2,
                    port: 5060,
                    target: "sip.example.com.".into(),
                },
            ),
            (
                TYPE_PTR,
                name_to_wire("host.example.com").unwrap(),
                RData::Name("host.example.com.".into()),
            ),
            (
                TYPE_CAA,
                b"\x00\x05issueca.example".to_vec(),
                RData::Caa {
                    flags: 0,
                    tag: b"issue".to_vec(),
                    value: b"ca.example".to_vec(),
                },
            ),
            (
                TYPE_HINFO,
                b"\x03cpu\x02os".to_vec(),
                RData::Hinfo {
                    cpu: b"cpu".to_vec(),
                    os: b"os".to_vec(),
                },
            ),
            (43, vec![0xAB, 0xCD], RData::Unknown(vec![0xAB, 0xCD])),
        ];
        for (rtype, data, expected) in cases {
            let mut msg = header(1, 0x8000, [0, 1, 0, 0]);
            msg.extend(record("x.example.com", rtype, 1, 1, &data));
            let reply = decode(&msg).unwrap_or_else(|e| panic!("type {rtype}: {e}"));
            assert_eq!(reply.answer[0].data, expected, "type {rtype}");
        }
    }

    #[test]
    fn short_data_leaves_later_fields_empty_like_miekg() {
        // MX with only its preference; SOA with only its names; A and TXT
        // with no data at all.
        let mut soa = name_to_wire("ns.x").unwrap();
        soa.extend(name_to_wire("h.x").unwrap());
        let mut msg = header(1, 0x8000, [0, 4, 0, 0]);
        msg.extend(record("x", TYPE_MX, 1, 1, &[0, 5]));
        msg.extend(record("x", TYPE_SOA, 1, 1, &soa));
        msg.extend(record("x", TYPE_A, 1, 1, &[]));
        msg.extend(record("x", TYPE_TXT, 1, 1, &[]));
        let reply = decode(&msg).unwrap();
        assert_eq!(
            reply.answer[0].data,
            RData::Mx {
                preference: 5,
                exchange: String::new()
            }
        );
        let RData::Soa(soa) = &reply.answer[1].data else {
            panic!()
        };
        assert_eq!((soa.rname.as_str(), soa.serial), ("h.x.", 0));
        assert_eq!(reply.answer[2].data, RData::A(None));
        assert_eq!(reply.answer[3].data, RData::Txt(vec![]));
    }

    #[test]
    fn counts_larger_than_the_message_end_the_section() {
        // A truncated reply as servers send it: TC set, counts as planned,
        // records cut at a record boundary.
        let mut msg = header(9, 0x8200, [1, 5, 2, 0]);
        msg.extend(name_to_wire("big.example").unwrap());
        msg.extend([0, 16, 0, 1]);
        msg.extend(record("big.example", TYPE_TXT, 1, 1, b"\x01a"));
        let reply = decode(&msg).unwrap();
        assert!(reply.truncated);
        assert_eq!(reply.answer.len(), 1);
        assert!(reply.authority.is_empty());
        // A bare header is fine too.
        let reply = decode(&header(3, 0x8005, [1, 0, 0, 0])).unwrap();
        assert_eq!(reply.rcode, 5);
        assert!(reply.questions.is_empty());
    }

    #[test]
    fn malformed_replies_are_errors() {
        let mut with_question = header(1, 0x8000, [1, 1, 0, 0]);
        with_question.extend(name_to_wire("x.example").unwrap());
        with_question.extend([0, 1, 0, 1]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short header", vec![0; 11]),
            ("rdlength past the end", {
                let mut m = with_question.clone();
                let mut r = record("x.example", TYPE_A, 1, 1, &[1, 2, 3, 4]);
                r.truncate(r.len() - 1);
                m.extend(r);
                m
            }),
            ("a record cut mid-header", {
                let mut m = with_question.clone();
                m.extend(&record("x.example", TYPE_A, 1, 1, &[1, 2, 3, 4])[..8]);
                m
            }),
            ("A with 5 bytes of data", {
                let mut m = with_question.clone();
                m.extend(record("x.example", TYPE_A, 1, 1, &[1, 2, 3, 4, 5]));
                m
            }),
            ("A with 3 bytes of data", {
                let mut m = with_question.clone();
                m.extend(record("x.example", TYPE_A, 1, 1, &[1, 2, 3]));
                m
            }),
            ("TXT string past its record", {
                let mut m = with_question.clone();
                m.extend(record("x.example", TYPE_TXT, 1, 1, b"\x09abc"));
                m
            }),
            ("pointer loop", {
                let mut m = header(1, 0x8000, [1, 0, 0, 0]);
                m.extend([0xC0, 12, 0, 1, 0, 1]);
                m
            }),
            ("reserved label type", {
                let mut m = header(1, 0x8000, [1, 0, 0, 0]);
                m.extend([0x40, 0, 0, 1, 0, 1]);
                m
            }),
            ("question count beyond the message", {
                let mut m = header(1, 0x8000, [2, 0, 0, 0]);
                m.extend(name_to_wire("x").unwrap());
                m.extend([0, 1, 0, 1]);
                m
            }),
        ];
        for (what, msg) in cases {
            assert!(decode(&msg).is_err(), "{what} decoded");
        }
    }

    #[test]
    fn opt_extends_the_rcode() {
        let mut msg = header(1, 0x8000, [0, 0, 0, 1]);
        // Root owner, OPT, udp size 1232, extended rcode 1 (BADVERS = 16).
        msg.extend([0, 0, 41, 0x04, 0xD0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&msg).unwrap().rcode, 16);
    }
}
