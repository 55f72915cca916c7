//! PostgreSQL, for the spec runner: connections named as isolationtester names them, blocking told by
//! `pg_isolation_test_session_is_blocked` (what isolationtester asks), cancel by `pg_cancel_backend`.
//!
//! A step's SQL goes to the server as one simple query (several statements in one string), as
//! isolationtester's `PQsendQuery` sends it; every value comes back as the server's text.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgRow, PgSeverity};
use sqlx::{Connection, PgConnection, Postgres, Row, ValueRef};

use super::backend::SpecBackend;
use super::exec::{self, Text};
use super::report::{Answer, StepError};
use crate::Backend;
use crate::db::DatabaseUrl;

/// PostgreSQL's sessions.
pub(crate) struct Pg;

const TEXT: Text<Postgres> = Text { value, error: step_error };

impl SpecBackend for Pg {
    type Conn = PgConnection;

    /// Named `application_name` + `/` + `name` (isolationtester appends the session's name the same
    /// way), with no driver-side statement timeout.
    async fn connect(url: &DatabaseUrl, name: &str) -> Result<PgConnection, sqlx::Error> {
        let options = PgConnectOptions::from_str(url.expose())?;
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::query("SELECT set_config('application_name', current_setting('application_name') || '/' || $1, false)")
            .bind(name)
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }

    async fn session_id(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await?;
        Ok(i64::from(pid))
    }

    async fn execute(conn: &mut PgConnection, sql: &str, last_only: bool) -> Answer {
        exec::execute(conn, sql, last_only, &TEXT).await
    }

    /// Whether the backend `id` waits for a lock held by one of `ids`, or for a safe snapshot.
    async fn is_blocked(control: &mut PgConnection, id: i64, ids: &[i64]) -> Result<bool, sqlx::Error> {
        // Backend pids are ints: they came from pg_backend_pid().
        let pids: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
        sqlx::query_scalar("SELECT pg_catalog.pg_isolation_test_session_is_blocked($1, $2)")
            .bind(id as i32)
            .bind(pids)
            .fetch_one(control)
            .await
    }

    /// As isolationtester's `PQcancel` does.
    async fn cancel(control: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
        let _: bool = sqlx::query_scalar("SELECT pg_cancel_backend($1)").bind(id as i32).fetch_one(control).await?;
        Ok(())
    }

    /// As isolationtester prints it (severity and primary message), with its kind.
    fn step_error(err: &sqlx::Error) -> StepError {
        step_error(err)
    }

    async fn close(conn: PgConnection) {
        let _ = conn.close().await;
    }
}

/// A value as the server's text.
fn value(row: &PgRow, i: usize) -> Option<String> {
    let value = row.try_get_raw(i).ok()?;
    if value.is_null() { None } else { value.as_str().ok().map(str::to_owned) }
}

fn step_error(err: &sqlx::Error) -> StepError {
    let kind = crate::db::classify(Backend::Postgres, err);
    match err.as_database_error().and_then(|e| e.try_downcast_ref::<PgDatabaseError>()) {
        Some(pg) => StepError {
            severity: severity(pg.severity()).to_owned(),
            message: pg.message().to_owned(),
            code: Some(pg.code().to_owned()),
            kind,
        },
        None => StepError { severity: "ERROR".to_owned(), message: err.to_string(), code: None, kind },
    }
}

fn severity(severity: PgSeverity) -> &'static str {
    match severity {
        PgSeverity::Panic => "PANIC",
        PgSeverity::Fatal => "FATAL",
        PgSeverity::Error => "ERROR",
        PgSeverity::Warning => "WARNING",
        PgSeverity::Notice => "NOTICE",
        PgSeverity::Debug => "DEBUG",
        PgSeverity::Info => "INFO",
        PgSeverity::Log => "LOG",
    }
}
