//! ICMP echo on a plugin's behalf (`lookout:plugin/icmp`).
//!
//! WebAssembly has no raw sockets, so a probe that pings asks the host. Per
//! echo the host opens an unprivileged ICMP datagram socket (Linux "ping
//! socket": `SOCK_DGRAM` with `IPPROTO_ICMP` / `IPPROTO_ICMPV6`) where
//! `net.ipv4.ping_group_range` admits lookout's group, else a raw socket when
//! lookout has `CAP_NET_RAW`, else it answers [`EchoError::Unsupported`]
//! saying how to allow either. The socket is nonblocking and driven by tokio:
//! waiting for a reply holds no thread, and the wait ends at the deadline the
//! caller gives (the invocation's, at the latest).
//!
//! A reply must match the request's identifier and sequence number and carry
//! its payload back unchanged. On a datagram socket the kernel chooses the
//! identifier and hands the socket only its own replies; ICMP errors about the
//! request (destination unreachable, time exceeded) arrive through the
//! socket's error queue. A raw socket receives every ICMP message the host
//! gets, so the source address is checked as well, and an error is ours when
//! the request it quotes is.
//!
//! Whether the plugin may ping the destination at all is decided by the
//! caller (the sandbox's `icmp` grants), before [`echo`] is called.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

/// Largest echo payload to an IPv4 destination: a 65,535-byte datagram less
/// the 20-byte IPv4 header and the 8-byte ICMP header.
pub const MAX_PAYLOAD_V4: usize = 65_535 - 20 - 8;

/// Largest echo payload to an IPv6 destination: IPv6's 16-bit payload length
/// (which excludes its 40-byte header) less the 8-byte ICMPv6 header.
pub const MAX_PAYLOAD_V6: usize = 65_535 - 8;

/// What a receive needs room for: the largest IP datagram.
const RECEIVE_BUFFER_BYTES: usize = 65_536;

/// One echo request, as the plugin asked for it.
#[derive(Clone, Debug)]
pub struct EchoRequest {
    pub destination: IpAddr,
    /// Local address to send from; `None` lets the kernel choose.
    pub source: Option<IpAddr>,
    /// The echo's data; the reply must carry it back unchanged.
    pub payload: Vec<u8>,
    /// IPv4 time-to-live or IPv6 hop limit; `None` keeps the system default.
    pub ttl: Option<u8>,
    /// Forbid fragmentation (IPv4's DF bit, IPv6's `IPV6_DONTFRAG`).
    pub dont_fragment: bool,
    /// When to stop waiting for the reply.
    pub deadline: Instant,
}

/// The reply that matched.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoReply {
    /// From sending the request to receiving its reply.
    pub rtt: Duration,
    /// Opening and configuring the socket, before the request was sent.
    pub setup: Duration,
    /// The reply's IPv4 TTL or IPv6 hop limit, when the kernel reported it.
    pub hop_limit: Option<u8>,
    /// Which kind of socket carried the echo.
    pub socket: SocketKind,
}

/// The two ways an unprivileged process can do ICMP on Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A ping socket, allowed by `net.ipv4.ping_group_range`.
    Datagram,
    /// A raw socket, allowed by `CAP_NET_RAW`.
    Raw,
}

/// Why an echo got no reply. Each variant is one case of the WIT enum
/// `icmp-error`; the text is for the plugin's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EchoError {
    /// The host cannot send ICMP (no ping socket, no `CAP_NET_RAW`, no IPv6).
    #[error("{0}")]
    Unsupported(String),
    /// No reply before the deadline.
    #[error("{0}")]
    Timeout(String),
    /// No route, or an ICMP error about the request (destination
    /// unreachable, time exceeded, fragmentation needed).
    #[error("{0}")]
    Unreachable(String),
    /// The request itself is wrong (payload too large, not a unicast address).
    #[error("{0}")]
    Invalid(String),
    /// Anything else the kernel said.
    #[error("{0}")]
    Other(String),
}

/// Sequence numbers of this process's echoes. It starts at a random value so
/// that two lookouts restarted together do not send identical echoes (the
/// reason blackbox_exporter does the same).
static SEQUENCE: LazyLock<AtomicU16> = LazyLock::new(|| AtomicU16::new(rand::random()));

/// Sends one echo request and waits for its reply until `request.deadline`.
pub async fn echo(request: &EchoRequest) -> Result<EchoReply, EchoError> {
    check(request)?;
    let started = Instant::now();
    let socket = sys::IcmpSocket::open(request)?;
    let kind = socket.kind();
    if let Some(source) = request.source {
        socket.bind(source).map_err(|e| bind_error(&e, source))?;
    }
    socket
        .connect(request.destination)
        .map_err(|e| io_error(&e, request.destination))?;
    // SAFETY: `IcmpSocket` owns its descriptor for its whole life and
    // always returns that one from `as_raw_fd`.
    let socket = unsafe {
        AsyncFd::register_with_interest(
            socket,
            Interest::READABLE | Interest::WRITABLE | Interest::ERROR,
        )
    }
    .map_err(|e| EchoError::Other(format!("registering the ICMP socket: {e}")))?;
    let expected = Expected {
        destination: request.destination,
        // A datagram socket's identifier is the kernel's; a raw socket's is
        // ours, random per echo so concurrent probes cannot take each
        // other's replies.
        identifier: rand::random(),
        sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        payload: &request.payload,
        kind,
    };
    let packet = echo_packet(
        request.destination.is_ipv6(),
        expected.identifier,
        expected.sequence,
        &request.payload,
    );
    let setup = started.elapsed();
    let sent = Instant::now();
    let exchange = async {
        socket
            .async_io(Interest::WRITABLE, |s| s.send(&packet, request.destination))
            .await
            .map_err(|e| send_error(e, request))?;
        let mut buffer = vec![0; RECEIVE_BUFFER_BYTES];
        receive(&socket, &expected, &mut buffer).await
    };
    let deadline = tokio::time::Instant::from_std(request.deadline);
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok((received, hop_limit))) => Ok(EchoReply {
            rtt: received.saturating_duration_since(sent),
            setup,
            hop_limit,
            socket: kind,
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(EchoError::Timeout(format!(
            "no echo reply from {} within {:.3}s",
            request.destination,
            sent.elapsed().as_secs_f64()
        ))),
    }
}

fn check(request: &EchoRequest) -> Result<(), EchoError> {
    let destination = request.destination;
    let max = if destination.is_ipv6() {
        MAX_PAYLOAD_V6
    } else {
        MAX_PAYLOAD_V4
    };
    if request.payload.len() > max {
        return Err(EchoError::Invalid(format!(
            "a payload of {} bytes is over the {max} an echo to {destination} can carry",
            request.payload.len()
        )));
    }
    if let Some(source) = request.source
        && source.is_ipv6() != destination.is_ipv6()
    {
        return Err(EchoError::Invalid(format!(
            "source address {source} and destination {destination} are of different IP versions"
        )));
    }
    let broadcast = matches!(destination, IpAddr::V4(v4) if v4.is_broadcast());
    if destination.is_unspecified() || destination.is_multicast() || broadcast {
        return Err(EchoError::Invalid(format!(
            "{destination} is not a unicast address"
        )));
    }
    Ok(())
}

/// What the reply to this echo looks like.
struct Expected<'a> {
    destination: IpAddr,
    identifier: u16,
    sequence: u16,
    payload: &'a [u8],
    kind: SocketKind,
}

/// What one received packet turned out to be.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The reply, with its hop limit when known.
    Reply(Option<u8>),
    /// An ICMP error quoting our request.
    Error(String),
    /// Someone else's packet (a raw socket sees all ICMP).
    Unrelated,
}

/// Receives until the reply or an error about the request arrives.
async fn receive(
    socket: &AsyncFd<sys::IcmpSocket>,
    expected: &Expected<'_>,
    buffer: &mut [u8],
) -> Result<(Instant, Option<u8>), EchoError> {
    loop {
        let mut guard = socket
            .ready(Interest::READABLE | Interest::ERROR)
            .await
            .map_err(|e| EchoError::Other(format!("waiting for the echo reply: {e}")))?;
        match guard.get_inner().recv(buffer) {
            Ok(received) => {
                let at = Instant::now();
                let packet = &buffer[..received.len];
                match expected.classify(packet, received.from, received.hop_limit) {
                    Seen::Reply(hop_limit) => return Ok((at, hop_limit)),
                    Seen::Error(message) => return Err(EchoError::Unreachable(message)),
                    Seen::Unrelated => {}
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if guard.ready().is_error()
                    && let Some(report) = guard.get_inner().recv_error()
                {
                    return Err(report.into_error(expected.destination));
                }
                guard.clear_ready_matching(Ready::READABLE | Ready::ERROR);
            }
            // A datagram socket reports ICMP errors about its echo as a
            // receive error; its error queue says which error and from whom.
            Err(e) => {
                return Err(match guard.get_inner().recv_error() {
                    Some(report) => report.into_error(expected.destination),
                    None => io_error(&e, expected.destination),
                });
            }
        }
    }
}

impl Expected<'_> {
    /// Judges a received packet: the bytes from the ICMP header on, except
    /// on a raw IPv4 socket, where the IP header comes first.
    fn classify(&self, packet: &[u8], from: Option<IpAddr>, hop_limit: Option<u8>) -> Seen {
        match (self.destination, self.kind) {
            (IpAddr::V4(_), SocketKind::Raw) => {
                let Some((header, icmp)) = split_ipv4(packet) else {
                    return Seen::Unrelated;
                };
                let source = IpAddr::from(<[u8; 4]>::try_from(&header[12..16]).unwrap());
                self.classify_icmp(icmp, Some(source), Some(header[8]))
            }
            _ => self.classify_icmp(packet, from, hop_limit),
        }
    }

    fn classify_icmp(&self, icmp: &[u8], from: Option<IpAddr>, hop_limit: Option<u8>) -> Seen {
        if icmp.len() < 8 {
            return Seen::Unrelated;
        }
        let v6 = self.destination.is_ipv6();
        let (echo_request, echo_reply) = if v6 { (128, 129) } else { (8, 0) };
        let (kind, code) = (icmp[0], icmp[1]);
        if kind == echo_reply {
            let ours = self.echo_matches(icmp)
                && icmp[8..] == *self.payload
                // A datagram socket only ever gets its own replies.
                && (self.kind == SocketKind::Datagram || from == Some(self.destination));
            return if ours {
                Seen::Reply(hop_limit)
            } else {
                Seen::Unrelated
            };
        }
        if self.kind == SocketKind::Datagram || !is_error_type(v6, kind) {
            return Seen::Unrelated;
        }
        // An ICMP error quotes the offending datagram: its IP header, then
        // (at least) the first 8 bytes of our echo request.
        let quoted = &icmp[8..];
        let quoted_icmp = if v6 {
            // Next header must be ICMPv6 directly (no extension headers:
            // we send none).
            if quoted.len() < 48 || quoted[6] != 58 || quoted[24..40] != ip_octets(self.destination)
            {
                return Seen::Unrelated;
            }
            &quoted[40..]
        } else {
            match split_ipv4(quoted) {
                Some((header, rest))
                    if header[9] == 1 && header[16..20] == ip_octets(self.destination) =>
                {
                    rest
                }
                _ => return Seen::Unrelated,
            }
        };
        if quoted_icmp.len() < 8
            || quoted_icmp[0] != echo_request
            || !self.echo_matches(quoted_icmp)
        {
            return Seen::Unrelated;
        }
        let info = u32::from_be_bytes(icmp[4..8].try_into().unwrap());
        Seen::Error(describe_icmp_error(v6, kind, code, info, from))
    }

    /// Identifier (raw sockets only) and sequence of an echo header.
    fn echo_matches(&self, icmp: &[u8]) -> bool {
        let identifier = u16::from_be_bytes([icmp[4], icmp[5]]);
        let sequence = u16::from_be_bytes([icmp[6], icmp[7]]);
        sequence == self.sequence
            && (self.kind == SocketKind::Datagram || identifier == self.identifier)
    }
}

/// Splits an IPv4 datagram into its header and payload.
fn split_ipv4(packet: &[u8]) -> Option<(&[u8], &[u8])> {
    let header_len = usize::from(packet.first()? & 0x0f) * 4;
    if packet[0] >> 4 != 4 || header_len < 20 || packet.len() < header_len {
        return None;
    }
    Some(packet.split_at(header_len))
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// ICMP types that report a problem with a datagram we sent.
fn is_error_type(v6: bool, kind: u8) -> bool {
    if v6 {
        // Destination unreachable, packet too big, time exceeded.
        matches!(kind, 1..=3)
    } else {
        // Destination unreachable, time exceeded.
        matches!(kind, 3 | 11)
    }
}

/// The ICMP error in words, as ping(8) would put it. `info` is the second
/// word of the ICMP header (the next-hop MTU of "fragmentation needed" and
/// "packet too big").
fn describe_icmp_error(v6: bool, kind: u8, code: u8, info: u32, from: Option<IpAddr>) -> String {
    let what = if v6 {
        match (kind, code) {
            (1, 0) => "no route to destination".to_string(),
            (1, 1) => "communication with destination administratively prohibited".to_string(),
            (1, 2) => "beyond scope of source address".to_string(),
            (1, 3) => "destination address unreachable".to_string(),
            (1, 4) => "destination port unreachable".to_string(),
            (1, 5) => "source address failed ingress/egress policy".to_string(),
            (1, 6) => "reject route to destination".to_string(),
            (1, _) => format!("destination unreachable (code {code})"),
            (2, _) => format!("packet too big (next-hop MTU {info})"),
            (3, 0) => "hop limit exceeded in transit".to_string(),
            (3, _) => "fragment reassembly time exceeded".to_string(),
            _ => format!("ICMPv6 error type {kind} code {code}"),
        }
    } else {
        match (kind, code) {
            (3, 0) => "destination network unreachable".to_string(),
            (3, 1) => "destination host unreachable".to_string(),
            (3, 2) => "destination protocol unreachable".to_string(),
            (3, 3) => "destination port unreachable".to_string(),
            (3, 4) => format!(
                "fragmentation needed and don't-fragment set (next-hop MTU {})",
                info & 0xffff
            ),
            (3, 5) => "source route failed".to_string(),
            (3, 6) => "destination network unknown".to_string(),
            (3, 7) => "destination host unknown".to_string(),
            (3, 9 | 10 | 13) => "communication administratively prohibited".to_string(),
            (3, _) => format!("destination unreachable (code {code})"),
            (11, 0) => "time to live exceeded in transit".to_string(),
            (11, _) => "fragment reassembly time exceeded".to_string(),
            _ => format!("ICMP error type {kind} code {code}"),
        }
    };
    match from {
        Some(from) => format!("{what} (reported by {from})"),
        None => what,
    }
}

/// An echo request (type 8, or 128 for ICMPv6) with its checksum. The kernel
/// computes ICMPv6 checksums itself (they cover a pseudo-header it owns) and
/// rewrites a ping socket's identifier and checksum.
fn echo_packet(v6: bool, identifier: u16, sequence: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(8 + payload.len());
    packet.extend_from_slice(&[if v6 { 128 } else { 8 }, 0, 0, 0]);
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(payload);
    if !v6 {
        let sum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// RFC 1071's one's-complement sum.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A failed send, in the terms of `icmp-error`.
fn send_error(error: std::io::Error, request: &EchoRequest) -> EchoError {
    let destination = request.destination;
    match error.raw_os_error() {
        Some(libc::EMSGSIZE) => EchoError::Unreachable(format!(
            "an echo with {} bytes of payload is larger than the path MTU to {destination} and \
             may not be fragmented",
            request.payload.len()
        )),
        _ => io_error(&error, destination),
    }
}

fn bind_error(error: &std::io::Error, source: IpAddr) -> EchoError {
    match error.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => EchoError::Invalid(format!(
            "source address {source} is not an address of this host"
        )),
        _ => EchoError::Other(format!("binding the ICMP socket to {source}: {error}")),
    }
}

fn io_error(error: &std::io::Error, destination: IpAddr) -> EchoError {
    match error.raw_os_error() {
        Some(libc::ENETUNREACH) => {
            EchoError::Unreachable(format!("no route to the network of {destination}"))
        }
        Some(libc::EHOSTUNREACH) => {
            EchoError::Unreachable(format!("{destination} is unreachable: {error}"))
        }
        Some(libc::EACCES | libc::EPERM) => EchoError::Unreachable(format!(
            "sending to {destination} is prohibited (a reject route or a firewall): {error}"
        )),
        Some(libc::ECONNREFUSED | libc::EPROTO) => EchoError::Unreachable(format!(
            "{destination} answered with an ICMP error: {error}"
        )),
        _ => EchoError::Other(format!("ICMP echo to {destination}: {error}")),
    }
}

/// An ICMP error the kernel queued for a datagram socket (`IP_RECVERR`).
#[derive(Debug, PartialEq)]
struct QueuedError {
    errno: i32,
    /// `Some((type, code, info))` when an ICMP message caused it.
    icmp: Option<(u8, u8, u32)>,
    v6: bool,
    /// Who sent the ICMP error.
    offender: Option<IpAddr>,
}

impl QueuedError {
    fn into_error(self, destination: IpAddr) -> EchoError {
        match self.icmp {
            Some((kind, code, info)) => EchoError::Unreachable(describe_icmp_error(
                self.v6,
                kind,
                code,
                info,
                self.offender,
            )),
            None => io_error(&std::io::Error::from_raw_os_error(self.errno), destination),
        }
    }
}

/// Where this host stands on ping sockets and raw sockets, for the message
/// of [`EchoError::Unsupported`].
fn no_icmp_permission(v6: bool) -> String {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".to_string());
    // SAFETY: getgid cannot fail and has no preconditions.
    let gid = unsafe { libc::getgid() };
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    format!(
        "lookout may not open an {family} socket: unprivileged ping sockets are limited to the \
         groups in net.ipv4.ping_group_range (\"{range}\"; lookout runs as group {gid}) and raw \
         sockets need CAP_NET_RAW, which lookout lacks. Allow one: \
         `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`, or \
         `setcap cap_net_raw+ep $(command -v lookout)` (AmbientCapabilities=CAP_NET_RAW under systemd)"
    )
}

#[cfg(target_os = "linux")]
mod sys {
    //! The socket calls, Linux only (ping sockets and `IP_RECVERR` are
    //! Linux's). Every `unsafe` block is a plain system call on a descriptor
    //! this module owns, with buffers sized by their Rust types.

    use std::io;
    use std::mem::{MaybeUninit, size_of, zeroed};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use super::{EchoError, EchoRequest, QueuedError, SocketKind, no_icmp_permission};

    /// A nonblocking ICMP socket, closed on drop.
    pub struct IcmpSocket {
        fd: OwnedFd,
        kind: SocketKind,
        v6: bool,
    }

    /// One received datagram.
    pub struct Received {
        pub len: usize,
        /// The sender, from the socket address.
        pub from: Option<IpAddr>,
        /// TTL / hop limit from the ancillary data.
        pub hop_limit: Option<u8>,
    }

    impl AsRawFd for IcmpSocket {
        fn as_raw_fd(&self) -> RawFd {
            self.fd.as_raw_fd()
        }
    }

    impl IcmpSocket {
        /// A ping socket if the kernel allows one, else a raw socket,
        /// configured for `request`.
        pub fn open(request: &EchoRequest) -> Result<IcmpSocket, EchoError> {
            let v6 = request.destination.is_ipv6();
            let (domain, protocol) = if v6 {
                (libc::AF_INET6, libc::IPPROTO_ICMPV6)
            } else {
                (libc::AF_INET, libc::IPPROTO_ICMP)
            };
            let socket = match socket(domain, libc::SOCK_DGRAM, protocol) {
                Ok(fd) => IcmpSocket {
                    fd,
                    kind: SocketKind::Datagram,
                    v6,
                },
                // EACCES: our group is outside ping_group_range; the others:
                // a kernel without ping sockets.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc::EACCES
                                | libc::EPERM
                                | libc::EPROTONOSUPPORT
                                | libc::ESOCKTNOSUPPORT
                        )
                    ) =>
                {
                    match socket(domain, libc::SOCK_RAW, protocol) {
                        Ok(fd) => IcmpSocket {
                            fd,
                            kind: SocketKind::Raw,
                            v6,
                        },
                        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                            return Err(EchoError::Unsupported(no_icmp_permission(v6)));
                        }
                        Err(e) => return Err(open_error(e, v6)),
                    }
                }
                Err(e) => return Err(open_error(e, v6)),
            };
            socket
                .configure(request)
                .map_err(|e| EchoError::Other(format!("configuring the ICMP socket: {e}")))?;
            Ok(socket)
        }

        pub fn kind(&self) -> SocketKind {
            self.kind
        }

        fn configure(&self, request: &EchoRequest) -> io::Result<()> {
            let datagram = self.kind == SocketKind::Datagram;
            if self.v6 {
                self.set(libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
                if let Some(hops) = request.ttl {
                    self.set(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, hops.into())?;
                }
                if request.dont_fragment {
                    self.set(libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1)?;
                }
                if datagram {
                    self.set(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
                }
            } else {
                // A raw IPv4 socket reads the TTL from the IP header instead.
                if datagram {
                    self.set(libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
                    self.set(libc::IPPROTO_IP, libc::IP_RECVERR, 1)?;
                }
                if let Some(ttl) = request.ttl {
                    self.set(libc::IPPROTO_IP, libc::IP_TTL, ttl.into())?;
                }
                if request.dont_fragment {
                    self.set(
                        libc::IPPROTO_IP,
                        libc::IP_MTU_DISCOVER,
                        libc::IP_PMTUDISC_DO,
                    )?;
                }
            }
            Ok(())
        }

        /// Sends from `source`.
        pub fn bind(&self, source: IpAddr) -> io::Result<()> {
            let (address, len) = sockaddr(source);
            // SAFETY: `address` is a sockaddr_storage of `len` valid bytes.
            cvt(unsafe {
                libc::bind(
                    self.as_raw_fd(),
                    (&raw const address).cast::<libc::sockaddr>(),
                    len,
                )
            })
            .map(drop)
        }

        /// Connects a ping socket to `destination`: only then does the
        /// kernel tell it about ICMP errors concerning its echo (ping_err).
        /// A raw socket stays unconnected, or it would miss errors that
        /// routers on the way send.
        pub fn connect(&self, destination: IpAddr) -> io::Result<()> {
            if self.kind == SocketKind::Raw {
                return Ok(());
            }
            let (address, len) = sockaddr(destination);
            // SAFETY: `address` is a sockaddr_storage of `len` valid bytes.
            cvt(unsafe {
                libc::connect(
                    self.as_raw_fd(),
                    (&raw const address).cast::<libc::sockaddr>(),
                    len,
                )
            })
            .map(drop)
        }

        fn set(&self, level: i32, name: i32, value: i32) -> io::Result<()> {
            // SAFETY: the option value is an int, passed with its size.
            cvt(unsafe {
                libc::setsockopt(
                    self.as_raw_fd(),
                    level,
                    name,
                    (&raw const value).cast(),
                    size_of::<i32>() as libc::socklen_t,
                )
            })
            .map(drop)
        }

        /// Sends `packet` to `destination` (a connected ping socket ignores
        /// the address it already has).
        pub fn send(&self, packet: &[u8], destination: IpAddr) -> io::Result<()> {
            let (address, len) = sockaddr(destination);
            // SAFETY: `packet` and `address` are valid for the lengths given.
            cvt(unsafe {
                libc::sendto(
                    self.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&raw const address).cast::<libc::sockaddr>(),
                    len,
                )
            } as i32)
            .map(drop)
        }

        /// Receives one datagram into `buffer` without waiting.
        pub fn recv(&self, buffer: &mut [u8]) -> io::Result<Received> {
            let mut from = MaybeUninit::<libc::sockaddr_storage>::zeroed();
            let mut control = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: buffer.len(),
            };
            // SAFETY: an all-zero msghdr is valid; the pointers set below
            // outlive the call.
            let mut message: libc::msghdr = unsafe { zeroed() };
            message.msg_name = from.as_mut_ptr().cast();
            message.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            message.msg_iov = &raw mut iov;
            message.msg_iovlen = 1;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = size_of_val(&control) as _;
            // SAFETY: `message` describes live buffers of the stated sizes.
            let len =
                unsafe { libc::recvmsg(self.as_raw_fd(), &raw mut message, libc::MSG_DONTWAIT) };
            if len < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut hop_limit = None;
            for (level, kind, data) in control_messages(&message) {
                let is_hop_limit = (level == libc::IPPROTO_IP && kind == libc::IP_TTL)
                    || (level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT);
                if is_hop_limit && data.len() >= 4 {
                    let value = i32::from_ne_bytes(data[..4].try_into().unwrap());
                    hop_limit = u8::try_from(value).ok();
                }
            }
            // SAFETY: the kernel filled `msg_namelen` bytes of `from`, and
            // the rest is zeroed.
            let from = socket_ip(unsafe { from.assume_init_ref() });
            Ok(Received {
                len: len as usize,
                from,
                hop_limit,
            })
        }

        /// Takes one queued ICMP error (a ping socket's), if there is one.
        pub fn recv_error(&self) -> Option<QueuedError> {
            let mut data = [0u8; 576];
            let mut control = [0u64; 32];
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            // SAFETY: as in `recv`.
            let mut message: libc::msghdr = unsafe { zeroed() };
            message.msg_iov = &raw mut iov;
            message.msg_iovlen = 1;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = size_of_val(&control) as _;
            // SAFETY: `message` describes live buffers of the stated sizes.
            let len = unsafe {
                libc::recvmsg(
                    self.as_raw_fd(),
                    &raw mut message,
                    libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
                )
            };
            if len < 0 {
                return None;
            }
            control_messages(&message).find_map(|(level, kind, data)| {
                let is_error = (level == libc::IPPROTO_IP && kind == libc::IP_RECVERR)
                    || (level == libc::IPPROTO_IPV6 && kind == libc::IPV6_RECVERR);
                let ee_size = size_of::<libc::sock_extended_err>();
                if !is_error || data.len() < ee_size {
                    return None;
                }
                // SAFETY: `data` holds at least one sock_extended_err;
                // read_unaligned copes with the byte buffer's alignment.
                let ee: libc::sock_extended_err =
                    unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
                // The offender's address follows the struct (SO_EE_OFFENDER).
                let offender = offender_address(&data[ee_size..]);
                let icmp = matches!(
                    ee.ee_origin,
                    libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6
                )
                .then_some((ee.ee_type, ee.ee_code, ee.ee_info));
                Some(QueuedError {
                    errno: ee.ee_errno as i32,
                    icmp,
                    v6: ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6,
                    offender,
                })
            })
        }
    }

    fn socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
        // SAFETY: socket(2) with constant arguments.
        let fd = cvt(unsafe {
            libc::socket(
                domain,
                kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn open_error(error: io::Error, v6: bool) -> EchoError {
        match error.raw_os_error() {
            Some(libc::EAFNOSUPPORT) if v6 => {
                EchoError::Unsupported("this host has no IPv6 support".to_string())
            }
            _ => EchoError::Other(format!("opening an ICMP socket: {error}")),
        }
    }

    fn cvt(result: i32) -> io::Result<i32> {
        if result < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(result)
        }
    }

    /// Iterates over a received message's control messages as
    /// (level, type, data).
    fn control_messages(message: &libc::msghdr) -> impl Iterator<Item = (i32, i32, &[u8])> {
        // SAFETY: CMSG_FIRSTHDR / CMSG_NXTHDR walk the control buffer the
        // kernel filled (bounded by msg_controllen) and return null at its end.
        let mut next = unsafe { libc::CMSG_FIRSTHDR(message) };
        std::iter::from_fn(move || {
            if next.is_null() {
                return None;
            }
            // SAFETY: `next` points at a complete cmsghdr inside the buffer;
            // its data spans cmsg_len less the header.
            unsafe {
                let header = &*next;
                let data = libc::CMSG_DATA(next);
                let len = header.cmsg_len as usize - (data as usize - next as usize);
                let item = (
                    header.cmsg_level,
                    header.cmsg_type,
                    std::slice::from_raw_parts(data, len),
                );
                next = libc::CMSG_NXTHDR(message, next);
                Some(item)
            }
        })
    }

    fn sockaddr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match ip {
            IpAddr::V4(v4) => {
                let address = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((&raw mut storage).cast(), address) };
                size_of::<libc::sockaddr_in>()
            }
            IpAddr::V6(v6) => {
                let address = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: 0,
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.octets(),
                    },
                    sin6_scope_id: 0,
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast(), address) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }

    fn socket_ip(storage: &libc::sockaddr_storage) -> Option<IpAddr> {
        let storage = (storage as *const libc::sockaddr_storage).cast::<u8>();
        // SAFETY: a sockaddr_storage is large enough for either address.
        let bytes =
            unsafe { std::slice::from_raw_parts(storage, size_of::<libc::sockaddr_storage>()) };
        socket_ip_bytes(bytes).map(|a| a.ip())
    }

    /// An IP socket address from raw sockaddr bytes (family first, native
    /// byte order), read without assuming alignment.
    fn socket_ip_bytes(bytes: &[u8]) -> Option<SocketAddr> {
        let family = i32::from(u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?));
        match family {
            libc::AF_INET if bytes.len() >= 8 => {
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                Some(SocketAddr::new(ip.into(), 0))
            }
            libc::AF_INET6 if bytes.len() >= 24 => {
                let octets: [u8; 16] = bytes[8..24].try_into().ok()?;
                Some(SocketAddr::new(Ipv6Addr::from(octets).into(), 0))
            }
            _ => None,
        }
    }

    fn offender_address(bytes: &[u8]) -> Option<IpAddr> {
        socket_ip_bytes(bytes)
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! ICMP for plugins is implemented for Linux only.
    use super::{EchoError, EchoRequest, QueuedError, SocketKind};

    pub struct IcmpSocket(std::convert::Infallible);
    pub struct Received {
        pub len: usize,
        pub from: Option<std::net::IpAddr>,
        pub hop_limit: Option<u8>,
    }
    impl std::os::fd::AsRawFd for IcmpSocket {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            match self.0 {}
        }
    }
    impl IcmpSocket {
        pub fn open(_: &EchoRequest) -> Result<IcmpSocket, EchoError> {
            Err(EchoError::Unsupported(
                "ICMP echo for plugins is implemented on Linux only".to_string(),
            ))
        }
        pub fn kind(&self) -> SocketKind {
            match self.0 {}
        }
        pub fn bind(&self, _: std::net::IpAddr) -> std::io::Result<()> {
            match self.0 {}
        }
        pub fn connect(&self, _: std::net::IpAddr) -> std::io::Result<()> {
            match self.0 {}
        }
        pub fn send(&self, _: &[u8], _: std::net::IpAddr) -> std::io::Result<()> {
            match self.0 {}
        }
        pub fn recv(&self, _: &mut [u8]) -> std::io::Result<Received> {
            match self.0 {}
        }
        pub fn recv_error(&self) -> Option<QueuedError> {
            match self.0 {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "192.0.2.9";
    const V6: &str = "2001:db8::9";

    fn expected(destination: &str, kind: SocketKind, payload: &'static [u8]) -> Expected<'static> {
        Expected {
            destination: destination.parse().unwrap(),
            identifier: 0x1234,
            sequence: 7,
            payload,
            kind,
        }
    }

    /// An IPv4 header (no options) carrying `payload`.
    fn ipv4(source: &str, destination: &str, ttl: u8, payload: &[u8]) -> Vec<u8> {
        let source: std::net::Ipv4Addr = source.parse().unwrap();
        let destination: std::net::Ipv4Addr = destination.parse().unwrap();
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 1, 0, 0];
        packet.extend_from_slice(&source.octets());
        packet.extend_from_slice(&destination.octets());
        packet.extend_from_slice(payload);
        packet
    }

    /// An ICMP message of `kind` with an echo header.
    fn icmp(kind: u8, identifier: u16, sequence: u16, payload: &[u8]) -> Vec<u8> {
        let mut packet = echo_packet(false, identifier, sequence, payload);
        packet[0] = kind;
        packet
    }

    #[test]
    fn checksum_is_rfc_1071s() {
        // RFC 1071, section 3: the sum of these words is 0xddf2.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // A packet carrying its checksum sums to zero, odd length included.
        let packet = echo_packet(false, 0xbeef, 42, b"Prometheus Blackbox Exporter!");
        assert_eq!(internet_checksum(&packet), 0);
        assert_eq!(
            &packet[..8],
            &[8, 0, packet[2], packet[3], 0xbe, 0xef, 0, 42]
        );
        // ICMPv6's checksum is the kernel's.
        assert_eq!(&echo_packet(true, 1, 2, b"")[..4], &[128, 0, 0, 0]);
    }

    #[test]
    fn raw_ipv4_reply_must_match_source_identifier_sequence_and_payload() {
        let ours = expected(V4, SocketKind::Raw, b"data");
        let reply = |source, identifier, sequence, payload: &[u8]| {
            ipv4(
                source,
                "192.0.2.1",
                57,
                &icmp(0, identifier, sequence, payload),
            )
        };
        assert_eq!(
            ours.classify(&reply(V4, 0x1234, 7, b"data"), None, None),
            Seen::Reply(Some(57))
        );
        for other in [
            reply("192.0.2.10", 0x1234, 7, b"data"),
            reply(V4, 0x1235, 7, b"data"),
            reply(V4, 0x1234, 8, b"data"),
            reply(V4, 0x1234, 7, b"dat"),
            // Our own request, seen by a raw socket on loopback.
            ipv4(V4, V4, 64, &icmp(8, 0x1234, 7, b"data")),
            vec![0x45, 0],
        ] {
            assert_eq!(ours.classify(&other, None, None), Seen::Unrelated);
        }
    }

    #[test]
    fn raw_ipv4_errors_count_only_when_they_quote_our_request() {
        let ours = expected(V4, SocketKind::Raw, b"data");
        let quoted = ipv4("192.0.2.1", V4, 1, &icmp(8, 0x1234, 7, b"data")[..8]);
        let error = |kind, code, quoted: &[u8]| {
            let mut message = vec![kind, code, 0, 0, 0, 0, 0x05, 0xdc];
            message.extend_from_slice(quoted);
            ipv4("198.51.100.1", "192.0.2.1", 250, &message)
        };
        assert_eq!(
            ours.classify(&error(11, 0, &quoted), None, None),
            Seen::Error("time to live exceeded in transit (reported by 198.51.100.1)".into())
        );
        assert_eq!(
            ours.classify(&error(3, 4, &quoted), None, None),
            Seen::Error(
                "fragmentation needed and don't-fragment set (next-hop MTU 1500) \
                 (reported by 198.51.100.1)"
                    .into()
            )
        );
        let someone_elses = ipv4("192.0.2.1", V4, 1, &icmp(8, 0x9999, 7, b"data")[..8]);
        assert_eq!(
            ours.classify(&error(3, 1, &someone_elses), None, None),
            Seen::Unrelated
        );
        let elsewhere = ipv4("192.0.2.1", "192.0.2.77", 1, &icmp(8, 0x1234, 7, b"")[..8]);
        assert_eq!(
            ours.classify(&error(3, 1, &elsewhere), None, None),
            Seen::Unrelated
        );
        // A redirect (type 5) is not an error about reachability.
        assert_eq!(
            ours.classify(&error(5, 1, &quoted), None, None),
            Seen::Unrelated
        );
    }

    #[test]
    fn ipv6_replies_and_errors() {
        let ours = expected(V6, SocketKind::Raw, b"x");
        let destination: IpAddr = V6.parse().unwrap();
        let reply = {
            let mut packet = icmp(129, 0x1234, 7, b"x");
            packet[2..4].fill(0);
            packet
        };
        assert_eq!(
            ours.classify(&reply, Some(destination), Some(61)),
            Seen::Reply(Some(61))
        );
        let stranger: IpAddr = "2001:db8::10".parse().unwrap();
        assert_eq!(
            ours.classify(&reply, Some(stranger), Some(61)),
            Seen::Unrelated
        );

        // Packet too big, quoting an IPv6 header (next header 58) and our echo.
        let mut message = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        let mut header = vec![0x60, 0, 0, 0, 0, 9, 58, 64];
        header.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        header.extend_from_slice(&V6.parse::<std::net::Ipv6Addr>().unwrap().octets());
        message.extend_from_slice(&header);
        message.extend_from_slice(&icmp(128, 0x1234, 7, b"x"));
        let router: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            ours.classify(&message, Some(router), None),
            Seen::Error("packet too big (next-hop MTU 1280) (reported by 2001:db8::1)".into())
        );
    }

    #[test]
    fn datagram_sockets_match_by_sequence_and_payload() {
        // The kernel rewrote the identifier and delivers only our replies.
        let ours = expected(V4, SocketKind::Datagram, b"data");
        assert_eq!(
            ours.classify(&icmp(0, 0x4321, 7, b"data"), None, Some(64)),
            Seen::Reply(Some(64))
        );
        assert_eq!(
            ours.classify(&icmp(0, 0x4321, 6, b"data"), None, None),
            Seen::Unrelated
        );
        assert_eq!(
            ours.classify(&icmp(0, 0x4321, 7, b"DATA"), None, None),
            Seen::Unrelated
        );
    }

    #[test]
    fn requests_are_checked_before_anything_is_sent() {
        let request = |destination: &str, source: Option<&str>, payload: usize| EchoRequest {
            destination: destination.parse().unwrap(),
            source: source.map(|s| s.parse().unwrap()),
            payload: vec![0; payload],
            ttl: None,
            dont_fragment: false,
            deadline: Instant::now(),
        };
        assert!(check(&request(V4, None, MAX_PAYLOAD_V4)).is_ok());
        assert!(check(&request(V6, None, MAX_PAYLOAD_V6)).is_ok());
        for (bad, says) in [
            (
                request(V4, None, MAX_PAYLOAD_V4 + 1),
                "65508 bytes is over the 65507",
            ),
            (request(V6, None, MAX_PAYLOAD_V6 + 1), "over the 65527"),
            (request("224.0.0.1", None, 0), "not a unicast address"),
            (request("255.255.255.255", None, 0), "not a unicast address"),
            (request("::", None, 0), "not a unicast address"),
            (request(V4, Some("::1"), 0), "different IP versions"),
        ] {
            match check(&bad) {
                Err(EchoError::Invalid(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    /// What CI exercises: root has CAP_NET_RAW (and a host may also allow
    /// ping sockets). Without either, the error must say how to fix it.
    #[tokio::test]
    async fn loopback_answers_or_the_error_says_what_to_allow() {
        let request = EchoRequest {
            destination: "127.0.0.1".parse().unwrap(),
            source: None,
            payload: b"lookout".to_vec(),
            ttl: Some(64),
            dont_fragment: true,
            deadline: Instant::now() + Duration::from_secs(5),
        };
        match echo(&request).await {
            Ok(reply) => {
                assert!(reply.rtt > Duration::ZERO && reply.rtt < Duration::from_secs(5));
                assert_eq!(reply.hop_limit, Some(64), "loopback replies with TTL 64");
            }
            Err(EchoError::Unsupported(message)) => {
                assert!(
                    message.contains("net.ipv4.ping_group_range")
                        && message.contains("CAP_NET_RAW"),
                    "{message}"
                );
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}
