//! Records as text, byte for byte as Go's miekg/dns `RR.String()` writes
//! them (v1.1.50, blackbox_exporter 0.23's): users' `validate_*_rrs`
//! regexes were written against that form, e.g.
//! `example.com.\t3600\tIN\tA\t192.0.2.1`.
//!
//! The header is `owner<TAB>ttl<TAB>class<TAB>type<TAB>`; names end with a
//! dot and escape special bytes (`\.`, `\"`, `\DDD`); character strings are
//! quoted. Types this probe does not decode are written in RFC 3597's
//! generic form, `owner<TAB>ttl<TAB>CLASS1<TAB>TYPE43<TAB>\# 2 abcd`, which
//! is what miekg writes for types it does not know (for types it does know,
//! such as DS or RRSIG, it writes their own form instead).

use std::fmt::{self, Write};
use std::net::Ipv6Addr;

use crate::wire::{RData, Record, TYPE_OPT};

/// Type mnemonics, as miekg's `TypeToString`.
const TYPES: &[(u16, &str)] = &[
    (0, "None"),
    (1, "A"),
    (2, "NS"),
    (3, "MD"),
    (4, "MF"),
    (5, "CNAME"),
    (6, "SOA"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (12, "PTR"),
    (13, "HINFO"),
    (14, "MINFO"),
    (15, "MX"),
    (16, "TXT"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (28, "AAAA"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (33, "SRV"),
    (34, "ATMA"),
    (35, "NAPTR"),
    (36, "KX"),
    (37, "CERT"),
    (39, "DNAME"),
    (41, "OPT"),
    (42, "APL"),
    (43, "DS"),
    (44, "SSHFP"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (49, "DHCID"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (63, "ZONEMD"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (99, "SPF"),
    (100, "UINFO"),
    (101, "UID"),
    (102, "GID"),
    (103, "UNSPEC"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
    (256, "URI"),
    (257, "CAA"),
    (258, "AVC"),
    (32768, "TA"),
    (32769, "DLV"),
    (65535, "Reserved"),
];

/// Class mnemonics, as miekg's `ClassToString`.
const CLASSES: &[(u16, &str)] = &[
    (1, "IN"),
    (2, "CS"),
    (3, "CH"),
    (4, "HS"),
    (254, "NONE"),
    (255, "ANY"),
];

/// Response codes, as miekg's `RcodeToString` (16 is both BADSIG and
/// BADVERS; miekg names it BADSIG).
const RCODES: &[(u16, &str)] = &[
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

fn code_of(table: &[(u16, &str)], name: &str) -> Option<u16> {
    table.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

fn name_of(table: &[(u16, &'static str)], code: u16) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The code of a query type as blackbox_exporter spells it (`A`, `AAAA`,
/// `NSAP-PTR` …; case matters).
pub fn type_code(name: &str) -> Option<u16> {
    code_of(TYPES, name)
}

/// The code of a query class (`IN`, `CH`, `HS`, `CS`, `NONE`, `ANY`).
pub fn class_code(name: &str) -> Option<u16> {
    code_of(CLASSES, name)
}

/// The code of a response code name (`NOERROR`, `NXDOMAIN` …; `NOTIMPL`
/// too, as miekg accepts it).
pub fn rcode_code(name: &str) -> Option<u16> {
    match name {
        "NOTIMPL" => Some(4),
        _ => code_of(RCODES, name),
    }
}

/// `NXDOMAIN`, or the number for a code without a name.
pub fn rcode_name(code: u16) -> String {
    name_of(RCODES, code).map_or_else(|| code.to_string(), str::to_owned)
}

pub fn type_name(code: u16) -> String {
    name_of(TYPES, code).map_or_else(|| format!("TYPE{code}"), str::to_owned)
}

/// miekg writes a class mnemonic only when it is not also a type name:
/// class ANY is `CLASS255`.
pub fn class_name(code: u16) -> String {
    match name_of(CLASSES, code) {
        Some(name) if type_code(name).is_none() => name.to_owned(),
        _ => format!("CLASS{code}"),
    }
}

/// Appends one label's bytes as miekg presents them: `.` ` ` `'` `@` `;`
/// `(` `)` `"` `\` escaped with a backslash, unprintable bytes as `\DDD`.
pub fn escape_label(label: &[u8], out: &mut String) {
    for &byte in label {
        match byte {
            b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            _ => push_byte(byte, out),
        }
    }
}

/// A printable byte as itself, anything else as `\DDD`.
fn push_byte(byte: u8, out: &mut String) {
    if (b' '..=b'~').contains(&byte) {
        out.push(char::from(byte));
    } else {
        let _ = write!(out, "\\{byte:03}");
    }
}

/// A character string's bytes without the quotes: `"` and `\` escaped,
/// unprintable bytes as `\DDD`.
fn escape_string(bytes: &[u8], out: &mut String) {
    for &byte in bytes {
        if byte == b'"' || byte == b'\\' {
            out.push('\\');
            out.push(char::from(byte));
        } else {
            push_byte(byte, out);
        }
    }
}

/// Character strings quoted and separated by spaces (TXT, SPF, HINFO).
fn quoted_strings<'a>(strings: impl IntoIterator<Item = &'a [u8]>, out: &mut String) {
    for (i, string) in strings.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        escape_string(string, out);
        out.push('"');
    }
}

/// A CAA value as miekg's `sprintTxtOctet` writes it: the raw value is read
/// as if it were presentation text (a `\.` is kept as is, `\X` and `\DDD`
/// are decoded), then escaped like a character string.
fn caa_value(value: &[u8], out: &mut String) {
    out.push('"');
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\\' && value.get(i + 1) == Some(&b'.') {
            out.push_str("\\.");
            i += 2;
            continue;
        }
        match next_byte(value, i) {
            // A dangling backslash is dropped.
            None => i += 1,
            Some((byte, used)) => {
                escape_string(&[byte], out);
                i += used;
            }
        }
    }
    out.push('"');
}

/// miekg's `nextByte`: the byte at `at` with `\X` and `\DDD` decoded, and
/// how many bytes it took; `None` for a lone trailing backslash.
fn next_byte(s: &[u8], at: usize) -> Option<(u8, usize)> {
    let byte = *s.get(at)?;
    if byte != b'\\' {
        return Some((byte, 1));
    }
    let rest = &s[at + 1..];
    match rest.len() {
        0 => None,
        1 | 2 => Some((rest[0], 2)),
        _ if rest[..3].iter().all(u8::is_ascii_digit) => {
            // Go computes this in a byte: values past 255 wrap.
            let value = rest[..3]
                .iter()
                .fold(0u8, |n, d| n.wrapping_mul(10).wrapping_add(d - b'0'));
            Some((value, 4))
        }
        _ => Some((rest[0], 2)),
    }
}

/// An IPv6 address as Go's `net.IP.String()` writes it: RFC 5952, except
/// that an IPv4-mapped address is written as the bare IPv4 address.
fn write_ipv6(ip: &Ipv6Addr, out: &mut String) {
    match ip.to_ipv4_mapped() {
        Some(v4) => {
            let _ = write!(out, "{v4}");
        }
        None => {
            let _ = write!(out, "{ip}");
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        match &self.data {
            // The EDNS pseudo-record has its own form (its options are
            // not written here).
            RData::Opt if self.rtype == TYPE_OPT => {
                let version = (self.ttl >> 16) & 0xFF;
                let dnssec_ok = self.ttl & 0x8000 != 0;
                let flags = if dnssec_ok { "do; " } else { "" };
                return write!(
                    f,
                    "\n;; OPT PSEUDOSECTION:\n; EDNS: version {version}; flags: {flags}; udp: {}",
                    self.class
                );
            }
            RData::Unknown(data) => {
                let _ = write!(
                    out,
                    "{}\t{}\tCLASS{}\tTYPE{}\t\\# {} ",
                    self.name,
                    self.ttl,
                    self.class,
                    self.rtype,
                    data.len()
                );
                for byte in data {
                    let _ = write!(out, "{byte:02x}");
                }
                return f.write_str(&out);
            }
            _ => {}
        }
        let _ = write!(
            out,
            "{}\t{}\t{}\t{}\t",
            self.name,
            self.ttl,
            class_name(self.class),
            type_name(self.rtype)
        );
        match &self.data {
            RData::A(ip) => {
                if let Some(ip) = ip {
                    let _ = write!(out, "{ip}");
                }
            }
            RData::Aaaa(ip) => {
                if let Some(ip) = ip {
                    write_ipv6(ip, &mut out);
                }
            }
            RData::Name(name) => out.push_str(name),
            RData::Mx {
                preference,
                exchange,
            } => {
                let _ = write!(out, "{preference} {exchange}");
            }
            RData::Txt(strings) => quoted_strings(strings.iter().map(Vec::as_slice), &mut out),
            RData::Soa(soa) => {
                let _ = write!(
                    out,
                    "{} {} {} {} {} {} {}",
                    soa.mname,
                    soa.rname,
                    soa.serial,
                    soa.refresh,
                    soa.retry,
                    soa.expire,
                    soa.minimum
                );
            }
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let _ = write!(out, "{priority} {weight} {port} {target}");
            }
            RData::Hinfo { cpu, os } => quoted_strings([cpu.as_slice(), os.as_slice()], &mut out),
            RData::Caa { flags, tag, value } => {
                let _ = write!(out, "{flags} ");
                escape_string(tag, &mut out);
                out.push(' ');
                caa_value(value, &mut out);
            }
            // Handled above; an OPT-shaped record of another type cannot
            // be decoded.
            RData::Opt | RData::Unknown(_) => {}
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, Soa};

    fn rr(name: &str, rtype: u16, class: u16, ttl: u32, data: RData) -> String {
        Record {
            name: name.into(),
            rtype,
            class,
            ttl,
            data,
        }
        .to_string()
    }

    // Expected strings are what miekg/dns v1.1.50 prints for the same
    // records (dns.NewRR(...).String() in Go).
    #[test]
    fn records_render_as_miekg_writes_them() {
        let cases = [
            (
                rr(
                    "example.com.",
                    1,
                    1,
                    3600,
                    RData::A(Some([127, 0, 0, 1].into())),
                ),
                "example.com.\t3600\tIN\tA\t127.0.0.1",
            ),
            (
                rr("example.com.", 1, 1, 0, RData::A(None)),
                "example.com.\t0\tIN\tA\t",
            ),
            (
                rr(
                    "v6.example.com.",
                    28,
                    1,
                    300,
                    RData::Aaaa(Some("2001:db8:0:0:1:0:0:1".parse().unwrap())),
                ),
                "v6.example.com.\t300\tIN\tAAAA\t2001:db8::1:0:0:1",
            ),
            (
                rr(
                    "m.example.com.",
                    28,
                    1,
                    1,
                    RData::Aaaa(Some("::ffff:192.0.2.1".parse().unwrap())),
                ),
                "m.example.com.\t1\tIN\tAAAA\t192.0.2.1",
            ),
            (
                rr(
                    "www.example.com.",
                    5,
                    1,
                    60,
                    RData::Name("web.example.com.".into()),
                ),
                "www.example.com.\t60\tIN\tCNAME\tweb.example.com.",
            ),
            (
                rr(
                    "example.com.",
                    15,
                    1,
                    3600,
                    RData::Mx {
                        preference: 10,
                        exchange: "mail.example.com.".into(),
                    },
                ),
                "example.com.\t3600\tIN\tMX\t10 mail.example.com.",
            ),
            (
                rr(
                    "example.com.",
                    16,
                    1,
                    300,
                    RData::Txt(vec![
                        b"v=spf1 -all".to_vec(),
                        b"say \"hi\" \\ \x01\xff".to_vec(),
                    ]),
                ),
                "example.com.\t300\tIN\tTXT\t\"v=spf1 -all\" \"say \\\"hi\\\" \\\\ \\001\\255\"",
            ),
            (
                rr(
                    "example.com.",
                    6,
                    1,
                    3600,
                    RData::Soa(Soa {
                        mname: "ns1.example.com.".into(),
                        rname: "hostmaster.example.com.".into(),
                        serial: 2024010101,
                        refresh: 7200,
                        retry: 3600,
                        expire: 1209600,
                        minimum: 300,
                    }),
                ),
                "example.com.\t3600\tIN\tSOA\tns1.example.com. hostmaster.example.com. \
                 2024010101 7200 3600 1209600 300",
            ),
            (
                rr(
                    "_sip._tcp.example.com.",
                    33,
                    1,
                    86400,
                    RData::Srv {
                        priority: 0,
                        weight: 5,
                        port: 5060,
                        target: "sip.example.com.".into(),
                    },
                ),
                "_sip._tcp.example.com.\t86400\tIN\tSRV\t0 5 5060 sip.example.com.",
            ),
            (
                rr(
                    "1.2.0.192.in-addr.arpa.",
                    12,
                    1,
                    1,
                    RData::Name("host.example.com.".into()),
                ),
                "1.2.0.192.in-addr.arpa.\t1\tIN\tPTR\thost.example.com.",
            ),
            (
                rr(
                    "version.bind.",
                    16,
                    3,
                    0,
                    RData::Txt(vec![b"9.18".to_vec()]),
                ),
                "version.bind.\t0\tCH\tTXT\t\"9.18\"",
            ),
            (
                rr("example.com.", 43, 1, 5, RData::Unknown(vec![0x0A, 0xFF])),
                "example.com.\t5\tCLASS1\tTYPE43\t\\# 2 0aff",
            ),
            (
                rr(
                    "example.com.",
                    257,
                    1,
                    5,
                    RData::Caa {
                        flags: 0,
                        tag: b"issue".to_vec(),
                        value: b"ca.example.net; x=\"1\"".to_vec(),
                    },
                ),
                "example.com.\t5\tIN\tCAA\t0 issue \"ca.example.net; x=\\\"1\\\"\"",
            ),
            (
                rr(
                    "h.example.com.",
                    13,
                    1,
                    5,
                    RData::Hinfo {
                        cpu: b"INTEL".to_vec(),
                        os: b"linux os".to_vec(),
                    },
                ),
                "h.example.com.\t5\tIN\tHINFO\t\"INTEL\" \"linux os\"",
            ),
            (
                rr(
                    "example.com.",
                    15,
                    1,
                    5,
                    RData::Mx {
                        preference: 0,
                        exchange: String::new(),
                    },
                ),
                "example.com.\t5\tIN\tMX\t0 ",
            ),
            (
                rr(".", 2, 255, 5, RData::Name("a.root-servers.net.".into())),
                ".\t5\tCLASS255\tNS\ta.root-servers.net.",
            ),
            (
                rr(".", 41, 1232, 0x0000_8000, RData::Opt),
                "\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags: do; ; udp: 1232",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn owner_names_escape_special_and_unprintable_bytes() {
        // Decoding does the escaping, as miekg's UnpackDomainName does.
        let mut msg = wire::tests::header(1, 0x8000, [0, 1, 0, 0]);
        msg.extend([4, b'a', b'.', b' ', 0x07, 2, b'@', 0xE9, 0]);
        msg.extend([0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 10, 0, 0, 1]);
        let reply = wire::decode(&msg).unwrap();
        assert_eq!(
            reply.answer[0].to_string(),
            "a\\.\\ \\007.\\@\\233.\t1\tIN\tA\t10.0.0.1"
        );
    }

    #[test]
    fn names_and_codes_follow_miekgs_tables() {
        assert_eq!(type_code("AAAA"), Some(28));
        assert_eq!(type_code("NSAP-PTR"), Some(23));
        assert_eq!(type_code("aaaa"), None, "mnemonics are case-sensitive");
        assert_eq!(type_name(65280), "TYPE65280");
        assert_eq!(class_code("CH"), Some(3));
        assert_eq!(class_name(1), "IN");
        assert_eq!(class_name(254), "NONE");
        assert_eq!(class_name(255), "CLASS255");
        assert_eq!(class_name(42), "CLASS42");
        assert_eq!(rcode_code("NXDOMAIN"), Some(3));
        assert_eq!(rcode_code("NOTIMPL"), Some(4));
        assert_eq!(rcode_code("BADVERS"), None);
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(99), "99");
    }

    #[test]
    fn caa_values_are_read_as_presentation_text() {
        let mut out = String::new();
        caa_value(b"a\\.b\\065\\", &mut out);
        assert_eq!(out, "\"a\\.bA\"");
        assert_eq!(next_byte(b"\\999", 0), Some((231, 4)), "Go's byte wraps");
        assert_eq!(next_byte(b"\\x", 0), Some((b'x', 2)));
        assert_eq!(next_byte(b"\\", 0), None);
    }
}
