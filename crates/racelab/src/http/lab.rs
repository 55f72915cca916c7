//! The seed's endpoints (`GET /test-db/*`), rebuilt on the experiment engine: same paths, same JSON
//! keys (`message`, `like_result`), on post 1 unless `post` says otherwise.
//!
//! What the seed got wrong and these must not (ANCHORS.md H): its row could not be created on an empty
//! table, its logger leaked a file handle per call, and concurrent requests mixed their numbers. Here
//! every endpoint creates the post it needs, nothing is allocated per call that outlives it, and each
//! request that writes a post holds that post's lock (see [`AppState::lock_post`]) for the whole run,
//! so `like_result` and `experiment` are this request's own. A writer outside this process is
//! detected by the engine (`experiment.lost` is `null`) and named in `verdict` and `message`.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Redirect;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use racelab_core::experiment::Target;
use racelab_core::{ErrorKind, Experiment, LockMode, Outcome, Post, Progress, SaveError, Strategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, IntoResponses, Number, PartialSchema, ToSchema};

use super::AppState;
use super::error::{ApiError, PROBLEM_JSON, Problem, RunningExperiment};
use super::query::ApiQuery;

/// The most workers one request may ask for, unless `serve --max-workers` lowers it. The default pool
/// is sized so that this many fit, plus headroom.
pub const MAX_WORKERS: u32 = 32;
/// The most increments per worker one request may ask for, unless `serve --max-increments` lowers it.
pub const MAX_INCREMENTS: u64 = 1000;
/// Connections the service's pool needs by default: the largest experiment plus headroom for
/// concurrent reads (`/check`, `/ready`) and a second experiment waiting for its connections.
pub const DEFAULT_POOL_SIZE: u32 = MAX_WORKERS + 8;

// ---------------------------------------------------------------------------------------------------
// Parameters: one struct per endpoint, which documents (IntoParams) and parses (Deserialize, checked
// against its own documentation by `ApiQuery`) the query.
// ---------------------------------------------------------------------------------------------------

/// The largest experiment one request may ask for. The parser and the published OpenAPI document both
/// take the maxima of `workers` and `increments` from here (see [`Limits::apply`]), so a server
/// started with lower limits documents exactly what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_workers: u32,
    pub max_increments: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_workers: MAX_WORKERS, max_increments: MAX_INCREMENTS }
    }
}

impl Limits {
    /// Sets the configured maximum on a parameter it bounds (`workers`, `increments`; others are left
    /// alone), and keeps the parameter's default within it. (They carry no `example`: the default is one.)
    pub fn apply(&self, parameter: &mut Parameter) {
        let max = match parameter.name.as_str() {
            "workers" => u64::from(self.max_workers),
            "increments" => self.max_increments,
            _ => return,
        };
        let within = |value: &mut Option<Value>| {
            if value.as_ref().and_then(Value::as_u64).is_some_and(|v| v > max) {
                *value = Some(Value::from(max));
            }
        };
        if let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema {
            schema.maximum = Some(Number::UInt(max as usize));
            within(&mut schema.default);
            within(&mut schema.example);
        }
    }
}

/// Declares the parameters of an endpoint that runs an experiment: its own fields, then `workers`,
/// `increments`, `post` and `force_race`, which every such endpoint takes.
macro_rules! experiment_params {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty,)*
            /// Concurrent workers, each on its own database connection.
            #[param(required = false, minimum = 1, default = 2)]
            pub workers: usize,
            /// Increments each worker makes.
            #[param(required = false, minimum = 1, default = 25)]
            pub increments: u64,
            /// The post to work on, created with `like = 0` if missing. Requests on the same post run one
            /// after the other; on different posts, side by side.
            #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
            pub post: i64,
            /// Make every worker read before any of them writes, on its first increment: the conflict
            /// forced, deterministically (strategies that read without a lock).
            #[param(required = false, default = false)]
            pub force_race: bool,
        }

        impl $name {
            /// The experiment asked for.
            pub fn run(&self) -> Run {
                Run { workers: self.workers, increments: self.increments, post: self.post, force_race: self.force_race }
            }
        }
    };
}

/// The experiment one request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub workers: usize,
    pub increments: u64,
    pub post: i64,
    pub force_race: bool,
}

experiment_params!(
    /// Parameters of the `2th*` endpoints without options of their own.
    RunParams {}
);

experiment_params!(
    /// Parameters of `/2th-plock`.
    PlockParams {
        /// What `SELECT ... FOR UPDATE` does when the row is locked: `wait` (up to the lock timeout),
        /// `nowait` (give up at once: `lock_not_available`) or `skip-locked` (give up at once:
        /// `row_skipped`).
        #[param(required = false, inline, example = "wait")]
        mode: Mode,
    }
);

experiment_params!(
    /// Parameters of `/2th-olock-sqlalchemy-versioning`.
    VersioningParams {
        /// Retry a save that found a stale version by re-running the whole unit of work. `false` does
        /// what the seed did: each conflict silently drops one increment (`experiment.dropped` counts
        /// them).
        #[param(required = false, default = true)]
        retry: bool,
    }
);

/// `/2th-plock`'s `mode`: a [`LockMode`] by the name [`LockMode::as_str`] gives it. Its schema is a
/// plain string enum of [`LockMode::ALL`], so a new mode is documented and accepted at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode(pub LockMode);

impl PartialSchema for Mode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(LockMode::ALL.map(LockMode::as_str)))
            .default(Some(Value::from(LockMode::default().as_str())))
            .into()
    }
}

impl ToSchema for Mode {}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map(Mode).map_err(serde::de::Error::custom)
    }
}

/// Parameters of `/inc`: one session, sequential increments.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncParams {
    /// Increments, one after the other on one connection.
    #[param(required = false, minimum = 1, default = 25)]
    pub increments: u64,
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

/// Parameters of the endpoints that work on one post and nothing else.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostParams {
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

/// For endpoints without parameters: any parameter is refused.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

// ---------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------

/// The answer of every experiment endpoint: the seed's two keys, then the proof.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "message": "/2th-plock : pessimistic lock increment completed",
    "like_result": 50,
    "post": 1,
    "verdict": "no update lost",
    "experiment": {"strategy": "pessimistic", "database": "postgres", "post": 1, "workers": 2, "increments": 25,
        "expected": 50, "acknowledged": 50, "failed": 0, "in_doubt": 0, "in_doubt_committed": 0, "errors": {},
        "retried_errors": {}, "actual": 50,
        "lost": 0, "dropped": 0, "foreign_writes": 0, "attempts": 50, "retries": 0, "elapsed_ms": 9.8,
        "throughput_per_s": 5102.0, "latency_ms": {"p50": 0.3, "p95": 0.6, "p99": 0.9, "max": 1.2},
        "like_before": 0, "like_after": 50, "counter_error": null,
        "nodes": [{"node": 1, "workers": 2, "acknowledged": 50, "failed": 0, "in_doubt": 0, "retries": 0,
            "errors": {}, "retried_errors": {}}]}
}))]
pub struct LabResponse {
    /// What was done, as the seed said it (plus what went wrong, if anything did).
    pub message: String,
    /// The post's `like` after the run (the seed's meaning).
    pub like_result: i64,
    pub post: i64,
    /// One line a newcomer understands: lost, dropped, retried, or another writer interfered.
    pub verdict: String,
    /// The full outcome, with the same fields as `racelab lab --json`.
    #[schema(value_type = OutcomeSchema)]
    pub experiment: Outcome,
}

/// The experiment's outcome (as `racelab lab --json` prints it).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: the handlers serialise racelab_core::Outcome.
pub struct OutcomeSchema {
    /// naive, atomic, pessimistic, pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned,
    /// versioned-no-retry, serializable, advisory, sharded.
    strategy: String,
    /// postgres, mysql or sqlite.
    database: String,
    post: i64,
    workers: u32,
    /// Increments per worker.
    increments: Option<u64>,
    /// `workers * increments`.
    expected: u64,
    /// Increments the strategy reported done.
    acknowledged: u64,
    /// Increments known not applied (refused, or rolled back), counted by kind in `errors`.
    failed: u64,
    /// Increments whose commit's answer was lost: each may be in the row or not.
    in_doubt: u64,
    /// How many in-doubt increments committed, as the version count shows.
    in_doubt_committed: Option<u64>,
    /// Failed increments by kind (serialization_failure, deadlock, lock_not_available, lock_timeout, busy,
    /// stale_version, row_skipped, connection_lost, pool_timeout, not_found, unsupported, other).
    errors: std::collections::BTreeMap<String, u64>,
    /// Failed attempts that were retried, by kind.
    retried_errors: std::collections::BTreeMap<String, u64>,
    /// `like` after minus `like` before, read from the database; `null` when it could not be read.
    actual: Option<i64>,
    /// Committed increments missing from the row; never negative; `null` when another writer touched
    /// the row during the run or the counter could not be read.
    lost: Option<i64>,
    /// Increments the no-retry versioning run dropped after detecting a conflict.
    dropped: u64,
    /// Writes to the row during the run that were not this experiment's.
    foreign_writes: i64,
    attempts: u64,
    /// Attempts run again after a conflict (the sum of `retried_errors`).
    retries: u64,
    elapsed_ms: f64,
    throughput_per_s: f64,
    latency_ms: LatencySchema,
    like_before: i64,
    like_after: Option<i64>,
    /// Why the counter could not be read after the run (an error kind), when it could not.
    counter_error: Option<String>,
    /// The same figures per node the workers wrote through.
    nodes: Vec<NodeSchema>,
}

/// One node's share of an experiment.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NodeSchema {
    /// The node's number, from 1, in the order the databases were given.
    node: u32,
    workers: u32,
    acknowledged: u64,
    failed: u64,
    in_doubt: u64,
    retries: u64,
    errors: std::collections::BTreeMap<String, u64>,
    retried_errors: std::collections::BTreeMap<String, u64>,
}

/// Latency of whole increments (retries and backoff included), in milliseconds.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LatencySchema {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

/// `/test-db/`: the connection check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "/ : database connection OK", "database": "postgres",
    "version": "PostgreSQL 15.10 on x86_64-pc-linux-gnu", "status": "success",
    "postgres_version": "PostgreSQL 15.10 on x86_64-pc-linux-gnu"}))]
pub struct ConnectionResponse {
    pub message: String,
    /// postgres, mysql or sqlite.
    pub database: String,
    /// The server's version string (`SELECT version()`).
    pub version: String,
    /// The seed's key: `success` when the database answered (a failure is a problem, never this body).
    pub status: &'static str,
    /// The seed's key for `version`, kept under its name whatever the backend: a client of the
    /// original reads the server's version string here.
    pub postgres_version: String,
}

/// `/test-db/init`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "/init : post 1 reset to like = 0, version = 0", "like_result": 0, "post": 1}))]
pub struct InitResponse {
    pub message: String,
    pub like_result: i64,
    pub post: i64,
}

/// `/test-db/check`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "/check : post 1", "like_result": 50, "post": 1, "like": 50, "version": 50,
    "vsersion": 50, "modified_at": "2026-11-25T10:00:00.123456Z"}))]
pub struct CheckResponse {
    pub message: String,
    /// The whole counter, as `like`.
    pub like_result: i64,
    pub post: i64,
    /// The whole counter: the post's own `like` plus its slots' (written by the sharded strategy).
    pub like: i64,
    /// Writes to the post and its slots.
    pub version: i64,
    /// `version` under the seed's misspelt key (sic): the original answered `vsersion`, and a client
    /// switching over may read it.
    pub vsersion: i64,
    /// The last write to the post's own row (slot increments do not touch it).
    pub modified_at: DateTime<Utc>,
}

/// A post's counter at one moment.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct CounterState {
    pub like: i64,
    pub version: i64,
}

/// `/test-db/test-versioning`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "/test-versioning : versioned increment completed", "like_result": 51,
    "post": 1, "before": {"like": 50, "version": 50}, "after": {"like": 51, "version": 51}, "attempts": 1,
    "initial_like": 50, "initial_version": 50, "updated_like": 51, "updated_version": 51}))]
pub struct VersioningResponse {
    pub message: String,
    pub like_result: i64,
    pub post: i64,
    pub before: CounterState,
    pub after: CounterState,
    /// The seed's keys for `before` and `after`, flat, as the original answered them.
    pub initial_like: i64,
    pub initial_version: i64,
    pub updated_like: i64,
    pub updated_version: i64,
    /// Loads and saves it took (more than 1 when someone else saved in between).
    pub attempts: u32,
}

// ---------------------------------------------------------------------------------------------------
// Error answers, documented once for the endpoints that share them
// ---------------------------------------------------------------------------------------------------

const INVALID_PARAMETER: (u16, &str) =
    (400, "An unknown, repeated or invalid query parameter (named in `detail` and `invalid_params`)");
const UNAVAILABLE: (u16, &str) = (
    503,
    "The database cannot be reached or went away, or the request timeout passed (with Retry-After); an experiment \
     the database left unfinished carries `experiment`, what was done",
);

/// problem+json answers with these statuses and descriptions.
pub(super) fn problems(answers: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(Problem::name()))).build();
    answers
        .iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new().description(*description).content(PROBLEM_JSON, content.clone());
            (status.to_string(), response.build().into())
        })
        .collect()
}

/// The errors of an endpoint that reads its parameters and the database, and takes no lock.
pub struct QueryErrors;

impl IntoResponses for QueryErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[INVALID_PARAMETER, UNAVAILABLE])
    }
}

/// The errors of an endpoint that works on one post.
pub struct PostErrors;

impl IntoResponses for PostErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[
            INVALID_PARAMETER,
            (409, "The row stayed locked by another transaction past the lock timeout, or another conflict kind"),
            UNAVAILABLE,
        ])
    }
}

/// The errors of a `2th*` endpoint.
pub struct ExperimentErrors;

impl IntoResponses for ExperimentErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[
            INVALID_PARAMETER,
            (
                409,
                "Every increment gave up on a row lock another transaction held (`lock_not_available`, \
                 `lock_timeout`, `row_skipped`); `experiment` says what was done",
            ),
            (422, "More workers than the server's pool allows (the maximum is named in `detail`)"),
            UNAVAILABLE,
        ])
    }
}

// ---------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------

/// Connection check: the server's version string.
#[utoipa::path(get, path = "/test-db/", tag = "seed",
    responses(
        (status = 200, description = "The database answers", body = ConnectionResponse),
        QueryErrors,
    ))]
pub async fn connection_check(
    State(state): State<AppState>,
    ApiQuery(NoParams {}): ApiQuery<NoParams>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let db = state.db().await?;
    let version = db.server_version().await?;
    Ok(Json(ConnectionResponse {
        message: "/ : database connection OK".to_owned(),
        database: db.backend().to_string(),
        status: "success",
        postgres_version: version.clone(),
        version,
    }))
}

/// `/test-db` without the slash: 307 to `/test-db/` with the query kept, as FastAPI answers it.
pub async fn to_connection_check(uri: Uri) -> Redirect {
    match uri.query() {
        Some(query) => Redirect::temporary(&format!("/test-db/?{query}")),
        None => Redirect::temporary("/test-db/"),
    }
}

/// Resets the post to `like = 0`, `version = 0` (creating it if needed).
#[utoipa::path(get, path = "/test-db/init", tag = "seed", params(PostParams),
    responses(
        (status = 200, description = "Post reset", body = InitResponse),
        PostErrors,
    ))]
pub async fn init(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PostParams>,
) -> Result<Json<InitResponse>, ApiError> {
    let db = state.db().await?;
    let _post = state.lock_post(params.post).await;
    db.reset_post(params.post).await?;
    Ok(Json(InitResponse {
        message: format!("/init : post {} reset to like = 0, version = 0", params.post),
        like_result: 0,
        post: params.post,
    }))
}

/// Reads the post: like, version, modified_at (creating it if needed).
#[utoipa::path(get, path = "/test-db/check", tag = "seed", params(PostParams),
    responses(
        (status = 200, description = "The post", body = CheckResponse),
        PostErrors,
    ))]
pub async fn check(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PostParams>,
) -> Result<Json<CheckResponse>, ApiError> {
    let db = state.db().await?;
    db.ensure_post(params.post).await?;
    let row = db.load_post(params.post).await?;
    // The counter includes the sharded strategy's slots.
    let total = db.read_total(params.post).await?;
    Ok(Json(CheckResponse {
        message: format!("/check : post {}", row.pk),
        like_result: total.like,
        post: row.pk,
        like: total.like,
        version: total.version,
        vsersion: total.version,
        modified_at: row.modified_at,
    }))
}

/// One session, sequential read-modify-write increments (safe: nobody else writes in between).
#[utoipa::path(get, path = "/test-db/inc", tag = "seed", params(IncParams),
    responses(
        (status = 200, description = "Increments done", body = LabResponse),
        PostErrors,
    ))]
pub async fn inc(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<IncParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let run = Run { workers: 1, increments: params.increments, post: params.post, force_race: false };
    experiment(&state, "/inc : Concurrent increment completed", Strategy::Naive, run).await
}

macro_rules! two_threads {
    ($(#[$doc:meta])* $name:ident, $path:literal, $strategy:expr, $message:literal) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = "seed", params(RunParams),
            responses(
                (status = 200, description = "The experiment ran; see `verdict` and `experiment`", body = LabResponse),
                ExperimentErrors,
            ))]
        pub async fn $name(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<RunParams>,
        ) -> Result<Json<LabResponse>, ApiError> {
            experiment(&state, $message, $strategy, params.run()).await
        }
    };
}

two_threads!(
    /// Naive read-modify-write in `workers` threads: loses updates (the seed's `/2th`).
    two_threads_naive, "/test-db/2th", Strategy::Naive, "/2th : Concurrent increment completed"
);
two_threads!(
    /// Optimistic lock: conditional update on `version`, retried on a miss.
    two_threads_optimistic, "/test-db/2th-olock", Strategy::Optimistic, "/2th-olock : optimistic lock increment completed"
);
two_threads!(
    /// One atomic statement: `UPDATE posts SET like = like + 1`.
    two_threads_atomic, "/test-db/2th-atomic", Strategy::Atomic, "/2th-atomic : atomic update increment completed"
);
two_threads!(
    /// Read-modify-write in a SERIALIZABLE transaction, retried on serialization failure.
    two_threads_serializable, "/test-db/2th-serializable", Strategy::Serializable,
    "/2th-serializable : serializable transaction increment completed"
);

/// Application lock keyed by the post (`pg_advisory_xact_lock`, `GET_LOCK`) around the read-modify-write.
/// Not on SQLite: 501.
#[utoipa::path(get, path = "/test-db/2th-advisory", tag = "seed", params(RunParams),
    responses(
        (status = 200, description = "The experiment ran", body = LabResponse),
        ExperimentErrors,
        (status = 501, description = "SQLite has no application locks", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn two_threads_advisory(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    experiment(&state, "/2th-advisory : advisory lock increment completed", Strategy::Advisory, params.run()).await
}

/// The counter split over the server's `--slots` slot rows: each increment is one atomic upsert on a
/// random slot, so workers rarely wait for each other; `like_result` is the post's whole counter (its
/// own `like` plus the sum of its slots).
#[utoipa::path(get, path = "/test-db/2th-sharded", tag = "seed", params(RunParams),
    responses(
        (status = 200, description = "The experiment ran; `like_result` is the sum", body = LabResponse),
        ExperimentErrors,
    ))]
pub async fn two_threads_sharded(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = Strategy::Sharded { slots: state.slots() };
    experiment(&state, "/2th-sharded : sharded counter increment completed", strategy, params.run()).await
}

/// Pessimistic lock: `SELECT ... FOR UPDATE` (or `NOWAIT` / `SKIP LOCKED`), then write, then commit.
#[utoipa::path(get, path = "/test-db/2th-plock", tag = "seed", params(PlockParams),
    responses(
        (status = 200, description = "The experiment ran", body = LabResponse),
        ExperimentErrors,
    ))]
pub async fn two_threads_pessimistic(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PlockParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let message = "/2th-plock : pessimistic lock increment completed";
    experiment(&state, message, Strategy::Pessimistic(params.mode.0), params.run()).await
}

/// The ORM-style version counter: load, change, save; a stale save is retried (`retry=false`: dropped,
/// as in the seed).
#[utoipa::path(get, path = "/test-db/2th-olock-sqlalchemy-versioning", tag = "seed", params(VersioningParams),
    responses(
        (status = 200, description = "The experiment ran; with retry=false, `experiment.dropped` counts the dropped increments", body = LabResponse),
        ExperimentErrors,
    ))]
pub async fn two_threads_versioned(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<VersioningParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = if params.retry { Strategy::Versioned } else { Strategy::VersionedNoRetry };
    let message = "/2th-olock-sqlalchemy-versioning : versioning increment completed";
    experiment(&state, message, strategy, params.run()).await
}

/// One versioned increment (load, `like += 1`, save); like and version before and after.
#[utoipa::path(get, path = "/test-db/test-versioning", tag = "seed", params(PostParams),
    responses(
        (status = 200, description = "Increment saved", body = VersioningResponse),
        PostErrors,
    ))]
pub async fn test_versioning(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PostParams>,
) -> Result<Json<VersioningResponse>, ApiError> {
    let db = state.db().await?;
    let pk = params.post;
    let _post = state.lock_post(pk).await;
    db.ensure_post(pk).await?;
    let retried = state
        .retry()
        .run(|_attempt| {
            let db = db.clone();
            async move {
                let mut session = db.session().await?;
                let mut post = Post::load(&mut session, pk).await?;
                let before = CounterState { like: post.like(), version: post.version() };
                post.set_like(post.like() + 1);
                post.save(&mut session).await?;
                Ok::<_, SaveError>((before, CounterState { like: post.like(), version: post.version() }))
            }
        })
        .await;
    let (before, after) = retried.result.map_err(racelab_core::DbError::from)?;
    Ok(Json(VersioningResponse {
        message: "/test-versioning : versioned increment completed".to_owned(),
        like_result: after.like,
        post: pk,
        initial_like: before.like,
        initial_version: before.version,
        updated_like: after.like,
        updated_version: after.version,
        before,
        after,
        attempts: retried.attempts,
    }))
}

/// Runs one experiment on the requested post while holding that post, and words the answer.
async fn experiment(
    state: &AppState,
    message: &str,
    strategy: Strategy,
    params: Run,
) -> Result<Json<LabResponse>, ApiError> {
    // Refused before anything is waited for: more workers than the pool allows could never run.
    state.check_workers(params.workers)?;
    let db = state.db().await?;
    if !strategy.supported_on(db.backend()) {
        return Err(racelab_core::ExperimentError::Unsupported { strategy, backend: db.backend() }.into());
    }
    let experiment = Experiment {
        target: Target::Post(params.post),
        retry: state.retry(),
        force_race: params.force_race,
        ..Experiment::new(strategy, params.workers, params.increments)
    };
    // The handler answers a little before the request timeout would, so the answer can say what the
    // experiment had done; the timeout layer stays as the backstop.
    let timeout = state.request_timeout();
    let deadline = super::deadline::answer_by(timeout);
    // Waiting for the post is cancellable (a client that gives up stops waiting); the run itself is
    // not: it goes on in its own task, still holding the post, even if the request is dropped by the
    // timeout, so a half-finished run never overlaps the next request on the same post.
    let guard = tokio::time::timeout_at(deadline, state.lock_post(params.post))
        .await
        .map_err(|_| ApiError::RequestTimeout(timeout))?;
    let slots = state.worker_slots(params.workers).await?;
    let progress = Arc::new(Progress::default());
    let running = RunningExperiment {
        state: "running",
        strategy,
        post: params.post,
        workers: params.workers,
        increments: params.increments,
        expected: params.workers as u64 * params.increments,
        so_far: progress.snapshot(),
    };
    let run = tokio::spawn({
        let progress = progress.clone();
        async move {
            let outcome = experiment.run_on(std::slice::from_ref(&db), &progress).await;
            drop((slots, guard));
            outcome
        }
    });
    let joined = match tokio::time::timeout_at(deadline, run).await {
        Ok(joined) => joined,
        Err(_) => {
            // The answer goes now; the run ends within one increment (the rest counted as
            // `stopped`), so the post is not held for the whole of what was asked.
            progress.stop();
            let running = RunningExperiment { so_far: progress.snapshot(), ..running };
            return Err(ApiError::RequestTimeoutRunning { timeout, running: Box::new(running) });
        }
    };
    let outcome = joined.map_err(|e| ApiError::Internal(format!("experiment task failed: {e}")))??;
    metrics::counter!("racelab_increments_total", "strategy" => strategy.name()).increment(outcome.acknowledged);
    metrics::counter!("racelab_lost_updates_total", "strategy" => strategy.name())
        .increment(outcome.lost.unwrap_or(0).max(0) as u64);
    respond(message, outcome)
}

/// `kind: n` for each kind of failure `outcome` counted that `wanted` picks, and their sum.
fn failed_on(outcome: &Outcome, wanted: impl Fn(ErrorKind) -> bool) -> (u64, String) {
    let picked: Vec<(ErrorKind, u64)> =
        outcome.errors.iter().filter(|(k, _)| wanted(**k)).map(|(k, n)| (*k, *n)).collect();
    let listed: Vec<String> = picked.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
    (picked.iter().map(|(_, n)| n).sum(), listed.join(", "))
}

/// The status of a finished experiment, decided here and nowhere else; every answer carries the
/// outcome. 503 if the database went away during the run (what was acknowledged, failed and in
/// doubt, and the counter if it could be read); 409 if every increment gave up on a row lock held by
/// another transaction (`nowait`, `skip-locked`, or `wait` past the lock timeout); 200 otherwise, the
/// verdict saying what was lost, dropped or retried.
fn respond(message: &str, outcome: Outcome) -> Result<Json<LabResponse>, ApiError> {
    let Some(like_result) = outcome.like_after.filter(|_| !outcome.database_unavailable()) else {
        let (unreachable, _) = failed_on(&outcome, ErrorKind::means_unreachable);
        let gone = outcome.in_doubt + unreachable;
        return Err(ApiError::Interrupted { failed: gone, expected: outcome.expected, outcome: Box::new(outcome) });
    };
    if outcome.refused_by_locks() {
        let (_, kinds) = failed_on(&outcome, ErrorKind::is_lock_refusal);
        return Err(ApiError::Locked {
            failed: outcome.failed,
            expected: outcome.expected,
            kinds,
            outcome: Box::new(outcome),
        });
    }
    let mut message = message.to_owned();
    if outcome.lost.is_none() {
        message.push_str(&format!(
            " (another writer changed post {} during the run: lost updates cannot be counted)",
            outcome.post
        ));
    } else if outcome.dropped > 0 {
        message.push_str(&format!(
            " ({} of {} increments dropped: stale version detected, not retried)",
            outcome.dropped, outcome.expected
        ));
    }
    Ok(Json(LabResponse { message, like_result, post: outcome.post, verdict: outcome.verdict(), experiment: outcome }))
}
