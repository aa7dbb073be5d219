//! Why a query failed, mapped onto Prometheus' API error types.

/// A failed query. `Display` gives the message Prometheus would put in the
/// envelope's `error` field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query or its parameters are malformed (HTTP 400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed, e.g. many-to-many matching (HTTP 422, `execution`).
    #[error("{0}")]
    Execution(String),
    /// A construct whose Prometheus semantics lookout does not implement;
    /// the message names it (HTTP 422, `execution`).
    #[error("{0}")]
    Unsupported(String),
    /// The query ran longer than the engine's timeout (HTTP 503, `timeout`).
    #[error("{0}")]
    Timeout(String),
    /// The series source failed (HTTP 422, `execution`).
    #[error("{0}")]
    Source(String),
}

impl QueryError {
    /// The `errorType` of Prometheus' API envelope.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::Unsupported(_) | QueryError::Source(_) => {
                "execution"
            }
            QueryError::Timeout(_) => "timeout",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::BadData(_) => 400,
            QueryError::Execution(_) | QueryError::Unsupported(_) | QueryError::Source(_) => 422,
            QueryError::Timeout(_) => 503,
        }
    }
}

pub(crate) fn exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

pub(crate) fn unsupported(msg: impl Into<String>) -> QueryError {
    QueryError::Unsupported(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_prometheus_api() {
        assert_eq!(QueryError::BadData("x".into()).http_status(), 400);
        assert_eq!(QueryError::Execution("x".into()).error_type(), "execution");
        assert_eq!(QueryError::Unsupported("x".into()).http_status(), 422);
        assert_eq!(QueryError::Timeout("x".into()).http_status(), 503);
        assert_eq!(QueryError::Timeout("x".into()).error_type(), "timeout");
        assert_eq!(QueryError::Source("x".into()).error_type(), "execution");
    }
}
