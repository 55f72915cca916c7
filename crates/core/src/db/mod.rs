//! Database access: one pool per process, one [`Session`] (a pooled connection) per worker.
//!
//! Every SQL statement racelab runs lives in the backend modules, behind the [`Dialect`] trait; a
//! strategy is written once against [`Session`] and never sees a dialect. What differs between
//! databases (quoting of `like`, `RETURNING` vs `LAST_INSERT_ID`, lock clauses, which code means what)
//! stays inside `postgres`, `mysql` and `sqlite`.

mod connect;
mod idempotency;
mod mysql;
mod postgres;
mod resource;
mod sqlite;
mod url;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::pool::PoolConnection;

use crate::error::{DbError, ErrorKind};

pub use self::connect::{ConnectError, Refusal};
pub use self::idempotency::StoredResponse;
pub use self::mysql::NodeState;
pub use self::resource::{Expected, Precondition};
pub use self::url::{Backend, DEFAULT_DATABASE_URL, DatabaseUrl, UrlError, redact};

/// The primary key of a post.
pub type Pk = i64;

/// The counter and its version, as one read returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub like: i64,
    pub version: i64,
}

/// A whole `posts` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostRow {
    pub pk: Pk,
    pub like: i64,
    pub version: i64,
    pub modified_at: DateTime<Utc>,
}

/// How a pessimistic read behaves when the row is already locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    /// Wait for the lock, up to the lock timeout.
    #[default]
    Wait,
    /// Fail at once with [`ErrorKind::LockNotAvailable`].
    NoWait,
    /// Do not wait and do not fail: report [`ErrorKind::RowSkipped`].
    SkipLocked,
}

impl LockMode {
    pub const ALL: [LockMode; 3] = [LockMode::Wait, LockMode::NoWait, LockMode::SkipLocked];

    /// The name used on the command line and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Wait => "wait",
            LockMode::NoWait => "nowait",
            LockMode::SkipLocked => "skip-locked",
        }
    }
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown lock mode `{s}`; expected one of: wait, nowait, skip-locked"))
    }
}

/// The kind of transaction a unit of work runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// What an ORM session gets by default: READ COMMITTED on PostgreSQL, REPEATABLE READ on
    /// MariaDB/MySQL. On SQLite no transaction at all: like Python's sqlite3 driver, the read runs in
    /// autocommit (a deferred SQLite transaction is serializable and would hide the lost update).
    DefaultIsolation,
    /// SERIALIZABLE on PostgreSQL and MariaDB/MySQL; a deferred transaction on SQLite (serializable by
    /// construction).
    Serializable,
    /// A transaction that will lock the row with `SELECT ... FOR UPDATE`. SQLite has no row locks:
    /// `BEGIN IMMEDIATE` takes the database write lock up front, honouring the lock mode.
    RowLocking(LockMode),
}

/// The operations a strategy needs, implemented once per backend. Each function runs on one
/// connection; the lock timeout is a property of the session, set once with `set_lock_timeout`.
pub(crate) trait Dialect {
    type Db: sqlx::Database;

    /// Maps a driver error to a kind. Called for every error that leaves a backend function.
    fn classify(err: &sqlx::Error) -> ErrorKind;

    /// Opens a transaction; returns whether one was opened (see [`TxMode::DefaultIsolation`]).
    fn begin(
        c: &mut Conn<Self::Db>,
        mode: TxMode,
        lock_timeout: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    fn commit(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<(), DbError>> + Send;
    fn rollback(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<(), DbError>> + Send;
    fn set_lock_timeout(c: &mut Conn<Self::Db>, timeout: Duration) -> impl Future<Output = Result<(), DbError>> + Send;

    /// A plain read of `like` and `version`.
    fn read(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<Counter, DbError>> + Send;
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
    ) -> impl Future<Output = Result<Counter, DbError>> + Send;
    /// The whole row.
    fn load(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<PostRow, DbError>> + Send;
    /// Writes `like` unconditionally (bumping `version`, as every writer must).
    fn write(c: &mut Conn<Self::Db>, pk: Pk, like: i64) -> impl Future<Output = Result<(), DbError>> + Send;
    /// Writes `like` only if `version` is still `expected_version`; returns whether it did.
    fn write_if_version(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        like: i64,
        expected_version: i64,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Deletes post `pk` (its slots go with it, by the foreign key) only if `version` is still
    /// `expected_version`; returns whether it did.
    fn delete_if_version(
        c: &mut Conn<Self::Db>,
        pk: Pk,
        expected_version: i64,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Inserts an idempotency key with the request it is used for (its answer still to be saved);
    /// `false` if the key exists. Waits for a transaction that inserted the same key to end.
    fn insert_idempotency_key(
        c: &mut Conn<Self::Db>,
        key: &str,
        fingerprint: &str,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Saves the answer given under a key this transaction inserted.
    fn save_idempotent_response(
        c: &mut Conn<Self::Db>,
        key: &str,
        status: u16,
        body: &str,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// The request and answer stored under a key.
    fn idempotent_response(
        c: &mut Conn<Self::Db>,
        key: &str,
    ) -> impl Future<Output = Result<Option<idempotency::StoredResponse>, DbError>> + Send;
    /// Deletes at most `limit` keys first used `older_than` ago or earlier; returns how many.
    fn purge_idempotency_keys(
        c: &mut Conn<Self::Db>,
        older_than: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<u64, DbError>> + Send;
    /// `like = like + by` (and `version + 1`: one write) in one statement; returns the new value.
    fn increment_by(c: &mut Conn<Self::Db>, pk: Pk, by: i64) -> impl Future<Output = Result<i64, DbError>> + Send;
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
    ) -> impl Future<Output = Result<i64, DbError>> + Send;
    /// The post's whole counter in one statement: its own `like` and `version` plus those of its slots.
    fn read_total(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<Counter, DbError>> + Send;
    /// Deletes the post's slots.
    fn clear_slots(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Inserts a new post with `like = 0` and returns its key.
    fn create_post(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<Pk, DbError>> + Send;
    /// Inserts post `pk` with `like = 0` unless it exists.
    fn ensure_post(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send;
    /// Sets `like` and `version` of post `pk` to 0, creating it if needed.
    fn reset_post(c: &mut Conn<Self::Db>, pk: Pk) -> impl Future<Output = Result<(), DbError>> + Send;
    /// The server's id of this connection (PostgreSQL backend pid, MySQL connection id).
    fn connection_id(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<Option<i64>, DbError>> + Send;
    /// The server's version string.
    fn server_version(c: &mut Conn<Self::Db>) -> impl Future<Output = Result<String, DbError>> + Send;
}

/// A backend connection, as a dialect function receives it.
pub(crate) type Conn<DB> = <DB as sqlx::Database>::Connection;

/// Wraps a driver error of backend `D` into a classified [`DbError`].
pub(crate) fn db_err<D: Dialect>(err: sqlx::Error) -> DbError {
    DbError::classified(D::classify(&err), err)
}

enum PooledConn {
    Postgres(PoolConnection<sqlx::Postgres>),
    MySql(PoolConnection<sqlx::MySql>),
    Sqlite(PoolConnection<sqlx::Sqlite>),
}

/// Calls the same [`Dialect`] function on whichever backend the connection belongs to.
macro_rules! dispatch {
    ($conn:expr, $f:ident ( $($arg:expr),* )) => {
        match $conn {
            PooledConn::Postgres(c) => <postgres::Postgres as Dialect>::$f(c, $($arg),*).await,
            PooledConn::MySql(c) => <mysql::MySql as Dialect>::$f(c, $($arg),*).await,
            PooledConn::Sqlite(c) => <sqlite::Sqlite as Dialect>::$f(c, $($arg),*).await,
        }
    };
}

/// One connection, owned by one worker (or one request) for as long as it needs it.
///
/// A session remembers whether it opened a transaction, so `commit` and `rollback` are safe to call
/// whatever `begin` did, and it is closed rather than returned to the pool when a failure may have left
/// it in an unknown state (a failed rollback, an application lock that could not be released).
pub struct Session {
    conn: PooledConn,
    in_transaction: bool,
    lock_timeout: Duration,
    /// The lock timeout every pooled connection has (set once, when it was opened).
    pooled_lock_timeout: Duration,
    /// A session-scoped application lock (MariaDB/MySQL `GET_LOCK`) may be held.
    holds_app_lock: bool,
    /// A settled read changed a session setting (`wsrep_sync_wait`) and has not put it back yet.
    settings_changed: bool,
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
        }
    }
}

impl Session {
    /// The backend this session talks to.
    pub fn backend(&self) -> Backend {
        match self.conn {
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
        dispatch!(&mut self.conn, set_lock_timeout(timeout))?;
        self.lock_timeout = timeout;
        Ok(())
    }

    /// Opens a transaction of the given kind.
    pub async fn begin(&mut self, mode: TxMode) -> Result<(), DbError> {
        let timeout = self.lock_timeout;
        // Until BEGIN has answered, a transaction may be open (if this future is dropped midway).
        self.in_transaction = true;
        let opened = dispatch!(&mut self.conn, begin(mode, timeout));
        self.in_transaction = *opened.as_ref().unwrap_or(&false);
        opened.map(drop)
    }

    /// Commits the open transaction, if any.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        if !self.in_transaction {
            return Ok(());
        }
        let result = dispatch!(&mut self.conn, commit()).map_err(DbError::at_commit);
        match result {
            Ok(()) => self.in_transaction = false,
            // The server may have rolled back or may still hold the transaction: make sure of it.
            Err(_) => self.rollback_quietly().await,
        }
        result
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
        if !self.in_transaction {
            return;
        }
        match dispatch!(&mut self.conn, rollback()) {
            Ok(()) => self.in_transaction = false,
            Err(err) => {
                // Stays marked as in a transaction, so the connection is closed when dropped.
                tracing::debug!(%err, "rollback failed; closing the connection");
                self.close_on_drop();
            }
        }
    }

    /// Marks the connection to be closed, not pooled, when the session is dropped.
    pub fn close_on_drop(&mut self) {
        match &mut self.conn {
            PooledConn::Postgres(c) => c.close_on_drop(),
            PooledConn::MySql(c) => c.close_on_drop(),
            PooledConn::Sqlite(c) => c.close_on_drop(),
        }
    }

    pub async fn read(&mut self, pk: Pk) -> Result<Counter, DbError> {
        dispatch!(&mut self.conn, read(pk))
    }

    /// The whole counter (post and slots), seeing every write committed before it on any node of a
    /// cluster: the read that proves an experiment.
    pub async fn read_settled(&mut self, pk: Pk) -> Result<Counter, DbError> {
        // Cancelled midway (a timeout), the connection could keep causal reads on: close it then.
        self.settings_changed = true;
        let read = dispatch!(&mut self.conn, read_settled(pk));
        self.settings_changed = read.is_err();
        read
    }

    pub async fn read_for_update(&mut self, pk: Pk, mode: LockMode) -> Result<Counter, DbError> {
        dispatch!(&mut self.conn, read_for_update(pk, mode))
    }

    pub async fn load(&mut self, pk: Pk) -> Result<PostRow, DbError> {
        dispatch!(&mut self.conn, load(pk))
    }

    pub async fn write(&mut self, pk: Pk, like: i64) -> Result<(), DbError> {
        let result = dispatch!(&mut self.conn, write(pk, like));
        self.autocommit_point(result)
    }

    pub async fn write_if_version(&mut self, pk: Pk, like: i64, expected_version: i64) -> Result<bool, DbError> {
        let result = dispatch!(&mut self.conn, write_if_version(pk, like, expected_version));
        self.autocommit_point(result)
    }

    pub async fn delete_if_version(&mut self, pk: Pk, expected_version: i64) -> Result<bool, DbError> {
        let result = dispatch!(&mut self.conn, delete_if_version(pk, expected_version));
        self.autocommit_point(result)
    }

    pub async fn insert_idempotency_key(&mut self, key: &str, fingerprint: &str) -> Result<bool, DbError> {
        dispatch!(&mut self.conn, insert_idempotency_key(key, fingerprint))
    }

    pub async fn save_idempotent_response(&mut self, key: &str, status: u16, body: &str) -> Result<(), DbError> {
        dispatch!(&mut self.conn, save_idempotent_response(key, status, body))
    }

    pub async fn idempotent_response(&mut self, key: &str) -> Result<Option<idempotency::StoredResponse>, DbError> {
        dispatch!(&mut self.conn, idempotent_response(key))
    }

    pub async fn purge_idempotency_keys(&mut self, older_than: Duration, limit: i64) -> Result<u64, DbError> {
        dispatch!(&mut self.conn, purge_idempotency_keys(older_than, limit))
    }

    pub async fn increment(&mut self, pk: Pk) -> Result<i64, DbError> {
        self.increment_by(pk, 1).await
    }

    /// `like = like + by` in one statement (one write: `version` gains 1); returns the new value.
    pub async fn increment_by(&mut self, pk: Pk, by: i64) -> Result<i64, DbError> {
        let result = dispatch!(&mut self.conn, increment_by(pk, by));
        self.autocommit_point(result)
    }

    /// Outside a transaction a write commits by itself: its lost answer leaves the increment in doubt,
    /// as a lost answer to `COMMIT` does. Inside one, the server rolls back what a broken connection
    /// left uncommitted: a known failure.
    fn autocommit_point<T>(&self, result: Result<T, DbError>) -> Result<T, DbError> {
        if self.in_transaction { result } else { result.map_err(DbError::at_commit) }
    }

    pub async fn advisory_lock(&mut self, pk: Pk) -> Result<(), DbError> {
        let timeout = self.lock_timeout;
        // Set before asking: if the request is cancelled midway, the lock may have been granted.
        self.holds_app_lock = true;
        dispatch!(&mut self.conn, advisory_lock(pk, timeout))
    }

    pub async fn advisory_unlock(&mut self, pk: Pk) -> Result<(), DbError> {
        dispatch!(&mut self.conn, advisory_unlock(pk))?;
        self.holds_app_lock = false;
        Ok(())
    }

    pub async fn create_post(&mut self) -> Result<Pk, DbError> {
        dispatch!(&mut self.conn, create_post())
    }

    pub async fn ensure_post(&mut self, pk: Pk) -> Result<(), DbError> {
        dispatch!(&mut self.conn, ensure_post(pk))
    }

    /// Sets post `pk` back to `like = 0, version = 0` and deletes its slots, in one transaction, so
    /// no reader sees the post reset with its old slots still counted (or the other way round).
    pub async fn reset_post(&mut self, pk: Pk) -> Result<(), DbError> {
        self.begin(TxMode::RowLocking(LockMode::Wait)).await?;
        // The post first: a concurrent slot increment (whose foreign-key check reads the post's row)
        // then waits here instead of holding a slot this transaction is about to delete.
        let result = match dispatch!(&mut self.conn, reset_post(pk)) {
            Ok(()) => dispatch!(&mut self.conn, clear_slots(pk)),
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
        let result = dispatch!(&mut self.conn, increment_slot_by(pk, slot, by));
        self.autocommit_point(result)
    }

    /// The post's counter as a reader must see it: `like` is the post's own plus the sum of its slots,
    /// `version` likewise (so writes to slots count as writes to the post).
    pub async fn read_total(&mut self, pk: Pk) -> Result<Counter, DbError> {
        dispatch!(&mut self.conn, read_total(pk))
    }

    pub async fn server_version(&mut self) -> Result<String, DbError> {
        dispatch!(&mut self.conn, server_version())
    }

    /// The server's id of this connection, where it has one (not SQLite).
    pub async fn connection_id(&mut self) -> Result<Option<i64>, DbError> {
        dispatch!(&mut self.conn, connection_id())
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: DatabaseUrl,
    /// Most connections the pool opens. An experiment with N workers needs N of them at once.
    pub max_connections: u32,
    /// How long to wait for a connection (from the pool, or to the server) before giving up.
    pub acquire_timeout: Duration,
    /// Default lock timeout of new sessions.
    pub lock_timeout: Duration,
    /// Apply the embedded migrations on connect (idempotent).
    pub migrate: bool,
    /// Statements run on every new connection, e.g. `SET SESSION innodb_snapshot_isolation = ON`.
    pub init_statements: Vec<String>,
}

impl ConnectOptions {
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            lock_timeout: Self::DEFAULT_LOCK_TIMEOUT,
            migrate: true,
            init_statements: Vec::new(),
        }
    }
}

#[derive(Clone)]
enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// A connection pool to one database, and the entry point of the library.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    lock_timeout: Duration,
    max_connections: u32,
    /// Serialises "take N connections at once" so two experiments cannot each hold half of the pool
    /// and wait for each other forever.
    bulk_acquire: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Database {
    /// Connects (checking that the server answers) and applies the migrations.
    pub async fn connect(options: ConnectOptions) -> Result<Self, ConnectError> {
        let url = options.url.clone();
        let pool = match url.backend() {
            Backend::Postgres => Pool::Postgres(postgres::connect(&options).await?),
            Backend::MySql => Pool::MySql(mysql::connect(&options).await?),
            Backend::Sqlite => Pool::Sqlite(sqlite::connect(&options).await?),
        };
        let db = Self {
            pool,
            url,
            lock_timeout: options.lock_timeout,
            max_connections: options.max_connections,
            bulk_acquire: Default::default(),
        };
        // A Galera node outside the Primary component answers, then refuses every query with 1047:
        // say so, with its state, rather than fail later on a migration. (Errors here are left to the
        // statements that follow.)
        if let Ok(Some(state)) = db.node_state().await
            && !state.accepts_queries()
        {
            return Err(ConnectError::NodeNotReady { url: db.url.redacted(), state });
        }
        if options.migrate {
            db.migrate().await?;
        }
        Ok(db)
    }

    /// Applies the embedded migrations of this backend. Safe to run concurrently and repeatedly: on
    /// Galera, connections to several nodes migrating at once conflict (sqlx's migration lock is
    /// node-local, so each node may start the same migration); the losers retry until they find the
    /// migrations applied.
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        let migrate = |source| ConnectError::Migrate { url: self.url.redacted(), source };
        let mut backoff = SETUP_RETRY.backoff();
        loop {
            let result = match &self.pool {
                Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
                Pool::MySql(p) => mysql::migrate(p, sqlx::migrate!("./migrations/mysql")).await,
                Pool::Sqlite(p) => sqlite::migrate(p, sqlx::migrate!("./migrations/sqlite")).await,
            };
            let conflict = match &result {
                Err(
                    sqlx::migrate::MigrateError::Execute(err) | sqlx::migrate::MigrateError::ExecuteMigration(err, _),
                ) => self.is_setup_conflict(err),
                // A migration marked "not done" in `_sqlx_migrations`: another node's, in progress, or one
                // that lost a conflict after MariaDB's implicit commit had recorded it. Only on a cluster
                // (on one server our migration lock excludes both, and dirty means dirty): the mark is removed
                // and the migration runs again, which our migrations allow (they are idempotent).
                Err(sqlx::migrate::MigrateError::Dirty(version)) => match &self.pool {
                    Pool::MySql(p) if matches!(self.node_state().await, Ok(Some(_))) => {
                        mysql::forget_unfinished_migration(p, *version).await;
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            match backoff.next() {
                Some(sleep) if conflict => tokio::time::sleep(sleep).await,
                _ => return result.map_err(migrate),
            }
        }
    }

    /// A migration that lost to the same migration on another Galera node: a certification conflict
    /// (1213), or the other node's row in `_sqlx_migrations` (1062).
    fn is_setup_conflict(&self, err: &sqlx::Error) -> bool {
        match &self.pool {
            Pool::MySql(_) => mysql::MySql::classify(err) == ErrorKind::Deadlock || mysql::is_duplicate_key(err),
            _ => false,
        }
    }

    /// Where this server stands in a Galera cluster; `None` unless it is a MariaDB node with wsrep on.
    pub async fn node_state(&self) -> Result<Option<NodeState>, DbError> {
        match &self.pool {
            Pool::MySql(p) => mysql::node_state(p).await,
            _ => Ok(None),
        }
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL without its password.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// The pool's size limit.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// One connection from the pool, with the configured lock timeout.
    pub async fn session(&self) -> Result<Session, DbError> {
        let conn = match &self.pool {
            Pool::Postgres(p) => PooledConn::Postgres(p.acquire().await.map_err(db_err::<postgres::Postgres>)?),
            Pool::MySql(p) => PooledConn::MySql(p.acquire().await.map_err(db_err::<mysql::MySql>)?),
            Pool::Sqlite(p) => PooledConn::Sqlite(p.acquire().await.map_err(db_err::<sqlite::Sqlite>)?),
        };
        // The lock timeout was set when the connection was opened (see `after_connect`): no round trip.
        Ok(Session {
            conn,
            in_transaction: false,
            lock_timeout: self.lock_timeout,
            pooled_lock_timeout: self.lock_timeout,
            holds_app_lock: false,
            settings_changed: false,
        })
    }

    /// `n` distinct connections at once, for `n` workers that must run truly in parallel.
    pub async fn sessions(&self, n: usize) -> Result<Vec<Session>, DbError> {
        if n > self.max_connections as usize {
            return Err(DbError::new(
                ErrorKind::PoolTimeout,
                format!("{n} connections requested but the pool holds at most {}", self.max_connections),
            ));
        }
        let _one_at_a_time = self.bulk_acquire.lock().await;
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            sessions.push(self.session_or_refusal().await?);
        }
        Ok(sessions)
    }

    /// A session; if the pool is slow to give one, the server is asked directly whether it refuses new
    /// connections (`max_connections`, a role's or user's limit), which the pool would otherwise retry
    /// in silence until its acquire timeout and report as "pool timed out".
    async fn session_or_refusal(&self) -> Result<Session, DbError> {
        let acquire = self.session();
        tokio::pin!(acquire);
        tokio::select! {
            result = &mut acquire => return result,
            () = tokio::time::sleep(connect::REFUSAL_CHECK_AFTER) => {}
        }
        let refusal = match &self.pool {
            Pool::Postgres(p) => connect::refusal::<postgres::Postgres>(p, postgres::explain).await,
            Pool::MySql(p) => connect::refusal::<mysql::MySql>(p, mysql::explain).await,
            Pool::Sqlite(_) => None,
        };
        match refusal {
            Some(refused) => Err(refused),
            None => acquire.await,
        }
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.session().await?.server_version().await.map(drop)
    }

    /// The server's version string (`SELECT version()`, as the seed's connection check).
    pub async fn server_version(&self) -> Result<String, DbError> {
        self.session().await?.server_version().await
    }

    /// Creates a fresh post with `like = 0` and returns its key.
    pub async fn create_post(&self) -> Result<Pk, DbError> {
        retry_setup(|| async { self.session().await?.create_post().await }).await
    }

    /// Creates post `pk` with `like = 0` unless it exists. Writes only when it is missing, so it does
    /// not wait for a lock someone holds on an existing row (or on a whole SQLite database).
    pub async fn ensure_post(&self, pk: Pk) -> Result<(), DbError> {
        retry_setup(|| async {
            let mut session = self.session().await?;
            match session.read(pk).await {
                Err(err) if err.kind() == ErrorKind::NotFound => session.ensure_post(pk).await,
                other => other.map(drop),
            }
        })
        .await
    }

    /// Sets post `pk` back to `like = 0, version = 0`, creating it if needed.
    pub async fn reset_post(&self, pk: Pk) -> Result<(), DbError> {
        retry_setup(|| async { self.session().await?.reset_post(pk).await }).await
    }

    /// Post `pk`'s whole counter: its own `like` and `version` plus those of its slots.
    pub async fn read_total(&self, pk: Pk) -> Result<Counter, DbError> {
        self.session().await?.read_total(pk).await
    }

    /// Reads post `pk`.
    pub async fn load_post(&self, pk: Pk) -> Result<PostRow, DbError> {
        self.session().await?.load(pk).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// The retry of setup statements (creating or resetting a post, migrations). On Galera, nodes that
/// create the same row at once certify as a deadlock (1213) though nothing is wrong: the loser runs
/// again, a few times, briefly. Lock timeouts are not retried here: a held row stays the caller's to see.
const SETUP_RETRY: crate::RetryPolicy = crate::RetryPolicy {
    max_attempts: 20,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(200),
    deadline: Duration::from_secs(10),
};

/// Runs a setup statement under [`SETUP_RETRY`], retrying deadlocks (1213, 40P01) only.
async fn retry_setup<T, F, Fut>(mut statement: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut backoff = SETUP_RETRY.backoff();
    loop {
        match statement().await {
            Err(err) if err.kind() == ErrorKind::Deadlock => match backoff.next() {
                Some(sleep) => tokio::time::sleep(sleep).await,
                None => return Err(err),
            },
            other => return other,
        }
    }
}

/// Under contention, statements wait for locks by design: sqlx's "slow statement" warnings would flood
/// the log with the very waits an experiment measures. They go to debug level.
fn quiet_lock_waits<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
}

/// A future that borrows the connection it runs on.
type ConnFuture<'c> = std::pin::Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// The shape of sqlx's `after_connect` hook.
trait AfterConnect<DB: sqlx::Database>:
    for<'c> Fn(&'c mut DB::Connection, sqlx::pool::PoolConnectionMetadata) -> ConnFuture<'c> + Send + Sync + 'static
{
}

impl<DB: sqlx::Database, F> AfterConnect<DB> for F where
    F: for<'c> Fn(&'c mut DB::Connection, sqlx::pool::PoolConnectionMetadata) -> ConnFuture<'c> + Send + Sync + 'static
{
}

/// The `after_connect` hook: sets the default lock timeout once per connection, then runs the
/// configured init statements.
fn prepare_connection<D: Dialect>(options: &ConnectOptions) -> impl AfterConnect<D::Db>
where
    for<'c> &'c mut Conn<D::Db>: sqlx::Executor<'c, Database = D::Db>,
{
    let statements = std::sync::Arc::new(options.init_statements.clone());
    let lock_timeout = options.lock_timeout;
    move |conn, _meta| {
        let statements = statements.clone();
        Box::pin(async move {
            D::set_lock_timeout(conn, lock_timeout).await.map_err(DbError::into_driver_error)?;
            for sql in statements.iter() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *conn).await?;
            }
            Ok(())
        })
    }
}

/// PostgreSQL (55P03) and MariaDB (1205) report a failed NOWAIT with the code of a lock timeout: only
/// the locking read knows it asked for NOWAIT.
pub(crate) fn relabel_for_lock_mode(err: DbError, mode: LockMode) -> DbError {
    match (err.kind(), mode) {
        (ErrorKind::LockTimeout, LockMode::NoWait) => err.with_kind(ErrorKind::LockNotAvailable),
        _ => err,
    }
}

/// The result of a locking read. No row under SKIP LOCKED means the row is locked (skipped) or does
/// not exist; only a plain read tells which.
pub(crate) async fn locked_row<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    row: Option<(i64, i64)>,
    mode: LockMode,
) -> Result<Counter, DbError> {
    match (row, mode) {
        (None, LockMode::SkipLocked) => {
            D::read(c, pk).await?;
            Err(DbError::new(ErrorKind::RowSkipped, format!("post {pk} is locked by another transaction; skipped")))
        }
        (row, _) => read_counter(row, pk),
    }
}

/// `like, version` from a row that may be missing.
pub(crate) fn read_counter(row: Option<(i64, i64)>, pk: Pk) -> Result<Counter, DbError> {
    row.map(|(like, version)| Counter { like, version }).ok_or_else(|| not_found(pk))
}

/// A slot refused by its foreign key belongs to a post that does not exist.
pub(crate) fn slot_error<D: Dialect>(err: sqlx::Error, pk: Pk) -> DbError {
    match &err {
        sqlx::Error::Database(e) if e.is_foreign_key_violation() => not_found(pk),
        _ => db_err::<D>(err),
    }
}

/// The error for a post that does not exist.
pub(crate) fn not_found(pk: Pk) -> DbError {
    DbError::new(ErrorKind::NotFound, format!("post {pk} does not exist"))
}

/// Classifies a driver error of `backend` exactly as a session would: for code that runs SQL of its
/// own on raw connections (the anomaly suite) and must not keep a second copy of the code tables.
pub(crate) fn classify(backend: Backend, err: &sqlx::Error) -> ErrorKind {
    match backend {
        Backend::Postgres => <postgres::Postgres as Dialect>::classify(err),
        Backend::MySql => <mysql::MySql as Dialect>::classify(err),
        Backend::Sqlite => <sqlite::Sqlite as Dialect>::classify(err),
    }
}
