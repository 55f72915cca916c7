//! Every strategy against real PostgreSQL, MariaDB and SQLite: the lost update forced, and its absence
//! proved by the database's own counter (acknowledged == actual).

use std::time::Duration;

use racelab_core::experiment::Target;
use racelab_core::{Backend, ErrorKind, Experiment, LockMode, Outcome, RetryPolicy, Strategy};
use racelab_testkit::{TestDb, on_every_backend};

async fn run(db: &racelab_core::Database, experiment: Experiment) -> Outcome {
    experiment.run(db).await.unwrap_or_else(|e| panic!("{} failed to run: {e}", experiment.strategy))
}

fn assert_accounted(outcome: &Outcome) {
    assert_eq!(outcome.acknowledged + outcome.failed + outcome.in_doubt, outcome.expected, "{outcome:#?}");
    assert_eq!(outcome.like_after.map(|after| after - outcome.like_before), outcome.actual, "{outcome:#?}");
    assert_eq!(outcome.foreign_writes, 0, "{outcome:#?}");
}

// Both workers read before either writes, so both write back the same value: one increment vanishes,
// every time, on every backend.
async fn naive_loses_exactly_one_of_two_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, Experiment { force_race: true, ..Experiment::new(Strategy::Naive, 2, 1) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.acknowledged, outcome.actual, outcome.lost), (2, Some(1), Some(1)), "{outcome:#?}");
    assert!(outcome.verdict().starts_with("lost 1 of 2 updates"), "{}", outcome.verdict());
}

async fn safe_strategy_at_32_workers(db: &racelab_core::Database, strategy: Strategy) {
    let outcome = run(db, Experiment::new(strategy, 32, 50)).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.expected, 1600);
    assert_eq!(outcome.lost, Some(0), "{strategy}: {outcome:#?}");
    assert_eq!(outcome.actual, Some(outcome.acknowledged as i64), "{strategy}: {outcome:#?}");
    // The default retry policy is meant to let 32 workers on one row finish.
    assert_eq!(outcome.failed, 0, "{strategy}: {outcome:#?}");
}

async fn atomic_loses_nothing_at_32_workers(test: TestDb) {
    safe_strategy_at_32_workers(&test.connect_wide().await, Strategy::Atomic).await;
}

async fn pessimistic_loses_nothing_at_32_workers(test: TestDb) {
    safe_strategy_at_32_workers(&test.connect_wide().await, Strategy::Pessimistic(LockMode::Wait)).await;
}

async fn optimistic_loses_nothing_at_32_workers(test: TestDb) {
    safe_strategy_at_32_workers(&test.connect_wide().await, Strategy::Optimistic).await;
}

async fn versioned_loses_nothing_at_32_workers(test: TestDb) {
    safe_strategy_at_32_workers(&test.connect_wide().await, Strategy::Versioned).await;
}

async fn serializable_loses_nothing_at_32_workers(test: TestDb) {
    safe_strategy_at_32_workers(&test.connect_wide().await, Strategy::Serializable).await;
}

async fn advisory_loses_nothing_at_32_workers(test: TestDb) {
    let db = test.connect_wide().await;
    if test.backend == Backend::Sqlite {
        let err = Experiment::new(Strategy::Advisory, 2, 1).run(&db).await.unwrap_err().to_string();
        assert!(err.contains("not supported on sqlite"), "{err}");
        return;
    }
    safe_strategy_at_32_workers(&db, Strategy::Advisory).await;
}

// The seed's mystery: the version check catches the conflict, nothing retries it, an increment is
// dropped. Nothing acknowledged is lost.
async fn versioned_without_retry_drops_conflicting_increments(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, Experiment { force_race: true, ..Experiment::new(Strategy::VersionedNoRetry, 4, 5) }).await;
    assert_accounted(&outcome);
    assert!(outcome.dropped >= 3, "all four read version 0, only one can save it: {outcome:#?}");
    assert_eq!(outcome.actual, Some(outcome.acknowledged as i64), "{outcome:#?}");
    assert_eq!(outcome.lost, Some(0));
    assert_eq!(outcome.acknowledged + outcome.dropped, 20);
    assert!(outcome.errors.contains_key(&ErrorKind::StaleVersion), "{outcome:#?}");
    assert!(outcome.verdict().starts_with(&format!("dropped {} of 20", outcome.dropped)), "{}", outcome.verdict());

    // The same race with the retry: nothing dropped.
    let outcome = run(&db, Experiment { force_race: true, ..Experiment::new(Strategy::Versioned, 4, 5) }).await;
    assert_eq!((outcome.acknowledged, outcome.actual, outcome.dropped), (20, Some(20), 0), "{outcome:#?}");
    assert!(outcome.retried_errors.contains_key(&ErrorKind::StaleVersion), "{outcome:#?}");
}

// Two serializable read-modify-writes that both read before either writes: the database refuses one,
// and the retry completes it.
async fn serializable_conflict_is_detected_and_retried(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, Experiment { force_race: true, ..Experiment::new(Strategy::Serializable, 2, 1) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.acknowledged, outcome.actual, outcome.failed), (2, Some(2), 0), "{outcome:#?}");
    assert!(outcome.retries >= 1, "{outcome:#?}");
    let expected_kinds: &[ErrorKind] = match test.backend {
        Backend::Sqlite => &[ErrorKind::Busy],
        _ => &[ErrorKind::SerializationFailure, ErrorKind::Deadlock],
    };
    assert!(outcome.retried_errors.keys().all(|k| expected_kinds.contains(k)), "{outcome:#?}");
    assert!(!outcome.retried_errors.is_empty(), "{outcome:#?}");
}

/// A one-shot pessimistic experiment on `pk` while the test holds the row's lock.
async fn one_locked_increment(db: &racelab_core::Database, pk: i64, mode: LockMode, timeout: Duration) -> Outcome {
    run(
        db,
        Experiment {
            target: Target::Post(pk),
            retry: RetryPolicy::no_retry(),
            lock_timeout: Some(timeout),
            ..Experiment::new(Strategy::Pessimistic(mode), 1, 1)
        },
    )
    .await
}

async fn pessimistic_lock_modes_report_their_kind_when_the_row_is_held(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let mut holder = db.session().await.unwrap();
    holder.begin(racelab_core::db::TxMode::RowLocking(LockMode::Wait)).await.unwrap();
    holder.read_for_update(pk, LockMode::Wait).await.unwrap();

    let nowait = one_locked_increment(&db, pk, LockMode::NoWait, Duration::from_secs(30)).await;
    assert_eq!(nowait.errors.get(&ErrorKind::LockNotAvailable), Some(&1), "{nowait:#?}");
    let skipped = one_locked_increment(&db, pk, LockMode::SkipLocked, Duration::from_secs(30)).await;
    assert_eq!(skipped.errors.get(&ErrorKind::RowSkipped), Some(&1), "{skipped:#?}");
    assert!(skipped.verdict().contains("row_skipped: 1"), "{}", skipped.verdict());
    let waited = one_locked_increment(&db, pk, LockMode::Wait, Duration::from_millis(200)).await;
    assert_eq!(waited.errors.get(&ErrorKind::LockTimeout), Some(&1), "{waited:#?}");
    for outcome in [&nowait, &skipped, &waited] {
        assert_eq!((outcome.acknowledged, outcome.actual), (0, Some(0)), "{outcome:#?}");
    }

    holder.rollback_quietly().await;
    let free = one_locked_increment(&db, pk, LockMode::NoWait, Duration::from_secs(1)).await;
    assert_eq!((free.acknowledged, free.actual, free.failed), (1, Some(1), 0), "{free:#?}");
}

async fn advisory_lock_times_out_and_is_released_after_an_error(test: TestDb) {
    let db = test.connect().await;
    if test.backend == Backend::Sqlite {
        let mut session = db.session().await.unwrap();
        let err = session.advisory_lock(1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("not supported on SQLite"), "{err}");
        return;
    }
    let pk = db.create_post().await.unwrap();
    let tx = racelab_core::db::TxMode::DefaultIsolation;

    // A lock held by the test makes the strategy wait, then give up with the lock-timeout kind.
    let mut holder = db.session().await.unwrap();
    holder.begin(tx).await.unwrap();
    holder.advisory_lock(pk).await.unwrap();
    let outcome = run(
        &db,
        Experiment {
            target: Target::Post(pk),
            retry: RetryPolicy::no_retry(),
            lock_timeout: Some(Duration::from_millis(300)),
            ..Experiment::new(Strategy::Advisory, 1, 1)
        },
    )
    .await;
    assert_eq!(outcome.errors.get(&ErrorKind::LockTimeout), Some(&1), "{outcome:#?}");
    holder.rollback_quietly().await;
    holder.advisory_unlock(pk).await.unwrap();

    // An error inside the critical section (the post does not exist) must still release the lock.
    let missing = pk + 1_000_000;
    let mut failing = db.session().await.unwrap();
    let step = racelab_core::strategy::Step::new(missing, 0);
    let err = Strategy::Advisory.attempt(&mut failing, step).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let mut next = db.session().await.unwrap();
    next.set_lock_timeout(Duration::from_millis(1)).await.unwrap();
    next.begin(tx).await.unwrap();
    next.advisory_lock(missing).await.expect("the failed worker released the lock; it is free at once");
    next.rollback_quietly().await;
    next.advisory_unlock(missing).await.unwrap();
    drop(failing);
}

async fn duration_bounded_runs_account_for_every_increment(test: TestDb) {
    let db = test.connect().await;
    let stop =
        racelab_core::StopAfter::Duration { warmup: Duration::from_millis(100), measure: Duration::from_millis(400) };
    let outcome = run(&db, Experiment { stop, ..Experiment::new(Strategy::Atomic, 4, 1) }).await;
    assert_accounted(&outcome);
    assert!(outcome.acknowledged > 0 && outcome.throughput_per_s > 0.0, "{outcome:#?}");
    assert_eq!(outcome.actual, Some(outcome.acknowledged as i64));
    assert_eq!(outcome.increments, None);
}

async fn an_existing_post_is_used_and_a_missing_one_created(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, Experiment { target: Target::Post(1), ..Experiment::new(Strategy::Atomic, 2, 3) }).await;
    assert_eq!((outcome.post, outcome.like_before, outcome.like_after), (1, 0, Some(6)));
    let outcome = run(&db, Experiment { target: Target::Post(1), ..Experiment::new(Strategy::Atomic, 2, 3) }).await;
    assert_eq!((outcome.like_before, outcome.like_after), (6, Some(12)));
    // Fresh posts never collide with the explicitly created post 1.
    let fresh = run(&db, Experiment::new(Strategy::Atomic, 1, 1)).await;
    assert_ne!(fresh.post, 1);
}

async fn invalid_experiments_are_refused_before_any_work(test: TestDb) {
    let db = test.connect().await;
    for (experiment, needle) in [
        (Experiment::new(Strategy::Atomic, 0, 1), "workers must be between 1 and 256, got 0"),
        (Experiment::new(Strategy::Atomic, 10_000, 1), "workers must be between 1 and 256, got 10000"),
        (Experiment::new(Strategy::Atomic, 41, 1), "raise the pool size"),
        (Experiment::new(Strategy::Atomic, 1, 0), "increments must be between 1 and 1000000, got 0"),
    ] {
        let err = experiment.run(&db).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

on_every_backend!(
    naive_loses_exactly_one_of_two_under_a_forced_race,
    atomic_loses_nothing_at_32_workers,
    pessimistic_loses_nothing_at_32_workers,
    optimistic_loses_nothing_at_32_workers,
    versioned_loses_nothing_at_32_workers,
    serializable_loses_nothing_at_32_workers,
    advisory_loses_nothing_at_32_workers,
    versioned_without_retry_drops_conflicting_increments,
    serializable_conflict_is_detected_and_retried,
    pessimistic_lock_modes_report_their_kind_when_the_row_is_held,
    advisory_lock_times_out_and_is_released_after_an_error,
    duration_bounded_runs_account_for_every_increment,
    an_existing_post_is_used_and_a_missing_one_created,
    invalid_experiments_are_refused_before_any_work,
);
