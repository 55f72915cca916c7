//! The `oncall` workload against real PostgreSQL, MariaDB and SQLite: the naive count-then-update
//! leaves a shift with no doctor on call under a forced race, that write skew passes REPEATABLE READ on
//! PostgreSQL and on MariaDB (also with `innodb_snapshot_isolation = ON`), SERIALIZABLE prevents it on
//! PostgreSQL by aborting and retrying one of the two, and every safe strategy keeps every shift
//! covered with 16 workers. The proof is the doctors' rows, read back.

use crate::support::workload::{assert_accounted, run};
use racelab_core::workload::{Sizes, WorkloadExperiment, WorkloadOutcome};
use racelab_core::{ErrorKind, Isolation, Workload};
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};

fn oncall(strategy: &str, workers: usize, operations: u64, doctors: usize) -> WorkloadExperiment {
    WorkloadExperiment {
        sizes: Sizes { doctors, ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::OnCall, strategy, workers, operations)
    }
}

/// The two doctors of one shift ask at once, each after counting both on call: write skew.
fn skew(strategy: &str, isolation: Option<Isolation>) -> WorkloadExperiment {
    WorkloadExperiment { force_race: true, isolation, ..oncall(strategy, 2, 1, 2) }
}

fn assert_write_skew(outcome: &WorkloadOutcome) {
    assert_accounted(outcome);
    assert_eq!((outcome.acknowledged, outcome.failed, outcome.retries), (2, 0, 0), "{outcome:#?}");
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(1)), "{outcome:#?}");
    assert!(outcome.invariant.detail.starts_with("1 of 1 shifts left with no doctor on call"), "{outcome:#?}");
}

// Four workers, two shifts of four doctors: the four doctors of the first shift each count four on
// call before any of them writes, and all four leave. Exactly one shift uncovered, on every backend.
async fn naive_leaves_a_shift_uncovered_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..oncall("naive", 4, 1, 4) }).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.sizes.get("shifts"), Some(&2), "one shift per pair of workers: {outcome:#?}");
    assert_eq!(outcome.sizes.get("doctors"), Some(&4), "{outcome:#?}");
    assert_eq!((outcome.acknowledged, outcome.failed), (4, 0), "{outcome:#?}");
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(1)), "{outcome:#?}");
    assert!(!outcome.safe && !outcome.safe_strategy_broke_invariant(), "naive is not meant to hold");
}

// Snapshot isolation does not stop write skew: each transaction writes only its own doctor's row, so
// there is no write-write conflict for REPEATABLE READ to refuse, on PostgreSQL or MariaDB.
async fn naive_at_repeatable_read_shows_write_skew(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, skew("naive", Some(Isolation::RepeatableRead))).await;
    assert_eq!(outcome.isolation, "repeatable-read");
    assert_write_skew(&outcome);
}

// MariaDB's `innodb_snapshot_isolation = ON` refuses a write to a row changed since the snapshot; the
// two doctors write different rows, so it refuses nothing and the skew stays.
async fn write_skew_passes_innodb_snapshot_isolation(test: TestDb) {
    let mut options = test.options();
    options.init_statements.push("SET SESSION innodb_snapshot_isolation = ON".to_owned());
    let db = test.connect_with(options).await;
    let outcome = run(&db, skew("naive", Some(Isolation::RepeatableRead))).await;
    assert_write_skew(&outcome);
}

mod write_skew_passes_innodb_snapshot_isolation {
    racelab_testkit::backend_test!(write_skew_passes_innodb_snapshot_isolation, mysql, MySql);
}

// At SERIALIZABLE PostgreSQL sees the read-write dependency both ways and aborts one of the two
// (40001); the retry, once the winner has committed, counts one doctor on call and refuses. Without the retry the loser fails.
async fn serializable_prevents_write_skew_on_postgres(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, skew("serializable", None)).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.isolation, "serializable");
    assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (1, 1, 0), "{outcome:#?}");
    // At least once: a retry that reads before the winner commits is aborted again.
    assert!(outcome.retried_errors.get(&ErrorKind::SerializationFailure) >= Some(&1), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");

    let outcome = run(&db, skew("naive", Some(Isolation::Serializable))).await;
    assert_eq!((outcome.acknowledged, outcome.failed), (1, 1), "{outcome:#?}");
    assert_eq!(outcome.errors.get(&ErrorKind::SerializationFailure), Some(&1), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
}

mod serializable_prevents_write_skew_on_postgres {
    racelab_testkit::backend_test!(serializable_prevents_write_skew_on_postgres, postgres, Postgres);
}

// 16 workers x 10 requests over 8 shifts of 4 doctors, the race forced on each first request (every
// doctor of the first four shifts asks at once): every safe strategy keeps every shift covered, lets
// at most 3 of each shift's 4 leave, and gives up on nothing.
async fn safe_strategies_keep_every_shift_covered_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    for strategy in ["pessimistic", "materialized", "serializable"] {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..oncall(strategy, 16, 10, 4) }).await;
        assert_accounted(&outcome);
        assert!(outcome.safe, "{strategy}");
        assert_eq!(
            (outcome.invariant.held, outcome.invariant.violations),
            (Some(true), Some(0)),
            "{strategy}: {outcome:#?}"
        );
        assert_eq!(outcome.failed + outcome.in_doubt, 0, "{strategy}: {outcome:#?}");
        assert!(outcome.acknowledged <= 8 * 3, "{strategy}: {outcome:#?}");
        // The forced first requests: 16 doctors of 4 shifts, of whom 3 per shift may leave.
        assert!(outcome.acknowledged >= 4 * 3, "{strategy}: {outcome:#?}");
        assert!(outcome.invariant.detail.starts_with("every one of 8 shifts kept a doctor on call"), "{outcome:#?}");
    }
}

async fn bad_sizes_are_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    let err = oncall("naive", 1, 1, 0).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--doctors must be between 1 and 1000, got 0"), "{err}");
    let err = oncall("atomic", 1, 1, 4).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("unknown oncall strategy `atomic`") && err.contains("materialized"), "{err}");
}

on_every_backend!(
    naive_leaves_a_shift_uncovered_under_a_forced_race,
    safe_strategies_keep_every_shift_covered_with_16_workers,
    bad_sizes_are_refused_by_name,
);
on_server_backends!(naive_at_repeatable_read_shows_write_skew);
