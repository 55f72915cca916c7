//! What a run of a spec produced, as events in the order isolationtester reports them; every
//! output format (isolationtester's text, the lab's columns, JSON) is drawn from these.

use serde::Serialize;

use super::notice::Notice;
use crate::ErrorKind;

/// One result set: column names and rows, each value as the server's text (`None`: NULL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The error a step (or setup) ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// As the server names it: `ERROR`, `FATAL`.
    pub severity: String,
    /// The primary message.
    pub message: String,
    /// The SQLSTATE, when the server sent one.
    pub code: Option<String>,
    /// What racelab makes of it (deadlock, serialization failure, lock not available, ...).
    pub kind: ErrorKind,
}

/// What one step (or setup block) answered: a table per statement that returns rows, up to the
/// error if one ended it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub tables: Vec<Table>,
    pub error: Option<StepError>,
}

/// Where a setup or teardown block ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "part", content = "session", rename_all = "snake_case")]
pub enum Part {
    Setup,
    SessionSetup(String),
    SessionTeardown(String),
    Teardown,
}

/// One thing isolationtester would print, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A setup or teardown block answered rows (only its last statement's are shown).
    Rows { part: Part, table: Table },
    /// A setup or teardown block failed; the run goes on only when it was a teardown.
    PartFailed { part: Part, error: StepError },
    /// A notice from a session's server.
    Notice { session: String, notice: Notice },
    /// A step was sent and found waiting (for a lock, or held back by a blocker annotation).
    Waiting { step: String, session: String, sql: String },
    /// A step is reported complete: at once (`waited` false) or after it was reported waiting.
    Done { step: String, session: String, sql: String, waited: bool, answer: Answer },
    /// A step ran past the step timeout and was cancelled (`pg_cancel_backend`).
    Canceled { step: String, seconds: u64 },
}

/// One permutation as run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermutationRun {
    /// The step names, in order.
    pub steps: Vec<String>,
    pub events: Vec<Event>,
}

/// A whole spec as run on one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecRun {
    pub sessions: Vec<String>,
    pub permutations: Vec<PermutationRun>,
}
