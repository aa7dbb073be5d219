//! The WebSocket side of the http probe: the upgrade handshake's key and
//! its check (RFC 6455 §4), then an optional message exchanged as frames.

use std::time::Instant;

use lookout_plugin_sdk::encoding::base64;
use lookout_plugin_sdk::tls::Stream;
use lookout_plugin_sdk::{Error, FailureReason};
use regex::Regex;
use sha1::{Digest, Sha1};

/// RFC 6455's constant for `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest message read back.
const MAX_MESSAGE: usize = 1 << 20;

/// What to do once upgraded: send a text message, then wait for a message
/// matching `expect`.
pub struct Dialogue<'a> {
    /// The handshake's `Sec-WebSocket-Key`.
    pub key: String,
    pub send: Option<&'a str>,
    pub expect: Option<&'a Regex>,
}

/// A fresh handshake key: 16 random bytes, base64.
pub fn new_key() -> String {
    base64(&wasip2::random::random::get_random_bytes(16))
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64(&sha.finalize())
}

fn protocol(message: impl Into<String>) -> Error {
    Error::new(FailureReason::Protocol, message)
}

/// After a `101`: checks the server's accept value, then sends and
/// expects as configured, and closes. Returns the matching message.
/// `pending` holds bytes that arrived after the response head.
pub fn converse(
    stream: &mut Stream,
    mut pending: Vec<u8>,
    accept: Option<&str>,
    dialogue: &Dialogue<'_>,
    deadline: Instant,
) -> Result<Option<String>, Error> {
    let expected = accept_for(&dialogue.key);
    if accept != Some(expected.as_str()) {
        return Err(protocol(format!(
            "Sec-WebSocket-Accept is {accept:?}, not {expected:?}: not a WebSocket server"
        )));
    }
    if let Some(text) = dialogue.send {
        stream.write_all(&frame(0x1, text.as_bytes()), deadline)?;
    }
    let mut matched = None;
    if let Some(re) = dialogue.expect {
        loop {
            let message = next_message(stream, &mut pending, deadline).map_err(|e| {
                if e.reason() == FailureReason::Timeout {
                    Error::new(
                        FailureReason::Body,
                        format!("no message matched {:?} in time", re.as_str()),
                    )
                } else {
                    e
                }
            })?;
            match message {
                Some(text) if re.is_match(&text) => {
                    matched = Some(text);
                    break;
                }
                Some(_) => continue,
                None => {
                    return Err(Error::new(
                        FailureReason::Body,
                        format!(
                            "the server closed before a message matched {:?}",
                            re.as_str()
                        ),
                    ));
                }
            }
        }
    }
    // A normal closure (1000); the answer does not matter.
    let _ = stream.write_all(&frame(0x8, &1000u16.to_be_bytes()), deadline);
    Ok(matched)
}

/// A masked client frame (RFC 6455 §5.2), FIN set.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = wasip2::random::random::get_random_bytes(4);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The next data message (fragments joined), answering pings on the way;
/// `None` when the server closes.
fn next_message(
    stream: &mut Stream,
    pending: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Option<String>, Error> {
    let mut message = Vec::new();
    loop {
        let Some((fin, opcode, payload)) = read_frame(stream, pending, deadline)? else {
            return Ok(None);
        };
        match opcode {
            0x8 => return Ok(None),
            0x9 => stream.write_all(&frame(0xA, &payload), deadline)?,
            0xA => {}
            0x0..=0x2 => {
                message.extend_from_slice(&payload);
                if message.len() > MAX_MESSAGE {
                    return Err(protocol("a message larger than 1 MiB"));
                }
                if fin {
                    return Ok(Some(String::from_utf8_lossy(&message).into_owned()));
                }
            }
            other => return Err(protocol(format!("unknown frame opcode {other:#x}"))),
        }
    }
}

/// One frame: FIN, opcode, unmasked payload; `None` at the end of the stream.
fn read_frame(
    stream: &mut Stream,
    pending: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Option<(bool, u8, Vec<u8>)>, Error> {
    let mut fill = |pending: &mut Vec<u8>, needed: usize| -> Result<bool, Error> {
        while pending.len() < needed {
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk, deadline)?;
            if n == 0 {
                return Ok(false);
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        Ok(true)
    };
    if !fill(pending, 2)? {
        return Ok(None);
    }
    let (fin, opcode) = (pending[0] & 0x80 != 0, pending[0] & 0x0f);
    let masked = pending[1] & 0x80 != 0;
    let (len, mut at) = match pending[1] & 0x7f {
        126 => {
            if !fill(pending, 4)? {
                return Ok(None);
            }
            (u16::from_be_bytes([pending[2], pending[3]]) as usize, 4)
        }
        127 => {
            if !fill(pending, 10)? {
                return Ok(None);
            }
            let len = u64::from_be_bytes(pending[2..10].try_into().expect("8 bytes"));
            (usize::try_from(len).unwrap_or(usize::MAX), 10)
        }
        n => (n as usize, 2),
    };
    if len > MAX_MESSAGE {
        return Err(protocol("a frame larger than 1 MiB"));
    }
    let mask_at = at;
    if masked {
        at += 4;
    }
    if !fill(pending, at + len)? {
        return Ok(None);
    }
    let mut payload: Vec<u8> = pending[at..at + len].to_vec();
    if masked {
        let mask: Vec<u8> = pending[mask_at..mask_at + 4].to_vec();
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= mask[i % 4]);
    }
    pending.drain(..at + len);
    Ok(Some((fin, opcode, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
