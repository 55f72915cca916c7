//! The `counter` workload (the counter's strategies through the generic runner) against real
//! PostgreSQL, MariaDB and SQLite: naive loses increments under a forced race, every safe strategy
//! holds with 16 workers, the naive body at SERIALIZABLE loses nothing, and the runner's result agrees
//! with the experiment's on the same sizes. The proof is the post's own counter, read back.

use crate::support::workload::run;
use racelab_core::workload::{OpStep, Role, WorkloadExperiment, WorkloadOutcome};
use racelab_core::{Backend, Experiment, Isolation, Strategy, TraceLimit, Workload};
use racelab_testkit::{TestDb, on_every_backend};

fn counter(strategy: &str, workers: usize, operations: u64) -> WorkloadExperiment {
    WorkloadExperiment::new(Workload::Counter, strategy, workers, operations)
}

fn assert_accounted(outcome: &WorkloadOutcome) {
    crate::support::workload::assert_accounted(outcome);
    assert_eq!((outcome.workload, outcome.invariant.name), (Workload::Counter, "no-lost-update"));
    // An increment is never refused: there is no business rule to say no.
    assert_eq!(outcome.refused, 0, "{outcome:#?}");
}

// Four workers read the counter before any of them writes: each writes back 1, and at least three of
// the first four increments are lost, every time, on every backend (as the experiment's race gate).
async fn naive_loses_increments_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..counter("naive", 4, 2) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.invariant.held, outcome.safe), (Some(false), false), "{outcome:#?}");
    assert_eq!(outcome.acknowledged, 8, "naive never fails here: {outcome:#?}");
    assert!(outcome.invariant.violations >= Some(3), "{outcome:#?}");
    assert!(outcome.invariant.detail.starts_with("lost"), "{}", outcome.invariant.detail);
    assert!(!outcome.safe_strategy_broke_invariant(), "naive is not meant to hold");
}

// 16 workers x 10 increments, the race forced on each worker's first increment: every safe strategy
// the backend offers (as `lab -s all` lists them) has all 160 acknowledged and in the counter.
async fn safe_strategies_lose_nothing_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    for strategy in Strategy::all_for(db.backend()).into_iter().filter(|s| s.retries()) {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..counter(strategy.name(), 16, 10) }).await;
        assert_accounted(&outcome);
        assert!(outcome.safe, "{strategy}");
        assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(true), Some(0)), "{outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.failed), (160, 0), "{strategy}: {outcome:#?}");
        assert!(outcome.invariant.detail.contains("went from 0 to 160"), "{}", outcome.invariant.detail);
    }
}

// The naive body with every transaction at SERIALIZABLE, the race forced: the database refuses what
// would lose an update (naive does not retry, so those increments fail), and nothing is lost.
async fn naive_at_serializable_isolation_loses_nothing(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { force_race: true, isolation: Some(Isolation::Serializable), ..counter("naive", 4, 3) };
    let outcome = run(&db, experiment).await;
    assert_accounted(&outcome);
    assert_eq!(outcome.isolation, "serializable");
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(true), Some(0)), "{outcome:#?}");
    assert!(outcome.failed >= 1, "the forced race must be refused, not lost: {outcome:#?}");
}

// The same sizes through the experiment and through the runner, one after the other on one
// database: both acknowledge every increment, and the counter grew by exactly that much.
async fn the_runner_agrees_with_the_experiment(test: TestDb) {
    let db = test.connect().await;
    for strategy in Strategy::all_for(db.backend()).into_iter().filter(|s| s.retries()) {
        let experiment = Experiment::new(strategy, 4, 25).run(&db).await.expect("the experiment runs");
        let workload = run(&db, counter(strategy.name(), 4, 25)).await;
        assert_accounted(&workload);
        assert_eq!(experiment.actual, Some(experiment.acknowledged as i64), "{strategy}: {experiment:#?}");
        assert_eq!(workload.acknowledged, experiment.acknowledged, "{strategy}: {workload:#?}");
        assert_eq!(workload.invariant.held, Some(true), "{strategy}: {workload:#?}");
        let grew = format!("went from 0 to {}", experiment.acknowledged);
        assert!(workload.invariant.detail.contains(&grew), "{strategy}: {}", workload.invariant.detail);
    }
}

// Traced, four naive increments after all four read 0: each worker begins, reads and is
// acknowledged, the counter grew by 1, and the trace marks the last three to commit as the ones that
// broke the invariant, the first as the one they raced with.
async fn a_lost_increment_is_marked_in_the_trace(test: TestDb) {
    let db = test.connect().await;
    let experiment =
        WorkloadExperiment { force_race: true, trace: Some(TraceLimit::default()), ..counter("naive", 4, 1) };
    let outcome = run(&db, experiment).await;
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(3)), "{outcome:#?}");
    let trace = outcome.trace.as_ref().expect("a traced run has a trace");
    for worker in 0..4 {
        let steps: Vec<&OpStep> = trace.events.iter().filter(|e| e.worker == worker).map(|e| &e.step).collect();
        assert_eq!(steps.len(), 3, "worker {worker}: {steps:?}");
        assert!(matches!(steps[0], OpStep::Begin { .. }), "{steps:?}");
        assert_eq!(steps[1..], [&OpStep::Read, &OpStep::Acknowledged], "worker {worker}");
    }
    let broke = trace.marked.iter().filter(|m| m.role == Role::Broke).count();
    assert_eq!((broke, trace.marked.len()), (3, 4), "{:#?}", trace.marked);
}

// What cannot run on the runner is refused before anything connects, as the experiment refuses it.
async fn what_cannot_run_is_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    if db.backend() == Backend::Sqlite {
        let err = counter("advisory", 2, 1).run(&db).await.expect_err("SQLite has no application lock").to_string();
        assert_eq!(err, "the advisory strategy is not supported on sqlite");
    }
    let err = counter("atomik", 2, 1).run(&db).await.expect_err("no such strategy").to_string();
    assert!(err.contains("unknown counter strategy `atomik`") && err.contains("sharded"), "{err}");
}

on_every_backend!(
    naive_loses_increments_under_a_forced_race,
    safe_strategies_lose_nothing_with_16_workers,
    naive_at_serializable_isolation_loses_nothing,
    the_runner_agrees_with_the_experiment,
    a_lost_increment_is_marked_in_the_trace,
    what_cannot_run_is_refused_by_name,
);
