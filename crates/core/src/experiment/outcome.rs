//! The outcome and its accounting: each worker's counts, the counter before and after, and what the
//! version column says about whose writes landed. It never reports a loss it cannot prove: with
//! writes not ours in the row, or the counter unread, `lost` is `null`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::failover::Failover;
use super::stats::{NodeStats, WorkerStats, count_by_kind, kind_index};
use super::{Experiment, StopAfter};
use crate::db::{Backend, Counter, Pk};
use crate::error::ErrorKind;
use crate::strategy::Strategy;
use crate::trace::Trace;

/// Latency of whole increments (retries and backoff included), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LatencySchema))]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// What happened, with the proof.
///
/// With the `openapi` feature, the field docs are the descriptions the service's OpenAPI document
/// publishes (under the name `OutcomeSchema`); what only a Rust reader needs is in plain comments.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(as = OutcomeSchema, description = "The experiment's outcome (as `racelab lab --json` prints it).")
)]
pub struct Outcome {
    /// naive, atomic, pessimistic, pessimistic-nowait, pessimistic-skip-locked, optimistic, versioned,
    /// versioned-no-retry, serializable, advisory, sharded.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub strategy: Strategy,
    /// postgres, mysql or sqlite.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub database: Backend,
    // The post the experiment ran on.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub post: Pk,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub workers: usize,
    /// Increments per worker.
    // `None` when the run was bounded by time.
    pub increments: Option<u64>,
    /// `workers * increments`.
    // Increments attempted: `acknowledged + failed + in_doubt` always, timed runs included.
    pub expected: u64,
    /// Increments the strategy reported done.
    pub acknowledged: u64,
    /// Increments known not applied (refused, or rolled back), counted by kind in `errors`.
    pub failed: u64,
    /// Increments whose commit's answer was lost: each may be in the row or not.
    pub in_doubt: u64,
    /// How many in-doubt increments committed, as the version count shows.
    // `None` when another writer makes the count unreliable, or the counter could not be read.
    pub in_doubt_committed: Option<u64>,
    /// Failed increments by kind (serialization_failure, deadlock, lock_not_available, lock_timeout, busy,
    /// stale_version, row_skipped, connection_lost, pool_timeout, not_found, unsupported, other).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Failed attempts that were retried, by kind.
    // The conflicts the strategy survived.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// `like` after minus `like` before, read from the database; `null` when it could not be read.
    // Why it could not is in `counter_error`.
    pub actual: Option<i64>,
    /// Committed increments missing from the row; never negative; `null` when another writer touched
    /// the row during the run or the counter could not be read.
    // `acknowledged` plus the in-doubt increments that committed, minus `actual`: the lost updates.
    pub lost: Option<i64>,
    /// Increments the no-retry versioning run dropped after detecting a conflict.
    pub dropped: u64,
    /// Writes to the row during the run that were not this experiment's.
    pub foreign_writes: i64,
    // Attempts in all, first tries included.
    pub attempts: u64,
    /// Attempts run again after a conflict (the sum of `retried_errors`).
    // What safety cost.
    pub retries: u64,
    pub elapsed_ms: f64,
    // Acknowledged increments per second (in the measured window, for timed runs).
    pub throughput_per_s: f64,
    pub latency_ms: Latency,
    pub like_before: i64,
    // `like` after the run; `None` when it could not be read.
    pub like_after: Option<i64>,
    /// Why the counter could not be read after the run (an error kind), when it could not.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub counter_error: Option<ErrorKind>,
    /// The same figures per node the workers wrote through.
    // One entry on a single server.
    pub nodes: Vec<NodeOutcome>,
    /// Through a PostgreSQL URL with several hosts (a Patroni cluster): whether the primary changed
    /// during the run, the client-seen write gap, and the acknowledged increments the primary after the
    /// run does not have. `null` on other URLs.
    pub failover: Option<Failover>,
    /// The run's trace, when [`Experiment::trace`] asked for one. Not part of the outcome's JSON
    /// (which the lab prints and files keep): serialize [`Trace`] on its own.
    #[serde(skip)]
    pub trace: Option<Trace>,
}

/// One node's share of an experiment.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NodeSchema))]
pub struct NodeOutcome {
    /// The node's number, from 1, in the order the databases were given.
    // The caller knows their URLs; an outcome never carries one, so it can be shown to anyone.
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub node: usize,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub workers: usize,
    pub acknowledged: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub retries: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub errors: BTreeMap<ErrorKind, u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub retried_errors: BTreeMap<ErrorKind, u64>,
}

impl NodeOutcome {
    /// Each node's outcome, and every node's counts merged into the run's.
    pub(crate) fn and_merged(per_node: Vec<NodeStats>) -> (Vec<NodeOutcome>, WorkerStats) {
        let nodes = per_node.iter().map(|n| NodeOutcome::of(n.node, n.workers, &n.stats)).collect();
        let mut per_node = per_node.into_iter().map(|n| n.stats);
        let mut stats = per_node.next().unwrap_or_else(WorkerStats::new);
        for node in per_node {
            stats.merge(node);
        }
        (nodes, stats)
    }

    pub(crate) fn of(node: usize, workers: usize, stats: &WorkerStats) -> Self {
        Self {
            node,
            workers,
            acknowledged: stats.acknowledged,
            failed: stats.failed,
            in_doubt: stats.in_doubt,
            retries: stats.retried.iter().sum(),
            errors: count_by_kind(&stats.errors),
            retried_errors: count_by_kind(&stats.retried),
        }
    }
}

/// What the version column says about the writes during a run.
struct VersionAccount {
    foreign_writes: i64,
    in_doubt_committed: Option<u64>,
}

impl VersionAccount {
    /// Every write we committed bumped the version once: `acknowledged` of them for sure, and up to
    /// `in_doubt` more. A count outside that range means writes that were not ours.
    fn of(versions: i64, acknowledged: i64, in_doubt: i64) -> Self {
        let foreign_writes =
            if versions < acknowledged { versions - acknowledged } else { (versions - acknowledged - in_doubt).max(0) };
        let in_doubt_committed = (foreign_writes == 0).then(|| (versions - acknowledged) as u64);
        Self { foreign_writes, in_doubt_committed }
    }
}

impl Outcome {
    pub(super) fn account(
        experiment: &Experiment,
        backend: Backend,
        pk: Pk,
        before: Counter,
        after: Result<Counter, ErrorKind>,
        per_node: Vec<NodeStats>,
    ) -> Self {
        let (nodes, stats) = NodeOutcome::and_merged(per_node);
        let expected = stats.expected();
        let acknowledged = stats.acknowledged as i64;
        let (actual, counted) = match after {
            Ok(after) => {
                let account = VersionAccount::of(after.version - before.version, acknowledged, stats.in_doubt as i64);
                let actual = after.like - before.like;
                (Some(actual), Some((after, account)))
            }
            Err(_) => (None, None),
        };
        let foreign_writes = counted.as_ref().map_or(0, |(_, a)| a.foreign_writes);
        let in_doubt_committed = counted.as_ref().and_then(|(_, a)| a.in_doubt_committed);
        let lost = match (actual, in_doubt_committed) {
            (Some(actual), Some(committed)) => Some(acknowledged + committed as i64 - actual).filter(|l| *l >= 0),
            _ => None,
        };
        let errors = count_by_kind(&stats.errors);
        let retried_errors = count_by_kind(&stats.retried);
        let elapsed = stats.finished.saturating_duration_since(stats.started);
        let (throughput, increments) = match experiment.stop {
            StopAfter::Increments(n) => (per_second(stats.acknowledged, elapsed), Some(n)),
            StopAfter::Duration { measure, .. } => (per_second(stats.measured_acknowledged, measure), None),
        };
        let ms = |micros: u64| (micros as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let h = &stats.latency_us;
        Self {
            strategy: experiment.strategy,
            database: backend,
            post: pk,
            workers: experiment.workers,
            increments,
            expected,
            acknowledged: stats.acknowledged,
            failed: stats.failed,
            in_doubt: stats.in_doubt,
            in_doubt_committed,
            dropped: if experiment.strategy == Strategy::VersionedNoRetry {
                stats.errors[kind_index(ErrorKind::StaleVersion)] + stats.errors[kind_index(ErrorKind::Deadlock)]
            } else {
                0
            },
            errors,
            retried_errors,
            actual,
            lost,
            foreign_writes,
            attempts: stats.attempts,
            retries: stats.retried.iter().sum(),
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            throughput_per_s: (throughput * 10.0).round() / 10.0,
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            like_before: before.like,
            like_after: counted.map(|(after, _)| after.like),
            counter_error: after.err(),
            nodes,
            failover: None,
            trace: None,
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() { 0.0 } else { count as f64 / elapsed.as_secs_f64() }
}
