//! Running a run, in a task of its own: the experiments of a lab or bench one after the other, as
//! `/test-db/*` runs one (the post held for the whole run when one is named, worker connections
//! reserved for each experiment, the database connected lazily), the anomalies suite, or a spec (on
//! connections of its own to the server's database, as `racelab spec` runs one). The run
//! records each outcome as it comes; an error ends it `failed` with the problem a request would have
//! got, after what was done, and so does a safe strategy whose invariant broke (once every experiment
//! ran, as `racelab lab` fails for it).
//!
//! It must never run two experiments of one run at once, nor touch a post another request holds, nor
//! run a spec beside the anomalies suite or another spec (their tables would meet).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use racelab_core::anomalies::{self, AnomalyError, Case, Level, SuiteLockError};
use racelab_core::experiment::Target;
use racelab_core::spec::{self, RunError};
use racelab_core::{ErrorKind, Experiment, TraceLimit, WorkloadExperiment, WorkloadOutcome};

use super::request::{Kind, Pick, Plan, SpecPlan, WorkloadPlan};
use super::run::{Cell, Run, RunResult, RunState, SpecResult};
use crate::http::error::{ApiError, Problem};
use crate::http::state::AppState;

/// The largest lab whose experiments are traced (4 workers x 10 increments): what a person can read.
pub const TRACED_WORKERS: usize = 4;
pub const TRACED_INCREMENTS: u64 = 10;

/// Ends the run `failed` if its task ends (or panics) without ending it.
struct EndGuard(Arc<Run>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.0.state().is_over() {
            let problem = ApiError::Internal("the run's task ended early".into()).problem();
            self.0.end(RunState::Failed, Some(problem));
        }
    }
}

/// Runs `run` to its end.
pub async fn execute(state: AppState, run: Arc<Run>) {
    let _guard = EndGuard(run.clone());
    let result = match (&run.request.plan, &run.request.spec) {
        (Some(plan), _) => experiments(&state, &run, &plan.clone()).await,
        (None, Some(plan)) => spec_run(&state, &run, plan).await.map(|state| (state, Vec::new())),
        (None, None) => anomalies_suite(&state, &run).await.map(|state| (state, Vec::new())),
    };
    let (ended, error) = match result {
        Ok((RunState::Failed, _)) => {
            let problem = run.spec_stopped().map(spec_stopped);
            (RunState::Failed, problem)
        }
        Ok((_, broken)) if !broken.is_empty() => {
            tracing::warn!(run = %run.id, broken = %broken.join("; "), "a safe strategy broke its invariant");
            (RunState::Failed, Some(invariant_broken(&broken)))
        }
        Ok((ended, _)) => (ended, None),
        Err(err) => {
            tracing::warn!(run = %run.id, error = %err, "run failed");
            (RunState::Failed, Some(err.problem()))
        }
    };
    // Counted before the end is published, so whoever sees the end sees it counted.
    let labels = [("kind", kind_name(run.request.kind)), ("state", state_name(ended))];
    metrics::counter!("racelab_experiment_runs_total", &labels).increment(1);
    run.end(ended, error);
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Lab => "lab",
        Kind::Bench => "bench",
        Kind::Anomalies => "anomalies",
        Kind::Spec => "spec",
    }
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "queued",
        RunState::Running => "running",
        RunState::Finished => "finished",
        RunState::Failed => "failed",
        RunState::Stopped => "stopped",
    }
}

/// The problem of a run in which a safe strategy broke its invariant (`broken`: each one's workload,
/// strategy and the invariant's detail), as `racelab lab` fails for it. 500: the strategy was meant to
/// keep the invariant on this database and did not; the client asked for nothing wrong.
fn invariant_broken(broken: &[String]) -> Problem {
    Problem {
        problem_type: "urn:racelab:problem:invariant-broken".to_owned(),
        title: "A safe strategy broke its invariant".to_owned(),
        status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
        detail: format!("a safe strategy broke its invariant: {}", broken.join("; ")),
        instance: None,
        invalid_params: None,
        experiment: None,
    }
}

/// A safe strategy broke its invariant: the outcome's workload, strategy and the invariant's detail.
fn broke(outcome: &WorkloadOutcome) -> Option<String> {
    outcome
        .safe_strategy_broke_invariant()
        .then(|| format!("{} {} ({})", outcome.workload, outcome.strategy, outcome.invariant.detail))
}

/// Each experiment of the plan in turn; `Stopped` if the run was stopped midway. Each safe strategy
/// that broke its invariant is listed beside the state (the run goes on, as `racelab lab` shows every
/// table before it fails): the run then ends `failed`, whatever the state.
async fn experiments(state: &AppState, run: &Run, plan: &Plan) -> Result<(RunState, Vec<String>), ApiError> {
    let mut broken = Vec::new();
    // Runs and requests on one post queue behind each other, for the whole run.
    let _post = match plan.post {
        Some(pk) => Some(state.lock_post(pk).await),
        None => None,
    };
    if plan.post.is_none() && plan.workload.is_none() {
        crate::http::lab::keep_default_post(&state.db().await?).await?;
    }
    let traced = plan.workers.counts().iter().all(|w| *w <= TRACED_WORKERS)
        && plan.increments <= TRACED_INCREMENTS
        && run.request.kind == Kind::Lab;
    for (index, cell) in run.cells.iter().enumerate() {
        if run.is_stopping() {
            return Ok((RunState::Stopped, broken));
        }
        let slots = state.worker_slots(cell.workers).await?;
        let db = state.db().await?;
        run.set_running();
        let strategy = match (cell.strategy, &plan.workload) {
            (Pick::Counter(strategy), _) => strategy,
            (Pick::Workload(name), Some(workload)) => {
                let outcome = workload_experiment(state, plan, workload, cell, name, traced)
                    .run_on(std::slice::from_ref(&db), &cell.progress)
                    .await;
                drop(slots);
                let outcome = outcome?;
                let unavailable = outcome.database_unavailable();
                let stopped = outcome.errors.contains_key(&ErrorKind::Stopped);
                broken.extend(broke(&outcome));
                run.push_result(index, RunResult::Workload(outcome));
                if unavailable {
                    return Err(ApiError::DatabaseUnavailable);
                }
                if stopped {
                    return Ok((RunState::Stopped, broken));
                }
                continue;
            }
            (Pick::Workload(name), None) => {
                return Err(ApiError::Internal(format!("the workload strategy `{name}` without its workload")));
            }
        };
        let experiment = Experiment {
            target: plan.post.map_or(Target::FreshPost, Target::Post),
            retry: state.retry(),
            force_race: plan.force_race,
            trace: traced.then(TraceLimit::default),
            ..Experiment::new(strategy, cell.workers, cell.increments)
        };
        let outcome = experiment.run_on(std::slice::from_ref(&db), &cell.progress).await;
        drop(slots);
        let outcome = outcome?;
        // Counted as `/test-db/*` counts its experiments.
        metrics::counter!("racelab_increments_total", "strategy" => strategy.name()).increment(outcome.acknowledged);
        metrics::counter!("racelab_lost_updates_total", "strategy" => strategy.name())
            .increment(outcome.lost.unwrap_or(0).max(0) as u64);
        if outcome.database_unavailable() {
            // As `/test-db/*` answers it: 503 with the outcome, which is also among the results.
            let unreachable: u64 = outcome.errors.iter().filter(|(k, _)| k.means_unreachable()).map(|(_, n)| n).sum();
            let error = ApiError::Interrupted {
                failed: outcome.in_doubt + unreachable,
                expected: outcome.expected,
                outcome: Box::new(outcome.clone()),
            };
            run.push_result(index, RunResult::Counter(outcome));
            return Err(error);
        }
        let stopped = outcome.errors.contains_key(&ErrorKind::Stopped);
        run.push_result(index, RunResult::Counter(outcome));
        if stopped {
            return Ok((RunState::Stopped, broken));
        }
    }
    Ok((RunState::Finished, broken))
}

/// One cell of a workload's lab, as `racelab lab --workload` runs it (the server's retry policy).
fn workload_experiment(
    state: &AppState,
    plan: &Plan,
    workload: &WorkloadPlan,
    cell: &Cell,
    strategy: &str,
    traced: bool,
) -> WorkloadExperiment {
    WorkloadExperiment {
        isolation: workload.isolation,
        force_race: plan.force_race,
        retry: state.retry(),
        sizes: workload.sizes,
        // A small lab's trace goes with its result (`trace`), as the page draws it.
        trace: traced.then(TraceLimit::default),
        ..WorkloadExperiment::new(workload.workload, strategy, cell.workers, cell.increments)
    }
}

async fn anomalies_suite(state: &AppState, run: &Run) -> Result<RunState, ApiError> {
    let _one_at_a_time = state.runs().anomalies.lock().await;
    if run.is_stopping() {
        return Ok(RunState::Stopped);
    }
    run.set_running();
    let url = state.database_url().clone();
    let backend = url.backend();
    let matrix =
        anomalies::run_cases(&[url], state.lock_timeout(), Level::of(backend), &Case::ALL).await.map_err(|err| {
            match err {
                AnomalyError::Connect { .. } => ApiError::DatabaseUnavailable,
                busy @ AnomalyError::Exclusive { source: SuiteLockError::Busy { .. }, .. } => {
                    ApiError::AnomalySuiteBusy(busy.to_string())
                }
                other => ApiError::Internal(other.to_string()),
            }
        })?;
    run.set_anomalies(matrix);
    Ok(RunState::Finished)
}

/// Runs the spec on the server's own database, one spec or anomalies run at a time (their tables are
/// the spec's own, and two specs, or a spec and the suite, could make the same). `Stopped` when the
/// run was stopped (the step running cancelled, the sessions rolled back, the teardowns tried);
/// `Failed` when the spec's run stopped by itself, as isolationtester stops (a setup that failed, a
/// step waiting past twice the timeout); either way the result holds what ran.
async fn spec_run(state: &AppState, run: &Run, plan: &SpecPlan) -> Result<RunState, ApiError> {
    let _one_at_a_time = state.runs().anomalies.lock().await;
    if run.is_stopping() {
        return Ok(RunState::Stopped);
    }
    run.set_running();
    let url = state.database_url();
    let timeout = Duration::from_secs(plan.step_timeout);
    let outcome =
        spec::run_until(url, &plan.parsed, &plan.permutations, timeout, run.interrupted()).await.map_err(|err| {
            // A session's connection refused, or the control connection lost midway: the database
            // went away (what failed is logged here; the client hears 503's problem).
            tracing::warn!(run = %run.id, error = %err, "the spec could not run");
            match err {
                RunError::Connect { .. } | RunError::Control(_) => ApiError::DatabaseUnavailable,
            }
        })?;
    let ended = match &outcome.stopped {
        None => RunState::Finished,
        Some(stopped) if stopped.message == spec::INTERRUPTED => RunState::Stopped,
        Some(stopped) => {
            tracing::info!(run = %run.id, reason = %stopped.message, "the spec's run stopped");
            RunState::Failed
        }
    };
    run.set_spec(SpecResult { spec: plan.parsed.clone(), outcome });
    Ok(ended)
}

/// The problem of a spec run that stopped by itself (`stopped`: isolationtester's message). 422: the
/// spec's own statements stopped it (or locks it waited for), not the server.
fn spec_stopped(stopped: spec::Stopped) -> Problem {
    let mut detail = format!("the spec's run stopped: {}", stopped.message);
    if !stopped.not_cleaned.is_empty() {
        detail.push_str(&format!("; not cleaned: {}", stopped.not_cleaned.join("; ")));
    }
    Problem {
        problem_type: "urn:racelab:problem:spec-stopped".to_owned(),
        title: "The spec's run stopped before its end".to_owned(),
        status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
        detail,
        instance: None,
        invalid_params: None,
        experiment: None,
    }
}
