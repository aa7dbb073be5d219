//! Sizes and inode counts of file systems (statvfs) through the host.
//!
//! `wasi:filesystem` describes files, not the file systems that hold them,
//! so the host makes the call for the plugin
//! (`lookout:plugin/filesystem-stats` in `wit/plugin.wit`). The plugin asks
//! for the paths it describes with
//! [`PluginInfo::statfs`](crate::PluginInfo::statfs) (`["*"]` for every
//! mount point); paths under its [`files`](crate::PluginInfo::files) grants
//! are covered without asking.
//!
//! ```no_run
//! use std::time::Duration;
//! use lookout_plugin_sdk::fs_stats;
//!
//! # fn main() -> Result<(), fs_stats::StatError> {
//! let root = fs_stats::stat("/", Duration::from_secs(5))?;
//! println!(
//!     "{} of {} bytes free, {} inodes free",
//!     root.available_bytes(),
//!     root.size_bytes(),
//!     root.files_free
//! );
//! # Ok(()) }
//! ```
//!
//! A file system that does not answer (a hung NFS mount) costs at most the
//! timeout: the host stops waiting then, and answers
//! [`StatErrorKind::Timeout`] at once for that path for as long as its
//! earlier call has not returned.

use std::fmt;
use std::time::Duration;

use crate::bindings::probe::lookout::plugin::filesystem_stats as wit;
use crate::{Error, FailureReason};

/// What statvfs(3) says about one file system. The block counts are in
/// units of [`block_size`](Self::block_size) bytes; the `*_bytes` methods
/// multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// The unit of the block counts, in bytes (statvfs's `f_frsize`).
    pub block_size: u64,
    /// Blocks for data (`f_blocks`).
    pub blocks: u64,
    /// Free blocks, those reserved for the superuser included (`f_bfree`).
    pub blocks_free: u64,
    /// Free blocks an unprivileged user may fill (`f_bavail`).
    pub blocks_available: u64,
    /// Inodes, used and free (`f_files`); 0 where the file system does not
    /// count them.
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub files_free: u64,
    /// Mounted read-only.
    pub read_only: bool,
}

impl FsStats {
    /// The file system's size in bytes (`df`'s "Size").
    pub fn size_bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }

    /// Free bytes, the superuser's reserve included.
    pub fn free_bytes(&self) -> u64 {
        self.blocks_free.saturating_mul(self.block_size)
    }

    /// Bytes an unprivileged user may still write (`df`'s "Avail").
    pub fn available_bytes(&self) -> u64 {
        self.blocks_available.saturating_mul(self.block_size)
    }
}

/// Why the host gave no statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatErrorKind {
    /// No `statfs` or `files` grant covers the path.
    Denied,
    /// The path does not exist.
    NotFound,
    /// The file system did not answer in time, or has not answered an
    /// earlier call yet.
    Timeout,
    /// Not an absolute path, or it holds `..`.
    Invalid,
    /// Anything else; see the message.
    Other,
}

/// A failed [`stat`]: what kind of failure, and the host's explanation
/// (which names the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatError {
    pub kind: StatErrorKind,
    pub message: String,
}

impl fmt::Display for StatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatError {}

/// The SDK's error, with the reason a probe reports: `denied`, `timeout`,
/// `config` for an invalid path, `other` for the rest.
impl From<StatError> for Error {
    fn from(error: StatError) -> Self {
        let reason = match error.kind {
            StatErrorKind::Denied => FailureReason::Denied,
            StatErrorKind::Timeout => FailureReason::Timeout,
            StatErrorKind::Invalid => FailureReason::Config,
            StatErrorKind::NotFound | StatErrorKind::Other => FailureReason::Other,
        };
        Error::new(reason, error.message)
    }
}

/// Statistics of the file system `path` (absolute) is on, waiting at most
/// `timeout` (and never past the invocation's deadline).
pub fn stat(path: &str, timeout: Duration) -> Result<FsStats, StatError> {
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    wit::stat(path, timeout_ms)
        .map(|s| FsStats {
            block_size: s.block_size,
            blocks: s.blocks,
            blocks_free: s.blocks_free,
            blocks_available: s.blocks_available,
            files: s.files,
            files_free: s.files_free,
            read_only: s.read_only,
        })
        .map_err(|(code, message)| StatError {
            kind: kind(code),
            message,
        })
}

fn kind(code: wit::StatError) -> StatErrorKind {
    use wit::StatError as E;
    match code {
        E::Denied => StatErrorKind::Denied,
        E::NotFound => StatErrorKind::NotFound,
        E::Timeout => StatErrorKind::Timeout,
        E::Invalid => StatErrorKind::Invalid,
        E::Other => StatErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_blocks_times_block_size() {
        let stats = FsStats {
            block_size: 4096,
            blocks: 1000,
            blocks_free: 300,
            blocks_available: 250,
            files: 64,
            files_free: 10,
            read_only: false,
        };
        assert_eq!(stats.size_bytes(), 4_096_000);
        assert_eq!(stats.free_bytes(), 1_228_800);
        assert_eq!(stats.available_bytes(), 1_024_000);
        let huge = FsStats {
            blocks: u64::MAX,
            ..stats
        };
        assert_eq!(huge.size_bytes(), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn host_errors_keep_their_kind_and_become_failure_reasons() {
        use wit::StatError as E;
        let cases = [
            (E::Denied, StatErrorKind::Denied, FailureReason::Denied),
            (E::NotFound, StatErrorKind::NotFound, FailureReason::Other),
            (E::Timeout, StatErrorKind::Timeout, FailureReason::Timeout),
            (E::Invalid, StatErrorKind::Invalid, FailureReason::Config),
            (E::Other, StatErrorKind::Other, FailureReason::Other),
        ];
        for (code, expected, reason) in cases {
            let error = StatError {
                kind: kind(code),
                message: "/mnt: what the host said".into(),
            };
            assert_eq!(error.kind, expected);
            let error = Error::from(error);
            assert_eq!(error.reason(), reason, "{code:?}");
            assert_eq!(error.message(), "/mnt: what the host said");
        }
    }
}
