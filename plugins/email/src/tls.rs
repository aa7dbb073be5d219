//! TLS inside the guest: rustls with the pure-Rust RustCrypto provider,
//! driven over a [`net::TcpStream`] with the session's deadline.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use lookout_plugin_sdk::{FailureReason, PluginError, net};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Deserialize;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The part of Prometheus' `tls_config` that works inside the sandbox:
/// certificates as inline PEM, not files.
#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificates to trust instead of the built-in Mozilla roots.
    pub ca: Option<String>,
    /// The name to verify the server's certificate against (default: the
    /// smarthost's host).
    pub server_name: Option<String>,
    /// Accept any certificate. For tests and broken servers only.
    pub insecure_skip_verify: bool,
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> lookout_plugin_sdk::Error {
    lookout_plugin_sdk::Error::new(FailureReason::Tls, format!("{what}: {error}"))
}

/// The client configuration for `config`.
pub fn client_config(config: &TlsConfig) -> Result<Arc<ClientConfig>, PluginError> {
    let provider = Arc::new(rustls_rustcrypto::provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
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

/// `host` as the name a certificate must carry.
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
    /// Performs the handshake over `tcp`, by `deadline`.
    pub fn connect(
        tcp: net::TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        deadline: Instant,
    ) -> Result<Self, lookout_plugin_sdk::Error> {
        let conn = ClientConnection::new(config, name).map_err(|e| tls_error("TLS setup", e))?;
        let mut stream = Self { conn, tcp };
        while stream.conn.is_handshaking() {
            stream.flush_tls(deadline)?;
            if stream.conn.is_handshaking()
                && stream.conn.wants_read()
                && stream.read_tls(deadline)? == 0
            {
                return Err(lookout_plugin_sdk::Error::new(
                    FailureReason::Tls,
                    "TLS handshake: connection closed by the server",
                ));
            }
        }
        stream.flush_tls(deadline)?;
        Ok(stream)
    }

    /// Sends what rustls has queued.
    fn flush_tls(&mut self, deadline: Instant) -> Result<(), lookout_plugin_sdk::Error> {
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
    fn read_tls(&mut self, deadline: Instant) -> Result<usize, lookout_plugin_sdk::Error> {
        let mut buf = vec![0; READ_CHUNK];
        let n = self.tcp.read(&mut buf, deadline)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            self.conn
                .read_tls(&mut rest)
                .map_err(|e| tls_error("TLS", e))?;
            self.conn
                .process_new_packets()
                .map_err(|e| tls_error("TLS", e))?;
        }
        Ok(n)
    }

    /// Sends `bytes`, by `deadline`.
    pub fn write_all(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), lookout_plugin_sdk::Error> {
        self.conn
            .writer()
            .write_all(bytes)
            .map_err(|e| tls_error("TLS", e))?;
        self.flush_tls(deadline)
    }

    /// Reads decrypted bytes into `buf`, waiting by `deadline`; 0 at the end
    /// of the stream.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, lookout_plugin_sdk::Error> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.read_tls(deadline)? == 0 {
                        return Ok(0);
                    }
                    self.flush_tls(deadline)?;
                }
                Err(e) => return Err(tls_error("TLS", e)),
            }
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
