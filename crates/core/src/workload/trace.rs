//! A workload run's trace, for runs small enough to read: each attempt of each operation (what it
//! was asked, when it read, how it ended) in the order the engine saw them, and, once the invariant
//! is checked, the acknowledged operations that broke it and those they raced with.
//!
//! Why: the invariant says *that* a unit was oversold or a slot booked twice; only the interleaving
//! shows which purchase went past the stock and which one read the same stock beside it. Recorded as
//! the run goes (never parsed from logs) and only when asked ([`WorkloadExperiment::trace`]); bounded
//! like the counter's trace, and its lock is never held across an await.
//!
//! [`WorkloadExperiment::trace`]: super::WorkloadExperiment::trace

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::error::ErrorKind;
use crate::trace::TraceLimit;

/// What happened at one point of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpStep {
    /// An attempt starts (its transaction, for the strategies that open one); `operation` is the
    /// operation asked, as `{:?}` writes it (`Book { room: 0, slot: 1 }`).
    Begin { operation: String },
    /// The attempt has read what it decides on (the point where `force_race` holds it).
    Read,
    /// Done and committed: acknowledged.
    Acknowledged,
    /// Refused by the business rule (sold out, already booked): rolled back.
    Refused,
    /// Failed on an error of this kind and is tried again.
    Retry { error: ErrorKind },
    /// Failed on an error of this kind, for good.
    Failed { error: ErrorKind },
    /// The answer to its commit was lost: it may be in the database or not.
    InDoubt,
}

/// One event of a traced run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpEvent {
    /// Microseconds since the workers started.
    pub t_us: u64,
    pub worker: usize,
    /// Which of the worker's operations, from 0.
    pub op: u64,
    /// From 1.
    pub attempt: u32,
    #[serde(flatten)]
    pub step: OpStep,
}

/// The part an acknowledged operation played in a broken invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Acknowledged past what the invariant allows (the oversold unit, the second booking, the last
    /// doctor off call): the last to commit of its group.
    Broke,
    /// Acknowledged in the same group while one that broke it was under way.
    RacedWith,
}

/// An operation the trace marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Marked {
    pub worker: usize,
    pub op: u64,
    pub role: Role,
}

/// The trace of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OpTrace {
    pub events: Vec<OpEvent>,
    /// Events were dropped past the limit.
    pub truncated: bool,
    /// The acknowledged operations that broke the invariant and those they raced with (empty when
    /// it held, or for a workload whose operations do not say what they contend for: `queue`, whose
    /// job is chosen as it runs, and `transfer`, whose invariant is a sum over every account).
    pub marked: Vec<Marked>,
}

/// Records a run's events, up to its limit.
#[derive(Debug)]
pub(crate) struct OpTracer {
    started: Instant,
    limit: usize,
    kept: Mutex<(Vec<OpEvent>, bool)>,
}

impl OpTracer {
    pub(crate) fn new(limit: TraceLimit, started: Instant) -> Self {
        Self { started, limit: limit.max_events, kept: Mutex::new((Vec::new(), false)) }
    }

    pub(crate) fn record(&self, worker: usize, op: u64, attempt: u32, step: OpStep) {
        let t_us = self.started.elapsed().as_micros() as u64;
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.0.len() < self.limit {
            kept.0.push(OpEvent { t_us, worker, op, attempt, step });
        } else {
            kept.1 = true;
        }
    }

    /// The events so far, in the order recorded.
    pub(crate) fn snapshot(&self) -> OpTrace {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut events = kept.0.clone();
        // Workers record under one lock, but their clocks are read before it: order by time.
        events.sort_by_key(|e| e.t_us);
        OpTrace { events, truncated: kept.1, marked: Vec::new() }
    }
}

/// An acknowledged operation: who made it, and when its last attempt began and was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRef {
    pub worker: usize,
    pub op: u64,
    pub began: Instant,
    pub done: Instant,
}

/// Marks the operations of each group (acknowledged operations contending for one limit: one item's
/// stock, one shift's doctors, one room's slot) that went past what the group allows: the last
/// `count - allowed` to be acknowledged broke the invariant; the others of the group whose attempt
/// overlapped one of those raced with it.
pub(crate) fn mark(groups: BTreeMap<i64, (u64, Vec<AckRef>)>) -> Vec<Marked> {
    let mut marked = Vec::new();
    for (_, (allowed, mut acked)) in groups {
        let Some(over) = (acked.len() as u64).checked_sub(allowed).filter(|over| *over > 0) else { continue };
        acked.sort_by_key(|a| a.done);
        let (kept, broke) = acked.split_at(acked.len() - over as usize);
        for b in broke {
            marked.push(Marked { worker: b.worker, op: b.op, role: Role::Broke });
        }
        for k in kept {
            if broke.iter().any(|b| k.began < b.done && b.began < k.done) {
                marked.push(Marked { worker: k.worker, op: k.op, role: Role::RacedWith });
            }
        }
    }
    marked
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ack(worker: usize, began_ms: u64, done_ms: u64, t0: Instant) -> AckRef {
        AckRef { worker, op: 0, began: t0 + Duration::from_millis(began_ms), done: t0 + Duration::from_millis(done_ms) }
    }

    #[test]
    fn the_last_past_the_limit_broke_it_and_the_overlapping_ones_raced() {
        let t0 = Instant::now();
        // One slot (allowed 1): worker 0 booked 0-10 ms, worker 1 10-20 ms (overlapping), worker 2 30-40 ms
        // after both. Two past the limit: workers 1 and 2 broke it; worker 0 overlapped worker 1.
        let groups = BTreeMap::from([(7, (1, vec![ack(2, 30, 40, t0), ack(0, 0, 10, t0), ack(1, 5, 20, t0)]))]);
        let marked = mark(groups);
        assert_eq!(
            marked,
            vec![
                Marked { worker: 1, op: 0, role: Role::Broke },
                Marked { worker: 2, op: 0, role: Role::Broke },
                Marked { worker: 0, op: 0, role: Role::RacedWith },
            ]
        );
    }

    #[test]
    fn a_group_within_its_limit_marks_nothing() {
        let t0 = Instant::now();
        let groups = BTreeMap::from([(1, (2, vec![ack(0, 0, 10, t0), ack(1, 5, 20, t0)])), (2, (0, vec![]))]);
        assert!(mark(groups).is_empty());
    }
}
