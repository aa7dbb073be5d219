//! TLS inside the guest (feature `tls`): rustls with the pure-Rust
//! RustCrypto provider (ring and aws-lc need a C toolchain for wasm),
//! driven over a [`net::TcpStream`] with the caller's deadline.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use lookout_plugin_sdk::{net, tls};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let deadline = Instant::now() + Duration::from_secs(5);
//! let addr = net::resolve("example.com", 443, Duration::from_secs(2))?[0];
//! let tcp = net::TcpStream::connect(addr, Duration::from_secs(2))?;
//! let config = tls::client_config(&tls::TlsConfig::default())?;
//! let stream = tls::TlsStream::connect(tcp, config, tls::server_name("example.com")?, deadline)?;
//! for cert in stream.peer_certificates() {
//!     println!("expires {:?}", tls::certificate_info(cert).map(|c| c.not_after));
//! }
//! # Ok(()) }
//! ```
//!
//! Why it is in the guest: wasi:http hides the handshake (no certificate
//! expiry, no `insecure_skip_verify`, no custom CA), and TLS over a plain
//! TCP connection is what SMTP's STARTTLS and a TCP probe's TLS need.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

pub use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
pub use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::{Error, FailureReason, PluginError, net};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Prometheus' `tls_config`, as far as it works inside the sandbox:
/// certificates as inline PEM (`ca`), because a plugin reads no files —
/// lookout reads `ca_file` where a configuration names one and hands the
/// plugin its contents.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificates to trust instead of the built-in Mozilla roots.
    pub ca: Option<String>,
    /// The name the certificate must carry (default: the target's host).
    pub server_name: Option<String>,
    /// Accept any certificate. For tests and broken servers only.
    pub insecure_skip_verify: bool,
    /// Lowest protocol version: `TLS12` or `TLS13` (Go's names, as Prometheus').
    pub min_version: Option<String>,
    /// Highest protocol version, same names.
    pub max_version: Option<String>,
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::new(FailureReason::Tls, format!("{what}: {error}"))
}

/// The rustls client configuration for `config`; a bad CA or version is a
/// [`PluginError::Config`] naming the field.
pub fn client_config(config: &TlsConfig) -> Result<Arc<ClientConfig>, PluginError> {
    let provider = Arc::new(rustls_rustcrypto::provider());
    let version = |field: &str, value: &Option<String>| -> Result<Option<u8>, PluginError> {
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some("TLS12") => Ok(Some(2)),
            Some("TLS13") => Ok(Some(3)),
            Some(other) => Err(PluginError::config(format!(
                "tls_config.{field}: {other:?} is not supported (TLS12 or TLS13)"
            ))),
        }
    };
    let min = version("min_version", &config.min_version)?.unwrap_or(2);
    let max = version("max_version", &config.max_version)?.unwrap_or(3);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, v)| v)
            .collect();
    if versions.is_empty() {
        return Err(PluginError::config(
            "tls_config: min_version is above max_version",
        ));
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| PluginError::permanent(format!("TLS setup: {e}")))?;
    let config = if config.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &config.ca {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert =
                        cert.map_err(|e| PluginError::config(format!("tls_config.ca: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| PluginError::config(format!("tls_config.ca: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(PluginError::config(
                        "tls_config.ca holds no PEM certificate",
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `host` (brackets allowed around an IPv6 literal) as the name a
/// certificate must carry.
pub fn server_name(host: &str) -> Result<ServerName<'static>, PluginError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned())
        .map_err(|e| PluginError::config(format!("TLS server name {host:?}: {e}")))
}

/// A TLS connection over a TCP stream.
pub struct TlsStream {
    conn: ClientConnection,
    tcp: net::TcpStream,
}

impl TlsStream {
    /// Performs the handshake over `tcp`, by `deadline`. A refused
    /// certificate or handshake is [`FailureReason::Tls`].
    pub fn connect(
        tcp: net::TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        deadline: Instant,
    ) -> Result<Self, Error> {
        let conn = ClientConnection::new(config, name).map_err(|e| tls_error("TLS setup", e))?;
        let mut stream = Self { conn, tcp };
        while stream.conn.is_handshaking() {
            stream.flush_tls(deadline)?;
            if stream.conn.is_handshaking()
                && stream.conn.wants_read()
                && stream.read_tls(deadline)? == 0
            {
                return Err(Error::new(
                    FailureReason::Tls,
                    "TLS handshake: connection closed by the server",
                ));
            }
        }
        stream.flush_tls(deadline)?;
        Ok(stream)
    }

    /// The server's certificate chain, its own certificate first.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.conn.peer_certificates().unwrap_or(&[])
    }

    /// The negotiated protocol as Go names it (`TLS 1.3`), blackbox's
    /// `probe_tls_version_info{version}`.
    pub fn protocol_version(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some("TLS 1.2"),
            rustls::ProtocolVersion::TLSv1_3 => Some("TLS 1.3"),
            _ => None,
        }
    }

    /// The negotiated cipher suite's IANA name.
    pub fn cipher_suite(&self) -> Option<&'static str> {
        self.conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
    }

    /// The TCP connection underneath.
    pub fn tcp(&self) -> &net::TcpStream {
        &self.tcp
    }

    /// Sends what rustls has queued.
    fn flush_tls(&mut self, deadline: Instant) -> Result<(), Error> {
        while self.conn.wants_write() {
            let mut records = Vec::new();
            self.conn
                .write_tls(&mut records)
                .map_err(|e| tls_error("TLS", e))?;
            self.tcp.write_all(&records, deadline)?;
        }
        Ok(())
    }

    /// Reads records from the socket into rustls; 0 at the end of the stream.
    fn read_tls(&mut self, deadline: Instant) -> Result<usize, Error> {
        let mut buf = vec![0; READ_CHUNK];
        let n = self.tcp.read(&mut buf, deadline)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            self.conn
                .read_tls(&mut rest)
                .map_err(|e| tls_error("TLS", e))?;
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the server why (an alert rustls queued), then fail.
                let _ = self.flush_tls(deadline);
                return Err(tls_error("TLS", e));
            }
        }
        Ok(n)
    }

    /// Sends `bytes`, by `deadline`.
    pub fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Error> {
        self.conn
            .writer()
            .write_all(bytes)
            .map_err(|e| tls_error("TLS", e))?;
        self.flush_tls(deadline)
    }

    /// Reads decrypted bytes into `buf`, waiting by `deadline`; 0 at the end
    /// of the stream.
    pub fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, Error> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.read_tls(deadline)? == 0 {
                        return Ok(0);
                    }
                    self.flush_tls(deadline)?;
                }
                // A server that closes without close_notify (common for
                // HTTP/1.0-style servers) has still sent everything.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(tls_error("TLS", e)),
            }
        }
    }
}

/// A plain or TLS connection, read and written the same way.
pub enum Stream {
    Plain(net::TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    pub fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Error> {
        match self {
            Stream::Plain(s) => s.write_all(bytes, deadline),
            Stream::Tls(s) => s.write_all(bytes, deadline),
        }
    }

    pub fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, Error> {
        match self {
            Stream::Plain(s) => s.read(buf, deadline),
            Stream::Tls(s) => s.read(buf, deadline),
        }
    }

    /// The TLS session, when there is one.
    pub fn tls(&self) -> Option<&TlsStream> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => Some(s),
        }
    }
}

/// `insecure_skip_verify`: any certificate, but a handshake signature
/// that still has to be valid for the certificate's key.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// blackbox_exporter's samples of a TLS session: the earliest expiry of
/// the server's chain (`probe_ssl_earliest_cert_expiry`, and
/// `probe_ssl_last_chain_expiry_timestamp_seconds`), the server
/// certificate (`probe_ssl_last_chain_info{fingerprint_sha256, subject,
/// issuer, subjectalternative}`), `probe_tls_version_info{version}` and
/// `probe_tls_cipher_info{cipher}`.
pub fn session_samples(session: &TlsStream) -> Vec<crate::Sample> {
    use crate::Sample;
    use sha2::Digest;
    let mut samples = Vec::new();
    let certs = session.peer_certificates();
    let infos: Vec<CertificateInfo> = certs.iter().filter_map(|c| certificate_info(c)).collect();
    if let Some(earliest) = infos.iter().map(|c| c.not_after).min() {
        samples.push(Sample::new(
            "probe_ssl_earliest_cert_expiry",
            earliest as f64,
        ));
        samples.push(Sample::new(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            earliest as f64,
        ));
    }
    if let (Some(leaf), Some(der)) = (infos.first(), certs.first()) {
        let fingerprint: String = sha2::Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        samples.push(
            Sample::new("probe_ssl_last_chain_info", 1)
                .label("fingerprint_sha256", fingerprint)
                .label("subject", leaf.subject.clone())
                .label("issuer", leaf.issuer.clone())
                .label("subjectalternative", leaf.dns_names.clone()),
        );
    }
    if let Some(version) = session.protocol_version() {
        samples.push(Sample::new("probe_tls_version_info", 1).label("version", version));
    }
    if let Some(cipher) = session.cipher_suite() {
        // Go's suite names: TLS 1.3 suites without rustls' `TLS13_`.
        samples.push(
            Sample::new("probe_tls_cipher_info", 1)
                .label("cipher", cipher.replace("TLS13_", "TLS_")),
        );
    }
    samples
}

/// What blackbox_exporter reports about a certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateInfo {
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The subject's and issuer's distinguished names, Go's
    /// `pkix.Name.String()` form (`CN=example.com,O=Example`).
    pub subject: String,
    pub issuer: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// DNS names of the subjectAltName extension, comma-separated.
    pub dns_names: String,
}

/// Reads the validity, names and serial of a DER certificate; `None` when
/// it is not a certificate this reader understands.
pub fn certificate_info(der: &[u8]) -> Option<CertificateInfo> {
    let (cert, _) = der::element(der, der::SEQUENCE)?;
    let (tbs, _) = der::element(cert, der::SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = der::element(rest, 0xa0)?.1;
    }
    let (serial, rest) = der::element(rest, der::INTEGER)?;
    let (_signature, rest) = der::element(rest, der::SEQUENCE)?;
    let (issuer, rest) = der::element(rest, der::SEQUENCE)?;
    let (validity, rest) = der::element(rest, der::SEQUENCE)?;
    let (subject, rest) = der::element(rest, der::SEQUENCE)?;
    let (not_before, after) = der::time(validity)?;
    let (not_after, _) = der::time(after)?;
    let serial = serial
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Some(CertificateInfo {
        not_before,
        not_after,
        subject: der::name(subject),
        issuer: der::name(issuer),
        serial: if serial.is_empty() {
            "0".into()
        } else {
            serial
        },
        dns_names: der::dns_names(rest).join(","),
    })
}

/// Just enough DER to read certificates.
mod der {
    pub const INTEGER: u8 = 0x02;
    pub const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;

    /// The contents of the element at the start of `input` if its tag is
    /// `tag`, and what follows it.
    pub fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (found, contents, rest) = any(input)?;
        (found == tag).then_some((contents, rest))
    }

    /// Tag, contents and rest of the element at the start of `input`.
    fn any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |l, b| (l << 8) | *b as usize);
            rest = &rest[n..];
            len
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    /// A UTCTime or GeneralizedTime as Unix seconds, and what follows it.
    pub fn time(input: &[u8]) -> Option<(i64, &[u8])> {
        let (tag, contents, rest) = any(input)?;
        let text = std::str::from_utf8(contents).ok()?.strip_suffix('Z')?;
        let (year, text) = match tag {
            UTC_TIME => {
                let yy: i64 = text.get(..2)?.parse().ok()?;
                // RFC 5280: 50–99 are 19xx.
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
            }
            GENERALIZED_TIME => (text.get(..4)?.parse().ok()?, &text[4..]),
            _ => return None,
        };
        let field = |i: usize| -> Option<i64> { text.get(i..i + 2)?.parse().ok() };
        let (month, day, hour, minute, second) =
            (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
        Some((
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second,
            rest,
        ))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// A Name as Go's `pkix.Name.String()`: attributes in reverse order,
    /// short names for the common ones.
    pub fn name(mut input: &[u8]) -> String {
        let mut parts = Vec::new();
        while let Some((set, rest)) = element(input, SET) {
            input = rest;
            let mut attrs = set;
            while let Some((attr, rest)) = element(attrs, SEQUENCE) {
                attrs = rest;
                let Some((oid, value)) = element(attr, OID) else {
                    continue;
                };
                let Some((_, value, _)) = any(value) else {
                    continue;
                };
                let key = match oid {
                    [0x55, 0x04, 0x03] => "CN",
                    [0x55, 0x04, 0x06] => "C",
                    [0x55, 0x04, 0x07] => "L",
                    [0x55, 0x04, 0x08] => "ST",
                    [0x55, 0x04, 0x0a] => "O",
                    [0x55, 0x04, 0x0b] => "OU",
                    [0x55, 0x04, 0x05] => "SERIALNUMBER",
                    _ => continue,
                };
                parts.push(format!("{key}={}", String::from_utf8_lossy(value)));
            }
        }
        parts.reverse();
        parts.join(",")
    }

    /// The DNS names of the subjectAltName extension, from what follows
    /// the subject in a TBSCertificate.
    pub fn dns_names(mut input: &[u8]) -> Vec<String> {
        // subjectPublicKeyInfo, then optional [1] [2] unique IDs, then [3] extensions.
        let Some((_, rest)) = element(input, SEQUENCE) else {
            return Vec::new();
        };
        input = rest;
        while let Some((tag, contents, rest)) = any(input) {
            input = rest;
            if tag != 0xa3 {
                continue;
            }
            let Some((mut extensions, _)) = element(contents, SEQUENCE) else {
                break;
            };
            while let Some((extension, rest)) = element(extensions, SEQUENCE) {
                extensions = rest;
                let Some((oid, mut value)) = element(extension, OID) else {
                    continue;
                };
                if oid != [0x55, 0x1d, 0x11] {
                    continue;
                }
                // Optional `critical` BOOLEAN before the OCTET STRING.
                if value.first() == Some(&0x01) {
                    value = any(value).map_or(&[][..], |(_, _, rest)| rest);
                }
                let Some((octets, _)) = element(value, 0x04) else {
                    continue;
                };
                let Some((mut names, _)) = element(octets, SEQUENCE) else {
                    continue;
                };
                let mut out = Vec::new();
                while let Some((tag, name, rest)) = any(names) {
                    names = rest;
                    // [2] dNSName, IA5String.
                    if tag == 0x82 {
                        out.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
                return out;
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` / 127.0.0.1 made with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
    /// -subj /O=lookout/CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1
    /// -days 1 -set_serial 0x1f2e`, created 2026-11-21.
    const CERT_PEM: &str = include_str!("../tests/localhost-cert.pem");

    #[test]
    fn certificate_details_are_read_like_go_reads_them() {
        let der = CertificateDer::from_pem_slice(CERT_PEM.as_bytes()).unwrap();
        let info = certificate_info(&der).unwrap();
        assert_eq!(info.subject, "CN=localhost,O=lookout");
        assert_eq!(info.issuer, "CN=localhost,O=lookout");
        assert_eq!(info.serial, "1f2e");
        assert_eq!(info.dns_names, "localhost");
        assert_eq!(info.not_after - info.not_before, 86_400);
        // 2026-11-21 or 22, whichever day the fixture was made on.
        assert!(
            (1_795_219_200..1_795_392_000).contains(&info.not_before),
            "{info:?}"
        );
        assert!(certificate_info(b"not a certificate").is_none());
    }

    #[test]
    fn versions_and_cas_are_checked() {
        let bad = TlsConfig {
            min_version: Some("TLS11".into()),
            ..TlsConfig::default()
        };
        assert!(client_config(&bad).is_err());
        let bad = TlsConfig {
            ca: Some("no pem here".into()),
            ..TlsConfig::default()
        };
        assert!(client_config(&bad).is_err());
        let ok = TlsConfig {
            ca: Some(CERT_PEM.into()),
            min_version: Some("TLS13".into()),
            ..TlsConfig::default()
        };
        assert!(client_config(&ok).is_ok());
    }
}
