//! One worker: its increments one after the other on its own session, each retried under the
//! policy, counted into its own stats and the shared progress, traced if asked. A worker never retries
//! past the policy or the lock budget, and never attempts again an increment a stop or a lost
//! database made it give up: those are counted, not made.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Barrier;
use tracing::Instrument;

use super::fate::Fate;
use super::progress::Progress;
use super::stats::{WorkerStats, kind_index};
use super::{Experiment, StopAfter};
use crate::db::{Database, Pk, Session};
use crate::error::{DbError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::strategy::{RaceGate, Step};
use crate::trace::{Seen, TraceKind, Tracer};

pub(super) struct WorkerJob {
    pub(super) worker: usize,
    /// Which of the experiment's databases (nodes) this worker writes through.
    pub(super) node: usize,
    pub(super) pk: Pk,
    pub(super) experiment: Experiment,
    pub(super) db: Database,
    pub(super) start: Arc<Barrier>,
    pub(super) race: Option<Arc<RaceGate>>,
    pub(super) trace: Option<Arc<Tracer>>,
    pub(super) progress: Arc<Progress>,
}

impl WorkerJob {
    /// Runs the worker inside a span naming its worker number, strategy and server connection, so
    /// every debug line says who did what (the seed logged per thread and per session). The connection
    /// id costs a round trip, so it is asked for only when debug lines are wanted.
    pub(super) async fn run_traced(self, mut session: Session) -> WorkerStats {
        let connection =
            if tracing::enabled!(tracing::Level::DEBUG) { session.connection_id().await.ok().flatten() } else { None };
        let span = tracing::debug_span!(
            "worker",
            n = self.worker,
            node = self.node,
            strategy = self.experiment.strategy.name(),
            connection
        );
        self.run(session).instrument(span).await
    }

    async fn run(self, session: Session) -> WorkerStats {
        let mut stats = WorkerStats::new();
        let mut session = Some(session);
        self.start.wait().await;
        let started = Instant::now();
        let (limit, measure_from, deadline) = match self.experiment.stop {
            StopAfter::Increments(n) => (n, started, None),
            StopAfter::Duration { warmup, measure } => (u64::MAX, started + warmup, Some(started + warmup + measure)),
        };
        stats.measure_from = measure_from;
        let mut done = 0;
        while done < limit && deadline.is_none_or(|d| Instant::now() < d) {
            if self.progress.is_stopped() {
                // Whoever watches gave up (a request timed out): the rest is counted, not made, so the
                // run ends within one increment and releases its post.
                if deadline.is_none() {
                    stats.fail_unattempted(ErrorKind::Stopped, limit - done);
                    self.progress.fail_unattempted(ErrorKind::Stopped, limit - done);
                }
                break;
            }
            let race = if done == 0 { self.race.as_deref() } else { None };
            let began = Instant::now();
            let (fate, attempts, go_on) = self.one_increment(&mut session, done, race, &mut stats).await;
            let ended = Instant::now();
            stats.record(began, ended, attempts, fate);
            self.progress.record(fate, attempts);
            done += 1;
            if let (Fate::Failed(kind), GoOn::No) = (fate, go_on) {
                // The database is out of reach: the increments not made are failures of the same
                // kind, counted, not attempted one acquire timeout at a time.
                if deadline.is_none() {
                    stats.fail_unattempted(kind, limit - done);
                    self.progress.fail_unattempted(kind, limit - done);
                }
                tracing::debug!(worker = self.worker, %kind, "worker stops: no connection to be had");
                break;
            }
        }
        stats.finished = Instant::now();
        stats.started = started;
        stats
    }

    /// One increment, retried under the policy if the strategy retries. A worker whose connection
    /// broke takes a new one for its next increment; if none can be had, the worker stops.
    async fn one_increment(
        &self,
        session: &mut Option<Session>,
        increment: u64,
        race: Option<&RaceGate>,
        stats: &mut WorkerStats,
    ) -> (Fate, u32, GoOn) {
        if session.is_none() {
            match self.db.session().await {
                Ok(mut fresh) => {
                    if let Some(timeout) = self.experiment.lock_timeout
                        && let Err(err) = fresh.set_lock_timeout(timeout).await
                    {
                        return (Fate::Failed(err.kind()), 1, GoOn::No);
                    }
                    *session = Some(fresh);
                }
                Err(err) => return (Fate::Failed(err.kind()), 1, GoOn::No),
            }
        }
        let Some(s) = session.as_mut() else { unreachable!("a session was just set") };
        let strategy = self.experiment.strategy;
        let mut retrier = if strategy.retries() { self.experiment.retry } else { RetryPolicy::no_retry() }.retrier();
        let mut lock_refusals = 0;
        let (result, attempts) = loop {
            let step = Step {
                pk: self.pk,
                worker: self.worker,
                increment,
                attempt: retrier.attempt(),
                race,
                trace: self.trace.as_deref(),
                op: None,
            };
            step.record(TraceKind::Begin, Seen::default());
            let result = strategy.attempt(s, step).await;
            trace_ending(&step, &result);
            if let Err(err) = &result {
                let kind = err.kind();
                let within_lock_budget = !kind.is_lock_refusal() || lock_refusals < self.experiment.lock_retries;
                if within_lock_budget && !self.progress.is_stopped() && retrier.retry_after(kind).await {
                    lock_refusals += u32::from(kind.is_lock_refusal());
                    stats.retried[kind_index(kind)] += 1;
                    self.progress.retried();
                    step.record(TraceKind::Retry, Seen { detail: Some(kind), ..Seen::default() });
                    continue;
                }
            }
            break (result, retrier.attempt());
        };
        match result {
            Ok(_) => (Fate::Acknowledged, attempts, GoOn::Yes),
            Err(err) => {
                tracing::debug!(worker = self.worker, %err, in_doubt = err.is_in_doubt(), "increment failed");
                if err.kind() == ErrorKind::ConnectionLost
                    && let Some(mut broken) = session.take()
                {
                    broken.close_on_drop();
                }
                let fate = if err.is_in_doubt() { Fate::InDoubt } else { Fate::Failed(err.kind()) };
                (fate, attempts, GoOn::Yes)
            }
        }
    }
}

/// Traces how an attempt ended: its commit with the value written, or its failure, a conflict with
/// another writer (the kinds a retry can get past) or another error.
fn trace_ending(step: &Step<'_>, result: &Result<i64, DbError>) {
    match result {
        Ok(like) => step.record(TraceKind::Commit, Seen { like: Some(*like), ..Seen::default() }),
        Err(err) => {
            let kind = if err.kind().is_retryable() { TraceKind::Conflict } else { TraceKind::Error };
            step.record(kind, Seen { detail: Some(err.kind()), ..Seen::default() });
        }
    }
}

/// Whether a worker should go on after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoOn {
    Yes,
    No,
}
