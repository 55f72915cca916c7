//! The bench's results as data: one [`BenchCell`](crate::report::bench::BenchCell) per strategy and worker count, and the
//! [`BenchReport`](crate::report::bench::BenchReport) that the table, the JSON and CSV files and the charts are all drawn from.
//!
//! Kept apart from the renderers so that every output shows the same figures, computed once here,
//! including the one judgement the bench makes: whether the invariant `actual == acknowledged` held.
//! Never renders: the table, CSV and chart modules do.

use std::collections::BTreeMap;

use racelab_core::experiment::Latency;
use racelab_core::{Backend, ErrorKind, Outcome, Strategy};
use serde::Serialize;

/// Everything one `racelab bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The backend: `postgres`, `mysql` or `sqlite`.
    pub database: Backend,
    /// The server's version string, as `SELECT version()` returns it.
    pub version: String,
    /// The database URL without its password.
    pub url: String,
    /// Measured seconds per cell.
    pub duration_s: f64,
    /// Warm-up seconds per cell, before the measured window.
    pub warmup_s: f64,
    /// The cells that finished, in the order they ran.
    pub cells: Vec<BenchCell>,
    /// The cell that could not run and ended the bench, if one did: `cells` are those before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<CellFailure>,
}

/// A cell that could not run (the server out of connections at 64 workers, say), and why.
#[derive(Debug, Clone, Serialize)]
pub struct CellFailure {
    pub strategy: Strategy,
    pub workers: usize,
    /// The kind of the database error, where the database said (`pool_timeout`, ...).
    pub kind: Option<ErrorKind>,
    pub error: String,
}

impl CellFailure {
    pub fn new(strategy: Strategy, workers: usize, err: &racelab_core::ExperimentError) -> Self {
        let kind = match err {
            racelab_core::ExperimentError::Database(db) => Some(db.kind()),
            _ => None,
        };
        Self { strategy, workers, kind, error: err.to_string() }
    }
}

/// One strategy at one worker count.
#[derive(Debug, Clone, Serialize)]
pub struct BenchCell {
    pub strategy: Strategy,
    pub workers: usize,
    /// Acknowledged increments per second in the measured window.
    pub throughput_per_s: f64,
    /// Latency of whole increments (retries and backoff included), in the measured window.
    pub latency_ms: Latency,
    /// Increments the strategy reported done (warm-up included).
    pub acknowledged: u64,
    /// How far the row's counter moved, read from the database; `null` when it could not be read.
    pub actual: Option<i64>,
    /// Committed increments missing from the row; `null` when another writer touched the row or the
    /// counter could not be read.
    pub lost: Option<i64>,
    /// Increments that gave up with an error.
    pub failed: u64,
    /// Increments whose commit's answer was lost (in the row or not).
    pub in_doubt: u64,
    /// Attempts beyond the first, over the whole run.
    pub retries: u64,
    /// `retries` per attempted increment.
    pub retries_per_increment: f64,
    /// Increments that gave up, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Failed attempts that were retried, by kind.
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// Whether this strategy promises `actual == acknowledged` (every strategy but `naive`).
    pub safe: bool,
    /// Whether `actual == acknowledged` held, as proved by the row's own counter.
    pub invariant_holds: bool,
    /// The figures per node the workers were spread over (one entry on a single server).
    pub nodes: Vec<racelab_core::NodeOutcome>,
}

impl BenchCell {
    /// The figures of one timed experiment.
    pub fn from_outcome(outcome: &Outcome) -> Self {
        let attempted = outcome.acknowledged + outcome.failed;
        Self {
            strategy: outcome.strategy,
            workers: outcome.workers,
            throughput_per_s: outcome.throughput_per_s,
            latency_ms: outcome.latency_ms,
            acknowledged: outcome.acknowledged,
            actual: outcome.actual,
            lost: outcome.lost,
            failed: outcome.failed,
            in_doubt: outcome.in_doubt,
            retries: outcome.retries,
            retries_per_increment: if attempted == 0 { 0.0 } else { outcome.retries as f64 / attempted as f64 },
            errors: outcome.errors.clone(),
            retried_errors: outcome.retried_errors.clone(),
            safe: outcome.strategy != Strategy::Naive,
            invariant_holds: outcome.lost == Some(0) && outcome.invariant_holds() == Some(true),
            nodes: outcome.nodes.clone(),
        }
    }

    /// A safe strategy whose acknowledged increments are not all in the row: a bug, not a cost.
    pub fn violates_invariant(&self) -> bool {
        self.safe && !self.invariant_holds
    }

    /// `kind: n, kind: n`, or an empty string when nothing failed.
    pub fn errors_text(&self, separator: &str) -> String {
        self.errors.iter().map(|(kind, n)| format!("{kind}: {n}")).collect::<Vec<_>>().join(separator)
    }
}

impl BenchReport {
    /// The strategies in the order they were run, each once.
    pub fn strategies(&self) -> Vec<Strategy> {
        let mut seen = Vec::new();
        for cell in &self.cells {
            if !seen.contains(&cell.strategy) {
                seen.push(cell.strategy);
            }
        }
        seen
    }

    /// The worker counts, ascending, each once.
    pub fn worker_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.cells.iter().map(|c| c.workers).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// "PostgreSQL 15.20", "MariaDB 10.11.19", "SQLite 3.51.3": the server, short enough for a caption.
    pub fn server_name(&self) -> String {
        super::text::short_server_name(self.database, &self.version)
    }

    /// The cells of a safe strategy that broke the invariant.
    pub fn violations(&self) -> Vec<&BenchCell> {
        self.cells.iter().filter(|c| c.violates_invariant()).collect()
    }
}
