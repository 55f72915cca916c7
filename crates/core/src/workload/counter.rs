//! `counter`: the [`Experiment`](crate::Experiment)'s race, one workload among the others, so that it
//! runs where they run: at an `--isolation` level, beside them in `--workload all`, in the same JSON.
//! Each operation is one increment of a fresh post of the run's own; the invariant `no-lost-update`:
//! every acknowledged increment is in the counter and nothing else is
//! (`acknowledged <= actual - initial <= acknowledged + in_doubt`).
//!
//! The strategies are the counter's own ([`Strategy`]), not copies: an attempt calls the very unit of
//! work the experiment's attempt calls ([`Strategy::unit`]), with the experiment's BEGIN and COMMIT
//! left to the runner. That split already existed (the liker runs the units inside its own
//! transaction); what a strategy's [`Strategy::tx_mode`] opened, its [`TxKind`] now opens, so without
//! `--isolation` every transaction is the experiment's, and with one the runner opens it at that level
//! (the `serializable` strategy's stays SERIALIZABLE). The `advisory` lock, which on MariaDB outlives
//! the transaction, is released after it as the experiment releases it ([`Scenario::release`]).
//!
//! What it must never do: write SQL of its own, or run a strategy where it cannot run (`advisory` on
//! SQLite is refused before anything connects, as the experiment refuses it).

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::workloads::Workload;
use crate::db::{Counter, LockMode, Pk, Session, TxMode};
use crate::error::DbError;
use crate::strategy::{MAX_SLOTS, Step, Strategy};

/// The `counter` workload.
#[derive(Debug, Clone, Copy)]
pub struct CounterWorkload;

impl WorkloadStrategy for Strategy {
    /// Every name [`Strategy::names`] lists, in its order (`-s all` for the lab's counter is the
    /// experiment's own list, [`Strategy::all_for`]).
    const ALL: &'static [Self] = &[
        Strategy::Naive,
        Strategy::Atomic,
        Strategy::Pessimistic(LockMode::Wait),
        Strategy::Pessimistic(LockMode::NoWait),
        Strategy::Pessimistic(LockMode::SkipLocked),
        Strategy::Optimistic,
        Strategy::Versioned,
        Strategy::VersionedNoRetry,
        Strategy::Serializable,
        Strategy::Advisory,
        Strategy::Sharded { slots: crate::strategy::DEFAULT_SLOTS },
    ];

    fn name(self) -> &'static str {
        Strategy::name(self)
    }

    /// The transaction the experiment's attempt opens ([`Strategy::tx_mode`]), as a kind the runner
    /// opens at the run's level when it has one.
    fn tx(self) -> TxKind {
        match self.tx_mode() {
            None => TxKind::Autocommit,
            Some(TxMode::DefaultIsolation) => TxKind::Plain,
            Some(TxMode::RowLocking(mode)) => TxKind::RowLocking(mode),
            Some(TxMode::Serializable) => TxKind::Serializable,
        }
    }

    fn retries(self) -> bool {
        Strategy::retries(self)
    }

    /// The strategies that retry are the safe ones: `naive` and `versioned-no-retry` are kept to show
    /// the lost update ([`Workload::is_safe`] says the same).
    fn safe(self) -> bool {
        Strategy::retries(self)
    }
}

/// The run's post and its counter before the first increment.
#[derive(Debug, Clone, Copy)]
pub struct CounterFixture {
    pub pk: Pk,
    pub initial: Counter,
}

impl Scenario for CounterWorkload {
    const WORKLOAD: Workload = Workload::Counter;
    const INVARIANT: &'static str = "no-lost-update";
    const SENTENCE: &'static str = "every acknowledged increment is in the counter, and no other \
         (acknowledged <= actual - initial <= acknowledged + in_doubt; each in-doubt increment may have landed)";

    type Strategy = Strategy;
    type Fixture = CounterFixture;
    /// Every operation is the same: one increment of the run's post.
    type Op = ();
    type State = Counter;

    /// The sharded strategy's slots are the run's `slots` size (the lab's `--slots`).
    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        let sharded = experiment.strategy.parse::<Strategy>().is_ok_and(|s| matches!(s, Strategy::Sharded { .. }));
        let slots = experiment.sizes.slots;
        if sharded && !(1..=usize::from(MAX_SLOTS)).contains(&slots) {
            return Err(format!("--slots must be between 1 and {MAX_SLOTS}, got {slots}"));
        }
        Ok(())
    }

    /// A fresh post, as the experiment makes one, and its counter as every node will have it.
    async fn setup(session: &mut Session, _experiment: &WorkloadExperiment) -> Result<CounterFixture, DbError> {
        let pk = session.create_post().await?;
        let initial = session.read_settled(pk).await?;
        Ok(CounterFixture { pk, initial })
    }

    fn sizes(_fixture: &CounterFixture) -> Vec<(&'static str, i64)> {
        Vec::new()
    }

    fn next_op(_fixture: &CounterFixture, _rng: &mut Rng) {}

    /// As the experiment's gate: every worker, for the strategies that read before they lock.
    fn races(strategy: Strategy, _fixture: &CounterFixture, _worker: usize, _workers: usize) -> bool {
        strategy.reads_unlocked()
    }

    async fn attempt(
        strategy: Strategy,
        session: &mut Session,
        fixture: &CounterFixture,
        _op: (),
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let step = Step {
            pk: fixture.pk,
            worker: ctx.worker,
            increment: ctx.op,
            attempt: ctx.attempt,
            race: None,
            trace: None,
            op: Some(*ctx),
        };
        strategy.unit(session, step, 1).await.map(|_| Answer::Done)
    }

    async fn release(strategy: Strategy, session: &mut Session, fixture: &CounterFixture) {
        strategy.release(session, fixture.pk).await;
    }

    async fn state(session: &mut Session, fixture: &CounterFixture) -> Result<Counter, DbError> {
        session.read_settled(fixture.pk).await
    }

    /// Every increment contends for the one post: as many may be acknowledged as the counter grew.
    fn contends(fixture: &CounterFixture, state: &Counter, _op: ()) -> Option<(i64, u64)> {
        Some((fixture.pk, u64::try_from(state.like.saturating_sub(fixture.initial.like)).unwrap_or(0)))
    }

    fn check(fixture: &CounterFixture, state: &Counter, ledger: &Ledger<()>) -> Invariant {
        check_counter(fixture.initial.like, state.like, ledger.acknowledged.len() as i64, ledger.in_doubt.len() as i64)
    }
}

/// The no-lost-update check: the counter went from `initial` to `last`, with `acknowledged` increments
/// acknowledged and `in_doubt` whose commit's answer was lost. Violations: acknowledged increments
/// that are not in the counter (lost), and increments in it that nobody acknowledged beyond the
/// in-doubt ones.
fn check_counter(initial: i64, last: i64, acknowledged: i64, in_doubt: i64) -> Invariant {
    let added = last.saturating_sub(initial);
    let lost = acknowledged.saturating_sub(added).max(0);
    let unexplained = added.saturating_sub(acknowledged.saturating_add(in_doubt)).max(0);
    let violations = lost.saturating_add(unexplained).unsigned_abs();
    let doubt = if in_doubt > 0 { format!(" ({in_doubt} in doubt)") } else { String::new() };
    let detail = if violations == 0 {
        format!(
            "no lost update: {acknowledged} increments acknowledged{doubt}, the counter went from {initial} to {last}"
        )
    } else {
        let mut parts = Vec::new();
        if lost > 0 {
            parts.push(format!(
                "lost {lost} increments: {acknowledged} acknowledged, but the counter went from {initial} to {last} \
                 ({added} added)"
            ));
        }
        if unexplained > 0 {
            parts.push(format!("{unexplained} increments in the counter that nobody acknowledged{doubt}"));
        }
        parts.join("; ")
    };
    Invariant::checked(CounterWorkload::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_counts_lost_increments_and_is_bounded_by_doubt() {
        let held = check_counter(0, 8, 8, 0);
        assert_eq!((held.held, held.violations), (Some(true), Some(0)), "{held:?}");
        assert!(held.detail.contains("went from 0 to 8"), "{}", held.detail);
        // Eight acknowledged, five in the counter: three lost.
        let broken = check_counter(0, 5, 8, 0);
        assert_eq!((broken.held, broken.violations), (Some(false), Some(3)), "{broken:?}");
        assert!(broken.detail.starts_with("lost 3 increments"), "{}", broken.detail);
        // Two in doubt may have landed, or not.
        assert_eq!(check_counter(10, 18, 8, 2).violations, Some(0));
        assert_eq!(check_counter(10, 20, 8, 2).violations, Some(0));
        assert_eq!(check_counter(10, 21, 8, 2).violations, Some(1));
    }

    #[test]
    fn each_strategy_runs_in_the_transaction_the_experiment_opens() {
        assert_eq!(WorkloadStrategy::tx(Strategy::Naive), TxKind::Plain);
        assert_eq!(WorkloadStrategy::tx(Strategy::Atomic), TxKind::Autocommit);
        assert_eq!(WorkloadStrategy::tx(Strategy::Pessimistic(LockMode::NoWait)), TxKind::RowLocking(LockMode::NoWait));
        assert_eq!(WorkloadStrategy::tx(Strategy::Serializable), TxKind::Serializable);
        let names: Vec<&str> = <Strategy as WorkloadStrategy>::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, Strategy::names());
    }
}
