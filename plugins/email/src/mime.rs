//! The message's text: addresses, header encoding, quoted-printable bodies,
//! dates.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The addresses of an address list (`a@x, "B" <b@y>`), as SMTP wants them
/// (`a@x`, `b@y`).
pub fn parse_addresses(list: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let (mut quoted, mut angled) = (false, false);
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '"' if !angled => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' if !quoted && !angled => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    let mut addresses = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if part.chars().any(char::is_control) {
            return Err(format!("bad address {part:?}: control characters"));
        }
        let address = match (part.rfind('<'), part.rfind('>')) {
            (Some(open), Some(close)) if open < close => &part[open + 1..close],
            (None, None) => part,
            _ => return Err(format!("bad address {part:?}")),
        };
        let address = address.trim();
        let valid = address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
        if !valid {
            return Err(format!("bad address {part:?}"));
        }
        addresses.push(address.to_owned());
    }
    if addresses.is_empty() {
        return Err(format!("no address in {list:?}"));
    }
    Ok(addresses)
}

/// A header name in canonical form (`message-id` → `Message-Id`), as Go's
/// `textproto.CanonicalMIMEHeaderKey` writes it.
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Whether `name` may be a header name (printable ASCII, no colon).
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// A header value as RFC 2047 `Q` encoded words when it holds anything but
/// printable ASCII (Go's `mime.QEncoding.Encode("utf-8", …)`): non-ASCII
/// text, and line breaks that would otherwise end the header.
pub fn encode_header(value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if plain {
        return value.to_owned();
    }
    // Encoded words are at most 75 characters: `=?utf-8?q?` + text + `?=`.
    const MAX_WORD: usize = 75 - "=?utf-8?q?".len() - "?=".len();
    let mut words = Vec::new();
    let mut word = String::new();
    for c in value.chars() {
        let mut encoded = String::new();
        match c {
            ' ' => encoded.push('_'),
            c if c.is_ascii_alphanumeric() || "!*+-/".contains(c) => encoded.push(c),
            c => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(encoded, "={byte:02X}");
                }
            }
        }
        if word.len() + encoded.len() > MAX_WORD {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&encoded);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("=?utf-8?q?{w}?="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` in quoted-printable (RFC 2045), CRLF line ends, lines of at most
/// 76 characters.
pub fn quoted_printable(text: &str) -> String {
    const MAX_LINE: usize = 76;
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let normalised = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut width = 0;
        for (j, &byte) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal = match byte {
                b'=' => false,
                // Whitespace at the end of a line must be encoded.
                b' ' | b'\t' => !last,
                33..=126 => true,
                _ => false,
            };
            let piece = if literal {
                (byte as char).to_string()
            } else {
                format!("={byte:02X}")
            };
            // Keep room for the soft break's `=`.
            if width + piece.len() > MAX_LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            out.push_str(&piece);
            width += piece.len();
        }
        if i + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

/// `data` ready for SMTP's DATA: CRLF line ends, lines starting with `.`
/// doubled, and the terminating `.` line.
pub fn dot_stuff(data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let normalised = data.replace("\r\n", "\n");
    let body = normalised.strip_suffix('\n').unwrap_or(&normalised);
    for line in body.split('\n') {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Now as RFC 1123 with a numeric zone (Go's `time.RFC1123Z`), in UTC:
/// `Mon, 02 Jan 2006 15:04:05 +0000`.
pub fn rfc1123z_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc1123z(secs)
}

fn rfc1123z(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let rest = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Year, month (1–12), day (1–31) of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists() {
        assert_eq!(
            parse_addresses(r#"a@x.org, "Doe, Jane" <jane@y.org>,B <b@z>"#).unwrap(),
            ["a@x.org", "jane@y.org", "b@z"]
        );
        assert!(parse_addresses("").is_err());
        assert!(parse_addresses("not an address").is_err());
        assert!(parse_addresses("a@x\r\nRCPT TO:<evil@x>").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(canonical_header("message-ID"), "Message-Id");
        assert_eq!(canonical_header("x-priority"), "X-Priority");
        assert!(!valid_header_name("Bad Name"));
        assert_eq!(encode_header("[FIRING:1] Down "), "[FIRING:1] Down ");
        assert_eq!(encode_header("Café"), "=?utf-8?q?Caf=C3=A9?=");
        assert_eq!(encode_header("a\r\nBcc: x"), "=?utf-8?q?a=0D=0ABcc=3A_x?=");
        let long = encode_header(&"é".repeat(40));
        assert!(long.split(' ').all(|w| w.len() <= 75), "{long}");
    }

    #[test]
    fn quoted_printable_bodies() {
        assert_eq!(quoted_printable("a = b\nc \n"), "a =3D b\r\nc=20\r\n");
        assert_eq!(quoted_printable("é"), "=C3=A9");
        let long = quoted_printable(&"x".repeat(200));
        assert!(long.split("\r\n").all(|l| l.len() <= 76), "{long}");
        assert_eq!(long.replace("=\r\n", ""), "x".repeat(200));
    }

    #[test]
    fn dots_are_stuffed() {
        assert_eq!(dot_stuff(".a\nb\n"), b"..a\r\nb\r\n.\r\n");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc1123z(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc1123z(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 +0000");
    }
}
