//! What the runner needs of a database, written once per backend: open a session's connection and
//! learn its server id, run a step's SQL, ask whether a session waits for a lock, cancel a step.
//!
//! The runner ([`super::run`]) is generic over this trait, so isolationtester's semantics (the order
//! of reports, blocker annotations, timeouts) exist once; how a backend tells that a session is
//! blocked is its own: PostgreSQL asks `pg_isolation_test_session_is_blocked`, InnoDB's monitor shows
//! the session's transaction in `LOCK WAIT`, and SQLite never waits (busy timeout 0) but answers
//! `SQLITE_BUSY`, which the runner takes as blocked and retries later.

use std::future::Future;

use super::report::{Answer, StepError};
use crate::db::DatabaseUrl;

/// A step's answer, with what is left of it when the backend refused it busy.
#[derive(Debug, Default)]
pub(crate) struct StepAnswer {
    /// The tables of the statements run, and the error of the one that stopped the step.
    pub answer: Answer,
    /// SQLite: the step's statements from the one refused `SQLITE_BUSY` on, to run again once the
    /// other sessions moved on (the error in `answer` is that refusal, reported if the step is
    /// cancelled). `None` everywhere else.
    pub blocked_rest: Option<String>,
}

/// One backend's sessions, for the spec runner.
pub(crate) trait SpecBackend: Send + Sync + 'static {
    /// One connection: a session's, or the control connection's.
    type Conn: Send + 'static;

    /// Opens a connection for `name` (a session's name, or "control connection").
    fn connect(url: &DatabaseUrl, name: &str) -> impl Future<Output = Result<Self::Conn, sqlx::Error>> + Send;

    /// The server's id of `conn` (PostgreSQL's backend pid, MariaDB's `CONNECTION_ID()`; SQLite has
    /// none: 0), as [`SpecBackend::is_blocked`] and [`SpecBackend::cancel`] take it.
    fn session_id(conn: &mut Self::Conn) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;

    /// Runs `sql` (one or several statements) and waits for its answer: a table per statement that
    /// returns rows, up to the error that ended it. `last_only`: only the last statement's table is
    /// kept (a setup or teardown, as `PQexec` keeps it).
    fn execute(conn: &mut Self::Conn, sql: &str, last_only: bool) -> impl Future<Output = Answer> + Send;

    /// Runs a step's `sql`. Only SQLite's differs from [`SpecBackend::execute`]: it stops at a
    /// statement refused busy and says what is left to run.
    fn execute_step(conn: &mut Self::Conn, sql: &str) -> impl Future<Output = StepAnswer> + Send {
        async move { StepAnswer { answer: Self::execute(conn, sql, false).await, blocked_rest: None } }
    }

    /// Makes `conn`, one of several connections spread over a cluster's nodes, read what the
    /// cluster committed before each of its statements (Galera's `wsrep_sync_wait`). Nothing where
    /// a backend has no such cluster.
    fn join_cluster(conn: &mut Self::Conn) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Waits until every node of a cluster (one control connection each) has applied what any of
    /// them committed. Nothing where a backend has no such cluster.
    fn settle(controls: &mut [Self::Conn]) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        let _ = controls;
        async { Ok(()) }
    }

    /// Whether the session with id `id` waits for a lock (held by one of `ids`, where the backend can
    /// say), asked on the control connection.
    fn is_blocked(
        control: &mut Self::Conn,
        id: i64,
        ids: &[i64],
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// Cancels what session `id` runs (PostgreSQL's `pg_cancel_backend`, MariaDB's `KILL QUERY`).
    fn cancel(control: &mut Self::Conn, id: i64) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The error as a step reports it.
    fn step_error(err: &sqlx::Error) -> StepError;

    fn close(conn: Self::Conn) -> impl Future<Output = ()> + Send;
}
