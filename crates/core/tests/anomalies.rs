//! The anomaly matrix of each backend, asserted cell by cell on a database of its own: a change in
//! what a database prevents, or in how it prevents it (a lock wait, an error of another kind or at
//! another step), fails here. Each cell is a schedule of a few statements; a whole backend takes
//! seconds.

use std::time::Duration;

use racelab_core::anomalies::{self, Case, Cell, How, Level, Matrix, Verdict};
use racelab_core::{Backend, DatabaseUrl};
use racelab_testkit::TestDb;

/// A cell in a few characters: `A` the anomaly happened, `P` it was prevented; then how:
/// `blk@5` a lock wait at step 5 (until the other transaction ended), `deadlock@6` an error of that
/// kind at step 6, nothing if every step answered at once (a snapshot decided).
fn token(cell: &Cell) -> String {
    let verdict = match cell.verdict {
        Verdict::Anomaly => "A",
        Verdict::Prevented => "P",
    };
    match &cell.how {
        How::Nothing => verdict.to_owned(),
        How::Blocked { step, .. } => format!("{verdict} blk@{step}"),
        How::Error { step, kind, .. } => format!("{verdict} {kind}@{step}"),
    }
}

async fn measure(test: &TestDb) -> Matrix {
    let url = DatabaseUrl::parse(&test.url).unwrap();
    anomalies::run(&url, Duration::from_secs(5)).await.unwrap()
}

/// Compares the measured matrix with `expected` (one row per level, in [`Case::ALL`] order) and
/// reports every differing cell at once, with the steps of the first one.
fn assert_matrix(matrix: &Matrix, expected: &[(Level, [&str; 12])]) {
    let levels: Vec<Level> = matrix.columns.iter().map(|c| c.level).collect();
    assert_eq!(levels, expected.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    let mut wrong = Vec::new();
    for (column, (_, row)) in matrix.columns.iter().zip(expected) {
        assert!(column.unavailable.is_none(), "{} not available: {:?}", column.name, column.unavailable);
        let cases: Vec<Case> = column.cells.iter().map(|c| c.case).collect();
        assert_eq!(cases, Case::ALL);
        for (cell, want) in column.cells.iter().zip(row) {
            if token(cell) != *want {
                wrong.push((column.name, cell, *want));
            }
        }
    }
    if let Some((_, first, _)) = wrong.first() {
        let list: Vec<String> = wrong
            .iter()
            .map(|(level, cell, want)| format!("{} at {level}: {} (expected {want})", cell.case, token(cell)))
            .collect();
        panic!("{}\nsteps of the first: {:#?}", list.join("\n"), first.steps);
    }
}

/// Every cell for which Hermitage published a result agrees with it (and there are such cells).
fn assert_agrees_with_hermitage(matrix: &Matrix) {
    let compared = matrix.columns.iter().flat_map(|c| &c.cells).filter(|cell| cell.hermitage.is_some()).count();
    assert!(compared >= 30, "only {compared} cells compared with Hermitage");
    let differences: Vec<_> = matrix.differences().map(|(level, cell)| format!("{} at {level}", cell.case)).collect();
    assert!(differences.is_empty(), "{differences:?}");
}

const SSI: &str = "P serialization_failure";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_matrix() {
    let test = TestDb::create(Backend::Postgres).await;
    let matrix = measure(&test).await;
    let ser = |step: u8| format!("{SSI}@{step}");
    let (s4, s6, s8) = (ser(4), ser(6), ser(8));
    #[rustfmt::skip]
    assert_matrix(&matrix, &[
        //                          G0         G1a  G1b  G1c  OTV        PMP  P4         G-single G2-item G2   P4 v+1     read+write
        (Level::PgReadCommitted,  ["P blk@4", "P", "P", "P", "P blk@6", "A", "A blk@6", "A",     "A",    "A", "P blk@6", "A blk@6"]),
        (Level::PgRepeatableRead, [&s4,       "P", "P", "P", &s6,       "P", &s6,       "P",     "A",    "A", &s6,       &s6]),
        (Level::PgSerializable,   [&s4,       "P", "P", &s8, &s6,       "P", &s6,       "P",     &s8,    &s8, &s6,       &s6]),
    ]);
    // Hermitage published the same for PostgreSQL 9.3.5, cell for cell.
    assert_agrees_with_hermitage(&matrix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_matrix() {
    let test = TestDb::create(Backend::MySql).await;
    let matrix = measure(&test).await;
    let first_write_refused = "P serialization_failure@6";
    #[rustfmt::skip]
    assert_matrix(&matrix, &[
        //                                  G0         G1a        G1b        G1c             OTV        PMP        P4              G-single   G2-item         G2              P4 v+1          read+write
        (Level::MyReadUncommitted,        ["P blk@4", "A",       "A",       "A",            "A blk@6", "A",       "A blk@6",      "A",       "A",            "A",            "P blk@6",      "A blk@6"]),
        (Level::MyReadCommitted,          ["P blk@4", "P",       "P",       "P",            "P blk@6", "A",       "A blk@6",      "A",       "A",            "A",            "P blk@6",      "A blk@6"]),
        (Level::MyRepeatableRead,         ["P blk@4", "P",       "P",       "P",            "P blk@6", "P",       "A blk@6",      "P",       "A",            "A",            "P blk@6",      "A blk@6"]),
        (Level::MyRepeatableReadSnapshot, ["P blk@4", "P",       "P",       "P",            "P blk@6", "P",       first_write_refused, "P",  "A",            "A",            first_write_refused, first_write_refused]),
        (Level::MySerializable,           ["P blk@4", "P blk@4", "P blk@4", "P deadlock@6", "P blk@6", "P blk@4", "P deadlock@6", "P blk@6", "P deadlock@6", "P deadlock@6", "P deadlock@6", "P deadlock@6"]),
    ]);
    // MariaDB 10.11 agrees with what Hermitage published for MySQL 5.6's InnoDB, cell for cell
    // (its "R/O" cells, PMP and G-single at repeatable read, are the read-only schedules run here).
    assert_agrees_with_hermitage(&matrix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_matrix() {
    let test = TestDb::create(Backend::Sqlite).await;
    let matrix = measure(&test).await;
    // BEGIN IMMEDIATE takes the write lock: the second transaction cannot even begin.
    let second_begin_busy = ["P busy@2"; 12];
    #[rustfmt::skip]
    assert_matrix(&matrix, &[
        //                        G0          G1a  G1b  G1c         OTV         PMP  P4          G-single G2-item     G2          P4 v+1      read+write
        (Level::SqliteDeferred,  ["P busy@4", "P", "P", "P busy@4", "P busy@6", "P", "P busy@6", "P",     "P busy@6", "P busy@6", "P busy@6", "P busy@6"]),
        (Level::SqliteImmediate, second_begin_busy),
    ]);
    assert!(matrix.columns.iter().all(|c| c.cells.iter().all(|cell| cell.hermitage.is_none())));
}

// The blocked step is known from the lock view, not from a timeout: on PostgreSQL read committed,
// T2's write to the row T1 updated waits (step 6), T1's commit releases it, and it overwrites.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocked_step_waits_for_the_commit_that_releases_it() {
    let test = TestDb::create(Backend::Postgres).await;
    let url = DatabaseUrl::parse(&test.url).unwrap();
    let started = std::time::Instant::now();
    let matrix =
        anomalies::run_cases(&url, Duration::from_secs(30), &[Level::PgReadCommitted], &[Case::P4]).await.unwrap();
    // Far below the 30 s lock timeout: the wait was seen, not waited out.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let cell = &matrix.columns[0].cells[0];
    let order: Vec<(usize, &str)> = cell.steps.iter().map(|s| (s.step, s.tx.as_str())).collect();
    assert_eq!(order, [(1, "T1"), (2, "T2"), (3, "T1"), (4, "T2"), (5, "T1"), (6, "T2"), (7, "T1"), (8, "T2")]);
    assert!(matches!(cell.steps[5].result, anomalies::StepResult::Done { blocked: true }), "{:?}", cell.steps[5]);
    assert!(matches!(cell.steps[6].result, anomalies::StepResult::Done { blocked: false }));
    assert_eq!(cell.final_rows, [(1, 11), (2, 20)]);
    assert_eq!(cell.verdict, Verdict::Anomaly);
}
