//! [`Session`]: one pooled connection, owned by one worker (or one request) for as long as it needs
//! it, and the transaction state that goes with it.
//!
//! A session hands each operation to its backend's [`Dialect`] and keeps track of what could leave
//! the connection dirty (an open transaction, an application lock, a changed setting); it must never
//! return such a connection to the pool, and never writes SQL itself.
//!
//! At debug level a unit of work is one span, `transaction` (from [`Session::begin`] to its commit or
//! rollback, with the backend, the transaction mode, the post's key and the outcome); a statement
//! outside one is a span `autocommit` of its own. No span records a statement's values other than the
//! post's key. With debug off the spans cost a level check per statement.

use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use tracing::{Instrument, Span};

use super::driver::Arg;
use super::idempotency::StoredResponse;
use super::statement::Statement;
use super::warm::Warm;
use super::{Backend, Counter, Dialect, Isolation, LockMode, Pk, PostRow, TxMode, mysql, postgres, sqlite};
use crate::error::DbError;

/// Rows per transaction when a run's rows are created ([`Session::insert_ids`]).
const SEED_BATCH: usize = 500;

pub(super) enum PooledConn {
    Postgres(PoolConnection<sqlx::Postgres>),
    MySql(PoolConnection<sqlx::MySql>),
    Sqlite(PoolConnection<sqlx::Sqlite>),
}

impl PooledConn {
    /// One round trip that proves the connection works.
    pub(super) async fn ping(&mut self) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        match self {
            PooledConn::Postgres(c) => c.ping().await,
            PooledConn::MySql(c) => c.ping().await,
            PooledConn::Sqlite(c) => c.ping().await,
        }
    }

    /// Closes the connection now, out of its pool (which is going away): no task of the pool's runs.
    pub(super) fn close_without_pool(self) {
        match self {
            PooledConn::Postgres(c) => drop(c.leak()),
            PooledConn::MySql(c) => drop(c.leak()),
            PooledConn::Sqlite(c) => drop(c.leak()),
        }
    }

    /// Marks the connection to be closed when it is dropped, not returned to its pool.
    pub(super) fn close_on_drop(&mut self) {
        match self {
            PooledConn::Postgres(c) => c.close_on_drop(),
            PooledConn::MySql(c) => c.close_on_drop(),
            PooledConn::Sqlite(c) => c.close_on_drop(),
        }
    }
}

/// Calls the same [`Dialect`] function on whichever backend the session's connection belongs to,
/// inside the span it belongs to ([`Session::span`]), naming post `pk` if the call is about one.
macro_rules! dispatch {
    ($session:expr, $pk:expr, $f:ident ( $($arg:expr),* )) => {{
        let span = $session.span(stringify!($f), $pk);
        // Until the server has answered, the connection's state is unknown (this future may be dropped).
        $session.answered = false;
        let conn = $session.conn.as_mut().expect(CONN_KEPT);
        let result = async move {
            match conn {
                PooledConn::Postgres(c) => <postgres::Postgres as Dialect>::$f(c, $($arg),*).await,
                PooledConn::MySql(c) => <mysql::MySql as Dialect>::$f(c, $($arg),*).await,
                PooledConn::Sqlite(c) => <sqlite::Sqlite as Dialect>::$f(c, $($arg),*).await,
            }
        }
        .instrument(span)
        .await;
        $session.answered = result.is_ok();
        result
    }};
}

/// A session holds its connection until it is dropped.
const CONN_KEPT: &str = "a session's connection is taken only when it is dropped";

/// One connection, owned by one worker (or one request) for as long as it needs it.
///
/// A session remembers whether it opened a transaction, so `commit` and `rollback` are safe to call
/// whatever `begin` did, and it is closed rather than returned to the pool when a failure may have left
/// it in an unknown state (a failed rollback, an application lock that could not be released).
pub struct Session {
    /// `None` only once dropped (its connection kept warm for the next session).
    conn: Option<PooledConn>,
    /// Where a connection that ends clean is kept for the next session (`None`: back to the pool).
    warm: Option<Arc<Warm>>,
    /// The last statement was answered without an error: the connection works and is idle.
    answered: bool,
    /// Marked to be closed rather than reused.
    closing: bool,
    in_transaction: bool,
    lock_timeout: Duration,
    /// The lock timeout every pooled connection has (set once, when it was opened).
    pooled_lock_timeout: Duration,
    /// A session-scoped application lock (MariaDB/MySQL `GET_LOCK`) may be held.
    holds_app_lock: bool,
    /// A settled read changed a session setting (`wsrep_sync_wait`) and has not put it back yet.
    settings_changed: bool,
    /// The span of the unit of work `begin` opened, until it ends (`Span::none()` outside one, and
    /// whenever debug spans are off).
    unit: Span,
    /// The post the unit's span names (recorded once: a span's field is written each time it is set).
    unit_pk: Option<Pk>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The next user of a pooled connection must get a clean one. A session dropped inside a
        // transaction (a cancelled future, a panic), holding an application lock, or with a changed
        // lock timeout is closed instead: the server then rolls back and releases everything.
        if self.in_transaction
            || self.holds_app_lock
            || self.settings_changed
            || self.lock_timeout != self.pooled_lock_timeout
        {
            self.close_on_drop();
            return;
        }
        // Clean, and just answered by the server: kept for the next session, without the ping sqlx's
        // pool would send it on its way back (see `warm`). Anything else goes back through the pool.
        if self.answered
            && !self.closing
            && let Some(warm) = &self.warm
            && let Some(conn) = self.conn.take()
            && let Err(conn) = warm.keep(conn)
        {
            drop(conn);
        }
    }
}

impl Session {
    /// A session on a connection just taken from the pool, whose connections all have `lock_timeout`.
    /// A connection that ends clean is kept in `warm`, when given.
    pub(super) fn new(conn: PooledConn, lock_timeout: Duration, warm: Option<Arc<Warm>>) -> Self {
        Self {
            conn: Some(conn),
            warm,
            answered: true,
            closing: false,
            in_transaction: false,
            lock_timeout,
            pooled_lock_timeout: lock_timeout,
            holds_app_lock: false,
            settings_changed: false,
            unit: Span::none(),
            unit_pk: None,
        }
    }

    /// The span a statement runs in. Inside a unit of work, the unit's own (one span from `begin` to
    /// its commit or rollback, naming the post once a statement does); outside one, a span for the
    /// statement alone, which in autocommit is a transaction by itself. With debug spans off, both
    /// are `Span::none()`: no allocation and no field is evaluated.
    fn span(&mut self, statement: &'static str, pk: Option<Pk>) -> Span {
        if self.unit.is_none() {
            return tracing::debug_span!("autocommit", backend = %self.backend(), statement, pk);
        }
        if let Some(pk) = pk
            && self.unit_pk != Some(pk)
        {
            self.unit.record("pk", pk);
            self.unit_pk = Some(pk);
        }
        self.unit.clone()
    }

    /// Closes the unit's span, saying how the unit ended.
    fn end_unit(&mut self, outcome: &'static str) {
        self.unit.record("outcome", outcome);
        self.unit = Span::none();
        self.unit_pk = None;
    }

    /// The backend this session talks to.
    pub fn backend(&self) -> Backend {
        match self.conn() {
            PooledConn::Postgres(_) => Backend::Postgres,
            PooledConn::MySql(_) => Backend::MySql,
            PooledConn::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The lock timeout this session uses for row locks, application locks and SQLite's busy wait.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Changes the lock timeout for this session (its connection is then closed, not pooled, when the
    /// session ends).
    pub async fn set_lock_timeout(&mut self, timeout: Duration) -> Result<(), DbError> {
        if timeout == self.lock_timeout {
            return Ok(());
        }
        dispatch!(self, None, set_lock_timeout(timeout))?;
        self.lock_timeout = timeout;
        Ok(())
    }

    /// Opens a transaction of the given kind.
    pub async fn begin(&mut self, mode: TxMode) -> Result<(), DbError> {
        self.open_unit(format_args!("{mode:?}"));
        let timeout = self.lock_timeout;
        // Until BEGIN has answered, a transaction may be open (if this future is dropped midway).
        self.in_transaction = true;
        let opened = dispatch!(self, None, begin(mode, timeout));
        self.opened(opened)
    }

    /// Opens a transaction at isolation level `level`, for a unit of work that will lock rows if
    /// `lock` says how (on SQLite, which has no levels, see [`Isolation`]).
    pub async fn begin_at(&mut self, level: Isolation, lock: Option<LockMode>) -> Result<(), DbError> {
        self.open_unit(format_args!("{level}{}", if lock.is_some() { ", row locking" } else { "" }));
        let timeout = self.lock_timeout;
        self.in_transaction = true;
        let opened = dispatch!(self, None, begin_at(level, lock, timeout));
        self.opened(opened)
    }

    /// Starts the span of a unit of work opened in transaction mode `mode`.
    fn open_unit(&mut self, mode: std::fmt::Arguments<'_>) {
        self.unit_pk = None;
        self.unit = tracing::debug_span!(
            "transaction",
            backend = %self.backend(),
            mode = %mode,
            pk = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
    }

    /// Records what BEGIN answered: whether a transaction is open.
    fn opened(&mut self, opened: Result<bool, DbError>) -> Result<(), DbError> {
        self.in_transaction = *opened.as_ref().unwrap_or(&false);
        if opened.is_err() {
            self.end_unit("begin failed");
        }
        opened.map(drop)
    }

    /// Commits the open transaction, if any.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        if !self.in_transaction {
            self.end_unit("ended without a transaction");
            return Ok(());
        }
        let result = dispatch!(self, None, commit()).map_err(DbError::at_commit);
        match &result {
            Ok(()) => {
                self.in_transaction = false;
                self.end_unit("committed");
            }
            // A refused COMMIT (not one whose answer was lost) that the server rolled back itself.
            Err(err) if !err.is_in_doubt() && self.refused_commit_ends_transaction() => {
                self.in_transaction = false;
                self.end_unit("commit refused, rolled back by the server");
            }
            // The server may have rolled back or may still hold the transaction: make sure of it.
            Err(_) => self.rollback("commit failed, rolled back").await,
        }
        result
    }

    fn refused_commit_ends_transaction(&self) -> bool {
        match self.conn() {
            PooledConn::Postgres(_) => <postgres::Postgres as Dialect>::REFUSED_COMMIT_ENDS_TRANSACTION,
            PooledConn::MySql(_) => <mysql::MySql as Dialect>::REFUSED_COMMIT_ENDS_TRANSACTION,
            PooledConn::Sqlite(_) => <sqlite::Sqlite as Dialect>::REFUSED_COMMIT_ENDS_TRANSACTION,
        }
    }

    /// Ends the unit of work that `begin` opened: commits if it succeeded, rolls back if it failed.
    pub async fn finish<T>(&mut self, result: Result<T, DbError>) -> Result<T, DbError> {
        match result {
            Ok(value) => self.commit().await.map(|()| value),
            Err(err) => {
                self.rollback_quietly().await;
                Err(err)
            }
        }
    }

    /// Rolls back the open transaction, if any. If even that fails, the connection is closed instead
    /// of going back to the pool in an unknown state.
    pub async fn rollback_quietly(&mut self) {
        self.rollback("rolled back").await;
    }

    /// [`Session::rollback_quietly`], ending the unit's span with `outcome` if the rollback succeeds.
    async fn rollback(&mut self, outcome: &'static str) {
        if !self.in_transaction {
            self.end_unit("ended without a transaction");
            return;
        }
        match dispatch!(self, None, rollback()) {
            Ok(()) => {
                self.in_transaction = false;
                self.end_unit(outcome);
            }
            Err(err) => {
                // Stays marked as in a transaction, so the connection is closed when dropped.
                tracing::debug!(%err, "rollback failed; closing the connection");
                self.end_unit("rollback failed, connection closed");
                self.close_on_drop();
            }
        }
    }

    /// Marks the connection to be closed, not pooled, when the session is dropped.
    pub fn close_on_drop(&mut self) {
        self.closing = true;
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }

    fn conn(&self) -> &PooledConn {
        self.conn.as_ref().expect(CONN_KEPT)
    }

    pub async fn read(&mut self, pk: Pk) -> Result<Counter, DbError> {
        dispatch!(self, Some(pk), read(pk))
    }

    /// The whole counter (post and slots), seeing every write committed before it on any node of a
    /// cluster: the read that proves an experiment.
    pub async fn read_settled(&mut self, pk: Pk) -> Result<Counter, DbError> {
        // Cancelled midway (a timeout), the connection could keep causal reads on: close it then.
        self.settings_changed = true;
        let read = dispatch!(self, Some(pk), read_settled(pk));
        self.settings_changed = read.is_err();
        read
    }

    pub async fn read_for_update(&mut self, pk: Pk, mode: LockMode) -> Result<Counter, DbError> {
        dispatch!(self, Some(pk), read_for_update(pk, mode))
    }

    pub async fn load(&mut self, pk: Pk) -> Result<PostRow, DbError> {
        dispatch!(self, Some(pk), load(pk))
    }

    pub async fn write(&mut self, pk: Pk, like: i64) -> Result<(), DbError> {
        let result = dispatch!(self, Some(pk), write(pk, like));
        self.autocommit_point(result)
    }

    pub async fn write_if_version(&mut self, pk: Pk, like: i64, expected_version: i64) -> Result<bool, DbError> {
        let result = dispatch!(self, Some(pk), write_if_version(pk, like, expected_version));
        self.autocommit_point(result)
    }

    pub async fn delete_if_version(&mut self, pk: Pk, expected_version: i64) -> Result<bool, DbError> {
        let result = dispatch!(self, Some(pk), delete_if_version(pk, expected_version));
        self.autocommit_point(result)
    }

    pub async fn insert_idempotency_key(&mut self, key: &str, fingerprint: &str) -> Result<bool, DbError> {
        dispatch!(self, None, insert_idempotency_key(key, fingerprint))
    }

    pub async fn save_idempotent_response(&mut self, key: &str, status: u16, body: &str) -> Result<(), DbError> {
        dispatch!(self, None, save_idempotent_response(key, status, body))
    }

    pub async fn idempotent_response(&mut self, key: &str) -> Result<Option<StoredResponse>, DbError> {
        dispatch!(self, None, idempotent_response(key))
    }

    pub async fn purge_idempotency_keys(&mut self, older_than: Duration, limit: i64) -> Result<u64, DbError> {
        dispatch!(self, None, purge_idempotency_keys(older_than, limit))
    }

    pub async fn increment(&mut self, pk: Pk) -> Result<i64, DbError> {
        self.increment_by(pk, 1).await
    }

    /// `like = like + by` in one statement (one write: `version` gains 1); returns the new value.
    pub async fn increment_by(&mut self, pk: Pk, by: i64) -> Result<i64, DbError> {
        let result = dispatch!(self, Some(pk), increment_by(pk, by));
        self.autocommit_point(result)
    }

    /// Outside a transaction a write commits by itself: its lost answer leaves the increment in doubt,
    /// as a lost answer to `COMMIT` does. Inside one, the server rolls back what a broken connection
    /// left uncommitted: a known failure.
    pub(super) fn autocommit_point<T>(&self, result: Result<T, DbError>) -> Result<T, DbError> {
        if self.in_transaction { result } else { result.map_err(DbError::at_commit) }
    }

    pub async fn advisory_lock(&mut self, pk: Pk) -> Result<(), DbError> {
        let timeout = self.lock_timeout;
        // Set before asking: if the request is cancelled midway, the lock may have been granted.
        self.holds_app_lock = true;
        dispatch!(self, Some(pk), advisory_lock(pk, timeout))
    }

    pub async fn advisory_unlock(&mut self, pk: Pk) -> Result<(), DbError> {
        dispatch!(self, Some(pk), advisory_unlock(pk))?;
        self.holds_app_lock = false;
        Ok(())
    }

    pub async fn create_post(&mut self) -> Result<Pk, DbError> {
        dispatch!(self, None, create_post())
    }

    pub async fn ensure_post(&mut self, pk: Pk) -> Result<(), DbError> {
        dispatch!(self, Some(pk), ensure_post(pk))
    }

    /// Sets post `pk` back to `like = 0, version = 0` and deletes its slots, in one transaction, so
    /// no reader sees the post reset with its old slots still counted (or the other way round).
    pub async fn reset_post(&mut self, pk: Pk) -> Result<(), DbError> {
        self.begin(TxMode::RowLocking(LockMode::Wait)).await?;
        // The post first: a concurrent slot increment (whose foreign-key check reads the post's row)
        // then waits here instead of holding a slot this transaction is about to delete.
        let result = match dispatch!(self, Some(pk), reset_post(pk)) {
            Ok(()) => dispatch!(self, Some(pk), clear_slots(pk)),
            Err(err) => Err(err),
        };
        self.finish(result).await
    }

    /// The sharded strategy's increment: slot `slot` of post `pk` gains 1, in one autocommit
    /// statement. Returns the slot's new value.
    pub async fn increment_slot(&mut self, pk: Pk, slot: u16) -> Result<i64, DbError> {
        self.increment_slot_by(pk, slot, 1).await
    }

    /// Slot `slot` of post `pk` gains `by`, in one statement. Returns the slot's new value.
    pub async fn increment_slot_by(&mut self, pk: Pk, slot: u16, by: i64) -> Result<i64, DbError> {
        let result = dispatch!(self, Some(pk), increment_slot_by(pk, slot, by));
        self.autocommit_point(result)
    }

    /// The post's counter as a reader must see it: `like` is the post's own plus the sum of its slots,
    /// `version` likewise (so writes to slots count as writes to the post).
    pub async fn read_total(&mut self, pk: Pk) -> Result<Counter, DbError> {
        dispatch!(self, Some(pk), read_total(pk))
    }

    /// Runs a workload's statement (see [`super::workloads`]); the rows it matched. In autocommit it
    /// is a commit point: a lost answer leaves it in doubt.
    pub(crate) async fn exec(&mut self, stmt: &'static Statement, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let result = dispatch!(self, None, exec(stmt, args));
        self.autocommit_point(result)
    }

    /// [`Session::exec`]; `None` if a CHECK constraint refused the row.
    pub(crate) async fn exec_unless_check(
        &mut self,
        stmt: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Option<u64>, DbError> {
        let result = dispatch!(self, None, exec_unless_check(stmt, args));
        self.autocommit_point(result)
    }

    /// The first `columns` integer columns of a workload statement's first row, if any.
    pub(crate) async fn fetch_ints(
        &mut self,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> Result<Option<Vec<i64>>, DbError> {
        dispatch!(self, None, fetch_ints(stmt, args, columns))
    }

    /// The first `columns` integer columns of every row of a workload statement.
    pub(crate) async fn fetch_all_ints(
        &mut self,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<i64>>, DbError> {
        dispatch!(self, None, fetch_all_ints(stmt, args, columns))
    }

    /// [`Session::fetch_all_ints`] seeing every write committed before it on any node of a cluster:
    /// the read that proves a workload's invariant.
    pub(crate) async fn fetch_all_settled(
        &mut self,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<i64>>, DbError> {
        // Cancelled midway (a timeout), the connection could keep causal reads on: close it then.
        self.settings_changed = true;
        let rows = dispatch!(self, None, fetch_all_settled(stmt, args, columns));
        self.settings_changed = rows.is_err();
        rows
    }

    /// Inserts one row with a workload's statement; its new key.
    pub(crate) async fn insert_id(&mut self, stmt: &'static Statement, args: &[Arg<'_>]) -> Result<i64, DbError> {
        let result = dispatch!(self, None, insert_id(stmt, args));
        self.autocommit_point(result)
    }

    /// `count` rows inserted by `stmt` with the same `args`, their keys in order, committed in
    /// transactions of [`SEED_BATCH`] rows. One commit per row made a 100,000-job queue take minutes on
    /// SQLite and kept every other writer of the file retrying behind its stream of commits; one
    /// transaction for them all would hold SQLite's write lock for as long. Batches let the others in
    /// between.
    pub(crate) async fn insert_ids(
        &mut self,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        count: usize,
    ) -> Result<Vec<i64>, DbError> {
        let mut keys = Vec::with_capacity(count);
        while keys.len() < count {
            let batch = (count - keys.len()).min(SEED_BATCH);
            self.begin_at(Isolation::ReadCommitted, None).await?;
            let inserted = dispatch!(self, None, insert_ids(stmt, args, batch));
            keys.extend(self.finish(inserted).await?);
        }
        Ok(keys)
    }

    pub async fn server_version(&mut self) -> Result<String, DbError> {
        dispatch!(self, None, server_version())
    }

    /// PostgreSQL's timeline on this connection's server (see `postgres::timeline`); `None` elsewhere.
    pub async fn timeline(&mut self) -> Result<Option<i64>, DbError> {
        let Some(PooledConn::Postgres(c)) = self.conn.as_mut() else { return Ok(None) };
        self.answered = false;
        let timeline = postgres::timeline(c).await;
        self.answered = timeline.is_ok();
        timeline.map(Some)
    }

    /// Whether the server is a PostgreSQL replica (in recovery), whose sessions may only read; `None`
    /// on other databases.
    pub(super) async fn read_only(&mut self) -> Result<Option<bool>, DbError> {
        let Some(PooledConn::Postgres(c)) = self.conn.as_mut() else { return Ok(None) };
        self.answered = false;
        let read_only = postgres::read_only(c).await;
        self.answered = read_only.is_ok();
        read_only.map(Some)
    }

    /// Where the server stands in a Galera cluster; `None` unless it is a MariaDB node with wsrep on.
    pub(super) async fn node_state(&mut self) -> Result<Option<super::NodeState>, DbError> {
        let Some(PooledConn::MySql(c)) = self.conn.as_mut() else { return Ok(None) };
        self.answered = false;
        let state = mysql::node_state(c).await;
        self.answered = state.is_ok();
        state
    }

    /// The server's id of this connection, where it has one (not SQLite).
    pub async fn connection_id(&mut self) -> Result<Option<i64>, DbError> {
        dispatch!(self, None, connection_id())
    }
}
