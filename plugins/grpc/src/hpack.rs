//! HPACK (RFC 7541), as much as a client of one call needs: a decoder for
//! the server's header blocks — Huffman strings, the static and dynamic
//! tables, table size updates — and an encoder for the request's few
//! headers, which sends literals only (no dynamic table, no Huffman), so the
//! server's decoder state never matters to us.

use std::collections::VecDeque;
use std::fmt;

/// The dynamic table size we allow the server (SETTINGS_HEADER_TABLE_SIZE),
/// HTTP/2's default: a server may fill it without asking.
pub const TABLE_SIZE: usize = 4096;

/// Largest decoded header list accepted (names and values plus 32 bytes per
/// field, as RFC 9113 counts): indexed references can expand one byte into
/// a whole table entry, so the output is bounded, not just the input.
pub const MAX_HEADER_LIST_BYTES: usize = 64 * 1024;

/// A header block that does not decode; the connection cannot go on
/// (COMPRESSION_ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpackError(pub String);

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HPACK: {}", self.0)
    }
}

fn error(message: impl Into<String>) -> HpackError {
    HpackError(message.into())
}

/// One header field as sent: name and value bytes.
pub type Field = (Vec<u8>, Vec<u8>);

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Static table indexes the encoder uses.
pub mod index {
    pub const AUTHORITY: usize = 1;
    pub const METHOD_POST: usize = 3;
    pub const PATH: usize = 4;
    pub const SCHEME_HTTP: usize = 6;
    pub const SCHEME_HTTPS: usize = 7;
    pub const CONTENT_TYPE: usize = 31;
    pub const USER_AGENT: usize = 58;
}

/// The decoding context of one connection: the dynamic table the server's
/// encoder fills.
#[derive(Debug)]
pub struct Decoder {
    /// Newest entry first (dynamic index 62 is `table[0]`).
    table: VecDeque<Field>,
    /// Sum of the entries' sizes (name + value + 32 each).
    size: usize,
    /// The size the server's last table size update chose.
    max_size: usize,
    /// The ceiling we advertised: an update above it is an error.
    limit: usize,
}

impl Decoder {
    /// A decoder whose table may hold `limit` bytes (what we advertised as
    /// SETTINGS_HEADER_TABLE_SIZE).
    pub fn new(limit: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// The current size of the dynamic table in RFC 7541 bytes.
    #[cfg(test)]
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Decodes one complete header block (HEADERS plus CONTINUATIONs).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut input = Input { bytes: block };
        let mut fields = Vec::new();
        let mut list_bytes = 0usize;
        while let Some(&first) = input.bytes.first() {
            let field = if first & 0x80 != 0 {
                // Indexed header field (6.1).
                let index = input.integer(7)?;
                self.lookup(index)?
            } else if first & 0xc0 == 0x40 {
                // Literal with incremental indexing (6.2.1).
                let field = self.literal(&mut input, 6)?;
                self.insert(field.clone());
                field
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (6.3): only before the first
                // field of a block (4.2).
                if !fields.is_empty() {
                    return Err(error("table size update after a header field"));
                }
                let size = input.integer(5)?;
                if size > self.limit {
                    return Err(error(format!(
                        "table size update to {size} above the {} allowed",
                        self.limit
                    )));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001).
                self.literal(&mut input, 4)?
            };
            list_bytes += field.0.len() + field.1.len() + 32;
            if list_bytes > MAX_HEADER_LIST_BYTES {
                return Err(error(format!(
                    "header list larger than {MAX_HEADER_LIST_BYTES} bytes"
                )));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// The entry at `index` of the combined static + dynamic index space.
    fn lookup(&self, index: usize) -> Result<Field, HpackError> {
        match index {
            0 => Err(error("index 0")),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
            }
            _ => self
                .table
                .get(index - 62)
                .cloned()
                .ok_or_else(|| error(format!("index {index} beyond the table"))),
        }
    }

    /// A literal field whose name index has a `prefix`-bit prefix; 0 means
    /// the name follows as a string.
    fn literal(&self, input: &mut Input<'_>, prefix: u8) -> Result<Field, HpackError> {
        let name_index = input.integer(prefix)?;
        let name = if name_index == 0 {
            input.string()?
        } else {
            self.lookup(name_index)?.0
        };
        let value = input.string()?;
        Ok((name, value))
    }

    /// Adds an entry, evicting the oldest to make room (4.4). An entry
    /// larger than the whole table empties it and is not kept.
    fn insert(&mut self, field: Field) {
        let entry = field.0.len() + field.1.len() + 32;
        self.evict(entry);
        if entry <= self.max_size {
            self.size += entry;
            self.table.push_front(field);
        }
    }

    /// Evicts until `room` more bytes fit in the table.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some((name, value)) => self.size -= name.len() + value.len() + 32,
                None => break,
            }
        }
    }
}

/// The unread rest of a header block.
struct Input<'a> {
    bytes: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Result<u8, HpackError> {
        let (&first, rest) = self
            .bytes
            .split_first()
            .ok_or_else(|| error("header block ends inside a field"))?;
        self.bytes = rest;
        Ok(first)
    }

    /// An integer with a `prefix`-bit prefix in the current byte (5.1).
    fn integer(&mut self, prefix: u8) -> Result<usize, HpackError> {
        let mask = (1u16 << prefix) as u8 - 1;
        let mut value = usize::from(self.byte()? & mask);
        if value < usize::from(mask) {
            return Ok(value);
        }
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            // 4 continuation bytes hold 28 bits, more than any index, size
            // or length a header block can carry.
            if shift > 21 {
                return Err(error("integer too large"));
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    /// A string literal, Huffman-coded or not (5.2).
    fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let huffman = self.bytes.first().is_some_and(|b| b & 0x80 != 0);
        let len = self.integer(7)?;
        if len > self.bytes.len() {
            return Err(error("string longer than the header block"));
        }
        let (raw, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        if huffman {
            huffman_decode(raw)
        } else {
            Ok(raw.to_vec())
        }
    }
}

/// Appends `value` as an HPACK integer with a `prefix`-bit prefix, the
/// first byte's high bits being `flags` (5.1).
pub fn encode_integer(out: &mut Vec<u8>, value: usize, prefix: u8, flags: u8) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a plain (not Huffman-coded) string literal.
fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_integer(out, bytes.len(), 7, 0);
    out.extend_from_slice(bytes);
}

/// Appends a field that is entirely in the static table (6.1).
pub fn encode_indexed(out: &mut Vec<u8>, index: usize) {
    encode_integer(out, index, 7, 0x80);
}

/// Appends a literal without indexing whose name is static entry
/// `name_index` (6.2.2).
pub fn encode_literal_indexed_name(out: &mut Vec<u8>, name_index: usize, value: &[u8]) {
    encode_integer(out, name_index, 4, 0);
    encode_string(out, value);
}

/// Appends a literal without indexing with a new name (6.2.2).
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    encode_string(out, name);
    encode_string(out, value);
}

/// Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), by symbol
/// (256 is EOS). The code is canonical — codes of one length are
/// consecutive in symbol order, each length starting where the shorter ones
/// left off — so the lengths alone define it.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' ' - '/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0' - '?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@' - 'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P' - '_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`' - 'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p' - 127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
    30, // EOS
];

const EOS: u16 = 256;
const MAX_CODE_LENGTH: usize = 30;

/// The canonical code in decoding form: how many codes each length has, and
/// the symbols ordered by (length, symbol).
struct Canonical {
    count: [u16; MAX_CODE_LENGTH + 1],
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut count = [0u16; MAX_CODE_LENGTH + 1];
    let mut symbols = [0u16; 257];
    let mut i = 0;
    while i < 257 {
        count[CODE_LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut next = 0;
    let mut len = 1;
    while len <= MAX_CODE_LENGTH {
        let mut symbol = 0;
        while symbol < 257 {
            if CODE_LENGTHS[symbol] as usize == len {
                symbols[next] = symbol as u16;
                next += 1;
            }
            symbol += 1;
        }
        len += 1;
    }
    Canonical { count, symbols }
}

const HUFFMAN: Canonical = canonical();

/// Decodes a Huffman-coded string (5.2): bit by bit through the canonical
/// code; the end may hold at most 7 padding bits, all ones (a prefix of
/// EOS), and EOS itself must not appear.
fn huffman_decode(coded: &[u8]) -> Result<Vec<u8>, HpackError> {
    let mut out = Vec::with_capacity(coded.len() * 8 / 5);
    // The code being read, relative to the first code of its length.
    let (mut code, mut first, mut index, mut len) = (0u32, 0u32, 0usize, 0usize);
    // The same bits raw, to check the padding.
    let mut pending_bits = 0u32;
    for byte in coded {
        for shift in (0..8).rev() {
            let bit = u32::from(byte >> shift) & 1;
            code |= bit;
            pending_bits = (pending_bits << 1) | bit;
            len += 1;
            let count = u32::from(HUFFMAN.count[len]);
            if code < first + count {
                let symbol = HUFFMAN.symbols[index + (code - first) as usize];
                if symbol == EOS {
                    return Err(error("EOS inside a Huffman string"));
                }
                out.push(symbol as u8);
                (code, first, index, len, pending_bits) = (0, 0, 0, 0, 0);
                continue;
            }
            // Longer codes start after all codes of this length.
            index += count as usize;
            first = (first + count) << 1;
            code <<= 1;
            if len == MAX_CODE_LENGTH {
                return Err(error("invalid Huffman code"));
            }
        }
    }
    if len > 7 || pending_bits != (1 << len) - 1 {
        return Err(error("bad padding of a Huffman string"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<Field> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// The code of every symbol, derived canonically from the lengths.
    fn codes() -> Vec<(u32, u8)> {
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODE_LENGTHS[s], s));
        let mut codes = vec![(0, 0); 257];
        let (mut code, mut len) = (0u32, CODE_LENGTHS[order[0]]);
        for s in order {
            code <<= CODE_LENGTHS[s] - len;
            len = CODE_LENGTHS[s];
            codes[s] = (code, len);
            code += 1;
        }
        codes
    }

    fn huffman_encode(text: &[u8]) -> Vec<u8> {
        let codes = codes();
        let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
        for &b in text {
            let (code, len) = codes[usize::from(b)];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
        }
        out
    }

    #[test]
    fn huffman_code_is_complete_and_matches_appendix_b() {
        // Kraft: a complete prefix code fills the code space exactly.
        let space: u64 = CODE_LENGTHS
            .iter()
            .map(|&len| 1u64 << (MAX_CODE_LENGTH as u8 - len))
            .sum();
        assert_eq!(space, 1 << MAX_CODE_LENGTH);
        // Spot checks against the table's hex codes, one or more per length.
        let codes = codes();
        for (symbol, code, len) in [
            (0, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (22, 0x3ffffffe, 30),
            (32, 0x14, 6),
            (48, 0x0, 5),
            (58, 0x5c, 7),
            (60, 0x7ffc, 15),
            (92, 0x7fff0, 19),
            (116, 0x9, 5),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (153, 0x1fffdc, 21),
            (199, 0x1ffffec, 25),
            (203, 0x7ffffde, 27),
            (220, 0xffffffd, 28),
            (249, 0xffffffe, 28),
            (254, 0x7fffff0, 27),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ] {
            assert_eq!(codes[symbol], (code, len), "symbol {symbol}");
        }
    }

    #[test]
    fn huffman_strings_of_rfc_7541_c4_and_c6() {
        for (coded, text) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
                "https://www.example.com",
            ),
            ("640e ff", "307"),
            ("9bd9 ab", "gzip"),
            (
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ] {
            assert_eq!(huffman_decode(&hex(coded)).unwrap(), text.as_bytes());
            assert_eq!(huffman_encode(text.as_bytes()), hex(coded), "{text}");
        }
    }

    #[test]
    fn every_byte_round_trips_through_huffman() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)).unwrap(), all);
        for b in 0..=255u8 {
            assert_eq!(huffman_decode(&huffman_encode(&[b])).unwrap(), [b]);
        }
    }

    #[test]
    fn bad_huffman_padding_and_eos_are_refused() {
        // "0" is 00000; padding of zeros is not a prefix of EOS.
        assert!(huffman_decode(&[0b0000_0000]).is_err());
        // A whole byte of padding (8 ones) is too long.
        assert!(huffman_decode(&[0b0000_0111, 0xff]).is_err());
        // EOS (30 ones) coded explicitly.
        assert!(huffman_decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(huffman_decode(&[0b0000_0111]).unwrap(), b"0");
        assert_eq!(huffman_decode(&[]).unwrap(), b"");
    }

    #[test]
    fn integers_of_rfc_7541_c1() {
        for (value, prefix, coded) in [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a")] {
            let mut out = Vec::new();
            encode_integer(&mut out, value, prefix, 0);
            assert_eq!(out, hex(coded));
            let mut input = Input { bytes: &out };
            assert_eq!(input.integer(prefix).unwrap(), value);
        }
        // Endless continuation bytes are refused, not overflowed.
        let mut input = Input {
            bytes: &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        };
        assert!(input.integer(5).is_err());
    }

    #[test]
    fn request_sequences_of_rfc_7541_c3_and_c4() {
        let expected = [
            (
                fields(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "www.example.com"),
                ]),
                57,
            ),
            (
                fields(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "www.example.com"),
                    ("cache-control", "no-cache"),
                ]),
                110,
            ),
            (
                fields(&[
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":path", "/index.html"),
                    (":authority", "www.example.com"),
                    ("custom-key", "custom-value"),
                ]),
                164,
            ),
        ];
        let plain = [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ];
        let huffman = [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ];
        for blocks in [plain, huffman] {
            let mut decoder = Decoder::new(TABLE_SIZE);
            for (block, (fields, size)) in blocks.iter().zip(&expected) {
                assert_eq!(&decoder.decode(&hex(block)).unwrap(), fields);
                assert_eq!(decoder.table_size(), *size);
            }
            // After C.3.3/C.4.3 the newest entry is custom-key (index 62).
            assert_eq!(
                decoder.lookup(62).unwrap(),
                fields(&[("custom-key", "custom-value")])[0]
            );
            assert_eq!(decoder.lookup(64).unwrap().1, b"www.example.com");
        }
    }

    #[test]
    fn response_sequence_of_rfc_7541_c6_evicts() {
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let url = "https://www.example.com";
        let mut decoder = Decoder::new(256);
        let first = decoder
            .decode(&hex(
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            ))
            .unwrap();
        assert_eq!(
            first,
            fields(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", url)
            ])
        );
        assert_eq!(decoder.table_size(), 222);
        let second = decoder.decode(&hex("4883 640e ffc1 c0bf")).unwrap();
        assert_eq!(
            second,
            fields(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", url)
            ])
        );
        // ":status: 302" was evicted to make room for ":status: 307".
        assert_eq!(decoder.table_size(), 222);
        assert_eq!(
            decoder.lookup(62).unwrap(),
            fields(&[(":status", "307")])[0]
        );
        let third = decoder
            .decode(&hex(
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ))
            .unwrap();
        assert_eq!(
            third,
            fields(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", url),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(decoder.table_size(), 215);
    }

    #[test]
    fn table_size_updates_are_bounded_and_come_first() {
        let mut decoder = Decoder::new(256);
        // Literal with indexing "custom-key: custom-value" (C.3.3's last
        // field), then a size update to 0 in the next block empties the table.
        decoder
            .decode(&hex(
                "400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ))
            .unwrap();
        assert_eq!(decoder.table_size(), 54);
        assert_eq!(decoder.decode(&[0x20]).unwrap(), []);
        assert_eq!(decoder.table_size(), 0);
        assert!(decoder.lookup(62).is_err());
        // Above what we allowed.
        let mut update = Vec::new();
        encode_integer(&mut update, 4096, 5, 0x20);
        assert!(decoder.decode(&update).is_err());
        // After a field.
        assert!(decoder.decode(&[0x82, 0x20]).is_err());
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        let mut decoder = Decoder::new(TABLE_SIZE);
        for block in [
            &[0x80][..],         // index 0
            &[0xbe],             // dynamic index 62, table empty
            &[0x40, 0x05, b'a'], // name shorter than its length
            &[0x0f],             // integer cut off
            &[0x00, 0x81, 0x00], // Huffman name that is all padding zeros
        ] {
            assert!(decoder.decode(block).is_err(), "{block:02x?}");
        }
        // A bomb of indexed references to one big entry stops at the limit.
        let mut block = Vec::new();
        encode_literal(&mut block, b"x", &[b'y'; 3000]);
        block[0] = 0x40; // with indexing
        block.extend(std::iter::repeat_n(0xbe, 100));
        let error = decoder.decode(&block).unwrap_err();
        assert!(error.0.contains("header list larger"), "{error}");
    }

    #[test]
    fn encoded_requests_decode_back() {
        let mut block = Vec::new();
        encode_indexed(&mut block, index::METHOD_POST);
        encode_indexed(&mut block, index::SCHEME_HTTPS);
        encode_literal_indexed_name(&mut block, index::PATH, b"/grpc.health.v1.Health/Check");
        encode_literal_indexed_name(&mut block, index::AUTHORITY, b"localhost:50051");
        encode_literal_indexed_name(&mut block, index::CONTENT_TYPE, b"application/grpc");
        encode_literal(&mut block, b"te", b"trailers");
        let decoded = Decoder::new(TABLE_SIZE).decode(&block).unwrap();
        assert_eq!(
            decoded,
            fields(&[
                (":method", "POST"),
                (":scheme", "https"),
                (":path", "/grpc.health.v1.Health/Check"),
                (":authority", "localhost:50051"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ])
        );
        // Index 31 does not fit a 4-bit prefix: 0f 10.
        let mut content_type = Vec::new();
        encode_literal_indexed_name(&mut content_type, index::CONTENT_TYPE, b"");
        assert_eq!(content_type, [0x0f, 0x10, 0x00]);
    }
}
