//! The run of one workload strategy: the rows are made, the connections had, the workers started
//! together and spread over the nodes (as the counter's are), and once they are done the rows are read
//! on a node that has applied every committed write and the invariant checked against the ledger.
//! Once the workers have started it never returns an error: what was counted comes back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::outcome::WorkloadOutcome;
use super::scenario::Scenario;
use super::trace::{self, OpTracer};
use super::worker::{WorkerDone, WorkerJob};
use crate::db::Database;
use crate::error::ErrorKind;
use crate::experiment::stats::{NodeStats, WorkerStats};
use crate::experiment::{ExperimentError, Progress, settle, workers_on_node};
use crate::strategy::RaceGate;

/// How long racing workers wait for each other at the gate before going on (one whose read failed
/// never arrives).
const RACE_GATE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run<S: Scenario>(
    experiment: &WorkloadExperiment,
    strategy: S::Strategy,
    nodes: &[Database],
    progress: &Arc<Progress>,
) -> Result<WorkloadOutcome, ExperimentError> {
    let fixture = {
        let mut session = nodes[0].session().await?;
        Arc::new(S::setup(&mut session, experiment).await?)
    };
    let mut sessions = Vec::with_capacity(nodes.len());
    for (node, db) in nodes.iter().enumerate() {
        let mut on_node = db.sessions(workers_on_node(experiment.workers, nodes.len(), node)).await?;
        if let Some(timeout) = experiment.lock_timeout {
            for session in &mut on_node {
                session.set_lock_timeout(timeout).await?;
            }
        }
        sessions.push(on_node);
    }
    // Every other node must have applied the run's rows before its workers use them: on Galera a row
    // reaches the other nodes a moment after its commit.
    for on_node in sessions.iter_mut().skip(1).filter_map(|s| s.first_mut()) {
        S::state(on_node, &fixture).await?;
    }
    let mut sessions: Vec<_> = sessions.into_iter().map(Vec::into_iter).collect();

    let workers = experiment.workers;
    let racing: Vec<bool> =
        (0..workers).map(|w| experiment.force_race && S::races(strategy, &fixture, w, workers)).collect();
    let racers = racing.iter().filter(|r| **r).count();
    let gate = (racers > 0).then(|| Arc::new(RaceGate::new(racers, RACE_GATE_TIMEOUT)));
    let start = Arc::new(Barrier::new(workers));
    let shared = Arc::new(experiment.clone());
    let tracer = experiment.trace.map(|limit| Arc::new(OpTracer::new(limit, std::time::Instant::now())));
    let mut handles = Vec::with_capacity(workers);
    for (worker, races) in racing.into_iter().enumerate() {
        let node = worker % nodes.len();
        let Some(session) = sessions[node].next() else {
            return Err(ExperimentError::Worker(format!("no session for worker {worker} on node {}", node + 1)));
        };
        let job = WorkerJob::<S> {
            worker,
            node,
            strategy,
            experiment: shared.clone(),
            fixture: fixture.clone(),
            db: nodes[node].clone(),
            start: start.clone(),
            race: gate.clone(),
            races,
            progress: progress.clone(),
            tracer: tracer.clone(),
        };
        handles.push(tokio::spawn(job.run_traced(session)));
    }
    let mut per_node: Vec<Option<WorkerStats>> = (0..nodes.len()).map(|_| None).collect();
    let mut ledger = Ledger::default();
    let mut acks = Vec::new();
    for (worker, handle) in handles.into_iter().enumerate() {
        let WorkerDone { stats, ledger: worker_ledger, acks: worker_acks } =
            handle.await.map_err(|e| ExperimentError::Worker(e.to_string()))?;
        ledger.merge(worker_ledger);
        acks.extend(worker_acks);
        match per_node[worker % nodes.len()].as_mut() {
            None => per_node[worker % nodes.len()] = Some(stats),
            Some(totals) => totals.merge(stats),
        }
    }
    let per_node: Vec<NodeStats> = per_node
        .into_iter()
        .enumerate()
        .filter_map(|(i, stats)| {
            stats.map(|stats| NodeStats { node: i + 1, workers: workers_on_node(workers, nodes.len(), i), stats })
        })
        .collect();

    let state = read_when_settled::<S>(nodes, &fixture, experiment.settle_timeout).await;
    let invariant = match &state {
        Ok(state) => S::check(&fixture, state, &ledger),
        Err(kind) => Invariant::unread(S::INVARIANT, *kind),
    };
    let mut outcome = WorkloadOutcome::account::<S>(
        experiment,
        strategy,
        nodes[0].backend(),
        S::sizes(&fixture),
        invariant,
        state.as_ref().err().copied(),
        per_node,
    );
    outcome.trace = tracer.map(|tracer| {
        let mut trace = tracer.snapshot();
        // A broken invariant was checked against rows that were read.
        if let (Some(false), Ok(state)) = (outcome.invariant.held, &state) {
            let mut groups = BTreeMap::new();
            for (ack, op) in acks {
                if let Some((group, allowed)) = S::contends(&fixture, state, op) {
                    groups.entry(group).or_insert_with(|| (allowed, Vec::new())).1.push(ack);
                }
            }
            trace.marked = trace::mark(groups);
        }
        trace
    });
    Ok(outcome)
}

/// Reads the run's rows after it, on the first node that answers, trying again until `timeout`.
async fn read_when_settled<S: Scenario>(
    nodes: &[Database],
    fixture: &S::Fixture,
    timeout: Duration,
) -> Result<S::State, ErrorKind> {
    settle::read_when_settled(
        nodes,
        timeout,
        "the workload's rows",
        |_| false,
        |db| async move { S::state(&mut db.session().await?, fixture).await },
    )
    .await
}
