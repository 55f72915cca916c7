//! The ways to increment one row, each written once against [`Session`].
//!
//! Each strategy is a *unit of work* that adds an amount to the row ([`Strategy::unit`]), in the
//! transaction its [`Strategy::tx_mode`] names, releasing afterwards what outlives that transaction
//! ([`Strategy::release`]). Two callers run the same units: the experiment, one increment per attempt
//! ([`Strategy::attempt`], traced), and the [liker](crate::likes), a batch of likes in one transaction
//! with their idempotency keys.
//!
//! A strategy never loops: whether a failed attempt is run again is the caller's decision, under the
//! one [`RetryPolicy`](crate::RetryPolicy). It never speaks SQL either: every statement is a
//! [`Session`] method.

mod advisory;
mod atomic;
mod naive;
mod optimistic;
mod pessimistic;
mod serializable;
mod sharded;
mod versioned;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Barrier;

use crate::db::{Backend, LockMode, Pk, Session, TxMode};
use crate::error::{AtMaximum, DbError};
use crate::trace::{IncrementId, Seen, TraceKind, Tracer};
use crate::workload::OpCtx;

pub use self::sharded::{DEFAULT_SLOTS, MAX_SLOTS};

/// How one increment of `posts.like` is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Read, then write back `like + 1`, in a transaction at the database's default isolation. Loses
    /// updates: kept to show the problem (the seed's `/2th`).
    Naive,
    /// One statement: `UPDATE posts SET like = like + 1`.
    Atomic,
    /// `SELECT ... FOR UPDATE` in a transaction, then write (SQLite: `BEGIN IMMEDIATE`).
    Pessimistic(LockMode),
    /// Read `like, version`; write only `WHERE version = <read>`; a miss is a conflict to retry.
    Optimistic,
    /// Entity style, as an ORM's version counter: load a [`Post`](crate::Post), change it, `save()`;
    /// a stale save is retried by re-running the whole unit of work.
    Versioned,
    /// The same without the retry, as the seed did: each conflict silently drops an increment.
    VersionedNoRetry,
    /// The naive read-modify-write inside a SERIALIZABLE transaction; the database aborts one of two
    /// conflicting transactions, and the retry runs it again.
    Serializable,
    /// An application lock keyed by the row (`pg_advisory_xact_lock`, `GET_LOCK`) around the naive
    /// read-modify-write.
    Advisory,
    /// The counter split over `slots` rows: one atomic upsert on a random slot; read as the sum.
    Sharded { slots: u16 },
}

/// The strategies `all` stands for, in the order they are shown.
const ALL: [Strategy; 9] = [
    Strategy::Naive,
    Strategy::Atomic,
    Strategy::Pessimistic(LockMode::Wait),
    Strategy::Optimistic,
    Strategy::Versioned,
    Strategy::VersionedNoRetry,
    Strategy::Serializable,
    Strategy::Advisory,
    // Safe, and the answer to the hot row's ceiling: shown beside the single-row strategies.
    Strategy::Sharded { slots: DEFAULT_SLOTS },
];

impl Strategy {
    /// Every strategy the backend supports (SQLite has no application locks).
    pub fn all_for(backend: Backend) -> Vec<Strategy> {
        ALL.into_iter().filter(|s| s.supported_on(backend)).collect()
    }

    /// Every name the parser accepts, for help texts and error messages.
    pub fn names() -> &'static [&'static str] {
        &[
            "naive",
            "atomic",
            "pessimistic",
            "pessimistic-nowait",
            "pessimistic-skip-locked",
            "optimistic",
            "versioned",
            "versioned-no-retry",
            "serializable",
            "advisory",
            "sharded",
        ]
    }

    /// Whether the strategy can run on this backend at all.
    pub fn supported_on(self, backend: Backend) -> bool {
        !(self == Strategy::Advisory && backend == Backend::Sqlite)
    }

    /// The name used on the command line, in URLs and in output.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Atomic => "atomic",
            Strategy::Pessimistic(LockMode::Wait) => "pessimistic",
            Strategy::Pessimistic(LockMode::NoWait) => "pessimistic-nowait",
            Strategy::Pessimistic(LockMode::SkipLocked) => "pessimistic-skip-locked",
            Strategy::Optimistic => "optimistic",
            Strategy::Versioned => "versioned",
            Strategy::VersionedNoRetry => "versioned-no-retry",
            Strategy::Serializable => "serializable",
            Strategy::Advisory => "advisory",
            Strategy::Sharded { .. } => "sharded",
        }
    }

    /// Whether failed attempts are run again under the retry policy. The naive strategy and the
    /// seed's versioning demo never retry: that is what they demonstrate.
    pub fn retries(self) -> bool {
        !matches!(self, Strategy::Naive | Strategy::VersionedNoRetry)
    }

    /// Whether the strategy reads the row without locking it first, so that workers can be made to
    /// read before any of them writes (see [`RaceGate`]).
    pub fn reads_unlocked(self) -> bool {
        matches!(
            self,
            Strategy::Naive
                | Strategy::Optimistic
                | Strategy::Versioned
                | Strategy::VersionedNoRetry
                | Strategy::Serializable
        )
    }

    /// The same strategy with `slots` slots if it is [`Strategy::Sharded`]; any other is unchanged.
    pub fn with_slots(self, slots: u16) -> Self {
        match self {
            Strategy::Sharded { .. } => Strategy::Sharded { slots },
            other => other,
        }
    }

    /// The transaction the strategy's unit of work runs in; `None` when it runs in autocommit (one
    /// statement, or the optimistic read and conditional write, which need no transaction).
    pub fn tx_mode(self) -> Option<TxMode> {
        match self {
            Strategy::Naive | Strategy::Versioned | Strategy::VersionedNoRetry | Strategy::Advisory => {
                Some(TxMode::DefaultIsolation)
            }
            Strategy::Pessimistic(mode) => Some(TxMode::RowLocking(mode)),
            Strategy::Serializable => Some(TxMode::Serializable),
            Strategy::Atomic | Strategy::Optimistic | Strategy::Sharded { .. } => None,
        }
    }

    /// Whether the unit of work is one statement, so that autocommit can be its whole transaction.
    pub fn is_one_statement(self) -> bool {
        matches!(self, Strategy::Atomic | Strategy::Sharded { .. })
    }

    /// One attempt of one increment of post `step.pk`, in the strategy's own transaction
    /// ([`Strategy::tx_mode`]). On success, returns the value the strategy wrote.
    pub async fn attempt(self, session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
        let Some(mode) = self.tx_mode() else {
            return self.unit(session, step, 1).await;
        };
        // On SQLite a row-locking transaction takes the database's write lock at BEGIN IMMEDIATE: the
        // wait may be there rather than at the locking read.
        if let TxMode::RowLocking(_) = mode {
            step.waits_for_lock();
        }
        session.begin(mode).await?;
        let result = self.unit(session, step, 1).await;
        let result = step.finish(session, result).await;
        self.release(session, step.pk).await;
        result
    }

    /// The strategy's unit of work: adds `by` to post `step.pk`, inside the transaction the caller
    /// opened (none for a strategy whose [`Strategy::tx_mode`] is `None`, unless the caller needs one
    /// for writes of its own). Returns the value written: the post's new count, or for
    /// [`Strategy::Sharded`] the new value of the slot it wrote (the count is the sum of the slots).
    /// The caller ends the transaction, then calls [`Strategy::release`].
    pub async fn unit(self, session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
        match self {
            Strategy::Naive => naive::read_modify_write(session, step, by).await,
            Strategy::Atomic => atomic::unit(session, step, by).await,
            Strategy::Pessimistic(mode) => pessimistic::unit(session, step, mode, by).await,
            Strategy::Optimistic => optimistic::unit(session, step, by).await,
            Strategy::Versioned | Strategy::VersionedNoRetry => versioned::unit(session, step, by).await,
            Strategy::Serializable => serializable::unit(session, step, by).await,
            Strategy::Advisory => advisory::unit(session, step, by).await,
            Strategy::Sharded { slots } => sharded::unit(session, step, slots, by).await,
        }
    }

    /// Releases what the unit of work held beyond its transaction (the advisory strategy's application
    /// lock; nothing for the others). Called after the transaction ended, whichever way; a session
    /// whose release failed is closed rather than pooled with the lock still held.
    pub async fn release(self, session: &mut Session, pk: Pk) {
        if self == Strategy::Advisory {
            advisory::release(session, pk).await;
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// An unknown strategy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy `{0}`; expected one of: {names}", names = Strategy::names().join(", "))]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        ALL.into_iter()
            .chain([Strategy::Pessimistic(LockMode::NoWait), Strategy::Pessimistic(LockMode::SkipLocked)])
            .find(|strategy| strategy.name() == wanted)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

/// Makes every worker read before any of them writes, on their first increment's first attempt: the
/// interleaving that loses an update, forced instead of hoped for.
#[derive(Debug)]
pub struct RaceGate {
    barrier: Barrier,
    timeout: Duration,
    /// Set once every worker has arrived (or the timeout passed): what the workers that do not race
    /// wait for before their first operation (see [`RaceGate::opened`]).
    opened: tokio::sync::watch::Sender<bool>,
}

impl RaceGate {
    /// A gate for `workers` workers. If one of them never arrives (its read failed), the others go
    /// on after `timeout` rather than hang.
    pub fn new(workers: usize, timeout: Duration) -> Self {
        Self { barrier: Barrier::new(workers), timeout, opened: tokio::sync::watch::Sender::new(false) }
    }

    pub(crate) async fn wait(&self) {
        if tokio::time::timeout(self.timeout, self.barrier.wait()).await.is_err() {
            tracing::warn!("race gate: not every worker arrived within {:?}; going on", self.timeout);
        }
        self.opened.send_replace(true);
    }

    /// Waits until the racing workers have all passed the gate (at most the gate's timeout): for a
    /// worker that does not race, so that it cannot take a lock a racing worker needs to reach the gate.
    pub(crate) async fn opened(&self) {
        let mut opened = self.opened.subscribe();
        if tokio::time::timeout(self.timeout, opened.wait_for(|open| *open)).await.is_err() {
            tracing::warn!("race gate: not opened within {:?}; going on", self.timeout);
        }
    }
}

/// Where one attempt stands: which post, which worker, which of its increments and which attempt,
/// whether to stop at the race gate after reading, and where to trace what it does (if anywhere).
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub pk: Pk,
    pub worker: usize,
    /// Which of the worker's increments, from 0 (for the trace).
    pub increment: u64,
    pub attempt: u32,
    pub race: Option<&'a RaceGate>,
    pub trace: Option<&'a Tracer>,
    /// The attempt of the generic workload runner this increment is (the counter as one workload,
    /// [`CounterWorkload`](crate::workload::CounterWorkload)): its read goes into that run's trace and
    /// stops at that run's race gate, the same point where `race` stops the experiment's.
    pub(crate) op: Option<OpCtx<'a>>,
}

impl<'a> Step<'a> {
    /// The first attempt of `worker`'s first increment of `pk`, with no race gate and no trace.
    pub fn new(pk: Pk, worker: usize) -> Self {
        Self { pk, worker, increment: 0, attempt: 1, race: None, trace: None, op: None }
    }

    /// Called by strategies between their unlocked read and their write.
    async fn after_read(&self, like: i64, version: i64) {
        tracing::debug!(post = self.pk, worker = self.worker, attempt = self.attempt, like, version, "read");
        self.record(TraceKind::Read, Seen { like: Some(like), version: Some(version), detail: None });
        if let Some(op) = &self.op {
            op.after_read().await;
        } else if let (Some(gate), 1) = (self.race, self.attempt) {
            gate.wait().await;
        }
    }

    /// Called by strategies just before they ask for a lock that may make them wait.
    fn waits_for_lock(&self) {
        self.record(TraceKind::LockWait, Seen::default());
    }

    /// Called by strategies once they hold the lock and have read the row under it.
    fn locked(&self, like: i64, version: i64) {
        tracing::debug!(post = self.pk, worker = self.worker, attempt = self.attempt, like, "acquired lock");
        self.record(TraceKind::LockAcquired, Seen { like: Some(like), version: Some(version), detail: None });
    }

    /// `like + by`, the value a read-modify-write writes, or the refusal of a counter that cannot take
    /// `by` more: checked here, where the sum is made, so it never wraps (nor panics).
    fn plus(&self, like: i64, by: i64) -> Result<i64, DbError> {
        like.checked_add(by)
            .ok_or_else(|| DbError::at_maximum(AtMaximum { post: self.pk, counter: "like", value: like, adding: by }))
    }

    fn wrote(&self, like: i64) {
        tracing::debug!(post = self.pk, worker = self.worker, attempt = self.attempt, like, "wrote");
        self.record(TraceKind::Write, Seen { like: Some(like), ..Seen::default() });
    }

    /// Ends a strategy's transaction: commits what the unit of work did, or rolls it back (traced).
    async fn finish(&self, session: &mut Session, result: Result<i64, DbError>) -> Result<i64, DbError> {
        if let Err(err) = &result {
            self.record(TraceKind::Rollback, Seen { detail: Some(err.kind()), ..Seen::default() });
        }
        session.finish(result).await
    }

    /// Records one event of this attempt, if the experiment is traced.
    pub(crate) fn record(&self, kind: TraceKind, seen: Seen) {
        if let Some(tracer) = self.trace {
            tracer.record(IncrementId { worker: self.worker, increment: self.increment }, self.attempt, kind, seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_strategy() {
        for name in Strategy::names() {
            assert_eq!(name.parse::<Strategy>().unwrap().name(), *name);
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "optimstic".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("unknown strategy `optimstic`") && err.contains("optimistic"), "{err}");
    }

    #[test]
    fn sharded_parses_with_the_default_slots_and_takes_others() {
        let sharded: Strategy = "sharded".parse().unwrap();
        assert_eq!(sharded, Strategy::Sharded { slots: DEFAULT_SLOTS });
        assert_eq!(sharded.with_slots(8), Strategy::Sharded { slots: 8 });
        assert_eq!(Strategy::Atomic.with_slots(8), Strategy::Atomic);
        assert!(Strategy::all_for(Backend::Sqlite).contains(&sharded));
    }

    #[test]
    fn sqlite_has_no_advisory_strategy() {
        assert!(!Strategy::all_for(Backend::Sqlite).contains(&Strategy::Advisory));
        assert!(Strategy::all_for(Backend::Postgres).contains(&Strategy::Advisory));
    }
}
