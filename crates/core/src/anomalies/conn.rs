//! Raw connections for the anomaly schedules, and the database's own view of who waits for a lock.
//!
//! The pool and [`crate::Session`] are not used: a schedule needs connections that it owns outright
//! (each one is moved into the task that runs its step), with session settings of its own (SQLite's
//! busy timeout 0, so a lock conflict is an error and not a wait).

use std::str::FromStr;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Row};

use crate::db::DatabaseUrl;
use crate::{Backend, ErrorKind};

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
                // Busy timeout 0: a conflicting lock is reported at once, as SQLITE_BUSY.
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::ZERO);
                Conn::Sqlite(sqlx::SqliteConnection::connect_with(&options).await?)
            }
        };
        let seconds = lock_timeout.as_secs().max(1);
        let setting = match conn {
            Conn::Postgres(_) => Some(format!("SET lock_timeout = '{}ms'", lock_timeout.as_millis().max(1))),
            Conn::MySql(_) => Some(format!("SET SESSION innodb_lock_wait_timeout = {seconds}")),
            Conn::Sqlite(_) => None,
        };
        if let Some(sql) = setting {
            conn.run(&sql).await?;
        }
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
        let sql = match self {
            Conn::Postgres(_) => "SELECT pg_backend_pid()::bigint, 0::bigint",
            Conn::MySql(_) => "SELECT CAST(CONNECTION_ID() AS SIGNED), 0",
            Conn::Sqlite(_) => return Ok(None),
        };
        Ok(self.run(sql).await?.first().map(|(id, _)| *id))
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

    /// Whether connection `id` is waiting for a lock while running the step marked `marker`, as the
    /// database itself reports it. PostgreSQL's `pg_locks` is live. InnoDB's lock tables are a cache
    /// refreshed at most every 0.1 s (see [`LOCK_VIEW_STALENESS`]), so the statement text is matched
    /// too: a stale row of the same connection's previous step cannot pass for this one. SQLite never
    /// waits (busy timeout 0).
    pub(crate) async fn is_waiting(&mut self, id: i64, marker: &str) -> Result<bool, sqlx::Error> {
        let sql = match self {
            Conn::Postgres(_) => format!("SELECT COUNT(*), 0::bigint FROM pg_locks WHERE pid = {id} AND NOT granted"),
            Conn::MySql(_) => format!(
                "SELECT COUNT(*), 0 FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = {id} \
                 AND trx_state = 'LOCK WAIT' AND trx_query LIKE '%{marker}%'"
            ),
            Conn::Sqlite(_) => return Ok(false),
        };
        Ok(self.run(&sql).await?.first().is_some_and(|(n, _)| *n > 0))
    }

    pub(crate) async fn close(self) {
        let _ = match self {
            Conn::Postgres(c) => c.close().await,
            Conn::MySql(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }
}

/// How old a reading of a lock view may be. InnoDB refreshes `information_schema.innodb_trx` and
/// `innodb_lock_waits` at most every 0.1 s (`trx_i_s_cache`); a reading taken longer than that after
/// a lock was released reflects the release. PostgreSQL's `pg_locks` is read live.
pub(crate) fn lock_view_staleness(backend: Backend) -> Duration {
    match backend {
        Backend::MySql => Duration::from_millis(150),
        Backend::Postgres | Backend::Sqlite => Duration::ZERO,
    }
}

/// Classifies a driver error as every racelab session does.
pub(crate) fn kind_of(backend: Backend, err: &sqlx::Error) -> ErrorKind {
    crate::db::classify(backend, err)
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
