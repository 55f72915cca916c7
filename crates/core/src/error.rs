//! One error type for every backend, classified into kinds.
//!
//! Strategies, the retry policy and the HTTP layer decide on [`ErrorKind`], never on message text:
//! each backend module maps its own codes (SQLSTATE, MySQL error numbers, SQLite result codes) to a kind
//! in exactly one place. This module never looks at a message to classify it, and never puts a URL
//! into one.

use std::fmt;

use serde::Serialize;

/// What went wrong, independent of the database that said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The database aborted the transaction to keep it serializable (PG 40001, MariaDB 1020).
    SerializationFailure,
    /// Deadlock, or a Galera certification conflict, which reports the same code (PG 40P01, MySQL 1213).
    Deadlock,
    /// `NOWAIT` found the row locked (PG 55P03, MySQL 3572, MariaDB 1205 under NOWAIT).
    LockNotAvailable,
    /// Waiting for a lock took longer than the lock timeout (PG 55P03 under lock_timeout, MySQL 1205,
    /// `GET_LOCK` returning 0).
    LockTimeout,
    /// SQLite could not take its database lock in time (SQLITE_BUSY, BUSY_SNAPSHOT, SQLITE_LOCKED).
    Busy,
    /// A versioned save found that someone else saved first.
    StaleVersion,
    /// `SKIP LOCKED` skipped the row because another transaction held it.
    RowSkipped,
    /// The connection broke, or the server went away; the outcome of an in-flight commit is unknown.
    ConnectionLost,
    /// No connection could be had from the pool in time.
    PoolTimeout,
    /// A counter (a post's `like` or `version`, or their total over the slots) would pass the largest
    /// value it can hold, 2^63 - 1 (PG 22003, MariaDB 1690, SQLite's guards): the write is refused, never
    /// wrapped, and never stored as another type. Not retried: running it again cannot make room.
    CounterOverflow,
    /// The post does not exist.
    NotFound,
    /// Never attempted: whoever ran the experiment stopped it (its request timed out).
    Stopped,
    /// The strategy or option does not exist on this database.
    Unsupported,
    /// Anything else: a bug, a constraint, bad SQL. Never retried.
    Other,
}

impl ErrorKind {
    /// Every kind, in a stable order (for tables and documentation).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::SerializationFailure,
        ErrorKind::Deadlock,
        ErrorKind::LockNotAvailable,
        ErrorKind::LockTimeout,
        ErrorKind::Busy,
        ErrorKind::StaleVersion,
        ErrorKind::RowSkipped,
        ErrorKind::ConnectionLost,
        ErrorKind::PoolTimeout,
        ErrorKind::CounterOverflow,
        ErrorKind::NotFound,
        ErrorKind::Stopped,
        ErrorKind::Unsupported,
        ErrorKind::Other,
    ];

    /// Whether running the whole unit of work again can succeed. A lost connection is not retried:
    /// the commit may have happened, and running it again could count an increment twice.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::SerializationFailure
                | ErrorKind::Deadlock
                | ErrorKind::LockNotAvailable
                | ErrorKind::LockTimeout
                | ErrorKind::Busy
                | ErrorKind::StaleVersion
                | ErrorKind::RowSkipped
        )
    }

    /// Whether a lock was refused: `NOWAIT` found it taken, `SKIP LOCKED` skipped the row, or the wait
    /// ran out. Retrying these is a choice (a budget the caller sets), not a default: a lock mode that
    /// fails fast must fail fast, and a wait must not outlast its timeout.
    pub fn is_lock_refusal(self) -> bool {
        matches!(self, ErrorKind::LockNotAvailable | ErrorKind::LockTimeout | ErrorKind::RowSkipped)
    }

    /// Whether the database was out of reach: the connection broke, or none could be had in time.
    pub fn means_unreachable(self) -> bool {
        matches!(self, ErrorKind::ConnectionLost | ErrorKind::PoolTimeout)
    }

    /// The snake_case name used in JSON, CSV and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::SerializationFailure => "serialization_failure",
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::LockNotAvailable => "lock_not_available",
            ErrorKind::LockTimeout => "lock_timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::StaleVersion => "stale_version",
            ErrorKind::RowSkipped => "row_skipped",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::PoolTimeout => "pool_timeout",
            ErrorKind::CounterOverflow => "counter_overflow",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Stopped => "stopped",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server's message without the driver's decorations: sqlx's "error returned from database: "
/// prefix, and the "at line N" (a line of PostgreSQL's own source code) that its `Display` appends.
fn driver_detail(source: &sqlx::Error) -> String {
    match source {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            Some(pg) => format!("{} (SQLSTATE {})", pg.message(), pg.code()),
            None => db.to_string(),
        },
        other => other.to_string(),
    }
}

/// A counter that cannot take what was to be added: which post, which of its counters, the value it
/// has and what was to be added. Carried by a [`DbError`] of kind [`ErrorKind::CounterOverflow`] when
/// the value is known (a refusal the code made itself); a database's own overflow error has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AtMaximum {
    pub post: i64,
    /// `like` or `version`.
    pub counter: &'static str,
    /// The counter's value (for a total over the slots past the maximum: the maximum).
    pub value: i64,
    pub adding: i64,
}

impl fmt::Display for AtMaximum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AtMaximum { post, counter, value, adding } = self;
        write!(
            f,
            "post {post} has {counter} {value}, and {adding} more would pass {}, the most a counter holds",
            i64::MAX
        )
    }
}

/// An error from a database operation, with its kind and, where there is one, the driver's error.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct DbError {
    kind: ErrorKind,
    detail: String,
    code: Option<String>,
    /// The connection was lost while the statement that commits was on the wire: it may have
    /// committed or not, and nobody can tell from this side.
    in_doubt: bool,
    /// Boxed: an error is moved through every `Result` of the engine, and this is rarely there.
    at_maximum: Option<Box<AtMaximum>>,
    #[source]
    source: Option<sqlx::Error>,
}

impl DbError {
    /// An error that did not come from the driver.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), code: None, in_doubt: false, at_maximum: None, source: None }
    }

    /// A counter that cannot take `at.adding` more: [`ErrorKind::CounterOverflow`], naming it.
    pub fn at_maximum(at: AtMaximum) -> Self {
        Self { at_maximum: Some(Box::new(at)), ..Self::new(ErrorKind::CounterOverflow, at.to_string()) }
    }

    /// A driver error, already classified by a backend module.
    pub(crate) fn classified(kind: ErrorKind, source: sqlx::Error) -> Self {
        let code = match &source {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        Self { kind, detail: driver_detail(&source), code, in_doubt: false, at_maximum: None, source: Some(source) }
    }

    /// The same error for another party (each request of a failed batch gets one): kind, detail,
    /// code and the in-doubt mark; the driver's own error stays with this one.
    pub fn for_another(&self) -> DbError {
        Self {
            kind: self.kind,
            detail: self.detail.clone(),
            code: self.code.clone(),
            in_doubt: self.in_doubt,
            at_maximum: self.at_maximum.clone(),
            source: None,
        }
    }

    /// The kind this error was classified as.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The counter that could not take more, when this is a refusal that knows its value.
    pub fn counter_at_maximum(&self) -> Option<AtMaximum> {
        self.at_maximum.as_deref().copied()
    }

    /// The database's own code (SQLSTATE, MySQL error number, SQLite extended result code), if any.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether this error came from the statement that would have committed the unit of work, with
    /// the answer lost on the way back: the work may be in the database or not.
    pub fn is_in_doubt(&self) -> bool {
        self.in_doubt
    }

    /// Marks an error of the committing statement (`COMMIT`, or a write in autocommit): if the
    /// connection was lost, the commit's fate is unknown. Any other error is a known failure: the
    /// server answered, or rolled back when the connection broke before the commit was sent.
    pub(crate) fn at_commit(mut self) -> Self {
        self.in_doubt = self.kind == ErrorKind::ConnectionLost;
        self
    }

    /// Re-labels the kind where only the caller knows what a shared code meant (PG 55P03 and
    /// MariaDB 1205 mean "NOWAIT failed" or "lock timeout" depending on how the lock was asked for).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The driver's error back, where a driver API wants one.
    pub(crate) fn into_driver_error(self) -> sqlx::Error {
        self.source.unwrap_or_else(|| sqlx::Error::Protocol(self.detail))
    }

    /// Whether running the unit of work again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// Errors that can tell their kind: what the retry policy needs from a caller's error type.
pub trait Classify {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl Classify for DbError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Classification that does not depend on the backend: pool and I/O failures.
pub(crate) fn classify_driver_error(err: &sqlx::Error) -> Option<ErrorKind> {
    match err {
        sqlx::Error::PoolTimedOut => Some(ErrorKind::PoolTimeout),
        sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Some(ErrorKind::ConnectionLost),
        sqlx::Error::RowNotFound => Some(ErrorKind::NotFound),
        _ => None,
    }
}
