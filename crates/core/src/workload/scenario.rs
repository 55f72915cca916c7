//! The two traits a workload implements: [`WorkloadStrategy`] (its strategies, and what transaction
//! each runs in) and [`Scenario`] (its rows, its operation per strategy, its invariant). The runner
//! ([`super::runner`]) does everything else: connections, workers, retries, transactions, accounting.

use std::fmt;
use std::future::Future;

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::workloads::Workload;
use crate::db::{Backend, Isolation, LockMode, Session, TxMode};
use crate::error::DbError;

/// The transaction a strategy's operation runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// One statement (or a compare-and-set), in autocommit; in a transaction at the run's isolation
    /// level when one is given.
    Autocommit,
    /// A transaction at the database's default isolation (SQLite: none, as the counter's naive
    /// strategy, like Python's sqlite3 driver), or at the run's level.
    Plain,
    /// A transaction at the database's default isolation, or at the run's level, that is one on
    /// SQLite too (deferred there): for an operation of several writes that must commit together.
    Transaction,
    /// A transaction that locks rows (`FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`), at the default level
    /// or the run's, waiting for a lock held by another or not as the [`LockMode`] says (on SQLite the
    /// mode applies to `BEGIN IMMEDIATE`, where the wait is).
    RowLocking(LockMode),
    /// A transaction that claims rows by locking them (`FOR UPDATE SKIP LOCKED`), as `RowLocking`,
    /// but at READ COMMITTED on MariaDB/MySQL when the run names no level: at their default REPEATABLE
    /// READ a claim that finds nothing to claim locks the gap past the last row, and a producer's
    /// INSERT into the queue waits for it (and fails with 1205 after `innodb_lock_wait_timeout`). A
    /// claim needs no snapshot: it reads the latest committed rows and locks what it takes.
    Claiming,
    /// Always SERIALIZABLE, whatever the run's level.
    Serializable,
}

/// How a transaction is opened for one attempt: `None` for autocommit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    Mode(TxMode),
    At(Isolation, Option<LockMode>),
}

impl TxKind {
    /// How to open this kind of transaction on `backend` in a run at `isolation` (`None`: the
    /// default level).
    pub(crate) fn opening(self, isolation: Option<Isolation>, backend: Backend) -> Option<Opening> {
        match (self, isolation) {
            (TxKind::Serializable, _) => Some(Opening::Mode(TxMode::Serializable)),
            // SQLite's "default isolation" is no transaction at all; its deferred one is serializable.
            (TxKind::Transaction, None) if backend == Backend::Sqlite => Some(Opening::Mode(TxMode::Serializable)),
            (TxKind::Transaction, None) => Some(Opening::Mode(TxMode::DefaultIsolation)),
            (TxKind::Autocommit, None) => None,
            (TxKind::Plain, None) => Some(Opening::Mode(TxMode::DefaultIsolation)),
            (TxKind::RowLocking(mode), None) => Some(Opening::Mode(TxMode::RowLocking(mode))),
            (TxKind::Claiming, None) if backend == Backend::MySql => {
                Some(Opening::At(Isolation::ReadCommitted, Some(LockMode::Wait)))
            }
            (TxKind::Claiming, None) => Some(Opening::Mode(TxMode::RowLocking(LockMode::Wait))),
            (TxKind::Claiming, Some(level)) => Some(Opening::At(level, Some(LockMode::Wait))),
            (TxKind::Autocommit | TxKind::Plain | TxKind::Transaction, Some(level)) => Some(Opening::At(level, None)),
            (TxKind::RowLocking(mode), Some(level)) => Some(Opening::At(level, Some(mode))),
        }
    }

    /// The level this kind's transactions run at on `backend` in a run at `isolation`, as output
    /// names it: `default` for the database's own (SQLite's deferred transaction included).
    pub(crate) fn level_name(self, isolation: Option<Isolation>, backend: Backend) -> &'static str {
        match (self, self.opening(isolation, backend)) {
            (TxKind::Serializable, _) => Isolation::Serializable.name(),
            (_, Some(Opening::At(level, _))) => level.name(),
            _ => "default",
        }
    }
}

impl Opening {
    pub(crate) async fn begin(self, session: &mut Session) -> Result<(), DbError> {
        match self {
            Opening::Mode(mode) => session.begin(mode).await,
            Opening::At(level, lock) => session.begin_at(level, lock).await,
        }
    }
}

/// One workload's strategies: an enum, each variant a way to make (or not make) the operation safe.
pub trait WorkloadStrategy: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Every strategy, in the order `all` runs them (unsafe ones first).
    const ALL: &'static [Self];

    /// The name `-s` takes and output shows.
    fn name(self) -> &'static str;

    /// The transaction its operation runs in.
    fn tx(self) -> TxKind;

    /// Whether a failed attempt (a conflict) is run again under the retry policy.
    fn retries(self) -> bool;

    /// Whether the strategy is meant to keep the invariant: if it breaks anyway, the run fails.
    fn safe(self) -> bool;

    /// Whether it keeps the invariant when its workers write through different nodes of a Galera
    /// cluster. Certification compares only the rows each transaction writes: a strategy whose safety
    /// rests on locks (`FOR UPDATE`, SERIALIZABLE's read locks) of rows it does not write is safe on
    /// one node only, as their locks are the node's own. A run across nodes reports such a strategy
    /// as unsafe (its broken invariant is the finding, not a failure of the run).
    fn safe_across_nodes(self) -> bool {
        self.safe()
    }

    /// The strategy named `name`, if the workload has one.
    fn parse(name: &str) -> Option<Self> {
        let wanted = name.trim().to_ascii_lowercase();
        Self::ALL.iter().copied().find(|s| s.name() == wanted)
    }
}

/// A workload: its rows for one run, its operation per strategy, and its invariant.
///
/// The runner calls, in order: [`Scenario::setup`] once (on the first node); for each worker and each
/// operation [`Scenario::next_op`] (or [`Scenario::forced_op`] for a worker's first operation under
/// `force_race`), then [`Scenario::attempt`] inside the transaction the strategy's [`TxKind`] opens,
/// as often as the retry policy allows; then [`Scenario::state`] (a settled read) and
/// [`Scenario::check`] against the [`Ledger`] of acknowledged and in-doubt operations.
pub trait Scenario: Send + Sync + 'static {
    /// Which workload this is.
    const WORKLOAD: Workload;
    /// The invariant's name (`invariant.name`).
    const INVARIANT: &'static str;
    /// The invariant in one sentence.
    const SENTENCE: &'static str;

    type Strategy: WorkloadStrategy;
    /// The rows of one run (their keys, their starting values): fresh for each run, so that runs on
    /// one database never touch each other's rows.
    type Fixture: Send + Sync + 'static;
    /// One operation's input (which item, which accounts and amount).
    type Op: Copy + fmt::Debug + Send + Sync + 'static;
    /// The rows as read after the run.
    type State: Send + 'static;

    /// Checks the workload's own sizes before anything connects; the message names the setting.
    fn validate(experiment: &WorkloadExperiment) -> Result<(), String>;

    /// Creates the run's rows.
    fn setup(
        session: &mut Session,
        experiment: &WorkloadExperiment,
    ) -> impl Future<Output = Result<Self::Fixture, DbError>> + Send;

    /// The sizes to report (`"stock": 16`, `"accounts": 8`).
    fn sizes(fixture: &Self::Fixture) -> Vec<(&'static str, i64)>;

    /// The next operation of a worker, drawn from its own seeded generator.
    fn next_op(fixture: &Self::Fixture, rng: &mut Rng) -> Self::Op;

    /// Under `force_race`, the first operation of `worker` (of `workers`) chosen so that the race
    /// happens, or `None` to draw it as usual.
    fn forced_op(
        _strategy: Self::Strategy,
        _fixture: &Self::Fixture,
        _worker: usize,
        _workers: usize,
    ) -> Option<Self::Op> {
        None
    }

    /// Under `force_race`, whether `worker`'s first operation stops at the race gate (where its
    /// attempt calls [`OpCtx::after_read`]) until every other one that stops there has arrived. Only
    /// for strategies whose gate cannot wait for a lock another worker holds.
    fn races(strategy: Self::Strategy, fixture: &Self::Fixture, worker: usize, workers: usize) -> bool;

    /// One attempt of `op` by `strategy`, inside the transaction the runner opened (and will commit
    /// if the answer is [`Answer::Done`], roll back otherwise).
    fn attempt(
        strategy: Self::Strategy,
        session: &mut Session,
        fixture: &Self::Fixture,
        op: Self::Op,
        ctx: &OpCtx<'_>,
    ) -> impl Future<Output = Result<Answer, DbError>> + Send;

    /// The run's rows as they stand after every committed write, on any node (a settled read).
    fn state(
        session: &mut Session,
        fixture: &Self::Fixture,
    ) -> impl Future<Output = Result<Self::State, DbError>> + Send;

    /// Releases what an attempt of `strategy` held beyond its transaction (the counter's `advisory`
    /// application lock, which on MariaDB belongs to the session), once that transaction has ended
    /// whichever way. Nothing by default.
    fn release(
        _strategy: Self::Strategy,
        _session: &mut Session,
        _fixture: &Self::Fixture,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// What an acknowledged `op` contends for, for a trace's marks ([`OpTrace::marked`]): a group (one
    /// item, one shift, one room's slot) and how many acknowledged operations of it the invariant
    /// allows, given the rows as read after the run (`state`: the counter allows as many increments
    /// as it grew by). `None` (the default): the operation does not say.
    ///
    /// [`OpTrace::marked`]: super::OpTrace::marked
    fn contends(_fixture: &Self::Fixture, _state: &Self::State, _op: Self::Op) -> Option<(i64, u64)> {
        None
    }

    /// The invariant, from the rows and the operations (in-doubt ones bound it).
    fn check(fixture: &Self::Fixture, state: &Self::State, ledger: &Ledger<Self::Op>) -> Invariant;
}
