//! `/health`: the process is alive (no database involved). `/ready`: the database answers and, on a
//! MariaDB Galera node, the node is ready, in the Primary component and Synced; 503 with `Retry-After`
//! otherwise, so a load balancer stops sending work until the database is back. A node outside the
//! Primary component still answers `SELECT VERSION()` while it refuses every table with 1047: a ping
//! alone would call it ready.
//!
//! A 503's `detail` says what is wrong (no such database, access denied, nothing answering, ...) and
//! what to do, in words any client may read ([`DatabaseDown`]); the log has the rest, once per change.
//!
//! `/health` must never touch the database, so a dead database never makes the process look dead.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use racelab_core::db::NodeState;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, Problem, problem_response};
use super::state::{AppState, DatabaseDown};

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "database": "postgres"}))]
pub struct HealthResponse {
    /// `ok` (alive) or `ready` (the database answers).
    pub status: &'static str,
    /// postgres, mysql or sqlite (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok", database: None })
}

/// The database answers a query.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "The database cannot be used, with Retry-After: the detail says what is \
            wrong and what to do (the database does not exist and the command that creates it, access denied, \
            nothing answers, ...), naming the database but not the server's host or user; a Galera node not \
            ready, Primary and Synced is `node-not-ready`, naming its state", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthResponse>, Response> {
    let db = state.db().await.map_err(IntoResponse::into_response)?;
    if let Err(err) = db.ping().await {
        state.database_down(DatabaseDown::Lost, || format!("readiness check failed: {err}"));
        return Err(ApiError::DatabaseDown(DatabaseDown::Lost).into_response());
    }
    match db.node_state().await {
        Ok(Some(node)) if !node.is_serving() => {
            let down = DatabaseDown::NodeNotReady(node.to_string());
            state.database_down(down, || format!("readiness check failed: Galera node not serving: {node}"));
            return Err(node_not_ready(&node));
        }
        Ok(_) => {}
        Err(err) => {
            state.database_down(DatabaseDown::Lost, || format!("readiness check failed: no Galera node state: {err}"));
            return Err(ApiError::DatabaseDown(DatabaseDown::Lost).into_response());
        }
    }
    state.database_up();
    Ok(Json(HealthResponse { status: "ready", database: Some(db.backend().to_string()) }))
}

/// 503 naming the node's state: what an operator needs to see (a node's state is no secret).
fn node_not_ready(node: &NodeState) -> Response {
    problem_response(Problem {
        problem_type: "urn:racelab:problem:node-not-ready".to_owned(),
        title: "Database node not ready".to_owned(),
        status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        detail: format!("the Galera node is not ready, Primary and Synced: it is {node}"),
        instance: None,
        invalid_params: None,
        experiment: None,
    })
}
