//! A small blocking HTTP client over wasi:http's `outgoing-handler`.
//!
//! ```no_run
//! use std::time::Duration;
//! use lookout_plugin_sdk::http;
//!
//! # fn main() -> Result<(), http::Error> {
//! let response = http::get("https://example.com/health")?;
//! println!("{} ({} bytes)", response.status, response.body.len());
//!
//! let response = http::Request::new("POST", "https://example.com/hook")
//!     .header("content-type", "application/json")
//!     .body(r#"{"ok": true}"#)
//!     .timeout(Duration::from_secs(5))
//!     .follow_redirects(10)
//!     .send()?;
//! # Ok(()) }
//! ```
//!
//! The host decides where requests may go: a request to a host the plugin
//! was not granted fails with [`FailureReason::Denied`]. Every failure comes
//! as an [`Error`] carrying the [`FailureReason`] a probe reports, so a probe
//! turns one into its report with `ProbeReport::from(error)`.
//!
//! # Timeouts
//!
//! A request's timeout covers the whole exchange, redirects and body
//! included. It defaults to the time left in the current plugin invocation
//! (the `timeout` the host passed to `probe`, `collect` or `notify`), so a
//! plugin that sets none still finishes in time and reports
//! [`FailureReason::Timeout`] instead of being killed by the host. The
//! client enforces it itself and also hands it to the host as wasi:http
//! request options (connect, first byte, between bytes); an option the host
//! refuses is left out.
//!
//! # Configuration
//!
//! [`HttpClientConfig`] is the part of Prometheus' `http_config` a plugin
//! can honour (credentials and whether to follow redirects), to embed in a
//! plugin's configuration.

mod client_config;
mod status;
mod url;

use std::borrow::Cow;
use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{OutputStream, StreamError};

pub use client_config::{Authorization, BasicAuth, HttpClientConfig};
pub use status::StatusCodes;
pub use url::Url;

pub use crate::Error;
use crate::FailureReason;

/// Largest response body [`Request::send`] reads unless told otherwise
/// ([`Request::max_body_size`]): 10 MiB. The body is held in the plugin's
/// memory, which the host caps; a larger body fails with
/// [`FailureReason::Body`] instead of exhausting it.
pub const DEFAULT_MAX_BODY_SIZE: usize = 10 * 1024 * 1024;

/// Bytes asked for per read of a response body.
const READ_CHUNK: u64 = 64 * 1024;

thread_local! {
    /// When the current plugin invocation must be over, set by the
    /// `export_*!` adapters; the default deadline of every request.
    static INVOCATION_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Records the end of the current invocation (`None` when it is over).
pub(crate) fn set_invocation_deadline(deadline: Option<Instant>) {
    INVOCATION_DEADLINE.with(|cell| cell.set(deadline));
}

/// `GET url`, with the default timeout and no redirects followed.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

/// An HTTP request being built; [`send`](Self::send) performs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    max_body_size: usize,
    max_redirects: u32,
}

impl Request {
    /// A request with `method` (`"GET"`, `"POST"` …, any case) to `url`
    /// (`http://` or `https://`).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_redirects: 0,
        }
    }

    /// `Request::new("GET", url)`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// `Request::new("POST", url)`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header. wasi:http forbids a few (`host`, `connection`,
    /// `transfer-encoding` …): sending one fails with [`FailureReason::Config`].
    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// Adds every `(name, value)` pair of `headers`, in order.
    pub fn headers<K, V>(mut self, headers: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: AsRef<[u8]>,
    {
        for (name, value) in headers {
            self = self.header(name, value);
        }
        self
    }

    /// Sets the body; `content-length` is added unless a header sets it.
    ///
    /// An empty body is no body for methods that do not expect one (`GET`,
    /// `HEAD`, `DELETE` …): nothing is sent, not even `content-length: 0`.
    /// `POST`, `PUT` and `PATCH` send `content-length: 0`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Bounds the whole exchange (see the [module docs](self#timeouts)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Largest body to read, in bytes ([`DEFAULT_MAX_BODY_SIZE`] by default).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Follows up to `max` redirects (301, 302, 303, 307, 308); none by
    /// default. 303 (except after a HEAD), and 301/302 after a POST, continue
    /// as a GET without body; `authorization` and `cookie` headers are dropped when a redirect
    /// leaves the original scheme and host.
    pub fn follow_redirects(mut self, max: u32) -> Self {
        self.max_redirects = max;
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, Error> {
        let timeout = self.timeout.or_else(|| {
            INVOCATION_DEADLINE
                .with(Cell::get)
                .map(|at| at.saturating_duration_since(Instant::now()))
        });
        let deadline = Deadline::after(timeout);
        let Request {
            mut method,
            url,
            mut headers,
            mut body,
            max_body_size,
            max_redirects,
            ..
        } = self;
        let mut url = Url::parse(&url)?;
        if body.as_ref().is_some_and(Vec::is_empty) && !expects_body(&method) {
            body = None;
        }
        let mut redirects = 0;
        loop {
            let response = exchange(&method, &url, &headers, body.as_deref(), &deadline)?;
            let status = response.status();
            let response_headers = {
                let fields = response.headers();
                fields.entries()
            };
            let location = find_header(&response_headers, "location");
            match location {
                Some(location) if is_redirect(status) && redirects < max_redirects => {
                    let next = url
                        .join(&String::from_utf8_lossy(location))
                        .map_err(|error| {
                            let message = format!("bad redirect ({status}): {}", error.message());
                            Error::new(FailureReason::Protocol, message)
                        })?;
                    drop(response);
                    let head = method.eq_ignore_ascii_case("HEAD");
                    let post = method.eq_ignore_ascii_case("POST");
                    if (status == 303 && !head) || (matches!(status, 301 | 302) && post) {
                        method = "GET".to_owned();
                        body = None;
                        headers.retain(|(name, _)| {
                            !name.eq_ignore_ascii_case("content-length")
                                && !name.eq_ignore_ascii_case("content-type")
                        });
                    }
                    if next.https != url.https || next.authority != url.authority {
                        headers.retain(|(name, _)| {
                            !name.eq_ignore_ascii_case("authorization")
                                && !name.eq_ignore_ascii_case("cookie")
                        });
                    }
                    url = next;
                    redirects += 1;
                }
                _ => {
                    let body = read_body(&response, &deadline, max_body_size)?;
                    return Ok(Response {
                        status,
                        headers: response_headers,
                        body,
                        url: url.to_string(),
                        redirects,
                    });
                }
            }
        }
    }
}

/// Whether an empty body of a `method` request is still sent (as
/// `content-length: 0`).
fn expects_body(method: &str) -> bool {
    ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fn find_header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_slice())
}

/// A response, read whole.
///
/// `Response::default()` is the empty response with status 0, handy for a
/// probe that reports the same samples whether or not an answer came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names as the server sent them, in order, repeated names kept.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The URL that answered (differs from the request's after redirects).
    pub url: String,
    /// How many redirects were followed.
    pub redirects: u32,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// The first value of header `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Length of the content: the `content-length` header when the server
    /// sent a valid one (a `HEAD` response has no body to count), else the
    /// number of body bytes read.
    pub fn content_length(&self) -> u64 {
        self.header_str("content-length")
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(self.body.len() as u64)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..=299).contains(&self.status)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON; failure is [`FailureReason::Body`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Error::new(
                FailureReason::Body,
                format!("response body is not the expected JSON: {error}"),
            )
        })
    }
}

impl Error {
    fn other(message: impl Into<String>) -> Self {
        Self::new(FailureReason::Other, message)
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        use FailureReason as R;
        let (reason, message): (FailureReason, Cow<'static, str>) = match code {
            ErrorCode::DnsTimeout => (R::Dns, "DNS lookup timed out".into()),
            ErrorCode::DnsError(payload) => {
                let detail = [
                    payload.rcode,
                    payload.info_code.map(|code| format!("info code {code}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
                let message = if detail.is_empty() {
                    "DNS lookup failed".to_owned()
                } else {
                    format!("DNS lookup failed: {detail}")
                };
                (R::Dns, message.into())
            }
            ErrorCode::DestinationNotFound => (R::Dns, "destination not found".into()),
            ErrorCode::DestinationUnavailable => (R::Connect, "destination unavailable".into()),
            ErrorCode::DestinationIpProhibited => {
                (R::Denied, "destination IP address prohibited".into())
            }
            ErrorCode::DestinationIpUnroutable => {
                (R::Connect, "destination IP address unroutable".into())
            }
            ErrorCode::ConnectionRefused => (R::Connect, "connection refused".into()),
            ErrorCode::ConnectionTerminated => (R::Connect, "connection terminated".into()),
            ErrorCode::ConnectionTimeout => (R::Timeout, "timed out connecting".into()),
            ErrorCode::ConnectionReadTimeout => {
                (R::Timeout, "timed out waiting for the response".into())
            }
            ErrorCode::ConnectionWriteTimeout => {
                (R::Timeout, "timed out sending the request".into())
            }
            ErrorCode::ConnectionLimitReached => (R::Connect, "connection limit reached".into()),
            ErrorCode::TlsProtocolError => (R::Tls, "TLS handshake failed".into()),
            ErrorCode::TlsCertificateError => (R::Tls, "TLS certificate rejected".into()),
            ErrorCode::TlsAlertReceived(payload) => {
                let message = match (payload.alert_message, payload.alert_id) {
                    (Some(message), _) => format!("TLS alert received: {message}"),
                    (None, Some(id)) => format!("TLS alert {id} received"),
                    (None, None) => "TLS alert received".to_owned(),
                };
                (R::Tls, message.into())
            }
            ErrorCode::HttpRequestDenied => (
                R::Denied,
                "request denied: the plugin has no http grant for this host".into(),
            ),
            ErrorCode::HttpRequestMethodInvalid => (R::Config, "invalid HTTP method".into()),
            ErrorCode::HttpRequestUriInvalid => (R::Config, "invalid request URI".into()),
            ErrorCode::HttpRequestUriTooLong => (R::Config, "request URI too long".into()),
            ErrorCode::HttpRequestLengthRequired => {
                (R::Protocol, "the server requires a content-length".into())
            }
            ErrorCode::HttpRequestBodySize(_) => (
                R::Protocol,
                "request body size does not match content-length".into(),
            ),
            ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
                (R::Protocol, "request headers too large".into())
            }
            ErrorCode::HttpRequestTrailerSectionSize(_) | ErrorCode::HttpRequestTrailerSize(_) => {
                (R::Protocol, "request trailers too large".into())
            }
            ErrorCode::HttpResponseIncomplete => (R::Protocol, "response incomplete".into()),
            ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => {
                (R::Header, "response headers too large".into())
            }
            ErrorCode::HttpResponseBodySize(_) => (
                R::Body,
                "response body size does not match content-length".into(),
            ),
            ErrorCode::HttpResponseTrailerSectionSize(_)
            | ErrorCode::HttpResponseTrailerSize(_) => {
                (R::Protocol, "response trailers too large".into())
            }
            ErrorCode::HttpResponseTransferCoding(coding) => (
                R::Protocol,
                format!(
                    "unsupported transfer coding {}",
                    coding.as_deref().unwrap_or("?")
                )
                .into(),
            ),
            ErrorCode::HttpResponseContentCoding(coding) => (
                R::Protocol,
                format!(
                    "unsupported content coding {}",
                    coding.as_deref().unwrap_or("?")
                )
                .into(),
            ),
            ErrorCode::HttpResponseTimeout => (R::Timeout, "timed out reading the response".into()),
            ErrorCode::HttpUpgradeFailed => (R::Protocol, "HTTP upgrade failed".into()),
            ErrorCode::HttpProtocolError => (R::Protocol, "HTTP protocol error".into()),
            ErrorCode::LoopDetected => (R::Protocol, "loop detected".into()),
            ErrorCode::ConfigurationError => {
                (R::Other, "the host's HTTP client is misconfigured".into())
            }
            ErrorCode::InternalError(Some(message)) => {
                (R::Other, format!("host error: {message}").into())
            }
            ErrorCode::InternalError(None) => (R::Other, "host error".into()),
        };
        Error::new(reason, message)
    }
}

/// The end of a request's time budget, on the monotonic clock.
struct Deadline {
    at: Option<monotonic_clock::Instant>,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Option<Duration>) -> Self {
        let at = timeout.map(|timeout| {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            monotonic_clock::now().saturating_add(nanos)
        });
        Self {
            at,
            timeout: timeout.unwrap_or_default(),
        }
    }

    fn error(&self) -> Error {
        Error::new(
            FailureReason::Timeout,
            format!("timed out after {:?}", self.timeout),
        )
    }

    /// Blocks until `pollable` is ready, or fails when the deadline passes.
    fn wait(&self, pollable: &Pollable) -> Result<(), Error> {
        let Some(at) = self.at else {
            pollable.block();
            return Ok(());
        };
        if pollable.ready() {
            return Ok(());
        }
        let timer = monotonic_clock::subscribe_instant(at);
        if poll::poll(&[pollable, &timer]).contains(&0) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// The remaining time as wasi:http request options; each option the host
    /// refuses is left unset.
    fn request_options(&self) -> Option<RequestOptions> {
        let at = self.at?;
        let remaining = at.saturating_sub(monotonic_clock::now());
        if remaining == 0 {
            return None;
        }
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(remaining));
        let _ = options.set_first_byte_timeout(Some(remaining));
        let _ = options.set_between_bytes_timeout(Some(remaining));
        Some(options)
    }
}

fn method_of(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(method.to_owned()),
    }
}

fn header_error(headers: &[(String, Vec<u8>)], error: HeaderError) -> Error {
    // Find the culprit to name it: the error itself does not say which.
    let culprit = headers
        .iter()
        .find(|header| Fields::from_list(std::slice::from_ref(*header)).is_err())
        .map(|(name, _)| name.as_str())
        .unwrap_or("?");
    let why = match error {
        HeaderError::InvalidSyntax => "is not a valid header",
        HeaderError::Forbidden => "is forbidden by wasi:http",
        HeaderError::Immutable => "cannot be set",
    };
    Error::new(FailureReason::Config, format!("header `{culprit}` {why}"))
}

/// Builds the wasi:http request; the body resource is taken only when there
/// is a body to write.
fn build_request(
    method: &str,
    url: &Url,
    headers: &[(String, Vec<u8>)],
    body: Option<&[u8]>,
) -> Result<(OutgoingRequest, Option<OutgoingBody>), Error> {
    let mut headers = headers.to_vec();
    if let Some(body) = body
        && find_header(&headers, "content-length").is_none()
    {
        headers.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&headers).map_err(|error| header_error(&headers, error))?;
    let request = OutgoingRequest::new(fields);
    let invalid =
        |what: &str| Error::new(FailureReason::Config, format!("invalid {what} in `{url}`"));
    request.set_method(&method_of(method)).map_err(|()| {
        Error::new(
            FailureReason::Config,
            format!("invalid HTTP method `{method}`"),
        )
    })?;
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| invalid("path"))?;
    let outgoing_body = match body {
        Some(_) => Some(
            request
                .body()
                .map_err(|()| Error::other("request body already taken"))?,
        ),
        None => None,
    };
    Ok((request, outgoing_body))
}

/// Sends one request and waits for the response head.
fn exchange(
    method: &str,
    url: &Url,
    headers: &[(String, Vec<u8>)],
    body: Option<&[u8]>,
    deadline: &Deadline,
) -> Result<IncomingResponse, Error> {
    let (request, mut outgoing_body) = build_request(method, url, headers, body)?;
    let future = match outgoing_handler::handle(request, deadline.request_options()) {
        Ok(future) => future,
        // A host may refuse request options wholesale: send without them
        // (the deadline is still enforced here).
        Err(ErrorCode::ConfigurationError) if deadline.at.is_some() => {
            let (request, retry_body) = build_request(method, url, headers, body)?;
            outgoing_body = retry_body;
            outgoing_handler::handle(request, None)?
        }
        Err(code) => return Err(code.into()),
    };
    if let (Some(outgoing_body), Some(bytes)) = (outgoing_body, body)
        && let Err(write_error) = write_body(outgoing_body, bytes, deadline)
    {
        // A failed write usually means a failed connection, which the
        // response future explains better.
        deadline.wait(&future.subscribe())?;
        return Err(match future.get() {
            Some(Ok(Err(code))) => code.into(),
            _ => write_error,
        });
    }
    deadline.wait(&future.subscribe())?;
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(code.into()),
        Some(Err(())) | None => Err(Error::other("wasi:http response future misbehaved")),
    }
}

fn stream_error(error: StreamError) -> Error {
    match error {
        StreamError::Closed => Error::new(
            FailureReason::Connect,
            "connection closed before the exchange finished",
        ),
        StreamError::LastOperationFailed(error) => {
            match wasip2::http::types::http_error_code(&error) {
                Some(code) => code.into(),
                None => Error::other(error.to_debug_string()),
            }
        }
    }
}

fn write_body(outgoing: OutgoingBody, bytes: &[u8], deadline: &Deadline) -> Result<(), Error> {
    {
        let stream: OutputStream = outgoing
            .write()
            .map_err(|()| Error::other("request body stream already taken"))?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let permitted = stream.check_write().map_err(stream_error)?;
            if permitted == 0 {
                deadline.wait(&stream.subscribe())?;
                continue;
            }
            let n = rest
                .len()
                .min(usize::try_from(permitted).unwrap_or(usize::MAX));
            stream.write(&rest[..n]).map_err(stream_error)?;
            rest = &rest[n..];
        }
        match stream.flush() {
            Ok(()) => {
                deadline.wait(&stream.subscribe())?;
                flushed(stream.check_write())?;
            }
            closed => flushed(closed.map(|()| 0))?,
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(Error::from)
}

/// Whether a request body is on its way, from what its stream says after
/// the last write. wasmtime's body stream reports `closed` as soon as the
/// HTTP client has taken a body of known length whole and let go of the
/// stream, which races with this check: `closed` here is success
/// (`finish` still checks the length, and a connection that broke shows
/// in the response).
fn flushed(after_flush: Result<u64, StreamError>) -> Result<(), Error> {
    match after_flush {
        Ok(_) | Err(StreamError::Closed) => Ok(()),
        Err(error) => Err(stream_error(error)),
    }
}

fn read_body(
    response: &IncomingResponse,
    deadline: &Deadline,
    max: usize,
) -> Result<Vec<u8>, Error> {
    let incoming = response
        .consume()
        .map_err(|()| Error::other("response body already taken"))?;
    let stream = incoming
        .stream()
        .map_err(|()| Error::other("response body stream already taken"))?;
    let mut body = Vec::new();
    loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => deadline.wait(&stream.subscribe())?,
            Ok(chunk) => {
                if body.len() + chunk.len() > max {
                    return Err(Error::new(
                        FailureReason::Body,
                        format!("response body larger than {max} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(error) => return Err(stream_error(error)),
        }
    }
    drop(stream);
    drop(IncomingBody::finish(incoming));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasip2::http::types::{DnsErrorPayload, FieldSizePayload, TlsAlertReceivedPayload};

    fn mapped(code: ErrorCode) -> (FailureReason, String) {
        let error = Error::from(code);
        (error.reason(), error.message().to_owned())
    }

    #[test]
    fn error_codes_map_to_failure_reasons() {
        use FailureReason as R;
        let field = || FieldSizePayload {
            field_name: None,
            field_size: None,
        };
        let cases = [
            (ErrorCode::DnsTimeout, R::Dns),
            (
                ErrorCode::DnsError(DnsErrorPayload {
                    rcode: None,
                    info_code: None,
                }),
                R::Dns,
            ),
            (ErrorCode::DestinationNotFound, R::Dns),
            (ErrorCode::DestinationUnavailable, R::Connect),
            (ErrorCode::DestinationIpProhibited, R::Denied),
            (ErrorCode::DestinationIpUnroutable, R::Connect),
            (ErrorCode::ConnectionRefused, R::Connect),
            (ErrorCode::ConnectionTerminated, R::Connect),
            (ErrorCode::ConnectionTimeout, R::Timeout),
            (ErrorCode::ConnectionReadTimeout, R::Timeout),
            (ErrorCode::ConnectionWriteTimeout, R::Timeout),
            (ErrorCode::ConnectionLimitReached, R::Connect),
            (ErrorCode::TlsProtocolError, R::Tls),
            (ErrorCode::TlsCertificateError, R::Tls),
            (
                ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                    alert_id: Some(42),
                    alert_message: None,
                }),
                R::Tls,
            ),
            (ErrorCode::HttpRequestDenied, R::Denied),
            (ErrorCode::HttpRequestMethodInvalid, R::Config),
            (ErrorCode::HttpRequestUriInvalid, R::Config),
            (ErrorCode::HttpRequestUriTooLong, R::Config),
            (ErrorCode::HttpRequestLengthRequired, R::Protocol),
            (ErrorCode::HttpRequestBodySize(Some(3)), R::Protocol),
            (ErrorCode::HttpRequestHeaderSize(None), R::Protocol),
            (ErrorCode::HttpRequestTrailerSize(field()), R::Protocol),
            (ErrorCode::HttpResponseIncomplete, R::Protocol),
            (ErrorCode::HttpResponseHeaderSize(field()), R::Header),
            (ErrorCode::HttpResponseHeaderSectionSize(None), R::Header),
            (ErrorCode::HttpResponseBodySize(None), R::Body),
            (ErrorCode::HttpResponseTransferCoding(None), R::Protocol),
            (
                ErrorCode::HttpResponseContentCoding(Some("br".into())),
                R::Protocol,
            ),
            (ErrorCode::HttpResponseTimeout, R::Timeout),
            (ErrorCode::HttpUpgradeFailed, R::Protocol),
            (ErrorCode::HttpProtocolError, R::Protocol),
            (ErrorCode::LoopDetected, R::Protocol),
            (ErrorCode::ConfigurationError, R::Other),
            (ErrorCode::InternalError(Some("boom".into())), R::Other),
        ];
        for (code, reason) in cases {
            let debug = format!("{code:?}");
            assert_eq!(mapped(code).0, reason, "{debug}");
        }
    }

    #[test]
    fn error_messages_are_human() {
        assert_eq!(mapped(ErrorCode::ConnectionRefused).1, "connection refused");
        assert_eq!(
            mapped(ErrorCode::DnsError(DnsErrorPayload {
                rcode: Some("NXDOMAIN".into()),
                info_code: Some(3),
            }))
            .1,
            "DNS lookup failed: NXDOMAIN, info code 3"
        );
        assert_eq!(
            mapped(ErrorCode::InternalError(Some("boom".into()))).1,
            "host error: boom"
        );
        assert!(
            mapped(ErrorCode::HttpRequestDenied)
                .1
                .starts_with("request denied")
        );
    }

    #[test]
    fn methods_map_case_insensitively() {
        assert!(matches!(method_of("get"), Method::Get));
        assert!(matches!(method_of("HEAD"), Method::Head));
        assert!(matches!(method_of("Patch"), Method::Patch));
        assert!(matches!(method_of("PURGE"), Method::Other(m) if m == "PURGE"));
    }

    #[test]
    fn response_helpers() {
        let response = Response {
            status: 201,
            headers: vec![
                ("Content-Length".into(), b" 12 ".to_vec()),
                ("X-Bin".into(), vec![0xff]),
                ("x-twice".into(), b"1".to_vec()),
                ("X-Twice".into(), b"2".to_vec()),
            ],
            body: br#"{"ok": true}"#.to_vec(),
            url: "http://a/".into(),
            redirects: 0,
        };
        assert!(response.is_success());
        assert_eq!(response.content_length(), 12);
        let unsized_response = Response {
            body: vec![1, 2, 3],
            ..Response::default()
        };
        assert_eq!(unsized_response.content_length(), 3);
        assert_eq!(response.header("x-bin"), Some(&[0xff][..]));
        assert_eq!(response.header_str("x-bin"), None);
        assert_eq!(response.header_str("X-TWICE"), Some("1"));
        assert_eq!(response.text(), r#"{"ok": true}"#);
        #[derive(serde::Deserialize)]
        struct Ok {
            ok: bool,
        }
        assert!(response.json::<Ok>().unwrap().ok);
        assert_eq!(
            response.json::<u32>().unwrap_err().reason(),
            FailureReason::Body
        );
    }

    #[test]
    fn request_builder_defaults() {
        let request = Request::get("http://a/").header("k", "v").body("b");
        assert_eq!(request.method, "GET");
        assert_eq!(request.max_body_size, DEFAULT_MAX_BODY_SIZE);
        assert_eq!(request.max_redirects, 0);
        assert_eq!(request.timeout, None);
        assert_eq!(request.headers, [("k".to_owned(), b"v".to_vec())]);
        assert_eq!(request.body.as_deref(), Some(&b"b"[..]));

        let request = Request::post("http://a/").headers([("a", "1"), ("b", "2")]);
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers.len(), 2);
        assert_eq!(request.headers[1], ("b".to_owned(), b"2".to_vec()));
    }

    #[test]
    fn a_body_stream_closed_after_the_last_write_is_sent() {
        // Regression: POSTs failed at random with "connection closed before
        // the exchange finished" when the host's HTTP client let go of the
        // body stream before the plugin's last check.
        assert_eq!(flushed(Err(StreamError::Closed)), Ok(()));
        assert_eq!(flushed(Ok(4096)), Ok(()));
    }

    #[test]
    fn only_post_put_patch_send_empty_bodies() {
        for method in ["POST", "put", "Patch"] {
            assert!(expects_body(method), "{method}");
        }
        for method in ["GET", "HEAD", "DELETE", "OPTIONS", "get"] {
            assert!(!expects_body(method), "{method}");
        }
    }
}
