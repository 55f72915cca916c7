//! `/health`: the process is alive (no database involved). `/ready`: the database answers and, on a
//! MariaDB Galera node, the node is ready, in the Primary component and Synced; 503 with `Retry-After`
//! otherwise, so a load balancer stops sending work until the database is back. A node outside the
//! Primary component still answers `SELECT VERSION()` while it refuses every table with 1047: a ping
//! alone would call it ready.
//!
//! A 503's `detail` says what is wrong (no such database, access denied, nothing answering, ...) and
//! what to do, in words any client may read ([`DatabaseDown`]); the log has the rest, once per change.
//!
//! On PostgreSQL, a server that is a replica (in recovery) is `read-only-replica`, and a URL with several
//! hosts none of which accepts writes now (a failover under way) is `no-primary`: the same shape as a
//! Galera node that is not Synced, a database that answers and cannot take the service's writes.
//!
//! `/health` must never touch the database, so a dead database never makes the process look dead.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use racelab_core::db::{HostState, NodeState};
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
            ready, Primary and Synced is `node-not-ready`, naming its state; a PostgreSQL replica is \
            `read-only-replica`, and a URL with several hosts none of which accepts writes now (a failover under \
            way) is `no-primary`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthResponse>, Response> {
    let db = match state.db().await {
        Ok(db) => db,
        Err(ApiError::DatabaseDown(down @ (DatabaseDown::NoPrimary | DatabaseDown::ReadOnlyReplica))) => {
            return Err(cannot_write(&down));
        }
        Err(err) => return Err(err.into_response()),
    };
    // Asked of the watcher, before any session: a session waits for a primary while there is none.
    if let Some(HostState::NoPrimary { replicas }) = db.host_state() {
        let down = DatabaseDown::NoPrimary;
        state.database_down(down.clone(), || {
            format!("readiness check failed: no host of the URL accepts writes ({replicas} read-only replicas answer)")
        });
        return Err(cannot_write(&down));
    }
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
    match db.read_only().await {
        Ok(Some(true)) => {
            let down = DatabaseDown::ReadOnlyReplica;
            state
                .database_down(down.clone(), || "readiness check failed: the server is a read-only replica".to_owned());
            return Err(cannot_write(&down));
        }
        Ok(_) => {}
        Err(err) => {
            state.database_down(DatabaseDown::Lost, || format!("readiness check failed: {err}"));
            return Err(ApiError::DatabaseDown(DatabaseDown::Lost).into_response());
        }
    }
    state.database_up();
    Ok(Json(HealthResponse { status: "ready", database: Some(db.backend().to_string()) }))
}

/// 503 naming why the server cannot take writes: `read-only-replica` or `no-primary`.
fn cannot_write(down: &DatabaseDown) -> Response {
    let (problem, title) = match down {
        DatabaseDown::ReadOnlyReplica => ("read-only-replica", "Database server is a read-only replica"),
        _ => ("no-primary", "No database host accepts writes"),
    };
    problem_response(Problem {
        problem_type: format!("urn:racelab:problem:{problem}"),
        title: title.to_owned(),
        status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        detail: down.to_string(),
        instance: None,
        invalid_params: None,
        experiment: None,
    })
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
