//! `queue`: workers claim the oldest pending job of a queue of `--jobs` (by default half the demand),
//! run it (one row in `queue_runs` per execution, so a job run twice is visible in the database) and
//! mark it done; with no job left the claim is refused. The invariant `exactly-once`: no job is run
//! twice, none is lost (out of the queue without a run) or left claimed, and the runs are the
//! acknowledged claims (each in-doubt claim may have run, or not).
//!
//! The unsafe way is `naive`: select the oldest pending job, then update it. Two workers who select at
//! once take the same job and both run it. The fixes: claim with a guard and move on when another won
//! (`conditional`), lock the job (`pessimistic`: the workers queue up behind the oldest job's lock), or
//! lock it and let the others take the next (`skip-locked`: `FOR UPDATE SKIP LOCKED`, the way job
//! queues are built on PostgreSQL and MariaDB; SQLite claims in one `UPDATE ... RETURNING`).

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::sizes::Sizes;
use super::workloads::Workload;
use crate::db::{CLAIMED, DONE, JobRow, LockMode, PENDING, Session};
use crate::error::{DbError, ErrorKind};

/// The `queue` workload.
#[derive(Debug, Clone, Copy)]
pub struct Queue;

/// How one claim is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueStrategy {
    /// Select the oldest pending job, then claim, run and finish it, at the default isolation (SQLite:
    /// in autocommit). Runs jobs twice.
    Naive,
    /// `UPDATE ... SET state = claimed WHERE id = ? AND state = pending`: no row matched, another
    /// worker won it, and the claim moves on to the next job; in one transaction with the run.
    Conditional,
    /// The oldest pending job `FOR UPDATE` (SQLite: `BEGIN IMMEDIATE`): the workers wait in turn.
    Pessimistic,
    /// The oldest pending job `FOR UPDATE SKIP LOCKED`: each worker takes the oldest nobody holds.
    /// SQLite: `UPDATE ... RETURNING` under `BEGIN IMMEDIATE`.
    SkipLocked,
}

impl WorkloadStrategy for QueueStrategy {
    const ALL: &'static [Self] =
        &[QueueStrategy::Naive, QueueStrategy::Conditional, QueueStrategy::Pessimistic, QueueStrategy::SkipLocked];

    fn name(self) -> &'static str {
        match self {
            QueueStrategy::Naive => "naive",
            QueueStrategy::Conditional => "conditional",
            QueueStrategy::Pessimistic => "pessimistic",
            QueueStrategy::SkipLocked => "skip-locked",
        }
    }

    fn tx(self) -> TxKind {
        match self {
            QueueStrategy::Naive => TxKind::Plain,
            QueueStrategy::Conditional => TxKind::Transaction,
            QueueStrategy::Pessimistic => TxKind::RowLocking(LockMode::Wait),
            QueueStrategy::SkipLocked => TxKind::Claiming,
        }
    }

    fn retries(self) -> bool {
        self != QueueStrategy::Naive
    }

    fn safe(self) -> bool {
        self != QueueStrategy::Naive
    }
}

/// The run's queue and its jobs' keys, oldest first.
#[derive(Debug, Clone)]
pub struct QueueFixture {
    pub queue: i64,
    pub jobs: Vec<i64>,
}

impl Scenario for Queue {
    const WORKLOAD: Workload = Workload::Queue;
    const INVARIANT: &'static str = "exactly-once";
    const SENTENCE: &'static str = "every job claimed is run exactly once and marked done: none run twice, none lost \
         or left claimed (each in-doubt claim may have run, or not)";

    type Strategy = QueueStrategy;
    type Fixture = QueueFixture;
    /// Every claim is the same: the oldest pending job.
    type Op = ();
    type State = Vec<JobRow>;

    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        match experiment.sizes.jobs {
            Some(jobs) if jobs > Sizes::MAX_JOBS => {
                Err(format!("--jobs must be between 0 and {}, got {jobs}", Sizes::MAX_JOBS))
            }
            _ => Ok(()),
        }
    }

    async fn setup(session: &mut Session, experiment: &WorkloadExperiment) -> Result<QueueFixture, DbError> {
        let demand = (experiment.workers as u64).saturating_mul(experiment.operations);
        let jobs = experiment.sizes.jobs.unwrap_or_else(|| usize::try_from(demand / 2).unwrap_or(Sizes::MAX_JOBS));
        let (queue, jobs) = session.create_queue(jobs.min(Sizes::MAX_JOBS)).await?;
        Ok(QueueFixture { queue, jobs })
    }

    fn sizes(fixture: &QueueFixture) -> Vec<(&'static str, i64)> {
        vec![("jobs", fixture.jobs.len() as i64)]
    }

    fn next_op(_fixture: &QueueFixture, _rng: &mut Rng) {}

    fn races(strategy: QueueStrategy, _fixture: &QueueFixture, _worker: usize, _workers: usize) -> bool {
        // The strategies that select without a lock; a locking read would keep the others from the gate.
        matches!(strategy, QueueStrategy::Naive | QueueStrategy::Conditional)
    }

    async fn attempt(
        strategy: QueueStrategy,
        session: &mut Session,
        fixture: &QueueFixture,
        _op: (),
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let queue = fixture.queue;
        match strategy {
            QueueStrategy::Naive => {
                let Some(job) = session.oldest_pending_after(queue, 0).await? else {
                    return Ok(Answer::Refused);
                };
                ctx.after_read().await;
                session.claim_job(job).await?;
                session.run_job(job).await?;
                Ok(Answer::Done)
            }
            QueueStrategy::Conditional => {
                // A job lost to another worker is never pending again: look past it. This also ends
                // under MariaDB's repeatable read, whose snapshot keeps showing taken jobs pending.
                let mut after = 0;
                let mut first = true;
                loop {
                    let Some(job) = session.oldest_pending_after(queue, after).await? else {
                        return Ok(Answer::Refused);
                    };
                    if std::mem::take(&mut first) {
                        ctx.after_read().await;
                    }
                    if session.claim_job_if_pending(job).await? {
                        session.run_job(job).await?;
                        return Ok(Answer::Done);
                    }
                    after = job;
                }
            }
            QueueStrategy::Pessimistic => {
                // Each time round another worker has committed a claim: bounded by the jobs.
                for _ in 0..=fixture.jobs.len() {
                    if let Some(job) = session.lock_oldest_pending(queue).await? {
                        session.claim_job(job).await?;
                        session.run_job(job).await?;
                        return Ok(Answer::Done);
                    }
                    if session.oldest_pending_after(queue, 0).await?.is_none() {
                        return Ok(Answer::Refused);
                    }
                }
                Err(DbError::new(ErrorKind::Other, format!("queue {queue}: no pending job could be locked")))
            }
            QueueStrategy::SkipLocked => match session.claim_skipping_locked(queue).await? {
                Some(job) => {
                    session.run_job(job).await?;
                    Ok(Answer::Done)
                }
                None => Ok(Answer::Refused),
            },
        }
    }

    async fn state(session: &mut Session, fixture: &QueueFixture) -> Result<Vec<JobRow>, DbError> {
        session.jobs_settled(fixture.queue).await
    }

    fn check(fixture: &QueueFixture, state: &Vec<JobRow>, ledger: &Ledger<()>) -> Invariant {
        check_exactly_once(fixture.jobs.len(), state, ledger.acknowledged.len() as u64, ledger.in_doubt.len() as u64)
    }
}

/// The exactly-once check over the queue's `jobs` as read back, `acknowledged` and `in_doubt` claims.
/// Violations: extra runs (a job run twice counts one), jobs lost (out of the queue with no run, or
/// left claimed), runs the acknowledged claims cannot explain, and jobs missing.
fn check_exactly_once(jobs: usize, state: &[JobRow], acknowledged: u64, in_doubt: u64) -> Invariant {
    let extra_runs: u64 = state.iter().map(|j| (j.runs - 1).max(0) as u64).sum();
    let twice = state.iter().filter(|j| j.runs > 1).count();
    let lost = state.iter().filter(|j| j.state == CLAIMED || (j.state != PENDING && j.runs == 0)).count() as u64;
    let runs: u64 = state.iter().map(|j| j.runs.max(0) as u64).sum();
    let unexplained = acknowledged.saturating_sub(runs) + runs.saturating_sub(acknowledged + in_doubt);
    let missing = jobs.saturating_sub(state.len()) as u64;
    let done = state.iter().filter(|j| j.state == DONE).count();
    let pending = state.iter().filter(|j| j.state == PENDING).count();
    let violations = extra_runs + lost + unexplained + missing;
    let detail = if violations == 0 {
        format!("every job ran at most once: {done} of {jobs} done exactly once, {pending} pending")
    } else {
        let mut parts = Vec::new();
        if extra_runs > 0 {
            parts.push(format!("{twice} jobs run more than once ({extra_runs} extra runs)"));
        }
        if lost > 0 {
            parts.push(format!("{lost} jobs lost (out of the queue without a run, or left claimed)"));
        }
        if unexplained > 0 {
            parts.push(format!("{runs} runs for {acknowledged} acknowledged claims ({in_doubt} in doubt)"));
        }
        if missing > 0 {
            parts.push(format!("{missing} jobs missing"));
        }
        parts.join("; ")
    };
    Invariant::checked(Queue::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, state: i64, runs: i64) -> JobRow {
        JobRow { id, state, runs }
    }

    #[test]
    fn a_job_run_twice_and_a_lost_job_are_violations_and_doubt_bounds_the_runs() {
        let held = check_exactly_once(3, &[job(1, DONE, 1), job(2, DONE, 1), job(3, PENDING, 0)], 2, 0);
        assert_eq!((held.held, held.violations), (Some(true), Some(0)), "{held:?}");
        assert!(held.detail.contains("2 of 3 done exactly once, 1 pending"), "{}", held.detail);
        // Two claims acknowledged, both ran job 1.
        let twice = check_exactly_once(2, &[job(1, DONE, 2), job(2, PENDING, 0)], 2, 0);
        assert_eq!((twice.held, twice.violations), (Some(false), Some(1)), "{twice:?}");
        assert!(twice.detail.starts_with("1 jobs run more than once (1 extra runs)"), "{}", twice.detail);
        // Left claimed, and done without a run: both lost.
        assert_eq!(check_exactly_once(2, &[job(1, CLAIMED, 1), job(2, DONE, 0)], 1, 0).violations, Some(2));
        // An in-doubt claim may have run, or not.
        assert_eq!(check_exactly_once(1, &[job(1, DONE, 1)], 0, 1).violations, Some(0));
        assert_eq!(check_exactly_once(1, &[job(1, PENDING, 0)], 0, 1).violations, Some(0));
        assert_eq!(check_exactly_once(1, &[job(1, PENDING, 0)], 1, 0).violations, Some(1));
    }
}
