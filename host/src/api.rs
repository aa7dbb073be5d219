//! The HTTP API: the only module that knows axum.
//!
//! JSON endpoints answer in Prometheus' envelope — `{"status":"success",
//! "data":…}` or `{"status":"error","errorType":…,"error":…}` — so clients
//! written for Prometheus read lookout's errors the same way. Client errors
//! say what was wrong; internal errors are logged and say little.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/v1/plugins` | installed plugins: world, version, sha256, grants |
//! | `GET /api/v1/jobs` | jobs and, per target, last outcome, next run, back-off |
//! | `GET /api/v1/results?job=&target=&since=&limit=` | stored invocation results, oldest first |
//! | `GET /healthz` | `ok` while the process serves |
//! | `GET /metrics` | the host's own figures, Prometheus text format |

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::scheduler::JobBoard;
use crate::storage::{ResultQuery, Storage};
use crate::telemetry::Telemetry;

/// Most results one request returns.
const MAX_RESULTS: usize = 10_000;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<Storage>,
    pub board: Arc<JobBoard>,
    pub telemetry: Arc<Telemetry>,
}

/// The API's routes; tests call it with `oneshot`, `serve` binds it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/results", get(results))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

enum ApiError {
    BadData(String),
    NotFound,
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            ApiError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".to_string(),
            ),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see lookout's log".to_string(),
                )
            }
        };
        (
            status,
            Json(json!({"status": "error", "errorType": kind, "error": message})),
        )
            .into_response()
    }
}

fn success(data: impl serde::Serialize) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

async fn plugins(State(state): State<AppState>) -> Result<Response, ApiError> {
    let plugins = state
        .storage
        .plugins()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(plugins))
}

async fn jobs(State(state): State<AppState>) -> Response {
    success(state.board.snapshot())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultsParams {
    job: Option<String>,
    target: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

async fn results(
    State(state): State<AppState>,
    params: Result<Query<ResultsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadData(e.body_text()))?;
    let since_ms = params
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(ApiError::BadData)?;
    let limit = match params.limit.as_deref() {
        None => 1000,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_RESULTS).contains(n))
            .ok_or_else(|| {
                ApiError::BadData(format!(
                    "limit `{l}` must be an integer between 1 and {MAX_RESULTS}"
                ))
            })?,
    };
    let query = ResultQuery {
        job: params.job,
        target: params.target,
        since_ms,
        limit,
    };
    let storage = state.storage.clone();
    let found = tokio::task::spawn_blocking(move || storage.results(&query))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(found))
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let installed = state
        .storage
        .plugins()
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .len();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(installed),
    )
        .into_response())
}

/// A time as Prometheus' API takes it (Unix seconds, possibly fractional,
/// or RFC 3339), or a duration back from now (`5m`). Returns ms since epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0) as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = crate::config::parse_duration(text) {
        return Ok(crate::storage::now_ms() - d.as_millis() as i64);
    }
    Err(format!(
        "since `{text}` is not a time: use Unix seconds, RFC 3339, or a duration back from now like 5m"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        (
            dir,
            AppState {
                storage,
                board: Arc::new(JobBoard::default()),
                telemetry: Arc::new(Telemetry::new()),
            },
        )
    }

    async fn get(app: Router, uri: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn bad_query_parameters_are_400_with_prometheus_envelope() {
        let (_dir, state) = state();
        let (status, body) = get(router(state.clone()), "/api/v1/results?since=yesterday").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains("since `yesterday`"));
        let (status, body) = get(router(state.clone()), "/api/v1/results?limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = get(router(state), "/api/v1/results?jobb=x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("jobb"), "{body}");
    }

    #[tokio::test]
    async fn empty_store_answers_success_with_empty_lists() {
        let (_dir, state) = state();
        for uri in ["/api/v1/results", "/api/v1/plugins", "/api/v1/jobs"] {
            let (status, body) = get(router(state.clone()), uri).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, r#"{"data":[],"status":"success"}"#);
        }
        let (status, _) = get(router(state.clone()), "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = get(router(state), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("lookout_plugins_installed 0"));
    }

    #[test]
    fn times_parse_in_all_three_forms() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        let five_min_ago = parse_time("5m").unwrap();
        assert!((crate::storage::now_ms() - five_min_ago - 300_000).abs() < 1000);
        assert!(parse_time("soon").is_err());
    }
}
