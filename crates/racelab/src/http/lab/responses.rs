//! The answers of the `/test-db/*` endpoints: the seed's keys (`message`, `like_result`, and its
//! misspelt `vsersion`) kept, then what proves the result. These structs only shape answers; they
//! must never decide a status (that is [`super::experiment`]'s).

use chrono::{DateTime, Utc};
use racelab_core::Outcome;
use serde::Serialize;
use utoipa::ToSchema;

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
