//! What one attempt of an operation sees ([`OpCtx`]) and how it answers ([`Answer`]). An error is not
//! an answer: it is a [`DbError`](crate::DbError), which the runner retries, counts as failed, or
//! counts in doubt.

use super::trace::{OpStep, OpTracer};
use crate::strategy::RaceGate;

/// The business rule's answer to an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Done: the runner commits it, and once committed it is acknowledged.
    Done,
    /// Refused by the business rule (sold out, insufficient funds): rolled back, counted as refused.
    Refused,
}

/// Where one attempt stands: which worker, which of its operations, which attempt, and the race gate
/// it stops at after reading (its first operation's first attempt, under `force_race`).
#[derive(Debug, Clone, Copy)]
pub struct OpCtx<'a> {
    pub worker: usize,
    /// Which of the worker's operations, from 0.
    pub op: u64,
    /// From 1.
    pub attempt: u32,
    pub(crate) race: Option<&'a RaceGate>,
    pub(crate) tracer: Option<&'a OpTracer>,
}

impl OpCtx<'_> {
    /// Called by a strategy between its read and its write: under `force_race`, waits until every
    /// racing worker has read, so that none of them writes on what another has not yet seen.
    pub async fn after_read(&self) {
        if let Some(tracer) = self.tracer {
            tracer.record(self.worker, self.op, self.attempt, OpStep::Read);
        }
        if let (Some(gate), 1) = (self.race, self.attempt) {
            gate.wait().await;
        }
    }
}
