//! ICMP echo ("ping") through the host.
//!
//! WebAssembly has no raw sockets, so the host sends the echo request for the
//! plugin (`lookout:plugin/icmp` in `wit/plugin.wit`): on an unprivileged
//! ping socket where the kernel allows one, else on a raw socket when lookout
//! has `CAP_NET_RAW`. The plugin asks for the destinations it pings with
//! [`PluginInfo::icmp`](crate::PluginInfo::icmp), usually `[TARGET]`; that
//! grant also enables name lookup, so [`net::resolve`](crate::net::resolve)
//! turns a host name into the address to ping.
//!
//! ```no_run
//! use std::time::Duration;
//! use lookout_plugin_sdk::{icmp, net};
//!
//! # fn main() -> Result<(), lookout_plugin_sdk::Error> {
//! let address = net::resolve("localhost", 0, Duration::from_secs(1))?[0].ip();
//! let reply = icmp::EchoRequest::new(address)
//!     .payload(*b"lookout")
//!     .ttl(64)
//!     .send(Duration::from_secs(2))?;
//! println!("rtt {:?}, hop limit {:?}", reply.rtt, reply.hop_limit);
//! # Ok(()) }
//! ```
//!
//! Failures are an [`Error`] with the reason a probe reports:
//! [`FailureReason::Denied`] (no icmp grant covers the address),
//! [`FailureReason::Timeout`] (no reply in time), [`FailureReason::Connect`]
//! (no route, or an ICMP error such as destination unreachable or time
//! exceeded), [`FailureReason::Config`] (an invalid request: payload too
//! large, a source address the host does not have) and
//! [`FailureReason::Other`] (the host may not send ICMP at all, with a
//! message saying what to allow, or anything else).

use std::net::IpAddr;
use std::time::Duration;

use crate::bindings::probe::lookout::plugin::icmp as wit;
use crate::{Error, FailureReason};

/// An echo request being built; [`send`](Self::send) sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRequest {
    destination: IpAddr,
    source: Option<IpAddr>,
    payload: Vec<u8>,
    ttl: Option<u8>,
    dont_fragment: bool,
}

/// The reply to an echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// From sending the request to receiving the reply.
    pub rtt: Duration,
    /// What the host spent opening and configuring its socket before sending
    /// (blackbox_exporter's `setup` phase).
    pub setup: Duration,
    /// The reply's IPv4 TTL or IPv6 hop limit, when the host's kernel
    /// reported it.
    pub hop_limit: Option<u8>,
}

impl EchoRequest {
    /// An echo to `destination` with no payload, the system's TTL and
    /// fragmentation allowed.
    pub fn new(destination: IpAddr) -> Self {
        Self {
            destination,
            source: None,
            payload: Vec::new(),
            ttl: None,
            dont_fragment: false,
        }
    }

    /// Sends from this local address (of the destination's family).
    pub fn source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// The echo's data; the reply must carry it back unchanged. At most
    /// 65,507 bytes to an IPv4 address, 65,527 to an IPv6 one.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }

    /// The request's IPv4 time-to-live or IPv6 hop limit.
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Forbids fragmenting the request: one larger than the path MTU then
    /// fails with [`FailureReason::Connect`].
    pub fn dont_fragment(mut self, dont_fragment: bool) -> Self {
        self.dont_fragment = dont_fragment;
        self
    }

    /// Sends the request and waits at most `timeout` for its reply.
    pub fn send(&self, timeout: Duration) -> Result<EchoReply, Error> {
        let request = wit::EchoRequest {
            destination: self.destination.to_string(),
            source: self.source.map(|s| s.to_string()),
            payload: self.payload.clone(),
            ttl: self.ttl,
            dont_fragment: self.dont_fragment,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        };
        match wit::echo(&request) {
            Ok(reply) => Ok(EchoReply {
                rtt: Duration::from_nanos(reply.rtt_ns),
                setup: Duration::from_nanos(reply.setup_ns),
                hop_limit: reply.hop_limit,
            }),
            Err((code, message)) => Err(error(code, message)),
        }
    }
}

/// `EchoRequest::new(destination).send(timeout)`.
pub fn echo(destination: IpAddr, timeout: Duration) -> Result<EchoReply, Error> {
    EchoRequest::new(destination).send(timeout)
}

/// The host's answer as the SDK's error.
fn error(code: wit::IcmpError, message: String) -> Error {
    use wit::IcmpError as E;
    let reason = match code {
        E::Denied => FailureReason::Denied,
        E::Timeout => FailureReason::Timeout,
        E::Unreachable => FailureReason::Connect,
        E::Invalid => FailureReason::Config,
        E::Unsupported | E::Other => FailureReason::Other,
    };
    Error::new(reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_become_failure_reasons() {
        use wit::IcmpError as E;
        let cases = [
            (E::Denied, FailureReason::Denied),
            (E::Timeout, FailureReason::Timeout),
            (E::Unreachable, FailureReason::Connect),
            (E::Invalid, FailureReason::Config),
            (E::Unsupported, FailureReason::Other),
            (E::Other, FailureReason::Other),
        ];
        for (code, reason) in cases {
            let error = error(code, "what the host said".into());
            assert_eq!(error.reason(), reason, "{code:?}");
            assert_eq!(error.message(), "what the host said");
        }
    }

    #[test]
    fn builder_sets_every_field() {
        let destination: IpAddr = "2001:db8::1".parse().unwrap();
        let request = EchoRequest::new(destination)
            .source("2001:db8::2".parse().unwrap())
            .payload(vec![1, 2, 3])
            .ttl(5)
            .dont_fragment(true);
        assert_eq!(
            request,
            EchoRequest {
                destination,
                source: Some("2001:db8::2".parse().unwrap()),
                payload: vec![1, 2, 3],
                ttl: Some(5),
                dont_fragment: true,
            }
        );
    }
}
