//! Hermitage's isolation tests, automated: which anomalies each isolation level of a database really
//! prevents, and how (a lock wait, or an error of which kind at which step).
//!
//! Each [`Case`] is a spec file (`specs/hermitage/`, embedded in the binary): a fixed schedule of
//! statements over two or three sessions on a table of its own (`racelab_anomaly_test`, created and
//! dropped in the database it is pointed at); each [`Level`] is an isolation level (or SQLite
//! transaction kind) of the backend. One engine runs them: the spec runner ([`crate::spec`]), with
//! every transaction opened at the level of the column and a schedule's semantics
//! ([`spec::Semantics::Schedule`]). A step that waits for a lock is recognised from the database
//! itself (PostgreSQL's `pg_isolation_test_session_is_blocked`, InnoDB's monitor); on SQLite a lock
//! it cannot have is a busy error. The schedule then goes on with the other transactions, whose
//! commit releases it. The result is a [`Matrix`] of verdicts, each next to Hermitage's published
//! one where there is one.
//!
//! No HTTP and no terminal here: the command line prints the matrix.

mod case;
mod conn;
mod exclusive;
mod hermitage;
mod outcome;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use self::case::TABLE;
pub use self::case::{Case, NotAsWritten};
use self::conn::Conn;
pub use self::exclusive::SuiteLockError;
pub use self::hermitage::{Expectation, Published, expectation};
pub use self::outcome::{Rows, StepReport, StepResult};
use crate::db::DatabaseUrl;
pub use crate::spec::Level;
use crate::spec::{self, RunOptions, Semantics};
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
    /// A case's embedded spec file does not parse (a build with a broken `specs/hermitage/`).
    #[error("the spec of {case}: {source}")]
    Spec { case: Case, source: spec::ParseError },
    #[error("{case} at {level}: {source}")]
    Run { case: Case, level: Level, source: spec::RunError },
    /// The run stopped before the schedule's end (a setup failed, steps waited past the timeout).
    #[error("{case} at {level}: {message}")]
    Stopped { case: Case, level: Level, message: String },
    #[error("{case} at {level}: {source}")]
    NotAsWritten { case: Case, level: Level, source: NotAsWritten },
}

/// Runs every case at every level of the database at `url`. `lock_timeout` bounds every lock wait
/// (a step waiting longer is cancelled: a schedule that goes wrong ends with an error, not a hang).
/// Each case's spec creates the table it uses and drops it.
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
    let mut observer = Conn::open(first, lock_timeout)
        .await
        .map_err(|source| AnomalyError::Connect { url: first.redacted(), source })?;
    let setup = |source| AnomalyError::Setup { url: first.redacted(), source };
    let exclusive = exclusive::take(first, &mut observer)
        .await
        .map_err(|source| AnomalyError::Exclusive { url: first.redacted(), source })?;
    let server_version = observer.version().await.map_err(setup)?;
    // A run that was killed may have left the table behind; the specs' setup creates it.
    observer.run(&format!("DROP TABLE IF EXISTS {TABLE}")).await.map_err(setup)?;
    let columns = run_columns(urls, &mut observer, lock_timeout, levels, cases).await;
    // Dropped whatever happened; a failure to drop is not worth hiding the result for.
    let _ = observer.run(&format!("DROP TABLE IF EXISTS {TABLE}")).await;
    observer.close().await;
    drop(exclusive);
    let urls = urls.iter().map(DatabaseUrl::redacted).collect();
    Ok(Matrix { backend: first.backend(), urls, server_version, columns: columns? })
}

async fn run_columns(
    urls: &[DatabaseUrl],
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
        for &case in cases {
            column.cells.push(run_case(urls, lock_timeout, level, case).await?);
        }
        columns.push(column);
    }
    Ok(columns)
}

/// Runs `case`'s spec at `level` as a schedule, and reads its cell from what happened. On a cluster,
/// session `i` (T1, T2, T3) runs on node `i % nodes`.
async fn run_case(
    urls: &[DatabaseUrl],
    lock_timeout: Duration,
    level: Level,
    case: Case,
) -> Result<Cell, AnomalyError> {
    let spec = spec::parse(case.spec_text()).map_err(|source| AnomalyError::Spec { case, source })?;
    let options = RunOptions { step_timeout: lock_timeout, level: Some(level), semantics: Semantics::Schedule };
    let permutations = spec.permutations();
    let outcome = spec::run_with(urls, &spec, &permutations, options, &AtomicBool::new(false))
        .await
        .map_err(|source| AnomalyError::Run { case, level, source })?;
    let stopped = |message: String| AnomalyError::Stopped { case, level, message };
    if let Some(halt) = outcome.stopped {
        return Err(stopped(halt.message));
    }
    let (Some(permutation), Some(run)) = (permutations.first(), outcome.run.permutations.first()) else {
        return Err(stopped("the spec has no permutation".to_owned()));
    };
    let run = outcome::case_run(&spec, permutation, level, run);
    let anomaly = case.verdict(&run).map_err(|source| AnomalyError::NotAsWritten { case, level, source })?;
    let hermitage = expectation(level, case);
    Ok(Cell {
        case,
        verdict: if anomaly { Verdict::Anomaly } else { Verdict::Prevented },
        how: How::of(&run.steps),
        hermitage,
        differs_from_hermitage: hermitage.is_some_and(|e| !e.published.agrees(anomaly)),
        steps: run.steps,
        final_rows: run.final_rows,
    })
}
