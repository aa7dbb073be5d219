//! What the host benchmarks share: where the built plugins are.

use std::path::PathBuf;

/// The built plugin `stem` (`lookout_plugin_noop`), from `LOOKOUT_WASM_DIR`.
pub fn wasm(stem: &str) -> PathBuf {
    let dir = std::env::var_os("LOOKOUT_WASM_DIR")
        .map(PathBuf::from)
        .expect("LOOKOUT_WASM_DIR: run `cargo xtask bench`");
    dir.join(format!("{stem}.wasm"))
}

/// Hex SHA-256, the digest `Runtime::prepare` keys its compile cache by.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
