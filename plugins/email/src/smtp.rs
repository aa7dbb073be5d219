//! A small SMTP client (RFC 5321): greeting, EHLO, STARTTLS, AUTH PLAIN and
//! LOGIN, one message, QUIT; every wait bounded by one deadline.

use std::sync::Arc;
use std::time::Instant;

use lookout_plugin_sdk::encoding::base64;
use lookout_plugin_sdk::tls::{ClientConfig, ServerName, Stream, TlsStream};
use lookout_plugin_sdk::{Error, FailureReason, PluginError, net};

/// Longest reply line accepted; RFC 5321 allows 512 bytes.
const MAX_LINE: usize = 4096;

/// How many lines a multi-line reply may have.
const MAX_REPLY_LINES: usize = 100;

/// A reply: its code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as the server wrote it, lines joined.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

/// What a failed SMTP exchange means for the notification: a `4xx` reply is
/// transient, a `5xx` reply permanent (RFC 5321 §4.2.1), a connection
/// problem transient.
pub fn reply_error(what: &str, reply: &Reply) -> PluginError {
    let message = format!("{what}: server answered {}", reply.text());
    if reply.code / 100 == 5 {
        PluginError::permanent(message)
    } else {
        PluginError::transient(message)
    }
}

fn net_error(what: &str, error: Error) -> PluginError {
    PluginError::from(Error::new(error.reason(), format!("{what}: {error}")))
}

/// An SMTP session with a server.
pub struct Session {
    /// `None` between the plain and the TLS stream, and after a failed upgrade.
    stream: Option<Stream>,
    /// Received bytes not yet consumed as lines.
    pending: Vec<u8>,
    deadline: Instant,
}

impl Session {
    /// A session over a connected stream, finishing by `deadline`.
    pub fn new(tcp: net::TcpStream, deadline: Instant) -> Self {
        Self {
            stream: Some(Stream::Plain(tcp)),
            pending: Vec::new(),
            deadline,
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Upgrades the connection to TLS (implicit TLS, or after STARTTLS).
    pub fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), PluginError> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(PluginError::transient(
                "TLS requested on a connection that is not plain",
            ));
        };
        // A server may not pipeline anything before the handshake.
        self.pending.clear();
        let tls = TlsStream::connect(tcp, config, name, self.deadline)
            .map_err(|e| net_error("TLS handshake with the SMTP server", e))?;
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8], what: &str) -> Result<(), PluginError> {
        let deadline = self.deadline;
        let result = match &mut self.stream {
            Some(stream) => stream.write_all(bytes, deadline),
            None => Err(Error::new(FailureReason::Connect, "connection closed")),
        };
        result.map_err(|e| net_error(what, e))
    }

    fn read_more(&mut self, what: &str) -> Result<(), PluginError> {
        let mut buf = [0; 4096];
        let deadline = self.deadline;
        let n = match &mut self.stream {
            Some(stream) => stream.read(&mut buf, deadline),
            None => Ok(0),
        }
        .map_err(|e| net_error(what, e))?;
        if n == 0 {
            return Err(PluginError::transient(format!(
                "{what}: connection closed by the server"
            )));
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(())
    }

    fn read_line(&mut self, what: &str) -> Result<String, PluginError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
            }
            if self.pending.len() > MAX_LINE {
                return Err(PluginError::transient(format!(
                    "{what}: reply line longer than {MAX_LINE} bytes"
                )));
            }
            self.read_more(what)?;
        }
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self, what: &str) -> Result<Reply, PluginError> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(what)?;
            let code = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| {
                    PluginError::transient(format!("{what}: not an SMTP reply: {line:?}"))
                })?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() > MAX_REPLY_LINES {
                return Err(PluginError::transient(format!(
                    "{what}: reply of more than {MAX_REPLY_LINES} lines"
                )));
            }
        }
    }

    /// Sends `line` (CRLF added) and reads the reply, which must have code
    /// `expect`.
    pub fn command(
        &mut self,
        line: &str,
        what: &str,
        expect: &[u16],
    ) -> Result<Reply, PluginError> {
        self.write(format!("{line}\r\n").as_bytes(), what)?;
        let reply = self.reply(what)?;
        if expect.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(reply_error(what, &reply))
        }
    }

    /// Reads the server's greeting (220).
    pub fn greeting(&mut self) -> Result<Reply, PluginError> {
        let reply = self.reply("reading the server's greeting")?;
        if reply.code == 220 {
            Ok(reply)
        } else {
            Err(reply_error("greeting", &reply))
        }
    }

    /// EHLO (HELO if the server refuses it); the extensions the server
    /// advertises.
    pub fn hello(&mut self, name: &str) -> Result<Extensions, PluginError> {
        self.write(format!("EHLO {name}\r\n").as_bytes(), "EHLO")?;
        let reply = self.reply("EHLO")?;
        if reply.code == 250 {
            return Ok(Extensions::from_reply(&reply));
        }
        if reply.code / 100 != 5 {
            return Err(reply_error("EHLO", &reply));
        }
        self.command(&format!("HELO {name}"), "HELO", &[250])?;
        Ok(Extensions::default())
    }

    /// AUTH PLAIN (RFC 4616) with the initial response.
    pub fn auth_plain(
        &mut self,
        identity: &str,
        user: &str,
        password: &str,
    ) -> Result<(), PluginError> {
        let token = base64(format!("{identity}\0{user}\0{password}").as_bytes());
        self.write(format!("AUTH PLAIN {token}\r\n").as_bytes(), "AUTH PLAIN")?;
        let reply = self.reply("AUTH PLAIN")?;
        match reply.code {
            235 => Ok(()),
            _ => Err(reply_error("AUTH PLAIN", &reply)),
        }
    }

    /// AUTH LOGIN: the user name, then the password, each on the server's
    /// prompt.
    pub fn auth_login(&mut self, user: &str, password: &str) -> Result<(), PluginError> {
        self.command("AUTH LOGIN", "AUTH LOGIN", &[334])?;
        self.command(&base64(user.as_bytes()), "AUTH LOGIN (user name)", &[334])?;
        self.command(
            &base64(password.as_bytes()),
            "AUTH LOGIN (password)",
            &[235],
        )?;
        Ok(())
    }

    /// Sends the message: `data` must be dot-stuffed and end with the `.`
    /// line. Returns the server's acceptance.
    pub fn data(&mut self, data: &[u8]) -> Result<Reply, PluginError> {
        self.command("DATA", "DATA", &[354])?;
        self.write(data, "sending the message")?;
        let reply = self.reply("sending the message")?;
        if reply.code == 250 {
            Ok(reply)
        } else {
            Err(reply_error("sending the message", &reply))
        }
    }

    /// QUIT, ignoring the answer: the message is already accepted.
    pub fn quit(mut self) {
        if self.write(b"QUIT\r\n", "QUIT").is_ok() {
            let _ = self.reply("QUIT");
        }
    }
}

/// The extensions of an EHLO reply (`STARTTLS`, `AUTH PLAIN LOGIN` …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extensions(Vec<(String, String)>);

impl Extensions {
    fn from_reply(reply: &Reply) -> Self {
        // The first line is the server's greeting to us.
        Self(
            reply
                .lines
                .iter()
                .skip(1)
                .map(|line| {
                    let (keyword, params) =
                        line.split_once([' ', '=']).unwrap_or((line.as_str(), ""));
                    (keyword.to_ascii_uppercase(), params.trim().to_owned())
                })
                .collect(),
        )
    }

    /// The parameters of `keyword`, if the server advertises it.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, params)| params.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_parsed() {
        let reply = Reply {
            code: 250,
            lines: vec![
                "mail.example.com Hello".into(),
                "SIZE 1000".into(),
                "starttls".into(),
                "AUTH LOGIN PLAIN".into(),
                "AUTH=LOGIN".into(),
            ],
        };
        let ext = Extensions::from_reply(&reply);
        assert_eq!(ext.get("STARTTLS"), Some(""));
        assert_eq!(ext.get("AUTH"), Some("LOGIN PLAIN"));
        assert_eq!(ext.get("SIZE"), Some("1000"));
        assert_eq!(ext.get("8BITMIME"), None);
    }

    #[test]
    fn reply_codes_classify_errors() {
        let reply = |code| Reply {
            code,
            lines: vec!["x".into()],
        };
        assert!(matches!(
            reply_error("a", &reply(451)),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            reply_error("a", &reply(550)),
            PluginError::Permanent(_)
        ));
        assert_eq!(reply(535).text(), "535 x");
    }
}
