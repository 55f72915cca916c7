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
use chrono::{DateTime, Utc};
use racelab_core::experiment::{StopAfter, Target};
use racelab_core::{ErrorKind, Experiment, LockMode, Outcome, Pk, Post, SaveError, Strategy};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Problem};
use super::query::{ApiQuery, FromQuery, NoParams, QueryParams};

/// The most workers one request may ask for. The pool is sized so that this many fit, plus headroom.
pub const MAX_WORKERS: i64 = 32;
/// The most increments per worker one request may ask for.
pub const MAX_INCREMENTS: i64 = 1000;
/// The highest post key accepted.
pub const MAX_POST: i64 = i32::MAX as i64;
/// Connections the service's pool needs by default: the largest experiment plus headroom for
/// concurrent reads (`/check`, `/ready`) and a second experiment waiting for its connections.
pub const DEFAULT_POOL_SIZE: u32 = MAX_WORKERS as u32 + 8;

/// The post the seed's endpoints use.
const SEED_POST: Pk = 1;

// ---------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------

/// Parameters of every `2th*` endpoint.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    /// Concurrent workers, each on its own database connection.
    #[param(required = false, minimum = 1, maximum = 32, default = 2, example = 2)]
    pub workers: usize,
    /// Increments each worker makes.
    #[param(required = false, minimum = 1, maximum = 1000, default = 25, example = 25)]
    pub increments: u64,
    /// The post to work on, created with `like = 0` if missing. Requests on the same post run one after
    /// the other; on different posts, side by side.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
    /// Make every worker read before any of them writes, on its first increment: the conflict forced,
    /// deterministically (strategies that read without a lock).
    #[param(required = false, default = false)]
    pub force_race: bool,
}

impl RunParams {
    const NAMES: [&'static str; 4] = ["workers", "increments", "post", "force_race"];

    fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            workers: q.int("workers", 2, 1..=MAX_WORKERS)? as usize,
            increments: q.int("increments", 25, 1..=MAX_INCREMENTS)? as u64,
            post: q.int("post", SEED_POST, 1..=MAX_POST)?,
            force_race: q.bool("force_race", false)?,
        })
    }
}

impl FromQuery for RunParams {
    const NAMES: &'static [&'static str] = &Self::NAMES;
    fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        Self::parse(q)
    }
}

/// How `SELECT ... FOR UPDATE` behaves when the row is already locked. Documentation only (utoipa needs
/// a schema, which [`LockMode`] has not): the parameter is parsed into [`LockMode`] from
/// [`LockMode::ALL`], with the same names.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum LockModeParam {
    /// Wait for the lock, up to the lock timeout.
    Wait,
    /// Fail at once (`NOWAIT`): the increment gives up with `lock_not_available`.
    Nowait,
    /// Skip the locked row (`SKIP LOCKED`): the increment gives up with `row_skipped`.
    SkipLocked,
}

/// The parameter `/2th-plock` adds to [`RunParams`] (documentation; parsed into [`PlockParams`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ModeParam {
    /// What to do when the row is locked.
    #[param(required = false, inline, default = "wait", example = "wait")]
    mode: LockModeParam,
}

/// Parameters of `/2th-plock`.
#[derive(Debug, Clone, Copy)]
pub struct PlockParams {
    pub mode: LockMode,
    pub run: RunParams,
}

impl FromQuery for PlockParams {
    const NAMES: &'static [&'static str] = &["workers", "increments", "post", "force_race", "mode"];
    fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        let mode = q.choice("mode", LockMode::Wait, &LockMode::ALL.map(|mode| (mode.as_str(), mode)))?;
        Ok(Self { mode, run: RunParams::parse(q)? })
    }
}

/// The parameter `/2th-olock-sqlalchemy-versioning` adds to [`RunParams`] (documentation).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RetryParam {
    /// Retry a save that found a stale version by re-running the whole unit of work. `false` does what
    /// the seed did: each conflict silently drops one increment (`experiment.dropped` counts them).
    #[param(required = false, default = true)]
    retry: bool,
}

/// Parameters of `/2th-olock-sqlalchemy-versioning`.
#[derive(Debug, Clone, Copy)]
pub struct VersioningParams {
    pub retry: bool,
    pub run: RunParams,
}

impl FromQuery for VersioningParams {
    const NAMES: &'static [&'static str] = &["workers", "increments", "post", "force_race", "retry"];
    fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self { retry: q.bool("retry", true)?, run: RunParams::parse(q)? })
    }
}

/// Parameters of `/inc`: one session, sequential increments.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncParams {
    /// Increments, one after the other on one connection.
    #[param(required = false, minimum = 1, maximum = 1000, default = 25, example = 25)]
    pub increments: u64,
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

impl FromQuery for IncParams {
    const NAMES: &'static [&'static str] = &["increments", "post"];
    fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            increments: q.int("increments", 25, 1..=MAX_INCREMENTS)? as u64,
            post: q.int("post", SEED_POST, 1..=MAX_POST)?,
        })
    }
}

/// Parameters of the endpoints that work on one post and nothing else.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostParams {
    /// The post to work on, created with `like = 0` if missing.
    #[param(required = false, minimum = 1, maximum = 2147483647, default = 1, example = 1)]
    pub post: i64,
}

impl FromQuery for PostParams {
    const NAMES: &'static [&'static str] = &["post"];
    fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self { post: q.int("post", SEED_POST, 1..=MAX_POST)? })
    }
}

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
        "expected": 50, "acknowledged": 50, "failed": 0, "errors": {}, "retried_errors": {}, "actual": 50,
        "lost": 0, "dropped": 0, "foreign_writes": 0, "attempts": 50, "retries": 0, "elapsed_ms": 9.8,
        "throughput_per_s": 5102.0, "latency_ms": {"p50": 0.3, "p95": 0.6, "p99": 0.9, "max": 1.2},
        "like_before": 0, "like_after": 50}
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
    /// Increments that gave up with an error, counted by kind in `errors`.
    failed: u64,
    /// Failed increments by kind (serialization_failure, deadlock, lock_not_available, lock_timeout, busy,
    /// stale_version, row_skipped, connection_lost, pool_timeout, not_found, unsupported, other).
    errors: std::collections::BTreeMap<String, u64>,
    /// Failed attempts that were retried, by kind.
    retried_errors: std::collections::BTreeMap<String, u64>,
    /// `like` after minus `like` before, read from the database.
    actual: i64,
    /// `acknowledged - actual`; `null` when another writer touched the row during the run.
    lost: Option<i64>,
    /// Increments the no-retry versioning run dropped after detecting a conflict.
    dropped: u64,
    /// Writes to the row during the run that were not this experiment's.
    foreign_writes: i64,
    attempts: u64,
    /// `attempts - expected`.
    retries: u64,
    elapsed_ms: f64,
    throughput_per_s: f64,
    latency_ms: LatencySchema,
    like_before: i64,
    like_after: i64,
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
    "version": "PostgreSQL 15.10 on x86_64-pc-linux-gnu"}))]
pub struct ConnectionResponse {
    pub message: String,
    /// postgres, mysql or sqlite.
    pub database: String,
    /// The server's version string (`SELECT version()`).
    pub version: String,
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
    "modified_at": "2026-11-25T10:00:00.123456Z"}))]
pub struct CheckResponse {
    pub message: String,
    /// The whole counter, as `like`.
    pub like_result: i64,
    pub post: i64,
    /// The whole counter: the post's own `like` plus its slots' (written by the sharded strategy).
    pub like: i64,
    /// Writes to the post and its slots.
    pub version: i64,
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
    "post": 1, "before": {"like": 50, "version": 50}, "after": {"like": 51, "version": 51}, "attempts": 1}))]
pub struct VersioningResponse {
    pub message: String,
    pub like_result: i64,
    pub post: i64,
    pub before: CounterState,
    pub after: CounterState,
    /// Loads and saves it took (more than 1 when someone else saved in between).
    pub attempts: u32,
}

// ---------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------

/// Connection check: the server's version string.
#[utoipa::path(get, path = "/test-db/", tag = "seed",
    responses(
        (status = 200, description = "The database answers", body = ConnectionResponse),
        (status = 400, description = "Unknown query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn connection_check(
    State(state): State<AppState>,
    ApiQuery(NoParams): ApiQuery<NoParams>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let db = state.db().await?;
    let version = db.server_version().await?;
    Ok(Json(ConnectionResponse {
        message: "/ : database connection OK".to_owned(),
        database: db.backend().to_string(),
        version,
    }))
}

/// Resets the post to `like = 0`, `version = 0` (creating it if needed).
#[utoipa::path(get, path = "/test-db/init", tag = "seed", params(PostParams),
    responses(
        (status = 200, description = "Post reset", body = InitResponse),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
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
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
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
        modified_at: row.modified_at,
    }))
}

/// One session, sequential read-modify-write increments (safe: nobody else writes in between).
#[utoipa::path(get, path = "/test-db/inc", tag = "seed", params(IncParams),
    responses(
        (status = 200, description = "Increments done", body = LabResponse),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn inc(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<IncParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let run = RunParams { workers: 1, increments: params.increments, post: params.post, force_race: false };
    experiment(&state, "/inc : Concurrent increment completed", Strategy::Naive, run).await
}

macro_rules! two_threads {
    ($(#[$doc:meta])* $name:ident, $path:literal, $strategy:expr, $message:literal) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = "seed", params(RunParams),
            responses(
                (status = 200, description = "The experiment ran; see `verdict` and `experiment`", body = LabResponse),
                (status = 400, description = "Invalid parameter (named in `detail` and `invalid_params`)", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The post stayed locked by another transaction", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "More workers than the server's pool allows (the maximum is named in `detail`)", body = Problem, content_type = "application/problem+json"),
                (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
            ))]
        pub async fn $name(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<RunParams>,
        ) -> Result<Json<LabResponse>, ApiError> {
            experiment(&state, $message, $strategy, params).await
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
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "SQLite has no application locks", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More workers than the server's pool allows (the maximum is named in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn two_threads_advisory(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    experiment(&state, "/2th-advisory : advisory lock increment completed", Strategy::Advisory, params).await
}

/// The counter split over the server's `--slots` slot rows: each increment is one atomic upsert on a
/// random slot, so workers rarely wait for each other; `like_result` is the post's whole counter (its
/// own `like` plus the sum of its slots).
#[utoipa::path(get, path = "/test-db/2th-sharded", tag = "seed", params(RunParams),
    responses(
        (status = 200, description = "The experiment ran; `like_result` is the sum", body = LabResponse),
        (status = 400, description = "Invalid parameter (named in `detail` and `invalid_params`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More workers than the server's pool allows (the maximum is named in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn two_threads_sharded(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = Strategy::Sharded { slots: state.slots() };
    experiment(&state, "/2th-sharded : sharded counter increment completed", strategy, params).await
}

/// Pessimistic lock: `SELECT ... FOR UPDATE` (or `NOWAIT` / `SKIP LOCKED`), then write, then commit.
#[utoipa::path(get, path = "/test-db/2th-plock", tag = "seed", params(ModeParam, RunParams),
    responses(
        (status = 200, description = "The experiment ran", body = LabResponse),
        (status = 400, description = "Invalid parameter (named in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The post stayed locked by another transaction", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More workers than the server's pool allows (the maximum is named in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn two_threads_pessimistic(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PlockParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let message = "/2th-plock : pessimistic lock increment completed";
    experiment(&state, message, Strategy::Pessimistic(params.mode), params.run).await
}

/// The ORM-style version counter: load, change, save; a stale save is retried (`retry=false`: dropped,
/// as in the seed).
#[utoipa::path(get, path = "/test-db/2th-olock-sqlalchemy-versioning", tag = "seed", params(RetryParam, RunParams),
    responses(
        (status = 200, description = "The experiment ran; with retry=false, `experiment.dropped` counts the dropped increments", body = LabResponse),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More workers than the server's pool allows (the maximum is named in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn two_threads_versioned(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<VersioningParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = if params.retry { Strategy::Versioned } else { Strategy::VersionedNoRetry };
    let message = "/2th-olock-sqlalchemy-versioning : versioning increment completed";
    experiment(&state, message, strategy, params.run).await
}

/// One versioned increment (load, `like += 1`, save); like and version before and after.
#[utoipa::path(get, path = "/test-db/test-versioning", tag = "seed", params(PostParams),
    responses(
        (status = 200, description = "Increment saved", body = VersioningResponse),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Stale version after every retry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable (with Retry-After)", body = Problem, content_type = "application/problem+json"),
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
    params: RunParams,
) -> Result<Json<LabResponse>, ApiError> {
    // Refused before anything is waited for: more workers than the pool allows could never run.
    state.check_workers(params.workers)?;
    let db = state.db().await?;
    if !strategy.supported_on(db.backend()) {
        return Err(racelab_core::ExperimentError::Unsupported { strategy, backend: db.backend() }.into());
    }
    let experiment = Experiment {
        strategy,
        workers: params.workers,
        stop: StopAfter::Increments(params.increments),
        target: Target::Post(params.post),
        retry: state.retry(),
        lock_timeout: None,
        force_race: params.force_race,
    };
    // Waiting for the post is cancellable (a client that gives up stops waiting); the run itself is
    // not: it goes on in its own task, still holding the post, even if the request is dropped by the
    // timeout, so a half-finished run never overlaps the next request on the same post.
    let guard = state.lock_post(params.post).await;
    let slots = state.worker_slots(params.workers).await?;
    let run = tokio::spawn(async move {
        let outcome = experiment.run(&db).await;
        drop((slots, guard));
        outcome
    });
    let outcome = run.await.map_err(|e| ApiError::Internal(format!("experiment task failed: {e}")))??;
    metrics::counter!("racelab_increments_total", "strategy" => strategy.name()).increment(outcome.acknowledged);
    metrics::counter!("racelab_lost_updates_total", "strategy" => strategy.name())
        .increment(outcome.lost.unwrap_or(0).max(0) as u64);
    respond(message, outcome)
}

/// 200 with the outcome, unless the database went away during the run (503, with the outcome).
fn respond(message: &str, outcome: Outcome) -> Result<Json<LabResponse>, ApiError> {
    let gone = [ErrorKind::ConnectionLost, ErrorKind::PoolTimeout]
        .iter()
        .map(|kind| outcome.errors.get(kind).copied().unwrap_or(0))
        .sum::<u64>();
    if gone > 0 {
        return Err(ApiError::Interrupted { failed: gone, expected: outcome.expected, outcome: Box::new(outcome) });
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
    Ok(Json(LabResponse {
        message,
        like_result: outcome.like_after,
        post: outcome.post,
        verdict: outcome.verdict(),
        experiment: outcome,
    }))
}
