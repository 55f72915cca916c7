//! A traced workload run against real PostgreSQL, MariaDB and SQLite: each attempt's events come back
//! in order (begin, read, how it ended), and when the invariant breaks the trace marks the
//! acknowledged operations that broke it and the one they raced with, from the run's own timing.

use crate::support::workload::run;
use racelab_core::TraceLimit;
use racelab_core::Workload;
use racelab_core::workload::{Marked, OpStep, Role, Sizes, WorkloadExperiment, WorkloadOutcome};
use racelab_testkit::{TestDb, on_every_backend};

fn traced(workload: Workload, strategy: &str, workers: usize, sizes: Sizes) -> WorkloadExperiment {
    WorkloadExperiment {
        force_race: true,
        sizes,
        trace: Some(TraceLimit::default()),
        ..WorkloadExperiment::new(workload, strategy, workers, 1)
    }
}

/// Each worker's steps, in the order the trace gives them.
fn steps_of(outcome: &WorkloadOutcome, worker: usize) -> Vec<OpStep> {
    let trace = outcome.trace.as_ref().expect("a traced run has a trace");
    trace.events.iter().filter(|e| e.worker == worker).map(|e| e.step.clone()).collect()
}

fn roles(marked: &[Marked]) -> (usize, usize) {
    let broke = marked.iter().filter(|m| m.role == Role::Broke).count();
    (broke, marked.len() - broke)
}

// Four workers book room 0's slot 0 after all four checked it free: the last three to commit broke
// the invariant, the first raced with them (every booking's attempt overlapped the others', held at
// the gate). Each worker's events: begin, read, acknowledged.
async fn a_double_booking_is_marked_with_the_booking_it_raced(test: TestDb) {
    let db = test.connect().await;
    let sizes = Sizes { rooms: 4, slots: 8, ..Sizes::default() };
    let outcome = run(&db, traced(Workload::Booking, "naive", 4, sizes)).await;
    assert_eq!(outcome.invariant.held, Some(false), "{outcome:#?}");
    for worker in 0..4 {
        let steps = steps_of(&outcome, worker);
        assert_eq!(steps.len(), 3, "worker {worker}: {steps:?}");
        assert!(
            matches!(&steps[0], OpStep::Begin { operation } if operation.contains("room: 0, slot: 0")),
            "{steps:?}"
        );
        assert_eq!(steps[1..], [OpStep::Read, OpStep::Acknowledged], "worker {worker}");
    }
    let trace = outcome.trace.as_ref().unwrap();
    assert_eq!(roles(&trace.marked), (3, 1), "{:#?}", trace.marked);
    let mut workers: Vec<usize> = trace.marked.iter().map(|m| m.worker).collect();
    workers.sort_unstable();
    assert_eq!(workers, [0, 1, 2, 3]);
    assert!(!trace.truncated);
}

// A stock of 1 and two buyers who both read it before either writes: one unit oversold. The buyer
// acknowledged last broke it, the other raced with it.
async fn the_oversold_unit_is_marked(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, traced(Workload::Stock, "naive", 2, Sizes { stock: Some(1), ..Sizes::default() })).await;
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(1)), "{outcome:#?}");
    assert_eq!(roles(&outcome.trace.as_ref().unwrap().marked), (1, 1), "{outcome:#?}");
}

// A safe strategy under the same race: the invariant holds, nothing is marked, and the refusal is in
// the trace as the business rule's answer.
async fn a_held_invariant_marks_nothing(test: TestDb) {
    let db = test.connect().await;
    let outcome =
        run(&db, traced(Workload::Stock, "conditional", 2, Sizes { stock: Some(1), ..Sizes::default() })).await;
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
    let trace = outcome.trace.as_ref().unwrap();
    assert!(trace.marked.is_empty(), "{trace:#?}");
    let ends: Vec<&OpStep> =
        trace.events.iter().map(|e| &e.step).filter(|s| matches!(s, OpStep::Acknowledged | OpStep::Refused)).collect();
    assert_eq!(ends.len(), 2, "{trace:#?}");
    assert!(ends.contains(&&OpStep::Refused) && ends.contains(&&OpStep::Acknowledged), "{trace:#?}");
}

// Untraced (the default), a run carries no trace.
async fn an_untraced_run_has_no_trace(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment::new(Workload::Stock, "conditional", 2, 2)).await;
    assert!(outcome.trace.is_none());
}

on_every_backend!(
    a_double_booking_is_marked_with_the_booking_it_raced,
    the_oversold_unit_is_marked,
    a_held_invariant_marks_nothing,
    an_untraced_run_has_no_trace,
);
