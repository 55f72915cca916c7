//! The isolation levels (and SQLite transaction kinds) each backend offers, and how a transaction
//! is opened at each.
//!
//! Only names and statement text: nothing here connects or decides a verdict.

use serde::Serialize;

use crate::Backend;

/// One isolation level of one backend: a column of `racelab anomalies`' matrix, and a level a spec's
/// transactions can be opened at instead of their own ([`super::RunOptions::level`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    PgReadCommitted,
    PgRepeatableRead,
    PgSerializable,
    MyReadUncommitted,
    MyReadCommitted,
    MyRepeatableRead,
    /// REPEATABLE READ with `innodb_snapshot_isolation = ON` (MariaDB 10.6.18+ / 10.11.8+): a write
    /// to a row changed since the transaction's snapshot fails with 1020 instead of overwriting.
    MyRepeatableReadSnapshot,
    MySerializable,
    /// `BEGIN DEFERRED`: the write lock is taken at the first write.
    SqliteDeferred,
    /// `BEGIN IMMEDIATE`: the write lock is taken at `BEGIN`.
    SqliteImmediate,
}

impl Level {
    /// Every level of `backend`, weakest first.
    pub fn of(backend: Backend) -> &'static [Level] {
        match backend {
            Backend::Postgres => &[Level::PgReadCommitted, Level::PgRepeatableRead, Level::PgSerializable],
            Backend::MySql => &[
                Level::MyReadUncommitted,
                Level::MyReadCommitted,
                Level::MyRepeatableRead,
                Level::MyRepeatableReadSnapshot,
                Level::MySerializable,
            ],
            Backend::Sqlite => &[Level::SqliteDeferred, Level::SqliteImmediate],
        }
    }

    /// The full name, as the database's documentation says it.
    pub fn name(self) -> &'static str {
        match self {
            Level::PgReadCommitted | Level::MyReadCommitted => "read committed",
            Level::PgRepeatableRead | Level::MyRepeatableRead => "repeatable read",
            Level::PgSerializable | Level::MySerializable => "serializable",
            Level::MyReadUncommitted => "read uncommitted",
            Level::MyRepeatableReadSnapshot => "repeatable read + innodb_snapshot_isolation",
            Level::SqliteDeferred => "BEGIN DEFERRED",
            Level::SqliteImmediate => "BEGIN IMMEDIATE",
        }
    }

    /// A short name for an 80-column table.
    pub fn short(self) -> &'static str {
        match self {
            Level::PgReadCommitted | Level::MyReadCommitted => "RC",
            Level::PgRepeatableRead | Level::MyRepeatableRead => "RR",
            Level::PgSerializable | Level::MySerializable => "SER",
            Level::MyReadUncommitted => "RU",
            Level::MyRepeatableReadSnapshot => "RR+SI",
            Level::SqliteDeferred => "deferred",
            Level::SqliteImmediate => "immediate",
        }
    }

    /// The statements that open a transaction at this level, run as one step. The session settings
    /// come first: on MariaDB, `SET SESSION TRANSACTION` applies to the transactions that follow.
    pub(crate) fn begin_sql(self) -> &'static str {
        match self {
            Level::PgReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Level::PgRepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Level::PgSerializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Level::MyReadUncommitted => "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; BEGIN",
            Level::MyReadCommitted => "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN",
            Level::MyRepeatableRead => "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN",
            Level::MyRepeatableReadSnapshot => {
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 SET SESSION innodb_snapshot_isolation = ON; BEGIN"
            }
            Level::MySerializable => "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN",
            Level::SqliteDeferred => "BEGIN DEFERRED",
            Level::SqliteImmediate => "BEGIN IMMEDIATE",
        }
    }

    /// A statement that fails where this level does not exist on the server (so its column says
    /// "not available" rather than a row of errors).
    pub(crate) fn probe_sql(self) -> Option<&'static str> {
        match self {
            Level::MyRepeatableReadSnapshot => Some("SELECT @@innodb_snapshot_isolation"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
