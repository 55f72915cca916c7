//! The `booking` workload against real PostgreSQL, MariaDB and SQLite: the naive check-then-insert
//! books one (room, slot) once per racer under a forced race, and every safe strategy (the unique key's
//! refusal counted as "already booked", not an error) books each slot once with 16 workers. The proof is
//! the bookings' rows, read back.

use crate::support::workload::{assert_accounted, run};
use racelab_core::Workload;
use racelab_core::workload::{Sizes, WorkloadExperiment};
use racelab_testkit::{TestDb, on_every_backend};

fn booking(strategy: &str, workers: usize, operations: u64, rooms: usize, slots: usize) -> WorkloadExperiment {
    WorkloadExperiment {
        sizes: Sizes { rooms, slots, ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::Booking, strategy, workers, operations)
    }
}

// Four workers check slot 0 of room 0 before any of them inserts: all four book it. Exactly three
// double bookings, on every backend.
async fn naive_double_books_under_a_forced_race(test: TestDb) {
    let db = test.connect().await;
    let outcome = run(&db, WorkloadExperiment { force_race: true, ..booking("naive", 4, 1, 4, 8) }).await;
    assert_accounted(&outcome);
    assert_eq!((outcome.acknowledged, outcome.failed), (4, 0), "{outcome:#?}");
    assert_eq!((outcome.invariant.held, outcome.invariant.violations), (Some(false), Some(3)), "{outcome:#?}");
    assert!(outcome.invariant.detail.starts_with("3 double bookings"), "{outcome:#?}");
}

// 16 workers x 10 bookings of 2 rooms x 4 slots, every first booking of the same slot: every safe
// strategy books each slot at most once, refuses the rest, and fails nothing (the unique key's
// refusal is an answer).
async fn safe_strategies_never_double_book_with_16_workers(test: TestDb) {
    let db = test.connect_wide().await;
    for strategy in ["unique", "pessimistic", "serializable"] {
        let outcome = run(&db, WorkloadExperiment { force_race: true, ..booking(strategy, 16, 10, 2, 4) }).await;
        assert_accounted(&outcome);
        assert_eq!(
            (outcome.invariant.held, outcome.invariant.violations),
            (Some(true), Some(0)),
            "{strategy}: {outcome:#?}"
        );
        assert_eq!(outcome.failed + outcome.in_doubt, 0, "{strategy}: {outcome:#?}");
        assert!((1..=8).contains(&outcome.acknowledged), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.acknowledged + outcome.refused, 160, "{strategy}: {outcome:#?}");
    }
}

async fn bad_sizes_are_refused_by_name(test: TestDb) {
    let db = test.connect().await;
    let err = booking("naive", 1, 1, 0, 8).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--rooms must be between 1 and 10000, got 0"), "{err}");
    let err = booking("naive", 1, 1, 1, 0).run(&db).await.unwrap_err().to_string();
    assert!(err.contains("--slots must be between 1 and 1024, got 0"), "{err}");
}

on_every_backend!(
    naive_double_books_under_a_forced_race,
    safe_strategies_never_double_book_with_16_workers,
    bad_sizes_are_refused_by_name,
);
