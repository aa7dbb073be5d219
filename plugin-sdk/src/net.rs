//! TCP clients over wasi:sockets, with deadlines and honest errors.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use lookout_plugin_sdk::net;
//!
//! # fn main() -> Result<(), net::Error> {
//! let deadline = Instant::now() + Duration::from_secs(5);
//! let addresses = net::resolve("localhost", 6379, Duration::from_secs(2))?;
//! let mut stream = net::TcpStream::connect(addresses[0], Duration::from_secs(2))?;
//! stream.write_all(b"PING\r\n", deadline)?;
//! let mut reply = [0; 64];
//! let read = stream.read(&mut reply, deadline)?;
//! # Ok(()) }
//! ```
//!
//! Why not `std::net`: on `wasm32-wasip2`, `TcpStream::connect_timeout`
//! goes through wasi-libc's emulation of a nonblocking `connect` plus
//! `poll`, which can miss the socket's error and report a refused connection
//! as established. This module calls wasi:sockets itself: it waits on the
//! socket's pollable and takes the result of `finish-connect`, which is the
//! real one.
//!
//! Every wait is bounded: [`TcpStream::connect`] and [`resolve`] take a
//! timeout, [`TcpStream::read`] and [`TcpStream::write_all`] a deadline, and
//! nothing blocks past it; running out of time is [`FailureReason::Timeout`].
//!
//! The host decides where a plugin may connect: an address the plugin was not
//! granted (or any address, without a tcp grant) fails with
//! [`FailureReason::Denied`]. Name lookup is enabled only for plugins with a
//! tcp, udp or icmp grant; without one, resolving a name fails with
//! [`FailureReason::Dns`] (the host answers `permanent-resolver-failure`).
//! Every failure is an [`Error`] carrying the [`FailureReason`] a probe
//! reports, so a probe turns one into its report with
//! `ProbeReport::from(error)`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup;
use wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

pub use crate::Error;
use crate::FailureReason;

/// Bytes written per `write` call at most; wasi:io permits larger writes
/// only in steps anyway.
const WRITE_CHUNK: usize = 64 * 1024;

impl Error {
    /// `what` ran out of time.
    fn timeout(what: &str) -> Self {
        Self::new(FailureReason::Timeout, format!("{what}: timed out"))
    }

    /// `what` failed with a wasi:sockets error code.
    fn code(what: &str, code: ErrorCode) -> Self {
        let (reason, detail) = classify(code);
        Self::new(reason, format!("{what}: {detail}"))
    }

    /// `what` failed on a stream.
    fn stream(what: &str, error: StreamError) -> Self {
        match error {
            StreamError::Closed => Self::new(
                FailureReason::Connect,
                format!("{what}: connection closed by the peer"),
            ),
            StreamError::LastOperationFailed(error) => {
                let (reason, detail) = classify_stream_error(&error.to_debug_string());
                Self::new(reason, format!("{what}: {detail}"))
            }
        }
    }
}

impl Error {
    /// Whether the failure is the job's rather than the target's: the
    /// sandbox refused the address, or the configuration is wrong. An
    /// exporter fails the invocation for these, so the scheduler backs off
    /// and shows the error as the plugin's; for any other failure it reports
    /// the target down (`*_up 0`), because an `Err` stores no samples and an
    /// `up == 0` alert would only see the series go stale.
    pub fn is_job_error(&self) -> bool {
        matches!(self.reason(), FailureReason::Denied | FailureReason::Config)
    }
}

/// The failure reason and a human explanation of a wasi:sockets error code.
pub(crate) fn classify(code: ErrorCode) -> (FailureReason, &'static str) {
    use FailureReason as R;
    match code {
        ErrorCode::ConnectionRefused => (R::Connect, "connection refused"),
        ErrorCode::ConnectionReset => (R::Connect, "connection reset"),
        ErrorCode::ConnectionAborted => (R::Connect, "connection aborted"),
        ErrorCode::RemoteUnreachable => (R::Connect, "remote unreachable"),
        // What wasmtime answers when its socket policy refuses: creating a
        // socket without any tcp grant, or connecting to an address outside
        // the grants.
        ErrorCode::AccessDenied => (
            R::Denied,
            "denied by the sandbox (no tcp grant for this address)",
        ),
        ErrorCode::Timeout => (R::Timeout, "timed out"),
        ErrorCode::NameUnresolvable => (R::Dns, "name not resolved"),
        ErrorCode::TemporaryResolverFailure => (R::Dns, "temporary resolver failure"),
        ErrorCode::PermanentResolverFailure => (
            R::Dns,
            "name lookup failed (permanent resolver failure; the host enables lookup only \
             for plugins granted tcp, udp or icmp)",
        ),
        ErrorCode::InvalidArgument => (R::Other, "invalid argument"),
        ErrorCode::NotSupported => (R::Other, "not supported by the host"),
        ErrorCode::OutOfMemory => (R::Other, "out of memory"),
        ErrorCode::NewSocketLimit => (R::Other, "too many sockets"),
        ErrorCode::AddressNotBindable => (R::Other, "local address not bindable"),
        ErrorCode::AddressInUse => (R::Other, "local address in use"),
        ErrorCode::ConcurrencyConflict => (R::Other, "concurrency conflict"),
        ErrorCode::NotInProgress => (R::Other, "operation not in progress"),
        ErrorCode::WouldBlock => (R::Other, "would block"),
        ErrorCode::InvalidState => (R::Other, "invalid socket state"),
        ErrorCode::DatagramTooLarge => (R::Other, "datagram too large"),
        ErrorCode::Unknown => (R::Other, "unknown error"),
    }
}

/// Classifies a stream error by its debug text: wasi:io errors of a socket
/// carry no error code a guest can read (wasi:sockets'
/// `network-error-code` is not in 0.2), but hosts name the code in the text
/// (wasmtime: `ConnectionReset`). Anything unrecognised is a connection
/// failure, explained by the host's text.
fn classify_stream_error(debug: &str) -> (FailureReason, String) {
    use FailureReason as R;
    let key: String = debug
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let known = [
        ("connectionreset", R::Connect, "connection reset"),
        ("connectionaborted", R::Connect, "connection aborted"),
        ("connectionbroken", R::Connect, "connection broken"),
        ("remoteunreachable", R::Connect, "remote unreachable"),
        ("timeout", R::Timeout, "timed out"),
        ("timedout", R::Timeout, "timed out"),
    ];
    match known.iter().find(|(needle, ..)| key.contains(needle)) {
        Some(&(_, reason, text)) => (reason, text.to_owned()),
        None if debug.trim().is_empty() => (R::Connect, "connection failed".into()),
        None => (R::Connect, format!("connection failed: {}", debug.trim())),
    }
}

/// Resolves `host` to socket addresses with `port`, in the order the host's
/// resolver gives them, within `timeout`.
///
/// An IP literal (`127.0.0.1`, `::1`, `[::1]`) is returned as is, without a
/// lookup. A name that cannot be resolved, or no address at all, is
/// [`FailureReason::Dns`].
pub fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, Error> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let what = format!("resolving {host}");
    if host.is_empty() {
        return Err(Error::new(
            FailureReason::Config,
            format!("{what}: empty host name"),
        ));
    }
    let deadline = deadline_after(timeout);
    let network = instance_network();
    let stream = ip_name_lookup::resolve_addresses(&network, host)
        .map_err(|code| Error::code(&what, code))?;
    let mut addresses = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(address)) => addresses.push(SocketAddr::new(ip_addr(address), port)),
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => wait(&stream.subscribe(), deadline, &what)?,
            Err(code) => return Err(Error::code(&what, code)),
        }
    }
    if addresses.is_empty() {
        return Err(Error::new(
            FailureReason::Dns,
            format!("{what}: no address"),
        ));
    }
    Ok(addresses)
}

/// `host` as an IP address, if it is a literal (IPv6 with or without
/// brackets).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Which address family to use when a name has both: blackbox_exporter's
/// `preferred_ip_protocol` (`ip6` by default, as there) and
/// `ip_protocol_fallback` (default true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpPreference {
    pub prefer_v6: bool,
    pub fallback: bool,
}

impl Default for IpPreference {
    fn default() -> Self {
        IpPreference {
            prefer_v6: true,
            fallback: true,
        }
    }
}

impl IpPreference {
    /// From blackbox_exporter's option values; a bad protocol is a
    /// [`FailureReason::Config`] error naming the option.
    pub fn from_options(preferred: Option<&str>, fallback: Option<bool>) -> Result<Self, Error> {
        let prefer_v6 = match preferred.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("ip6") => true,
            Some("ip4") => false,
            Some(other) => {
                return Err(Error::new(
                    FailureReason::Config,
                    format!("preferred_ip_protocol {other:?}: use ip4 or ip6"),
                ));
            }
        };
        Ok(IpPreference {
            prefer_v6,
            fallback: fallback.unwrap_or(true),
        })
    }
}

/// Resolves `host` and picks the address blackbox_exporter would: the
/// first of the preferred family, else (with fallback, or for an IP
/// literal) the first of the other; without fallback a missing family is a
/// [`FailureReason::Dns`] failure.
pub fn choose_address(
    host: &str,
    port: u16,
    preference: IpPreference,
    timeout: Duration,
) -> Result<SocketAddr, Error> {
    let addresses = resolve(host, port, timeout)?;
    if let Some(preferred) = addresses
        .iter()
        .find(|a| a.is_ipv6() == preference.prefer_v6)
    {
        return Ok(*preferred);
    }
    if preference.fallback || ip_literal(host).is_some() {
        return addresses
            .first()
            .copied()
            .ok_or_else(|| Error::new(FailureReason::Dns, format!("{host}: no addresses")));
    }
    Err(Error::new(
        FailureReason::Dns,
        format!(
            "{host} has no {} address (ip_protocol_fallback is off)",
            if preference.prefer_v6 { "IPv6" } else { "IPv4" }
        ),
    ))
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bit) of the
/// address's bytes (4 for IPv4 and IPv4-mapped IPv6, else 16), so a change
/// of address shows as a change of value.
pub fn ip_addr_hash(ip: IpAddr) -> u32 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    bytes.iter().fold(0x811c_9dc5, |hash: u32, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// A connected TCP stream.
///
/// Dropping it closes the connection.
#[derive(Debug)]
pub struct TcpStream {
    // Field order is drop order: the streams are child resources of the
    // socket and must go first.
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
    peer: SocketAddr,
}

impl TcpStream {
    /// Connects to `addr`, waiting at most `timeout`.
    ///
    /// Failures: [`FailureReason::Connect`] (refused, reset, unreachable),
    /// [`FailureReason::Timeout`] (no answer in time),
    /// [`FailureReason::Denied`] (the sandbox refused the address),
    /// [`FailureReason::Other`] for anything else.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, Error> {
        let what = format!("connecting to {addr}");
        let deadline = deadline_after(timeout);
        let network = instance_network();
        let socket = create_tcp_socket(family(addr)).map_err(|code| Error::code(&what, code))?;
        socket
            .start_connect(&network, ip_socket_address(addr))
            .map_err(|code| Error::code(&what, code))?;
        let (input, output) = finish(&socket.subscribe(), deadline, &what, Error::code, || {
            socket.finish_connect()
        })?;
        Ok(Self {
            input,
            output,
            socket,
            peer: addr,
        })
    }

    /// Connects to the first of `addresses` that accepts before
    /// `deadline`, trying them in turn; the last failure explains a total
    /// failure, and no address at all is [`FailureReason::Dns`]. Running
    /// out of time or a sandbox refusal ends the attempts: another address
    /// would not do better.
    pub fn connect_first(addresses: &[SocketAddr], deadline: Instant) -> Result<Self, Error> {
        let mut failure = None;
        for &address in addresses {
            match TcpStream::connect(address, remaining(deadline)) {
                Ok(stream) => return Ok(stream),
                Err(error)
                    if matches!(
                        error.reason(),
                        FailureReason::Timeout | FailureReason::Denied
                    ) =>
                {
                    return Err(error);
                }
                Err(error) => failure = Some(error),
            }
        }
        Err(failure.unwrap_or_else(|| Error::new(FailureReason::Dns, "no address")))
    }

    /// The address connected to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.socket
            .local_address()
            .map(socket_addr)
            .map_err(|code| Error::code("reading the local address", code))
    }

    /// Writes all of `bytes` and flushes them, failing with
    /// [`FailureReason::Timeout`] if that is not done by `deadline`.
    pub fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Error> {
        let what = format!("sending to {}", self.peer);
        let failed = |error| Error::stream(&what, error);
        let mut rest = bytes;
        while !rest.is_empty() {
            let permitted = self.output.check_write().map_err(failed)?;
            if permitted == 0 {
                wait(&self.output.subscribe(), deadline, &what)?;
                continue;
            }
            let n = rest
                .len()
                .min(WRITE_CHUNK)
                .min(usize::try_from(permitted).unwrap_or(usize::MAX));
            self.output.write(&rest[..n]).map_err(failed)?;
            rest = &rest[n..];
        }
        self.output.flush().map_err(failed)?;
        // The flush is done when the stream accepts writes again.
        loop {
            if self.output.check_write().map_err(failed)? > 0 {
                return Ok(());
            }
            wait(&self.output.subscribe(), deadline, &what)?;
        }
    }

    /// Reads what has arrived into `buf`, waiting until something has or
    /// `deadline` passes ([`FailureReason::Timeout`]). Returns the number of
    /// bytes read, 0 at the end of the stream (or for an empty `buf`).
    pub fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let what = format!("reading from {}", self.peer);
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        loop {
            match self.input.read(len) {
                Ok(chunk) if chunk.is_empty() => wait(&self.input.subscribe(), deadline, &what)?,
                Ok(chunk) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(StreamError::Closed) => return Ok(0),
                Err(error) => return Err(Error::stream(&what, error)),
            }
        }
    }

    /// Shuts down the reading, writing or both halves of the connection.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), Error> {
        let how = match how {
            Shutdown::Read => ShutdownType::Receive,
            Shutdown::Write => ShutdownType::Send,
            Shutdown::Both => ShutdownType::Both,
        };
        self.socket
            .shutdown(how)
            .map_err(|code| Error::code(&format!("shutting down {}", self.peer), code))
    }
}

/// Time left before `deadline`: zero once it passed, so the next wait
/// fails with a timeout. For turning a probe's deadline into the timeouts
/// of [`resolve`] and [`TcpStream::connect`].
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `timeout` from now, saturating far in the future.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Blocks until `pollable` is ready, or fails with a timeout of `what` when
/// `deadline` passes first.
pub(crate) fn wait(pollable: &Pollable, deadline: Instant, what: &str) -> Result<(), Error> {
    if pollable.ready() {
        return Ok(());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::timeout(what));
    }
    let nanos = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    let timer = monotonic_clock::subscribe_duration(nanos);
    if poll::poll(&[pollable, &timer]).contains(&0) {
        Ok(())
    } else {
        Err(Error::timeout(what))
    }
}

/// Repeats a wasi:sockets `finish-*` call while it answers `would-block`,
/// waiting on `pollable` (the socket's) until `deadline`; any other error
/// code becomes an [`Error`] of `what` through `error`.
pub(crate) fn finish<T>(
    pollable: &Pollable,
    deadline: Instant,
    what: &str,
    error: impl Fn(&str, ErrorCode) -> Error,
    mut call: impl FnMut() -> Result<T, ErrorCode>,
) -> Result<T, Error> {
    loop {
        match call() {
            Ok(done) => return Ok(done),
            Err(ErrorCode::WouldBlock) => wait(pollable, deadline, what)?,
            Err(code) => return Err(error(what, code)),
        }
    }
}

/// The address family of `addr`.
pub(crate) fn family(addr: SocketAddr) -> IpAddressFamily {
    match addr {
        SocketAddr::V4(_) => IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => IpAddressFamily::Ipv6,
    }
}

pub(crate) fn ip_socket_address(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(addr) => {
            let [a, b, c, d] = addr.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: addr.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(addr) => {
            let [a, b, c, d, e, f, g, h] = addr.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: addr.port(),
                flow_info: addr.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: addr.scope_id(),
            })
        }
    }
}

pub(crate) fn socket_addr(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(addr) => {
            let (a, b, c, d) = addr.address;
            SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), addr.port).into()
        }
        IpSocketAddress::Ipv6(addr) => {
            let (a, b, c, d, e, f, g, h) = addr.address;
            let ip = Ipv6Addr::new(a, b, c, d, e, f, g, h);
            SocketAddrV6::new(ip, addr.port, addr.flow_info, addr.scope_id).into()
        }
    }
}

fn ip_addr(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ip_addr_hash_is_fnv1a_of_the_address_bytes() {
        // Go: fnv.New32a() over net.IP.To4() / To16(); blackbox_exporter
        // 0.23 reported 3668918509 (0xdaaf40ed) for 127.0.0.1 side by side.
        assert_eq!(ip_addr_hash("127.0.0.1".parse().unwrap()), 0xdaaf_40ed);
        assert_eq!(
            ip_addr_hash("::ffff:127.0.0.1".parse().unwrap()),
            ip_addr_hash("127.0.0.1".parse().unwrap())
        );
        assert_ne!(ip_addr_hash("::1".parse().unwrap()), 0);
    }

    use super::*;

    #[test]
    fn error_codes_map_to_failure_reasons() {
        use FailureReason as R;
        let cases = [
            (ErrorCode::ConnectionRefused, R::Connect),
            (ErrorCode::ConnectionReset, R::Connect),
            (ErrorCode::ConnectionAborted, R::Connect),
            (ErrorCode::RemoteUnreachable, R::Connect),
            (ErrorCode::AccessDenied, R::Denied),
            (ErrorCode::Timeout, R::Timeout),
            (ErrorCode::NameUnresolvable, R::Dns),
            (ErrorCode::TemporaryResolverFailure, R::Dns),
            (ErrorCode::PermanentResolverFailure, R::Dns),
            (ErrorCode::NotSupported, R::Other),
            (ErrorCode::InvalidArgument, R::Other),
            (ErrorCode::Unknown, R::Other),
        ];
        for (code, reason) in cases {
            assert_eq!(classify(code).0, reason, "{code:?}");
        }
    }

    #[test]
    fn messages_name_the_operation() {
        let error = Error::code("connecting to 127.0.0.1:1", ErrorCode::ConnectionRefused);
        assert_eq!(
            error.message(),
            "connecting to 127.0.0.1:1: connection refused"
        );
        assert_eq!(error.to_string(), error.message());
        let error = Error::timeout("reading from 127.0.0.1:80");
        assert_eq!(error.reason(), FailureReason::Timeout);
        assert_eq!(error.message(), "reading from 127.0.0.1:80: timed out");
    }

    #[test]
    fn stream_errors_are_classified_by_their_text() {
        use FailureReason as R;
        assert_eq!(
            classify_stream_error("ConnectionReset"),
            (R::Connect, "connection reset".to_owned())
        );
        assert_eq!(
            classify_stream_error("connection-aborted"),
            (R::Connect, "connection aborted".to_owned())
        );
        assert_eq!(classify_stream_error("Timeout").0, R::Timeout);
        assert_eq!(
            classify_stream_error(" broken pipe "),
            (R::Connect, "connection failed: broken pipe".to_owned())
        );
        assert_eq!(classify_stream_error("").1, "connection failed");
    }

    #[test]
    fn ip_literals_skip_lookup() {
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(ip_literal("127.0.0.1"), Some([127, 0, 0, 1].into()));
        assert_eq!(ip_literal("::1"), Some(v6));
        assert_eq!(ip_literal("[::1]"), Some(v6));
        assert_eq!(ip_literal("localhost"), None);
        assert_eq!(ip_literal("[localhost]"), None);
        assert_eq!(ip_literal(""), None);
        // Resolving a literal needs no host call, so it works natively too.
        assert_eq!(
            resolve("[::1]", 80, Duration::ZERO).unwrap(),
            [SocketAddr::new(v6, 80)]
        );
    }

    #[test]
    fn socket_addresses_round_trip() {
        let cases: [SocketAddr; 3] = [
            "127.0.0.1:1".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
            SocketAddrV6::new("fe80::1".parse().unwrap(), 22, 7, 3).into(),
        ];
        for addr in cases {
            assert_eq!(socket_addr(ip_socket_address(addr)), addr);
        }
        assert_eq!(
            ip_addr(IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ip_addr(IpAddress::Ipv4((10, 0, 0, 2))),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}
