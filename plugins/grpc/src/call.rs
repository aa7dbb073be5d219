//! One unary gRPC call over HTTP/2: the client side of RFC 9113 for a
//! single stream, over any byte stream with deadlines.
//!
//! The request goes out in one write — preface, SETTINGS, HEADERS, DATA —
//! as HTTP/2 lets a client send before it has seen the server's settings.
//! Then frames are read until the stream ends: SETTINGS and PING are
//! acknowledged, WINDOW_UPDATE, PRIORITY and unknown frames ignored (the
//! request is far below the initial window), received DATA is given back
//! to the server's window at once, GOAWAY and RST_STREAM end the call as
//! gRPC would, and every header block goes through one HPACK decoder so its
//! dynamic table stays in step with the server's.

use std::time::{Duration, Instant};

use lookout_plugin_sdk::{FailureReason, net, tls};

use crate::frame::{self, FrameHeader, flag, kind, setting};
use crate::health::code;
use crate::hpack;

/// The stream of the call: a client's first stream is 1.
const STREAM: u32 = 1;

/// Largest response body accepted. A health response is a few bytes;
/// a server sending more is broken (gRPC's own limit gives
/// RESOURCE_EXHAUSTED, as here).
pub const MAX_BODY: usize = 64 * 1024;

/// Largest header block accepted before decoding (HEADERS plus
/// CONTINUATIONs).
const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// What a call reads and writes through: a TCP or TLS connection, or a
/// script in tests.
pub trait Transport {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), net::Error>;
    /// Bytes read into `buf`; 0 at the end of the stream.
    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, net::Error>;
}

impl Transport for tls::Stream {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), net::Error> {
        self.write_all(bytes, deadline)
    }

    fn receive(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, net::Error> {
        self.read(buf, deadline)
    }
}

/// The request of a unary call.
pub struct Request<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// `host:port` as the target named it.
    pub authority: &'a str,
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// The serialised request message, not yet length-prefixed.
    pub message: &'a [u8],
    /// Sent as `grpc-timeout`, so the server gives up when we do.
    pub timeout: Duration,
}

/// What came back on the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The first header block (`:status`, `content-type` …).
    pub headers: Vec<(String, String)>,
    /// The block that ended the stream: the trailers, or the headers again
    /// for a trailers-only response. `None` when DATA ended the stream.
    pub trailers: Option<Vec<(String, String)>>,
    /// The DATA payloads, concatenated.
    pub body: Vec<u8>,
}

/// Why a call produced no response, with the gRPC code grpc-go would
/// report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub reason: FailureReason,
    pub code: u32,
    pub message: String,
}

impl CallError {
    /// The connection is unusable: gRPC reports UNAVAILABLE.
    fn unavailable(reason: FailureReason, message: impl Into<String>) -> Self {
        CallError {
            reason,
            code: code::UNAVAILABLE,
            message: message.into(),
        }
    }

    /// The server broke HTTP/2.
    fn protocol(message: impl Into<String>) -> Self {
        Self::unavailable(FailureReason::Protocol, message)
    }
}

impl From<net::Error> for CallError {
    fn from(error: net::Error) -> Self {
        let code = if error.reason() == FailureReason::Timeout {
            code::DEADLINE_EXCEEDED
        } else {
            code::UNAVAILABLE
        };
        CallError {
            reason: error.reason(),
            code,
            message: error.message().to_owned(),
        }
    }
}

impl From<frame::FrameError> for CallError {
    fn from(error: frame::FrameError) -> Self {
        CallError::protocol(error.0)
    }
}

/// Makes the call and reads its response, all by `deadline`.
pub fn unary(
    transport: &mut impl Transport,
    request: &Request<'_>,
    deadline: Instant,
) -> Result<Response, CallError> {
    transport.send(&request_bytes(request), deadline)?;
    let response = read_response(transport, deadline)?;
    // Done with the connection: say so, as clients do. The call has its
    // answer whether or not this arrives.
    let _ = transport.send(&frame::goaway(0, 0), deadline);
    Ok(response)
}

/// Preface, SETTINGS, the request's HEADERS and its DATA.
fn request_bytes(request: &Request<'_>) -> Vec<u8> {
    let mut out = frame::PREFACE.to_vec();
    out.extend(frame::settings(&[
        (setting::HEADER_TABLE_SIZE, hpack::TABLE_SIZE as u32),
        (setting::ENABLE_PUSH, 0),
        (
            setting::MAX_HEADER_LIST_SIZE,
            hpack::MAX_HEADER_LIST_BYTES as u32,
        ),
    ]));
    let mut block = Vec::new();
    hpack::encode_indexed(&mut block, hpack::index::METHOD_POST);
    hpack::encode_indexed(
        &mut block,
        if request.scheme == "https" {
            hpack::index::SCHEME_HTTPS
        } else {
            hpack::index::SCHEME_HTTP
        },
    );
    hpack::encode_literal_indexed_name(&mut block, hpack::index::PATH, request.path.as_bytes());
    hpack::encode_literal_indexed_name(
        &mut block,
        hpack::index::AUTHORITY,
        request.authority.as_bytes(),
    );
    hpack::encode_literal_indexed_name(&mut block, hpack::index::CONTENT_TYPE, b"application/grpc");
    hpack::encode_literal(&mut block, b"te", b"trailers");
    hpack::encode_literal(
        &mut block,
        b"grpc-timeout",
        grpc_timeout(request.timeout).as_bytes(),
    );
    hpack::encode_literal_indexed_name(
        &mut block,
        hpack::index::USER_AGENT,
        concat!("lookout-grpc-probe/", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    out.extend(frame::headers(STREAM, &block, false));
    out.extend(frame::data(
        STREAM,
        &crate::health::frame_message(request.message),
        true,
    ));
    out
}

/// `timeout` as a `grpc-timeout` value: at most 8 digits and a unit.
fn grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_millis();
    if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    }
}

/// Reads frames until the call's stream ends.
fn read_response(transport: &mut impl Transport, deadline: Instant) -> Result<Response, CallError> {
    let mut frames = FrameReader::default();
    let mut decoder = hpack::Decoder::new(hpack::TABLE_SIZE);
    let mut headers: Option<Vec<(String, String)>> = None;
    let mut body = Vec::new();
    // A GOAWAY that still lets our stream finish: (error code, debug text).
    let mut going_away: Option<(u32, String)> = None;
    // A header block waiting for its CONTINUATIONs, and whether it ends
    // the stream.
    let mut partial: Option<(Vec<u8>, bool)> = None;
    loop {
        let Some((header, payload)) = frames.next(transport, deadline)? else {
            let message = match &going_away {
                Some((code, debug)) => format!(
                    "server closed the connection after GOAWAY ({}){}",
                    frame::error_name(*code),
                    debug_suffix(debug)
                ),
                None => "connection closed by the server before the call finished".to_owned(),
            };
            return Err(CallError::unavailable(FailureReason::Connect, message));
        };
        if let Some((block, end_stream)) = &mut partial {
            if header.kind != kind::CONTINUATION || header.stream != STREAM {
                return Err(CallError::protocol(
                    "a header block was interrupted before its END_HEADERS",
                ));
            }
            block.extend_from_slice(&payload);
            if block.len() > MAX_HEADER_BLOCK {
                return Err(CallError::protocol(format!(
                    "header block larger than {MAX_HEADER_BLOCK} bytes"
                )));
            }
            if header.has(flag::END_HEADERS) {
                let (block, end_stream) = (std::mem::take(block), *end_stream);
                partial = None;
                if let Some(done) =
                    header_block(&mut decoder, &block, end_stream, &mut headers, &body)?
                {
                    return Ok(done);
                }
            }
            continue;
        }
        match header.kind {
            kind::SETTINGS => {
                if header.stream != 0 {
                    return Err(CallError::protocol("SETTINGS on a stream"));
                }
                if header.has(flag::ACK) {
                    if !payload.is_empty() {
                        return Err(CallError::protocol("SETTINGS ACK with a payload"));
                    }
                    continue;
                }
                check_settings(&frame::parse_settings(&payload)?)?;
                transport.send(&frame::encode(kind::SETTINGS, flag::ACK, 0, &[]), deadline)?;
            }
            kind::PING => {
                if header.stream != 0 || payload.len() != 8 {
                    return Err(CallError::protocol("malformed PING"));
                }
                if !header.has(flag::ACK) {
                    transport.send(&frame::encode(kind::PING, flag::ACK, 0, &payload), deadline)?;
                }
            }
            // Our request is already out: the server's windows do not
            // matter any more.
            kind::WINDOW_UPDATE if payload.len() == 4 => {}
            kind::WINDOW_UPDATE => return Err(CallError::protocol("malformed WINDOW_UPDATE")),
            kind::GOAWAY => {
                let (Some(last_stream), Some(error)) =
                    (frame::u32_at(&payload, 0), frame::u32_at(&payload, 4))
                else {
                    return Err(CallError::protocol("malformed GOAWAY"));
                };
                let debug = String::from_utf8_lossy(&payload[8..]).into_owned();
                if last_stream & 0x7fff_ffff < STREAM {
                    return Err(CallError::unavailable(
                        FailureReason::Connect,
                        format!(
                            "server sent GOAWAY ({}) without handling the call{}",
                            frame::error_name(error),
                            debug_suffix(&debug)
                        ),
                    ));
                }
                going_away = Some((error, debug));
            }
            kind::RST_STREAM => {
                let Some(error) = frame::u32_at(&payload, 0).filter(|_| payload.len() == 4) else {
                    return Err(CallError::protocol("malformed RST_STREAM"));
                };
                if header.stream == STREAM {
                    return Err(reset(error));
                }
            }
            kind::HEADERS => {
                if header.stream != STREAM {
                    return Err(CallError::protocol(format!(
                        "HEADERS on stream {}, which the client never opened",
                        header.stream
                    )));
                }
                let block = frame::content(&header, &payload)?;
                let end_stream = header.has(flag::END_STREAM);
                if header.has(flag::END_HEADERS) {
                    if let Some(done) =
                        header_block(&mut decoder, block, end_stream, &mut headers, &body)?
                    {
                        return Ok(done);
                    }
                } else {
                    partial = Some((block.to_vec(), end_stream));
                }
            }
            kind::DATA => {
                if header.stream != STREAM {
                    return Err(CallError::protocol(format!(
                        "DATA on stream {}",
                        header.stream
                    )));
                }
                let Some(response_headers) = &headers else {
                    return Err(CallError::protocol("DATA before the response headers"));
                };
                body.extend_from_slice(frame::content(&header, &payload)?);
                if body.len() > MAX_BODY {
                    return Err(CallError {
                        reason: FailureReason::Protocol,
                        code: code::RESOURCE_EXHAUSTED,
                        message: format!("response larger than {MAX_BODY} bytes"),
                    });
                }
                if header.has(flag::END_STREAM) {
                    return Ok(Response {
                        headers: response_headers.clone(),
                        trailers: None,
                        body,
                    });
                }
                if header.length > 0 {
                    // Give the bytes back to the connection's and the
                    // stream's window, so the server never stalls on us.
                    let increment = header.length as u32;
                    let mut updates = frame::window_update(0, increment);
                    updates.extend(frame::window_update(STREAM, increment));
                    transport.send(&updates, deadline)?;
                }
            }
            kind::PUSH_PROMISE => {
                return Err(CallError::protocol("PUSH_PROMISE, though push is disabled"));
            }
            kind::CONTINUATION => {
                return Err(CallError::protocol("CONTINUATION without a header block"));
            }
            // Advice for servers.
            kind::PRIORITY => {}
            // Unknown frame types must be ignored (5.5).
            _ => {}
        }
    }
}

/// Handles a complete header block of the call's stream; returns the
/// response once the block ends the stream.
fn header_block(
    decoder: &mut hpack::Decoder,
    block: &[u8],
    end_stream: bool,
    headers: &mut Option<Vec<(String, String)>>,
    body: &[u8],
) -> Result<Option<Response>, CallError> {
    let fields: Vec<(String, String)> = decoder
        .decode(block)
        .map_err(|e| CallError::protocol(e.to_string()))?
        .into_iter()
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    match headers {
        None if end_stream => Ok(Some(Response {
            headers: fields.clone(),
            trailers: Some(fields),
            body: body.to_vec(),
        })),
        None => {
            *headers = Some(fields);
            Ok(None)
        }
        Some(_) if !end_stream => Err(CallError::protocol(
            "a second header block that does not end the stream",
        )),
        Some(response_headers) => Ok(Some(Response {
            headers: response_headers.clone(),
            trailers: Some(fields),
            body: body.to_vec(),
        })),
    }
}

/// The server's settings, checked against RFC 9113's bounds (6.5.2). None
/// changes what we send: our one request is far below any window or frame
/// size a server may choose, and we never use the server's HPACK table.
fn check_settings(settings: &[(u16, u32)]) -> Result<(), CallError> {
    for &(id, value) in settings {
        let valid = match id {
            setting::ENABLE_PUSH => value <= 1,
            setting::INITIAL_WINDOW_SIZE => value <= 0x7fff_ffff,
            setting::MAX_FRAME_SIZE => (16_384..=0x00ff_ffff).contains(&value),
            _ => true,
        };
        if !valid {
            return Err(CallError::protocol(format!(
                "invalid SETTINGS parameter {id:#x} = {value}"
            )));
        }
    }
    Ok(())
}

/// RST_STREAM of our stream as grpc-go reports it.
fn reset(error: u32) -> CallError {
    let code = match error {
        0x3 | 0xb => code::RESOURCE_EXHAUSTED, // FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM
        0x7 => code::UNAVAILABLE,              // REFUSED_STREAM
        0x8 => code::CANCELLED,                // CANCEL
        0xc => code::PERMISSION_DENIED,        // INADEQUATE_SECURITY
        _ => code::INTERNAL,
    };
    CallError {
        reason: FailureReason::Protocol,
        code,
        message: format!("server reset the stream ({})", frame::error_name(error)),
    }
}

fn debug_suffix(debug: &str) -> String {
    if debug.is_empty() {
        String::new()
    } else {
        format!(": {debug}")
    }
}

/// Splits what arrives into frames.
#[derive(Default)]
struct FrameReader {
    pending: Vec<u8>,
    /// Whether the server's preface (its first SETTINGS) has arrived.
    preface_seen: bool,
}

impl FrameReader {
    /// The next frame; `None` when the connection ended between frames.
    fn next(
        &mut self,
        transport: &mut impl Transport,
        deadline: Instant,
    ) -> Result<Option<(FrameHeader, Vec<u8>)>, CallError> {
        if !self.fill(transport, frame::HEADER_LEN, deadline)? {
            if self.pending.is_empty() {
                if !self.preface_seen {
                    return Err(CallError::unavailable(
                        FailureReason::Connect,
                        "connection closed by the server before its HTTP/2 preface",
                    ));
                }
                return Ok(None);
            }
            return Err(self.cut_off());
        }
        let header = FrameHeader::parse(self.pending[..frame::HEADER_LEN].try_into().unwrap());
        if !self.preface_seen {
            // A server's first frame is SETTINGS (3.4); anything else means
            // it does not speak HTTP/2 here, so say what it does speak.
            if header.kind != kind::SETTINGS || header.has(flag::ACK) || header.stream != 0 {
                return Err(self.not_http2(transport, deadline));
            }
            self.preface_seen = true;
        }
        if header.length > frame::MAX_FRAME_SIZE {
            return Err(CallError::protocol(format!(
                "frame of {} bytes, above the {} we allow (FRAME_SIZE_ERROR)",
                header.length,
                frame::MAX_FRAME_SIZE
            )));
        }
        let total = frame::HEADER_LEN + header.length;
        if !self.fill(transport, total, deadline)? {
            return Err(self.cut_off());
        }
        let payload = self.pending[frame::HEADER_LEN..total].to_vec();
        self.pending.drain(..total);
        Ok(Some((header, payload)))
    }

    /// Reads until `len` bytes are pending; false if the connection ended
    /// first.
    fn fill(
        &mut self,
        transport: &mut impl Transport,
        len: usize,
        deadline: Instant,
    ) -> Result<bool, CallError> {
        let mut buf = [0u8; 16 * 1024];
        while self.pending.len() < len {
            let read = match transport.receive(&mut buf, deadline) {
                Ok(read) => read,
                // Whatever the server sent before failing tells more than
                // the failure: a reset right after an HTTP/1 or TLS reply.
                Err(_) if !self.preface_seen && !self.pending.is_empty() => {
                    return Err(CallError::protocol(not_http2(&self.pending)));
                }
                Err(error) => return Err(error.into()),
            };
            if read == 0 {
                return Ok(false);
            }
            self.pending.extend_from_slice(&buf[..read]);
        }
        Ok(true)
    }

    /// The server does not speak HTTP/2: names what it speaks, reading a
    /// little more of a text reply (briefly) to show its first line.
    fn not_http2(&mut self, transport: &mut impl Transport, deadline: Instant) -> CallError {
        let brief = deadline.min(Instant::now() + Duration::from_millis(200));
        let mut buf = [0u8; 256];
        while self
            .pending
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            && self.pending.len() < 256
            && !self.pending.contains(&b'\n')
        {
            match transport.receive(&mut buf, brief) {
                Ok(read) if read > 0 => self.pending.extend_from_slice(&buf[..read]),
                _ => break,
            }
        }
        CallError::protocol(not_http2(&self.pending))
    }

    fn cut_off(&self) -> CallError {
        if self.preface_seen {
            CallError::unavailable(FailureReason::Connect, "connection closed inside a frame")
        } else {
            CallError::protocol(not_http2(&self.pending))
        }
    }
}

/// What a server that does not answer with HTTP/2 seems to speak.
fn not_http2(first_bytes: &[u8]) -> String {
    if first_bytes.starts_with(b"HTTP/") {
        let line = first_bytes
            .split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or(&[]);
        format!(
            "the server answered with HTTP/1 ({}), not HTTP/2",
            String::from_utf8_lossy(line)
        )
    } else if matches!(first_bytes, [0x15 | 0x16, 0x03, ..]) {
        "the server answered with TLS, not plaintext HTTP/2 (set `tls: true`)".to_owned()
    } else {
        let first = &first_bytes[..first_bytes.len().min(16)];
        let shown = if first.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            format!("{:?}", String::from_utf8_lossy(first))
        } else {
            let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
            hex.join(" ")
        };
        format!("the server did not answer with HTTP/2 (first bytes: {shown})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health;

    /// A server that answers with prepared bytes, `chunk` at a time, then
    /// ends the connection (or times out); it records what the client
    /// sent.
    struct Scripted {
        replies: Vec<u8>,
        at: usize,
        chunk: usize,
        sent: Vec<u8>,
        then_timeout: bool,
    }

    impl Scripted {
        fn new(replies: Vec<u8>) -> Self {
            Scripted {
                replies,
                at: 0,
                chunk: 7,
                sent: Vec::new(),
                then_timeout: false,
            }
        }

        /// The frames the client sent after its preface.
        fn sent_frames(&self) -> Vec<(FrameHeader, Vec<u8>)> {
            assert!(self.sent.starts_with(frame::PREFACE));
            let mut rest = &self.sent[frame::PREFACE.len()..];
            let mut frames = Vec::new();
            while !rest.is_empty() {
                let header = FrameHeader::parse(rest[..9].try_into().unwrap());
                frames.push((header, rest[9..9 + header.length].to_vec()));
                rest = &rest[9 + header.length..];
            }
            frames
        }
    }

    impl Transport for Scripted {
        fn send(&mut self, bytes: &[u8], _: Instant) -> Result<(), net::Error> {
            self.sent.extend_from_slice(bytes);
            Ok(())
        }

        fn receive(&mut self, buf: &mut [u8], _: Instant) -> Result<usize, net::Error> {
            let n = self.chunk.min(buf.len()).min(self.replies.len() - self.at);
            if n == 0 && self.then_timeout {
                return Err(net::Error::new(
                    FailureReason::Timeout,
                    "reading: timed out",
                ));
            }
            buf[..n].copy_from_slice(&self.replies[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in fields {
            hpack::encode_literal(&mut out, name.as_bytes(), value.as_bytes());
        }
        out
    }

    fn server_settings() -> Vec<u8> {
        frame::settings(&[
            (setting::MAX_FRAME_SIZE, 16_384),
            (setting::INITIAL_WINDOW_SIZE, 1 << 20),
        ])
    }

    fn request() -> Request<'static> {
        Request {
            scheme: "http",
            authority: "127.0.0.1:50051",
            path: health::CHECK_PATH,
            message: b"\x0a\x03app",
            timeout: Duration::from_secs(5),
        }
    }

    fn call(replies: Vec<u8>) -> (Result<Response, CallError>, Scripted) {
        let mut server = Scripted::new(replies);
        let result = unary(
            &mut server,
            &request(),
            Instant::now() + Duration::from_secs(5),
        );
        (result, server)
    }

    fn serving_reply() -> Vec<u8> {
        let mut replies = server_settings();
        replies.extend(frame::encode(kind::SETTINGS, flag::ACK, 0, &[]));
        replies.extend(frame::encode(kind::PING, 0, 0, b"12345678"));
        replies.extend(frame::encode(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
        replies.extend(frame::headers(
            STREAM,
            &block(&[(":status", "200"), ("content-type", "application/grpc")]),
            false,
        ));
        replies.extend(frame::data(
            STREAM,
            &health::frame_message(&[0x08, 0x01]),
            false,
        ));
        replies.extend(frame::headers(
            STREAM,
            &block(&[("grpc-status", "0")]),
            true,
        ));
        replies
    }

    #[test]
    fn a_serving_answer_is_read_and_control_frames_answered() {
        let (result, server) = call(serving_reply());
        let response = result.unwrap();
        assert_eq!(
            health::status_of(&response),
            health::Status {
                code: 0,
                message: String::new()
            }
        );
        let messages = health::split_messages(&response.body).unwrap();
        assert_eq!(health::decode_check_response(messages[0]), Ok(1));

        let sent = server.sent_frames();
        let kinds: Vec<u8> = sent.iter().map(|(h, _)| h.kind).collect();
        assert_eq!(
            kinds,
            [
                kind::SETTINGS,
                kind::HEADERS,
                kind::DATA,
                kind::SETTINGS, // ACK of the server's
                kind::PING,     // ACK of the server's
                kind::WINDOW_UPDATE,
                kind::WINDOW_UPDATE,
                kind::GOAWAY,
            ]
        );
        let (headers, block) = &sent[1];
        assert!(headers.has(flag::END_HEADERS) && !headers.has(flag::END_STREAM));
        let fields = hpack::Decoder::new(4096).decode(block).unwrap();
        let text: Vec<(String, String)> = fields
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let expect = |name: &str, value: &str| {
            assert!(
                text.iter().any(|(n, v)| n == name && v == value),
                "{name}: {value} not in {text:?}"
            )
        };
        expect(":method", "POST");
        expect(":scheme", "http");
        expect(":path", "/grpc.health.v1.Health/Check");
        expect(":authority", "127.0.0.1:50051");
        expect("content-type", "application/grpc");
        expect("te", "trailers");
        expect("grpc-timeout", "5000m");
        let (data, message) = &sent[2];
        assert!(data.has(flag::END_STREAM));
        assert_eq!(message, &health::frame_message(b"\x0a\x03app"));
        assert!(sent[3].0.has(flag::ACK) && sent[4].0.has(flag::ACK));
        assert_eq!(sent[4].1, b"12345678");
        assert_eq!(frame::u32_at(&sent[5].1, 0), Some(7));
    }

    #[test]
    fn trailers_only_answers_and_continuations() {
        let mut replies = server_settings();
        // A trailers-only answer split over HEADERS + 2 CONTINUATIONs,
        // with an entry the second block refers to through the table.
        let mut first = Vec::new();
        first.push(0x88); // :status 200
        hpack::encode_literal(&mut first, b"content-type", b"application/grpc");
        first[1] = 0x40; // incremental indexing: becomes index 62
        hpack::encode_literal(&mut first, b"grpc-status", b"5");
        hpack::encode_literal(&mut first, b"grpc-message", b"unknown%20service");
        let (a, rest) = first.split_at(5);
        let (b, c) = rest.split_at(10);
        replies.extend(frame::encode(kind::HEADERS, flag::END_STREAM, STREAM, a));
        replies.extend(frame::encode(kind::CONTINUATION, 0, STREAM, b));
        replies.extend(frame::encode(
            kind::CONTINUATION,
            flag::END_HEADERS,
            STREAM,
            c,
        ));
        let response = call(replies).0.unwrap();
        assert_eq!(response.trailers.as_ref(), Some(&response.headers));
        let status = health::status_of(&response);
        assert_eq!(
            (status.code, status.message.as_str()),
            (5, "unknown service")
        );
    }

    #[test]
    fn padded_frames_and_the_dynamic_table() {
        let mut replies = server_settings();
        let mut headers = vec![0x88];
        hpack::encode_literal(&mut headers, b"content-type", b"application/grpc");
        headers[1] = 0x40;
        // PADDED and PRIORITY: pad length 3, 5 priority bytes, block, pad.
        let mut payload = vec![3, 0, 0, 0, 0, 16];
        payload.extend(&headers);
        payload.extend([0, 0, 0]);
        replies.extend(frame::encode(
            kind::HEADERS,
            flag::END_HEADERS | flag::PADDED | flag::PRIORITY,
            STREAM,
            &payload,
        ));
        let mut data = vec![2];
        data.extend(health::frame_message(&[0x08, 0x02]));
        data.extend([0, 0]);
        replies.extend(frame::encode(kind::DATA, flag::PADDED, STREAM, &data));
        replies.extend(frame::encode(kind::PRIORITY, 0, STREAM, &[0, 0, 0, 0, 1]));
        replies.extend(frame::encode(0xfa, 0, 0, b"unknown frame type"));
        // Trailers reuse index 62 (content-type) to check the table.
        let mut trailers = vec![0xbe];
        hpack::encode_literal(&mut trailers, b"grpc-status", b"0");
        replies.extend(frame::headers(STREAM, &trailers, true));
        let response = call(replies).0.unwrap();
        assert_eq!(response.trailers.as_ref().unwrap()[0].1, "application/grpc");
        assert_eq!(response.body, health::frame_message(&[0x08, 0x02]));
    }

    #[test]
    fn servers_that_do_not_speak_http2_are_named() {
        let (result, _) = call(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n".to_vec());
        let error = result.unwrap_err();
        assert_eq!((error.reason, error.code), (FailureReason::Protocol, 14));
        assert!(
            error.message.contains("HTTP/1 (HTTP/1.1 400 Bad Request)"),
            "{}",
            error.message
        );

        let alert = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];
        let error = call(alert).0.unwrap_err();
        assert!(
            error.message.contains("set `tls: true`"),
            "{}",
            error.message
        );

        let error = call(Vec::new()).0.unwrap_err();
        assert_eq!((error.reason, error.code), (FailureReason::Connect, 14));
        assert!(error.message.contains("before its HTTP/2 preface"));

        let error = call(frame::encode(kind::HEADERS, 4, 1, &[0x88]))
            .0
            .unwrap_err();
        assert!(
            error
                .message
                .contains("first bytes: 00 00 01 01 04 00 00 00 01 88)"),
            "{}",
            error.message
        );

        let error = call(b"<!DOCTYPE HTML PUBLIC".to_vec()).0.unwrap_err();
        assert!(
            error
                .message
                .contains(r#"first bytes: "<!DOCTYPE HTML P")"#),
            "{}",
            error.message
        );
    }

    #[test]
    fn goaway_reset_and_closed_connections_are_unavailable() {
        let mut replies = server_settings();
        let mut away = frame::goaway(0, 0xb);
        away.extend_from_slice(b"too many pings");
        // Fix the length for the debug text.
        away[2] = 8 + 14;
        replies.extend(away);
        let error = call(replies).0.unwrap_err();
        assert_eq!(error.code, 14);
        assert!(
            error.message.contains("ENHANCE_YOUR_CALM"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("too many pings"),
            "{}",
            error.message
        );

        // A graceful GOAWAY that lets the stream finish.
        let mut replies = server_settings();
        replies.extend(frame::goaway(1, 0));
        replies.extend(serving_reply()[server_settings().len()..].to_vec());
        assert!(call(replies).0.is_ok());

        let mut replies = server_settings();
        replies.extend(frame::encode(
            kind::RST_STREAM,
            0,
            STREAM,
            &7u32.to_be_bytes(),
        ));
        let error = call(replies).0.unwrap_err();
        assert_eq!((error.code, error.reason), (14, FailureReason::Protocol));
        assert!(error.message.contains("REFUSED_STREAM"));

        let mut replies = server_settings();
        replies.extend(frame::encode(
            kind::RST_STREAM,
            0,
            STREAM,
            &8u32.to_be_bytes(),
        ));
        assert_eq!(call(replies).0.unwrap_err().code, code::CANCELLED);

        let replies = server_settings();
        let error = call(replies).0.unwrap_err();
        assert_eq!((error.reason, error.code), (FailureReason::Connect, 14));

        let mut replies = server_settings();
        replies.extend(&frame::encode(kind::PING, 0, 0, b"12345678")[..12]);
        let error = call(replies).0.unwrap_err();
        assert!(error.message.contains("inside a frame"));
    }

    #[test]
    fn protocol_violations_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                frame::encode(kind::PUSH_PROMISE, 4, STREAM, &[0, 0, 0, 2]),
                "PUSH_PROMISE",
            ),
            (
                frame::encode(kind::CONTINUATION, 4, STREAM, &[0x88]),
                "CONTINUATION without",
            ),
            (frame::encode(kind::DATA, 0, STREAM, &[0]), "DATA before"),
            (frame::encode(kind::HEADERS, 5, 3, &[0x88]), "stream 3"),
            (frame::encode(kind::PING, 0, 0, b"1234"), "malformed PING"),
            (frame::encode(kind::HEADERS, 5, STREAM, &[0x80]), "HPACK"),
            (
                frame::settings(&[(setting::MAX_FRAME_SIZE, 100)]),
                "invalid SETTINGS",
            ),
            (
                {
                    let mut big = vec![0, 0x40, 0x01, kind::DATA, 0, 0, 0, 0, 1];
                    big.extend(vec![0; 0x4001]);
                    big
                },
                "FRAME_SIZE_ERROR",
            ),
            (
                {
                    let mut interrupted = frame::encode(kind::HEADERS, 0, STREAM, &[0x88]);
                    interrupted.extend(frame::encode(kind::PING, 0, 0, b"12345678"));
                    interrupted
                },
                "interrupted",
            ),
        ];
        for (frames, expected) in cases {
            let mut replies = server_settings();
            replies.extend(frames);
            let error = call(replies).0.unwrap_err();
            assert_eq!(
                error.reason,
                FailureReason::Protocol,
                "{expected}: {error:?}"
            );
            assert!(
                error.message.contains(expected),
                "{expected}: {}",
                error.message
            );
        }
    }

    #[test]
    fn oversized_bodies_and_timeouts() {
        let mut replies = server_settings();
        replies.extend(frame::headers(
            STREAM,
            &block(&[(":status", "200"), ("content-type", "application/grpc")]),
            false,
        ));
        for _ in 0..5 {
            replies.extend(frame::data(STREAM, &[0; frame::MAX_FRAME_SIZE], false));
        }
        let error = call(replies).0.unwrap_err();
        assert_eq!(error.code, code::RESOURCE_EXHAUSTED);

        let mut server = Scripted::new(server_settings());
        server.then_timeout = true;
        let error = unary(&mut server, &request(), Instant::now()).unwrap_err();
        assert_eq!(
            (error.reason, error.code),
            (FailureReason::Timeout, code::DEADLINE_EXCEEDED)
        );
    }

    #[test]
    fn grpc_timeouts_fit_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(grpc_timeout(Duration::MAX), "99999999S");
    }
}
