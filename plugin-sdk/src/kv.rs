//! Plugin-scoped key-value state, persisted by lookout.
//!
//! Keys of one plugin are invisible to every other plugin. Values are bytes;
//! the host caps their size (see `docs/plugin-guide.md`) and refuses a write
//! over the cap.
//!
//! ```no_run
//! use lookout_plugin_sdk::kv;
//!
//! let runs = kv::get("runs")
//!     .and_then(|bytes| String::from_utf8(bytes).ok())
//!     .and_then(|text| text.parse::<u64>().ok())
//!     .unwrap_or(0);
//! kv::set("runs", (runs + 1).to_string()).expect("value under the cap");
//! ```

use crate::bindings::probe::lookout::plugin::host;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::kv_get(key)
}

/// Stores `value` under `key`. The error is the host's explanation (value
/// over the cap, storage unavailable …).
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), String> {
    host::kv_set(key, value.as_ref())
}

/// Removes `key`; removing an absent key is not an error.
pub fn delete(key: &str) {
    host::kv_delete(key);
}
