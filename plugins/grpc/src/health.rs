//! The gRPC layer of a health check: `grpc.health.v1` messages in protobuf,
//! gRPC's length-prefixed message framing, status codes, and how the HTTP/2
//! response of a call becomes a gRPC status (the way grpc-go, and so
//! blackbox_exporter, reads it).

use crate::call::Response;

/// The method every gRPC health server implements.
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// gRPC status codes used here by name.
pub mod code {
    pub const OK: u32 = 0;
    pub const CANCELLED: u32 = 1;
    pub const UNKNOWN: u32 = 2;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
}

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("unknown code")
}

/// `HealthCheckResponse.ServingStatus` values by number; blackbox_exporter
/// reports each as a `serving_status` label.
pub const SERVING_STATUSES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// The enum's name for `value`; a value this version does not know is
/// named by its number, as protobuf's Go runtime names it.
pub fn serving_status_name(value: i32) -> String {
    usize::try_from(value)
        .ok()
        .and_then(|i| SERVING_STATUSES.get(i))
        .map_or_else(|| value.to_string(), |name| (*name).to_owned())
}

/// `HealthCheckRequest { service }` in protobuf: field 1, length-delimited;
/// an empty service is the empty message (proto3 leaves defaults out).
pub fn encode_check_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        encode_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

fn encode_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A protobuf varint at the start of `input`; advances past it.
fn decode_varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = input.split_first().ok_or("message ends inside a varint")?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// The `status` of a protobuf `HealthCheckResponse` (field 1, an enum);
/// other fields are skipped, as protobuf readers do with unknown fields.
pub fn decode_check_response(message: &[u8]) -> Result<i32, String> {
    let mut input = message;
    let mut status = 0i32;
    while !input.is_empty() {
        let key = decode_varint(&mut input)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return Err("field number 0".into());
        }
        match wire_type {
            0 => {
                let value = decode_varint(&mut input)?;
                if field == 1 {
                    // An enum is an int32: negative numbers arrive as
                    // 10-byte varints of their 64-bit two's complement.
                    status = value as i32;
                }
            }
            1 | 5 => {
                let len = if wire_type == 1 { 8 } else { 4 };
                input = input
                    .get(len..)
                    .ok_or("message ends inside a fixed-size field")?;
            }
            2 => {
                let len = usize::try_from(decode_varint(&mut input)?).unwrap_or(usize::MAX);
                input = input
                    .get(len..)
                    .ok_or("message ends inside a length-delimited field")?;
            }
            other => return Err(format!("unsupported wire type {other}")),
        }
    }
    Ok(status)
}

/// `message` as one gRPC length-prefixed message, uncompressed.
pub fn frame_message(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The messages of a gRPC response body. We accept no compression (we
/// sent no `grpc-accept-encoding`), so a compressed message is an error.
pub fn split_messages(mut body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        let Some((prefix, rest)) = body.split_first_chunk::<5>() else {
            return Err("response body ends inside a message prefix".into());
        };
        if prefix[0] != 0 {
            return Err("compressed response message, though none was accepted".into());
        }
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len > rest.len() {
            return Err("response body ends inside a message".into());
        }
        messages.push(&rest[..len]);
        body = &rest[len..];
    }
    Ok(messages)
}

/// A call's gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub message: String,
}

impl Status {
    fn new(code: u32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }
}

/// The status of a finished call, read as grpc-go reads it: a response
/// that is not HTTP 200 with a gRPC content type gets a code from its HTTP
/// status; otherwise `grpc-status` and `grpc-message` of the trailers (or
/// of the headers of a trailers-only response) decide.
pub fn status_of(response: &Response) -> Status {
    let find = |fields: &[(String, String)], name: &str| -> Option<String> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let headers = &response.headers;
    let http_status = find(headers, ":status");
    let Some(http_status) = http_status.and_then(|s| s.parse::<u16>().ok()) else {
        return Status::new(code::INTERNAL, "malformed header: missing HTTP status");
    };
    if http_status != 200 {
        return Status::new(
            http_to_grpc(http_status),
            format!("unexpected HTTP status code received from server: {http_status}"),
        );
    }
    let content_type = find(headers, "content-type").unwrap_or_default();
    if !is_grpc_content_type(&content_type) {
        return Status::new(
            code::UNKNOWN,
            format!("unexpected content-type {content_type:?} (not application/grpc)"),
        );
    }
    let Some(trailers) = &response.trailers else {
        return Status::new(
            code::INTERNAL,
            "server closed the stream without sending trailers",
        );
    };
    let message = find(trailers, "grpc-message")
        .map(|m| percent_decode(&m))
        .unwrap_or_default();
    match find(trailers, "grpc-status") {
        None => Status::new(code::UNKNOWN, message),
        Some(raw) => match raw.parse::<u32>() {
            Ok(code) => Status::new(code, message),
            Err(_) => Status::new(code::INTERNAL, format!("malformed grpc-status {raw:?}")),
        },
    }
}

/// gRPC's mapping of an HTTP status that is not 200 to a code.
fn http_to_grpc(status: u16) -> u32 {
    match status {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// `application/grpc`, optionally `+format` or `;parameters`.
fn is_grpc_content_type(value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    value
        .strip_prefix("application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses"); a
/// broken escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn check_requests_encode_as_protobuf() {
        assert_eq!(encode_check_request(""), b"");
        assert_eq!(encode_check_request("app"), b"\x0a\x03app");
        let long = "s".repeat(300);
        let encoded = encode_check_request(&long);
        assert_eq!(&encoded[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(encoded.len(), 303);
    }

    #[test]
    fn check_responses_decode_and_skip_unknown_fields() {
        assert_eq!(decode_check_response(b""), Ok(0));
        assert_eq!(decode_check_response(&[0x08, 0x01]), Ok(1));
        assert_eq!(decode_check_response(&[0x08, 0x02]), Ok(2));
        // Unknown fields of every wire type around the status.
        let message = [
            0x10, 0x96, 0x01, // field 2 varint
            0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
            0x22, 0x02, b'h', b'i', // field 4 bytes
            0x2d, 1, 2, 3, 4, // field 5 fixed32
            0x08, 0x03, // status SERVICE_UNKNOWN
        ];
        assert_eq!(decode_check_response(&message), Ok(3));
        // A negative enum value: ten bytes.
        let minus_one = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(decode_check_response(&minus_one), Ok(-1));
        for broken in [
            &[0x08][..],
            &[0x22, 0x05, 1],
            &[0x0b],
            &[0x00, 0x01],
            &[0x19, 1],
        ] {
            assert!(decode_check_response(broken).is_err(), "{broken:02x?}");
        }
    }

    #[test]
    fn serving_status_names_follow_the_enum() {
        assert_eq!(serving_status_name(1), "SERVING");
        assert_eq!(serving_status_name(3), "SERVICE_UNKNOWN");
        assert_eq!(serving_status_name(7), "7");
        assert_eq!(serving_status_name(-2), "-2");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "unknown code");
    }

    #[test]
    fn messages_are_length_prefixed() {
        let framed = frame_message(&[0x08, 0x01]);
        assert_eq!(framed, [0, 0, 0, 0, 2, 0x08, 0x01]);
        let mut two = framed.clone();
        two.extend(frame_message(&[]));
        assert_eq!(split_messages(&two).unwrap(), [&[0x08, 0x01][..], &[]]);
        assert!(split_messages(&[0, 0, 0]).is_err());
        assert!(split_messages(&[0, 0, 0, 0, 3, 1]).is_err());
        assert!(split_messages(&[1, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn statuses_are_read_like_grpc_go() {
        let ok_headers = fields(&[(":status", "200"), ("content-type", "application/grpc")]);
        let response =
            |headers: Vec<(String, String)>, trailers: Option<Vec<(String, String)>>| Response {
                headers,
                trailers,
                body: Vec::new(),
            };
        let ok = response(ok_headers.clone(), Some(fields(&[("grpc-status", "0")])));
        assert_eq!(status_of(&ok), Status::new(0, ""));
        let not_found = response(
            ok_headers.clone(),
            Some(fields(&[
                ("grpc-status", "5"),
                ("grpc-message", "unknown%20service%3A%20app"),
            ])),
        );
        assert_eq!(
            status_of(&not_found),
            Status::new(5, "unknown service: app")
        );
        let no_status = response(ok_headers.clone(), Some(Vec::new()));
        assert_eq!(status_of(&no_status).code, code::UNKNOWN);
        let bad_status = response(ok_headers.clone(), Some(fields(&[("grpc-status", "x")])));
        assert_eq!(status_of(&bad_status).code, code::INTERNAL);
        let no_trailers = response(ok_headers, None);
        assert_eq!(status_of(&no_trailers).code, code::INTERNAL);
        for (http, grpc) in [
            (404, 12),
            (503, 14),
            (401, 16),
            (403, 7),
            (400, 13),
            (418, 2),
        ] {
            let headers = fields(&[(":status", &http.to_string())]);
            assert_eq!(status_of(&response(headers, None)).code, grpc, "{http}");
        }
        let html = fields(&[(":status", "200"), ("content-type", "text/html")]);
        assert_eq!(status_of(&response(html, None)).code, code::UNKNOWN);
        assert_eq!(status_of(&response(Vec::new(), None)).code, code::INTERNAL);
        let proto = fields(&[
            (":status", "200"),
            ("content-type", "application/grpc+proto"),
        ]);
        let trailers = Some(fields(&[("grpc-status", "0")]));
        assert_eq!(status_of(&response(proto, trailers)).code, 0);
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
