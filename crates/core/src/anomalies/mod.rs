//! Hermitage's isolation tests, automated: which anomalies each isolation level of a database really
//! prevents, and how (a lock wait, or an error of which kind at which step).
//!
//! Each [`Case`] is a fixed schedule of statements over two or three connections on a table of its
//! own (`racelab_anomaly_test`, created and dropped in the database it is pointed at); each [`Level`]
//! is an isolation level (or SQLite transaction kind) of the backend. A step that waits for a lock is
//! recognised from the database's own lock view, read live (PostgreSQL `pg_locks`, InnoDB's monitor)
//! or, on SQLite, from its busy error; the schedule then goes on with
//! the other transactions, whose commit releases it. The result is a [`Matrix`] of verdicts, each
//! next to Hermitage's published one where there is one.
//!
//! No HTTP and no terminal here: the command line prints the matrix.

mod case;
mod conn;
mod exclusive;
mod hermitage;
mod level;
mod schedule;

use std::time::Duration;

use serde::Serialize;

pub use self::case::Case;
use self::case::TABLE;
use self::conn::{Conn, Rows};
pub use self::exclusive::SuiteLockError;
pub use self::hermitage::{Expectation, Published, expectation};
pub use self::level::Level;
use self::schedule::Runner;
pub use self::schedule::{ScheduleError, StepReport, StepResult};
use crate::db::DatabaseUrl;
use crate::{Backend, ErrorKind};

/// Whether the anomaly happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Anomaly,
    Prevented,
}

/// What the database did that a client could see: the first error, else the first lock wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum How {
    /// A step failed with an error of this kind.
    Error { step: usize, tx: String, kind: ErrorKind, code: Option<String> },
    /// A step waited for a lock until another transaction ended.
    Blocked { step: usize, tx: String },
    /// Every step answered at once: what each saw decided (a snapshot, or nothing to prevent).
    Nothing,
}

impl How {
    fn of(steps: &[StepReport]) -> How {
        let error = steps.iter().find_map(|s| match &s.result {
            StepResult::Failed { kind, code, .. } => {
                Some(How::Error { step: s.step, tx: s.tx.clone(), kind: *kind, code: code.clone() })
            }
            _ => None,
        });
        let blocked = || {
            steps.iter().find_map(|s| match s.result {
                StepResult::Done { blocked: true } | StepResult::Failed { blocked: true, .. } => {
                    Some(How::Blocked { step: s.step, tx: s.tx.clone() })
                }
                _ => None,
            })
        };
        error.or_else(blocked).unwrap_or(How::Nothing)
    }
}

/// One case at one level.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub case: Case,
    pub verdict: Verdict,
    pub how: How,
    /// Hermitage's published result for this case and level, if it published one.
    pub hermitage: Option<Expectation>,
    /// The measured verdict disagrees with Hermitage's.
    pub differs_from_hermitage: bool,
    pub steps: Vec<StepReport>,
    /// `(id, value)` after every transaction ended.
    pub final_rows: Rows,
}

/// One level: a column of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub level: Level,
    pub name: &'static str,
    /// Why the level could not be run on this server (e.g. no `innodb_snapshot_isolation`).
    pub unavailable: Option<String>,
    pub cells: Vec<Cell>,
}

/// Every case at every level of one database.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub backend: Backend,
    /// The database URLs without their passwords: one, or the Galera nodes the transactions of a
    /// case were spread over (T1 on the first, T2 on the second, ...).
    pub urls: Vec<String>,
    pub server_version: String,
    pub columns: Vec<Column>,
}

impl Matrix {
    /// The cells whose verdict disagrees with Hermitage's, with their level.
    pub fn differences(&self) -> impl Iterator<Item = (Level, &Cell)> {
        self.columns
            .iter()
            .flat_map(|c| c.cells.iter().filter(|cell| cell.differs_from_hermitage).map(|cell| (c.level, cell)))
    }
}

/// Why the suite could not run (a case whose steps fail is a result, not this).
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    #[error("no database URL given")]
    NoUrl,
    #[error("several URLs are the nodes of one MariaDB Galera cluster; {backend} has no such thing")]
    NotACluster { backend: Backend },
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    /// Another run is using the database (or its lock could not be asked for).
    #[error("{url}: {source}")]
    Exclusive { url: String, source: exclusive::SuiteLockError },
    #[error("preparing the table {TABLE} on {url}: {source}")]
    Setup { url: String, source: sqlx::Error },
    #[error("{case} at {level}: {source}")]
    Schedule { case: Case, level: Level, source: ScheduleError },
}

/// Runs every case at every level of the database at `url`. `lock_timeout` bounds every lock wait
/// (a schedule that goes wrong ends with an error, not a hang). The table the cases use is created
/// first and dropped at the end.
pub async fn run(url: &DatabaseUrl, lock_timeout: Duration) -> Result<Matrix, AnomalyError> {
    run_cases(std::slice::from_ref(url), lock_timeout, Level::of(url.backend()), &Case::ALL).await
}

/// Runs the given cases at the given levels (all of which must belong to the URLs' backend). With
/// several URLs (the nodes of one MariaDB Galera cluster) the transactions of a case go to different
/// nodes: T1 to the first, T2 to the second, T3 to the third (or the first again).
pub async fn run_cases(
    urls: &[DatabaseUrl],
    lock_timeout: Duration,
    levels: &[Level],
    cases: &[Case],
) -> Result<Matrix, AnomalyError> {
    let Some(first) = urls.first() else {
        return Err(AnomalyError::NoUrl);
    };
    if urls.len() > 1 && urls.iter().any(|u| u.backend() != Backend::MySql) {
        return Err(AnomalyError::NotACluster { backend: first.backend() });
    }
    let causal = urls.len() > 1;
    let mut observers = Vec::with_capacity(urls.len());
    for url in urls {
        let conn = Conn::open(url, lock_timeout, causal)
            .await
            .map_err(|source| AnomalyError::Connect { url: url.redacted(), source })?;
        observers.push(conn);
    }
    let setup = |source| AnomalyError::Setup { url: first.redacted(), source };
    let exclusive = exclusive::take(first, &mut observers[0])
        .await
        .map_err(|source| AnomalyError::Exclusive { url: first.redacted(), source })?;
    let server_version = observers[0].version().await.map_err(setup)?;
    observers[0].run(&format!("DROP TABLE IF EXISTS {TABLE}")).await.map_err(setup)?;
    let create = format!("CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)");
    observers[0].run(&create).await.map_err(setup)?;
    let columns = run_columns(urls, &mut observers, lock_timeout, levels, cases).await;
    // Dropped whatever happened; a failure to drop is not worth hiding the result for.
    let _ = observers[0].run(&format!("DROP TABLE IF EXISTS {TABLE}")).await;
    for observer in observers {
        observer.close().await;
    }
    drop(exclusive);
    let urls = urls.iter().map(DatabaseUrl::redacted).collect();
    Ok(Matrix { backend: first.backend(), urls, server_version, columns: columns? })
}

async fn run_columns(
    urls: &[DatabaseUrl],
    observers: &mut [Conn],
    lock_timeout: Duration,
    levels: &[Level],
    cases: &[Case],
) -> Result<Vec<Column>, AnomalyError> {
    let mut columns = Vec::with_capacity(levels.len());
    for &level in levels {
        let mut column = Column { level, name: level.name(), unavailable: None, cells: Vec::new() };
        if let Some(probe) = level.probe_sql()
            && let Err(err) = observers[0].run(probe).await
        {
            column.unavailable = Some(err.to_string());
            columns.push(column);
            continue;
        }
        let mut runner = Runner::new(urls, observers, lock_timeout);
        for &case in cases {
            let run = runner.run(case, level).await.map_err(|source| AnomalyError::Schedule { case, level, source })?;
            let hermitage = expectation(level, case);
            column.cells.push(Cell {
                case,
                verdict: if run.anomaly { Verdict::Anomaly } else { Verdict::Prevented },
                how: How::of(&run.steps),
                hermitage,
                differs_from_hermitage: hermitage.is_some_and(|e| !e.published.agrees(run.anomaly)),
                steps: run.steps,
                final_rows: run.final_rows,
            });
        }
        columns.push(column);
    }
    Ok(columns)
}
