//! UDP over wasi:sockets, with deadlines and honest errors.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use lookout_plugin_sdk::{net, udp};
//!
//! # fn main() -> Result<(), net::Error> {
//! let deadline = Instant::now() + Duration::from_secs(2);
//! let server = net::resolve("127.0.0.1", 53, Duration::from_secs(1))?[0];
//! let mut socket = udp::UdpSocket::connect(server, Duration::from_secs(1))?;
//! socket.send(b"a query", deadline)?;
//! let reply: Vec<u8> = socket.recv(deadline)?;
//! # Ok(()) }
//! ```
//!
//! A [`UdpSocket`] is "connected" in the BSD sense: bound to an ephemeral
//! local port, it sends to one peer and receives only that peer's datagrams.
//! Connecting is a local operation and sends nothing; a peer with no
//! listener shows up as [`FailureReason::Connect`] ("connection refused",
//! from the ICMP port-unreachable answer) on a later [`UdpSocket::recv`].
//!
//! Every wait is bounded, as in [`crate::net`]: [`UdpSocket::connect`] takes
//! a timeout, [`UdpSocket::send`] and [`UdpSocket::recv`] a deadline, and
//! running out of time is [`FailureReason::Timeout`]. Errors are the same
//! [`Error`] as [`crate::net`]'s, classified the same way; an address outside
//! the plugin's udp grants is [`FailureReason::Denied`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::udp::{
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket as WasiUdpSocket,
};
use wasip2::sockets::udp_create_socket::create_udp_socket;

pub use crate::Error;
use crate::FailureReason;
use crate::net::{classify, deadline_after, family, finish, ip_socket_address, socket_addr, wait};

/// A UDP socket that exchanges datagrams with one peer.
///
/// Dropping it closes the socket.
#[derive(Debug)]
pub struct UdpSocket {
    // Field order is drop order: the streams are child resources of the
    // socket and must go first.
    incoming: IncomingDatagramStream,
    outgoing: OutgoingDatagramStream,
    socket: WasiUdpSocket,
    peer: SocketAddr,
}

impl UdpSocket {
    /// Opens a socket on an ephemeral local port for datagrams to and from
    /// `peer`, waiting at most `timeout` for the local bind.
    ///
    /// Failures: [`FailureReason::Denied`] (no udp grant for `peer`, or
    /// none at all), [`FailureReason::Timeout`], [`FailureReason::Other`]
    /// for anything else. Nothing is sent yet, so an unreachable peer is
    /// not noticed here.
    pub fn connect(peer: SocketAddr, timeout: Duration) -> Result<Self, Error> {
        let what = format!("opening a udp socket to {peer}");
        let deadline = deadline_after(timeout);
        let wildcard = match peer {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let socket = create_udp_socket(family(peer)).map_err(|code| udp_error(&what, code))?;
        // wasi:sockets streams need a bound socket; the wildcard address
        // with port 0 is the bind the OS would have made implicitly.
        socket
            .start_bind(&instance_network(), ip_socket_address(wildcard))
            .map_err(|code| udp_error(&what, code))?;
        finish(&socket.subscribe(), deadline, &what, udp_error, || {
            socket.finish_bind()
        })?;
        let (incoming, outgoing) = socket
            .stream(Some(ip_socket_address(peer)))
            .map_err(|code| udp_error(&what, code))?;
        Ok(Self {
            incoming,
            outgoing,
            socket,
            peer,
        })
    }

    /// The peer datagrams go to and come from.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.socket
            .local_address()
            .map(socket_addr)
            .map_err(|code| udp_error("reading the local address", code))
    }

    /// Sends `datagram` to the peer, failing with
    /// [`FailureReason::Timeout`] if the socket cannot take it by
    /// `deadline`. A datagram too large for UDP is
    /// [`FailureReason::Other`].
    pub fn send(&mut self, datagram: &[u8], deadline: Instant) -> Result<(), Error> {
        let what = format!("sending to {}", self.peer);
        loop {
            let permitted = self
                .outgoing
                .check_send()
                .map_err(|code| udp_error(&what, code))?;
            if permitted == 0 {
                wait(&self.outgoing.subscribe(), deadline, &what)?;
                continue;
            }
            let datagram = OutgoingDatagram {
                data: datagram.to_vec(),
                // Connected: the socket's peer.
                remote_address: None,
            };
            let sent = self
                .outgoing
                .send(&[datagram])
                .map_err(|code| udp_error(&what, code))?;
            if sent == 1 {
                return Ok(());
            }
            // Not taken (the host's send queue was busy): wait and retry.
            wait(&self.outgoing.subscribe(), deadline, &what)?;
        }
    }

    /// Receives the next datagram from the peer, whole, waiting until one
    /// arrives or `deadline` passes ([`FailureReason::Timeout`]). A peer
    /// with no listener is [`FailureReason::Connect`].
    pub fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, Error> {
        let what = format!("receiving from {}", self.peer);
        loop {
            match self.incoming.receive(1) {
                Ok(mut datagrams) if !datagrams.is_empty() => {
                    return Ok(datagrams.swap_remove(0).data);
                }
                Ok(_) => wait(&self.incoming.subscribe(), deadline, &what)?,
                Err(code) => return Err(udp_error(&what, code)),
            }
        }
    }
}

/// `what` failed with a wasi:sockets error code; as [`crate::net`]
/// classifies it, but a sandbox refusal names the udp grant.
fn udp_error(what: &str, code: ErrorCode) -> Error {
    let (reason, detail) = classify(code);
    let detail = match reason {
        FailureReason::Denied => "denied by the sandbox (no udp grant for this address)",
        _ => detail,
    };
    Error::new(reason, format!("{what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_as_for_tcp_but_name_the_udp_grant() {
        let refused = udp_error("receiving from 127.0.0.1:53", ErrorCode::ConnectionRefused);
        assert_eq!(refused.reason(), FailureReason::Connect);
        assert_eq!(
            refused.message(),
            "receiving from 127.0.0.1:53: connection refused"
        );
        let denied = udp_error(
            "opening a udp socket to 10.0.0.1:53",
            ErrorCode::AccessDenied,
        );
        assert_eq!(denied.reason(), FailureReason::Denied);
        assert!(denied.message().contains("no udp grant"), "{denied}");
        assert_eq!(
            udp_error("x", ErrorCode::DatagramTooLarge).reason(),
            FailureReason::Other
        );
        assert_eq!(
            udp_error("x", ErrorCode::Timeout).reason(),
            FailureReason::Timeout
        );
    }
}
