//! How many client connections the process may hold without running out of file descriptors: every
//! accepted connection is one, and the database pool and the process's own files must always find
//! theirs. The cap asked for (`--max-connections`) is clamped below the open-files limit
//! (`RLIMIT_NOFILE`, `ulimit -n`) less a reserve for those.

use std::fmt;

/// Descriptors kept for the process itself: standard streams, the runtime's epoll and event
/// descriptors, the listener, log and migration files, the metrics exporter. racelab serve opens
/// about 15 of them; the rest is headroom.
pub const PROCESS_RESERVE: u64 = 64;

/// Descriptors one pooled database connection may hold: a socket on PostgreSQL and MariaDB; on SQLite
/// the database file, its WAL and its shared-memory file.
pub const PER_POOLED_CONNECTION: u64 = 3;

/// Connections over the cap that may be open at once while they send their request head, wait for
/// an idle connection to be closed for them, or are answered 503. Past this many, the oldest still
/// sending its head is closed for the new one; if every one has sent its head, the new one is
/// closed without an answer.
pub const OVERFLOW: usize = 32;

/// The cap chosen and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// Client connections served at once.
    pub max_connections: usize,
    /// What `--max-connections` asked for.
    pub requested: usize,
    /// The soft open-files limit, if the platform has one.
    pub open_files_limit: Option<u64>,
    /// Descriptors kept out of the cap's reach: the pool, the process, the overflow.
    pub reserved: u64,
}

impl ConnectionBudget {
    /// The cap for `requested` connections beside a pool of `pool_size`, under this process's limit.
    pub fn new(requested: usize, pool_size: u32) -> Result<Self, BudgetError> {
        Self::under(requested, pool_size, open_files_limit())
    }

    /// The same, under a given open-files limit (`None`: unlimited or unknown).
    pub fn under(requested: usize, pool_size: u32, limit: Option<u64>) -> Result<Self, BudgetError> {
        let reserved = PROCESS_RESERVE + PER_POOLED_CONNECTION * u64::from(pool_size) + OVERFLOW as u64;
        let max_connections = match limit {
            None => requested,
            Some(limit) => {
                let room = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
                if room == 0 {
                    return Err(BudgetError { limit, reserved });
                }
                requested.min(room)
            }
        };
        Ok(Self { max_connections, requested, open_files_limit: limit, reserved })
    }

    /// Whether the open-files limit lowered the cap.
    pub fn clamped(&self) -> bool {
        self.max_connections < self.requested
    }
}

impl fmt::Display for ConnectionBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { max_connections, requested, reserved, .. } = *self;
        match self.open_files_limit {
            Some(limit) if self.clamped() => write!(
                f,
                "at most {max_connections} connections (--max-connections {requested} lowered: the open-files \
                 limit is {limit} and {reserved} descriptors are kept for the database pool and the process's own \
                 files; raise `ulimit -n` for more)"
            ),
            Some(limit) => write!(
                f,
                "at most {max_connections} connections (open-files limit {limit}, {reserved} descriptors kept for \
                 the database pool and the process's own files)"
            ),
            None => write!(f, "at most {max_connections} connections"),
        }
    }
}

/// The open-files limit leaves no room for a single client connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the open-files limit ({limit}) leaves no descriptor for client connections: {reserved} are kept for the \
     database pool and the process's own files; raise `ulimit -n` or lower --pool-size"
)]
pub struct BudgetError {
    pub limit: u64,
    pub reserved: u64,
}

/// The soft `RLIMIT_NOFILE`, the limit `accept` fails at.
#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_limit_less_the_reserve() {
        // ulimit -n 256 with the default pool of 40: 64 + 120 + 32 kept, 40 left for clients.
        let budget = ConnectionBudget::under(1024, 40, Some(256)).unwrap();
        assert_eq!((budget.max_connections, budget.reserved), (40, 216));
        assert!(budget.clamped());
        assert!(budget.to_string().contains("--max-connections 1024 lowered"), "{budget}");

        let roomy = ConnectionBudget::under(1024, 40, Some(1 << 20)).unwrap();
        assert_eq!(roomy.max_connections, 1024);
        assert!(!roomy.clamped());
        assert_eq!(ConnectionBudget::under(7, 40, None).unwrap().max_connections, 7);
    }

    #[test]
    fn a_limit_below_the_reserve_is_an_error_that_says_what_to_do() {
        let err = ConnectionBudget::under(1024, 40, Some(200)).unwrap_err();
        assert!(err.to_string().contains("raise `ulimit -n`"), "{err}");
    }
}
