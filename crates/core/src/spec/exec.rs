//! A step's SQL run on a connection of any backend, its answer kept as isolationtester prints it:
//! each statement's rows as a table of the server's text, a header for a query that answered none,
//! and the error that ended it. Each backend gives the two things that are its own: how a value
//! becomes text and what its errors say ([`super::backend::SpecBackend`]).

use sqlx::{AssertSqlSafe, Column, Database, Either, Executor, Row, SqlSafeStr, Statement};
use tokio_stream::StreamExt;

use super::report::{Answer, StepError, Table};
use super::split::{may_return_rows, statements};

/// How one backend reads a value as text (`None`: NULL) and names an error.
pub(crate) struct Text<DB: Database> {
    pub value: fn(&DB::Row, usize) -> Option<String>,
    pub error: fn(&sqlx::Error) -> StepError,
}

/// Runs `sql` as one query (several statements in one string). Each statement's rows become a
/// table; a statement that answered none is asked for its columns (a `SELECT` answering no rows
/// still has a header). `last_only`: only the last statement's answer is kept.
pub(crate) async fn execute<DB>(conn: &mut DB::Connection, sql: &str, last_only: bool, text: &Text<DB>) -> Answer
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut results: Vec<Vec<DB::Row>> = Vec::new();
    let mut rows = Vec::new();
    let mut error = None;
    {
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch_many(&mut *conn);
        while let Some(item) = stream.next().await {
            match item {
                Ok(Either::Left(_)) => results.push(std::mem::take(&mut rows)),
                Ok(Either::Right(row)) => rows.push(row),
                Err(err) => {
                    error = Some((text.error)(&err));
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
    for (i, rows) in results.iter().enumerate().skip(first) {
        if let Some(table) = table(rows, text.value) {
            tables.push(table);
            continue;
        }
        // No rows: a header only if the statement returns rows at all. Asked after the whole query
        // ran (never inside an aborted transaction: there was no error before this point).
        let Some(statement) = texts.get(i).filter(|t| may_return_rows(t)) else { continue };
        if error.is_some() {
            continue;
        }
        if let Ok(prepared) = conn.prepare(AssertSqlSafe(statement.to_string()).into_sql_str()).await
            && !prepared.columns().is_empty()
        {
            let columns = prepared.columns().iter().map(|c| c.name().to_owned()).collect();
            tables.push(Table { columns, rows: Vec::new() });
        }
    }
    Answer { tables, error }
}

/// The table of `rows`, or `None` when there are none.
fn table<R: Row>(rows: &[R], value: fn(&R, usize) -> Option<String>) -> Option<Table> {
    let first = rows.first()?;
    let columns = first.columns().iter().map(|c| c.name().to_owned()).collect();
    let rows = rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect()).collect();
    Some(Table { columns, rows })
}
