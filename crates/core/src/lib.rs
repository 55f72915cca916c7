//! racelab-core: make read-modify-write of one database row safe, and prove it.
//!
//! No HTTP and no terminal here: the service and the command line are built on this crate.
//!
//! - [`db`]: connecting to PostgreSQL, MariaDB/MySQL or SQLite; sessions; every SQL statement.
//! - [`error`]: one error type whose kinds (deadlock, serialization failure, ...) every layer decides on.
//! - [`retry`]: the retry policy with full-jitter backoff, for our strategies and yours.
//! - [`strategy`]: naive, atomic, pessimistic, optimistic, versioned, serializable, advisory.
//! - [`post`]: a versioned entity (load, change, save) with a typed stale-version error.
//! - [`anomalies`]: Hermitage's isolation tests (G0 ... G2, lost update), run on every level of a backend.
//! - [`likes`]: likes as a service makes them: one or a combined batch, with idempotency keys, in one transaction.
//! - [`experiment`]: N workers x M increments, and the accounting (acknowledged == counter).
//! - [`trace`]: a bounded trace of an experiment's reads, writes and commits: the lost update, seen.

pub mod anomalies;
pub mod db;
pub mod error;
pub mod experiment;
pub mod likes;
pub mod post;
pub mod retry;
pub mod strategy;
pub mod trace;

pub use db::{Backend, ConnectOptions, Database, DatabaseUrl, LockMode, Pk, Session};
pub use error::{Classify, DbError, ErrorKind};
pub use experiment::{
    Experiment, ExperimentError, NodeOutcome, Outcome, Progress, ProgressSnapshot, StopAfter, Target,
};
pub use post::{Post, SaveError};
pub use retry::{Retried, RetryPolicy};
pub use strategy::Strategy;
pub use trace::{Trace, TraceEvent, TraceKind, TraceLimit};
