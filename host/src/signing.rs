//! Plugin signatures: ed25519 over a component's sha256, with keys the
//! operator chooses to trust.
//!
//! A signature says "the holder of this key vouches for the component with
//! this digest"; it travels beside the component (`x.wasm.sig`), so it works
//! for files, URLs and OCI pulls alike. The signed message is
//! `lookout-plugin-signature-v1\n<sha256 hex>` (a fixed prefix, so a
//! signature can never be replayed as one over something else).
//!
//! Files are one line each: `ed25519-secret <hex seed>` (keep it private),
//! `ed25519-public <hex key>`, `ed25519-signature <hex>`. A key is named by
//! its fingerprint: the first 16 hex digits of the public key's sha256.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

const MESSAGE_PREFIX: &str = "lookout-plugin-signature-v1\n";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(
        "the signature does not verify with any trusted key ({keys}): refusing the component (sha256 {sha256})"
    )]
    Untrusted { keys: String, sha256: String },
}

fn message(sha256_hex: &str) -> Vec<u8> {
    format!("{MESSAGE_PREFIX}{sha256_hex}").into_bytes()
}

/// Reads `path`, a one-line file `<kind> <hex>` of `N` bytes.
fn read_hex<const N: usize>(path: &Path, kind: &str) -> Result<[u8; N], SigningError> {
    let err = |message: String| SigningError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let hex_text = text
        .trim()
        .strip_prefix(kind)
        .map(str::trim)
        .ok_or_else(|| err(format!("not a `{kind} <hex>` file")))?;
    let bytes = hex::decode(hex_text).map_err(|e| err(format!("bad hex: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| err(format!("{} bytes where {N} belong", b.len())))
}

fn write_line(path: &Path, line: &str, private: bool) -> Result<(), SigningError> {
    let err = |e: std::io::Error| SigningError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = private;
    use std::io::Write;
    let mut file = options.open(path).map_err(err)?;
    writeln!(file, "{line}").map_err(err)
}

/// Fingerprint of a public key: 16 hex digits of its sha256.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

/// Writes a new key pair: `secret` and `<secret>.pub`; refuses to
/// overwrite either. Returns the public key's fingerprint.
pub fn generate(secret: &Path) -> Result<String, SigningError> {
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&seed);
    let public = public_path(secret);
    write_line(
        &public,
        &format!(
            "ed25519-public {}",
            hex::encode(key.verifying_key().as_bytes())
        ),
        false,
    )?;
    write_line(
        secret,
        &format!("ed25519-secret {}", hex::encode(seed)),
        true,
    )?;
    Ok(fingerprint(&key.verifying_key()))
}

/// `<secret>.pub`.
pub fn public_path(secret: &Path) -> std::path::PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    name.into()
}

pub fn read_public(path: &Path) -> Result<VerifyingKey, SigningError> {
    let bytes = read_hex::<32>(path, "ed25519-public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| SigningError::File {
        path: path.display().to_string(),
        message: format!("not an ed25519 public key: {e}"),
    })
}

/// Signs the component with digest `sha256_hex`; writes `out`.
pub fn sign(secret: &Path, sha256_hex: &str, out: &Path) -> Result<String, SigningError> {
    let seed = read_hex::<32>(secret, "ed25519-secret")?;
    let key = SigningKey::from_bytes(&seed);
    let signature = key.sign(&message(sha256_hex));
    write_line(
        out,
        &format!("ed25519-signature {}", hex::encode(signature.to_bytes())),
        false,
    )?;
    Ok(fingerprint(&key.verifying_key()))
}

/// The fingerprint of the trusted key the signature in `signature_file`
/// verifies with, for the component with digest `sha256_hex`.
pub fn verify(
    signature_file: &Path,
    sha256_hex: &str,
    trusted: &[VerifyingKey],
) -> Result<String, SigningError> {
    let bytes = read_hex::<64>(signature_file, "ed25519-signature")?;
    let signature = Signature::from_bytes(&bytes);
    let message = message(sha256_hex);
    trusted
        .iter()
        .find(|key| key.verify(&message, &signature).is_ok())
        .map(fingerprint)
        .ok_or_else(|| SigningError::Untrusted {
            keys: if trusted.is_empty() {
                "none given: --trusted-key <file.pub>".into()
            } else {
                trusted
                    .iter()
                    .map(fingerprint)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            sha256: sha256_hex.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_digest_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let fp = generate(&a).unwrap();
        generate(&b).unwrap();
        assert!(generate(&a).is_err(), "keys are never overwritten");
        let digest = "ab".repeat(32);
        let sig = dir.path().join("x.sig");
        assert_eq!(sign(&a, &digest, &sig).unwrap(), fp);
        let (pa, pb) = (
            read_public(&public_path(&a)).unwrap(),
            read_public(&public_path(&b)).unwrap(),
        );
        assert_eq!(verify(&sig, &digest, &[pb, pa]).unwrap(), fp);
        assert!(verify(&sig, &digest, &[pb]).is_err());
        let other = "cd".repeat(32);
        let err = verify(&sig, &other, &[pa]).unwrap_err().to_string();
        assert!(err.contains(&other) && err.contains(&fp), "{err}");
        // A public key is not a secret key, nor a signature.
        assert!(sign(&public_path(&a), &digest, &dir.path().join("y.sig")).is_err());
        assert!(verify(&public_path(&a), &digest, &[pa]).is_err());
    }
}
