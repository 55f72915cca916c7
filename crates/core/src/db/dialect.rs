//! The [`Dialect`] trait: every operation a strategy needs, implemented once per backend
//! (`postgres`, `mysql`, `sqlite`), and the classification of a backend's driver errors.
//!
//! A dialect function runs statements on the one connection it is given and maps every driver error
//! to a kind; it must never keep state between calls, nor decide about retries or transactions it
//! did not open (that is [`super::Session`]'s job).

use std::future::Future;
use std::time::Duration;

use super::driver::{Arg, Driver};
use super::idempotency::StoredResponse;
use super::sql::{Sql, Statements};
use super::statement::Statement;
use super::{Counter, Isolation, LockMode, Pk, PostRow, TxMode, common};
use crate::error::{DbError, ErrorKind, classify_driver_error};

/// The operations a strategy needs, per backend. An operation every backend runs alike is a default
/// method (the statement rendered from the dialect's [`super::sql::Sql`], run by [`super::common`]);
/// a backend writes its own only where it differs. Each function runs on one connection; the lock timeout is a property of the session, set once with `set_lock_timeout`.
pub(crate) trait Dialect: Sized {
    type Db: Driver;

    /// This dialect's rendering of the statements every backend runs alike.
    fn statements() -> &'static Statements;

    /// What this dialect's SQL has of its own, for rendering a [`Statement`] written once.
    fn sql() -> &'static Sql;
    /// Where a [`Statement`] keeps its rendering for this dialect (0, 1 or 2: one per backend).
    const SLOT: usize;
    /// Whether a COMMIT the server refused has ended the transaction (rolled it back) by itself.
    /// PostgreSQL's does, and answers a ROLLBACK sent after it with a warning ("there is no
    /// transaction in progress"); SQLite's refused busy leaves the transaction open, to be rolled
    /// back; MariaDB's is rolled back, and a second ROLLBACK costs only a round trip.
    const REFUSED_COMMIT_ENDS_TRANSACTION: bool = false;

    /// Runs a statement that hands back a value it wrote (see [`super::sql::Returning`]): the value,
    /// `None` if it wrote no row, or an error if the value does not fit.
    fn returned(c: &mut Conn<Self::Db>, sql: &'static str, args: &[Arg<'_>]) -> impl Future<Output = Returned> + Send {
        common::returning::<Self>(c, sql, args)
    }

    /// Maps a driver error to a kind. Called for every error that leaves a backend function. What
    /// the driver itself reports (a closed connection, a pool timeout, ...) means the same on every
    /// backend; only the server's codes are the dialect's to read.
    fn classify(err: &sqlx::Error) -> ErrorKind {
        classify_driver_error(err).unwrap_or_else(|| Self::classify_database_error(err))
    }
    /// What the server's error code means, on this backend.
    fn classify_database_error(err: &sqlx::Error) -> ErrorKind;

    /// Opens a transaction; returns whether one was opened (see [`TxMode::DefaultIsolation`]).
    fn begin(
        c: &mut Conn<Self::Db>,
        mode: TxMode,
        lock_timeout: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Opens a transaction at isolation level `level`; `lock`: the transaction will lock rows
    /// (SQLite, which has no levels to choose and no row locks, takes its write lock up front then,
    /// honouring the lock mode; otherwise it opens a deferred transaction, serializable as all of its
    /// transactions are). Returns whether a transaction was opened.
    fn begin_at(
        c: &mut Conn<Self::Db>,
        level: Isolation,
        lock: Option<LockMode>,
        lock_timeout: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Whether a driver error is a CHECK constraint refusing a row (a business rule the schema
    /// keeps, which a workload counts as a refusal).
    fn is_check_violation(err: &sqlx::Error) -> bool;
    fn commit(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<(), DbError>> + Send {
        common::run::<Self>(c, Self::statements().commit)
    }
    fn rollback(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<(), DbError>> + Send {
        common::run::<Self>(c, Self::statements().rollback)
    }
    fn set_lock_timeout(c: &mut Conn<Self::Db>, timeout: Duration) -> impl Future<Output = Result<(), DbError>> + Send;

    /// A plain read of `like` and `version`.
    fn read(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<Counter, DbError>> + Send {
        common::read::<Self>(c, pk)
    }
    /// The whole counter (as [`Dialect::read_total`]) as it stands after every write committed
    /// anywhere before the read: on a Galera node it waits until the node has applied every write set
    /// certified before it (`wsrep_sync_wait`).
    fn read_settled(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<Counter, DbError>> + Send {
        Self::read_total(c, pk)
    }
    /// A locking read (`FOR UPDATE [NOWAIT | SKIP LOCKED]`).
    fn read_for_update(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        mode: LockMode,
    ) -> impl Future<Output = Result<Counter, DbError>> + Send {
        common::read_for_update::<Self>(c, pk, mode)
    }
    /// The whole row.
    fn load(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<PostRow, DbError>> + Send {
        common::load::<Self>(c, pk)
    }
    /// Writes `like` unconditionally (bumping `version`, as every writer must).
    fn write(c: &mut Conn<Self::Db>, pk: Pk, like: i64) -> impl Future<Output = Result<(), DbError>> + Send {
        common::write::<Self>(c, pk, like)
    }
    /// Writes `like` only if `version` is still `expected_version`; returns whether it did.
    fn write_if_version(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        like: i64,
        expected_version: i64,
    ) -> impl Future<Output = Result<bool, DbError>> + Send {
        common::write_if_version::<Self>(c, pk, like, expected_version)
    }
    /// Deletes post `pk` (its slots go with it, by the foreign key) only if `version` is still
    /// `expected_version`; returns whether it did.
    fn delete_if_version(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        expected_version: i64,
    ) -> impl Future<Output = Result<bool, DbError>> + Send {
        common::delete_if_version::<Self>(c, pk, expected_version)
    }
    /// Inserts an idempotency key with the request it is used for (its answer still to be saved);
    /// `false` if the key exists. Waits for a transaction that inserted the same key to end.
    fn insert_idempotency_key(
        c: &mut Conn<Self::Db>,
        key: &str,
        fingerprint: &str,
    ) -> impl Future<Output = Result<bool, DbError>> + Send {
        common::insert_idempotency_key::<Self>(c, key, fingerprint)
    }
    /// Saves the answer given under a key this transaction inserted.
    fn save_idempotent_response(
        c: &mut Conn<Self::Db>,
        key: &str,
        status: u16,
        body: &str,
    ) -> impl Future<Output = Result<(), DbError>> + Send {
        common::save_idempotent_response::<Self>(c, key, status, body)
    }
    /// The request and answer stored under a key.
    fn idempotent_response(
        c: &mut Conn<Self::Db>,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredResponse>, DbError>> + Send {
        common::idempotent_response::<Self>(c, key)
    }
    /// Deletes at most `limit` keys first used `older_than` ago or earlier; returns how many.
    fn purge_idempotency_keys(
        c: &mut Conn<Self::Db>,
        older_than: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<u64, DbError>> + Send;
    /// `like = like + by` (and `version + 1`: one write) in one statement; returns the new value.
    fn increment_by(c: &mut Conn<Self::Db>, pk: Pk, by: i64) -> impl Future<Output = Result<i64, DbError>> + Send {
        common::increment_by::<Self>(c, pk, by)
    }
    /// Takes the application lock for this post, waiting up to `timeout`.
    fn advisory_lock(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// Releases it (a no-op where the lock ends with the transaction).
    fn advisory_unlock(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send;
    /// Adds `by` to slot `slot` of post `pk` (creating the slot row) in one statement; returns the
    /// slot's new value. A missing post is [`ErrorKind::NotFound`] (the foreign key refuses the slot).
    fn increment_slot_by(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        slot: u16,
        by: i64,
    ) -> impl Future<Output = Result<i64, DbError>> + Send {
        common::increment_slot_by::<Self>(c, pk, slot, by)
    }
    /// The post's whole counter in one statement: its own `like` and `version` plus those of its slots.
    fn read_total(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<Counter, DbError>> + Send {
        common::read_total::<Self>(c, pk)
    }
    /// Deletes the post's slots.
    fn clear_slots(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send {
        common::clear_slots::<Self>(c, pk)
    }

    /// Inserts a new post with `like = 0` and returns its key.
    fn create_post(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<Pk, DbError>> + Send;
    /// Inserts post `pk` with `like = 0` unless it exists.
    fn ensure_post(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send {
        common::ensure_post::<Self>(c, pk)
    }
    /// Sets `like` and `version` of post `pk` to 0, creating it if needed.
    fn reset_post(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send {
        common::reset_post::<Self>(c, pk)
    }
    /// Runs a workload's statement; the rows it matched.
    fn exec(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, DbError>> + Send {
        common::exec::<Self>(c, stmt, args)
    }
    /// Runs a workload's statement; the rows it matched, or `None` if a CHECK constraint refused it.
    fn exec_unless_check(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<u64>, DbError>> + Send {
        common::exec_unless_check::<Self>(c, stmt, args)
    }
    /// The first `columns` integer columns of a workload statement's first row, if it has one.
    fn fetch_ints(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> impl Future<Output = Result<Option<Vec<i64>>, DbError>> + Send {
        common::fetch_ints::<Self>(c, stmt, args, columns)
    }
    /// The first `columns` integer columns of every row a workload statement returns.
    fn fetch_all_ints(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> impl Future<Output = Result<Vec<Vec<i64>>, DbError>> + Send {
        common::fetch_all_ints::<Self>(c, stmt, args, columns)
    }
    /// [`Dialect::fetch_all_ints`] seeing every write committed anywhere before it: on a Galera node
    /// it first waits until the node has applied every write set certified before the read (as
    /// [`Dialect::read_settled`] does for the counter). The proof of a workload's invariant.
    fn fetch_all_settled(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> impl Future<Output = Result<Vec<Vec<i64>>, DbError>> + Send {
        common::fetch_all_ints::<Self>(c, stmt, args, columns)
    }
    /// Runs a workload's insert of one row (ending `{returning_id}`); the new row's key.
    fn insert_id(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<i64, DbError>> + Send {
        common::insert_id::<Self>(c, stmt, args)
    }
    /// Runs a workload's insert (ending `{returning_id}`) for `count` rows with the same `args`; their
    /// keys in order.
    fn insert_ids(
        c: &mut Conn<Self::Db>,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        count: usize,
    ) -> impl Future<Output = Result<Vec<i64>, DbError>> + Send {
        common::insert_ids::<Self>(c, stmt, args, count)
    }

    /// The server's id of this connection (PostgreSQL backend pid, MySQL connection id).
    fn connection_id(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<Option<i64>, DbError>> + Send;
    /// The server's version string.
    fn server_version(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<String, DbError>> + Send;
}

/// What a statement that hands back a value it wrote answers: the value, `None` if it wrote no row,
/// or an error if the value does not fit; a driver error outside, for the caller to classify.
pub(crate) type Returned = Result<Option<Result<i64, DbError>>, sqlx::Error>;

/// A backend connection, as a dialect function receives it.
pub(crate) type Conn<DB> = <DB as sqlx::Database>::Connection;

/// Wraps a driver error of backend `D` into a classified [`DbError`].
pub(crate) fn db_err<D: Dialect>(err: sqlx::Error) -> DbError {
    DbError::classified(D::classify(&err), err)
}
