//! The `queue` workload's SQL: a run's queue (`job_queues`), its jobs (`queue_jobs`, `state` 0 pending,
//! 1 claimed, 2 done) and every execution of a job (`queue_runs`). Claiming with `SKIP LOCKED` is the
//! servers'; SQLite, which locks the whole database, claims with one `UPDATE ... RETURNING`.

use super::super::{Arg, Backend, Session, Statement};
use crate::error::{DbError, ErrorKind};

/// A job waiting to be claimed.
pub(crate) const PENDING: i64 = 0;
/// A job claimed, not yet marked done.
pub(crate) const CLAIMED: i64 = 1;
/// A job run and marked done.
pub(crate) const DONE: i64 = 2;

static CREATE_QUEUE: Statement = Statement::new("INSERT INTO job_queues (jobs) VALUES (?){returning_id}");
static CREATE_JOB: Statement = Statement::new("INSERT INTO queue_jobs (queue, state) VALUES (?, 0){returning_id}");
static OLDEST_PENDING_AFTER: Statement =
    Statement::new("SELECT id FROM queue_jobs WHERE queue = ? AND state = 0 AND id > ? ORDER BY id LIMIT 1");
static OLDEST_PENDING_LOCKED: Statement =
    Statement::new("SELECT id FROM queue_jobs WHERE queue = ? AND state = 0 ORDER BY id LIMIT 1{for_update}");
/// The servers' only: SQLite has no row locks to skip.
static OLDEST_PENDING_SKIP_LOCKED: Statement = Statement::new(
    "SELECT id FROM queue_jobs WHERE queue = ? AND state = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
);
/// SQLite's claim in one statement, under `BEGIN IMMEDIATE` (MariaDB has no `UPDATE ... RETURNING`).
static CLAIM_OLDEST_RETURNING: Statement = Statement::new(
    "UPDATE queue_jobs SET state = 1 WHERE id = \
     (SELECT id FROM queue_jobs WHERE queue = ? AND state = 0 ORDER BY id LIMIT 1) RETURNING id",
);
static CLAIM: Statement = Statement::new("UPDATE queue_jobs SET state = 1 WHERE id = ?");
static CLAIM_IF_PENDING: Statement = Statement::new("UPDATE queue_jobs SET state = 1 WHERE id = ? AND state = 0");
static RECORD_RUN: Statement = Statement::new("INSERT INTO queue_runs (job) VALUES (?)");
static FINISH: Statement = Statement::new("UPDATE queue_jobs SET state = 2 WHERE id = ?");
static STATE: Statement = Statement::new(
    "SELECT j.id, j.state, (SELECT COUNT(*) FROM queue_runs r WHERE r.job = j.id) \
     FROM queue_jobs j WHERE j.queue = ? ORDER BY j.id",
);

/// One job: its state and how many times it was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    /// 0 pending, 1 claimed, 2 done.
    pub state: i64,
    pub runs: i64,
}

impl JobRow {
    fn of(row: &[i64]) -> Result<Self, DbError> {
        match row {
            [id, state, runs] => Ok(Self { id: *id, state: *state, runs: *runs }),
            _ => Err(DbError::new(ErrorKind::Other, "a job row without its three columns")),
        }
    }
}

fn first_id(row: Option<Vec<i64>>) -> Option<i64> {
    row.and_then(|r| r.first().copied())
}

impl Session {
    /// A new queue of `jobs` pending jobs; its key and its jobs' keys, oldest first.
    pub(crate) async fn create_queue(&mut self, jobs: usize) -> Result<(i64, Vec<i64>), DbError> {
        let queue = self.insert_id(&CREATE_QUEUE, &[Arg::Int(jobs as i64)]).await?;
        let keys = self.insert_ids(&CREATE_JOB, &[Arg::Int(queue)], jobs).await?;
        Ok((queue, keys))
    }

    /// The oldest job of `queue` pending as this transaction sees it, with a key above `after`.
    pub(crate) async fn oldest_pending_after(&mut self, queue: i64, after: i64) -> Result<Option<i64>, DbError> {
        Ok(first_id(self.fetch_ints(&OLDEST_PENDING_AFTER, &[Arg::Int(queue), Arg::Int(after)], 1).await?))
    }

    /// The oldest pending job, locked until the transaction ends (SQLite: read under `BEGIN
    /// IMMEDIATE`). PostgreSQL at read committed may answer none when the job it waited for was taken
    /// meanwhile, though others are pending: the caller looks again.
    pub(crate) async fn lock_oldest_pending(&mut self, queue: i64) -> Result<Option<i64>, DbError> {
        Ok(first_id(self.fetch_ints(&OLDEST_PENDING_LOCKED, &[Arg::Int(queue)], 1).await?))
    }

    /// Claims the oldest pending job no other transaction holds: `FOR UPDATE SKIP LOCKED` and the
    /// claim on a server; one `UPDATE ... RETURNING` on SQLite (inside `BEGIN IMMEDIATE`). `None`: no
    /// job left that nobody holds.
    pub(crate) async fn claim_skipping_locked(&mut self, queue: i64) -> Result<Option<i64>, DbError> {
        if self.backend() == Backend::Sqlite {
            return Ok(first_id(self.fetch_ints(&CLAIM_OLDEST_RETURNING, &[Arg::Int(queue)], 1).await?));
        }
        let Some(job) = first_id(self.fetch_ints(&OLDEST_PENDING_SKIP_LOCKED, &[Arg::Int(queue)], 1).await?) else {
            return Ok(None);
        };
        self.claim_job(job).await?;
        Ok(Some(job))
    }

    /// Marks the job claimed, as a check made before decided.
    pub(crate) async fn claim_job(&mut self, job: i64) -> Result<(), DbError> {
        match self.exec(&CLAIM, &[Arg::Int(job)]).await? {
            0 => Err(DbError::new(ErrorKind::NotFound, format!("job {job} does not exist"))),
            _ => Ok(()),
        }
    }

    /// Marks the job claimed in one statement if it is still pending; whether it did.
    pub(crate) async fn claim_job_if_pending(&mut self, job: i64) -> Result<bool, DbError> {
        Ok(self.exec(&CLAIM_IF_PENDING, &[Arg::Int(job)]).await? == 1)
    }

    /// Runs the job: records one execution of it, and marks it done.
    pub(crate) async fn run_job(&mut self, job: i64) -> Result<(), DbError> {
        self.exec(&RECORD_RUN, &[Arg::Int(job)]).await?;
        self.exec(&FINISH, &[Arg::Int(job)]).await?;
        Ok(())
    }

    /// Every job of `queue` with its runs, as they stand after every write committed before the
    /// read, on any node.
    pub(crate) async fn jobs_settled(&mut self, queue: i64) -> Result<Vec<JobRow>, DbError> {
        let rows = self.fetch_all_settled(&STATE, &[Arg::Int(queue)], 3).await?;
        rows.iter().map(|r| JobRow::of(r)).collect()
    }
}
