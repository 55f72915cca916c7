//! SQLite, for the spec runner: each session its own connection to the file (WAL, as racelab's own
//! connections use), with a busy timeout of 0, so a lock another session holds is answered at once
//! with `SQLITE_BUSY` rather than waited for behind the runner's back.
//!
//! That answer is how the database says a session is blocked: the step is reported waiting, and
//! sent again (from the statement refused) each time the runner looks at it, until it goes through
//! once the holder moved on, and is reported `<... completed>`. Only the plain `SQLITE_BUSY` (5) is
//! a wait: `SQLITE_BUSY_SNAPSHOT` (517, a write from a stale snapshot) can never go through, and is
//! the step's error. There is no server to ask and nothing to cancel: a step refused busy past the
//! step timeout is no longer sent again, and its busy error is its answer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow};
use sqlx::{Connection, Decode, Row, Sqlite, SqliteConnection, TypeInfo, ValueRef};

use super::backend::{SpecBackend, StepAnswer};
use super::exec::{self, Text};
use super::report::{Answer, StepError};
use super::split::statements;
use crate::Backend;
use crate::db::DatabaseUrl;

/// SQLite's sessions.
pub(crate) struct SqliteFile;

const TEXT: Text<Sqlite> = Text { value, error: step_error };

/// How long opening a connection may wait for the file (switching it to WAL needs it alone).
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// SQLite's primary result code for "another connection holds the lock" (not its extended codes).
const SQLITE_BUSY: &str = "5";

impl SpecBackend for SqliteFile {
    type Conn = SqliteConnection;

    async fn connect(url: &DatabaseUrl, _name: &str) -> Result<SqliteConnection, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(OPEN_WAIT);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::raw_sql("PRAGMA busy_timeout = 0").execute(&mut conn).await?;
        Ok(conn)
    }

    async fn session_id(_conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
        Ok(0)
    }

    async fn execute(conn: &mut SqliteConnection, sql: &str, last_only: bool) -> Answer {
        exec::execute(conn, sql, last_only, &TEXT).await
    }

    /// One statement at a time, so that a statement refused busy is known, and the step sent again
    /// from it (the statements before it are not run twice).
    async fn execute_step(conn: &mut SqliteConnection, sql: &str) -> StepAnswer {
        let parts = statements(sql);
        let mut answer = Answer::default();
        for (i, statement) in parts.iter().enumerate() {
            let one = exec::execute(conn, statement, false, &TEXT).await;
            answer.tables.extend(one.tables);
            if let Some(error) = one.error {
                let busy = error.code.as_deref() == Some(SQLITE_BUSY);
                answer.error = Some(error);
                let blocked_rest = busy.then(|| format!("{};", parts[i..].join("; ")));
                return StepAnswer { answer, blocked_rest };
            }
        }
        StepAnswer { answer, blocked_rest: None }
    }

    /// SQLite never waits (busy timeout 0): a lock it cannot have is a busy answer.
    async fn is_blocked(_control: &mut SqliteConnection, _id: i64, _ids: &[i64]) -> Result<bool, sqlx::Error> {
        Ok(false)
    }

    async fn cancel(_control: &mut SqliteConnection, _id: i64) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn step_error(err: &sqlx::Error) -> StepError {
        step_error(err)
    }

    async fn close(conn: SqliteConnection) {
        let _ = conn.close().await;
    }
}

/// A value as text: integers and reals as SQLite prints them in a result, text as it is, a blob as
/// `\x` and hex digits (as PostgreSQL prints a bytea).
fn value(row: &SqliteRow, i: usize) -> Option<String> {
    let value = row.try_get_raw(i).ok()?;
    if value.is_null() {
        return None;
    }
    match value.type_info().name() {
        "INTEGER" => <i64 as Decode<Sqlite>>::decode(value).ok().map(|v| v.to_string()),
        "REAL" => <f64 as Decode<Sqlite>>::decode(value).ok().map(|v| v.to_string()),
        "BLOB" => <Vec<u8> as Decode<Sqlite>>::decode(value)
            .ok()
            .map(|bytes| format!("\\x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())),
        _ => <String as Decode<Sqlite>>::decode(value).ok(),
    }
}

/// The message, SQLite's (extended) result code, and racelab's kind (busy for 5 and 517).
fn step_error(err: &sqlx::Error) -> StepError {
    let kind = crate::db::classify(Backend::Sqlite, err);
    match err.as_database_error() {
        Some(db) => StepError {
            severity: "ERROR".to_owned(),
            message: db.message().to_owned(),
            code: db.code().map(|c| c.into_owned()),
            kind,
        },
        None => StepError { severity: "ERROR".to_owned(), message: err.to_string(), code: None, kind },
    }
}
