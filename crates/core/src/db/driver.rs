//! Running one statement on any of sqlx's drivers, so that a statement every backend runs alike is
//! executed by one generic function ([`super::common`]). The trait bounds that takes are written once,
//! here, on a blanket implementation.
//!
//! Only binding, sending and decoding: no statement text, no error classification (a caller maps a
//! driver error with its dialect's classification).

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::{Decode, Encode, Executor, IntoArguments, Row, Type};

use super::Conn;

/// A value bound to a statement's next parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    Int32(i32),
    Text(&'a str),
}

/// The rows a statement matched, as each driver's result reports them.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

macro_rules! rows_affected {
    ($($result:ty),*) => {$(
        impl RowsAffected for $result {
            fn rows_affected(&self) -> u64 {
                <$result>::rows_affected(self)
            }
        }
    )*};
}

rows_affected!(sqlx::postgres::PgQueryResult, sqlx::mysql::MySqlQueryResult, sqlx::sqlite::SqliteQueryResult);

/// A sqlx driver that can run racelab's shared statements.
pub(crate) trait Driver: sqlx::Database<QueryResult: RowsAffected> {
    /// Runs `sql` as it is, in the simple (text) protocol: for statements that take no parameters
    /// and are not worth preparing (`COMMIT`, `ROLLBACK`).
    fn execute_raw(
        c: &mut Conn<Self>,
        sql: &'static str,
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send;
    /// Runs `sql` with `args`; what the server reports (rows affected, MySQL's last insert id).
    fn execute(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send;
    /// Runs `sql` with `args`; its first row, if any.
    fn fetch_optional(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send;
    /// Runs `sql` with `args`; every row.
    fn fetch_all(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    fn int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error>;
    fn int32(row: &Self::Row, column: usize) -> Result<i32, sqlx::Error>;
    fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error>;
    fn time(row: &Self::Row, column: usize) -> Result<DateTime<Utc>, sqlx::Error>;
}

impl<DB> Driver for DB
where
    DB: sqlx::Database<QueryResult: RowsAffected>,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Decode<'q, DB> + Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    fn execute_raw(
        c: &mut Conn<Self>,
        sql: &'static str,
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send {
        sqlx::raw_sql(sql).execute(c)
    }

    fn execute(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Self::QueryResult, sqlx::Error>> + Send {
        bind(sqlx::query::<DB>(sql), args).execute(c)
    }

    fn fetch_optional(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send {
        bind(sqlx::query::<DB>(sql), args).fetch_optional(c)
    }

    fn fetch_all(
        c: &mut Conn<Self>,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send {
        bind(sqlx::query::<DB>(sql), args).fetch_all(c)
    }

    fn int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error> {
        row.try_get(column)
    }

    fn int32(row: &Self::Row, column: usize) -> Result<i32, sqlx::Error> {
        row.try_get(column)
    }

    fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error> {
        row.try_get(column)
    }

    fn time(row: &Self::Row, column: usize) -> Result<DateTime<Utc>, sqlx::Error> {
        row.try_get(column)
    }
}

/// `query` with `args` bound in order. Each value is encoded now, so the query owns its arguments.
fn bind<'q, DB>(mut query: Query<'q, DB, DB::Arguments>, args: &[Arg<'_>]) -> Query<'q, DB, DB::Arguments>
where
    DB: sqlx::Database,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> i32: Encode<'a, DB> + Type<DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
{
    for arg in args {
        query = match *arg {
            Arg::Int(value) => query.bind(value),
            Arg::Int32(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
        };
    }
    query
}
