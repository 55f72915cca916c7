//! One run: what was asked, its live progress (the engine's [`Progress`] counters, one per experiment),
//! what has finished so far, and a signal for whoever watches (the event stream) that something changed.
//!
//! It holds what a run did; it must never run anything itself (that is the runner's), and never lose an
//! outcome once recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};
use racelab_core::anomalies::Matrix;
use racelab_core::spec;
use racelab_core::{Backend, ErrorKind, Outcome, Progress, Strategy, Trace, TraceEvent, WorkloadOutcome};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::request::{ExperimentRequest, Kind, Pick};
use super::slot::Slot;
use crate::http::error::Problem;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for its post (another run or request holds it), for worker connections, or for the
    /// anomalies table (one anomalies or spec run at a time).
    Queued,
    Running,
    /// Every experiment ran; the results say what each found.
    Finished,
    /// The run could not go on, a safe strategy broke its invariant
    /// (`urn:racelab:problem:invariant-broken`, once every experiment ran), or a spec's run stopped by
    /// itself as isolationtester stops (`urn:racelab:problem:spec-stopped`: a setup failed, a step
    /// waited past twice the step timeout): `error` says why, `results` (or `spec`) hold what was done.
    Failed,
    /// The run was stopped before it finished (by `POST /experiments/{id}/stop`, or the server shut
    /// down).
    Stopped,
}

impl RunState {
    pub fn is_over(self) -> bool {
        matches!(self, RunState::Finished | RunState::Failed | RunState::Stopped)
    }
}

/// One experiment of the run and its live counters.
pub struct Cell {
    pub strategy: Pick,
    pub workers: usize,
    pub increments: u64,
    pub progress: Arc<Progress>,
}

/// One experiment's progress, as the run view and the event stream show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CellProgress {
    #[schema(value_type = String)]
    pub strategy: Pick,
    pub workers: usize,
    pub expected: u64,
    pub acknowledged: u64,
    /// A workload's operations the business rule refused (absent for the counter's increments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<u64>,
    pub failed: u64,
    pub in_doubt: u64,
    pub retries: u64,
    /// Failed increments by kind.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub errors: std::collections::BTreeMap<ErrorKind, u64>,
    /// The experiment has finished (its outcome is in `results`).
    pub done: bool,
}

/// One strategy's trace: each worker's reads, lock waits, writes, commits, conflicts and retries.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TraceSchema)]
pub struct StrategyTrace {
    #[schema(value_type = String)]
    pub strategy: Strategy,
    pub events: Vec<TraceEvent>,
    /// Events past the trace's limit were dropped.
    pub truncated: bool,
}

impl StrategyTrace {
    pub fn new(strategy: Strategy, trace: Trace) -> Self {
        Self { strategy, events: trace.events, truncated: trace.truncated }
    }
}

/// One experiment's outcome: the counter's, or a workload's with its invariant, each as `racelab lab
/// --json` prints it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RunResult {
    Counter(Outcome),
    Workload(WorkloadOutcome),
}

/// A spec run's result, as `racelab spec --format json` prints a file's run (less the file and the
/// database): the spec as parsed, each permutation's events (steps, answers with their rows, errors,
/// waits), `stopped` (why the run ended early, and what could not be cleaned), `translations`.
#[derive(Debug, Clone, Serialize)]
pub struct SpecResult {
    pub spec: spec::Spec,
    #[serde(flatten)]
    pub outcome: spec::Outcome,
}

/// A run: what was asked, where it stands, and what it found so far.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RunViewSchema)]
pub struct RunView {
    /// `r-` and 16 hex digits.
    pub id: String,
    pub kind: Kind,
    pub state: RunState,
    /// The body as accepted, defaults filled in (`kind` alone for `anomalies`).
    #[schema(value_type = Object)]
    pub request: ExperimentRequest,
    /// postgres, mysql or sqlite.
    #[schema(value_type = String)]
    pub backend: Backend,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// One entry per experiment (strategy x worker count), live.
    pub progress: Vec<CellProgress>,
    /// The outcome of each finished experiment, as `racelab lab --json` prints one (a workload's
    /// carries its `invariant`).
    pub results: Vec<RunResult>,
    /// A lab of at most 4 workers x 10 increments: each strategy's trace, else empty.
    pub traces: Vec<StrategyTrace>,
    /// An `anomalies` run's matrix, as `racelab anomalies --json` prints it.
    #[schema(value_type = Option<Object>)]
    pub anomalies: Option<Matrix>,
    /// A `spec` run's result once it ran, as `racelab spec --format json` prints it: `spec`, `run`
    /// (`sessions`, `permutations` with their `events`), `stopped`, `translations`.
    #[schema(value_type = Option<Object>)]
    pub spec: Option<SpecResult>,
    /// Why a `failed` run failed: a problem as a request would have got, or
    /// `urn:racelab:problem:invariant-broken` naming each safe strategy whose invariant broke.
    pub error: Option<Problem>,
}

/// What changed since a watcher last looked: the new results and traces, and the end if it came.
pub struct News {
    pub results: Vec<RunResult>,
    pub traces: Vec<StrategyTrace>,
    /// A spec run's result, once it came.
    pub spec: Option<SpecResult>,
    pub state: RunState,
    pub error: Option<Problem>,
}

pub struct Run {
    pub id: String,
    pub request: ExperimentRequest,
    pub backend: Backend,
    pub created_at: DateTime<Utc>,
    pub cells: Vec<Cell>,
    data: Mutex<RunData>,
    /// Set when the run is asked to stop: a spec run's runner reads it between two looks at a step.
    interrupted: AtomicBool,
    /// Bumped on every change of `data`, for the event streams.
    changed: watch::Sender<u64>,
}

struct RunData {
    state: RunState,
    finished_at: Option<DateTime<Utc>>,
    /// When it ended, for the retention.
    ended: Option<Instant>,
    done: Vec<bool>,
    results: Vec<RunResult>,
    traces: Vec<StrategyTrace>,
    anomalies: Option<Matrix>,
    spec: Option<SpecResult>,
    error: Option<Problem>,
    /// The run's place among those running at once, given back as it ends.
    slot: Option<Slot>,
    /// Asked to stop (the server shuts down): no further experiment starts.
    stopping: bool,
}

impl Run {
    pub fn new(id: String, request: ExperimentRequest, backend: Backend, slot: Slot) -> Self {
        let cells: Vec<Cell> = request
            .plan
            .as_ref()
            .map(|plan| {
                plan.cells()
                    .into_iter()
                    .map(|(strategy, workers)| Cell {
                        strategy,
                        workers,
                        increments: plan.increments,
                        progress: Arc::default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let data = RunData {
            state: RunState::Queued,
            finished_at: None,
            ended: None,
            done: vec![false; cells.len()],
            results: Vec::new(),
            traces: Vec::new(),
            anomalies: None,
            spec: None,
            error: None,
            slot: Some(slot),
            stopping: false,
        };
        Self {
            id,
            request,
            backend,
            created_at: Utc::now(),
            cells,
            data: Mutex::new(data),
            interrupted: AtomicBool::new(false),
            changed: watch::Sender::new(0),
        }
    }

    fn data(&self) -> MutexGuard<'_, RunData> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// A receiver that wakes when the run changes (not on every counter of its progress).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn state(&self) -> RunState {
        self.data().state
    }

    /// When the run ended, if it has.
    pub fn ended(&self) -> Option<Instant> {
        self.data().ended
    }

    pub fn set_running(&self) {
        let mut data = self.data();
        if data.state == RunState::Queued {
            data.state = RunState::Running;
            drop(data);
            self.changed();
        }
    }

    /// Records experiment `cell`'s outcome, and its trace if it has one.
    pub fn push_result(&self, cell: usize, mut outcome: RunResult) {
        let trace = match &mut outcome {
            RunResult::Counter(outcome) => {
                outcome.trace.take().map(|trace| StrategyTrace::new(outcome.strategy, trace))
            }
            RunResult::Workload(_) => None,
        };
        let mut data = self.data();
        if let Some(done) = data.done.get_mut(cell) {
            *done = true;
        }
        if let Some(trace) = trace {
            data.traces.push(trace);
        }
        data.results.push(outcome);
        drop(data);
        self.changed();
    }

    pub fn set_anomalies(&self, matrix: Matrix) {
        self.data().anomalies = Some(matrix);
        self.changed();
    }

    pub fn set_spec(&self, result: SpecResult) {
        self.data().spec = Some(result);
        self.changed();
    }

    /// Ends the run (once: a later end is ignored). Its place among the running is given back first,
    /// so a client that sees it ended can start another at once.
    pub fn end(&self, state: RunState, error: Option<Problem>) {
        let mut data = self.data();
        if data.state.is_over() {
            return;
        }
        drop(data.slot.take());
        data.state = state;
        data.error = error;
        data.finished_at = Some(Utc::now());
        data.ended = Some(Instant::now());
        drop(data);
        self.changed();
    }

    /// Every experiment's progress now.
    pub fn progress(&self) -> Vec<CellProgress> {
        let done = self.data().done.clone();
        self.cells
            .iter()
            .zip(done)
            .map(|(cell, done)| {
                let now = cell.progress.snapshot();
                CellProgress {
                    strategy: cell.strategy,
                    workers: cell.workers,
                    expected: cell.workers as u64 * cell.increments,
                    acknowledged: now.acknowledged,
                    refused: matches!(cell.strategy, Pick::Workload(_)).then_some(now.refused),
                    failed: now.failed,
                    in_doubt: now.in_doubt,
                    retries: now.retries,
                    errors: now.errors,
                    done,
                }
            })
            .collect()
    }

    pub fn view(&self) -> RunView {
        let progress = self.progress();
        let data = self.data();
        RunView {
            id: self.id.clone(),
            kind: self.request.kind,
            state: data.state,
            request: self.request.clone(),
            backend: self.backend,
            created_at: self.created_at,
            finished_at: data.finished_at,
            progress,
            results: data.results.clone(),
            traces: data.traces.clone(),
            anomalies: data.anomalies.clone(),
            spec: data.spec.clone(),
            error: data.error.clone(),
        }
    }

    /// The results and traces after the first `results` and `traces` a watcher has seen.
    pub fn news(&self, results: usize, traces: usize) -> News {
        let data = self.data();
        News {
            results: data.results.iter().skip(results).cloned().collect(),
            traces: data.traces.iter().skip(traces).cloned().collect(),
            spec: data.spec.clone(),
            state: data.state,
            error: data.error.clone(),
        }
    }

    /// Asks the run to stop: the experiment running ends after the increments in flight, and no
    /// other starts; a spec run cancels its step, rolls back and tears down.
    pub fn stop(&self) {
        self.data().stopping = true;
        self.interrupted.store(true, Ordering::Relaxed);
        for cell in &self.cells {
            cell.progress.stop();
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.data().stopping
    }

    /// Why a spec run's spec stopped before its end, if it did.
    pub fn spec_stopped(&self) -> Option<spec::Stopped> {
        self.data().spec.as_ref().and_then(|result| result.outcome.stopped.clone())
    }

    /// The flag a spec run's runner watches (`racelab_core::spec::run_until`), set by [`Run::stop`].
    pub fn interrupted(&self) -> &AtomicBool {
        &self.interrupted
    }
}
