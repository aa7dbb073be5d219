//! Reading `/proc` and `/sys` through the plugin's read-only grants with
//! as few host calls as possible, and file-system statistics through the
//! host's `filesystem-stats` (statvfs).
//!
//! Every WASI filesystem call is a trip into the host, which runs it on a
//! blocking thread; a collection opens some fifty files, so the trips are
//! most of its cost. `std::fs::read_to_string` makes about seven per file
//! (open, stat for a size hint that `/proc` files report as 0, then a
//! probe read and reads of growing size); [`Files::read`] makes three:
//! open, one read of up to `READ_CHUNK` bytes, and the read that finds
//! the end; [`Files::read_value`] two. Natively (unit tests) it is plain
//! `std::fs` and statvfs(3).

use std::io;
use std::time::Duration;

use lookout_plugin_sdk::fs_stats::{FsStats, StatError};

/// Bytes asked for per read: more than any `/proc` or `/sys` file this
/// plugin reads on ordinary machines (`/proc/stat` of 256 CPUs is ~40 KiB),
/// so one read gets the whole file; larger files take more reads.
#[cfg(target_os = "wasi")]
const READ_CHUNK: u64 = 64 * 1024;

/// When [`Files`] stops reading a file.
#[cfg(target_os = "wasi")]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// At a read that returns nothing: always right.
    EmptyRead,
    /// At a read that returns less than asked: right for files the kernel
    /// writes whole at once.
    ShortRead,
}

/// The granted directories, opened once per collection.
pub struct Files {
    #[cfg(target_os = "wasi")]
    preopens: Vec<(wasip2::filesystem::types::Descriptor, String)>,
}

#[cfg(target_os = "wasi")]
impl Files {
    pub fn new() -> Files {
        Files {
            preopens: wasip2::filesystem::preopens::get_directories(),
        }
    }

    /// A whole file as text.
    pub fn read(&self, path: &str) -> io::Result<String> {
        self.read_until(path, Ending::EmptyRead)
    }

    /// A sysfs attribute or a `/proc/sys` value, as text. The kernel makes
    /// these whole on the first read, so a read that returns less than it
    /// asked for has reached the end; the read that would find nothing is
    /// saved (a third of the host calls for such a file).
    pub fn read_value(&self, path: &str) -> io::Result<String> {
        self.read_until(path, Ending::ShortRead)
    }

    fn read_until(&self, path: &str, ending: Ending) -> io::Result<String> {
        use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let (dir, relative) = self.locate(path)?;
        let file = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                relative,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(|e| error(path, e))?;
        let mut data: Vec<u8> = Vec::new();
        loop {
            let (chunk, end) = file
                .read(READ_CHUNK, data.len() as u64)
                .map_err(|e| error(path, e))?;
            let short = (chunk.len() as u64) < READ_CHUNK;
            if data.is_empty() {
                data = chunk;
            } else {
                data.extend_from_slice(&chunk);
            }
            // The host reports the end only on a read that returns nothing;
            // a `/proc` table may come back in short pieces before that.
            if end || (short && ending == Ending::ShortRead) {
                break;
            }
        }
        String::from_utf8(data)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path} is not UTF-8")))
    }

    /// Statistics of the file system mounted at `path`, waiting at most
    /// `timeout` for it (the host's statvfs, on the `statfs` grant).
    pub fn fs_stats(&self, path: &str, timeout: Duration) -> Result<FsStats, StatError> {
        lookout_plugin_sdk::fs_stats::stat(path, timeout)
    }

    /// The names in a directory, unsorted.
    pub fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let (dir, relative) = self.locate(path)?;
        let listed = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                relative,
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ,
            )
            .map_err(|e| error(path, e))?;
        let entries = listed.read_directory().map_err(|e| error(path, e))?;
        let mut names = Vec::new();
        while let Some(entry) = entries.read_directory_entry().map_err(|e| error(path, e))? {
            names.push(entry.name);
        }
        Ok(names)
    }

    /// The granted directory holding `path`, and the rest of the path.
    fn locate<'p>(
        &self,
        path: &'p str,
    ) -> io::Result<(&wasip2::filesystem::types::Descriptor, &'p str)> {
        self.preopens
            .iter()
            .filter_map(|(dir, root)| {
                let root = root.trim_end_matches('/');
                let rest = path.strip_prefix(root)?;
                // `/procfoo` is not under `/proc`.
                let inner = if rest.is_empty() {
                    ""
                } else {
                    rest.strip_prefix('/')?
                };
                let inner = if inner.is_empty() { "." } else { inner };
                Some((root.len(), dir, inner))
            })
            .max_by_key(|&(depth, _, _)| depth)
            .map(|(_, dir, inner)| (dir, inner))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{path} is outside the granted paths"),
                )
            })
    }
}

#[cfg(target_os = "wasi")]
fn error(path: &str, code: wasip2::filesystem::types::ErrorCode) -> io::Error {
    use wasip2::filesystem::types::ErrorCode;
    let kind = match code {
        ErrorCode::NoEntry => io::ErrorKind::NotFound,
        ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied,
        ErrorCode::Unsupported => io::ErrorKind::Unsupported,
        ErrorCode::NotDirectory => io::ErrorKind::NotADirectory,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{path}: {}", code.name()))
}

#[cfg(not(target_os = "wasi"))]
impl Files {
    pub fn new() -> Files {
        Files {}
    }

    pub fn read(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
    }

    pub fn read_value(&self, path: &str) -> io::Result<String> {
        self.read(path)
    }

    pub fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        std::fs::read_dir(path)?
            .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    /// statvfs(3) itself, without a timeout: the test machine's mounts answer.
    pub fn fs_stats(&self, path: &str, _timeout: Duration) -> Result<FsStats, StatError> {
        use lookout_plugin_sdk::fs_stats::StatErrorKind;
        let failed = |kind, why: &dyn std::fmt::Display| StatError {
            kind,
            message: format!("{path}: {why}"),
        };
        let c_path =
            std::ffi::CString::new(path).map_err(|e| failed(StatErrorKind::Invalid, &e))?;
        let mut buf = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c_path` is NUL-terminated; the struct is read only after
        // statvfs returned 0, having written it.
        if unsafe { libc::statvfs(c_path.as_ptr(), buf.as_mut_ptr()) } != 0 {
            let error = io::Error::last_os_error();
            let kind = match error.kind() {
                io::ErrorKind::NotFound => StatErrorKind::NotFound,
                _ => StatErrorKind::Other,
            };
            return Err(failed(kind, &error));
        }
        // SAFETY: written by the successful call.
        let buf = unsafe { buf.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the field types differ between targets
        Ok(FsStats {
            block_size: buf.f_frsize as u64,
            blocks: buf.f_blocks as u64,
            blocks_free: buf.f_bfree as u64,
            blocks_available: buf.f_bavail as u64,
            files: buf.f_files as u64,
            files_free: buf.f_ffree as u64,
            read_only: buf.f_flag & libc::ST_RDONLY != 0,
        })
    }
}
