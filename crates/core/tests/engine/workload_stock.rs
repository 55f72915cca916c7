//! The `stock` workload against real PostgreSQL, MariaDB and SQLite: the naive read-check-write
//! oversells under a forced race, every safe strategy sells exactly the stock with 16 workers, and a
//! SERIALIZABLE run of the naive body never oversells. The proof is the item's row, read back.

use crate::support::workload::{assert_accounted, run};
use racelab_core::workload::{Sizes, WorkloadExperiment};
use racelab_core::{Backend, ErrorKind, Isolation, Workload};
use racelab_testkit::{TestDb, on_every_backend};

fn stock(strategy: &str, workers: usize, operations: u64) -> WorkloadExperiment {
    WorkloadExperiment::new(Workload::Stock, strategy, workers, operations)
}

// Four buyers read the stock of 4 before any of them writes: all four sell, and each writes back 3.
// At least three units are sold that the stock never lost, every time, on every backend.
async fn naive_oversells_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..stock("naive", 4, 2) }).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.sizes.get("stock"), Some(&4), "default stock: half the demand: {outcome:#?}");
    assert_eq!((outcome.invariant.held, outcome.safe), (Some(false), false), "{outcome:#?}");
    assert!(outcome.invariant.violations >= Some(3), "{outcome:#?}");
    assert!(outcome.invariant.detail.starts_with("oversold"), "{}", outcome.invariant.detail);
    assert!(!outcome.safe_strategy_broke_invariant(), "naive is not meant to hold");
}

// 16 buyers x 10 purchases of a stock of 80, the race forced on each buyer's first purchase: every
// safe strategy sells exactly 80 units and refuses the other 80, with nothing failed.
async fn safe_strategies_sell_exactly_the_stock_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    for strategy in ["conditional", "pessimistic", "optimistic", "serializable", "check-constraint"] {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..stock(strategy, 16, 10) }).await;
        assert_accounted(&outcome);
        assert!(outcome.safe, "{strategy}");
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.invariant.violations, Some(0), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (80, 80, 0), "{strategy}: {outcome:#?}");
        assert!(outcome.invariant.detail.contains("80 sold of a stock of 80, 0 left"), "{}", outcome.invariant.detail);
        if strategy == "optimistic" {
            // All 16 read version 0; one write matches it, the others are retried.
            assert!(outcome.retried_errors.get(&ErrorKind::StaleVersion) >= Some(&15), "{outcome:#?}");
        }
    }
}

// The check constraint's refusal is "sold out", not an error: with a stock of 1 and 3 purchases, one
// sale and two refusals, nothing failed.
async fn a_check_constraint_refusal_is_sold_out(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { sizes: Sizes { stock: Some(1), ..Sizes::default() }, ..stock("check-constraint", 1, 3) };
    let outcome = run(&db, experiment).await;
    assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (1, 2, 0), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
}

// The naive body at SERIALIZABLE, raced: the database refuses the buyers who read a stock another has
// since changed (40001 on PostgreSQL, a deadlock on MariaDB's locking reads, busy on SQLite), and
// without a retry they fail rather than oversell.
async fn naive_at_serializable_isolation_never_oversells(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { force_race: true, isolation: Some(Isolation::Serializable), ..stock("naive", 2, 1) };
    let outcome = run(&db, experiment).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.isolation, "serializable");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
    assert_eq!((outcome.acknowledged, outcome.failed), (1, 1), "{outcome:#?}");
    let expected = match test.backend {
        Backend::Postgres => ErrorKind::SerializationFailure,
        Backend::MySql => ErrorKind::Deadlock,
        Backend::Sqlite => ErrorKind::Busy,
    };
    assert_eq!(outcome.errors.get(&expected), Some(&1), "{outcome:#?}");
}

// The level the user names is the level the naive body runs at, with the documented results (ANCHORS
// J): read-check-write oversells at read committed on both servers, and at repeatable read on MariaDB
// (innodb_snapshot_isolation off, 10.11's default); PostgreSQL's repeatable read aborts the second
// writer (40001) instead.
async fn naive_oversells_or_not_as_each_level_is_documented(test: TestDb) {
    let db = test.connect().await;
    let cases = [(Isolation::ReadCommitted, true), (Isolation::RepeatableRead, test.backend == Backend::MySql)];
    for (level, oversells) in cases {
        let experiment = WorkloadExperiment { force_race: true, isolation: Some(level), ..stock("naive", 2, 1) };
        let outcome = run(&db, experiment).await;
        assert_accounted(&outcome);
        assert_eq!(outcome.invariant.held, Some(!oversells), "naive at {level}: {outcome:#?}");
        if !oversells {
            assert_eq!(outcome.errors.get(&ErrorKind::SerializationFailure), Some(&1), "{outcome:#?}");
        }
    }
}

// `--init-sql` applies to the workloads as to the counter: with MariaDB's snapshot isolation on, the
// naive buyer whose read is stale is refused at its write (1020, a serialization failure) instead of
// overselling at repeatable read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn naive_with_mariadb_snapshot_isolation_never_oversells() {
    racelab_testkit::run(Backend::MySql, async |test| {
        let mut options = test.options();
        options.init_statements.push("SET SESSION innodb_snapshot_isolation = ON".to_owned());
        let db = test.connect_with(options).await;
        let experiment =
            WorkloadExperiment { force_race: true, isolation: Some(Isolation::RepeatableRead), ..stock("naive", 2, 1) };
        let outcome = run(&db, experiment).await;
        assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
        assert_eq!(outcome.errors.get(&ErrorKind::SerializationFailure), Some(&1), "{outcome:#?}");
    })
    .await;
}

// Every safe strategy at each isolation level a user may ask for (the locking ones open their
// transaction at that level too; SQLite maps every level to its serializable transactions): the race
// forced, 4 buyers x 4 purchases of a stock of 8, exactly 8 sold and 8 refused at every level.
async fn safe_strategies_hold_at_every_isolation_level(test: TestDb) {
    let db = test.connect().await;
    for level in Isolation::ALL {
        for strategy in ["conditional", "pessimistic", "optimistic", "check-constraint"] {
            let experiment = WorkloadExperiment { force_race: true, isolation: Some(level), ..stock(strategy, 4, 4) };
            let outcome = run(&db, experiment).await;
            assert_accounted(&outcome);
            assert_eq!(outcome.isolation, level.name(), "{strategy}");
            assert_eq!(outcome.invariant.held, Some(true), "{strategy} at {level}: {outcome:#?}");
            assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (8, 8, 0), "{strategy} at {level}");
        }
    }
}

// Two runs at once on one database never touch each other's rows: each has its own item, and each
// sells exactly its own stock.
async fn two_runs_at_once_keep_to_their_own_rows(test: TestDb) {
    let db = test.connect().await;
    let (a, b) = tokio::join!(run(&db, stock("conditional", 3, 4)), run(&db, stock("pessimistic", 3, 4)));
    for outcome in [a, b] {
        assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.refused), (6, 6), "{outcome:#?}");
    }
}

async fn bad_sizes_are_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { sizes: Sizes { stock: Some(-1), ..Sizes::default() }, ..stock("naive", 1, 1) };
    let err = experiment.run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--stock must be 0 or more, got -1"), "{err}");
    let err = stock("naive", 256, 1_000_000).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("workers x operations must be at most 10000000"), "{err}");
    let err = stock("atomic", 1, 1).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("unknown stock strategy `atomic`") && err.contains("check-constraint"), "{err}");
}

racelab_testkit::on_server_backends!(naive_oversells_or_not_as_each_level_is_documented);

on_every_backend!(
    naive_oversells_under_a_forced_race,
    safe_strategies_sell_exactly_the_stock_with_16_workers,
    a_check_constraint_refusal_is_sold_out,
    naive_at_serializable_isolation_never_oversells,
    safe_strategies_hold_at_every_isolation_level,
    two_runs_at_once_keep_to_their_own_rows,
    bad_sizes_are_refused_by_name,
);
