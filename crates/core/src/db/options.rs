//! [`ConnectOptions`], and how every new pooled connection is prepared (its lock timeout, the init
//! statements, sqlx's slow-statement log level).
//!
//! Nothing here logs or formats the URL: it carries the password.

use std::future::Future;
use std::time::Duration;

use super::{Conn, DatabaseUrl, Dialect};
use crate::error::DbError;

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

/// Under contention, statements wait for locks by design: sqlx's "slow statement" warnings would flood
/// the log with the very waits an experiment measures. They go to debug level.
pub(super) fn quiet_lock_waits<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
}

/// A future that borrows the connection it runs on.
pub(super) type ConnFuture<'c> = std::pin::Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// The shape of sqlx's `after_connect` hook.
pub(super) trait AfterConnect<DB: sqlx::Database>:
    for<'c> Fn(&'c mut DB::Connection, sqlx::pool::PoolConnectionMetadata) -> ConnFuture<'c> + Send + Sync + 'static
{
}

impl<DB: sqlx::Database, F> AfterConnect<DB> for F where
    F: for<'c> Fn(&'c mut DB::Connection, sqlx::pool::PoolConnectionMetadata) -> ConnFuture<'c> + Send + Sync + 'static
{
}

/// The `after_connect` hook: sets the default lock timeout once per connection, then runs the
/// configured init statements.
pub(super) fn prepare_connection<D: Dialect>(options: &ConnectOptions) -> impl AfterConnect<D::Db>
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
