//! racelab-core: make read-modify-write of one database row safe, and prove it.
//!
//! No HTTP and no terminal here: the service and the command line are built on this crate. It never
//! prints, never reads the environment, and never puts a database password in an error or a log line.
//!
//! Read it in this order:
//!
//! - [`db`]: connecting to PostgreSQL, MariaDB/MySQL or SQLite; sessions; every SQL statement.
//! - [`error`]: one error type whose kinds (deadlock, serialization failure, ...) every layer decides on.
//! - [`strategy`]: naive, atomic, pessimistic, optimistic, versioned, serializable, advisory, sharded: each
//!   a unit of work that adds an amount to one row, written once and run by both users below.
//! - [`retry`]: the retry policy with full-jitter backoff, for our strategies and yours.
//! - [`post`]: a versioned entity (load, change, save) with a typed stale-version error.
//! - [`experiment`]: N workers x M increments of one strategy, live progress, and the accounting
//!   (acknowledged == counter) with its verdict.
//! - [`trace`]: a bounded trace of an experiment's reads, writes and commits: the lost update, seen.
//! - [`likes`]: likes as a service makes them: one or a combined batch, with idempotency keys, in one
//!   transaction, by the same strategy units the experiment runs.
//! - [`anomalies`]: Hermitage's isolation tests (G0 ... G2, lost update), run on every level of a backend.
//! - [`spec`]: PostgreSQL's isolation-tester spec files (your own interleavings), run as isolationtester runs them.
//! - [`workload`]: the races beyond the counter (stock, transfer, ...), each with its invariant proven by
//!   the database, run by one generic runner built from the experiment's pieces.
//! - [`table`]: the counter's and the stock's strategies on a table of your own (names checked and quoted).
//!
//! The `openapi` feature derives `utoipa::ToSchema` on the outcome and trace types, so that a service
//! documents the very types it serializes.

pub mod anomalies;
pub mod db;
pub mod error;
pub mod experiment;
pub mod likes;
pub mod post;
pub mod retry;
pub mod spec;
pub mod strategy;
pub mod table;
pub mod trace;
pub mod workload;

pub use db::{Backend, ConnectOptions, Database, DatabaseUrl, Isolation, LockMode, Pk, Session};
pub use error::{Classify, DbError, ErrorKind};
pub use experiment::{
    Experiment, ExperimentError, NodeOutcome, Outcome, Progress, ProgressSnapshot, StopAfter, Target,
};
pub use post::{Post, SaveError};
pub use retry::{Retried, RetryPolicy};
pub use strategy::Strategy;
pub use trace::{Trace, TraceEvent, TraceKind, TraceLimit};
pub use workload::{Invariant, Workload, WorkloadExperiment, WorkloadOutcome};
