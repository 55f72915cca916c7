//! Runs one schedule on real connections, one connection per transaction.
//!
//! Each step runs as a task of its own. The runner waits until the step has answered, or until the
//! database's own lock view shows its connection waiting for a lock (then the step is *blocked*, and
//! the schedule goes on with the other transactions; its own later steps wait for it). Nothing is
//! decided by sleeping: the short pauses below are the interval of polling a condition, and every
//! poll has a deadline. A step that fails ends its transaction (it is rolled back and its later
//! steps are not run), as a client would do.
//!
//! Must never leave anything behind a schedule: a step still pending is aborted and every
//! transaction's connection is closed before the next case starts.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use super::case::{Case, Observed, Op, Step, TABLE};
use super::conn::{Conn, Rows};
use super::level::Level;
use crate::ErrorKind;
use crate::db::DatabaseUrl;

/// How often a running step and the lock view are looked at.
const POLL: Duration = Duration::from_millis(2);

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    /// It answered (`blocked`: after waiting for a lock while other steps ran).
    Done { blocked: bool },
    /// It failed with an error of this kind (and code).
    Failed { blocked: bool, kind: ErrorKind, code: Option<String> },
    /// Its transaction had already failed.
    NotRun,
}

/// One step as run: which transaction, what SQL, what happened, what it returned.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based position in the schedule, as "error at step N" counts.
    pub step: usize,
    /// "T1", "T2" or "T3".
    pub tx: String,
    pub sql: String,
    #[serde(flatten)]
    pub result: StepResult,
    /// The `(id, value)` rows the step returned.
    pub rows: Rows,
}

/// A schedule's run: every step, and the table at the end.
pub(crate) struct Run {
    pub steps: Vec<StepReport>,
    pub anomaly: bool,
    pub final_rows: Rows,
}

/// Why a schedule could not be run to its end (as opposed to a step failing, which is a result).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    #[error("step {step} neither answered nor waited for a lock within {waited:?}")]
    Undecided { step: usize, waited: Duration },
    #[error("the task running step {step} failed: {reason}")]
    Task { step: usize, reason: String },
}

/// One step in flight.
struct Pending {
    step: usize,
    handle: JoinHandle<(Conn, Result<Rows, sqlx::Error>)>,
}

/// A transaction of the schedule.
struct Tx {
    conn: Option<Conn>,
    /// The node (index into the URLs) its connection goes to.
    node: usize,
    server_id: Option<i64>,
    pending: Option<Pending>,
    failed: bool,
    committed: bool,
    /// The value of id 1 that this transaction last read.
    last_read: Option<i64>,
}

/// What watching a step in flight found.
enum Watch {
    Answered(Conn, Result<Rows, sqlx::Error>),
    Waiting(Pending),
}

pub(crate) struct Runner<'a> {
    /// The nodes: transaction `t` runs on node `t % len` (one URL: every transaction on it).
    urls: &'a [DatabaseUrl],
    /// One connection per node that reads its lock view; the first also resets and reads the table.
    observers: &'a mut [Conn],
    lock_timeout: Duration,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(urls: &'a [DatabaseUrl], observers: &'a mut [Conn], lock_timeout: Duration) -> Self {
        Self { urls, observers, lock_timeout }
    }

    /// Puts the table back to Hermitage's starting state: `(1, 10), (2, 20)`.
    async fn reset(&mut self) -> Result<(), sqlx::Error> {
        self.observers[0].run(&format!("DELETE FROM {TABLE}")).await?;
        self.observers[0].run(&format!("INSERT INTO {TABLE} (id, value) VALUES (1, 10), (2, 20)")).await?;
        Ok(())
    }

    /// Runs `case` at `level` from a fresh table.
    pub(crate) async fn run(&mut self, case: Case, level: Level) -> Result<Run, ScheduleError> {
        self.reset().await?;
        let schedule = case.schedule();
        let mut txs = Vec::with_capacity(case.transactions());
        for t in 0..case.transactions() {
            let node = t % self.urls.len();
            let mut conn = Conn::open(&self.urls[node], self.lock_timeout, self.urls.len() > 1).await?;
            let server_id = conn.server_id().await?;
            let (pending, failed, committed, last_read) = (None, false, false, None);
            txs.push(Tx { conn: Some(conn), node, server_id, pending, failed, committed, last_read });
        }
        let mut results: Vec<Option<(StepResult, Rows)>> = vec![None; schedule.len()];
        let mut sql: Vec<String> = vec![String::new(); schedule.len()];
        let outcome = self.drive(level, &schedule, &mut txs, &mut results, &mut sql).await;
        let committed: Vec<bool> = txs.iter().map(|tx| tx.committed).collect();
        for tx in txs {
            if let Some(pending) = tx.pending {
                pending.handle.abort();
            }
            if let Some(conn) = tx.conn {
                conn.close().await;
            }
        }
        outcome?;
        let final_rows = self.observers[0].run(&format!("SELECT id, value FROM {TABLE} ORDER BY id")).await?;
        let rows: Vec<Option<Rows>> = results
            .iter()
            .map(|r| match r {
                Some((StepResult::Done { .. }, rows)) => Some(rows.clone()),
                _ => None,
            })
            .collect();
        let anomaly = case.is_anomaly(&Observed {
            steps: &schedule,
            rows: &rows,
            committed: &committed,
            final_rows: &final_rows,
        });
        let steps = schedule
            .iter()
            .zip(results)
            .zip(sql)
            .enumerate()
            .map(|(i, ((s, result), sql))| {
                let (result, rows) = result.unwrap_or((StepResult::NotRun, Vec::new()));
                StepReport { step: i + 1, tx: format!("T{}", s.tx + 1), sql, result, rows }
            })
            .collect();
        Ok(Run { steps, anomaly, final_rows })
    }

    /// Runs the steps in order; a blocked step holds back its own transaction only.
    async fn drive(
        &mut self,
        level: Level,
        schedule: &[Step],
        txs: &mut [Tx],
        results: &mut [Option<(StepResult, Rows)>],
        sql: &mut [String],
    ) -> Result<(), ScheduleError> {
        let mut started = vec![false; schedule.len()];
        loop {
            // The first step not started whose transaction is free; a failed transaction's steps are
            // marked not run.
            let next = (0..schedule.len()).find(|&i| !started[i] && txs[schedule[i].tx].pending.is_none());
            if let Some(i) = next {
                started[i] = true;
                let tx = &mut txs[schedule[i].tx];
                sql[i] = schedule[i].op.sql(level.begin_sql(), tx.last_read);
                if tx.failed {
                    results[i] = Some((StepResult::NotRun, Vec::new()));
                    continue;
                }
                let Some(mut conn) = tx.conn.take() else { continue };
                let text = format!("/* {} */ {}", marker(i), sql[i]);
                let handle = tokio::spawn(async move {
                    let result = conn.run(&text).await;
                    (conn, result)
                });
                let pending = Pending { step: i, handle };
                match self.watch(pending, tx.node, tx.server_id).await? {
                    Watch::Answered(conn, result) => {
                        let ended = self.record(schedule, txs, results, conn, i, result, false).await?;
                        if ended {
                            self.settle(schedule, txs, results).await?;
                        }
                    }
                    Watch::Waiting(pending) => txs[schedule[i].tx].pending = Some(pending),
                }
                continue;
            }
            if txs.iter().all(|tx| tx.pending.is_none()) {
                return Ok(());
            }
            // Every transaction left is waiting: one of them must answer (or its lock wait time out).
            self.await_any(schedule, txs, results).await?;
        }
    }

    /// Waits until the step answers or the lock view (read live) shows it waiting.
    async fn watch(
        &mut self,
        mut pending: Pending,
        node: usize,
        server_id: Option<i64>,
    ) -> Result<Watch, ScheduleError> {
        let deadline = Instant::now() + self.lock_timeout + Duration::from_secs(5);
        loop {
            if let Ok(joined) = tokio::time::timeout(POLL, &mut pending.handle).await {
                let (conn, result) =
                    joined.map_err(|e| ScheduleError::Task { step: pending.step + 1, reason: e.to_string() })?;
                return Ok(Watch::Answered(conn, result));
            }
            if let Some(id) = server_id
                && self.observers[node].is_waiting(id).await?
            {
                return Ok(Watch::Waiting(pending));
            }
            if Instant::now() >= deadline {
                return Err(ScheduleError::Undecided { step: pending.step + 1, waited: self.lock_timeout });
            }
        }
    }

    /// After a transaction ended, the steps that waited for it answer: wait for each until it
    /// answers or is still seen waiting, and record what answered. Repeats while answers
    /// end further transactions.
    async fn settle(
        &mut self,
        schedule: &[Step],
        txs: &mut [Tx],
        results: &mut [Option<(StepResult, Rows)>],
    ) -> Result<(), ScheduleError> {
        loop {
            let mut ended = false;
            for t in 0..txs.len() {
                let Some(pending) = txs[t].pending.take() else { continue };
                let step = pending.step;
                match self.watch(pending, txs[t].node, txs[t].server_id).await? {
                    Watch::Answered(conn, result) => {
                        ended |= self.record(schedule, txs, results, conn, step, result, true).await?;
                    }
                    Watch::Waiting(pending) => txs[t].pending = Some(pending),
                }
            }
            if !ended {
                return Ok(());
            }
        }
    }

    /// Waits for the first of the waiting steps to answer.
    async fn await_any(
        &mut self,
        schedule: &[Step],
        txs: &mut [Tx],
        results: &mut [Option<(StepResult, Rows)>],
    ) -> Result<(), ScheduleError> {
        let deadline = Instant::now() + self.lock_timeout + Duration::from_secs(5);
        loop {
            for t in 0..txs.len() {
                let finished = txs[t].pending.as_ref().is_some_and(|p| p.handle.is_finished());
                if !finished {
                    continue;
                }
                let Some(pending) = txs[t].pending.take() else { continue };
                let step = pending.step;
                let (conn, result) =
                    pending.handle.await.map_err(|e| ScheduleError::Task { step: step + 1, reason: e.to_string() })?;
                if self.record(schedule, txs, results, conn, step, result, true).await? {
                    self.settle(schedule, txs, results).await?;
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let step = txs.iter().find_map(|tx| tx.pending.as_ref().map(|p| p.step + 1)).unwrap_or(0);
                return Err(ScheduleError::Undecided { step, waited: self.lock_timeout });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Records a step's answer and gives the connection back to its transaction. A failed step
    /// rolls its transaction back. Returns whether the transaction ended (and may have released locks).
    /// On a cluster, a commit is followed by [`Runner::await_replication`].
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &mut self,
        schedule: &[Step],
        txs: &mut [Tx],
        results: &mut [Option<(StepResult, Rows)>],
        mut conn: Conn,
        step: usize,
        result: Result<Rows, sqlx::Error>,
        blocked: bool,
    ) -> Result<bool, ScheduleError> {
        let Step { tx: t, op } = schedule[step];
        let tx = &mut txs[t];
        let ended = match result {
            Ok(rows) => {
                if let Some((_, value)) = rows.iter().find(|(id, _)| *id == 1) {
                    tx.last_read = Some(*value);
                }
                tx.committed |= op == Op::Commit;
                results[step] = Some((StepResult::Done { blocked }, rows));
                op.ends_transaction()
            }
            Err(err) => {
                let kind = crate::db::classify(conn.backend(), &err);
                let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
                results[step] = Some((StepResult::Failed { blocked, kind, code }, Vec::new()));
                tx.failed = true;
                // The transaction may still be open (PostgreSQL keeps it, aborted; SQLite keeps it
                // after SQLITE_BUSY, even at COMMIT); a client rolls back. A COMMIT that PostgreSQL
                // refused has ended it already (a ROLLBACK would only draw a warning). An error here
                // changes nothing we report.
                if !(op == Op::Commit && conn.backend() == crate::Backend::Postgres) {
                    let _ = conn.run("ROLLBACK").await;
                }
                true
            }
        };
        let node = tx.node;
        tx.conn = Some(conn);
        if op == Op::Commit && matches!(results[step], Some((StepResult::Done { .. }, _))) {
            self.await_replication(node, step).await?;
        }
        Ok(ended)
    }

    /// On a cluster, waits until every node has applied the commit just made on `node`: Galera
    /// applies write sets on the other nodes asynchronously, and the schedule's next step must meet
    /// the same state every run (the rows it reads; a local transaction that the write set aborts).
    /// Polls `wsrep_last_committed`, with a deadline.
    async fn await_replication(&mut self, node: usize, step: usize) -> Result<(), ScheduleError> {
        if self.observers.len() < 2 {
            return Ok(());
        }
        let target = self.observers[node].last_committed().await?;
        let deadline = Instant::now() + self.lock_timeout + Duration::from_secs(5);
        for other in 0..self.observers.len() {
            while self.observers[other].last_committed().await? < target {
                if Instant::now() >= deadline {
                    return Err(ScheduleError::Undecided { step: step + 1, waited: self.lock_timeout });
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }
}

/// The comment that marks step `i`'s statement, so the lock view can tell it from another.
fn marker(i: usize) -> String {
    // The full stop ends the number: step 1 must not match step 10.
    format!("racelab-anomalies step {}.", i + 1)
}
