//! [`WorkloadOutcome`]: what a workload run did, with its proof, as `racelab lab --workload W --json`
//! prints it. Every operation is counted once (acknowledged + refused + failed + in doubt = expected);
//! the invariant is never claimed when the rows could not be read.

use std::collections::BTreeMap;

use serde::Serialize;

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::scenario::{Scenario, WorkloadStrategy};
use super::trace::OpTrace;
use super::workloads::Workload;
use crate::db::Backend;
use crate::error::ErrorKind;
use crate::experiment::stats::{NodeStats, count_by_kind};
use crate::experiment::{Latency, NodeOutcome};

/// What one workload run did, with the proof.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WorkloadOutcomeSchema))]
pub struct WorkloadOutcome {
    /// stock, transfer, ...
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub workload: Workload,
    /// The strategy's name.
    pub strategy: &'static str,
    /// The level every transaction ran at: read-uncommitted, read-committed, repeatable-read,
    /// serializable, or `default` (the database's own).
    pub isolation: String,
    /// Whether the strategy is meant to keep the invariant here: on one server, or (when the workers
    /// wrote through several nodes) across the nodes of a Galera cluster.
    pub safe: bool,
    /// postgres, mysql or sqlite.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub database: Backend,
    #[cfg_attr(feature = "openapi", schema(value_type = u32))]
    pub workers: usize,
    /// Operations per worker.
    pub operations: u64,
    /// The seed of the workers' operations.
    pub seed: u64,
    /// The sizes of the run's rows (`stock`, `accounts`).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, i64>))]
    pub sizes: BTreeMap<&'static str, i64>,
    /// `workers * operations`: acknowledged + refused + failed + in_doubt.
    pub expected: u64,
    /// Operations done and committed.
    pub acknowledged: u64,
    /// Operations the business rule refused (sold out, insufficient funds): answers, not errors.
    pub refused: u64,
    /// Operations known not applied, by kind in `errors`.
    pub failed: u64,
    /// Operations whose commit's answer was lost: each may be in the database or not.
    pub in_doubt: u64,
    /// Failed operations by kind.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Failed attempts that were retried, by kind (deadlocks, serialization failures, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub retried_errors: BTreeMap<ErrorKind, u64>,
    /// Attempts run again after a conflict (the sum of `retried_errors`).
    pub retries: u64,
    /// Attempts in all, first tries included.
    pub attempts: u64,
    /// The invariant, checked from the database's rows and the acknowledged operations.
    pub invariant: Invariant,
    /// Why the rows could not be read after the run, when they could not.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub state_error: Option<ErrorKind>,
    pub elapsed_ms: f64,
    /// Acknowledged operations per second.
    pub throughput_per_s: f64,
    pub latency_ms: Latency,
    /// The same counts per node the workers worked through (one entry on a single server).
    pub nodes: Vec<NodeOutcome>,
    /// Each attempt, and the operations that broke the invariant, when the run was traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub trace: Option<OpTrace>,
}

impl WorkloadOutcome {
    pub(super) fn account<S: Scenario>(
        experiment: &WorkloadExperiment,
        strategy: S::Strategy,
        backend: Backend,
        sizes: Vec<(&'static str, i64)>,
        invariant: Invariant,
        state_error: Option<ErrorKind>,
        per_node: Vec<NodeStats>,
    ) -> Self {
        let (nodes, stats) = NodeOutcome::and_merged(per_node);
        let elapsed = stats.finished.saturating_duration_since(stats.started);
        let throughput = if elapsed.is_zero() { 0.0 } else { stats.acknowledged as f64 / elapsed.as_secs_f64() };
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &stats.latency_us;
        let isolation = strategy.tx().level_name(experiment.isolation, backend).to_owned();
        Self {
            workload: S::WORKLOAD,
            strategy: strategy.name(),
            isolation,
            // Spread over nodes, a strategy is only as safe as certification lets it be.
            safe: if nodes.len() > 1 { strategy.safe_across_nodes() } else { strategy.safe() },
            database: backend,
            workers: experiment.workers,
            operations: experiment.operations,
            seed: experiment.seed,
            sizes: sizes.into_iter().collect(),
            expected: stats.expected(),
            acknowledged: stats.acknowledged,
            refused: stats.refused,
            failed: stats.failed,
            in_doubt: stats.in_doubt,
            errors: count_by_kind(&stats.errors),
            retried_errors: count_by_kind(&stats.retried),
            retries: stats.retried.iter().sum(),
            attempts: stats.attempts,
            invariant,
            state_error,
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            throughput_per_s: (throughput * 10.0).round() / 10.0,
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            nodes,
            trace: None,
        }
    }

    /// A strategy meant to keep the invariant broke it: the run fails.
    pub fn safe_strategy_broke_invariant(&self) -> bool {
        self.safe && self.invariant.held == Some(false)
    }

    /// Whether the database was out of reach: the rows could not be read after the run, or
    /// operations failed because no connection could be had or kept.
    pub fn database_unavailable(&self) -> bool {
        self.state_error.is_some() || self.in_doubt > 0 || self.errors.keys().any(|kind| kind.means_unreachable())
    }

    /// One line a newcomer understands: the invariant's detail, then what was refused, retried or
    /// given up.
    pub fn verdict(&self) -> String {
        let mut verdict = self.invariant.detail.clone();
        if self.refused > 0 {
            verdict.push_str(&format!("; {} refused", self.refused));
        }
        if self.retries > 0 {
            let kinds: Vec<String> = self.retried_errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            verdict.push_str(&format!("; {} retried ({})", self.retries, kinds.join(", ")));
        }
        if self.in_doubt > 0 {
            verdict.push_str(&format!("; {} in doubt (the connection was lost during the commit)", self.in_doubt));
        }
        if self.failed > 0 {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            verdict.push_str(&format!("; {} failed ({})", self.failed, kinds.join(", ")));
        }
        verdict
    }
}
