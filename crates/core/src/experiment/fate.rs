//! How one operation ended: the answers the accounting adds up (acknowledged + refused + failed + in
//! doubt = attempted). An increment of the counter is never refused; a workload's operation may be (sold
//! out, insufficient funds: the business rule's answer). Its own module, below the workers that decide
//! it and the progress and statistics that count it, so that neither of those imports a worker. It
//! must never grow a guess: an operation whose fate is unknown is in doubt.

use crate::error::ErrorKind;

/// How one increment (or a workload's operation) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The strategy reported it done: it must be in the row.
    Acknowledged,
    /// Answered "no" by the business rule (sold out, insufficient funds): known not applied, and
    /// not an error. Never the counter's.
    Refused,
    /// Known not applied: the database refused it, or rolled it back.
    Failed(ErrorKind),
    /// The answer to the statement that would have committed it was lost.
    InDoubt,
}
