//! N workers x M increments (or N workers for a fixed time) of one strategy on one row, each worker on
//! its own connection, all started together; then the accounting that proves what happened.
//!
//! The proof is the database's own counter: `actual` is read from the row before and after, and every
//! acknowledged increment must be in it. Every attempted increment ends as exactly one of:
//! acknowledged; failed (known not applied: the server refused or rolled back); or **in doubt** (the
//! answer to the statement that would have committed it was lost). For every safe strategy
//! `acknowledged <= actual <= acknowledged + in_doubt`.
//!
//! Every strategy bumps `version` with each write it commits, so the version tells how many writes
//! landed: how many of the in-doubt increments committed, or, if it moved by more (or less) than ours
//! can explain, that someone else wrote the row during the run and `lost` is not reported.
//!
//! What was counted is never thrown away: when the counter cannot be read after the run (the database
//! went away), the outcome still comes, with `actual: null`. An outcome never carries a URL: the
//! nodes are numbered, so it can be shown to anyone.
//!
//! This file holds the settings and their checks; the rest lives beside it, one job a file.

/// What a failover of a PostgreSQL cluster's primary did to a run.
mod failover;
/// How one increment ended: acknowledged, failed or in doubt.
pub(crate) mod fate;
/// The outcome and its accounting from the counts and the counter.
mod outcome;
/// Live counts for whoever watches a run, and the stop they may ask for.
mod progress;
/// The run: row, connections, workers started together, accounting.
mod run;
/// After a run: its rows read on the first node that answers.
pub(crate) mod settle;
/// One worker's counts and latency, merged at the end.
pub(crate) mod stats;
/// Reading an outcome: the proof, the refusals, the one-line verdict.
mod verdict;
/// One worker's loop: increments, retries, stop, trace.
mod worker;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub(crate) use self::run::workers_on_node;
use crate::db::{Backend, Database, Pk};
use crate::error::DbError;
use crate::retry::RetryPolicy;
use crate::strategy::Strategy;
use crate::trace::TraceLimit;

pub use self::failover::Failover;
pub use self::outcome::{Latency, NodeOutcome, Outcome};
pub use self::progress::{Progress, ProgressSnapshot};

/// When workers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// Each worker makes this many increments.
    Increments(u64),
    /// Each worker loops until `warmup + measure` has passed; only the `measure` part is timed.
    Duration { warmup: Duration, measure: Duration },
}

/// Which row an experiment works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A new row, created for this run: nothing else writes it.
    FreshPost,
    /// An existing post, created with `like = 0` if missing (the seed's endpoints use post 1).
    Post(Pk),
}

/// One experiment's settings.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub strategy: Strategy,
    pub workers: usize,
    pub stop: StopAfter,
    pub target: Target,
    pub retry: RetryPolicy,
    /// Overrides the database's lock timeout for this run.
    pub lock_timeout: Option<Duration>,
    /// Make every worker read before any writes, on its first increment (strategies that read
    /// without a lock only): the lost update, deterministically.
    pub force_race: bool,
    /// How many times one increment refused by a lock (`NOWAIT`, `SKIP LOCKED`, a lock timeout) is
    /// tried again. 0 by default: a lock mode that fails fast fails on the first refusal, and one
    /// wait never outlasts the lock timeout. Other conflicts follow the retry policy.
    pub lock_retries: u32,
    /// How long to keep trying to read the counter after the run (the database may be coming back)
    /// before reporting `actual: null`.
    pub settle_timeout: Duration,
    /// Record a [`Trace`](crate::Trace) of every worker's reads, writes, commits and conflicts into
    /// [`Outcome::trace`], up to this limit. Off by default: meant for small runs a person reads.
    pub trace: Option<TraceLimit>,
}

impl Experiment {
    /// The most workers one experiment may use.
    pub const MAX_WORKERS: usize = 256;
    /// The most increments one worker may be asked for.
    pub const MAX_INCREMENTS: u64 = 1_000_000;
    /// How long the counter is tried after the run by default.
    pub const DEFAULT_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

    /// `workers` x `increments` of `strategy` on a fresh row, default retry policy.
    pub fn new(strategy: Strategy, workers: usize, increments: u64) -> Self {
        Self {
            strategy,
            workers,
            stop: StopAfter::Increments(increments),
            target: Target::FreshPost,
            retry: RetryPolicy::default(),
            lock_timeout: None,
            force_race: false,
            lock_retries: 0,
            settle_timeout: Self::DEFAULT_SETTLE_TIMEOUT,
            trace: None,
        }
    }

    /// Checks the settings against each other, the backend and the pool.
    pub fn validate(&self, db: &Database) -> Result<(), ExperimentError> {
        self.validate_on(std::slice::from_ref(db))
    }

    /// Checks the settings against each other and against every node the workers are spread over.
    pub fn validate_on(&self, nodes: &[Database]) -> Result<(), ExperimentError> {
        let Some(first) = nodes.first() else {
            return Err(ExperimentError::Invalid("an experiment needs a database".into()));
        };
        if !(1..=Self::MAX_WORKERS).contains(&self.workers) {
            return Err(ExperimentError::Invalid(format!(
                "workers must be between 1 and {}, got {}",
                Self::MAX_WORKERS,
                self.workers
            )));
        }
        check_nodes(nodes, self.workers)?;
        match self.stop {
            StopAfter::Increments(n) if !(1..=Self::MAX_INCREMENTS).contains(&n) => {
                return Err(ExperimentError::Invalid(format!(
                    "increments must be between 1 and {}, got {n}",
                    Self::MAX_INCREMENTS
                )));
            }
            StopAfter::Duration { measure, .. } if measure.is_zero() => {
                return Err(ExperimentError::Invalid("duration must be more than 0".into()));
            }
            _ => {}
        }
        if !self.strategy.supported_on(first.backend()) {
            return Err(ExperimentError::Unsupported { strategy: self.strategy, backend: first.backend() });
        }
        self.retry.validate().map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        Ok(())
    }
}

/// The nodes one run spreads `workers` over: one kind of database, each pool wide enough for the
/// workers it gets (shared by the counter's experiment and the workloads').
pub(crate) fn check_nodes(nodes: &[Database], workers: usize) -> Result<(), ExperimentError> {
    let Some(first) = nodes.first() else {
        return Err(ExperimentError::Invalid("an experiment needs a database".into()));
    };
    if let Some(other) = nodes.iter().find(|n| n.backend() != first.backend()) {
        return Err(ExperimentError::Invalid(format!(
            "every node of one experiment must be the same kind of database: {} and {}",
            first.backend(),
            other.backend()
        )));
    }
    for (node, db) in nodes.iter().enumerate() {
        let needed = workers_on_node(workers, nodes.len(), node);
        if needed > db.max_connections() as usize {
            return Err(ExperimentError::Invalid(format!(
                "{needed} workers need {needed} connections, but the pool holds {}; raise the pool size",
                db.max_connections()
            )));
        }
    }
    Ok(())
}

/// Why an experiment could not run (as opposed to increments that failed inside it, which the outcome
/// counts).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}")]
    Invalid(String),
    #[error("the {strategy} strategy is not supported on {backend}")]
    Unsupported { strategy: Strategy, backend: Backend },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("a worker crashed: {0}")]
    Worker(String),
}
