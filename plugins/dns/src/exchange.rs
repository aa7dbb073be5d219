//! One query, one reply, over UDP or TCP, as miekg's `Client.Exchange`
//! does it for blackbox_exporter: no retries, no fallback from a truncated
//! UDP reply to TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::FailureReason;
use lookout_plugin_sdk::net::{self, TcpStream};
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
        Transport::Udp => over_udp(server, query, id, deadline, timing),
        Transport::Tcp => over_tcp(server, query, id, deadline, timing),
    }
}

fn over_udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
    timing: &mut Timing,
) -> Result<Message, net::Error> {
    let connecting = Instant::now();
    let opened = UdpSocket::connect(server, remaining(deadline));
    timing.connect = connecting.elapsed();
    let mut socket = opened?;
    let requesting = Instant::now();
    let reply = (|| {
        socket.send(query, deadline)?;
        loop {
            let datagram = socket.recv(deadline)?;
            let message = wire::decode(&datagram).map_err(protocol)?;
            if message.id == id {
                return Ok(message);
            }
        }
    })();
    timing.request = requesting.elapsed();
    reply
}

fn over_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
    timing: &mut Timing,
) -> Result<Message, net::Error> {
    let connecting = Instant::now();
    let connected = TcpStream::connect(server, remaining(deadline));
    timing.connect = connecting.elapsed();
    let mut stream = connected?;
    let requesting = Instant::now();
    let reply = (|| {
        // RFC 1035 §4.2.2: each message is preceded by its length.
        let len = u16::try_from(query.len()).map_err(|_| protocol("query too long for tcp"))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed, deadline)?;
        let mut prefix = [0; 2];
        read_exact(&mut stream, &mut prefix, deadline)?;
        let mut reply = vec![0; usize::from(u16::from_be_bytes(prefix))];
        read_exact(&mut stream, &mut reply, deadline)?;
        let message = wire::decode(&reply).map_err(protocol)?;
        if message.id != id {
            return Err(protocol(format!(
                "reply id {} does not match query id {id}",
                message.id
            )));
        }
        Ok(message)
    })();
    timing.request = requesting.elapsed();
    reply
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

/// Time left before `deadline` (zero once it passed: the next wait then
/// fails with a timeout).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
