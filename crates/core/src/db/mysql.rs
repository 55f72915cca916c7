//! MariaDB and MySQL: what their SQL has of its own, their rendering of the shared statements
//! ([`SQL`]), the meaning of their error numbers, Galera's node state and migrations under a lock.
//!
//! What differs from PostgreSQL, and is handled here rather than papered over:
//! - no `UPDATE ... RETURNING`: the atomic increment returns its value through `LAST_INSERT_ID(expr)`;
//! - MariaDB reports a failed `NOWAIT` as 1205, the code of a lock wait timeout (MySQL 8 uses 3572);
//! - 1213 is both a deadlock and a Galera certification conflict, at any statement including COMMIT;
//! - `rows_affected()` counts matched rows (sqlx sets CLIENT_FOUND_ROWS), which is what a version check
//!   needs: every write bumps `version`, so matched and changed are the same here;
//! - application locks (`GET_LOCK`) belong to the session, not the transaction: they must be released.
//!
//! Must never leave a session setting changed (`wsrep_sync_wait`) or an application lock held on a
//! connection that goes back to the pool: [`super::Session`] closes it instead when in doubt.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Serialize;
use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySqlConnection};

use super::connect::{self, ConnectError, Refusal};
use super::dialect::Returned;
use super::driver::{Arg, Driver};
use super::sql::{Placeholder, Returning, Sql, Statements, Upsert};
use super::statement::Statement;
use super::{ConnectOptions, Counter, Dialect, Isolation, LockMode, Pk, TxMode, db_err};
use crate::error::{DbError, ErrorKind};

/// Marker for the MariaDB/MySQL dialect.
pub(crate) struct MySql;

pub(super) async fn connect(options: &ConnectOptions) -> Result<MySqlPool, ConnectError> {
    let connect = MySqlConnectOptions::from_str(options.url.expose()).map_err(|e| {
        let reason = super::redact(&e.to_string());
        ConnectError::Url(super::UrlError::Malformed { url: options.url.redacted(), reason })
    })?;
    let connect = super::quiet_lock_waits(connect);
    connect::probe::<MySql>(&connect, options, explain).await?;
    Ok(MySqlPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(super::prepare_connection::<MySql>(options))
        .test_before_acquire(false)
        .before_acquire(super::pool::ping_if_idle::<<MySql as Dialect>::Db>)
        .connect_lazy_with(connect))
}

/// What a refused connection means, by error number, and the server's message.
pub(super) fn explain(err: &dyn DatabaseError) -> (Refusal, String) {
    let number = err.try_downcast_ref::<MySqlDatabaseError>().map(MySqlDatabaseError::number);
    let refusal = match number {
        Some(1044 | 1045 | 1698) => Refusal::AccessDenied,
        Some(1049) => Refusal::NoSuchDatabase { create_with: None },
        // Too many connections; a user's max_user_connections (1203) or MAX_USER_CONNECTIONS (1226).
        Some(1040 | 1203 | 1226) => Refusal::TooManyConnections,
        _ => Refusal::Other,
    };
    let code = number.map_or_else(|| err.code().unwrap_or_default().into_owned(), |n| n.to_string());
    (refusal, connect::server_message(err, "error", &code))
}

/// Where a MariaDB Galera node stands, from its `wsrep_*` status variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeState {
    /// `wsrep_ready`: the node accepts queries (otherwise they fail with 1047).
    pub ready: bool,
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    /// `wsrep_local_state_comment`: `Synced`, `Donor/Desynced`, `Joining`, `Joined`, `Initialized`, ...
    pub local_state: String,
    /// `wsrep_cluster_size`: the nodes of the component this node is in.
    pub cluster_size: u32,
}

impl NodeState {
    /// Ready and in the Primary component: statements run (though the node may lag behind).
    pub fn accepts_queries(&self) -> bool {
        self.ready && self.cluster_status == "Primary"
    }

    /// Accepts queries and has applied what the cluster has: what a load balancer should send work to.
    pub fn is_serving(&self) -> bool {
        self.accepts_queries() && self.local_state == "Synced"
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = if self.ready { "ON" } else { "OFF" };
        write!(
            f,
            "{} in a {} component of {} node(s), wsrep_ready {ready}",
            self.local_state, self.cluster_status, self.cluster_size
        )
    }
}

/// The node's Galera state, or `None` where wsrep is off (a standalone server, MySQL). Only SHOW
/// statements: they answer even on a node that refuses every query with 1047.
pub(super) async fn node_state(conn: &mut MySqlConnection) -> Result<Option<NodeState>, DbError> {
    let wsrep_on: Option<(String, String)> = sqlx::query_as("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err::<MySql>)?;
    if !wsrep_on.is_some_and(|(_, value)| value.eq_ignore_ascii_case("ON")) {
        return Ok(None);
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN
         ('wsrep_ready', 'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_cluster_size')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err::<MySql>)?;
    let value = |name: &str| {
        rows.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    Ok(Some(NodeState {
        ready: value("wsrep_ready").eq_ignore_ascii_case("ON"),
        cluster_status: value("wsrep_cluster_status"),
        local_state: value("wsrep_local_state_comment"),
        cluster_size: value("wsrep_cluster_size").parse().unwrap_or(0),
    }))
}

/// Removes the "not done" mark of migration `version`, so that it runs again. Waits first: the mark
/// may be another node's migration in progress, about to finish. The delete itself may lose a
/// conflict with that node (1213): the next attempt then finds the migration applied, or the mark again.
pub(super) async fn forget_unfinished_migration(pool: &MySqlPool, version: i64) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Err(err) = sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ? AND success = FALSE")
        .bind(version)
        .execute(pool)
        .await
    {
        tracing::debug!(%err, version, "could not remove an unfinished migration's mark; trying again");
    }
}

/// 1062: a duplicate key.
pub(super) fn is_duplicate_key(err: &sqlx::Error) -> bool {
    error_number(err) == Some(1062)
}

fn error_number(err: &sqlx::Error) -> Option<u16> {
    err.as_database_error()?.try_downcast_ref::<MySqlDatabaseError>().map(MySqlDatabaseError::number)
}

/// Applies the migrations under an application lock of our own. sqlx's MySQL migrator locks with
/// `GET_LOCK(name, -1)`, which MariaDB answers with NULL (a negative timeout is not "forever" there):
/// no lock at all, so two processes starting together saw each other's half-applied migration
/// ("migration 1 is partially applied").
pub(super) async fn migrate(pool: &MySqlPool, mut migrator: sqlx::migrate::Migrator) -> Result<(), MigrateError> {
    const WAIT_SECONDS: i64 = 60;
    let mut conn = pool.acquire().await?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(CONCAT('racelab:migrate:', DATABASE()), ?)")
        .bind(WAIT_SECONDS)
        .fetch_one(&mut *conn)
        .await?;
    if locked != Some(1) {
        return Err(MigrateError::Execute(sqlx::Error::Protocol(format!(
            "another process held the migration lock for {WAIT_SECONDS} s"
        ))));
    }
    let applied = migrator.set_locking(false).run_direct(None, &mut *conn, false).await;
    let released = sqlx::query("SELECT RELEASE_LOCK(CONCAT('racelab:migrate:', DATABASE()))").execute(&mut *conn).await;
    if released.is_err() {
        // The lock belongs to the session: closing the connection releases it.
        conn.close_on_drop();
    }
    applied
}

/// MariaDB/MySQL's SQL: `?` parameters, backquotes, `ON DUPLICATE KEY UPDATE`, values handed back
/// through `LAST_INSERT_ID(expr)`, and SUM of BIGINT (a DECIMAL) cast back.
const SQL: Sql = Sql {
    placeholder: Placeholder::Question,
    like: "`like`",
    now: "CURRENT_TIMESTAMP(6)",
    upsert: Upsert::OnDuplicateKey,
    returning: Returning::LastInsertId,
    bigint: ("CAST(", " AS SIGNED)"),
    duplicate_aborts_transaction: false,
    overflow_raises: true,
    row_locks: true,
    ident_quote: '`',
};

impl Dialect for MySql {
    type Db = sqlx::MySql;

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements::new(&SQL));
        &STATEMENTS
    }

    fn sql() -> &'static Sql {
        &SQL
    }

    const SLOT: usize = 1;

    fn is_check_violation(err: &sqlx::Error) -> bool {
        // MariaDB's ER_CONSTRAINT_FAILED, MySQL 8's ER_CHECK_CONSTRAINT_VIOLATED.
        matches!(error_number(err), Some(4025 | 3819))
    }

    async fn returned(c: &mut MySqlConnection, sql: &'static str, args: &[Arg<'_>]) -> Returned {
        // LAST_INSERT_ID(expr) stores the new value in the session, and the OK packet carries it back:
        // the new value without a second statement.
        let done = sqlx::MySql::execute(c, sql, args).await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let value = i64::try_from(done.last_insert_id());
        Ok(Some(value.map_err(|_| DbError::new(ErrorKind::Other, "counter out of range"))))
    }

    fn classify_database_error(err: &sqlx::Error) -> ErrorKind {
        match error_number(err) {
            Some(1213) => ErrorKind::Deadlock,
            Some(1205) => ErrorKind::LockTimeout,
            Some(3572) => ErrorKind::LockNotAvailable,
            // innodb_snapshot_isolation=ON: "Record has changed since last read".
            Some(1020) => ErrorKind::SerializationFailure,
            // "BIGINT value is out of range": a sum (`version + 1`) past 2^63 - 1.
            Some(1690) => ErrorKind::CounterOverflow,
            // Too many connections, for the server or for the user.
            Some(1040 | 1203 | 1226) => ErrorKind::PoolTimeout,
            // Server shutdown, connection killed, gone away / lost (client codes, as other drivers
            // report them), Galera node not ready.
            Some(1053 | 1927 | 2006 | 2013 | 1047 | 4031) => ErrorKind::ConnectionLost,
            _ => ErrorKind::Other,
        }
    }

    async fn begin(c: &mut MySqlConnection, mode: TxMode, _lock_timeout: Duration) -> Result<bool, DbError> {
        if mode == TxMode::Serializable {
            // Applies to the next transaction only.
            c.execute(sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")).await.map_err(db_err::<MySql>)?;
        }
        c.execute(sqlx::raw_sql("BEGIN")).await.map_err(db_err::<MySql>)?;
        Ok(true)
    }

    async fn begin_at(
        c: &mut MySqlConnection,
        level: Isolation,
        _lock: Option<LockMode>,
        _lock_timeout: Duration,
    ) -> Result<bool, DbError> {
        // Applies to the next transaction only.
        let set = match level {
            Isolation::ReadUncommitted => "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
            Isolation::ReadCommitted => "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        };
        c.execute(sqlx::raw_sql(set)).await.map_err(db_err::<MySql>)?;
        c.execute(sqlx::raw_sql("BEGIN")).await.map_err(db_err::<MySql>)?;
        Ok(true)
    }

    async fn insert_id(c: &mut MySqlConnection, stmt: &'static Statement, args: &[Arg<'_>]) -> Result<i64, DbError> {
        let done = sqlx::MySql::execute(c, stmt.text_for::<MySql>(), args).await.map_err(db_err::<MySql>)?;
        i64::try_from(done.last_insert_id()).map_err(|_| DbError::new(ErrorKind::Other, "row key out of range"))
    }

    async fn insert_ids(
        c: &mut MySqlConnection,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        count: usize,
    ) -> Result<Vec<i64>, DbError> {
        // One row at a time: MySQL has no `RETURNING`, and the keys of one multi-row insert are not
        // consecutive on Galera (each node hands out every third one), so LAST_INSERT_ID() alone
        // cannot name them.
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            keys.push(Self::insert_id(c, stmt, args).await?);
        }
        Ok(keys)
    }

    async fn fetch_all_settled(
        c: &mut MySqlConnection,
        stmt: &'static Statement,
        args: &[Arg<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<i64>>, DbError> {
        // As `read_settled`: on Galera, wait for this node to have applied every certified write set.
        let galera = match c.execute(sqlx::raw_sql("SET SESSION wsrep_sync_wait = 1")).await {
            Ok(_) => true,
            Err(err) if error_number(&err) == Some(1193) => false,
            Err(err) => return Err(db_err::<MySql>(err)),
        };
        let rows = super::common::fetch_all_ints::<MySql>(c, stmt, args, columns).await;
        if galera {
            c.execute(sqlx::raw_sql("SET SESSION wsrep_sync_wait = 0")).await.map_err(db_err::<MySql>)?;
        }
        rows
    }

    async fn set_lock_timeout(c: &mut MySqlConnection, timeout: Duration) -> Result<(), DbError> {
        // InnoDB counts whole seconds; round up so a timeout is never shorter than asked.
        let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        sqlx::query("SET SESSION innodb_lock_wait_timeout = ?")
            .bind(seconds.max(1))
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<MySql>)
    }

    async fn read_settled(c: &mut MySqlConnection, pk: Pk) -> Result<Counter, DbError> {
        // Galera reads are node-local: a node may answer before it has applied write sets the
        // cluster already certified, and so miss a committed write (MariaDB's MDEV-38999). Wait
        // until this node has applied every write set certified before the read. MySQL has no such
        // variable (1193): nothing to wait for.
        let galera = match c.execute(sqlx::raw_sql("SET SESSION wsrep_sync_wait = 1")).await {
            Ok(_) => true,
            Err(err) if error_number(&err) == Some(1193) => false,
            Err(err) => return Err(db_err::<MySql>(err)),
        };
        let read = Self::read_total(c, pk).await;
        if galera {
            c.execute(sqlx::raw_sql("SET SESSION wsrep_sync_wait = 0")).await.map_err(db_err::<MySql>)?;
        }
        read
    }

    async fn purge_idempotency_keys(c: &mut MySqlConnection, older_than: Duration, limit: i64) -> Result<u64, DbError> {
        let micros = i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX);
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at <= CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND LIMIT ?",
        )
        .bind(micros)
        .bind(limit)
        .execute(&mut *c)
        .await
        .map(|done| done.rows_affected())
        .map_err(db_err::<MySql>)
    }

    async fn advisory_lock(c: &mut MySqlConnection, pk: Pk, timeout: Duration) -> Result<(), DbError> {
        // GET_LOCK names are server-wide: the database's name (hashed, to stay within the 64
        // characters a name may have) keeps two databases on one server from sharing locks.
        let acquired: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK(CONCAT('racelab:', LEFT(MD5(DATABASE()), 16), ':posts:', ?), ?)")
                .bind(pk)
                .bind(timeout.as_secs_f64())
                .fetch_one(&mut *c)
                .await
                .map_err(db_err::<MySql>)?;
        match acquired {
            Some(1) => Ok(()),
            Some(_) => Err(DbError::new(
                ErrorKind::LockTimeout,
                format!("application lock for post {pk} not acquired within {timeout:?}"),
            )),
            None => Err(DbError::new(ErrorKind::Other, format!("GET_LOCK for post {pk} failed"))),
        }
    }

    async fn advisory_unlock(c: &mut MySqlConnection, pk: Pk) -> Result<(), DbError> {
        sqlx::query("SELECT RELEASE_LOCK(CONCAT('racelab:', LEFT(MD5(DATABASE()), 16), ':posts:', ?))")
            .bind(pk)
            .execute(&mut *c)
            .await
            .map(drop)
            .map_err(db_err::<MySql>)
    }

    async fn create_post(c: &mut MySqlConnection) -> Result<Pk, DbError> {
        let done = sqlx::query("INSERT INTO posts () VALUES ()").execute(&mut *c).await.map_err(db_err::<MySql>)?;
        i64::try_from(done.last_insert_id()).map_err(|_| DbError::new(ErrorKind::Other, "post key out of range"))
    }

    async fn connection_id(c: &mut MySqlConnection) -> Result<Option<i64>, DbError> {
        sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
            .fetch_one(&mut *c)
            .await
            .map(Some)
            .map_err(db_err::<MySql>)
    }

    async fn server_version(c: &mut MySqlConnection) -> Result<String, DbError> {
        sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut *c).await.map_err(db_err::<MySql>)
    }
}
