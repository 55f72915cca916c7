//! The `queue` workload against real PostgreSQL, MariaDB and SQLite: the naive select-then-update
//! runs a job twice under a forced race, `skip-locked` never does with 16 workers, and every safe
//! strategy runs each job exactly once. The proof is the jobs' rows and their recorded runs, read back.

use racelab_core::workload::{Sizes, WorkloadExperiment, WorkloadOutcome};
use racelab_core::{Database, Workload};
use racelab_testkit::{TestDb, on_every_backend};

async fn run(db: &Database, experiment: WorkloadExperiment) -> WorkloadOutcome {
    experiment.run(db).await.unwrap_or_else(|e| panic!("queue {} failed to run: {e}", experiment.strategy))
}

fn queue(strategy: &str, workers: usize, operations: u64) -> WorkloadExperiment {
    WorkloadExperiment::new(Workload::Queue, strategy, workers, operations)
}

fn assert_accounted(outcome: &WorkloadOutcome) {
    let counted = outcome.acknowledged + outcome.refused + outcome.failed + outcome.in_doubt;
    assert_eq!(counted, outcome.expected, "{outcome:#?}");
    assert_eq!(outcome.expected, outcome.workers as u64 * outcome.operations, "{outcome:#?}");
    assert_eq!(outcome.invariant.name, "exactly-once");
}

// Four workers select the oldest pending job before any of them claims it: all four run job 1. Three
// extra runs of one job, exactly, on every backend.
async fn naive_runs_a_job_twice_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..queue("naive", 4, 1) }).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.sizes.get("jobs"), Some(&2), "default jobs: half the demand: {outcome:#?}");
    assert_eq!((outcome.acknowledged, outcome.failed), (4, 0), "{outcome:#?}");
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(3)), "{outcome:#?}");
    assert!(outcome.invariant.detail.starts_with("1 jobs run more than once (3 extra runs)"), "{outcome:#?}");
    assert!(!outcome.safe && !outcome.safe_strategy_broke_invariant(), "naive is not meant to hold");
}

// 16 workers x 10 claims of 80 jobs: skip-locked runs every job exactly once (80 claims done, 80
// refused once the queue is empty), never one twice, and gives up on nothing.
async fn skip_locked_never_runs_a_job_twice_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..queue("skip-locked", 16, 10) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(true), Some(0)), "{outcome:#?}");
    assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (80, 80, 0), "{outcome:#?}");
    assert!(outcome.invariant.detail.contains("80 of 80 done exactly once, 0 pending"), "{outcome:#?}");
}

// The other safe strategies, raced the same way: each job exactly once.
async fn safe_strategies_run_each_job_once_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    for strategy in ["conditional", "pessimistic"] {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..queue(strategy, 16, 10) }).await;
        assert_accounted(&outcome);
        assert!(outcome.safe, "{strategy}");
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (80, 80, 0), "{strategy}: {outcome:#?}");
    }
}

// More jobs than claims: the rest stay pending, which is no violation.
async fn jobs_left_pending_are_not_lost(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { sizes: Sizes { jobs: Some(10), ..Sizes::default() }, ..queue("skip-locked", 2, 3) };
    let outcome = run(&db, experiment).await;
    assert_eq!((outcome.acknowledged, outcome.refused), (6, 0), "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
    assert!(outcome.invariant.detail.contains("6 of 10 done exactly once, 4 pending"), "{outcome:#?}");
}

// A queue larger than one seeding transaction (500 rows) is created whole, in order: its jobs are
// committed in three batches, the last one partial, and the workers see every one of them.
async fn a_queue_of_several_seeding_batches_is_created_whole(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { sizes: Sizes { jobs: Some(1201), ..Sizes::default() }, ..queue("pessimistic", 2, 3) };
    let outcome = run(&db, experiment).await;
    assert_eq!(outcome.sizes.get("jobs"), Some(&1201), "{outcome:#?}");
    assert_eq!((outcome.acknowledged, outcome.refused), (6, 0), "{outcome:#?}");
    assert!(outcome.invariant.detail.contains("6 of 1201 done exactly once, 1195 pending"), "{outcome:#?}");
}

async fn bad_sizes_are_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { sizes: Sizes { jobs: Some(100_001), ..Sizes::default() }, ..queue("naive", 1, 1) };
    let err = experiment.run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--jobs must be between 0 and 100000, got 100001"), "{err}");
    let err = queue("atomic", 1, 1).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("unknown queue strategy `atomic`") && err.contains("skip-locked"), "{err}");
}

on_every_backend!(
    naive_runs_a_job_twice_under_a_forced_race,
    skip_locked_never_runs_a_job_twice_with_16_workers,
    safe_strategies_run_each_job_once_with_16_workers,
    jobs_left_pending_are_not_lost,
    a_queue_of_several_seeding_batches_is_created_whole,
    bad_sizes_are_refused_by_name,
);
