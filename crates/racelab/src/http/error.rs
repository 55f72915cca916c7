//! Problem details (RFC 9457, <https://www.rfc-editor.org/rfc/rfc9457>): every error of the service is
//! an `application/problem+json` body with `type`, `title`, `status` and a `detail` that names the
//! parameter or the cause.
//!
//! [`ApiError`](crate::http::error::ApiError) is the one error type of the HTTP layer. It decides the status from the core's
//! [`ErrorKind`](racelab_core::ErrorKind), never from message text, and it never sends a driver's message, an internal error's
//! text or a database URL to the client: those are logged, the client gets a fixed sentence.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use racelab_core::{DbError, ErrorKind, ExperimentError, Outcome};
use serde::Serialize;
use utoipa::ToSchema;

use super::state::DatabaseDown;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying when the database is unavailable.
pub const RETRY_AFTER_SECS: u64 = 2;

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:racelab:problem:invalid-parameter",
    "title": "Invalid query parameter",
    "status": 400,
    "detail": "query parameter `workers` must be an integer between 1 and 32, got `-1`",
    "invalid_params": [{"name": "workers", "reason": "must be an integer between 1 and 32, got `-1`"}]
}))]
pub struct Problem {
    /// A URI that identifies the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, naming the parameter or the cause.
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For 400 and 422: each offending query parameter, header field or body member, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_params: Option<Vec<InvalidParam>>,
    /// For an experiment that ended in an error (the database went away, every increment found the
    /// row locked): its outcome; for one still running when the request timed out: what it had done
    /// so far (`"state": "running"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub experiment: Option<ExperimentSoFar>,
}

/// What a problem says of the experiment its request started.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ExperimentSoFar {
    /// It ended: the whole outcome, with the proof.
    Finished(Box<Outcome>),
    /// It still ran when the request timed out: the counts so far. It stops after the increments in
    /// flight, holding its post until then.
    Running(RunningExperiment),
}

/// An experiment that outlived its request: what it is and what it had done when the answer went.
#[derive(Debug, Clone, Serialize)]
pub struct RunningExperiment {
    /// Always `running`.
    pub state: &'static str,
    pub strategy: racelab_core::Strategy,
    pub post: i64,
    pub workers: usize,
    pub increments: u64,
    pub expected: u64,
    #[serde(flatten)]
    pub so_far: racelab_core::ProgressSnapshot,
}

/// One offending query parameter, header field or body member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvalidParam {
    pub name: String,
    pub reason: String,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter out of range, of the wrong type or not one of the allowed values.
    #[error("query parameter `{name}` {reason}")]
    InvalidParameter { name: String, reason: String },
    /// The query string could not be decoded at all.
    #[error("the query string cannot be decoded: {0}")]
    BadQuery(String),
    /// A path parameter or header field the endpoint cannot read (`part` says which kind).
    #[error("{part} `{name}` {reason}")]
    InvalidPart { part: &'static str, name: String, reason: String },
    /// A JSON body member missing, of the wrong type or out of range, or one the endpoint does not take.
    #[error("body member `{name}` {reason}")]
    InvalidBody { name: String, reason: String },
    /// A request body that is not a JSON document.
    #[error("the request body is not JSON: {0}")]
    MalformedBody(String),
    /// A request body of another media type than the endpoint reads.
    #[error("the request body must be application/json, got `{0}`")]
    UnsupportedMediaType(String),
    /// A write without `If-Match` on a resource that requires one (RFC 6585 §3).
    #[error(
        "this request must carry If-Match with the ETag of the version it changes (GET the resource for it), so it \
         cannot overwrite a change it has not seen"
    )]
    PreconditionRequired,
    /// `If-Match` named another version than the current one (RFC 9110 §13.1.1); the answer carries the
    /// current `ETag`.
    #[error("If-Match does not match the current version (ETag {etag}): someone changed it since it was read")]
    PreconditionFailed { etag: String },
    /// An Idempotency-Key already used for another request (draft-ietf-httpapi-idempotency-key-header).
    #[error("this Idempotency-Key was used for another request; use a new key for a new request")]
    IdempotencyKeyReused,
    /// The first request with this Idempotency-Key was still running past the lock timeout.
    #[error(
        "the request with this Idempotency-Key (or another write to the post) is still running; retry it with the \
         same key"
    )]
    IdempotencyKeyInFlight,
    /// Another anomaly suite (another process's) holds the database's suite lock.
    #[error("{0}")]
    AnomalySuiteBusy(String),
    /// The strategy or option does not exist on this database.
    #[error("{0}")]
    Unsupported(String),
    /// No connection to the database could be made.
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    /// The database cannot be used, and why: what a client may read of it (see `DatabaseDown`).
    #[error(transparent)]
    DatabaseDown(DatabaseDown),
    /// A database operation failed; the kind decides the status.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The database went away while the experiment ran: some increments could not be made.
    #[error(
        "the database connection was lost during the run: {failed} of {expected} increments failed or are in doubt"
    )]
    Interrupted { failed: u64, expected: u64, outcome: Box<Outcome> },
    /// Every increment of the experiment gave up on a row lock another transaction held (`kinds`
    /// says which: lock_not_available, lock_timeout, row_skipped).
    #[error(
        "every increment gave up on a row lock held by another transaction: {failed} of {expected} failed ({kinds})"
    )]
    Locked { failed: u64, expected: u64, kinds: String, outcome: Box<Outcome> },
    /// The experiment settings were refused (e.g. more workers than the pool holds).
    #[error("{0}")]
    InvalidExperiment(String),
    /// No route matched.
    #[error("no endpoint at this path; see /docs for the list")]
    NoRoute,
    /// No experiment run has this id: it never existed, or it finished longer ago than runs are kept.
    #[error("no run `{id}`: unknown, or finished longer ago than this server keeps runs (--run-retention)")]
    RunNotFound { id: String },
    /// A spec run was asked of a server started with `--no-spec-runs`.
    #[error(
        "this server does not run specs (it was started with --no-spec-runs): a spec is SQL of the client's own, run on its database"
    )]
    SpecRunsOff,
    /// As many runs as the server runs at once (`--max-runs`) are still going.
    #[error(
        "{max} experiment runs are already under way, as many as this server runs at once (--max-runs); try again when one has finished"
    )]
    TooManyRuns { max: usize },
    /// The path exists, not for this method (axum's 405; the `Allow` header lists the methods).
    #[error("{method} is not allowed here; the Allow header lists the methods this path answers")]
    MethodNotAllowed { method: String },
    /// The request target is longer than the server accepts.
    #[error("the request target is {} long; this server accepts at most {max} bytes", bytes_or_more(*.length))]
    UriTooLong {
        /// `None` when hyper refused it before it was read whole (over 65534 bytes).
        length: Option<usize>,
        max: usize,
    },
    /// The header fields together are larger than the server accepts.
    #[error("the request's header fields take {length} bytes; this server accepts at most {max}")]
    HeadersTooLarge { length: usize, max: usize },
    /// The request head is over hyper's own limits, its size or its number of header fields (hyper's
    /// answer does not say which; caught on the way out, see `http::connections`).
    #[error(
        "the request head is over this server's limits: at most {max} bytes of request line and header fields, \
         and at most {fields} header fields"
    )]
    HeadTooLarge { max: usize, fields: usize },
    /// A request body larger than any endpoint accepts (the largest they read, a post, is a few bytes).
    #[error("the request body is {}; no endpoint takes a body larger than {max} bytes",
        length.map_or_else(|| format!("more than {max} bytes"), |n| format!("{n} bytes")))]
    BodyTooLarge {
        /// `None` when the body came without a length (chunked) and was cut at the limit.
        length: Option<u64>,
        max: u64,
    },
    /// The request line or a header field is not valid HTTP (hyper's own 400).
    #[error("the request line or a header field is not valid HTTP/1.1")]
    MalformedRequest,
    /// Every connection the server accepts is busy with a request: nothing idle could be closed to
    /// make room.
    #[error("all {max} connections this server accepts are busy with requests; try again shortly")]
    OverCapacity { max: usize },
    /// The request took longer than the request timeout.
    #[error("the request took longer than the server's request timeout ({0:?})")]
    RequestTimeout(Duration),
    /// The request took longer than the request timeout while its experiment ran: what it had done
    /// so far goes with the answer.
    #[error(
        "the request took longer than the server's request timeout ({timeout:?}); its experiment stops \
         after the increments in flight (the rest counted as stopped): {} acknowledged so far",
        running.so_far.acknowledged
    )]
    RequestTimeoutRunning { timeout: Duration, running: Box<RunningExperiment> },
    /// An error status no handler described and none of the above covers.
    #[error("{}", .0.canonical_reason().unwrap_or("error"))]
    Status(StatusCode),
    /// A bug or an unexpected failure: logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `1234 bytes`, or `more than 65534 bytes` when only hyper's limit is known to be exceeded.
fn bytes_or_more(length: Option<usize>) -> String {
    length.map_or_else(|| format!("more than {} bytes", u16::MAX - 1), |n| format!("{n} bytes"))
}

impl From<ExperimentError> for ApiError {
    fn from(err: ExperimentError) -> Self {
        match err {
            ExperimentError::Invalid(reason) => ApiError::InvalidExperiment(reason),
            ExperimentError::Unsupported { strategy, backend } => ApiError::Unsupported(format!(
                "the {strategy} strategy is not supported on {backend}: it needs application locks \
                 (pg_advisory_xact_lock on PostgreSQL, GET_LOCK on MariaDB/MySQL)"
            )),
            ExperimentError::Database(err) => ApiError::Database(err),
            ExperimentError::Worker(reason) => ApiError::Internal(format!("a worker crashed: {reason}")),
        }
    }
}

impl ApiError {
    /// A parameter error.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        ApiError::InvalidParameter { name: name.to_owned(), reason: reason.into() }
    }

    /// Status, problem type slug, title and the detail a client may see.
    fn describe(&self) -> (StatusCode, &'static str, &'static str, String) {
        match self {
            ApiError::InvalidParameter { .. } => {
                (StatusCode::BAD_REQUEST, "invalid-parameter", "Invalid query parameter", self.to_string())
            }
            ApiError::BadQuery(_) => {
                (StatusCode::BAD_REQUEST, "invalid-parameter", "Invalid query string", self.to_string())
            }
            ApiError::InvalidPart { .. } => {
                (StatusCode::BAD_REQUEST, "invalid-parameter", "Invalid request parameter", self.to_string())
            }
            ApiError::InvalidBody { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", "Invalid request body", self.to_string())
            }
            ApiError::MalformedBody(_) => {
                (StatusCode::BAD_REQUEST, "malformed-body", "Malformed request body", self.to_string())
            }
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                self.to_string(),
            ),
            ApiError::PreconditionRequired => {
                (StatusCode::PRECONDITION_REQUIRED, "precondition-required", "Precondition required", self.to_string())
            }
            ApiError::PreconditionFailed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition-failed", "Precondition failed", self.to_string())
            }
            ApiError::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency key reused", self.to_string())
            }
            ApiError::IdempotencyKeyInFlight => {
                (StatusCode::CONFLICT, "idempotency-key-in-flight", "Request in progress", self.to_string())
            }
            ApiError::AnomalySuiteBusy(_) => {
                (StatusCode::CONFLICT, "anomaly-suite-busy", "Another anomaly suite is running", self.to_string())
            }
            ApiError::InvalidExperiment(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-experiment", "Experiment refused", self.to_string())
            }
            ApiError::Unsupported(_) => {
                (StatusCode::NOT_IMPLEMENTED, "unsupported", "Not supported on this database", self.to_string())
            }
            ApiError::DatabaseUnavailable => unavailable("the database cannot be reached; try again shortly"),
            ApiError::DatabaseDown(down) => unavailable(&down.to_string()),
            ApiError::Interrupted { .. } => unavailable(&self.to_string()),
            ApiError::Locked { .. } => {
                (StatusCode::CONFLICT, "conflict", "Conflict with another transaction", self.to_string())
            }
            ApiError::NoRoute => (StatusCode::NOT_FOUND, "not-found", "Not found", self.to_string()),
            ApiError::RunNotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "Not found", self.to_string()),
            ApiError::TooManyRuns { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-runs", "Too many runs", self.to_string())
            }
            ApiError::SpecRunsOff => (StatusCode::FORBIDDEN, "spec-runs-off", "Spec runs are off", self.to_string()),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", self.to_string())
            }
            ApiError::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri-too-long", "URI too long", self.to_string()),
            ApiError::HeadersTooLarge { .. } | ApiError::HeadTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "header-fields-too-large",
                "Request header fields too large",
                self.to_string(),
            ),
            ApiError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "content-too-large", "Content too large", self.to_string())
            }
            ApiError::MalformedRequest => {
                (StatusCode::BAD_REQUEST, "malformed-request", "Malformed request", self.to_string())
            }
            ApiError::OverCapacity { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "over-capacity", "Server at capacity", self.to_string())
            }
            ApiError::RequestTimeout(_) | ApiError::RequestTimeoutRunning { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "request-timeout", "Request timed out", self.to_string())
            }
            ApiError::Status(status) => {
                let reason = status.canonical_reason().unwrap_or("Error");
                (*status, "http-status", reason, format!("the server answered {} ({reason})", status.as_u16()))
            }
            ApiError::Internal(_) => internal(),
            ApiError::Database(err) => describe_db_error(err),
        }
    }
}

fn unavailable(detail: &str) -> (StatusCode, &'static str, &'static str, String) {
    (StatusCode::SERVICE_UNAVAILABLE, "database-unavailable", "Database unavailable", detail.to_owned())
}

fn internal() -> (StatusCode, &'static str, &'static str, String) {
    let detail = "an unexpected error occurred; it has been logged".to_owned();
    (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error", detail)
}

/// The status of each error kind. The detail is a fixed sentence per kind: the driver's message may
/// quote SQL, names or values, and stays in the log.
fn describe_db_error(err: &DbError) -> (StatusCode, &'static str, &'static str, String) {
    let conflict =
        |detail: &str| (StatusCode::CONFLICT, "conflict", "Conflict with another transaction", detail.into());
    if err.is_in_doubt() {
        return unavailable(
            "the connection was lost while the write was being committed: it may or may not have been made. A like \
             sent with an Idempotency-Key can be sent again with the same key to find out, without counting twice",
        );
    }
    match err.kind() {
        ErrorKind::ConnectionLost | ErrorKind::PoolTimeout => {
            unavailable("the database connection was lost or none could be had in time; try again shortly")
        }
        ErrorKind::LockTimeout => conflict("the row stayed locked by another transaction longer than the lock timeout"),
        ErrorKind::LockNotAvailable => conflict("the row is locked by another transaction (NOWAIT)"),
        ErrorKind::RowSkipped => conflict("the row is locked by another transaction (SKIP LOCKED skipped it)"),
        ErrorKind::Deadlock => conflict("the database chose this transaction as a deadlock victim"),
        ErrorKind::SerializationFailure => conflict("the database aborted the transaction to keep it serializable"),
        ErrorKind::Busy => conflict("the SQLite database stayed locked by another writer longer than the lock timeout"),
        ErrorKind::StaleVersion => conflict("the post was saved by someone else after it was loaded"),
        // Which post and its value are the core's own words, never the driver's (a database's own
        // overflow error knows neither: then a fixed sentence).
        ErrorKind::CounterOverflow => (
            StatusCode::CONFLICT,
            "counter-at-maximum",
            "Counter at its maximum",
            err.counter_at_maximum().map_or_else(
                || format!("a counter of the post is at the most it can hold ({})", i64::MAX),
                |at| at.to_string(),
            ),
        ),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found", "the post does not exist".into()),
        ErrorKind::Unsupported => (
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            "Not supported on this database",
            "this operation is not supported on this database".into(),
        ),
        // A database operation is never "stopped": that kind only counts increments a run did not make.
        ErrorKind::Stopped | ErrorKind::Other => internal(),
    }
}

impl ApiError {
    /// The problem body a client gets for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title, detail) = self.describe();
        let invalid_params = match self {
            ApiError::InvalidParameter { name, reason }
            | ApiError::InvalidPart { name, reason, .. }
            | ApiError::InvalidBody { name, reason } => {
                Some(vec![InvalidParam { name: name.clone(), reason: reason.clone() }])
            }
            _ => None,
        };
        let experiment = match self {
            ApiError::Interrupted { outcome, .. } | ApiError::Locked { outcome, .. } => {
                Some(ExperimentSoFar::Finished(outcome.clone()))
            }
            ApiError::RequestTimeoutRunning { running, .. } => Some(ExperimentSoFar::Running(running.as_ref().clone())),
            _ => None,
        };
        Problem {
            problem_type: format!("urn:racelab:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            instance: None,
            invalid_params,
            experiment,
        }
    }

    /// The error an error status stands for when nothing but the status is known: axum's own 404
    /// and 405, the request timeout's 503, hyper's answers to requests it cannot parse.
    pub fn from_status(status: StatusCode, method: &str, request_timeout: Duration) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::NoRoute,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { method: method.to_owned() },
            StatusCode::SERVICE_UNAVAILABLE => ApiError::RequestTimeout(request_timeout),
            StatusCode::BAD_REQUEST => ApiError::MalformedRequest,
            other => ApiError::Status(other),
        }
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`). A refusal repeats what the client
/// sent (a value, a member name), decoded: unescaped, a line break in it would start a log line of the
/// client's own making, and an escape sequence would drive the terminal that shows the log.
fn log_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let escape = |c: char| if c.is_control() { c.escape_default().to_string() } else { c.to_string() };
    text.chars().map(escape).collect::<String>().into()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = problem.status;
        if let ApiError::DatabaseDown(_) = &self {
            // Logged once per change of the database's state (`AppState::db`), not once per request.
            tracing::debug!(error = %self, status, "request refused: the database cannot be used");
        } else if StatusCode::from_u16(status).is_ok_and(|s| s.is_server_error()) {
            // The full cause (driver message included) goes to the log only; URLs in it are redacted
            // by the core.
            tracing::error!(error = %log_safe(&self.to_string()), status, "request failed");
        } else {
            tracing::info!(error = %log_safe(&self.to_string()), status, "request refused");
        }
        let mut response = problem_response(problem);
        // A client told its version is stale learns the current one without another round trip.
        if let ApiError::PreconditionFailed { etag } = &self
            && let Ok(value) = HeaderValue::from_str(etag)
        {
            response.headers_mut().insert(header::ETAG, value);
        }
        response
    }
}

/// Writes a problem with its media type, and `Retry-After` on 503 and 429.
pub fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

/// The fallback for unknown paths.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// Gives every error status that left the router without a problem body one: axum's own 404 (e.g.
/// under `/docs/`) and 405 (whose `Allow` header is kept), the request timeout's 503, and anything
/// else a layer answers bare.
pub async fn problems_only(request: Request, next: Next, request_timeout: Duration) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == PROBLEM_JSON);
    if !is_error || is_problem {
        return response;
    }
    let (original, _body) = response.into_parts();
    let mut problem = ApiError::from_status(status, method.as_str(), request_timeout).into_response();
    for (name, value) in &original.headers {
        let describes_the_body =
            [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::TRANSFER_ENCODING].contains(name);
        if !describes_the_body && !problem.headers().contains_key(name) {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    problem
}
