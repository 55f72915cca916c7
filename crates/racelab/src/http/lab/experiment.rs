//! One experiment of the engine run for a request: refused before anything is waited for if it could
//! never run, on its post held for the whole run, answered before the request timeout with what it
//! did, and given its status here and nowhere else. It must never run two experiments on one post at
//! once.

use std::sync::Arc;

use axum::Json;
use racelab_core::experiment::Target;
use racelab_core::{ErrorKind, Experiment, Outcome, Progress, Strategy};
use tracing::Instrument;

use super::params::Run;
use super::responses::LabResponse;
use crate::http::deadline;
use crate::http::error::{ApiError, RunningExperiment};
use crate::http::state::AppState;

/// Runs one experiment on the requested post while holding that post, and words the answer.
pub(super) async fn experiment(
    state: &AppState,
    message: &str,
    strategy: Strategy,
    params: Run,
) -> Result<Json<LabResponse>, ApiError> {
    // Refused before anything is waited for: more workers than the pool allows could never run.
    state.check_workers(params.workers)?;
    let db = state.db().await?;
    if !strategy.supported_on(db.backend()) {
        return Err(racelab_core::ExperimentError::Unsupported { strategy, backend: db.backend() }.into());
    }
    let experiment = Experiment {
        target: Target::Post(params.post),
        retry: state.retry(),
        force_race: params.force_race,
        ..Experiment::new(strategy, params.workers, params.increments)
    };
    // The handler answers a little before the request timeout would, so the answer can say what the
    // experiment had done; the timeout layer stays as the backstop.
    let timeout = state.request_timeout();
    let deadline = deadline::answer_by(timeout);
    // Waiting for the post is cancellable (a client that gives up stops waiting); the run itself is
    // not: it goes on in its own task, still holding the post, even if the request is dropped by the
    // timeout, so a half-finished run never overlaps the next request on the same post.
    let guard = tokio::time::timeout_at(deadline, state.lock_post(params.post))
        .await
        .map_err(|_| ApiError::RequestTimeout(timeout))?;
    let slots = state.worker_slots(params.workers).await?;
    let progress = Arc::new(Progress::default());
    let running = RunningExperiment {
        state: "running",
        strategy,
        post: params.post,
        workers: params.workers,
        increments: params.increments,
        expected: params.workers as u64 * params.increments,
        so_far: progress.snapshot(),
    };
    // In the request's span, so the run's own log lines say which request they belong to.
    let run = tokio::spawn(
        {
            let progress = progress.clone();
            async move {
                let outcome = experiment.run_on(std::slice::from_ref(&db), &progress).await;
                drop((slots, guard));
                outcome
            }
        }
        .in_current_span(),
    );
    let joined = match tokio::time::timeout_at(deadline, run).await {
        Ok(joined) => joined,
        Err(_) => {
            // The answer goes now; the run ends within one increment (the rest counted as
            // `stopped`), so the post is not held for the whole of what was asked.
            progress.stop();
            let running = RunningExperiment { so_far: progress.snapshot(), ..running };
            return Err(ApiError::RequestTimeoutRunning { timeout, running: Box::new(running) });
        }
    };
    let outcome = joined.map_err(|e| ApiError::Internal(format!("experiment task failed: {e}")))??;
    metrics::counter!("racelab_increments_total", "strategy" => strategy.name()).increment(outcome.acknowledged);
    metrics::counter!("racelab_lost_updates_total", "strategy" => strategy.name())
        .increment(outcome.lost.unwrap_or(0).max(0) as u64);
    respond(message, outcome)
}

/// `kind: n` for each kind of failure `outcome` counted that `wanted` picks, and their sum.
fn failed_on(outcome: &Outcome, wanted: impl Fn(ErrorKind) -> bool) -> (u64, String) {
    let picked: Vec<(ErrorKind, u64)> =
        outcome.errors.iter().filter(|(k, _)| wanted(**k)).map(|(k, n)| (*k, *n)).collect();
    let listed: Vec<String> = picked.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
    (picked.iter().map(|(_, n)| n).sum(), listed.join(", "))
}

/// The status of a finished experiment, decided here and nowhere else; every answer carries the
/// outcome. 503 if the database went away during the run (what was acknowledged, failed and in
/// doubt, and the counter if it could be read); 409 if every increment gave up on a row lock held by
/// another transaction (`nowait`, `skip-locked`, or `wait` past the lock timeout); 200 otherwise, the
/// verdict saying what was lost, dropped or retried.
fn respond(message: &str, outcome: Outcome) -> Result<Json<LabResponse>, ApiError> {
    let Some(like_result) = outcome.like_after.filter(|_| !outcome.database_unavailable()) else {
        let (unreachable, _) = failed_on(&outcome, ErrorKind::means_unreachable);
        let gone = outcome.in_doubt + unreachable;
        return Err(ApiError::Interrupted { failed: gone, expected: outcome.expected, outcome: Box::new(outcome) });
    };
    if outcome.refused_by_locks() {
        let (_, kinds) = failed_on(&outcome, ErrorKind::is_lock_refusal);
        return Err(ApiError::Locked {
            failed: outcome.failed,
            expected: outcome.expected,
            kinds,
            outcome: Box::new(outcome),
        });
    }
    let mut message = message.to_owned();
    if outcome.lost.is_none() {
        message.push_str(&format!(
            " (another writer changed post {} during the run: lost updates cannot be counted)",
            outcome.post
        ));
    } else if outcome.dropped > 0 {
        message.push_str(&format!(
            " ({} of {} increments dropped: stale version detected, not retried)",
            outcome.dropped, outcome.expected
        ));
    }
    Ok(Json(LabResponse { message, like_result, post: outcome.post, verdict: outcome.verdict(), experiment: outcome }))
}
