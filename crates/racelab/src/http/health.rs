//! `/health`: the process is alive (no database involved). `/ready`: the database answers; 503 with
//! `Retry-After` otherwise, so a load balancer stops sending work until the database is back.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};

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
        (status = 503, description = "The database cannot be reached (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    let db = state.db().await?;
    if let Err(err) = db.ping().await {
        tracing::warn!(%err, "readiness check failed");
        return Err(ApiError::DatabaseUnavailable);
    }
    Ok(Json(HealthResponse { status: "ready", database: Some(db.backend().to_string()) }))
}
