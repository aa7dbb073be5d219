//! The PostgreSQL frontend/backend protocol, version 3: the messages this
//! exporter sends and the backend messages it reads, as pure functions over
//! byte buffers (the socket is [`crate::client`]'s business).
//! <https://www.postgresql.org/docs/current/protocol-message-formats.html>

use std::fmt;

/// Protocol version 3.0, as the StartupMessage states it.
const PROTOCOL_VERSION: i32 = 3 << 16;

/// The bytes received are not the PostgreSQL protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not the PostgreSQL protocol: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn invalid(what: impl Into<String>) -> ProtocolError {
    ProtocolError(what.into())
}

// ---- frontend messages ----

/// StartupMessage: protocol version and `name=value` parameters (`user`,
/// `database`, `application_name` …). It alone has no type byte.
pub fn startup(parameters: &[(&str, &str)]) -> Vec<u8> {
    let mut body = PROTOCOL_VERSION.to_be_bytes().to_vec();
    for (name, value) in parameters {
        put_cstr(&mut body, name);
        put_cstr(&mut body, value);
    }
    body.push(0);
    let mut out = length_prefix(body.len()).to_vec();
    out.extend_from_slice(&body);
    out
}

/// PasswordMessage: a cleartext or MD5-hashed password.
pub fn password(password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_cstr(&mut body, password);
    message(b'p', &body)
}

/// SASLInitialResponse: the chosen mechanism and its first message.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_cstr(&mut body, mechanism);
    body.extend_from_slice(&length_i32(data.len()).to_be_bytes());
    body.extend_from_slice(data);
    message(b'p', &body)
}

/// SASLResponse: a later SASL message.
pub fn sasl_response(data: &[u8]) -> Vec<u8> {
    message(b'p', data)
}

/// Query: a simple query, answered in text format.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_cstr(&mut body, sql);
    message(b'Q', &body)
}

/// Terminate: the polite goodbye, so the server does not log an unexpected
/// EOF.
pub fn terminate() -> Vec<u8> {
    message(b'X', &[])
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&length_prefix(body.len()));
    out.extend_from_slice(body);
    out
}

/// The length field: the body plus the four bytes of the field itself.
fn length_prefix(body_len: usize) -> [u8; 4] {
    length_i32(body_len + 4).to_be_bytes()
}

fn length_i32(len: usize) -> i32 {
    // Every message this exporter sends is a few KiB at most (a query of
    // its own, a password).
    i32::try_from(len).expect("message under 2 GiB")
}

fn put_cstr(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

// ---- backend messages ----

/// One message of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Authentication(Authentication),
    /// `name = value` the server reports (`server_version` …).
    ParameterStatus(String, String),
    /// Ready for a new query; the byte is the transaction status.
    ReadyForQuery(u8),
    /// The column names of the rows that follow.
    RowDescription(Vec<String>),
    /// One row, values in text format, `None` for NULL.
    DataRow(Vec<Option<String>>),
    /// A statement finished, with its tag (`SELECT 3`).
    CommandComplete(String),
    EmptyQueryResponse,
    ErrorResponse(ServerError),
    NoticeResponse(ServerError),
    /// Anything else (BackendKeyData, NotificationResponse …): not needed
    /// here, skipped.
    Other(u8),
}

/// The Authentication* messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    /// The SASL mechanisms the server offers.
    Sasl(Vec<String>),
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    /// Kerberos, GSSAPI, SSPI …, by their code.
    Unsupported(i32),
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerError {
    /// `FATAL`, `ERROR` … (not localized).
    pub severity: String,
    /// SQLSTATE: `28P01` is a wrong password.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// One complete message at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'b> {
    /// The type byte.
    pub tag: u8,
    pub body: &'b [u8],
    /// Bytes the message took in the buffer.
    pub len: usize,
}

/// The first complete message of `buf`; `Ok(None)`: not complete yet. A
/// length above `max_len` is refused before its bytes arrive.
pub fn frame(buf: &[u8], max_len: usize) -> Result<Option<Frame<'_>>, ProtocolError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = header[0];
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len >= 4)
        .ok_or_else(|| invalid(format!("message length {len}")))?;
    if len > max_len {
        return Err(invalid(format!(
            "a {:?} message of {len} bytes (more than {max_len} accepted)",
            char::from(tag)
        )));
    }
    let total = 1 + len;
    Ok(buf.get(5..total).map(|body| Frame {
        tag,
        body,
        len: total,
    }))
}

/// Reads the body of a message of type `tag`.
pub fn parse(tag: u8, body: &[u8]) -> Result<Backend, ProtocolError> {
    let mut r = Reader { body, pos: 0 };
    let message = match tag {
        b'R' => Backend::Authentication(authentication(&mut r)?),
        b'S' => Backend::ParameterStatus(r.cstr()?, r.cstr()?),
        b'Z' => Backend::ReadyForQuery(r.u8()?),
        b'T' => {
            let count = r.u16()?;
            let mut names = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                names.push(r.cstr()?);
                // Table OID, column number, type OID, type size, type
                // modifier, format code: not needed for text results.
                r.skip(4 + 2 + 4 + 2 + 4 + 2)?;
            }
            Backend::RowDescription(names)
        }
        b'D' => {
            let count = r.u16()?;
            let mut values = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let len = r.i32()?;
                values.push(match usize::try_from(len) {
                    Ok(len) => Some(String::from_utf8_lossy(r.take(len)?).into_owned()),
                    Err(_) if len == -1 => None,
                    Err(_) => return Err(invalid(format!("value length {len}"))),
                });
            }
            Backend::DataRow(values)
        }
        b'C' => Backend::CommandComplete(r.cstr()?),
        b'I' => Backend::EmptyQueryResponse,
        b'E' => Backend::ErrorResponse(server_error(&mut r)?),
        b'N' => Backend::NoticeResponse(server_error(&mut r)?),
        other => return Ok(Backend::Other(other)),
    };
    Ok(message)
}

fn authentication(r: &mut Reader<'_>) -> Result<Authentication, ProtocolError> {
    Ok(match r.i32()? {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let salt = r.take(4)?;
            Authentication::Md5Password {
                salt: [salt[0], salt[1], salt[2], salt[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let mechanism = r.cstr()?;
                if mechanism.is_empty() {
                    break;
                }
                mechanisms.push(mechanism);
            }
            Authentication::Sasl(mechanisms)
        }
        11 => Authentication::SaslContinue(r.rest().to_vec()),
        12 => Authentication::SaslFinal(r.rest().to_vec()),
        code => Authentication::Unsupported(code),
    })
}

fn server_error(r: &mut Reader<'_>) -> Result<ServerError, ProtocolError> {
    let mut error = ServerError::default();
    let mut localized_severity = String::new();
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        let value = r.cstr()?;
        match code {
            b'S' => localized_severity = value,
            b'V' => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    // `V` (never localized) exists since 9.6; older servers only send `S`.
    if error.severity.is_empty() {
        error.severity = localized_severity;
    }
    Ok(error)
}

/// Reads fields off a message body, failing on a short one.
struct Reader<'b> {
    body: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.body.len())
            .ok_or_else(|| invalid("a message shorter than its fields"))?;
        let bytes = &self.body[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), ProtocolError> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstr(&mut self) -> Result<String, ProtocolError> {
        let rest = &self.body[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| invalid("a string without its terminator"))?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn rest(&mut self) -> &'b [u8] {
        let rest = &self.body[self.pos..];
        self.pos = self.body.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend message as the server frames it.
    fn backend(tag: u8, body: &[u8]) -> Vec<u8> {
        message(tag, body)
    }

    fn parse_one(bytes: &[u8]) -> Backend {
        let frame = frame(bytes, 1 << 20).unwrap().expect("complete");
        assert_eq!(frame.len, bytes.len());
        parse(frame.tag, frame.body).unwrap()
    }

    #[test]
    fn startup_message_layout() {
        let bytes = startup(&[("user", "lookout"), ("database", "app")]);
        let expected_body = b"\x00\x03\x00\x00user\0lookout\0database\0app\0\0";
        assert_eq!(
            &bytes[..4],
            &((expected_body.len() + 4) as i32).to_be_bytes()
        );
        assert_eq!(&bytes[4..], expected_body);
    }

    #[test]
    fn frontend_messages_are_tagged_and_length_prefixed() {
        assert_eq!(query("SELECT 1"), b"Q\0\0\0\x0dSELECT 1\0");
        assert_eq!(password("pw"), b"p\0\0\0\x07pw\0");
        assert_eq!(terminate(), b"X\0\0\0\x04");
        assert_eq!(
            sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc"),
            b"p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc"
        );
        assert_eq!(sasl_response(b"c=biws"), b"p\0\0\0\x0ac=biws");
    }

    #[test]
    fn authentication_requests() {
        assert_eq!(
            parse_one(&backend(b'R', &0i32.to_be_bytes())),
            Backend::Authentication(Authentication::Ok)
        );
        assert_eq!(
            parse_one(&backend(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])),
            Backend::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] })
        );
        assert_eq!(
            parse_one(&backend(
                b'R',
                b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"
            )),
            Backend::Authentication(Authentication::Sasl(vec![
                "SCRAM-SHA-256-PLUS".into(),
                "SCRAM-SHA-256".into()
            ]))
        );
        assert_eq!(
            parse_one(&backend(b'R', b"\0\0\0\x0br=abc,s=c2FsdA==,i=4096")),
            Backend::Authentication(Authentication::SaslContinue(
                b"r=abc,s=c2FsdA==,i=4096".to_vec()
            ))
        );
        assert_eq!(
            parse_one(&backend(b'R', &7i32.to_be_bytes())),
            Backend::Authentication(Authentication::Unsupported(7))
        );
    }

    #[test]
    fn rows_and_completion() {
        let mut description = 2u16.to_be_bytes().to_vec();
        for name in ["datname", "numbackends"] {
            description.extend_from_slice(name.as_bytes());
            description.push(0);
            description.extend_from_slice(&[0; 18]);
        }
        assert_eq!(
            parse_one(&backend(b'T', &description)),
            Backend::RowDescription(vec!["datname".into(), "numbackends".into()])
        );
        let mut row = 2u16.to_be_bytes().to_vec();
        row.extend_from_slice(&3i32.to_be_bytes());
        row.extend_from_slice(b"app");
        row.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            parse_one(&backend(b'D', &row)),
            Backend::DataRow(vec![Some("app".into()), None])
        );
        assert_eq!(
            parse_one(&backend(b'C', b"SELECT 1\0")),
            Backend::CommandComplete("SELECT 1".into())
        );
        assert_eq!(
            parse_one(&backend(b'Z', b"I")),
            Backend::ReadyForQuery(b'I')
        );
        assert_eq!(
            parse_one(&backend(b'S', b"server_version\x0015.8\0")),
            Backend::ParameterStatus("server_version".into(), "15.8".into())
        );
        assert_eq!(parse_one(&backend(b'K', &[0; 8])), Backend::Other(b'K'));
    }

    #[test]
    fn error_responses_read_as_sentences() {
        let body = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\
                     Fauth.c\0\0";
        let Backend::ErrorResponse(error) = parse_one(&backend(b'E', body)) else {
            panic!("an error response");
        };
        assert_eq!(error.code, "28P01");
        assert_eq!(
            error.to_string(),
            "FATAL: password authentication failed for user \"x\" (SQLSTATE 28P01)"
        );
        let localized = b"SFEHLER\0C42P01\0Mgibt es nicht\0Htry again\0\0";
        let Backend::ErrorResponse(error) = parse_one(&backend(b'E', localized)) else {
            panic!("an error response");
        };
        assert_eq!(
            error.to_string(),
            "FEHLER: gibt es nicht (SQLSTATE 42P01); hint: try again"
        );
    }

    #[test]
    fn framing_waits_for_whole_messages_and_refuses_nonsense() {
        let two = [backend(b'Z', b"I"), backend(b'C', b"SELECT 1\0")].concat();
        for cut in 0..6 {
            assert_eq!(frame(&two[..cut], 100), Ok(None), "cut at {cut}");
        }
        let first = frame(&two, 100).unwrap().unwrap();
        assert_eq!((first.tag, first.body, first.len), (b'Z', &b"I"[..], 6));
        assert_eq!(frame(&two[first.len..], 100).unwrap().unwrap().tag, b'C');

        assert!(frame(b"HTTP/1.1 400", 100).is_err(), "an HTTP server");
        assert!(
            frame(&backend(b'D', &[0; 200]), 100).is_err(),
            "over the cap"
        );
        assert!(frame(b"Z\0\0\0\x02", 100).is_err(), "length below 4");
        assert!(
            parse(b'D', &[0, 1, 0, 0, 0, 9, b'x']).is_err(),
            "short value"
        );
        assert!(parse(b'S', b"no terminator").is_err());
    }
}
