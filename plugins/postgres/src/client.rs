//! A PostgreSQL session over the SDK's TCP stream: startup and
//! authentication, simple queries, terminate. Every wait is bounded by the
//! collection's deadline.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lookout_plugin_sdk::FailureReason;
use lookout_plugin_sdk::net::{self, TcpStream};

use crate::auth::{self, SCRAM_SHA_256, ScramClient};
use crate::protocol::{self, Authentication, Backend, ServerError};

/// Largest backend message accepted. The rows this exporter reads are a
/// few hundred bytes (the longest is `version()`); 1 MiB leaves room for
/// any real server and stops a peer that is not PostgreSQL from claiming
/// gigabytes.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Largest result of one query, all messages together. `pg_settings` is
/// ~400 rows; `pg_stat_activity` and `pg_locks` grow with the number of
/// databases (6 and 9 rows each): 16 MiB covers thousands of databases and
/// keeps the plugin within its memory cap.
const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Why a session or a query failed.
#[derive(Debug, Clone)]
pub enum Error {
    /// Resolving, connecting, reading or writing failed, or time ran out.
    Net(net::Error),
    /// The peer does not speak the protocol as expected.
    Protocol(String),
    /// The server refused (ErrorResponse): wrong password, missing
    /// permission, unknown database, a failing query.
    Server(ServerError),
    /// Authentication cannot proceed: a method this client lacks, no
    /// password configured, a server that failed to prove itself.
    Auth(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Net(error) => write!(f, "{error}"),
            Error::Protocol(what) => write!(f, "{what}"),
            Error::Server(error) => write!(f, "{error}"),
            Error::Auth(what) => write!(f, "authentication: {what}"),
        }
    }
}

impl From<net::Error> for Error {
    fn from(error: net::Error) -> Self {
        Error::Net(error)
    }
}

impl From<protocol::ProtocolError> for Error {
    fn from(error: protocol::ProtocolError) -> Self {
        Error::Protocol(error.to_string())
    }
}

impl From<auth::ScramError> for Error {
    fn from(error: auth::ScramError) -> Self {
        Error::Auth(error.to_string())
    }
}

/// Who to log in as.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub database: &'a str,
}

/// The rows of a simple query, values as text (`None` for NULL).
#[derive(Debug, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

pub struct Session {
    stream: TcpStream,
    /// Received bytes not yet consumed by a message.
    pending: Vec<u8>,
    deadline: Instant,
}

impl Session {
    /// Connects to the first of `addresses` that accepts, starts a session
    /// and authenticates; returns once the server is ready for queries.
    pub fn open(
        addresses: &[SocketAddr],
        login: &Login<'_>,
        deadline: Instant,
    ) -> Result<Self, Error> {
        let stream = TcpStream::connect_first(addresses, deadline)?;
        let mut session = Session {
            stream,
            pending: Vec::new(),
            deadline,
        };
        session.start(login)?;
        Ok(session)
    }

    fn start(&mut self, login: &Login<'_>) -> Result<(), Error> {
        let parameters = [
            ("user", login.user),
            ("database", login.database),
            ("application_name", "lookout"),
            ("client_encoding", "UTF8"),
        ];
        self.send(&protocol::startup(&parameters))?;
        loop {
            match self.next_message()? {
                Backend::Authentication(Authentication::Ok) => break,
                Backend::Authentication(request) => self.authenticate(request, login)?,
                Backend::ErrorResponse(error) => return Err(Error::Server(error)),
                Backend::NoticeResponse(_) => {}
                other => {
                    return Err(Error::Protocol(format!(
                        "unexpected {other:?} during authentication"
                    )));
                }
            }
        }
        // ParameterStatus and BackendKeyData follow, then ReadyForQuery.
        loop {
            match self.next_message()? {
                Backend::ReadyForQuery(_) => return Ok(()),
                Backend::ErrorResponse(error) => return Err(Error::Server(error)),
                _ => {}
            }
        }
    }

    /// Answers one authentication request; a SASL exchange runs to its
    /// final message here.
    fn authenticate(&mut self, request: Authentication, login: &Login<'_>) -> Result<(), Error> {
        let password = || {
            login.password.ok_or_else(|| {
                Error::Auth(format!(
                    "the server wants a password for user `{}`; set `password`",
                    login.user
                ))
            })
        };
        match request {
            Authentication::CleartextPassword => self.send(&protocol::password(password()?)),
            Authentication::Md5Password { salt } => {
                let hashed = auth::md5_password(login.user, password()?, salt);
                self.send(&protocol::password(&hashed))
            }
            Authentication::Sasl(mechanisms) => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(Error::Auth(format!(
                        "the server offers SASL {mechanisms:?}; only {SCRAM_SHA_256} is supported"
                    )));
                }
                self.scram(password()?)
            }
            Authentication::Unsupported(code) => Err(Error::Auth(format!(
                "method {} is not supported (use scram-sha-256, md5, password or trust in \
                 pg_hba.conf)",
                method_name(code)
            ))),
            other => Err(Error::Protocol(format!(
                "{other:?} outside a SASL exchange"
            ))),
        }
    }

    fn scram(&mut self, password: &str) -> Result<(), Error> {
        let mut scram = ScramClient::new("", password, client_nonce());
        self.send(&protocol::sasl_initial_response(
            SCRAM_SHA_256,
            scram.client_first().as_bytes(),
        ))?;
        let server_first = match self.next_message()? {
            Backend::Authentication(Authentication::SaslContinue(data)) => data,
            Backend::ErrorResponse(error) => return Err(Error::Server(error)),
            other => {
                return Err(Error::Protocol(format!(
                    "expected SASLContinue, got {other:?}"
                )));
            }
        };
        let client_final = scram.client_final(&String::from_utf8_lossy(&server_first))?;
        self.send(&protocol::sasl_response(client_final.as_bytes()))?;
        match self.next_message()? {
            Backend::Authentication(Authentication::SaslFinal(data)) => {
                Ok(scram.verify_server_final(&String::from_utf8_lossy(&data))?)
            }
            Backend::ErrorResponse(error) => Err(Error::Server(error)),
            other => Err(Error::Protocol(format!(
                "expected SASLFinal, got {other:?}"
            ))),
        }
    }

    /// Runs one SQL statement with the simple query protocol.
    ///
    /// `Err(Error::Server)` is a failed query on a session that is still
    /// usable; any other error leaves the session broken.
    pub fn query(&mut self, sql: &str) -> Result<Rows, Error> {
        self.send(&protocol::query(sql))?;
        let mut rows = Rows::default();
        let mut failure = None;
        let mut received = 0;
        loop {
            let (message, size) = self.next_message_sized()?;
            received += size;
            if received > MAX_RESULT_BYTES {
                return Err(Error::Protocol(format!(
                    "a result larger than {MAX_RESULT_BYTES} bytes"
                )));
            }
            match message {
                Backend::RowDescription(columns) => rows.columns = columns,
                Backend::DataRow(values) => rows.rows.push(values),
                // The server sends ReadyForQuery after an error too.
                Backend::ErrorResponse(error) => failure = Some(error),
                Backend::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match failure {
            Some(error) => Err(Error::Server(error)),
            None => Ok(rows),
        }
    }

    /// Ends the session politely; errors no longer matter here.
    pub fn terminate(mut self) {
        let _ = self.send(&protocol::terminate());
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.stream.write_all(bytes, self.deadline)?)
    }

    fn next_message(&mut self) -> Result<Backend, Error> {
        self.next_message_sized().map(|(message, _)| message)
    }

    /// The next backend message and the bytes it took.
    fn next_message_sized(&mut self) -> Result<(Backend, usize), Error> {
        let mut chunk = vec![0; READ_CHUNK];
        loop {
            if let Some(frame) = protocol::frame(&self.pending, MAX_MESSAGE_BYTES)? {
                let message = protocol::parse(frame.tag, frame.body)?;
                let len = frame.len;
                self.pending.drain(..len);
                return Ok((message, len));
            }
            match self.stream.read(&mut chunk, self.deadline)? {
                0 => {
                    return Err(Error::Net(net::Error::new(
                        FailureReason::Connect,
                        "the server closed the connection",
                    )));
                }
                read => self.pending.extend_from_slice(&chunk[..read]),
            }
        }
    }
}

/// 18 random bytes from wasi:random, as base64: printable and comma-free,
/// as SCRAM wants its nonce.
fn client_nonce() -> String {
    BASE64.encode(wasip2::random::random::get_random_bytes(18))
}

/// The name of an Authentication request code this client cannot answer.
fn method_name(code: i32) -> String {
    match code {
        2 => "Kerberos V5".into(),
        6 => "SCM credentials".into(),
        7 | 8 => "GSSAPI".into(),
        9 => "SSPI".into(),
        other => format!("with code {other}"),
    }
}
