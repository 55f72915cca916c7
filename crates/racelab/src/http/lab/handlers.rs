//! The `/test-db/*` handlers: each reads its parameters, works on its post (or runs one experiment of
//! the engine through [`super::experiment`]) and answers. They must never write SQL or decide an
//! experiment's status themselves.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Redirect;
use racelab_core::{Post, SaveError, Strategy};

use super::errors::{ExperimentErrors, PostErrors, QueryErrors};
use super::experiment::experiment;
use super::params::{IncParams, NoParams, PlockParams, PostParams, Run, RunParams, VersioningParams};
use super::responses::{
    CheckResponse, ConnectionResponse, CounterState, InitResponse, LabResponse, VersioningResponse,
};
use crate::http::error::{ApiError, Problem};
use crate::http::query::ApiQuery;
use crate::http::state::AppState;

/// Connection check: the server's version string.
#[utoipa::path(get, path = "/test-db/", tag = "test-db",
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
#[utoipa::path(get, path = "/test-db/init", tag = "test-db", params(PostParams),
    responses(
        (status = 200, description = "Post reset", body = InitResponse),
        PostErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post))]
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
#[utoipa::path(get, path = "/test-db/check", tag = "test-db", params(PostParams),
    responses(
        (status = 200, description = "The post", body = CheckResponse),
        PostErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post))]
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
#[utoipa::path(get, path = "/test-db/inc", tag = "test-db", params(IncParams),
    responses(
        (status = 200, description = "Increments done", body = LabResponse),
        PostErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post, increments = params.increments))]
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
        #[utoipa::path(get, path = $path, tag = "test-db", params(RunParams),
            responses(
                (status = 200, description = "The experiment ran; see `verdict` and `experiment`", body = LabResponse),
                ExperimentErrors,
            ))]
        #[tracing::instrument(level = "debug", skip_all, fields(post = params.post, workers = params.workers, increments = params.increments, force_race = params.force_race))]
        pub async fn $name(
            State(state): State<AppState>,
            ApiQuery(params): ApiQuery<RunParams>,
        ) -> Result<Json<LabResponse>, ApiError> {
            experiment(&state, $message, $strategy, params.run()).await
        }
    };
}

two_threads!(
    /// Naive read-modify-write in `workers` threads: loses updates.
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
#[utoipa::path(get, path = "/test-db/2th-advisory", tag = "test-db", params(RunParams),
    responses(
        (status = 200, description = "The experiment ran", body = LabResponse),
        ExperimentErrors,
        (status = 501, description = "SQLite has no application locks", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post, workers = params.workers, increments = params.increments, force_race = params.force_race))]
pub async fn two_threads_advisory(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    experiment(&state, "/2th-advisory : advisory lock increment completed", Strategy::Advisory, params.run()).await
}

/// The counter split over the server's `--slots` slot rows: each increment is one atomic upsert on a
/// random slot, so workers rarely wait for each other; `like_result` is the post's whole counter (its
/// own `like` plus the sum of its slots).
#[utoipa::path(get, path = "/test-db/2th-sharded", tag = "test-db", params(RunParams),
    responses(
        (status = 200, description = "The experiment ran; `like_result` is the sum", body = LabResponse),
        ExperimentErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post, workers = params.workers, increments = params.increments, force_race = params.force_race))]
pub async fn two_threads_sharded(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RunParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = Strategy::Sharded { slots: state.slots() };
    experiment(&state, "/2th-sharded : sharded counter increment completed", strategy, params.run()).await
}

/// Pessimistic lock: `SELECT ... FOR UPDATE` (or `NOWAIT` / `SKIP LOCKED`), then write, then commit.
#[utoipa::path(get, path = "/test-db/2th-plock", tag = "test-db", params(PlockParams),
    responses(
        (status = 200, description = "The experiment ran", body = LabResponse),
        ExperimentErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post, workers = params.workers, increments = params.increments, force_race = params.force_race, mode = params.mode.0.as_str()))]
pub async fn two_threads_pessimistic(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PlockParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let message = "/2th-plock : pessimistic lock increment completed";
    experiment(&state, message, Strategy::Pessimistic(params.mode.0), params.run()).await
}

/// The ORM-style version counter: load, change, save; a stale save is retried (`retry=false`: dropped,
/// as in the FastAPI original).
#[utoipa::path(get, path = "/test-db/2th-olock-sqlalchemy-versioning", tag = "test-db", params(VersioningParams),
    responses(
        (status = 200, description = "The experiment ran; with retry=false, `experiment.dropped` counts the dropped increments", body = LabResponse),
        ExperimentErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post, workers = params.workers, increments = params.increments, force_race = params.force_race, retry = params.retry))]
pub async fn two_threads_versioned(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<VersioningParams>,
) -> Result<Json<LabResponse>, ApiError> {
    let strategy = if params.retry { Strategy::Versioned } else { Strategy::VersionedNoRetry };
    let message = "/2th-olock-sqlalchemy-versioning : versioning increment completed";
    experiment(&state, message, strategy, params.run()).await
}

/// One versioned increment (load, `like += 1`, save); like and version before and after.
#[utoipa::path(get, path = "/test-db/test-versioning", tag = "test-db", params(PostParams),
    responses(
        (status = 200, description = "Increment saved", body = VersioningResponse),
        PostErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(post = params.post))]
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
