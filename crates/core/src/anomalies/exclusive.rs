//! One suite at a time per database. The suite drops and creates its table before it starts, so a
//! second run on the same database (another `racelab anomalies`, another server's page) would pull
//! the table from under the first one's open transactions: its steps would wait out the lock timeout
//! on the table's metadata lock and the first run's matrix would be wrong. Before it touches the
//! table, a run therefore takes a lock named after its database and keeps it to the end:
//!
//! - PostgreSQL: a session advisory lock, which is scoped to the current database;
//! - MariaDB: `GET_LOCK`, server-wide, so its name carries `DATABASE()` (node-local on Galera: two
//!   runs through different first nodes of one cluster are not kept apart);
//! - SQLite: an advisory lock on a file beside the database file (`<file>-anomalies.lock`).
//!
//! The server-side locks belong to the observer connection that took them and end with it; the file
//! lock ends when [`Exclusive`] is dropped. A run that finds the lock taken waits for it, polling, up
//! to [`WAIT`], then gives up with [`SuiteLockError::Busy`].
//!
//! Must never touch the suite's table: it only takes and holds the lock.

use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use super::conn::Conn;
use crate::db::DatabaseUrl;

/// How long a run waits for another one on the same database (a whole MariaDB matrix takes seconds;
/// one across three Galera nodes, tens of seconds).
pub(crate) const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// A session advisory lock key of PostgreSQL's: "racelab-anomalies" folded into 63 bits.
const PG_KEY: i64 = 0x7261_6365_6c61_6241;

/// Held for the whole suite: drop it after the table is dropped.
#[derive(Debug)]
pub(crate) struct Exclusive {
    _file: Option<std::fs::File>,
}

/// Takes the suite lock of `url`'s database through `observer` (a connection to it).
pub(crate) async fn take(url: &DatabaseUrl, observer: &mut Conn) -> Result<Exclusive, SuiteLockError> {
    let deadline = Instant::now() + WAIT;
    let mut waiting_said = false;
    loop {
        if let Some(taken) = try_take(url, observer).await? {
            return Ok(taken);
        }
        if Instant::now() >= deadline {
            return Err(SuiteLockError::Busy { waited: WAIT });
        }
        if !waiting_said {
            tracing::info!(url = %url.redacted(), "another anomalies run is using this database; waiting for it");
            waiting_said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SuiteLockError {
    /// Another run held the lock all that time.
    #[error("another racelab anomalies run is using this database (waited {waited:?} for it to end)")]
    Busy { waited: Duration },
    #[error("asking for the suite's lock: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the suite's lock file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// One attempt: `Some` when the lock is now ours.
async fn try_take(url: &DatabaseUrl, observer: &mut Conn) -> Result<Option<Exclusive>, SuiteLockError> {
    let sql = match observer {
        Conn::Postgres(_) => {
            format!("SELECT CASE WHEN pg_try_advisory_lock({PG_KEY}) THEN 1 ELSE 0 END::bigint, 0::bigint")
        }
        Conn::MySql(_) => {
            "SELECT COALESCE(CAST(GET_LOCK(CONCAT('racelab_anomalies.', DATABASE()), 0) AS SIGNED), 0), 0".to_owned()
        }
        Conn::Sqlite(_) => return try_lock_file(url),
    };
    let got = observer.run(&sql).await?.first().is_some_and(|(got, _)| *got == 1);
    Ok(got.then_some(Exclusive { _file: None }))
}

/// SQLite has no lock that outlives a transaction: a lock file beside the database file stands in.
/// An in-memory database is private to its connections, so it needs none.
fn try_lock_file(url: &DatabaseUrl) -> Result<Option<Exclusive>, SuiteLockError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
        return Ok(Some(Exclusive { _file: None }));
    }
    let mut path = file.as_os_str().to_owned();
    path.push("-anomalies.lock");
    let path = std::path::PathBuf::from(path);
    let file_error = |source| SuiteLockError::File { path: path.display().to_string(), source };
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(file_error)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(Exclusive { _file: Some(lock) })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(file_error(e)),
    }
}
