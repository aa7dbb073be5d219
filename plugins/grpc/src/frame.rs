//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, the payloads a
//! client of one call sends, and the parsing of what a server sends back.

/// What a client sends first on a connection (3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header.
pub const HEADER_LEN: usize = 9;

/// HTTP/2's default and smallest SETTINGS_MAX_FRAME_SIZE: we never raise
/// ours, so no frame from the server may be larger, and every server
/// accepts frames of this size from us.
pub const MAX_FRAME_SIZE: usize = 16_384;

/// Frame types (6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (6); END_STREAM and ACK share a bit on different types.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters (6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub length: usize,
    pub kind: u8,
    pub flags: u8,
    /// The stream identifier, reserved bit cleared.
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        FrameHeader {
            length: usize::from(bytes[0]) << 16
                | usize::from(bytes[1]) << 8
                | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A frame's bytes. `payload` must fit [`MAX_FRAME_SIZE`].
pub fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    debug_assert!(payload.len() <= MAX_FRAME_SIZE);
    let len = payload.len();
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with `settings` (id, value).
pub fn settings(settings: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = settings
        .iter()
        .flat_map(|(id, value)| {
            let mut pair = id.to_be_bytes().to_vec();
            pair.extend_from_slice(&value.to_be_bytes());
            pair
        })
        .collect();
    encode(kind::SETTINGS, 0, 0, &payload)
}

/// `bytes` in pieces that fit a frame; one empty piece for no bytes, as a
/// frame still has to be sent.
fn pieces(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(MAX_FRAME_SIZE).collect()
    }
}

/// A header block as HEADERS plus as many CONTINUATIONs as it needs,
/// END_HEADERS on the last (6.2, 6.10).
pub fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let pieces = pieces(block);
    let last = pieces.len() - 1;
    let mut out = Vec::new();
    for (i, piece) in pieces.into_iter().enumerate() {
        let (kind, mut flags) = match i {
            0 if end_stream => (kind::HEADERS, flag::END_STREAM),
            0 => (kind::HEADERS, 0),
            _ => (kind::CONTINUATION, 0),
        };
        if i == last {
            flags |= flag::END_HEADERS;
        }
        out.extend(encode(kind, flags, stream, piece));
    }
    out
}

/// `data` as DATA frames of at most [`MAX_FRAME_SIZE`], END_STREAM on the
/// last when `end_stream`.
pub fn data(stream: u32, data: &[u8], end_stream: bool) -> Vec<u8> {
    let pieces = pieces(data);
    let last = pieces.len() - 1;
    let mut out = Vec::new();
    for (i, piece) in pieces.into_iter().enumerate() {
        let flags = if end_stream && i == last {
            flag::END_STREAM
        } else {
            0
        };
        out.extend(encode(kind::DATA, flags, stream, piece));
    }
    out
}

/// A WINDOW_UPDATE granting `increment` more bytes on `stream` (0: the
/// connection).
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    encode(
        kind::WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
    )
}

/// A GOAWAY saying no stream above `last_stream` was processed.
pub fn goaway(last_stream: u32, error_code: u32) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&error_code.to_be_bytes());
    encode(kind::GOAWAY, 0, 0, &payload)
}

/// A malformed frame; the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

/// The payload of a DATA or HEADERS frame without its padding (6.1, 6.2)
/// and, for HEADERS with PRIORITY, without the priority fields.
pub fn content<'p>(header: &FrameHeader, payload: &'p [u8]) -> Result<&'p [u8], FrameError> {
    let mut body = payload;
    let mut padding = 0;
    if header.has(flag::PADDED) {
        let (&pad, rest) = body
            .split_first()
            .ok_or_else(|| FrameError("padded frame without a pad length".into()))?;
        padding = usize::from(pad);
        body = rest;
    }
    if header.kind == kind::HEADERS && header.has(flag::PRIORITY) {
        body = body
            .get(5..)
            .ok_or_else(|| FrameError("HEADERS too short for its priority fields".into()))?;
    }
    if padding > body.len() {
        return Err(FrameError("padding longer than the frame".into()));
    }
    Ok(&body[..body.len() - padding])
}

/// The (id, value) pairs of a SETTINGS payload.
pub fn parse_settings(payload: &[u8]) -> Result<Vec<(u16, u32)>, FrameError> {
    if !payload.len().is_multiple_of(6) {
        return Err(FrameError(format!(
            "SETTINGS of {} bytes, not a multiple of 6",
            payload.len()
        )));
    }
    Ok(payload
        .chunks(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect())
}

/// The first 4 bytes of a payload as a big-endian number (RST_STREAM's
/// error code, WINDOW_UPDATE's increment, GOAWAY's last stream).
pub fn u32_at(payload: &[u8], offset: usize) -> Option<u32> {
    let bytes = payload.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The name of an HTTP/2 error code (7).
pub fn error_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("error code {other:#x}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_encode_with_a_nine_byte_header() {
        let frame = encode(kind::PING, flag::ACK, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&frame[..9], &[0, 0, 8, 6, 1, 0, 0, 0, 0]);
        let header = FrameHeader::parse(frame[..9].try_into().unwrap());
        assert_eq!(
            header,
            FrameHeader {
                length: 8,
                kind: kind::PING,
                flags: flag::ACK,
                stream: 0
            }
        );
        // The reserved bit is not part of the stream id.
        let header = FrameHeader::parse(&[0x01, 0x00, 0x00, 0, 0x05, 0x80, 0, 0, 3]);
        assert_eq!(header.length, 65_536);
        assert_eq!(header.stream, 3);
        assert!(header.has(flag::END_STREAM) && header.has(flag::END_HEADERS));
    }

    #[test]
    fn settings_round_trip() {
        let frame = settings(&[
            (setting::ENABLE_PUSH, 0),
            (setting::MAX_HEADER_LIST_SIZE, 65_536),
        ]);
        assert_eq!(&frame[..9], &[0, 0, 12, 4, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse_settings(&frame[9..]).unwrap(),
            [
                (setting::ENABLE_PUSH, 0),
                (setting::MAX_HEADER_LIST_SIZE, 65_536)
            ]
        );
        assert!(parse_settings(&[0, 1, 0]).is_err());
    }

    #[test]
    fn large_header_blocks_continue() {
        let block = vec![7u8; MAX_FRAME_SIZE + 10];
        let frames = headers(1, &block, false);
        let first = FrameHeader::parse(frames[..9].try_into().unwrap());
        assert_eq!((first.kind, first.length), (kind::HEADERS, MAX_FRAME_SIZE));
        assert!(!first.has(flag::END_HEADERS) && !first.has(flag::END_STREAM));
        let rest = &frames[9 + MAX_FRAME_SIZE..];
        let second = FrameHeader::parse(rest[..9].try_into().unwrap());
        assert_eq!((second.kind, second.length), (kind::CONTINUATION, 10));
        assert!(second.has(flag::END_HEADERS));
        assert_eq!(second.stream, 1);
        let small = headers(3, &[0x82], true);
        assert_eq!(&small[..9], &[0, 0, 1, 1, 5, 0, 0, 0, 3]);
    }

    #[test]
    fn data_frames_split_and_end_the_stream() {
        let frames = data(1, &[0; MAX_FRAME_SIZE + 1], true);
        let first = FrameHeader::parse(frames[..9].try_into().unwrap());
        assert!(!first.has(flag::END_STREAM));
        let second = FrameHeader::parse(frames[9 + MAX_FRAME_SIZE..][..9].try_into().unwrap());
        assert_eq!(second.length, 1);
        assert!(second.has(flag::END_STREAM));
        assert_eq!(data(1, &[], true), [0, 0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn padding_and_priority_are_stripped() {
        let padded = FrameHeader {
            length: 6,
            kind: kind::DATA,
            flags: flag::PADDED,
            stream: 1,
        };
        assert_eq!(
            content(&padded, &[2, b'h', b'i', b'!', 0, 0]).unwrap(),
            b"hi!"
        );
        assert!(content(&padded, &[9, 1, 2]).is_err());
        assert!(content(&padded, &[]).is_err());
        let headers = FrameHeader {
            length: 8,
            kind: kind::HEADERS,
            flags: flag::PADDED | flag::PRIORITY,
            stream: 1,
        };
        assert_eq!(
            content(&headers, &[1, 0, 0, 0, 3, 16, 0x88, 0]).unwrap(),
            [0x88]
        );
        assert!(content(&headers, &[0, 1, 2]).is_err());
    }

    #[test]
    fn control_frames() {
        assert_eq!(
            window_update(1, 100),
            [0, 0, 4, 8, 0, 0, 0, 0, 1, 0, 0, 0, 100]
        );
        let away = goaway(0, 0);
        assert_eq!(&away[..9], &[0, 0, 8, 7, 0, 0, 0, 0, 0]);
        assert_eq!(u32_at(&[0, 0, 0, 7, 9], 0), Some(7));
        assert_eq!(u32_at(&[0, 0, 7], 0), None);
        assert_eq!(error_name(7), "REFUSED_STREAM");
        assert_eq!(error_name(0x99), "error code 0x99");
    }
}
