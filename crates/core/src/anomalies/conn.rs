//! Raw connections for the anomaly schedules, and the database's own view of who waits for a lock.
//!
//! The pool and [`crate::Session`] are not used: a schedule needs connections that it owns outright
//! (each one is moved into the task that runs its step), with session settings of its own (SQLite's
//! busy timeout 0, so a lock conflict is an error and not a wait). What a session does too (the lock
//! timeout, the connection's id, the classification of errors) is the dialect's own code, called on
//! these connections: never a second copy of it here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Row};

use crate::db::innodb::innodb_status_shows_lock_wait;
use crate::db::{DatabaseUrl, Dialect, MySqlDialect, PostgresDialect};
use crate::{Backend, DbError};

/// The rows `(id, value)` a step returned (empty for statements that return none).
pub(crate) type Rows = Vec<(i64, i64)>;

/// One connection of one transaction of a schedule.
pub(crate) enum Conn {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Conn {
    /// Opens a connection; `lock_timeout` bounds every lock wait on the server, so a schedule that
    /// goes wrong ends in an error rather than a hang. `causal`: on a Galera node, every statement
    /// first waits until the node has applied what the cluster committed before it
    /// (`wsrep_sync_wait = 7`: reads, updates and deletes, inserts), so a transaction on one node
    /// starts from the rows another node wrote, and a conflict surfaces at a fixed step.
    pub(crate) async fn open(url: &DatabaseUrl, lock_timeout: Duration, causal: bool) -> Result<Self, sqlx::Error> {
        let mut conn = match url.backend() {
            Backend::Postgres => Conn::Postgres(sqlx::PgConnection::connect(url.expose()).await?),
            Backend::MySql => {
                let options = sqlx::mysql::MySqlConnectOptions::from_str(url.expose())?;
                Conn::MySql(sqlx::MySqlConnection::connect_with(&options).await?)
            }
            Backend::Sqlite => {
                // WAL, as racelab's own connections use: readers see a snapshot beside one writer.
                // Opening waits up to the lock timeout (switching a file to WAL needs it to itself,
                // and another client may be reading it); then busy timeout 0, so that in the
                // schedules a conflicting lock is reported at once, as SQLITE_BUSY.
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(lock_timeout);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
                sqlx::raw_sql("PRAGMA busy_timeout = 0").execute(&mut conn).await?;
                Conn::Sqlite(conn)
            }
        };
        // The lock timeout as every racelab session sets it. Not on SQLite: its busy timeout stays 0.
        let set = match &mut conn {
            Conn::Postgres(c) => PostgresDialect::set_lock_timeout(c, lock_timeout).await,
            Conn::MySql(c) => MySqlDialect::set_lock_timeout(c, lock_timeout).await,
            Conn::Sqlite(_) => Ok(()),
        };
        set.map_err(DbError::into_driver_error)?;
        if causal && matches!(conn, Conn::MySql(_)) {
            conn.run("SET SESSION wsrep_sync_wait = 7").await?;
        }
        Ok(conn)
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Conn::Postgres(_) => Backend::Postgres,
            Conn::MySql(_) => Backend::MySql,
            Conn::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Runs `sql` (one or several statements, text protocol) and returns the `(id, value)` rows.
    pub(crate) async fn run(&mut self, sql: &str) -> Result<Rows, sqlx::Error> {
        let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        match self {
            Conn::Postgres(c) => pairs(sql.fetch_all(c).await?),
            Conn::MySql(c) => pairs(sql.fetch_all(c).await?),
            Conn::Sqlite(c) => pairs(sql.fetch_all(c).await?),
        }
    }

    /// The server's id of this connection (PostgreSQL backend pid, MariaDB connection id).
    pub(crate) async fn server_id(&mut self) -> Result<Option<i64>, sqlx::Error> {
        let id = match self {
            Conn::Postgres(c) => PostgresDialect::connection_id(c).await,
            Conn::MySql(c) => MySqlDialect::connection_id(c).await,
            Conn::Sqlite(_) => Ok(None),
        };
        id.map_err(DbError::into_driver_error)
    }

    /// The server's name and version without the packager's suffix: "PostgreSQL 15.20",
    /// "MariaDB 10.11.19", "SQLite 3.46.0".
    pub(crate) async fn version(&mut self) -> Result<String, sqlx::Error> {
        let sql = sqlx::raw_sql(match self {
            Conn::Postgres(_) => "SELECT 'PostgreSQL ' || split_part(current_setting('server_version'), ' ', 1)",
            Conn::MySql(_) => {
                "SELECT CONCAT(IF(VERSION() LIKE '%MariaDB%', 'MariaDB ', 'MySQL '), SUBSTRING_INDEX(VERSION(), '-', 1))"
            }
            Conn::Sqlite(_) => "SELECT 'SQLite ' || sqlite_version()",
        });
        let row = match self {
            Conn::Postgres(c) => sql.fetch_one(c).await?.try_get(0)?,
            Conn::MySql(c) => sql.fetch_one(c).await?.try_get(0)?,
            Conn::Sqlite(c) => sql.fetch_one(c).await?.try_get(0)?,
        };
        Ok(row)
    }

    /// The seqno of the last write set this Galera node committed or applied (`wsrep_last_committed`).
    pub(crate) async fn last_committed(&mut self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT CAST(VARIABLE_VALUE AS SIGNED), 0 FROM information_schema.global_status \
                   WHERE VARIABLE_NAME = 'WSREP_LAST_COMMITTED'";
        Ok(self.run(sql).await?.first().map_or(-1, |(seqno, _)| *seqno))
    }

    /// Whether connection `id` is waiting for a lock, as the database itself reports it, live.
    /// PostgreSQL: `pg_locks`. InnoDB: the monitor of `SHOW ENGINE INNODB STATUS`, printed afresh on
    /// every call. (Not `information_schema.innodb_trx`: that is a cache InnoDB refreshes only after
    /// 0.1 s without any reader on the whole server, so a runner that polls it, or two runs on one
    /// server, keep it frozen and a lock wait goes unseen until the lock timeout.) SQLite never waits
    /// (busy timeout 0).
    pub(crate) async fn is_waiting(&mut self, id: i64) -> Result<bool, sqlx::Error> {
        match self {
            Conn::Postgres(_) => {
                let sql = format!("SELECT COUNT(*), 0::bigint FROM pg_locks WHERE pid = {id} AND NOT granted");
                Ok(self.run(&sql).await?.first().is_some_and(|(n, _)| *n > 0))
            }
            Conn::MySql(c) => {
                let status: String =
                    sqlx::raw_sql("SHOW ENGINE INNODB STATUS").fetch_one(&mut *c).await?.try_get("Status")?;
                Ok(innodb_status_shows_lock_wait(&status, id))
            }
            Conn::Sqlite(_) => Ok(false),
        }
    }

    pub(crate) async fn close(self) {
        let _ = match self {
            Conn::Postgres(c) => c.close().await,
            Conn::MySql(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }
}

/// `(id, value)` from rows of two integer columns; rows of any other shape are not ours to read
/// (statements such as `SET` or `BEGIN` return none).
fn pairs<R: Row>(rows: Vec<R>) -> Result<Rows, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter().filter(|row| row.len() == 2).map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}
