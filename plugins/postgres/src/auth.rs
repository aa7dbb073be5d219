//! Password authentication: PostgreSQL's MD5 scheme and SCRAM-SHA-256
//! (RFC 5802 with SHA-256, RFC 7677), without channel binding since the
//! connection has no TLS.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// Most PBKDF2 iterations a server may ask for. PostgreSQL uses 4096 (its
/// `scram_iterations` default); each iteration is one HMAC, and a hostile
/// peer could otherwise keep the plugin hashing until its deadline.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The SASL mechanism this client speaks.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// GS2 header: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

/// The answer to AuthenticationMD5Password:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let inner = hex(&Md5::digest(
        [password.as_bytes(), user.as_bytes()].concat(),
    ));
    let outer = hex(&Md5::digest([inner.as_bytes(), &salt].concat()));
    format!("md5{outer}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SCRAM exchange went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramError(String);

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SCRAM-SHA-256: {}", self.0)
    }
}

impl std::error::Error for ScramError {}

fn scram_error(what: impl Into<String>) -> ScramError {
    ScramError(what.into())
}

/// The client side of one SCRAM-SHA-256 exchange.
///
/// [`client_first`](Self::client_first) → server-first →
/// [`client_final`](Self::client_final) → server-final →
/// [`verify_server_final`](Self::verify_server_final).
pub struct ScramClient {
    password: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
    /// The signature the server must prove, once client-final is built.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// `username` goes into the client-first message; PostgreSQL ignores it
    /// (it authenticates the startup message's user) and libpq sends it
    /// empty. `client_nonce` must be fresh random printable text without
    /// commas. The password is used as given: SASLprep, which only changes
    /// non-ASCII passwords, is not applied.
    pub fn new(username: &str, password: &str, client_nonce: String) -> Self {
        let client_first_bare = format!("n={},r={client_nonce}", escape_username(username));
        Self {
            password: password.as_bytes().to_vec(),
            client_nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// The client-final message answering `server_first`
    /// (`r=<nonce>,s=<salt>,i=<iterations>`).
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                Some(("m", _)) => return Err(scram_error("the server requires an extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| scram_error("server-first has no nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(scram_error("the server's nonce does not extend ours"));
        }
        let salt = BASE64
            .decode(salt.ok_or_else(|| scram_error("server-first has no salt"))?)
            .map_err(|_| scram_error("the salt is not base64"))?;
        let iterations: u32 = iterations
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                scram_error(format!(
                    "iteration count must be 1 to {MAX_ITERATIONS}: {server_first}"
                ))
            })?;

        let salted_password = hi(&self.password, &salt, iterations);
        let client_key = hmac(&salted_password, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let channel_binding = BASE64.encode(GS2_HEADER);
        let client_final_without_proof = format!("c={channel_binding},r={nonce}");
        let auth_message = format!(
            "{},{server_first},{client_final_without_proof}",
            self.client_first_bare
        );
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted_password, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!(
            "{client_final_without_proof},p={}",
            BASE64.encode(proof)
        ))
    }

    /// Checks the server-final message (`v=<signature>`): the server proves
    /// it knows the password's verifier, so a peer that merely accepts any
    /// password is not taken for the real server.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or_else(|| scram_error("server-final before client-final"))?;
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(scram_error(format!("the server refused: {error}")));
        }
        let signature = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| scram_error("server-final has no signature"))?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| scram_error("the server signature is not base64"))?;
        if &signature != expected {
            return Err(scram_error(
                "the server's signature is wrong (it does not know this password)",
            ));
        }
        Ok(())
    }
}

/// `=` and `,` escaped as SCRAM's saslname wants them.
fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 5802's `Hi`: PBKDF2 with HMAC-SHA-256, one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = hmac(password, &[salt, &1u32.to_be_bytes()].concat());
    let mut result = block.clone();
    for _ in 1..iterations {
        block = hmac(password, &block);
        for (r, b) in result.iter_mut().zip(&block) {
            *r ^= b;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange.
    #[test]
    fn rfc_7677_test_vector() {
        let mut client = ScramClient::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            client
                .verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(
            client
                .verify_server_final("e=invalid-proof")
                .unwrap_err()
                .to_string()
                .contains("invalid-proof")
        );
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let client = || ScramClient::new("", "pw", "abc".into());
        for bad in [
            "r=xyz123,s=c2FsdA==,i=4096",  // does not extend our nonce
            "r=abc,s=c2FsdA==,i=4096",     // does not add to it either
            "r=abcd,i=4096",               // no salt
            "r=abcd,s=!!,i=4096",          // salt not base64
            "r=abcd,s=c2FsdA==,i=0",       // no iterations
            "r=abcd,s=c2FsdA==,i=9999999", // too many
            "m=ext,r=abcd,s=c2FsdA==,i=1", // mandatory extension
        ] {
            assert!(client().client_final(bad).is_err(), "{bad}");
        }
        assert!(client().verify_server_final("v=x").is_err(), "out of order");
    }

    #[test]
    fn user_names_are_escaped() {
        let client = ScramClient::new("a=b,c", "pw", "n".into());
        assert_eq!(client.client_first(), "n,,n=a=3Db=2Cc,r=n");
    }

    /// Computed independently (Python's hashlib):
    /// `"md5" + md5(md5(b"secretalice").hexdigest() + b"\x01\x02\x03\x04")`.
    #[test]
    fn md5_password_hash() {
        assert_eq!(
            md5_password("alice", "secret", [1, 2, 3, 4]),
            "md598a0412b9c31436fc53776e863350083"
        );
    }
}
