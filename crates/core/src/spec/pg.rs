//! PostgreSQL connections for a spec: a session's connection, whose statements run under its notice
//! collector, and the control connection, which runs setups and teardowns, asks the server whether a
//! session is blocked, and cancels a step that ran too long.
//!
//! A step's SQL goes to the server as one simple query (several statements in one string), as
//! isolationtester's `PQsendQuery` sends it; every value comes back as the server's text.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgRow, PgSeverity};
use sqlx::{AssertSqlSafe, Column, Connection, Either, Executor, PgConnection, Row, SqlSafeStr, Statement, ValueRef};
use tokio_stream::StreamExt;
use tracing::Dispatch;
use tracing::instrument::WithSubscriber;

use super::notice::Inbox;
use super::report::{Answer, StepError, Table};
use super::split::{may_return_rows, statements};
use crate::Backend;
use crate::db::DatabaseUrl;

/// Opens a connection to `url` (PostgreSQL), named `application_name` (isolationtester appends the
/// session's name to it the same way), with no driver-side statement timeout.
pub(crate) async fn connect(url: &DatabaseUrl, name: &str) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose())?;
    let mut conn = PgConnection::connect_with(&options).await?;
    sqlx::query("SELECT set_config('application_name', current_setting('application_name') || '/' || $1, false)")
        .bind(name)
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// The server's process id of `conn`.
pub(crate) async fn backend_pid(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await
}

/// A step in flight on a session's connection.
pub(crate) type StepFuture = Pin<Box<dyn Future<Output = (PgConnection, Answer)> + Send>>;

/// One session: its connection (away while a step runs on it), process id and notices.
pub(crate) struct SessionConn {
    pub conn: Option<PgConnection>,
    pub pid: i32,
    pub inbox: Inbox,
    dispatch: Dispatch,
}

impl SessionConn {
    pub(crate) async fn open(url: &DatabaseUrl, name: &str) -> Result<Self, sqlx::Error> {
        let inbox = Inbox::default();
        let dispatch = inbox.dispatch();
        let mut conn = connect(url, name).with_subscriber(dispatch.clone()).await?;
        let pid = backend_pid(&mut conn).await?;
        Ok(SessionConn { conn: Some(conn), pid, inbox, dispatch })
    }

    /// `sql` on this session's connection, as a future that gives the connection back with the
    /// answer; `None` if a step is already running here. Not a task: like a libpq connection, it
    /// reads from the server only while the runner polls it, so a notice the server sent before a
    /// step blocked is read when the runner next looks at that step, as isolationtester reads it.
    pub(crate) fn start(&mut self, sql: &str) -> Option<StepFuture> {
        let mut conn = self.conn.take()?;
        let sql = sql.to_owned();
        let work = async move {
            let answer = execute(&mut conn, &sql, false).await;
            (conn, answer)
        };
        Some(Box::pin(work.with_subscriber(self.dispatch.clone())))
    }

    /// Runs `sql` (a session's setup or teardown) and waits for it: only the last result is kept, as
    /// `PQexec` keeps it.
    pub(crate) async fn exec(&mut self, sql: &str) -> Option<Answer> {
        let conn = self.conn.as_mut()?;
        Some(execute(conn, sql, true).with_subscriber(self.dispatch.clone()).await)
    }
}

/// Runs `sql` on the control connection (a setup or teardown; its notices are dropped, as
/// isolationtester drops them): only the last result is kept, as `PQexec` keeps it.
pub(crate) async fn exec_control(conn: &mut PgConnection, sql: &str) -> Answer {
    execute(conn, sql, true).with_subscriber(tracing::subscriber::NoSubscriber::default()).await
}

/// Whether the session with process id `pid` waits for a lock held by one of `pids`, or for a
/// safe snapshot, as isolationtester asks the server.
pub(crate) async fn is_blocked(control: &mut PgConnection, pid: i32, pids: &[i32]) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_catalog.pg_isolation_test_session_is_blocked($1, $2)")
        .bind(pid)
        .bind(pids)
        .fetch_one(control)
        .await
}

/// Cancels what the backend `pid` runs, as isolationtester's `PQcancel` does.
pub(crate) async fn cancel(control: &mut PgConnection, pid: i32) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_cancel_backend($1)").bind(pid).fetch_one(control).await
}

/// A row-returning statement's answer, kept as rows until its end.
struct Result_ {
    rows: Vec<PgRow>,
}

/// Runs `sql` as one simple query. Each statement's rows become a table; a statement that answered
/// none is asked for its columns (a `SELECT` answering no rows still has a header). `last_only`:
/// only the last statement's answer is kept.
async fn execute(conn: &mut PgConnection, sql: &str, last_only: bool) -> Answer {
    let mut results: Vec<Result_> = Vec::new();
    let mut rows = Vec::new();
    let mut error = None;
    {
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch_many(&mut *conn);
        while let Some(item) = stream.next().await {
            match item {
                Ok(Either::Left(_)) => results.push(Result_ { rows: std::mem::take(&mut rows) }),
                Ok(Either::Right(row)) => rows.push(row),
                Err(err) => {
                    error = Some(step_error(&err));
                    break;
                }
            }
        }
    }
    if error.is_some() && last_only {
        return Answer { tables: Vec::new(), error };
    }
    let texts = statements(sql);
    let mut tables = Vec::new();
    let first = if last_only { results.len().saturating_sub(1) } else { 0 };
    for (i, result) in results.iter().enumerate().skip(first) {
        if let Some(table) = table(&result.rows) {
            tables.push(table);
            continue;
        }
        // No rows: a header only if the statement returns rows at all. Asked after the whole query
        // ran (never inside an aborted transaction: there was no error before this point).
        let Some(text) = texts.get(i).filter(|t| may_return_rows(t)) else { continue };
        if error.is_some() {
            continue;
        }
        if let Ok(statement) = conn.prepare(AssertSqlSafe(text.to_string()).into_sql_str()).await
            && !statement.columns().is_empty()
        {
            let columns = statement.columns().iter().map(|c| c.name().to_owned()).collect();
            tables.push(Table { columns, rows: Vec::new() });
        }
    }
    Answer { tables, error }
}

/// The table of `rows`, or `None` when there are none.
fn table(rows: &[PgRow]) -> Option<Table> {
    let first = rows.first()?;
    let columns = first.columns().iter().map(|c| c.name().to_owned()).collect();
    let rows = rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    let value = row.try_get_raw(i).ok()?;
                    if value.is_null() { None } else { value.as_str().ok().map(str::to_owned) }
                })
                .collect()
        })
        .collect();
    Some(Table { columns, rows })
}

/// The error as isolationtester prints it (severity and primary message), with its kind.
pub(crate) fn step_error(err: &sqlx::Error) -> StepError {
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

/// How long to wait for a step before asking the server whether it is blocked.
pub(crate) const POLL: Duration = Duration::from_millis(2);
