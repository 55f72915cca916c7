//! What a case's spec run showed, as the matrix reports it: each transaction's BEGIN (its session's
//! setup) and each step of the schedule, with what it answered, whether it waited for a lock first,
//! and the table after every transaction ended (the spec's last step, `rows`, in session `check`).
//!
//! Reads a finished run only: nothing here runs a statement or decides a verdict.

use serde::Serialize;

use crate::ErrorKind;
use crate::spec::Level;
use crate::spec::{Answer, Event, Part, Permutation, PermutationRun, Spec, StepError};

/// The rows `(id, value)` a step returned (empty for statements that return none).
pub type Rows = Vec<(i64, i64)>;

/// The session of every Hermitage spec that reads the table once the transactions ended.
const CHECK: &str = "check";

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    /// It answered (`blocked`: after waiting for a lock while other steps ran).
    Done { blocked: bool },
    /// It failed with an error of this kind (and code: PostgreSQL's SQLSTATE, MariaDB's error
    /// number, SQLite's extended result code).
    Failed { blocked: bool, kind: ErrorKind, code: Option<String> },
    /// Its transaction had already failed.
    NotRun,
}

/// One step as run: which transaction, what SQL, what happened, what it returned.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based position in the schedule (the BEGINs first), as "error at step N" counts.
    pub step: usize,
    /// "T1", "T2" or "T3".
    pub tx: String,
    pub sql: String,
    #[serde(flatten)]
    pub result: StepResult,
    /// The `(id, value)` rows the step returned.
    pub rows: Rows,
}

impl StepReport {
    /// Whether the step ran and answered without an error.
    pub(crate) fn answered(&self) -> bool {
        matches!(self.result, StepResult::Done { .. })
    }
}

/// A case as run: every step, which transactions committed, and the table at the end (what its
/// verdict reads: [`super::Case::verdict`]).
pub(crate) struct CaseRun {
    pub steps: Vec<StepReport>,
    /// Per transaction: its COMMIT answered, and nothing before it in the transaction failed.
    pub committed: Vec<bool>,
    pub final_rows: Rows,
}

/// Reads the run of `permutation` (the spec's schedule) of `spec` at `level`.
pub(crate) fn case_run(spec: &Spec, permutation: &Permutation, level: Level, run: &PermutationRun) -> CaseRun {
    let txs: Vec<&str> = spec.sessions.iter().map(|s| s.name.as_str()).filter(|name| *name != CHECK).collect();
    let tx_name = |session: &str| txs.iter().position(|t| *t == session).map(|t| format!("T{}", t + 1));
    let mut steps = Vec::new();
    for (t, session) in txs.iter().enumerate() {
        let refused = run.events.iter().find_map(|event| match event {
            Event::PartFailed { part: Part::SessionSetup(name), error } if name == session => Some(error),
            _ => None,
        });
        let result = refused.map_or(StepResult::Done { blocked: false }, |error| failed(false, error));
        let (step, tx) = (steps.len() + 1, format!("T{}", t + 1));
        steps.push(StepReport { step, tx, sql: level.begin_sql().to_owned(), result, rows: Vec::new() });
    }
    let mut final_rows = Vec::new();
    for pstep in &permutation.steps {
        let done = run.events.iter().find_map(|event| match event {
            Event::Done { step, waited, answer, .. } if *step == pstep.name => Some((*waited, answer)),
            _ => None,
        });
        let session = spec.sessions[pstep.step.session].name.as_str();
        let Some(tx) = tx_name(session) else {
            final_rows = done.map(|(_, answer)| rows(answer)).unwrap_or_default();
            continue;
        };
        let (result, rows) = match done {
            None => (StepResult::NotRun, Vec::new()),
            Some((waited, Answer { error: Some(error), .. })) => (failed(waited, error), Vec::new()),
            Some((waited, answer)) => (StepResult::Done { blocked: waited }, rows(answer)),
        };
        let sql = spec.step(pstep.step).sql.trim().trim_end_matches(';').trim_end().to_owned();
        steps.push(StepReport { step: steps.len() + 1, tx, sql, result, rows });
    }
    let committed = (1..=txs.len())
        .map(|t| {
            let tx = format!("T{t}");
            let mut own = steps.iter().filter(|s| s.tx == tx);
            own.all(|s| s.answered()) && steps.iter().any(|s| s.tx == tx && s.sql.eq_ignore_ascii_case("COMMIT"))
        })
        .collect();
    CaseRun { steps, committed, final_rows }
}

fn failed(blocked: bool, error: &StepError) -> StepResult {
    StepResult::Failed { blocked, kind: error.kind, code: error.code.clone() }
}

/// The `(id, value)` rows of an answer's two-column tables; any other shape is not the case table's.
fn rows(answer: &Answer) -> Rows {
    let int = |value: &Option<String>| value.as_deref().and_then(|v| v.parse::<i64>().ok());
    answer
        .tables
        .iter()
        .filter(|table| table.columns.len() == 2)
        .flat_map(|table| &table.rows)
        .filter_map(|row| Some((int(&row[0])?, int(&row[1])?)))
        .collect()
}
