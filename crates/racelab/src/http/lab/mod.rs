//! The seed's endpoints (`GET /test-db/*`), rebuilt on the experiment engine: same paths, same JSON
//! keys (`message`, `like_result`), on post 1 unless `post` says otherwise.
//!
//! What the seed got wrong and these must never do again: its row could not be created on an empty
//! table, its logger leaked a file handle per call, and concurrent requests mixed their numbers. Here
//! every endpoint creates the post it needs, nothing is allocated per call that outlives it, and each
//! request that writes a post holds that post's lock (see
//! [`AppState::lock_post`](crate::http::AppState::lock_post)) for the whole run, so `like_result` and
//! `experiment` are this request's own. A writer outside this process is detected by the engine
//! (`experiment.lost` is `null`) and named in `verdict` and `message`.

/// The error answers the endpoints share, as the document lists them.
mod errors;
/// One experiment run for a request, and the status its outcome earns.
mod experiment;
/// The handlers.
mod handlers;
/// The query parameters, one struct per endpoint.
mod params;
/// The answers.
mod responses;

use axum::routing::get;
use racelab_core::{Database, DbError, Pk};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::handlers::*;
pub use self::params::{IncParams, Mode, NoParams, PlockParams, PostParams, Run, RunParams, VersioningParams};
pub use self::responses::{
    CheckResponse, ConnectionResponse, CounterState, InitResponse, LabResponse, VersioningResponse,
};
// The limits the CLI's `serve --max-workers`/`--max-increments` set, under the path it imports them by.
pub use super::limits::{DEFAULT_POOL_SIZE, Limits, MAX_INCREMENTS, MAX_WORKERS};
use super::state::AppState;

/// The post the `/test-db` endpoints work on unless `post` names another.
pub const DEFAULT_POST: Pk = 1;

/// Creates the `/test-db` endpoints' default post if it is missing, so that a fresh post (a lab's, a
/// bench cell's, a run's) never takes its key: on an empty table the first fresh row would be pk 1,
/// and `/test-db/check` would then show another experiment's counts as its own. Writes only when the
/// post is missing, so it never waits for a lock a request holds on it.
pub async fn keep_default_post(db: &Database) -> Result<(), DbError> {
    db.ensure_post(DEFAULT_POST).await
}

/// The routes of this module, documented (`/test-db` itself, a redirect, is not).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connection_check))
        .routes(routes!(init))
        .routes(routes!(check))
        .routes(routes!(inc))
        .routes(routes!(two_threads_naive))
        .routes(routes!(two_threads_pessimistic))
        .routes(routes!(two_threads_optimistic))
        .routes(routes!(two_threads_versioned))
        .routes(routes!(two_threads_atomic))
        .routes(routes!(two_threads_serializable))
        .routes(routes!(two_threads_advisory))
        .routes(routes!(two_threads_sharded))
        .routes(routes!(test_versioning))
        // The seed (FastAPI) redirects `/test-db` to `/test-db/`.
        .route("/test-db", get(to_connection_check))
}
