//! The `queue` workload against real PostgreSQL, MariaDB and SQLite: the naive select-then-update
//! runs a job twice under a forced race, `skip-locked` never does with 16 workers, and every safe
//! strategy runs each job exactly once. The proof is the jobs' rows and their recorded runs, read back.

use crate::support::workload::{assert_accounted, run};
use racelab_core::Workload;
use racelab_core::workload::{Sizes, WorkloadExperiment};
use racelab_testkit::{TestDb, on_every_backend};

fn queue(strategy: &str, workers: usize, operations: u64) -> WorkloadExperiment {
    WorkloadExperiment::new(Workload::Queue, strategy, workers, operations)
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

// Why skip-locked claims at READ COMMITTED on MariaDB: at its default REPEATABLE READ a claim that
// finds no pending job locks the gap past the queue's last row, and a producer adding a job waits for
// that claim to end (here: gives up after the 1 s lock wait timeout, 1205); at READ COMMITTED the
// same claim locks nothing it did not find, and the job goes in at once. The claim is held open by
// the test; then the strategy's own runs say they ran at read committed (pessimistic keeps the
// default: it waits for the oldest job's lock, it does not skip).
async fn skip_locked_claims_at_read_committed_so_a_producer_is_not_blocked(test: TestDb) {
    use sqlx::{AssertSqlSafe, Connection, Executor};
    let db = test.connect().await;
    let drained = run(&db, queue("skip-locked", 1, 2)).await;
    assert_eq!(drained.isolation, "read-committed", "{drained:#?}");
    assert_eq!((drained.acknowledged, drained.refused), (1, 1), "an empty queue afterwards: {drained:#?}");
    let pessimistic = run(&db, queue("pessimistic", 1, 2)).await;
    assert_eq!(pessimistic.isolation, "default", "{pessimistic:#?}");

    let queue_id: i64 = {
        let mut c = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
        sqlx::query_scalar("SELECT MAX(queue) FROM queue_jobs").fetch_one(&mut c).await.unwrap()
    };
    let claim = format!(
        "SELECT id FROM queue_jobs WHERE queue = {queue_id} AND state = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    );
    let produce = format!("INSERT INTO queue_jobs (queue, state) VALUES ({queue_id}, 0)");
    let mut producer = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
    producer.execute("SET SESSION innodb_lock_wait_timeout = 1").await.unwrap();
    for (level, blocks) in [("REPEATABLE READ", true), ("READ COMMITTED", false)] {
        let mut worker = sqlx::MySqlConnection::connect(&test.url).await.unwrap();
        worker.execute(AssertSqlSafe(format!("SET TRANSACTION ISOLATION LEVEL {level}"))).await.unwrap();
        worker.execute("BEGIN").await.unwrap();
        let claimed = sqlx::query(AssertSqlSafe(claim.as_str())).fetch_optional(&mut worker).await.unwrap();
        assert!(claimed.is_none(), "{level}: the queue was drained");
        let produced = producer.execute(AssertSqlSafe(produce.as_str())).await;
        match (&produced, blocks) {
            (Err(sqlx::Error::Database(err)), true) => {
                assert_eq!(err.code().as_deref(), Some("HY000"), "{level}: {err}");
                assert!(err.message().contains("Lock wait timeout"), "{level}: {err}");
            }
            (Ok(_), false) => {}
            _ => panic!("{level}: a producer's INSERT during an empty claim: {produced:?}"),
        }
        worker.execute("ROLLBACK").await.unwrap();
        worker.close().await.unwrap();
    }
    producer.close().await.unwrap();
}

mod skip_locked_claims_at_read_committed_so_a_producer_is_not_blocked {
    racelab_testkit::backend_test!(skip_locked_claims_at_read_committed_so_a_producer_is_not_blocked, mysql, MySql);
}

on_every_backend!(
    naive_runs_a_job_twice_under_a_forced_race,
    skip_locked_never_runs_a_job_twice_with_16_workers,
    safe_strategies_run_each_job_once_with_16_workers,
    jobs_left_pending_are_not_lost,
    a_queue_of_several_seeding_batches_is_created_whole,
    bad_sizes_are_refused_by_name,
);
