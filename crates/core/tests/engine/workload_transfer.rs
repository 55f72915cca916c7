//! The `transfer` workload against real PostgreSQL, MariaDB and SQLite: the naive read-check-write
//! creates money under a forced race, every safe strategy conserves it with 16 workers, and locking in
//! request order deadlocks (counted and retried) where locking in key order never does. The proof is
//! the accounts' rows, read back.

use crate::support::workload::{assert_accounted, run};
use racelab_core::workload::{Sizes, WorkloadExperiment};
use racelab_core::{Backend, ErrorKind, Workload};
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};

fn transfer(strategy: &str, workers: usize, operations: u64, accounts: usize) -> WorkloadExperiment {
    WorkloadExperiment {
        sizes: Sizes { accounts, ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::Transfer, strategy, workers, operations)
    }
}

/// PostgreSQL looks for deadlocks after `deadlock_timeout` (1 s by default) of waiting: 50 ms keeps
/// the deadlocking strategies' tests short (the tests connect as a superuser, who may set it).
fn quick_deadlocks(test: &TestDb, mut options: racelab_core::ConnectOptions) -> racelab_core::ConnectOptions {
    if test.backend == Backend::Postgres {
        options.init_statements.push("SET deadlock_timeout = '50ms'".to_owned());
    }
    options
}

// Four transfers of 10 from the first account, each to another, all read its 100 before any writes:
// each writes back 90, so 30 are created, and the first account is off. Exactly, on every backend.
async fn naive_creates_money_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..transfer("naive", 4, 1, 8) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.acknowledged, outcome.failed), (4, 0), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(false), "{outcome:#?}");
    assert_eq!(outcome.invariant.violations, Some(31), "30 created + 1 account off: {outcome:#?}");
    assert!(outcome.invariant.detail.contains("30 created"), "{}", outcome.invariant.detail);
}

// 16 workers x 10 random transfers between 8 accounts, the race forced on each first transfer: every
// safe strategy conserves the money, and gives up on nothing.
async fn safe_strategies_conserve_money_with_16_workers(test: TestDb) {
    let db = test.connect_with(quick_deadlocks(&test, test.wide_options())).await;
    for strategy in ["pessimistic-unordered", "pessimistic", "conditional", "optimistic", "serializable"] {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..transfer(strategy, 16, 10, 8) }).await;
        assert_accounted(&outcome);
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.invariant.violations, Some(0), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.failed + outcome.in_doubt, 0, "{strategy}: {outcome:#?}");
        assert_eq!(outcome.acknowledged + outcome.refused, 160, "{strategy}: {outcome:#?}");
        if strategy == "pessimistic" {
            assert!(!outcome.retried_errors.contains_key(&ErrorKind::Deadlock), "{outcome:#?}");
        }
    }
}

// Two transfers in opposite directions, each holding its first account's lock at the race gate: the
// database finds the deadlock and aborts one, which the retry completes. Locking both in key order,
// the same transfers never deadlock.
async fn unordered_locks_deadlock_and_are_retried_where_key_order_never_does(test: TestDb) {
    let db = test.connect_with(quick_deadlocks(&test, test.options())).await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..transfer("pessimistic-unordered", 2, 1, 2) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.acknowledged, outcome.failed), (2, 0), "{outcome:#?}");
    assert_eq!(outcome.retried_errors.get(&ErrorKind::Deadlock), Some(&1), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");

    // Opposite transfers over 2 accounts, many at once: in key order, not one deadlock.
    let outcome = run(&db, transfer("pessimistic", 8, 20, 2)).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.failed, 0, "{outcome:#?}");
    assert!(!outcome.retried_errors.contains_key(&ErrorKind::Deadlock), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
}

// The same seed makes the same transfers: two runs of a strategy that serialises them all the same way
// (one worker) end with the same balances, so the same verdict and counts.
async fn a_seed_makes_the_same_transfers(test: TestDb) {
    let db = test.connect().await;
    let first = run(&db, WorkloadExperiment { seed: 42, ..transfer("conditional", 1, 50, 3) }).await;
    let second = run(&db, WorkloadExperiment { seed: 42, ..transfer("conditional", 1, 50, 3) }).await;
    let other = run(&db, WorkloadExperiment { seed: 43, ..transfer("conditional", 1, 50, 3) }).await;
    assert_eq!((first.acknowledged, first.refused), (second.acknowledged, second.refused));
    assert_eq!(first.invariant, second.invariant);
    assert_ne!(
        (first.acknowledged, &first.invariant.detail),
        (other.acknowledged, &other.invariant.detail),
        "seeds 42 and 43 made the same transfers"
    );
}

async fn fewer_than_two_accounts_are_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    let err = transfer("naive", 1, 1, 1).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--accounts must be between 2 and 10000, got 1"), "{err}");
}

on_every_backend!(
    naive_creates_money_under_a_forced_race,
    safe_strategies_conserve_money_with_16_workers,
    a_seed_makes_the_same_transfers,
    fewer_than_two_accounts_are_refused_by_name,
);
on_server_backends!(unordered_locks_deadlock_and_are_retried_where_key_order_never_does);
