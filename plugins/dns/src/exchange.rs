//! One query, one reply, over UDP or TCP, as miekg's `Client.Exchange`
//! does it for blackbox_exporter: no retries, no fallback from a truncated
//! UDP reply to TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::FailureReason;
use lookout_plugin_sdk::net::{self, TcpStream, remaining};
use lookout_plugin_sdk::udp::UdpSocket;

use crate::wire::{self, Message};

/// How the query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Time spent in the phases blackbox_exporter reports as
/// `probe_dns_duration_seconds{phase="connect"|"request"}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timing {
    /// Opening the socket (a TCP handshake; a local bind for UDP).
    pub connect: Duration,
    /// From sending the query to reading the reply.
    pub request: Duration,
}

/// Sends `query` (whose id is `id`) to `server` and returns the reply,
/// filling in `timing` as far as the exchange got.
///
/// Over UDP, replies with another id are skipped (they may answer an
/// earlier query); over TCP one is a protocol failure. A reply that does
/// not decode is a protocol failure.
pub fn exchange(
    transport: Transport,
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
    timing: &mut Timing,
) -> Result<Message, net::Error> {
    match transport {
        Transport::Udp => timed(
            timing,
            || UdpSocket::connect(server, remaining(deadline)),
            |mut socket| over_udp(&mut socket, query, id, deadline),
        ),
        Transport::Tcp => timed(
            timing,
            || TcpStream::connect(server, remaining(deadline)),
            |mut stream| over_tcp(&mut stream, query, id, deadline),
        ),
    }
}

/// Opens the connection with `connect` and exchanges over it with
/// `request`, timing each into `timing` whether it succeeds or not.
fn timed<C>(
    timing: &mut Timing,
    connect: impl FnOnce() -> Result<C, net::Error>,
    request: impl FnOnce(C) -> Result<Message, net::Error>,
) -> Result<Message, net::Error> {
    let connecting = Instant::now();
    let opened = connect();
    timing.connect = connecting.elapsed();
    let connection = opened?;
    let requesting = Instant::now();
    let reply = request(connection);
    timing.request = requesting.elapsed();
    reply
}

fn over_udp(
    socket: &mut UdpSocket,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message, net::Error> {
    socket.send(query, deadline)?;
    loop {
        let datagram = socket.recv(deadline)?;
        let message = wire::decode(&datagram).map_err(protocol)?;
        if message.id == id {
            return Ok(message);
        }
    }
}

fn over_tcp(
    stream: &mut TcpStream,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message, net::Error> {
    // RFC 1035 §4.2.2: each message is preceded by its length.
    let len = u16::try_from(query.len()).map_err(|_| protocol("query too long for tcp"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed, deadline)?;
    let mut prefix = [0; 2];
    read_exact(stream, &mut prefix, deadline)?;
    let mut reply = vec![0; usize::from(u16::from_be_bytes(prefix))];
    read_exact(stream, &mut reply, deadline)?;
    let message = wire::decode(&reply).map_err(protocol)?;
    if message.id != id {
        return Err(protocol(format!(
            "reply id {} does not match query id {id}",
            message.id
        )));
    }
    Ok(message)
}

/// Fills `buf`, failing with a protocol error if the server closes first.
fn read_exact(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), net::Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..], deadline)? {
            0 => {
                return Err(protocol(format!(
                    "connection closed after {filled} of {} bytes of the reply",
                    buf.len()
                )));
            }
            read => filled += read,
        }
    }
    Ok(())
}

fn protocol(message: impl ToString) -> net::Error {
    net::Error::new(
        FailureReason::Protocol,
        format!("malformed reply: {}", message.to_string()),
    )
}
