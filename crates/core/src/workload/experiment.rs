//! [`WorkloadExperiment`]: one run of one strategy of a workload (the counter's too, beside its
//! [`Experiment`](crate::Experiment), which keeps the counter's own settings: durations, an existing
//! post, failover): its settings, their checks, and the dispatch to the workload's [`Scenario`]. Refuses bad settings with a message naming the setting, before anything connects.

use std::sync::Arc;
use std::time::Duration;

use super::booking::Booking;
use super::counter::CounterWorkload;
use super::oncall::OnCall;
use super::outcome::WorkloadOutcome;
use super::queue::Queue;
use super::runner;
use super::scenario::{Scenario, WorkloadStrategy};
use super::sizes::Sizes;
use super::stock::Stock;
use super::transfer::Transfer;
use super::workloads::Workload;
use crate::db::{Database, Isolation};
use crate::experiment::{Experiment, ExperimentError, Progress, check_nodes};
use crate::retry::RetryPolicy;
use crate::strategy::Strategy;
use crate::trace::TraceLimit;

/// One run of one strategy of a workload.
#[derive(Debug, Clone)]
pub struct WorkloadExperiment {
    pub workload: Workload,
    /// The strategy's name, one of [`Workload::strategies`].
    pub strategy: String,
    pub workers: usize,
    /// Operations per worker.
    pub operations: u64,
    /// Every transaction of the run at this level (the `serializable` strategy's always at
    /// SERIALIZABLE); `None`: the database's default.
    pub isolation: Option<Isolation>,
    /// Force the race on each worker's first operation (see [`Scenario::races`]).
    pub force_race: bool,
    pub retry: RetryPolicy,
    /// Times one operation refused by a lock (`NOWAIT`, a lock timeout) is tried again.
    pub lock_retries: u32,
    /// Overrides the database's lock timeout for this run.
    pub lock_timeout: Option<Duration>,
    /// How long to keep trying to read the rows after the run before reporting no verdict.
    pub settle_timeout: Duration,
    /// The seed of the workers' generators: the same seed, the same operations.
    pub seed: u64,
    pub sizes: Sizes,
    /// Trace each attempt (for runs small enough to read); `None`: no trace, and no cost.
    pub trace: Option<TraceLimit>,
}

impl WorkloadExperiment {
    /// The seed when nobody chooses one.
    pub const DEFAULT_SEED: u64 = 1;
    /// The most operations one run may make in all (workers x operations): each acknowledged or
    /// in-doubt operation is kept until the invariant is checked (a transfer's takes 24 bytes).
    pub const MAX_OPERATIONS_PER_RUN: u64 = 10_000_000;

    /// `workers` x `operations` of `strategy` of `workload`, default settings.
    pub fn new(workload: Workload, strategy: &str, workers: usize, operations: u64) -> Self {
        Self {
            workload,
            strategy: strategy.to_owned(),
            workers,
            operations,
            isolation: None,
            force_race: false,
            retry: RetryPolicy::default(),
            lock_retries: 0,
            lock_timeout: None,
            settle_timeout: Experiment::DEFAULT_SETTLE_TIMEOUT,
            trace: None,
            seed: Self::DEFAULT_SEED,
            sizes: Sizes::default(),
        }
    }

    /// Checks the settings against each other and the nodes (the same kind of database each, a pool
    /// big enough for the workers each node runs).
    pub fn validate_on(&self, nodes: &[Database]) -> Result<(), ExperimentError> {
        if nodes.is_empty() {
            return Err(ExperimentError::Invalid("an experiment needs a database".into()));
        }
        if self.workload.is_safe(&self.strategy).is_none() {
            return Err(ExperimentError::Invalid(format!(
                "unknown {} strategy `{}`; expected one of: {}",
                self.workload,
                self.strategy,
                self.workload.strategies().join(", ")
            )));
        }
        if !(1..=Experiment::MAX_WORKERS).contains(&self.workers) {
            return Err(ExperimentError::Invalid(format!(
                "workers must be between 1 and {}, got {}",
                Experiment::MAX_WORKERS,
                self.workers
            )));
        }
        if !(1..=Experiment::MAX_INCREMENTS).contains(&self.operations) {
            return Err(ExperimentError::Invalid(format!(
                "operations must be between 1 and {}, got {}",
                Experiment::MAX_INCREMENTS,
                self.operations
            )));
        }
        let total = (self.workers as u64).saturating_mul(self.operations);
        if total > Self::MAX_OPERATIONS_PER_RUN {
            return Err(ExperimentError::Invalid(format!(
                "workers x operations must be at most {} for a workload (each operation is kept for the \
                 proof), got {} x {} = {total}",
                Self::MAX_OPERATIONS_PER_RUN,
                self.workers,
                self.operations
            )));
        }
        check_nodes(nodes, self.workers)?;
        self.retry.validate().map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        if self.workload == Workload::Counter
            && let Ok(strategy) = self.strategy.parse::<Strategy>()
            && !strategy.supported_on(nodes[0].backend())
        {
            return Err(ExperimentError::Unsupported { strategy, backend: nodes[0].backend() });
        }
        let sizes = match self.workload {
            Workload::Counter => CounterWorkload::validate(self),
            Workload::Stock => Stock::validate(self),
            Workload::Transfer => Transfer::validate(self),
            Workload::OnCall => OnCall::validate(self),
            Workload::Queue => Queue::validate(self),
            Workload::Booking => Booking::validate(self),
        };
        sizes.map_err(ExperimentError::Invalid)
    }

    /// Whether the strategy is meant to keep the invariant.
    pub fn is_safe(&self) -> bool {
        self.workload.is_safe(&self.strategy).unwrap_or(false)
    }

    /// Runs the workload with its workers spread round-robin over `nodes` (the nodes of one cluster),
    /// counting into `progress`; then reads the rows on a node that has applied every committed
    /// write, and checks the invariant. An error means nothing was done; once workers have started,
    /// the outcome always comes.
    pub async fn run_on(
        &self,
        nodes: &[Database],
        progress: &Arc<Progress>,
    ) -> Result<WorkloadOutcome, ExperimentError> {
        self.validate_on(nodes)?;
        match self.workload {
            Workload::Counter => {
                // `sharded` parses with the default slots; the run's are its size.
                let slots = u16::try_from(self.sizes.slots).unwrap_or(crate::strategy::MAX_SLOTS);
                let strategy = strategy::<CounterWorkload>(&self.strategy)?.with_slots(slots);
                runner::run::<CounterWorkload>(self, strategy, nodes, progress).await
            }
            Workload::Stock => runner::run::<Stock>(self, strategy::<Stock>(&self.strategy)?, nodes, progress).await,
            Workload::Transfer => {
                runner::run::<Transfer>(self, strategy::<Transfer>(&self.strategy)?, nodes, progress).await
            }
            Workload::OnCall => runner::run::<OnCall>(self, strategy::<OnCall>(&self.strategy)?, nodes, progress).await,
            Workload::Queue => runner::run::<Queue>(self, strategy::<Queue>(&self.strategy)?, nodes, progress).await,
            Workload::Booking => {
                runner::run::<Booking>(self, strategy::<Booking>(&self.strategy)?, nodes, progress).await
            }
        }
    }

    /// [`WorkloadExperiment::run_on`] on one database.
    pub async fn run(&self, db: &Database) -> Result<WorkloadOutcome, ExperimentError> {
        self.run_on(std::slice::from_ref(db), &Arc::default()).await
    }
}

fn strategy<S: Scenario>(name: &str) -> Result<S::Strategy, ExperimentError> {
    S::Strategy::parse(name)
        .ok_or_else(|| ExperimentError::Invalid(format!("unknown {} strategy `{name}`", S::WORKLOAD)))
}
