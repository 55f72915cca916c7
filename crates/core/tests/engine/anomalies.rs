//! The anomaly matrix of each backend, asserted cell by cell on a database of its own: a change in
//! what a database prevents, or in how it prevents it (a lock wait, an error of another kind or at
//! another step), fails here. Each cell is a schedule of a few statements; a whole backend takes
//! seconds.

use std::time::Duration;

use racelab_core::anomalies::{self, Case, Level, Matrix, Verdict};
use racelab_core::{Backend, DatabaseUrl};
use racelab_testkit::TestDb;

use crate::support::anomaly_token::token;

async fn measure(test: &TestDb) -> Matrix {
    let url = DatabaseUrl::parse(&test.url).unwrap();
    anomalies::run(&url, Duration::from_secs(5)).await.unwrap()
}

/// Compares the measured matrix with `expected`: one row per case, in [`Case::ALL`] order, one
/// column per level (as `racelab anomalies` prints it). Reports every differing cell at once, with
/// the steps of the first one.
fn assert_matrix<const N: usize>(matrix: &Matrix, levels: [Level; N], expected: &[(Case, [&str; N])]) {
    assert_eq!(matrix.columns.iter().map(|c| c.level).collect::<Vec<_>>(), levels);
    assert_eq!(expected.iter().map(|(case, _)| *case).collect::<Vec<_>>(), Case::ALL);
    let mut wrong = Vec::new();
    for (i, column) in matrix.columns.iter().enumerate() {
        assert!(column.unavailable.is_none(), "{} not available: {:?}", column.name, column.unavailable);
        assert_eq!(column.cells.iter().map(|c| c.case).collect::<Vec<_>>(), Case::ALL);
        for (cell, (_, row)) in column.cells.iter().zip(expected) {
            if token(cell) != row[i] {
                wrong.push((column.name, cell, row[i]));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_matrix() {
    let test = TestDb::create(Backend::Postgres).await;
    let matrix = measure(&test).await;
    // 40001 at step N: "could not serialize access".
    let (s4, s5, s6, s8) = (
        "P serialization_failure@4",
        "P serialization_failure@5",
        "P serialization_failure@6",
        "P serialization_failure@8",
    );
    #[rustfmt::skip]
    assert_matrix(&matrix, [Level::PgReadCommitted, Level::PgRepeatableRead, Level::PgSerializable], &[
        //                        read committed  repeatable read  serializable
        (Case::G0,               ["P blk@4",      s4,              s4]),
        (Case::G1a,              ["P",            "P",             "P"]),
        (Case::G1b,              ["P",            "P",             "P"]),
        (Case::G1c,              ["P",            "P",             s8]),
        (Case::Otv,              ["P blk@6",      s6,              s6]),
        (Case::Pmp,              ["A",            "P",             "P"]),
        (Case::PmpWrite,         ["A blk@5",      s5,              s5]),
        (Case::P4,               ["A blk@6",      s6,              s6]),
        (Case::GSingle,          ["A",            "P",             "P"]),
        (Case::GSingleWrite,     ["A",            s8,              s8]),
        (Case::G2Item,           ["A",            "A",             s8]),
        (Case::G2,               ["A",            "A",             s8]),
        // T1's write after T3 read T2's commit: SSI refuses it (Hermitage's "could not serialize").
        // The anomaly at RR also shows that T3's snapshot came at its read, not at its early BEGIN.
        (Case::G2Fekete,         ["A",            "A",             "P serialization_failure@9"]),
        (Case::P4Increment,      ["P blk@6",      s6,              s6]),
        (Case::ReadThenWrite,    ["A blk@6",      s6,              s6]),
        (Case::ReadThenWriteLate, ["A",           "P serialization_failure@7", "P serialization_failure@7"]),
    ]);
    // Hermitage published the same for PostgreSQL 9.3.5, cell for cell.
    assert_agrees_with_hermitage(&matrix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_matrix() {
    let test = TestDb::create(Backend::MySql).await;
    let matrix = measure(&test).await;
    // 1020 at step N: "Record has changed since last read" (innodb_snapshot_isolation).
    let (c5, c6, c8) = ("P serialization_failure@5", "P serialization_failure@6", "P serialization_failure@8");
    let levels = [
        Level::MyReadUncommitted,
        Level::MyReadCommitted,
        Level::MyRepeatableRead,
        Level::MyRepeatableReadSnapshot,
        Level::MySerializable,
    ];
    #[rustfmt::skip]
    assert_matrix(&matrix, levels, &[
        //                        RU           RC           RR           RR+SI        SER
        (Case::G0,               ["P blk@4",   "P blk@4",   "P blk@4",   "P blk@4",   "P blk@4"]),
        (Case::G1a,              ["A",         "P",         "P",         "P",         "P blk@4"]),
        (Case::G1b,              ["A",         "P",         "P",         "P",         "P blk@4"]),
        (Case::G1c,              ["A",         "P",         "P",         "P",         "P deadlock@6"]),
        (Case::Otv,              ["A blk@6",   "P blk@6",   "P blk@6",   "P blk@6",   "P blk@6"]),
        (Case::Pmp,              ["A",         "A",         "P",         "P",         "P blk@4"]),
        (Case::PmpWrite,         ["P blk@5",   "A blk@5",   "A blk@5",   c5,          "P blk@4"]),
        (Case::P4,               ["A blk@6",   "A blk@6",   "A blk@6",   c6,          "P deadlock@6"]),
        (Case::GSingle,          ["A",         "A",         "P",         "P",         "P blk@6"]),
        (Case::GSingleWrite,     ["A",         "A",         "A",         c8,          "P deadlock@8"]),
        (Case::G2Item,           ["A",         "A",         "A",         "A",         "P deadlock@6"]),
        (Case::G2,               ["A",         "A",         "A",         "A",         "P deadlock@6"]),
        // As Hermitage's MySQL page: T2's write waits for T1's shared lock and T3's read behind it;
        // T1's write closes the cycle and T2 is the victim (step 5); T3 then reads 10 and 20.
        (Case::G2Fekete,         ["A",         "A",         "A",         "A",         "P deadlock@5"]),
        (Case::P4Increment,      ["P blk@6",   "P blk@6",   "P blk@6",   c6,          "P deadlock@6"]),
        (Case::ReadThenWrite,    ["A blk@6",   "A blk@6",   "A blk@6",   c6,          "P deadlock@6"]),
        (Case::ReadThenWriteLate, ["A",        "A",         "A",         "P serialization_failure@7", "P deadlock@7"]),
    ]);
    // MariaDB 10.11 agrees with what Hermitage published for MySQL 5.6's InnoDB, cell for cell
    // (its "R/O" cells: PMP and G-single prevented for a read-only reader, not on a write predicate).
    assert_agrees_with_hermitage(&matrix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_matrix() {
    let test = TestDb::create(Backend::Sqlite).await;
    let matrix = measure(&test).await;
    // BEGIN IMMEDIATE takes the write lock: the second transaction cannot even begin (step 2).
    let second_begin = "P busy@2";
    #[rustfmt::skip]
    assert_matrix(&matrix, [Level::SqliteDeferred, Level::SqliteImmediate], &[
        //                        deferred     immediate
        (Case::G0,               ["P busy@4",  second_begin]),
        (Case::G1a,              ["P",         second_begin]),
        (Case::G1b,              ["P",         second_begin]),
        (Case::G1c,              ["P busy@4",  second_begin]),
        (Case::Otv,              ["P busy@6",  second_begin]),
        (Case::Pmp,              ["P",         second_begin]),
        (Case::PmpWrite,         ["P busy@5",  second_begin]),
        (Case::P4,               ["P busy@6",  second_begin]),
        (Case::GSingle,          ["P",         second_begin]),
        (Case::GSingleWrite,     ["P busy@8",  second_begin]),
        (Case::G2Item,           ["P busy@6",  second_begin]),
        (Case::G2,               ["P busy@6",  second_begin]),
        // T1's write after T2's commit: its snapshot is stale (SQLITE_BUSY_SNAPSHOT).
        (Case::G2Fekete,         ["P busy@9",  second_begin]),
        (Case::P4Increment,      ["P busy@6",  second_begin]),
        (Case::ReadThenWrite,    ["P busy@6",  second_begin]),
        (Case::ReadThenWriteLate, ["P busy@7", second_begin]),
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
    let matrix = anomalies::run_cases(
        std::slice::from_ref(&url),
        Duration::from_secs(30),
        &[Level::PgReadCommitted],
        &[Case::P4],
    )
    .await
    .unwrap();
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
