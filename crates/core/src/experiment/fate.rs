//! How one increment ended: the three answers the accounting adds up (acknowledged + failed + in doubt
//! = attempted). Its own module, below the worker that decides it and the progress and statistics that
//! count it, so that neither of those imports the worker. It must never grow a fourth answer: an
//! increment whose fate is unknown is in doubt, not guessed.

use crate::error::ErrorKind;

/// How one increment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// The strategy reported it done: it must be in the row.
    Acknowledged,
    /// Known not applied: the database refused it, or rolled it back.
    Failed(ErrorKind),
    /// The answer to the statement that would have committed it was lost.
    InDoubt,
}
