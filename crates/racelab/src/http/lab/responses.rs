//! The answers of the `/test-db/*` endpoints: the seed's keys (`message`, `like_result`, and its
//! misspelt `vsersion`) kept, then what proves the result. These structs only shape answers; they
//! must never decide a status (that is [`super::experiment`]'s).

use chrono::{DateTime, Utc};
use racelab_core::Outcome;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer of every experiment endpoint: the FastAPI original's two keys, then the proof.
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
        "like_before": 0, "like_after": 50, "counter_error": null, "failover": null,
        "nodes": [{"node": 1, "workers": 2, "acknowledged": 50, "failed": 0, "in_doubt": 0, "retries": 0,
            "errors": {}, "retried_errors": {}}]}
}))]
pub struct LabResponse {
    /// What was done, in the FastAPI original's words (plus what went wrong, if anything did).
    pub message: String,
    /// The post's `like` after the run.
    pub like_result: i64,
    pub post: i64,
    /// One line a newcomer understands: lost, dropped, retried, or another writer interfered.
    pub verdict: String,
    /// The full outcome, with the same fields as `racelab lab --json`.
    pub experiment: Outcome,
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
    /// `success` when the database answered (a failure is a problem, never this body), as the FastAPI
    /// original answered.
    pub status: &'static str,
    /// `version` under the FastAPI original's key, whatever the backend: a client of the original
    /// reads the server's version string here.
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
    /// `version` under the FastAPI original's misspelt key (sic): it answered `vsersion`, and a client
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
    /// `before` and `after`, flat, under the keys the FastAPI original answered them with.
    pub initial_like: i64,
    pub initial_version: i64,
    pub updated_like: i64,
    pub updated_version: i64,
    /// Loads and saves it took (more than 1 when someone else saved in between).
    pub attempts: u32,
}
