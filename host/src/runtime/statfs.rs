//! File-system statistics on a plugin's behalf (`lookout:plugin/filesystem-stats`).
//!
//! `wasi:filesystem` describes files, not the file systems that hold them,
//! so a plugin that reports disk space (the `node` exporter) asks the host,
//! which calls statvfs(3).
//!
//! statvfs can block for as long as the file system does not answer, which
//! for a hard NFS mount whose server is gone is forever, and no signal the
//! host could send ends it. So each call runs on a thread of its own and
//! the caller stops waiting at its deadline; the thread is left behind,
//! *stranded*, until the kernel returns. Not a thread of tokio's blocking
//! pool: the runtime waits for those when it shuts down, and lookout could
//! not stop while a mount is dead. [`StatfsCalls`] keeps count, as
//! node_exporter keeps its "stuck mounts": while a path has a stranded
//! call, a new call for it fails at once with a timeout instead of
//! stranding another thread, and past [`limits::MAX_STRANDED_STATFS`]
//! stranded calls in all no new call starts. When the kernel finally
//! answers, the path is usable again.
//!
//! Whether the plugin may ask about a path at all is decided by the caller
//! (the sandbox's `statfs` and `files` grants) before [`stat`] is called;
//! the symbolic links of a path are resolved and checked again here, on the
//! call's thread, because resolving them touches the file system too.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use super::limits;
use super::sandbox::StatfsPolicy;

/// What statvfs(3) says about a file system; see `fs-stats` in the WIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub read_only: bool,
}

/// Why there are no statistics. Each variant is one case of the WIT enum
/// `stat-error`; the message is what the plugin is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatError {
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

/// The path a plugin gave, if it is one the host will look at: absolute,
/// without `..` (which would make a covered prefix say nothing about where
/// the path leads) and without NUL. `.` and repeated slashes are dropped.
pub fn checked_path(text: &str) -> Result<PathBuf, StatError> {
    let invalid = |why: &str| Err(StatError::Invalid(format!("{text:?} {why}")));
    if text.contains('\0') {
        return invalid("holds a NUL character");
    }
    let path = Path::new(text);
    if !path.is_absolute() {
        return invalid("is not an absolute path");
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return invalid("holds `..`; give the path without it");
    }
    Ok(path.components().collect())
}

/// Statistics of the file system `path` is on, by the time `deadline`. With
/// a `policy`, the path's symbolic links are resolved first and the result
/// must still be covered (a link under a granted path may lead anywhere).
pub async fn stat(
    path: PathBuf,
    policy: Option<StatfsPolicy>,
    deadline: Instant,
) -> Result<FsStats, StatError> {
    static CALLS: LazyLock<Arc<StatfsCalls>> =
        LazyLock::new(|| StatfsCalls::new(limits::MAX_STRANDED_STATFS));
    CALLS
        .run(path, deadline, move |path| {
            if let Some(policy) = policy {
                let real = std::fs::canonicalize(path).map_err(|e| io_error(path, e))?;
                if real != path && !policy.permits_resolved(&real) {
                    return Err(StatError::Denied(format!(
                        "denied by the sandbox: {} leads to {}, which no statfs or files grant covers",
                        path.display(),
                        real.display()
                    )));
                }
            }
            statvfs(path)
        })
        .await
}

/// The system call itself; blocks for as long as the file system takes.
fn statvfs(path: &Path) -> Result<FsStats, StatError> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StatError::Invalid(format!("{path:?} holds a NUL character")))?;
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; statvfs
    // writes the whole struct when it returns 0, and only then is it read.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io_error(path, std::io::Error::last_os_error()));
    }
    // SAFETY: initialised by the successful call above.
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

fn io_error(path: &Path, error: std::io::Error) -> StatError {
    use std::io::ErrorKind;
    let message = format!("{}: {error}", path.display());
    match error.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => StatError::NotFound(message),
        _ => StatError::Other(message),
    }
}

/// Blocking calls that may outlive their callers, counted by path (see the
/// module docs). One per process: stranded threads are the process's.
pub struct StatfsCalls {
    stranded: Mutex<Stranded>,
    max_stranded: usize,
}

#[derive(Default)]
struct Stranded {
    /// Calls still waiting after their caller gave up, per path.
    by_path: HashMap<PathBuf, usize>,
    total: usize,
}

impl StatfsCalls {
    pub fn new(max_stranded: usize) -> Arc<StatfsCalls> {
        Arc::new(StatfsCalls {
            stranded: Mutex::new(Stranded::default()),
            max_stranded,
        })
    }

    /// Runs `call(path)` on a thread of its own and waits for it until
    /// `deadline`; past it the call is stranded (left to finish alone) and
    /// the answer is a timeout.
    pub async fn run<T, F>(
        self: &Arc<Self>,
        path: PathBuf,
        deadline: Instant,
        call: F,
    ) -> Result<T, StatError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, StatError> + Send + 'static,
    {
        {
            let stranded = self.stranded.lock().unwrap_or_else(|p| p.into_inner());
            if stranded.by_path.contains_key(&path) {
                return Err(StatError::Timeout(format!(
                    "{}: an earlier call has not returned; the file system does not answer",
                    path.display()
                )));
            }
            if stranded.total >= self.max_stranded {
                return Err(StatError::Other(format!(
                    "{}: not asked, {} calls are still waiting on file systems that do not answer",
                    path.display(),
                    stranded.total
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(StatError::Timeout(format!(
                "{}: no time left before the deadline",
                path.display()
            )));
        }
        // Set by whichever side finishes first, the call or the wait, under
        // the `stranded` lock, so that a stranded call is counted exactly
        // once and uncounted exactly once.
        let settled = Arc::new(AtomicBool::new(false));
        let (answer, answered) = tokio::sync::oneshot::channel();
        let finished = CallFinished {
            calls: self.clone(),
            settled: settled.clone(),
            path: path.clone(),
        };
        std::thread::Builder::new()
            .name("lookout-statfs".into())
            .spawn(move || {
                let result = call(&finished.path);
                drop(finished);
                // The caller may have stopped waiting; then nobody needs it.
                let _ = answer.send(result);
            })
            .map_err(|e| {
                StatError::Other(format!(
                    "{}: cannot start a thread for statfs: {e}",
                    path.display()
                ))
            })?;
        let started = Instant::now();
        match tokio::time::timeout_at(deadline.into(), answered).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StatError::Other(format!(
                "{}: statfs ended without an answer",
                path.display()
            ))),
            Err(_) => {
                self.strand(&settled, &path);
                Err(StatError::Timeout(format!(
                    "{}: the file system did not answer within {:?}",
                    path.display(),
                    started.elapsed()
                )))
            }
        }
    }

    /// The caller stopped waiting for the call on `path`: count it.
    fn strand(&self, settled: &AtomicBool, path: &Path) {
        let mut stranded = self.stranded.lock().unwrap_or_else(|p| p.into_inner());
        if !settled.swap(true, Ordering::AcqRel) {
            stranded.total += 1;
            *stranded.by_path.entry(path.to_owned()).or_default() += 1;
            tracing::warn!(
                path = %path.display(), stranded = stranded.total,
                "file system did not answer statfs in time; its path is skipped until it does"
            );
        }
    }

    /// Calls stranded so far and not yet returned.
    #[cfg(test)]
    fn stranded(&self) -> usize {
        self.stranded.lock().unwrap().total
    }
}

/// Dropped when a call's thread is done with it, returned or panicked: if
/// the caller had given up on it, it is no longer stranded.
struct CallFinished {
    calls: Arc<StatfsCalls>,
    settled: Arc<AtomicBool>,
    path: PathBuf,
}

impl Drop for CallFinished {
    fn drop(&mut self) {
        let mut stranded = self
            .calls
            .stranded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.settled.swap(true, Ordering::AcqRel) {
            stranded.total -= 1;
            if let Some(n) = stranded.by_path.get_mut(&self.path) {
                *n -= 1;
                if *n == 0 {
                    stranded.by_path.remove(&self.path);
                }
            }
            tracing::info!(path = %self.path.display(), "file system answered statfs again");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn paths_must_be_absolute_without_parent_steps() {
        assert_eq!(checked_path("/").unwrap(), PathBuf::from("/"));
        assert_eq!(
            checked_path("//srv/./data/").unwrap(),
            PathBuf::from("/srv/data")
        );
        for bad in ["srv/data", "", "/srv/../etc", "/proc/..", "/a\0b"] {
            assert!(
                matches!(checked_path(bad), Err(StatError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn statvfs_describes_the_root_file_system() {
        let root = statvfs(Path::new("/")).unwrap();
        assert!(root.block_size > 0 && root.blocks > 0, "{root:?}");
        assert!(root.blocks_free <= root.blocks);
        assert!(root.blocks_available <= root.blocks_free);
        assert!(root.files_free <= root.files);
        assert!(matches!(
            statvfs(Path::new("/no/such/mount/point")),
            Err(StatError::NotFound(_))
        ));
    }

    /// A call that blocks until the test lets it go, as statvfs on a dead
    /// NFS mount blocks until the server comes back.
    fn hung_call(release: mpsc::Receiver<()>) -> impl FnOnce(&Path) -> Result<u8, StatError> {
        move |_| {
            let _ = release.recv();
            Ok(1)
        }
    }

    #[tokio::test]
    async fn a_hung_file_system_times_out_and_is_skipped_until_it_answers() {
        let calls = StatfsCalls::new(4);
        let nfs = PathBuf::from("/mnt/nfs");
        let soon = || Instant::now() + Duration::from_millis(50);
        // For calls that must answer: room for a busy machine to start the
        // thread.
        let ample = || Instant::now() + Duration::from_secs(5);

        let (release, blocked) = mpsc::channel();
        let started = Instant::now();
        let first = calls.run(nfs.clone(), soon(), hung_call(blocked)).await;
        assert!(matches!(first, Err(StatError::Timeout(_))), "{first:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(calls.stranded(), 1);

        // While that call waits, the path fails at once without a thread.
        let again = calls.run(nfs.clone(), soon(), |_| Ok(2)).await;
        assert!(
            matches!(&again, Err(StatError::Timeout(m)) if m.contains("an earlier call has not returned")),
            "{again:?}"
        );
        // Other paths are unaffected.
        assert_eq!(calls.run("/".into(), ample(), |_| Ok(3)).await, Ok(3));

        // The file system answers: the path works again.
        release.send(()).unwrap();
        let recovered = Instant::now() + Duration::from_secs(5);
        while calls.stranded() > 0 {
            assert!(
                Instant::now() < recovered,
                "the stranded call never settled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(calls.run(nfs, ample(), |_| Ok(4)).await, Ok(4));
    }

    #[tokio::test]
    async fn stranded_calls_are_capped() {
        let calls = StatfsCalls::new(2);
        let soon = || Instant::now() + Duration::from_millis(20);
        let mut releases = Vec::new();
        for path in ["/mnt/a", "/mnt/b"] {
            let (release, blocked) = mpsc::channel();
            releases.push(release);
            let result = calls.run(path.into(), soon(), hung_call(blocked)).await;
            assert!(matches!(result, Err(StatError::Timeout(_))));
        }
        let refused = calls.run("/mnt/c".into(), soon(), |_| Ok(1)).await;
        assert!(
            matches!(&refused, Err(StatError::Other(m)) if m.contains("2 calls are still waiting")),
            "{refused:?}"
        );
        drop(releases);
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_nothing() {
        let calls = StatfsCalls::new(1);
        let result = calls
            .run("/".into(), Instant::now(), |_| -> Result<(), _> {
                panic!("must not be called")
            })
            .await;
        assert!(matches!(result, Err(StatError::Timeout(_))));
        assert_eq!(calls.stranded(), 0);
    }
}
