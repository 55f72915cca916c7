//! The run: the row and the connections are had, the workers started together, spread over the
//! nodes, and their counts accounted once the counter has been read again. Once the workers have
//! started it never returns an error: what was counted comes back, even when the counter cannot be
//! read again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::outcome::Outcome;
use super::progress::Progress;
use super::stats::{NodeStats, WorkerStats};
use super::worker::WorkerJob;
use super::{Experiment, ExperimentError, Target, settle};
use crate::db::{Counter, Database, Pk};
use crate::error::ErrorKind;
use crate::strategy::{RaceGate, Strategy};
use crate::trace::Tracer;

impl Experiment {
    /// Runs the experiment and accounts for every increment.
    pub async fn run(&self, db: &Database) -> Result<Outcome, ExperimentError> {
        self.run_on(std::slice::from_ref(db), &Arc::default()).await
    }

    /// Runs the experiment with its workers spread round-robin over `nodes` (the nodes of one
    /// cluster, all on the same row), counting into `progress` as it goes, and accounts for every
    /// increment across the nodes. The counter is read, before and after, on a node that has applied
    /// every write certified before the read.
    ///
    /// An error means nothing was done (the settings were refused, or the row or the connections
    /// could not be had); once workers have started, the outcome always comes.
    #[tracing::instrument(level = "debug", name = "experiment", skip_all,
        fields(strategy = self.strategy.name(), workers = self.workers, nodes = nodes.len()))]
    pub async fn run_on(&self, nodes: &[Database], progress: &Arc<Progress>) -> Result<Outcome, ExperimentError> {
        self.validate_on(nodes)?;
        let setup = &nodes[0];
        let pk = match self.target {
            Target::FreshPost => setup.create_post().await?,
            Target::Post(pk) => {
                setup.ensure_post(pk).await?;
                pk
            }
        };
        // Before the workers' sessions: it reads the timeline on a connection of its own.
        let failover = super::failover::FailoverWatch::start(setup, progress).await;
        let mut sessions = Vec::with_capacity(self.workers);
        for (node, db) in nodes.iter().enumerate() {
            let mut on_node = db.sessions(workers_on_node(self.workers, nodes.len(), node)).await?;
            if let Some(timeout) = self.lock_timeout {
                for session in &mut on_node {
                    session.set_lock_timeout(timeout).await?;
                }
            }
            sessions.push(on_node);
        }
        // On a worker's session: the pool may hold no more connections than the workers need.
        let before = sessions[0][0].read_settled(pk).await?;
        // Every other node must have applied the post's creation before its workers read it: on
        // Galera a fresh row reaches the other nodes a moment after its commit (else `not_found`).
        for on_node in sessions.iter_mut().skip(1).filter_map(|s| s.first_mut()) {
            on_node.read_settled(pk).await?;
        }
        let mut sessions: Vec<_> = sessions.into_iter().map(Vec::into_iter).collect();

        let start = Arc::new(Barrier::new(self.workers));
        let race = (self.force_race && self.strategy.reads_unlocked())
            .then(|| Arc::new(RaceGate::new(self.workers, Duration::from_secs(10))));
        // Each commit of a single-row strategy writes the row's new value, so a value committed twice
        // is an overwritten increment; the sharded counter's slots repeat each other's values.
        let marks_overwrites = !matches!(self.strategy, Strategy::Sharded { .. });
        let tracer = self.trace.map(|limit| Arc::new(Tracer::new(limit, marks_overwrites)));
        let handles: Vec<_> = (0..self.workers)
            .map(|worker| {
                let node = worker % nodes.len();
                let session = sessions[node].next().expect("one session per worker of the node");
                let job = WorkerJob {
                    worker,
                    node,
                    pk,
                    experiment: self.clone(),
                    db: nodes[node].clone(),
                    start: start.clone(),
                    race: race.clone(),
                    trace: tracer.clone(),
                    progress: progress.clone(),
                };
                tokio::spawn(job.run_traced(session))
            })
            .collect();
        let mut per_node: Vec<Option<WorkerStats>> = (0..nodes.len()).map(|_| None).collect();
        for (worker, handle) in handles.into_iter().enumerate() {
            let stats = handle.await.map_err(|e| ExperimentError::Worker(e.to_string()))?;
            match per_node[worker % nodes.len()].as_mut() {
                None => per_node[worker % nodes.len()] = Some(stats),
                Some(totals) => totals.merge(stats),
            }
        }
        // Nodes with no worker (fewer workers than nodes) have nothing to report.
        let per_node: Vec<NodeStats> = nodes
            .iter()
            .zip(per_node)
            .enumerate()
            .filter_map(|(i, (_, stats))| {
                let workers = workers_on_node(self.workers, nodes.len(), i);
                stats.map(|stats| NodeStats { node: i + 1, workers, stats })
            })
            .collect();

        let after = read_when_settled(nodes, pk, self.settle_timeout).await;
        let mut outcome = Outcome::account(self, setup.backend(), pk, before, after, per_node);
        outcome.trace = tracer.map(|tracer| tracer.snapshot());
        if let Some(watch) = failover {
            outcome.failover = Some(watch.finish(&outcome).await);
        }
        Ok(outcome)
    }
}

/// How many of `workers` run on node `node` of `nodes` (round-robin).
pub(crate) fn workers_on_node(workers: usize, nodes: usize, node: usize) -> usize {
    workers / nodes + usize::from(node < workers % nodes)
}

/// Reads the counter after the run, on the first node that answers, trying again until `timeout`.
/// A total past the maximum stays past it: the answer, not a state to wait out.
async fn read_when_settled(nodes: &[Database], pk: Pk, timeout: Duration) -> Result<Counter, ErrorKind> {
    let is_final = |kind| kind == ErrorKind::CounterOverflow;
    settle::read_when_settled(nodes, timeout, "the counter", is_final, |db| async move {
        db.session().await?.read_settled(pk).await
    })
    .await
}
