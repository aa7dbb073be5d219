//! RESP2, the Redis serialization protocol: commands out, replies in.
//!
//! Pure functions over byte buffers, so they are tested natively; the
//! connection in [`crate::client`] feeds them what the socket delivers.
//! <https://redis.io/docs/latest/develop/reference/protocol-spec/>

use std::fmt;

/// Deepest nesting of arrays accepted in a reply. The commands this exporter
/// sends answer flat arrays at most; a deeper reply is not Redis talking.
const MAX_DEPTH: usize = 8;

/// One reply of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR unknown command`: the server refused the command.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`; `None` is the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n…`; `None` is the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, if it is a simple or bulk string.
    pub fn into_text(self) -> Option<String> {
        match self {
            Reply::Simple(text) => Some(text),
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            _ => None,
        }
    }
}

/// The bytes received are not RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Redis reply: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn invalid(what: impl Into<String>) -> ProtocolError {
    ProtocolError(what.into())
}

/// A command as the server reads it: an array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses the reply at the start of `buf`.
///
/// `Ok(None)`: the reply is not complete yet, read more. `Ok(Some((reply,
/// used)))`: `used` bytes made up the reply. A bulk string longer than
/// `max_bulk` is refused without waiting for it.
pub fn parse_reply(buf: &[u8], max_bulk: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut parser = Parser {
        buf,
        pos: 0,
        max_bulk,
    };
    Ok(parser.reply(0)?.map(|reply| (reply, parser.pos)))
}

struct Parser<'b> {
    buf: &'b [u8],
    pos: usize,
    max_bulk: usize,
}

impl Parser<'_> {
    fn reply(&mut self, depth: usize) -> Result<Option<Reply>, ProtocolError> {
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        let (&kind, rest) = line.split_first().ok_or_else(|| invalid("an empty line"))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'+' => Ok(Some(Reply::Simple(text()))),
            b'-' => Ok(Some(Reply::Error(text()))),
            b':' => Ok(Some(Reply::Integer(number(rest)?))),
            b'$' => {
                let len = number(rest)?;
                if len < 0 {
                    return Ok(Some(Reply::Bulk(None)));
                }
                let len = usize::try_from(len).map_err(|_| invalid("bulk length"))?;
                if len > self.max_bulk {
                    return Err(invalid(format!(
                        "a bulk string of {len} bytes (more than {} accepted)",
                        self.max_bulk
                    )));
                }
                let end = self.pos + len;
                if self.buf.len() < end + 2 {
                    return Ok(None);
                }
                if &self.buf[end..end + 2] != b"\r\n" {
                    return Err(invalid("a bulk string without its CRLF"));
                }
                let bytes = self.buf[self.pos..end].to_vec();
                self.pos = end + 2;
                Ok(Some(Reply::Bulk(Some(bytes))))
            }
            b'*' => {
                let len = number(rest)?;
                if len < 0 {
                    return Ok(Some(Reply::Array(None)));
                }
                if depth >= MAX_DEPTH {
                    return Err(invalid(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                let len = usize::try_from(len).map_err(|_| invalid("array length"))?;
                // The length is the peer's claim: grow as elements arrive
                // instead of reserving it up front.
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    match self.reply(depth + 1)? {
                        Some(item) => items.push(item),
                        None => return Ok(None),
                    }
                }
                Ok(Some(Reply::Array(Some(items))))
            }
            other => Err(invalid(format!(
                "unexpected type byte {:?}",
                char::from(other)
            ))),
        }
    }

    /// The next CRLF-terminated line without its CRLF; `None` if the CRLF
    /// has not arrived yet.
    fn line(&mut self) -> Result<Option<&[u8]>, ProtocolError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.len() > self.max_bulk {
                return Err(invalid("a line without CRLF"));
            }
            return Ok(None);
        };
        self.pos += end + 2;
        Ok(Some(&rest[..end]))
    }
}

fn number(digits: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            invalid(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(digits)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn parse(bytes: &[u8]) -> Reply {
        let (reply, used) = parse_reply(bytes, MAX).unwrap().expect("complete");
        assert_eq!(used, bytes.len(), "the whole input is one reply");
        reply
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode_command(&[b"AUTH", b"default", b"p w"]),
            b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$3\r\np w\r\n"
        );
        assert_eq!(encode_command(&[b""]), b"*1\r\n$0\r\n\r\n");
    }

    #[test]
    fn every_reply_type() {
        assert_eq!(parse(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(
            parse(b"-WRONGPASS invalid username-password pair\r\n"),
            Reply::Error("WRONGPASS invalid username-password pair".into())
        );
        assert_eq!(parse(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(
            parse(b"$8\r\na\r\nb:c d\r\n"),
            Reply::Bulk(Some(b"a\r\nb:c d".to_vec()))
        );
        assert_eq!(parse(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
        assert_eq!(parse(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(parse(b"*-1\r\n"), Reply::Array(None));
        assert_eq!(
            parse(b"*3\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n*1\r\n:1\r\n"),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"maxmemory".to_vec())),
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Integer(1)])),
            ]))
        );
    }

    #[test]
    fn partial_replies_ask_for_more_at_every_cut() {
        let whole = b"*2\r\n$5\r\nhello\r\n:7\r\n+next\r\n";
        let first_len = whole.len() - b"+next\r\n".len();
        for cut in 0..first_len {
            assert_eq!(parse_reply(&whole[..cut], MAX), Ok(None), "cut at {cut}");
        }
        let (reply, used) = parse_reply(whole, MAX).unwrap().unwrap();
        assert_eq!(used, first_len, "stops after the first reply");
        assert!(matches!(reply, Reply::Array(Some(items)) if items.len() == 2));
    }

    #[test]
    fn garbage_and_oversized_replies_are_errors() {
        assert!(parse_reply(b"HTTP/1.1 400 Bad Request\r\n", MAX).is_err());
        assert!(parse_reply(b":twelve\r\n", MAX).is_err());
        assert!(parse_reply(b"$3\r\nabcd\r\n", MAX).is_err(), "missing CRLF");
        assert!(parse_reply(b"$2000\r\n", MAX).is_err(), "bulk over the cap");
        assert!(
            parse_reply(&[b'x'; MAX + 1], MAX).is_err(),
            "a line that never ends"
        );
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert!(parse_reply(deep.as_bytes(), MAX).is_err());
        // A huge claimed array length does not allocate it.
        assert_eq!(parse_reply(b"*2000000000\r\n:1\r\n", MAX), Ok(None));
    }

    #[test]
    fn text_of_replies() {
        assert_eq!(
            Reply::Simple("OK".into()).into_text().as_deref(),
            Some("OK")
        );
        assert_eq!(
            Reply::Bulk(Some(b"# Server".to_vec()))
                .into_text()
                .as_deref(),
            Some("# Server")
        );
        assert_eq!(Reply::Integer(1).into_text(), None);
    }
}
