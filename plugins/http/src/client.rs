//! The probe's own HTTP/1.1 client, over wasi:sockets and in-guest TLS.
//!
//! Why not wasi:http: the host makes that request itself and shows the
//! guest only the response, so a probe could not time the phases
//! (resolve, connect, tls, processing, transfer), read the server's
//! certificates, choose the address family, or trust a private CA — all of
//! which blackbox_exporter reports or allows.
//!
//! One request per connection (`Connection: close`), redirects followed as
//! Go's client does (at most 10; 301/302 turn a POST into a GET, 303 any
//! method but HEAD; credentials dropped when the host changes), every wait
//! bounded by the probe's deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::http::Url;
use lookout_plugin_sdk::net::IpPreference;
use lookout_plugin_sdk::tls::{self, ClientConfig, Stream, TlsConfig, TlsStream};
use lookout_plugin_sdk::{Error, FailureReason, Sample, net};

/// Go's limit, which blackbox_exporter keeps.
pub const MAX_REDIRECTS: u32 = 10;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// What to send and how.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: Url,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub follow_redirects: bool,
    pub ip: IpPreference,
    pub tls: &'a TlsConfig,
    /// The client configuration, built at the first https connection:
    /// loading the root certificates costs more than a plain probe.
    pub tls_client: std::cell::OnceCell<Arc<ClientConfig>>,
    /// The name the certificate must carry, when not the URL's host.
    pub server_name: Option<&'a str>,
    pub deadline: Instant,
    /// Responses with larger bodies fail (`body_size_limit`); 0 is no limit
    /// beyond the plugin's memory.
    pub body_limit: usize,
    /// Ask for a WebSocket upgrade and, on `101`, hold this dialogue.
    pub websocket: Option<&'a crate::websocket::Dialogue<'a>>,
}

/// Time spent per phase, summed over redirects (as blackbox_exporter does).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    pub resolve: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub processing: Duration,
    pub transfer: Duration,
}

/// A response, read whole.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    /// `HTTP/1.1` …, as the status line says.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The `content-length` header; `None` when absent (chunked, or
    /// delimited by the connection closing).
    pub content_length: Option<u64>,
}

impl Response {
    /// The values of header `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything one probe found out, whether or not a response came.
#[derive(Debug, Default)]
pub struct Outcome {
    pub response: Option<Response>,
    /// Why no (final) response came.
    pub error: Option<Error>,
    pub phases: Phases,
    /// The first lookup of the target's name.
    pub dns_lookup: Duration,
    /// The address the first connection went to.
    pub address: Option<IpAddr>,
    pub redirects: u32,
    /// Whether the last connection was TLS.
    pub ssl: bool,
    /// The last TLS session's samples (certificates, version, cipher).
    pub tls_samples: Vec<Sample>,
}

/// Sends `request`, following redirects, and reads the final response.
pub fn exchange(request: Request<'_>) -> Outcome {
    let mut outcome = Outcome::default();
    let mut url = request.url.clone();
    let mut method = request.method.to_string();
    let mut body = request.body;
    let mut headers = request.headers.to_vec();
    loop {
        let result = one_exchange(&request, &url, &method, &headers, body, &mut outcome);
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                outcome.error = Some(error);
                return outcome;
            }
        };
        let location = response
            .header_values("location")
            .next()
            .map(str::to_string);
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        match location {
            // Not followed (by choice, or past Go's limit of 10): the
            // redirect is the answer, and counts, as in blackbox_exporter.
            Some(_)
                if redirect
                    && (!request.follow_redirects || outcome.redirects >= MAX_REDIRECTS) =>
            {
                outcome.redirects += 1;
                outcome.response = Some(response);
                return outcome;
            }
            Some(location) if redirect => {
                let next = match url.join(&location) {
                    Ok(next) => next,
                    Err(e) => {
                        outcome.error = Some(Error::new(
                            FailureReason::Protocol,
                            format!("bad redirect ({}): {e}", response.status),
                        ));
                        return outcome;
                    }
                };
                let head = method.eq_ignore_ascii_case("HEAD");
                let post = method.eq_ignore_ascii_case("POST");
                if (response.status == 303 && !head)
                    || (matches!(response.status, 301 | 302) && post)
                {
                    method = "GET".into();
                    body = &[];
                }
                if next.host() != url.host() {
                    headers.retain(|(n, _)| {
                        !n.eq_ignore_ascii_case("authorization")
                            && !n.eq_ignore_ascii_case("cookie")
                    });
                }
                url = next;
                outcome.redirects += 1;
            }
            _ => {
                outcome.response = Some(response);
                return outcome;
            }
        }
    }
}

/// One request on a new connection; the phases and TLS details land in
/// `outcome` as they happen, so a failure still reports what was measured.
fn one_exchange(
    request: &Request<'_>,
    url: &Url,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
    outcome: &mut Outcome,
) -> Result<Response, Error> {
    let deadline = request.deadline;
    let left = || deadline.saturating_duration_since(Instant::now());
    let first = outcome.address.is_none() && outcome.redirects == 0;

    let started = Instant::now();
    let address = net::choose_address(url.host(), url.port(), request.ip, left())?;
    let lookup = started.elapsed();
    outcome.phases.resolve += lookup;
    if first {
        outcome.dns_lookup = lookup;
        outcome.address = Some(address.ip());
    }

    let started = Instant::now();
    let tcp = net::TcpStream::connect(address, left())?;
    outcome.phases.connect += started.elapsed();

    let mut stream = if url.https {
        let started = Instant::now();
        let name = tls::server_name(request.server_name.unwrap_or(url.host()))
            .map_err(|e| Error::new(FailureReason::Config, e.to_string()))?;
        let client = match request.tls_client.get() {
            Some(client) => client.clone(),
            None => {
                let client = tls::client_config(request.tls)
                    .map_err(|e| Error::new(FailureReason::Config, e.to_string()))?;
                request.tls_client.get_or_init(|| client).clone()
            }
        };
        let session = TlsStream::connect(tcp, client, name, deadline);
        outcome.phases.tls += started.elapsed();
        let session = session?;
        outcome.tls_samples = tls::session_samples(&session);
        outcome.ssl = true;
        Stream::Tls(Box::new(session))
    } else {
        outcome.ssl = false;
        Stream::Plain(tcp)
    };

    let upgrade = request.websocket.map(|d| d.key.as_str());
    stream.write_all(&request_head(url, method, headers, body, upgrade), deadline)?;
    let sent = Instant::now();
    let mut reader = Reader {
        stream,
        buffer: Vec::new(),
        deadline,
        first_byte: None,
    };
    let head = loop {
        let head = reader.head()?;
        // Interim responses (100 Continue …) precede the real one.
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
    };
    let first_byte = reader.first_byte.unwrap_or_else(Instant::now);
    outcome.phases.processing += first_byte.saturating_duration_since(sent);
    if let (Some(dialogue), 101) = (request.websocket, head.status) {
        let accept = head
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, v)| v.clone());
        let pending = std::mem::take(&mut reader.buffer);
        let talked = crate::websocket::converse(
            &mut reader.stream,
            pending,
            accept.as_deref(),
            dialogue,
            deadline,
        );
        outcome.phases.transfer += first_byte.elapsed();
        let mut response = Response {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body: Vec::new(),
            content_length: None,
        };
        return match talked {
            Ok(message) => {
                response.body = message.unwrap_or_default().into_bytes();
                Ok(response)
            }
            Err(e) => {
                // The upgrade happened: keep its status beside the failure.
                outcome.response = Some(response);
                Err(e)
            }
        };
    }
    let response = reader.body(head, method, request.body_limit);
    outcome.phases.transfer += first_byte.elapsed();
    response
}

/// The request line and headers (and body): `Host` from the URL unless the
/// configuration sets one, one request per connection — or, with an
/// upgrade key, a WebSocket handshake.
fn request_head(
    url: &Url,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
    upgrade_key: Option<&str>,
) -> Vec<u8> {
    let mut head = format!("{method} {} HTTP/1.1\r\n", url.path_with_query);
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", url.authority));
    }
    if !has("user-agent") {
        head.push_str(concat!(
            "User-Agent: lookout/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let sends_body = !body.is_empty()
        || ["POST", "PUT", "PATCH"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method));
    if sends_body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    match upgrade_key {
        Some(key) => head.push_str(&format!(
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        )),
        None => head.push_str("Connection: close\r\n\r\n"),
    }
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A response head: status line and headers.
struct Head {
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
}

/// Reads a response off a stream, keeping what came past what was asked for.
struct Reader {
    stream: Stream,
    buffer: Vec<u8>,
    deadline: Instant,
    /// When the response's first byte arrived (the end of `processing`).
    first_byte: Option<Instant>,
}

impl Reader {
    /// Reads more; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, Error> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk, self.deadline)?;
        if n > 0 && self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn head(&mut self) -> Result<Head, Error> {
        let end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(protocol("response head larger than 64 KiB"));
            }
            if !self.fill()? {
                return Err(Error::new(
                    FailureReason::Connect,
                    if self.buffer.is_empty() {
                        "the server closed the connection without answering".to_string()
                    } else {
                        "the server closed the connection in the response head".to_string()
                    },
                ));
            }
        };
        let text = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        self.buffer.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/") {
            return Err(protocol(&format!("not an HTTP response: {status_line:?}")));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| protocol(&format!("bad status line {status_line:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Head {
            status,
            version: version.to_string(),
            headers,
        })
    }

    fn body(mut self, head: Head, method: &str, limit: usize) -> Result<Response, Error> {
        let header = |name: &str| {
            head.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let content_length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let no_body = method.eq_ignore_ascii_case("HEAD")
            || matches!(head.status, 204 | 304)
            || (100..200).contains(&head.status);
        let too_big = |n: usize| limit > 0 && n > limit;
        let body = if no_body {
            Vec::new()
        } else if chunked {
            self.chunked(limit)?
        } else if let Some(length) = content_length {
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if too_big(length) {
                return Err(body_limit(limit));
            }
            while self.buffer.len() < length {
                if !self.fill()? {
                    return Err(protocol("the connection closed before the body's end"));
                }
            }
            self.buffer.truncate(length);
            std::mem::take(&mut self.buffer)
        } else {
            while self.fill()? {
                if too_big(self.buffer.len()) {
                    return Err(body_limit(limit));
                }
            }
            std::mem::take(&mut self.buffer)
        };
        if too_big(body.len()) {
            return Err(body_limit(limit));
        }
        Ok(Response {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body,
            content_length,
        })
    }

    fn chunked(&mut self, limit: usize) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buffer, b"\r\n") {
                    break i;
                }
                if !self.fill()? {
                    return Err(protocol("the connection closed inside a chunk"));
                }
            };
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| protocol(&format!("bad chunk size {size_text:?}")))?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                // Trailers are not needed; the connection closes after them.
                return Ok(body);
            }
            if limit > 0 && body.len() + size > limit {
                return Err(body_limit(limit));
            }
            while self.buffer.len() < size + 2 {
                if !self.fill()? {
                    return Err(protocol("the connection closed inside a chunk"));
                }
            }
            body.extend_from_slice(&self.buffer[..size]);
            self.buffer.drain(..size + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn protocol(message: &str) -> Error {
    Error::new(FailureReason::Protocol, message.to_string())
}

fn body_limit(limit: usize) -> Error {
    Error::new(
        FailureReason::Body,
        format!("the body is larger than body_size_limit ({limit} bytes)"),
    )
}
