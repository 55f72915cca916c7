//! The suite's own connection to the database (the cases' sessions are the spec runner's): it holds
//! the suite's lock ([`super::exclusive`]), reads the server's version, probes a level, and drops a
//! table a killed run left behind.
//!
//! The pool and [`crate::Session`] are not used: the suite lock is a session's, held on a connection
//! the suite owns outright. The lock timeout is the dialect's own code, called on it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Row};

use super::outcome::Rows;
use crate::db::{DatabaseUrl, Dialect, MySqlDialect, PostgresDialect};
use crate::{Backend, DbError};

/// The suite's connection.
pub(crate) enum Conn {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Conn {
    /// Opens a connection; `lock_timeout` bounds its lock waits (a DROP TABLE behind another
    /// client's transaction ends in an error rather than a hang).
    pub(crate) async fn open(url: &DatabaseUrl, lock_timeout: Duration) -> Result<Self, sqlx::Error> {
        let mut conn = match url.backend() {
            Backend::Postgres => Conn::Postgres(sqlx::PgConnection::connect(url.expose()).await?),
            Backend::MySql => {
                let options = sqlx::mysql::MySqlConnectOptions::from_str(url.expose())?;
                Conn::MySql(sqlx::MySqlConnection::connect_with(&options).await?)
            }
            Backend::Sqlite => {
                // WAL, as racelab's own connections use (and the spec runner's): readers see a
                // snapshot beside one writer. Opening waits up to the lock timeout (switching a file
                // to WAL needs it to itself, and another client may be reading it).
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(lock_timeout);
                Conn::Sqlite(sqlx::SqliteConnection::connect_with(&options).await?)
            }
        };
        // The lock timeout as every racelab session sets it (SQLite's is the busy timeout above).
        let set = match &mut conn {
            Conn::Postgres(c) => PostgresDialect::set_lock_timeout(c, lock_timeout).await,
            Conn::MySql(c) => MySqlDialect::set_lock_timeout(c, lock_timeout).await,
            Conn::Sqlite(_) => Ok(()),
        };
        set.map_err(DbError::into_driver_error)?;
        Ok(conn)
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
