//! SQLite: the embedded default. One writer at a time for the whole database, no row locks.
//!
//! - Row locking is `BEGIN IMMEDIATE` (the write lock taken up front); `NOWAIT` and `SKIP LOCKED` are
//!   that with a zero busy timeout, so they fail or skip at once instead of waiting.
//! - The lock timeout is the busy timeout.
//! - There are no application locks: the advisory strategy says so instead of falling back silently.
//!
//! The shared statements are rendered from [`SQL`]. A zero busy timeout must never outlive the
//! `BEGIN IMMEDIATE` it was set for.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor, SqliteConnection};

use super::connect::{self, ConnectError, Refusal};
use super::sql::{Placeholder, Returning, Sql, Statements, Upsert};
use super::{ConnectOptions, Counter, Dialect, Isolation, LockMode, Pk, TxMode, db_err};
use crate::error::{DbError, ErrorKind};

/// Marker for the SQLite dialect.
pub(crate) struct Sqlite;

pub(super) async fn connect(options: &ConnectOptions) -> Result<SqlitePool, ConnectError> {
    let connect = SqliteConnectOptions::from_str(options.url.expose())
        .map_err(|e| {
            let reason = super::redact(&e.to_string());
            ConnectError::Url(super::UrlError::Malformed { url: options.url.redacted(), reason })
        })?
        .create_if_missing(true)
        // WAL lets readers run beside the one writer.
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(options.lock_timeout);
    let connect = super::quiet_lock_waits(connect);
    open_racing_others(&connect, options.lock_timeout).await;
    connect::probe::<Sqlite>(&connect, options, explain).await?;
    Ok(SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(super::prepare_connection::<Sqlite>(options))
        .test_before_acquire(false)
        .before_acquire(super::pool::ping_if_idle::<<Sqlite as Dialect>::Db>)
        .connect_lazy_with(connect))
}

/// Processes that open one new file together race to set it up (create it, switch it to WAL, which
/// needs the file to itself): a loser is told "database is locked" (code 5 or 6) at once, before any
/// busy timeout applies. Opens one connection, trying again on exactly that answer for at most
/// `lock_timeout`; any other outcome is left to the probe that follows, which reports it.
async fn open_racing_others(connect: &SqliteConnectOptions, lock_timeout: Duration) {
    use sqlx::{ConnectOptions as _, Connection as _};
    let deadline = std::time::Instant::now() + lock_timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match connect.connect().await {
            Ok(conn) => {
                let _ = conn.close().await;
                return;
            }
            Err(err) if Sqlite::classify(&err) == ErrorKind::Busy && std::time::Instant::now() < deadline => {
                tracing::debug!(%err, "the database file is being set up by another process; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(_) => return,
        }
    }
}

/// SQLite has no server to refuse anything: its errors are its message and result code.
fn explain(err: &dyn DatabaseError) -> (Refusal, String) {
    (Refusal::Other, connect::server_message(err, "SQLite code", &err.code().unwrap_or_default()))
}

async fn set_busy_timeout(c: &mut SqliteConnection, timeout: Duration) -> Result<(), DbError> {
    let ms = timeout.as_millis().min(i32::MAX as u128);
    c.execute(sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}"))))
        .await
        .map(drop)
        .map_err(db_err::<Sqlite>)
}

/// `BEGIN IMMEDIATE` as a lock request. With NOWAIT or SKIP LOCKED the busy timeout is 0 for just
/// this statement, and "busy" is reported as the lock mode's own kind.
async fn begin_immediate(c: &mut SqliteConnection, mode: LockMode, lock_timeout: Duration) -> Result<(), DbError> {
    if mode == LockMode::Wait {
        let begun = c.execute(sqlx::raw_sql("BEGIN IMMEDIATE")).await.map_err(db_err::<Sqlite>);
        return begun.map(drop).map_err(|err| relabel_busy(err, mode));
    }
    set_busy_timeout(c, Duration::ZERO).await?;
    let begun = c.execute(sqlx::raw_sql("BEGIN IMMEDIATE")).await.map_err(db_err::<Sqlite>);
    if let Err(restore) = set_busy_timeout(c, lock_timeout).await {
        // Neither an open transaction nor a zero busy timeout may outlive this call on a pooled
        // connection: undo what can be undone and report the failure.
        if begun.is_ok() {
            let _ = c.execute(sqlx::raw_sql("ROLLBACK")).await;
        }
        return Err(restore);
    }
    begun.map(drop).map_err(|err| relabel_busy(err, mode))
}

/// "Busy" while taking the write lock means what the lock mode asked for.
fn relabel_busy(err: DbError, mode: LockMode) -> DbError {
    match (err.kind(), mode) {
        (ErrorKind::Busy, LockMode::Wait) => err.with_kind(ErrorKind::LockTimeout),
        (ErrorKind::Busy, LockMode::NoWait) => err.with_kind(ErrorKind::LockNotAvailable),
        (ErrorKind::Busy, LockMode::SkipLocked) => err.with_kind(ErrorKind::RowSkipped),
        _ => err,
    }
}

/// Applies the migrations; SQLite has no application lock, so two processes starting together on
/// one file can both try the same migration. Each migration is one transaction with its bookkeeping
/// row: the loser's is rolled back (busy, or a UNIQUE violation on that row), and its next try finds
/// the migration applied. Only those are tried again, a few times: a full disk, a file that is no
/// database or a read-only one is no race, and is reported at once.
pub(super) async fn migrate(pool: &SqlitePool, migrator: sqlx::migrate::Migrator) -> Result<(), MigrateError> {
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match migrator.run(pool).await {
            Err(MigrateError::Execute(err)) if tried < TRIES && lost_a_race(&err) => {
                tracing::debug!(%err, "migration raced another process; trying again");
                tried += 1;
            }
            done => return done,
        }
    }
}

/// What another process migrating the same file at once makes a migration fail with: busy (5, 6),
/// or a constraint (19: the other's bookkeeping row is there first).
fn lost_a_race(err: &sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|e| e.code()).and_then(|c| c.parse::<i32>().ok());
    matches!(code.map(|c| c & 0xff), Some(5 | 6 | 19))
}

/// SQLite's SQL: `?n` parameters, `RETURNING`, `ON CONFLICT`, and the time as `modified_at` stores it
/// (ISO-8601, UTC, milliseconds).
const SQL: Sql = Sql {
    placeholder: Placeholder::NumberedQuestion,
    like: r#""like""#,
    now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    upsert: Upsert::OnConflict { qualify: false },
    returning: Returning::Clause,
    bigint: ("", ""),
    duplicate_aborts_transaction: false,
    overflow_raises: false,
    row_locks: false,
    ident_quote: '"',
};

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements::new(&SQL));
        &STATEMENTS
    }

    fn sql() -> &'static Sql {
        &SQL
    }

    const SLOT: usize = 2;

    fn is_check_violation(err: &sqlx::Error) -> bool {
        // SQLITE_CONSTRAINT_CHECK.
        err.as_database_error().and_then(|e| e.code()).as_deref() == Some("275")
    }

    fn classify_database_error(err: &sqlx::Error) -> ErrorKind {
        let code = err.as_database_error().and_then(|e| e.code()).and_then(|c| c.parse::<i32>().ok());
        // Extended result codes keep the primary code in the low byte: BUSY (5) covers BUSY_SNAPSHOT
        // (517) and BUSY_TIMEOUT; LOCKED (6) covers LOCKED_SHAREDCACHE.
        // SQLITE_CONSTRAINT_NOTNULL: racelab never binds a NULL, so only a guard against overflow (a
        // sum SQLite would have made a REAL, written as NULL instead: see `Sql::checked`) gives it.
        if code == Some(1299) {
            return ErrorKind::CounterOverflow;
        }
        match code.map(|c| c & 0xff) {
            Some(5 | 6) => ErrorKind::Busy,
            _ => ErrorKind::Other,
        }
    }

    async fn begin(c: &mut SqliteConnection, mode: TxMode, lock_timeout: Duration) -> Result<bool, DbError> {
        match mode {
            TxMode::DefaultIsolation => Ok(false),
            TxMode::Serializable => {
                c.execute(sqlx::raw_sql("BEGIN DEFERRED")).await.map_err(db_err::<Sqlite>)?;
                Ok(true)
            }
            TxMode::RowLocking(lock_mode) => begin_immediate(c, lock_mode, lock_timeout).await.map(|()| true),
        }
    }

    async fn begin_at(
        c: &mut SqliteConnection,
        _level: Isolation,
        lock: Option<LockMode>,
        lock_timeout: Duration,
    ) -> Result<bool, DbError> {
        // Every SQLite transaction is serializable: a level changes nothing. A locking transaction
        // takes the write lock up front; any other is deferred (a read-then-write of two of them
        // meets SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out).
        match lock {
            Some(mode) => begin_immediate(c, mode, lock_timeout).await.map(|()| true),
            None => {
                c.execute(sqlx::raw_sql("BEGIN DEFERRED")).await.map_err(db_err::<Sqlite>)?;
                Ok(true)
            }
        }
    }

    async fn rollback(c: &mut SqliteConnection) -> Result<(), DbError> {
        match c.execute(sqlx::raw_sql("ROLLBACK")).await {
            // SQLite may already have rolled back on its own (after some errors): ROLLBACK then
            // fails with plain SQLITE_ERROR (1), "no transaction is active". Busy or I/O errors
            // have other codes and still count.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("1") => Ok(()),
            other => other.map(drop).map_err(db_err::<Sqlite>),
        }
    }

    async fn set_lock_timeout(c: &mut SqliteConnection, timeout: Duration) -> Result<(), DbError> {
        set_busy_timeout(c, timeout).await
    }

    async fn read_for_update(c: &mut SqliteConnection, pk: Pk, _mode: LockMode) -> Result<Counter, DbError> {
        // The lock was taken by BEGIN IMMEDIATE, honouring the mode.
        Self::read(c, pk).await
    }

    async fn purge_idempotency_keys(
        c: &mut SqliteConnection,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, DbError> {
        // The same text format as the column's default, so the strings compare as the times do.
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE idempotency_key IN (
                 SELECT idempotency_key FROM idempotency_keys
                 WHERE created_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1) LIMIT ?2)",
        )
        .bind(format!("-{:.3} seconds", older_than.as_secs_f64()))
        .bind(limit)
        .execute(&mut *c)
        .await
        .map(|done| done.rows_affected())
        .map_err(db_err::<Sqlite>)
    }

    async fn advisory_lock(_c: &mut SqliteConnection, _pk: Pk, _timeout: Duration) -> Result<(), DbError> {
        Err(DbError::new(
            ErrorKind::Unsupported,
            "the advisory strategy is not supported on SQLite: it has no application locks \
             (PostgreSQL has pg_advisory_xact_lock, MariaDB/MySQL GET_LOCK)",
        ))
    }

    async fn advisory_unlock(_c: &mut SqliteConnection, _pk: Pk) -> Result<(), DbError> {
        Ok(())
    }

    async fn create_post(c: &mut SqliteConnection) -> Result<Pk, DbError> {
        sqlx::query_scalar("INSERT INTO posts DEFAULT VALUES RETURNING pk")
            .fetch_one(&mut *c)
            .await
            .map_err(db_err::<Sqlite>)
    }

    async fn connection_id(_c: &mut SqliteConnection) -> Result<Option<i64>, DbError> {
        Ok(None)
    }

    async fn server_version(c: &mut SqliteConnection) -> Result<String, DbError> {
        sqlx::query_scalar("SELECT 'SQLite ' || sqlite_version()").fetch_one(&mut *c).await.map_err(db_err::<Sqlite>)
    }
}
