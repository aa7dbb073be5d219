//! A Redis connection over the SDK's TCP stream: one command, one reply,
//! every wait bounded by the collection's deadline.

use std::net::SocketAddr;
use std::time::Instant;

use lookout_plugin_sdk::FailureReason;
use lookout_plugin_sdk::net::{self, TcpStream};

use crate::resp::{Reply, encode_command, parse_reply};

/// Largest reply accepted. `INFO ALL` of a busy server with many distinct
/// commands is tens of KiB and `CONFIG GET *` about 10 KiB; 4 MiB leaves
/// room for any real server and keeps a peer that is not Redis from filling
/// the plugin's memory.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

pub struct Connection {
    stream: TcpStream,
    /// Received bytes not yet consumed by a reply.
    pending: Vec<u8>,
    deadline: Instant,
}

impl Connection {
    /// Connects to the first of `addresses` that accepts before `deadline`.
    pub fn open(addresses: &[SocketAddr], deadline: Instant) -> Result<Self, net::Error> {
        Ok(Self {
            stream: TcpStream::connect_first(addresses, deadline)?,
            pending: Vec::new(),
            deadline,
        })
    }

    /// Sends a command and reads its reply. An error reply (`-ERR …`) is an
    /// `Ok(Reply::Error)`: the caller decides what it means.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, net::Error> {
        self.stream
            .write_all(&encode_command(args), self.deadline)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Reply, net::Error> {
        let mut chunk = vec![0; READ_CHUNK];
        loop {
            match parse_reply(&self.pending, MAX_REPLY_BYTES) {
                Ok(Some((reply, used))) => {
                    self.pending.drain(..used);
                    return Ok(reply);
                }
                Ok(None) if self.pending.len() > MAX_REPLY_BYTES => {
                    let message = format!("a reply larger than {MAX_REPLY_BYTES} bytes");
                    return Err(net::Error::new(FailureReason::Protocol, message));
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(net::Error::new(FailureReason::Protocol, error.to_string()));
                }
            }
            match self.stream.read(&mut chunk, self.deadline)? {
                0 => {
                    let message = if self.pending.is_empty() {
                        "the server closed the connection without replying"
                    } else {
                        "the server closed the connection in the middle of a reply"
                    };
                    return Err(net::Error::new(FailureReason::Connect, message));
                }
                read => self.pending.extend_from_slice(&chunk[..read]),
            }
        }
    }
}
