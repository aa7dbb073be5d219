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
//! | `GET/POST /api/v1/query`, `/api/v1/query_range` | PromQL, Prometheus' API exactly |
//! | `GET/POST /api/v1/series`, `/api/v1/labels`, `GET /api/v1/label/<name>/values` | series metadata |
//! | `GET /api/v1/metadata`, `/api/v1/status/buildinfo` | what Grafana asks a Prometheus data source |
//! | `GET /probe?target=&module=` | a blackbox_exporter module run now, its metrics as Prometheus text |
//! | `GET /healthz` | `ok` while the process serves |
//! | `GET /metrics` | the host's own figures, Prometheus text format |
//!
//! Every request that can change state — any method but GET/HEAD, except
//! the read-only POST forms of the query endpoints — needs
//! `Authorization: Bearer <token>` (`[server] token_file`, by default the
//! data directory's `api-token`). Denied unless granted: an endpoint added
//! later is covered without anyone remembering to.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::query::{QueryService, parse_step, parse_time};
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
    pub query: QueryService,
    pub rules: Arc<crate::rules::RuleBoard>,
    pub alerting: Arc<crate::alerting::Alerting>,
    /// What mutating requests must present as their bearer token.
    pub token: Arc<str>,
    /// blackbox_exporter's `/probe`.
    pub probes: Arc<crate::blackbox::ProbeEndpoint>,
    /// Detector jobs: anomalies, predictions, insights.
    pub detection: crate::detection::DetectionBoard,
}

/// The API's routes; tests call it with `oneshot`, `serve` binds it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/detectors", get(detectors))
        .route("/api/v1/anomalies", get(anomalies))
        .route("/api/v1/predictions", get(predictions))
        .route("/api/v1/insights", get(insights))
        .route("/api/v1/results", get(results))
        .route("/api/v1/query", get(prom_query).post(prom_query))
        .route(
            "/api/v1/query_range",
            get(prom_query_range).post(prom_query_range),
        )
        .route("/api/v1/series", get(prom_series).post(prom_series))
        .route("/api/v1/labels", get(prom_labels).post(prom_labels))
        .route("/api/v1/label/{name}/values", get(prom_label_values))
        .route("/api/v1/metadata", get(prom_metadata))
        .route("/api/v1/rules", get(prom_rules))
        .route("/api/v1/alerts/history", get(alert_history))
        .route(
            "/api/v1/alerts/groups/acknowledge",
            axum::routing::post(acknowledge_group),
        )
        .route("/api/v2/status", get(am_status))
        .route("/api/v2/receivers", get(am_receivers))
        .route("/api/v2/alerts", get(am_alerts).post(am_post_alerts))
        .route("/api/v2/alerts/groups", get(am_alert_groups))
        .route("/api/v2/silences", get(am_silences).post(am_post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(am_silence).delete(am_expire_silence),
        )
        .route("/api/v1/alerts", get(prom_alerts))
        .route("/api/v1/status/buildinfo", get(prom_buildinfo))
        .route("/probe", get(blackbox_probe))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// POST forms of endpoints that only read (Prometheus' query API).
const READ_ONLY_POSTS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
];

/// Lets reads through and asks everything else for the API token.
async fn require_token(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    let reads = matches!(*request.method(), Method::GET | Method::HEAD)
        || (request.method() == Method::POST && READ_ONLY_POSTS.contains(&request.uri().path()));
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if reads || presented.is_some_and(|t| same_token(t, &state.token)) {
        return next.run(request).await;
    }
    ApiError::Unauthorized.into_response()
}

/// Compares without stopping at the first difference, so the time taken
/// says nothing about how much of a guess was right.
fn same_token(presented: &str, token: &str) -> bool {
    presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
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
    /// A query that parsed but could not be evaluated (Prometheus: 422).
    Execution(String),
    /// A query that ran out of time (Prometheus: 503).
    Timeout(String),
    NotFound,
    /// A request that changes state without the API token.
    Unauthorized,
    Internal(String),
}

impl From<lookout_promql::QueryError> for ApiError {
    fn from(e: lookout_promql::QueryError) -> Self {
        match e.http_status() {
            400 => ApiError::BadData(e.to_string()),
            503 => ApiError::Timeout(e.to_string()),
            _ => ApiError::Execution(e.to_string()),
        }
    }
}

impl From<crate::query::LookupError> for ApiError {
    fn from(e: crate::query::LookupError) -> Self {
        match e {
            crate::query::LookupError::BadData(m) => ApiError::BadData(m),
            crate::query::LookupError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            ApiError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            ApiError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            ApiError::Timeout(m) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", m),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".to_string(),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this request changes state: send `Authorization: Bearer <token>` with the API token (the data directory's `api-token`, or `[server] token_file`)".to_string(),
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

/// Prometheus' success envelope around a query result, rendered where the
/// query was evaluated (a day of 100 series is megabytes of JSON).
fn query_success_body(value: &lookout_promql::Value) -> String {
    let mut body = String::new();
    body.push_str(r#"{"status":"success","data":"#);
    lookout_promql::write_value_json(&mut body, value);
    body.push('}');
    body
}

fn json_body(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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

async fn detectors(State(state): State<AppState>) -> Response {
    success(state.detection.status())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorParams {
    detector: Option<String>,
}

/// Series whose latest point a detector judged anomalous, highest score
/// first, with the share of their recent points that were (`confidence`).
async fn anomalies(
    State(state): State<AppState>,
    params: Result<Query<DetectorParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadData(e.body_text()))?;
    Ok(success(
        state.detection.anomalies(params.detector.as_deref()),
    ))
}

/// Forecasts of forecasting detectors, soonest threshold crossing first.
async fn predictions(
    State(state): State<AppState>,
    params: Result<Query<DetectorParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadData(e.body_text()))?;
    Ok(success(
        state.detection.predictions(params.detector.as_deref()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InsightParams {
    /// Anomalies starting within this of the previous one group together.
    window: Option<String>,
    /// How far back ended anomalies are considered.
    since: Option<String>,
}

/// Default grouping window of `/api/v1/insights`.
const INSIGHT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// Default look-back of `/api/v1/insights`.
const INSIGHT_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Anomalies that started close together, grouped, newest group first;
/// inside a group the first to start leads (the probable cause).
async fn insights(
    State(state): State<AppState>,
    params: Result<Query<InsightParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadData(e.body_text()))?;
    let duration = |text: Option<&str>, what: &str, default: std::time::Duration| match text {
        Some(t) => crate::config::parse_duration(t)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"{what}\": {e}"))),
        None => Ok(default),
    };
    let window = duration(params.window.as_deref(), "window", INSIGHT_WINDOW)?;
    let since = duration(params.since.as_deref(), "since", INSIGHT_LOOKBACK)?;
    Ok(success(state.detection.insights(
        window.as_millis() as i64,
        since.as_millis() as i64,
    )))
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
        .map(parse_since)
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
    let found = run_blocking(move || storage.results(&query))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(found))
}

#[derive(Deserialize)]
struct ProbeParams {
    target: Option<String>,
    module: Option<String>,
}

/// blackbox_exporter's `/probe`: its status codes and plain-text errors,
/// not the JSON envelope, because Prometheus is the client.
async fn blackbox_probe(
    State(state): State<AppState>,
    Query(params): Query<ProbeParams>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::blackbox::ProbeRequestError as E;
    let scrape_timeout = headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok());
    let answer = state
        .probes
        .probe(
            params.module.as_deref(),
            params.target.as_deref(),
            scrape_timeout,
        )
        .await;
    match answer {
        Ok(answer) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            answer.exposition,
        )
            .into_response(),
        Err(e) => {
            let status = match e {
                E::MissingTarget | E::UnknownModule(_) => StatusCode::BAD_REQUEST,
                E::BadScrapeTimeout(_) | E::Unavailable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, format!("{e}\n")).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let internal = |e: crate::storage::StorageError| ApiError::Internal(e.to_string());
    let gauges = crate::telemetry::Gauges {
        plugins_installed: state.storage.plugins().map_err(internal)?.len(),
        outbox_depth: state.storage.outbox_depth().map_err(internal)?,
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(&gauges),
    )
        .into_response())
}

/// Request parameters as Prometheus reads them: the URL's query string and,
/// for POST, a form-encoded body, repeated keys kept (`match[]`).
struct PromParams(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for PromParams {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let query = request.uri().query().unwrap_or("").to_string();
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::BadData(format!("reading the request body: {e}")))?;
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if is_form {
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(PromParams(pairs))
    }
}

impl PromParams {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A time parameter, or `default` when absent (Prometheus' messages).
    fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(text) => parse_time(text)
                .map_err(|e| ApiError::BadData(format!("invalid parameter {key:?}: {e}"))),
        }
    }

    fn required_time(&self, key: &str) -> Result<i64, ApiError> {
        let text = self.get(key).unwrap_or("");
        parse_time(text).map_err(|e| ApiError::BadData(format!("invalid parameter {key:?}: {e}")))
    }

    fn query(&self) -> Result<String, ApiError> {
        match self.get("query") {
            Some(q) if !q.trim().is_empty() => Ok(q.to_string()),
            _ => Err(ApiError::BadData("invalid parameter \"query\": unknown position: parse error: no expression found in input".into())),
        }
    }
}

/// Prometheus' bounds for series metadata requests without start/end.
const MIN_TIME: i64 = i64::MIN / 2;
const MAX_TIME: i64 = i64::MAX / 2;

/// Most points a range query may return per series, as Prometheus.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

async fn prom_query(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let query = params.query()?;
    let t = params.time("time", crate::storage::now_ms())?;
    let service = state.query.clone();
    let small = service.is_cheap(&query, 1);
    let body = run_query_work(small, move || {
        service.instant(&query, t).map(|v| query_success_body(&v))
    })
    .await??;
    Ok(json_body(body))
}

async fn prom_query_range(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let query = params.query()?;
    let start = params.required_time("start")?;
    let end = params.required_time("end")?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = parse_step(params.get("step").unwrap_or(""))
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?;
    if step <= 0 {
        return Err(ApiError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let service = state.query.clone();
    let small = service.is_cheap(&query, ((end - start) / step + 1) as u64);
    let body = run_query_work(small, move || {
        service
            .range(&query, start, end, step)
            .map(|v| query_success_body(&v))
    })
    .await??;
    Ok(json_body(body))
}

/// Runs storage or query work off the async executor. On the server's
/// multi-threaded runtime it runs right here, in place, while tokio moves
/// this worker's other tasks elsewhere: no hand-off to a pool thread and
/// back, which on a small machine costs more than a short query.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    run_query_work(false, work).await
}

/// [`run_blocking`], or, for work known to be small (a query of a few
/// thousand samples), right on this worker: even moving the worker's other
/// tasks away costs ~50 µs, a tenth of such a request.
async fn run_query_work<T: Send + 'static>(
    small: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if small {
        return Ok(work());
    }
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return Ok(tokio::task::block_in_place(work));
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn labels_json(labels: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

async fn prom_series(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let selectors = params.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let sets = QueryService::parse_selectors(&selectors)?;
    let (start, end) = (
        params.time("start", MIN_TIME)?,
        params.time("end", MAX_TIME)?,
    );
    let service = state.query.clone();
    let found = run_blocking(move || service.series(&sets, start, end)).await??;
    Ok(success(
        found.iter().map(|l| labels_json(l)).collect::<Vec<_>>(),
    ))
}

async fn prom_labels(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let sets = QueryService::parse_selectors(&params.all("match[]"))?;
    let (start, end) = (
        params.time("start", MIN_TIME)?,
        params.time("end", MAX_TIME)?,
    );
    let service = state.query.clone();
    let names = run_blocking(move || service.label_names(&sets, start, end)).await??;
    Ok(success(names))
}

async fn prom_label_values(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let sets = QueryService::parse_selectors(&params.all("match[]"))?;
    let (start, end) = (
        params.time("start", MIN_TIME)?,
        params.time("end", MAX_TIME)?,
    );
    let service = state.query.clone();
    let values = run_blocking(move || service.label_values(&name, &sets, start, end)).await??;
    Ok(success(values))
}

/// Type and help of the metrics lookout itself writes; plugin metrics carry
/// none yet (the scrape exporter will pass `# TYPE`/`# HELP` through).
const KNOWN_METADATA: &[(&str, &str, &str)] = &[
    (
        "up",
        "gauge",
        "1 if the job's plugin ran for the target, 0 if the invocation failed.",
    ),
    (
        "scrape_duration_seconds",
        "gauge",
        "Duration of the invocation.",
    ),
    (
        "scrape_samples_scraped",
        "gauge",
        "Samples the plugin returned.",
    ),
    (
        "probe_success",
        "gauge",
        "Displays whether or not the probe was a success",
    ),
    (
        "probe_duration_seconds",
        "gauge",
        "Returns how long the probe took to complete in seconds",
    ),
    (
        "probe_http_status_code",
        "gauge",
        "Response HTTP status code",
    ),
    (
        "probe_http_content_length",
        "gauge",
        "Length of http content response",
    ),
    ("probe_http_redirects", "gauge", "The number of redirects"),
    (
        "probe_http_ssl",
        "gauge",
        "Indicates if SSL was used for the final redirect",
    ),
    (
        "probe_dns_lookup_time_seconds",
        "gauge",
        "Returns the time taken for probe dns lookup in seconds",
    ),
    (
        "probe_ip_protocol",
        "gauge",
        "Specifies whether probe ip protocol is IP4 or IP6",
    ),
];

async fn prom_metadata(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let wanted = params.get("metric").map(str::to_string);
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let service = state.query.clone();
    let present =
        run_blocking(move || service.label_values("__name__", &[], MIN_TIME, MAX_TIME)).await??;
    let mut out = serde_json::Map::new();
    for (name, kind, help) in KNOWN_METADATA {
        if out.len() >= limit
            || wanted.as_deref().is_some_and(|w| w != *name)
            || !present.iter().any(|p| p == name)
        {
            continue;
        }
        out.insert(
            name.to_string(),
            json!([{"type": kind, "help": help, "unit": ""}]),
        );
    }
    Ok(success(out))
}

async fn prom_rules(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let filter = lookout_rules::RuleTypeFilter::parse(params.get("type").unwrap_or(""))
        .map_err(|e| ApiError::BadData(e.to_string()))?;
    Ok(success(state.rules.with_groups(|groups| {
        lookout_rules::rules_json(groups, filter)
    })))
}

async fn prom_alerts(State(state): State<AppState>) -> Response {
    success(state.rules.with_groups(lookout_rules::alerts_json))
}

// ---- Alertmanager API v2 (what amtool and Prometheus call) ----------------

/// Alertmanager's v2 API answers errors with a bare JSON string.
fn am_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::Value::String(message.into()))).into_response()
}

fn am_json(value: impl serde::Serialize) -> Response {
    Json(value).into_response()
}

/// `filter=` matchers (repeatable) and the boolean filters of GET /alerts.
fn am_filter(params: &PromParams) -> Result<lookout_alerting::api::AlertFilter, String> {
    let mut filter = lookout_alerting::api::AlertFilter::default();
    for m in params.all("filter") {
        let parsed =
            lookout_alerting::parse_matchers(&m).map_err(|e| format!("bad matcher {m:?}: {e}"))?;
        filter.matchers.extend(parsed);
    }
    let flag = |name: &str, default: bool| match params.get(name) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    };
    filter.active = flag("active", true)?;
    filter.silenced = flag("silenced", true)?;
    filter.inhibited = flag("inhibited", true)?;
    filter.unprocessed = flag("unprocessed", true)?;
    if let Some(receiver) = params.get("receiver") {
        filter = filter.with_receiver(receiver)?;
    }
    Ok(filter)
}

async fn am_status(State(state): State<AppState>) -> Response {
    let version = lookout_alerting::api::VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        revision: String::new(),
        branch: String::new(),
        build_user: String::new(),
        build_date: String::new(),
        go_version: String::new(),
    };
    let started = state.alerting.started();
    am_json(state.alerting.with(|d| d.api_status(version, started)))
}

async fn am_receivers(State(state): State<AppState>) -> Response {
    am_json(state.alerting.with(|d| d.api_receivers()))
}

async fn am_alerts(State(state): State<AppState>, params: PromParams) -> Response {
    match am_filter(&params) {
        Ok(filter) => am_json(
            state
                .alerting
                .with(|d| d.api_alerts(&filter, chrono::Utc::now())),
        ),
        Err(e) => am_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn am_alert_groups(State(state): State<AppState>, params: PromParams) -> Response {
    match am_filter(&params) {
        Ok(filter) => am_json(
            state
                .alerting
                .with(|d| d.api_alert_groups(&filter, chrono::Utc::now())),
        ),
        Err(e) => am_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn am_post_alerts(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let posted: Vec<lookout_alerting::api::PostableAlert> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return am_error(StatusCode::BAD_REQUEST, format!("invalid alerts: {e}")),
    };
    let now = chrono::Utc::now();
    let alerts = posted.into_iter().map(|a| a.into_alert(now)).collect();
    match state.alerting.insert(alerts) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => am_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn am_silences(State(state): State<AppState>, params: PromParams) -> Response {
    let mut matchers = Vec::new();
    for m in params.all("filter") {
        match lookout_alerting::parse_matchers(&m) {
            Ok(parsed) => matchers.extend(parsed),
            Err(e) => return am_error(StatusCode::BAD_REQUEST, format!("bad matcher {m:?}: {e}")),
        }
    }
    am_json(
        state
            .alerting
            .with(|d| d.api_silences(&matchers, chrono::Utc::now())),
    )
}

async fn am_post_silence(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let posted: lookout_alerting::PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return am_error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    let id = match state
        .alerting
        .with(|d| d.silences_mut().set(posted, chrono::Utc::now()))
    {
        Ok(id) => id,
        Err(e) => return am_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = state.alerting.persist() {
        return ApiError::Internal(e.to_string()).into_response();
    }
    am_json(json!({"silenceID": id}))
}

async fn am_silence(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match state
        .alerting
        .with(|d| d.api_silence(&id, chrono::Utc::now()))
    {
        Some(s) => am_json(s),
        None => am_error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

async fn am_expire_silence(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(e) = state
        .alerting
        .with(|d| d.silences_mut().expire(&id, chrono::Utc::now()))
    {
        return am_error(StatusCode::NOT_FOUND, format!("silence {id}: {e}"));
    }
    if let Err(e) = state.alerting.persist() {
        return ApiError::Internal(e.to_string()).into_response();
    }
    StatusCode::OK.into_response()
}

/// What Alertmanager cannot tell: when each alert fired and resolved, who
/// was notified and how it went. `since` as for results; newest `limit`.
async fn alert_history(
    State(state): State<AppState>,
    params: PromParams,
) -> Result<Response, ApiError> {
    let since = match params.get("since") {
        Some(s) => parse_since(s).map_err(ApiError::BadData)?,
        None => 0,
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(1000usize)
        .min(MAX_RESULTS);
    let events = state
        .storage
        .alert_history(since, limit)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(events))
}

/// Acknowledges an alert group (`{"groupKey": "..."}`): it sends no
/// repeats until its set of firing alerts changes.
async fn acknowledge_group(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Ack {
        group_key: String,
    }
    let ack: Ack = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadData(format!("invalid acknowledgement: {e}")))?;
    state
        .alerting
        .with(|d| d.acknowledge(&ack.group_key, chrono::Utc::now()))
        .map_err(|e| ApiError::BadData(e.to_string()))?;
    state
        .alerting
        .persist()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(success(
        json!({"groupKey": ack.group_key, "acknowledged": true}),
    ))
}

/// `version` is the Prometheus API level lookout answers to (Grafana picks
/// features by it); `lookoutVersion` is lookout's own. `features` stays
/// empty, or Grafana takes the server for Mimir.
async fn prom_buildinfo() -> Response {
    success(json!({
        "version": "2.42.0",
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "lookoutVersion": env!("CARGO_PKG_VERSION"),
    }))
}

/// A time as Prometheus' API takes it (Unix seconds, possibly fractional,
/// or RFC 3339), or a duration back from now (`5m`). Returns ms since epoch.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(t) = parse_time(text) {
        return Ok(t);
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
        let tsdb =
            lookout_tsdb::Tsdb::open(storage.database(), lookout_tsdb::Options::default()).unwrap();
        let storage_for_alerting = storage.clone();
        let query = QueryService::new(Arc::new(tsdb));
        (
            dir,
            AppState {
                storage,
                board: Arc::new(JobBoard::default()),
                telemetry: Arc::new(Telemetry::new()),
                query,
                rules: Arc::new(crate::rules::RuleBoard::default()),
                alerting: crate::alerting::Alerting::open(
                    crate::alerting::default_config(),
                    storage_for_alerting,
                    "http://localhost".into(),
                    Default::default(),
                ),
                token: Arc::from("s3cret"),
                probes: Default::default(),
                detection: Default::default(),
            },
        )
    }

    async fn send(app: Router, request: Request<Body>) -> StatusCode {
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn changing_state_needs_the_token_and_reading_does_not() {
        let (_dir, state) = state();
        let app = router(state);
        let silence = r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-02T00:00:00Z","createdBy":"t","comment":"c"}"#;
        let post = |auth: Option<&str>| {
            let mut r =
                Request::post("/api/v2/silences").header("content-type", "application/json");
            if let Some(auth) = auth {
                r = r.header("authorization", auth);
            }
            r.body(Body::from(silence)).unwrap()
        };
        assert_eq!(
            send(app.clone(), post(None)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(app.clone(), post(Some("Bearer s3creT"))).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(app.clone(), post(Some("s3cret"))).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(app.clone(), post(Some("Bearer s3cret"))).await,
            StatusCode::OK
        );
        let delete = Request::delete("/api/v2/silence/x")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(app.clone(), delete).await, StatusCode::UNAUTHORIZED);
        // Reads, and the query API's POST forms, need nothing.
        let (status, _) = get(app.clone(), "/api/v2/silences").await;
        assert_eq!(status, StatusCode::OK);
        let query = Request::post("/api/v1/query")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("query=1"))
            .unwrap();
        assert_eq!(send(app.clone(), query).await, StatusCode::OK);
        let (status, body) = {
            let response = app.oneshot(post(None)).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains(r#""errorType":"unauthorized""#), "{body}");
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
        assert_eq!(parse_since("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        let five_min_ago = parse_since("5m").unwrap();
        assert!((crate::storage::now_ms() - five_min_ago - 300_000).abs() < 1000);
        assert!(parse_since("soon").is_err());
    }
}
