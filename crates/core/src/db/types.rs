//! The values every layer passes around: a post's key, its counter, its row, and the kinds of
//! transaction and row lock a strategy asks for.
//!
//! Plain data only: nothing here talks to a database or knows a dialect.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The primary key of a post.
pub type Pk = i64;

/// The counter and its version, as one read returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub like: i64,
    pub version: i64,
}

/// A whole `posts` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostRow {
    pub pk: Pk,
    pub like: i64,
    pub version: i64,
    pub modified_at: DateTime<Utc>,
}

/// How a pessimistic read behaves when the row is already locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    /// Wait for the lock, up to the lock timeout.
    #[default]
    Wait,
    /// Fail at once with [`ErrorKind::LockNotAvailable`](crate::ErrorKind::LockNotAvailable).
    NoWait,
    /// Do not wait and do not fail: report [`ErrorKind::RowSkipped`](crate::ErrorKind::RowSkipped).
    SkipLocked,
}

impl LockMode {
    pub const ALL: [LockMode; 3] = [LockMode::Wait, LockMode::NoWait, LockMode::SkipLocked];

    /// The name used on the command line and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Wait => "wait",
            LockMode::NoWait => "nowait",
            LockMode::SkipLocked => "skip-locked",
        }
    }
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown lock mode `{s}`; expected one of: wait, nowait, skip-locked"))
    }
}

/// The kind of transaction a unit of work runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// What an ORM session gets by default: READ COMMITTED on PostgreSQL, REPEATABLE READ on
    /// MariaDB/MySQL. On SQLite no transaction at all: like Python's sqlite3 driver, the read runs in
    /// autocommit (a deferred SQLite transaction is serializable and would hide the lost update).
    DefaultIsolation,
    /// SERIALIZABLE on PostgreSQL and MariaDB/MySQL; a deferred transaction on SQLite (serializable by
    /// construction).
    Serializable,
    /// A transaction that will lock the row with `SELECT ... FOR UPDATE`. SQLite has no row locks:
    /// `BEGIN IMMEDIATE` takes the database write lock up front, honouring the lock mode.
    RowLocking(LockMode),
}
