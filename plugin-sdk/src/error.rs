//! The error of a failed operation — an HTTP request, a connect, a read —
//! carrying the [`FailureReason`] a probe reports for it. [`crate::http`]
//! and [`crate::net`] both return it, so a plugin handles one error type.

use std::fmt;

use crate::{FailureReason, PluginError, ProbeReport};

/// Why an operation failed, and the reason a probe reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    reason: FailureReason,
    message: String,
}

impl Error {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    pub fn reason(&self) -> FailureReason {
        self.reason
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A failed operation is a failed probe, for the error's reason.
impl From<Error> for ProbeReport {
    fn from(error: Error) -> Self {
        ProbeReport::failure(error.reason, error.message)
    }
}

/// For exporters and notifiers, where `?` should fail the call: a
/// [`FailureReason::Config`] error is [`PluginError::Config`], a denied
/// access [`PluginError::Permanent`] (retrying will not help until the grant
/// changes), anything else [`PluginError::Transient`].
impl From<Error> for PluginError {
    fn from(error: Error) -> Self {
        match error.reason {
            FailureReason::Config => PluginError::Config(error.message),
            FailureReason::Denied => PluginError::Permanent(error.message),
            _ => PluginError::Transient(error.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_reports_and_plugin_errors() {
        let report = ProbeReport::from(Error::new(FailureReason::Denied, "no grant"));
        assert!(!report.success);
        assert_eq!(report.failure_reason, Some(FailureReason::Denied));
        assert_eq!(report.message, "no grant");

        let plugin_error = |reason| PluginError::from(Error::new(reason, "m"));
        assert_eq!(
            plugin_error(FailureReason::Config),
            PluginError::Config("m".into())
        );
        assert_eq!(
            plugin_error(FailureReason::Denied),
            PluginError::Permanent("m".into())
        );
        assert_eq!(
            plugin_error(FailureReason::Timeout),
            PluginError::Transient("m".into())
        );
    }
}
