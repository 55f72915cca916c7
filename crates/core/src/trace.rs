//! A bounded, structured trace of one experiment: each worker's reads, lock waits, writes, commits,
//! conflicts, rollbacks and retries, with the values read and written, in the order the engine saw
//! them.
//!
//! Why: the counters say *that* increments vanished; the lost update itself is an interleaving, and
//! only the interleaving shows *which* commit overwrote *whose* increment. The engine records it as
//! it runs (never parsed from logs), and only when asked ([`Experiment::trace`]): with the trace off,
//! each hook costs one `None` check, so the lab and the bench pay nothing.
//!
//! Bounded: at most [`TraceLimit::max_events`] events are kept; the rest are dropped and
//! [`Trace::truncated`] says so. It is meant for runs small enough for a person to read (a few workers
//! by a few increments), as a page draws them. The tracer never holds its lock across an await, and
//! never keeps more than its limit.
//!
//! [`Experiment::trace`]: crate::Experiment::trace

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::error::ErrorKind;

/// How much of an experiment to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimit {
    /// Events kept; those after are dropped and the trace is marked truncated.
    pub max_events: usize,
}

impl TraceLimit {
    /// Enough for 4 workers x 10 increments with a few retries each (about 6 events per attempt).
    pub const DEFAULT_MAX_EVENTS: usize = 2_000;
}

impl Default for TraceLimit {
    fn default() -> Self {
        Self { max_events: Self::DEFAULT_MAX_EVENTS }
    }
}

/// What happened at one point of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    /// An attempt starts (a transaction, for the strategies that open one).
    Begin,
    /// The row was read without a lock: `like` and `version` are what was seen.
    Read,
    /// The attempt asks for a lock (the row's, the database's on SQLite, or an application lock) and
    /// may wait for it: the wait is the time until `lock_acquired`.
    LockWait,
    /// The lock is held and the row read under it: `like` and `version` are what was seen.
    LockAcquired,
    /// The new value was written (not yet committed inside a transaction): `like` is the value.
    Write,
    /// The attempt committed: `like` is the value it wrote; `overwrote` marks a lost update.
    Commit,
    /// The attempt failed on a conflict with another writer (`detail` says which kind); it may be
    /// retried.
    Conflict,
    /// The attempt's transaction was rolled back (`detail`: why).
    Rollback,
    /// The increment is attempted again after a conflict (`detail`: the conflict it survived).
    Retry,
    /// The attempt failed on anything other than a conflict (`detail`: the kind).
    Error,
}

/// One increment of one worker: both count from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct IncrementId {
    pub worker: usize,
    pub increment: u64,
}

/// One event of a trace.
///
/// With the `openapi` feature, the field docs are the descriptions the service's OpenAPI document
/// publishes (under the name `TraceEventSchema`); what only a Rust reader needs is in plain comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TraceEventSchema, description = "One event of a trace, recorded by the engine."))]
pub struct TraceEvent {
    /// Order of recording, from 0.
    pub seq: u64,
    /// Microseconds since the experiment's workers started.
    pub t_us: u64,
    /// From 0.
    // Which worker.
    pub worker: usize,
    /// The worker's increment, from 0.
    pub increment: u64,
    /// From 1.
    // Which attempt of the increment.
    pub attempt: u32,
    /// begin, read, lock_wait, lock_acquired, write, commit, conflict, rollback, retry or error.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: TraceKind,
    /// The value read (read, lock_acquired) or written (write, commit).
    pub like: Option<i64>,
    /// The version read.
    // On `read` and `lock_acquired`.
    pub version: Option<i64>,
    /// The error kind of a conflict, error, rollback or retry (deadlock, stale_version, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub detail: Option<ErrorKind>,
    /// On a commit that overwrote another worker's committed increment (the lost update): that one.
    //
    // A commit overwrote an increment when it wrote the very value that increment had already
    // committed. One mark per such commit, so the marks count the lost updates exactly when every
    // stale write is one behind (two workers that read the same value, as a forced race makes them). A
    // write staler than that (it read `v`, others committed `v+1` and `v+2` since) erases several
    // increments but names only the one that wrote the same value: the outcome's `lost` counts them
    // all. "Earlier" is the order the engine recorded the commits in, which follows the database's
    // commit order except when two commits end within microseconds of each other.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub overwrote: Option<IncrementId>,
}

/// The events of one experiment, and whether some were dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub events: Vec<TraceEvent>,
    /// More happened than [`TraceLimit::max_events`] allowed to keep.
    pub truncated: bool,
}

impl Trace {
    /// The commits that overwrote another worker's committed increment: one per lost update seen.
    pub fn overwrites(&self) -> impl Iterator<Item = &TraceEvent> {
        self.events.iter().filter(|e| e.overwrote.is_some())
    }

    /// The events of one kind, in order.
    pub fn of_kind(&self, kind: TraceKind) -> impl Iterator<Item = &TraceEvent> {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

/// Where the workers of one run record their events. Shared by them; the lock is held only to push
/// one event, never across an await.
#[derive(Debug)]
pub struct Tracer {
    start: Instant,
    limit: TraceLimit,
    /// Whether commits that repeat a value are lost updates: true when every commit writes the one
    /// row's new value (not for the sharded counter, whose slots repeat each other's values).
    marks_overwrites: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    trace: Trace,
    /// Who committed each value last.
    committed: HashMap<i64, IncrementId>,
}

/// What one event says beyond where it happened.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    pub like: Option<i64>,
    pub version: Option<i64>,
    pub detail: Option<ErrorKind>,
}

impl Tracer {
    pub(crate) fn new(limit: TraceLimit, marks_overwrites: bool) -> Self {
        Self { start: Instant::now(), limit, marks_overwrites, state: Mutex::default() }
    }

    /// Records one event of `at`.
    pub(crate) fn record(&self, at: IncrementId, attempt: u32, kind: TraceKind, seen: Seen) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Checked first, so that what is kept (events and committed values) stays within the limit.
        if state.trace.events.len() >= self.limit.max_events {
            state.trace.truncated = true;
            return;
        }
        let overwrote = match (kind, seen.like) {
            (TraceKind::Commit, Some(like)) if self.marks_overwrites => {
                state.committed.insert(like, at).filter(|earlier| earlier.worker != at.worker)
            }
            _ => None,
        };
        let event = TraceEvent {
            seq: state.trace.events.len() as u64,
            t_us: u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX),
            worker: at.worker,
            increment: at.increment,
            attempt,
            kind,
            like: seen.like,
            version: seen.version,
            detail: seen.detail,
            overwrote,
        };
        state.trace.events.push(event);
    }

    /// The trace so far.
    pub fn snapshot(&self) -> Trace {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).trace.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(tracer: &Tracer, worker: usize, increment: u64, like: i64) {
        let seen = Seen { like: Some(like), ..Seen::default() };
        tracer.record(IncrementId { worker, increment }, 1, TraceKind::Commit, seen);
    }

    #[test]
    fn a_commit_of_a_value_another_worker_committed_is_marked_as_overwriting_it() {
        let tracer = Tracer::new(TraceLimit::default(), true);
        commit(&tracer, 0, 0, 1);
        commit(&tracer, 1, 0, 1);
        commit(&tracer, 1, 1, 2);
        commit(&tracer, 2, 0, 2);
        let trace = tracer.snapshot();
        let marks: Vec<_> = trace.events.iter().map(|e| e.overwrote.map(|o| (o.worker, o.increment))).collect();
        assert_eq!(marks, [None, Some((0, 0)), None, Some((1, 1))]);
        assert_eq!(trace.overwrites().count(), 2);
        assert_eq!(trace.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn sharded_commits_repeat_values_without_losing_anything() {
        let tracer = Tracer::new(TraceLimit::default(), false);
        commit(&tracer, 0, 0, 1);
        commit(&tracer, 1, 0, 1);
        assert_eq!(tracer.snapshot().overwrites().count(), 0);
    }

    #[test]
    fn events_past_the_limit_are_dropped_and_the_trace_says_so() {
        let tracer = Tracer::new(TraceLimit { max_events: 2 }, true);
        for increment in 0..5 {
            commit(&tracer, 0, increment, increment as i64 + 1);
        }
        let trace = tracer.snapshot();
        assert_eq!((trace.events.len(), trace.truncated), (2, true));
    }
}
