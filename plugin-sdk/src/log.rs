//! Logging through lookout: each line lands in the host's log, tagged with
//! the plugin, the job and the target.
//!
//! ```no_run
//! use lookout_plugin_sdk::log;
//!
//! log::info!("probing {} with {} retries", "https://example.com", 3);
//! log::write(log::Level::Debug, "raw message");
//! ```
//!
//! Anything a plugin prints to stdout or stderr goes wherever the host sends
//! WASI output (usually nowhere); use this module instead.

use crate::bindings::probe::lookout::plugin::host;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for host::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Writes `message` to lookout's log at `level`.
pub fn write(level: Level, message: &str) {
    host::log(level.into(), message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log_trace {
    ($($arg:tt)+) => { $crate::__lookout_log!(Trace, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log_debug {
    ($($arg:tt)+) => { $crate::__lookout_log!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log_info {
    ($($arg:tt)+) => { $crate::__lookout_log!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log_warn {
    ($($arg:tt)+) => { $crate::__lookout_log!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lookout_log_error {
    ($($arg:tt)+) => { $crate::__lookout_log!(Error, $($arg)+) };
}

/// Logs a `format!`-style message at [`Level::Trace`].
#[doc(inline)]
pub use crate::__lookout_log_trace as trace;

/// Logs a `format!`-style message at [`Level::Debug`].
#[doc(inline)]
pub use crate::__lookout_log_debug as debug;

/// Logs a `format!`-style message at [`Level::Info`].
#[doc(inline)]
pub use crate::__lookout_log_info as info;

/// Logs a `format!`-style message at [`Level::Warn`].
#[doc(inline)]
pub use crate::__lookout_log_warn as warn;

/// Logs a `format!`-style message at [`Level::Error`].
#[doc(inline)]
pub use crate::__lookout_log_error as error;
