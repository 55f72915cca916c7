//! `/experiments`: a lab, a bench, the anomalies suite or an isolation-tester spec started by one
//! request and run in the background, watched as it runs (Server-Sent Events) and shown again by its id. The page at `/` is
//! its client: the run view's keys and the events' names are what the page reads.
//!
//! ```sh
//! curl -si -X POST http://127.0.0.1:8000/experiments -H 'Content-Type: application/json' \
//!     -d '{"kind": "lab", "strategies": ["naive", "atomic"], "workers": 2, "increments": 10, "force_race": true}'
//! curl -sN http://127.0.0.1:8000/experiments/r-.../events
//! curl -s http://127.0.0.1:8000/experiments/r-... | jq '.results[] | {strategy, lost}'
//! ```
//!
//! The results are the engine's outcomes, the very JSON `racelab lab --json` prints; a small lab
//! (at most 4 workers x 10 increments) also carries the engine's trace of each strategy, the lost
//! update marked. Runs are bounded: `--max-runs` under way at once (429 past that), finished ones kept
//! for `--run-retention`, at most `--max-kept-runs`. A run that cannot start (the database cannot be
//! reached) is refused with 503 before it is registered; one that fails midway ends `failed` with the
//! problem `/test-db/*` would have answered, after what it did. `POST /experiments/{id}/stop` stops a
//! run: the experiment running ends after the increments in flight (the rest counted as stopped, the
//! accounting whole), and no other starts; a spec run cancels its step, rolls back and tears down.
//! A spec run (`kind: "spec"`) runs the spec's SQL on the server's own database, as `racelab spec`
//! would with the server's `--database-url`, one at a time; `GET /specs` lists the repository's.
//!
//! The handlers register, find and stop runs; they must never run an experiment in the request's own
//! task.

/// The body of `POST /experiments` as sent, and its check against this server's bounds.
mod body;
/// `GET /workloads`: each workload's invariant and strategies.
mod catalog;
/// The SSE stream of one run.
mod events;
/// The runs under way and kept, bounded (the service's state holds them).
pub(super) mod registry;
/// What a run was asked to do, normalized.
mod request;
/// One run: request, live progress, results, end.
mod run;
/// What runs a run: lab and bench experiments, the anomalies suite, or a spec.
mod runner;
/// The body's published schema, with this server's bounds.
mod schema;
/// A run's place among those under way.
mod slot;
/// `GET /specs`: the repository's spec files, embedded.
mod specs;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response as ResponseDoc;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::body::ExperimentBody;
pub use self::registry::Registry;
pub use self::request::{Bounds, ExperimentRequest, Kind};
pub use self::run::{CellProgress, RunState, RunView, SpecResult};
pub use self::specs::{SPECS, SpecFile};
// The CLI and the tests name the run limits by this path.
pub use super::config::RunLimits;
use super::echo::echo;
use super::error::ApiError;
use super::json_body::ApiJson;
use super::openapi::problems;
use super::state::AppState;

/// The routes of this module, documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(stop_run))
        .routes(routes!(catalog::list_workloads))
        .routes(routes!(specs::list_specs))
}

/// Publishes the body's schema with this server's maxima and strategies (see [`Bounds::apply`]).
pub fn document(mut doc: utoipa::openapi::OpenApi, state: &AppState) -> utoipa::openapi::OpenApi {
    let schemas = doc.components.as_mut().map(|components| &mut components.schemas);
    match schemas.and_then(|schemas| schemas.get_mut(ExperimentBody::name().as_ref())) {
        Some(schema @ RefOr::T(Schema::Object(_))) => {
            let bounds = Bounds::of(state);
            if let RefOr::T(Schema::Object(body)) = schema {
                bounds.apply(body);
                *schema = RefOr::T(bounds.with_conditions(body.clone()));
            }
        }
        _ => tracing::error!("the document has no body schema of /experiments to set this server's bounds on"),
    }
    doc
}

/// The errors of `POST /experiments`.
struct CreateErrors;

impl IntoResponses for CreateErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[
            (400, "The body is not JSON"),
            (413, "The body is larger than the server reads"),
            (415, "The body is not `application/json`"),
            (403, "A spec run, on a server started with `--no-spec-runs`"),
            (422, "A body member is missing, of the wrong type, out of range or unknown (named in `invalid_params`)"),
            (429, "`--max-runs` runs are under way (with Retry-After)"),
            (503, "The database cannot be reached: the run could not start (with Retry-After)"),
        ])
    }
}

/// The errors of reading a run.
struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        problems(&[(404, "No run has this id, or it finished longer ago than runs are kept")])
    }
}

/// Starts a run: a lab, a bench (strategies x worker counts), the anomalies suite, or a spec (its SQL
/// run on the server's database).
#[utoipa::path(post, path = "/experiments", tag = "experiments",
    request_body(content = ExperimentBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Started (or queued behind another run on its post)", body = RunView,
            headers(("Location" = String, description = "The run's URL"))),
        CreateErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(kind = ?body.kind))]
pub async fn create_run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ExperimentBody>,
) -> Result<Response, ApiError> {
    let request = body.validate(&Bounds::of(&state))?;
    if request.spec.is_some() && !state.runs().limits().spec_runs {
        return Err(ApiError::SpecRunsOff);
    }
    if let Some(plan) = &request.plan {
        let most = plan.workers.counts().into_iter().max().unwrap_or(1);
        state.check_workers(most)?;
    }
    // A run that could not start is refused here, not registered to fail a moment later; and first,
    // so that while the database is away every client hears that (503), not that the runs are full.
    // A round trip, not just a connection from the pool: one returned moments ago is handed out
    // untested (see racelab_core's db::pool).
    let db = state.db().await?;
    db.ping().await?;
    let slot = state.runs().reserve()?;
    let id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let run = Arc::new(run::Run::new(id, request, state.backend(), slot));
    state.runs().insert(run.clone());
    tokio::spawn(runner::execute(state.clone(), run.clone()));
    let mut response = (StatusCode::ACCEPTED, Json(run.view())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/experiments/{}", run.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A run: its state, live progress, results (and traces, the anomalies matrix, or the spec's run).
#[utoipa::path(get, path = "/experiments/{id}", tag = "experiments",
    params(("id" = String, Path, description = "The run's id, from `POST /experiments`")),
    responses(
        (status = 200, description = "The run", body = RunView),
        ReadErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(id = %echo(&id)))]
pub async fn get_run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<RunView>, ApiError> {
    Ok(Json(find(&state, &id)?.view()))
}

/// The run as Server-Sent Events: `progress` (at most 10 a second), `result` (one outcome, or a spec
/// run's whole result once it ran), `trace`,
/// then `error` (a failed run's problem) and `end` (the final run view); keep-alive comments every 15 s.
#[utoipa::path(get, path = "/experiments/{id}/events", tag = "experiments",
    params(("id" = String, Path, description = "The run's id, from `POST /experiments`")),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = events::ServerSentEvent),
        ReadErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(id = %echo(&id)))]
pub async fn run_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<events::EventStream, ApiError> {
    Ok(events::stream(find(&state, &id)?))
}

/// Stops a run: the experiment under way ends after its increments in flight (the others are counted
/// `stopped`, and what was done stays in `results`), and no later one starts; the anomalies suite is
/// stopped only before it starts; a spec run cancels the step running or waiting, rolls its sessions
/// back and runs the teardowns (what it could not clean is in `spec.stopped`). 202 while it stops, 200 if it was already over; the run view either way.
#[utoipa::path(post, path = "/experiments/{id}/stop", tag = "experiments",
    params(("id" = String, Path, description = "The run's id, from `POST /experiments`")),
    responses(
        (status = 202, description = "Stopping: the run ends `stopped` after the increments in flight", body = RunView),
        (status = 200, description = "The run was already over: nothing to stop", body = RunView),
        ReadErrors,
    ))]
#[tracing::instrument(level = "debug", skip_all, fields(id = %echo(&id)))]
pub async fn stop_run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = find(&state, &id)?;
    if run.state().is_over() {
        return Ok((StatusCode::OK, Json(run.view())).into_response());
    }
    tracing::info!(run = %run.id, "run stopped by request");
    run.stop();
    Ok((StatusCode::ACCEPTED, Json(run.view())).into_response())
}

impl Bounds {
    pub fn of(state: &AppState) -> Self {
        let limits = state.limits();
        Self {
            backend: state.backend(),
            max_workers: limits.max_workers.min(state.max_workers()) as usize,
            max_increments: limits.max_increments,
            slots: state.slots(),
        }
    }
}

fn find(state: &AppState, id: &str) -> Result<Arc<run::Run>, ApiError> {
    state.runs().get(id).ok_or_else(|| ApiError::RunNotFound { id: echo(id) })
}
