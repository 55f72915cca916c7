//! Hermitage's isolation tests, automated: which anomalies each isolation level of a database really
//! prevents, and how (a lock wait, or an error of which kind at which step).
//!
//! Each [`Case`] is a fixed schedule of statements over two or three connections on a table of its
//! own (`racelab_anomaly_test`, created and dropped in the database it is pointed at); each [`Level`]
//! is an isolation level (or SQLite transaction kind) of the backend. A step that waits for a lock is
//! recognised from the database's own lock view (PostgreSQL `pg_locks`, InnoDB
//! `information_schema.innodb_trx`) or, on SQLite, from its busy error; the schedule then goes on with
//! the other transactions, whose commit releases it. The result is a [`Matrix`] of verdicts, each
//! next to Hermitage's published one where there is one.
//!
//! No HTTP and no terminal here: the command line prints the matrix.

mod case;
mod conn;
mod hermitage;
mod level;
mod schedule;

use std::time::Duration;

use serde::Serialize;

pub use self::case::Case;
use self::case::TABLE;
use self::conn::{Conn, Rows};
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
    /// The database URL without its password.
    pub url: String,
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
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("preparing the table {TABLE} on {url}: {source}")]
    Setup { url: String, source: sqlx::Error },
    #[error("{case} at {level}: {source}")]
    Schedule { case: Case, level: Level, source: ScheduleError },
}

/// Runs every case at every level of the database at `url`. `lock_timeout` bounds every lock wait
/// (a schedule that goes wrong ends with an error, not a hang). The table the cases use is created
/// first and dropped at the end.
pub async fn run(url: &DatabaseUrl, lock_timeout: Duration) -> Result<Matrix, AnomalyError> {
    run_cases(url, lock_timeout, Level::of(url.backend()), &Case::ALL).await
}

/// Runs the given cases at the given levels (all of which must belong to the URL's backend).
pub async fn run_cases(
    url: &DatabaseUrl,
    lock_timeout: Duration,
    levels: &[Level],
    cases: &[Case],
) -> Result<Matrix, AnomalyError> {
    let redacted = url.redacted();
    let mut observer = Conn::open(url, lock_timeout)
        .await
        .map_err(|source| AnomalyError::Connect { url: redacted.clone(), source })?;
    let setup = |source| AnomalyError::Setup { url: redacted.clone(), source };
    let server_version = observer.version().await.map_err(setup)?;
    observer.run(&format!("DROP TABLE IF EXISTS {TABLE}")).await.map_err(setup)?;
    observer
        .run(&format!("CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)"))
        .await
        .map_err(setup)?;
    let columns = run_columns(url, &mut observer, lock_timeout, levels, cases).await;
    // Dropped whatever happened; a failure to drop is not worth hiding the result for.
    let _ = observer.run(&format!("DROP TABLE IF EXISTS {TABLE}")).await;
    observer.close().await;
    Ok(Matrix { backend: url.backend(), url: redacted, server_version, columns: columns? })
}

async fn run_columns(
    url: &DatabaseUrl,
    observer: &mut Conn,
    lock_timeout: Duration,
    levels: &[Level],
    cases: &[Case],
) -> Result<Vec<Column>, AnomalyError> {
    let mut columns = Vec::with_capacity(levels.len());
    for &level in levels {
        let mut column = Column { level, name: level.name(), unavailable: None, cells: Vec::new() };
        if let Some(probe) = level.probe_sql()
            && let Err(err) = observer.run(probe).await
        {
            column.unavailable = Some(err.to_string());
            columns.push(column);
            continue;
        }
        let mut runner = Runner::new(url, observer, lock_timeout);
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
