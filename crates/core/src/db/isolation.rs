//! [`Isolation`]: the SQL isolation level a workload's transactions run at, when the user names one
//! (`--isolation`), instead of the database's default.
//!
//! Plain data: how each backend opens a transaction at a level is its own module's business
//! (`Dialect::begin_at`). SQLite has no levels to choose: every transaction there is serializable, so
//! a level maps to a deferred transaction (`BEGIN IMMEDIATE` for the locking strategies).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// An SQL isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// MariaDB/MySQL only really offer it; PostgreSQL accepts it and runs READ COMMITTED.
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// Every level, weakest first.
    pub const ALL: [Isolation; 4] =
        [Isolation::ReadUncommitted, Isolation::ReadCommitted, Isolation::RepeatableRead, Isolation::Serializable];

    /// The name used on the command line and in output: `read-committed`, ...
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read-uncommitted",
            Isolation::ReadCommitted => "read-committed",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::Serializable => "serializable",
        }
    }

    /// The level as SQL writes it: `READ COMMITTED`, ...
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "READ UNCOMMITTED",
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An isolation level name that is none of [`Isolation::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown isolation level `{0}`; expected one of: read-uncommitted, read-committed, repeatable-read, serializable"
)]
pub struct UnknownIsolation(pub String);

impl FromStr for Isolation {
    type Err = UnknownIsolation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        Isolation::ALL.into_iter().find(|level| level.name() == wanted).ok_or_else(|| UnknownIsolation(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_levels() {
        for level in Isolation::ALL {
            assert_eq!(level.name().parse::<Isolation>().unwrap(), level);
        }
        assert_eq!("REPEATABLE_READ".parse::<Isolation>().unwrap(), Isolation::RepeatableRead);
        let err = "snapshot".parse::<Isolation>().unwrap_err().to_string();
        assert!(err.contains("`snapshot`") && err.contains("read-committed"), "{err}");
    }
}
