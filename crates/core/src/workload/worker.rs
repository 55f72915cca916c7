//! One worker of a workload run: its operations one after the other on its own session, each in the
//! transaction its strategy's kind opens, retried under the policy (and the lock budget) if the
//! strategy retries, counted into its own stats, the shared progress and its ledger. As the counter's
//! worker: never retries past the policy, and never attempts again what a stop or a lost database made
//! it give up (those are counted, not made).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Barrier;
use tracing::Instrument;

use super::experiment::WorkloadExperiment;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Opening, Scenario, WorkloadStrategy};
use super::trace::{AckRef, OpStep, OpTracer};
use crate::db::{Database, Session};
use crate::error::{DbError, ErrorKind};
use crate::experiment::Progress;
use crate::experiment::fate::Fate;
use crate::experiment::stats::{WorkerStats, kind_index};
use crate::retry::RetryPolicy;
use crate::strategy::RaceGate;

pub(super) struct WorkerJob<S: Scenario> {
    pub(super) worker: usize,
    /// Which of the run's databases (nodes) this worker works through.
    pub(super) node: usize,
    pub(super) strategy: S::Strategy,
    pub(super) experiment: Arc<WorkloadExperiment>,
    pub(super) fixture: Arc<S::Fixture>,
    pub(super) db: Database,
    pub(super) start: Arc<Barrier>,
    /// The run's race gate, under `force_race`.
    pub(super) race: Option<Arc<RaceGate>>,
    /// Whether this worker's first operation stops at the gate; one that does not waits until the
    /// gate has opened before its first operation.
    pub(super) races: bool,
    pub(super) progress: Arc<Progress>,
    /// The run's trace, when it is traced.
    pub(super) tracer: Option<Arc<OpTracer>>,
}

/// What one worker did: its counts, its ledger, and (when traced) who acknowledged what when.
pub(super) struct WorkerDone<Op> {
    pub(super) stats: WorkerStats,
    pub(super) ledger: Ledger<Op>,
    pub(super) acks: Vec<(AckRef, Op)>,
}

/// Whether a worker should go on after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoOn {
    Yes,
    No,
}

impl<S: Scenario> WorkerJob<S> {
    /// Runs the worker inside a span naming its workload, strategy, worker and node.
    pub(super) async fn run_traced(self, session: Session) -> WorkerDone<S::Op> {
        let span = tracing::debug_span!(
            "worker",
            workload = S::WORKLOAD.name(),
            strategy = self.strategy.name(),
            n = self.worker,
            node = self.node
        );
        self.run(session).instrument(span).await
    }

    async fn run(self, session: Session) -> WorkerDone<S::Op> {
        let mut stats = WorkerStats::new();
        let mut ledger = Ledger::default();
        let mut acks = Vec::new();
        let mut rng = Rng::for_worker(self.experiment.seed, self.worker);
        let mut session = Some(session);
        self.start.wait().await;
        let started = Instant::now();
        stats.measure_from = started;
        let limit = self.experiment.operations;
        let mut done = 0;
        while done < limit {
            if self.progress.is_stopped() {
                stats.fail_unattempted(ErrorKind::Stopped, limit - done);
                self.progress.fail_unattempted(ErrorKind::Stopped, limit - done);
                break;
            }
            let forced = if done == 0 && self.experiment.force_race {
                S::forced_op(self.strategy, &self.fixture, self.worker, self.experiment.workers)
            } else {
                None
            };
            let op = forced.unwrap_or_else(|| S::next_op(&self.fixture, &mut rng));
            let race = match (done, self.race.as_deref()) {
                (0, Some(gate)) if self.races => Some(gate),
                (0, Some(gate)) => {
                    gate.opened().await;
                    None
                }
                _ => None,
            };
            let began = Instant::now();
            let (fate, attempts, last_began, go_on) =
                self.one_operation(&mut session, done, op, race, &mut stats).await;
            let ended = Instant::now();
            stats.record(began, ended, attempts, fate);
            self.progress.record(fate, attempts);
            match fate {
                Fate::Acknowledged => {
                    ledger.acknowledged.push(op);
                    if self.tracer.is_some() {
                        acks.push((AckRef { worker: self.worker, op: done, began: last_began, done: ended }, op));
                    }
                }
                Fate::InDoubt => ledger.in_doubt.push(op),
                Fate::Refused | Fate::Failed(_) => {}
            }
            done += 1;
            if let (Fate::Failed(kind), GoOn::No) = (fate, go_on) {
                // The database is out of reach: the operations not made are failures of that kind,
                // counted, not attempted one acquire timeout at a time.
                stats.fail_unattempted(kind, limit - done);
                self.progress.fail_unattempted(kind, limit - done);
                tracing::debug!(worker = self.worker, %kind, "worker stops: no connection to be had");
                break;
            }
        }
        stats.finished = Instant::now();
        stats.started = started;
        WorkerDone { stats, ledger, acks }
    }

    fn trace(&self, op: u64, attempt: u32, step: impl FnOnce() -> OpStep) {
        if let Some(tracer) = &self.tracer {
            tracer.record(self.worker, op, attempt, step());
        }
    }

    /// A session for the next operation: the worker's own, or a new one if its connection broke.
    async fn session<'s>(&self, session: &'s mut Option<Session>) -> Result<&'s mut Session, DbError> {
        if session.is_none() {
            let mut fresh = self.db.session().await?;
            if let Some(timeout) = self.experiment.lock_timeout {
                fresh.set_lock_timeout(timeout).await?;
            }
            *session = Some(fresh);
        }
        session.as_mut().ok_or_else(|| DbError::new(ErrorKind::Other, "no session"))
    }

    /// One operation, retried under the policy if the strategy retries: how it ended, after how many
    /// attempts, when the last one began, and whether the worker goes on.
    async fn one_operation(
        &self,
        session: &mut Option<Session>,
        index: u64,
        op: S::Op,
        race: Option<&RaceGate>,
        stats: &mut WorkerStats,
    ) -> (Fate, u32, Instant, GoOn) {
        let mut began = Instant::now();
        let s = match self.session(session).await {
            Ok(s) => s,
            Err(err) => {
                self.trace(index, 1, || OpStep::Failed { error: err.kind() });
                return (Fate::Failed(err.kind()), 1, began, GoOn::No);
            }
        };
        let policy = if self.strategy.retries() { self.experiment.retry } else { RetryPolicy::no_retry() };
        let mut retrier = policy.retrier();
        let opening = self.strategy.tx().opening(self.experiment.isolation, self.db.backend());
        let mut lock_refusals = 0;
        let (result, attempts) = loop {
            let ctx = OpCtx {
                worker: self.worker,
                op: index,
                attempt: retrier.attempt(),
                race,
                tracer: self.tracer.as_deref(),
            };
            began = Instant::now();
            self.trace(index, ctx.attempt, || OpStep::Begin { operation: format!("{op:?}") });
            let result = attempt::<S>(self.strategy, opening, s, &self.fixture, op, &ctx).await;
            if let Err(err) = &result {
                let kind = err.kind();
                let within_lock_budget = !kind.is_lock_refusal() || lock_refusals < self.experiment.lock_retries;
                if within_lock_budget && !self.progress.is_stopped() && retrier.retry_after(kind).await {
                    self.trace(index, ctx.attempt, || OpStep::Retry { error: kind });
                    lock_refusals += u32::from(kind.is_lock_refusal());
                    stats.retried[kind_index(kind)] += 1;
                    self.progress.retried();
                    continue;
                }
            }
            break (result, retrier.attempt());
        };
        let (fate, go_on) = match result {
            Ok(Answer::Done) => (Fate::Acknowledged, GoOn::Yes),
            Ok(Answer::Refused) => (Fate::Refused, GoOn::Yes),
            Err(err) => {
                tracing::debug!(worker = self.worker, %err, in_doubt = err.is_in_doubt(), "operation failed");
                if err.kind() == ErrorKind::ConnectionLost
                    && let Some(mut broken) = session.take()
                {
                    broken.close_on_drop();
                }
                let fate = if err.is_in_doubt() { Fate::InDoubt } else { Fate::Failed(err.kind()) };
                (fate, GoOn::Yes)
            }
        };
        self.trace(index, attempts, || match fate {
            Fate::Acknowledged => OpStep::Acknowledged,
            Fate::Refused => OpStep::Refused,
            Fate::InDoubt => OpStep::InDoubt,
            Fate::Failed(error) => OpStep::Failed { error },
        });
        (fate, attempts, began, go_on)
    }
}

/// One attempt in the transaction `opening` opens (none: autocommit): committed if the operation is
/// done, rolled back if it was refused or failed; then what the attempt held beyond its transaction is
/// released ([`Scenario::release`]).
async fn attempt<S: Scenario>(
    strategy: S::Strategy,
    opening: Option<Opening>,
    session: &mut Session,
    fixture: &S::Fixture,
    op: S::Op,
    ctx: &OpCtx<'_>,
) -> Result<Answer, DbError> {
    let result = match opening {
        None => S::attempt(strategy, session, fixture, op, ctx).await,
        Some(opening) => in_transaction::<S>(strategy, opening, session, fixture, op, ctx).await,
    };
    S::release(strategy, session, fixture).await;
    result
}

async fn in_transaction<S: Scenario>(
    strategy: S::Strategy,
    opening: Opening,
    session: &mut Session,
    fixture: &S::Fixture,
    op: S::Op,
    ctx: &OpCtx<'_>,
) -> Result<Answer, DbError> {
    opening.begin(session).await?;
    match S::attempt(strategy, session, fixture, op, ctx).await {
        Ok(Answer::Done) => session.commit().await.map(|()| Answer::Done),
        other => {
            session.rollback_quietly().await;
            other
        }
    }
}
