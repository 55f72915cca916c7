//! `racelab anomalies` as a user runs it: the matrix in 80 columns next to Hermitage's results on
//! every backend, the JSON document, and the input it refuses.

use std::process::Output;

use racelab_testkit::{TestDb, on_every_backend};
use serde_json::Value;

use crate::support::binary::{command, text};

fn racelab(args: &[&str]) -> Output {
    command().args(args).output().expect("the racelab binary runs")
}

/// Every case has its row, every line fits 80 columns, and the comparison with Hermitage is said:
/// agreement on the servers (MariaDB compared with Hermitage's MySQL, and said so), none published
/// for SQLite.
async fn the_matrix_fits_80_columns_and_is_compared_with_hermitage(test: TestDb) {
    let output = racelab(&["anomalies", "--database-url", &test.url]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", text(&output.stderr));
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}\n{stdout}", line.chars().count());
    }
    for case in [
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "OTV",
        "PMP",
        "PMP-write",
        "P4",
        "G-single",
        "G-single-w",
        "G2-item",
        "G2",
        "G2-fekete",
        "P4 v+1",
        "read+write",
        "r+w late",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("{case} "))), "no {case} row:\n{stdout}");
    }
    let expected = match test.backend {
        racelab_core::Backend::Postgres => "Every cell agrees with Hermitage's published PostgreSQL 9.3.5",
        racelab_core::Backend::MySql => "Every cell agrees with Hermitage's published MySQL/InnoDB 5.6.21",
        racelab_core::Backend::Sqlite => "Hermitage (ept/hermitage) published no results for SQLite.",
    };
    assert!(stdout.replace('\n', " ").contains(expected), "{stdout}");
    if test.backend == racelab_core::Backend::MySql {
        assert!(stdout.replace('\n', " ").contains("Hermitage has no MariaDB: compared with MySQL"), "{stdout}");
    }
    // The lost update at the ORM's default level, as the database lets it happen.
    let read_then_write = stdout.lines().find(|l| l.starts_with("read+write ")).unwrap();
    let first_cell = read_then_write.split_whitespace().nth(1).unwrap();
    let expected = if test.backend == racelab_core::Backend::Sqlite { "busy@6" } else { "ANOMALY" };
    assert_eq!(first_cell, expected, "{stdout}");
}

on_every_backend!(the_matrix_fits_80_columns_and_is_compared_with_hermitage);

/// `--json` has every cell with its steps: here SQLite's BEGIN IMMEDIATE, refused busy at step 2.
#[tokio::test]
async fn json_has_every_step_of_every_cell() {
    let test = TestDb::create(racelab_core::Backend::Sqlite).await;
    let output = racelab(&["anomalies", "--json", "--database-url", &test.url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let columns = json["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 2);
    assert_eq!(columns[1]["level"], "sqlite_immediate");
    let cell = &columns[1]["cells"][0];
    assert_eq!(cell["case"], "G0");
    assert_eq!(cell["verdict"], "prevented");
    assert_eq!(cell["how"]["by"], "error");
    assert_eq!(cell["how"]["kind"], "busy");
    assert_eq!(cell["how"]["step"], 2);
    assert_eq!(cell["steps"][1]["tx"], "T2");
    assert_eq!(cell["steps"][1]["sql"], "BEGIN IMMEDIATE");
    assert_eq!(cell["steps"][1]["result"], "failed");
    assert_eq!(cell["final_rows"], serde_json::json!([[1, 11], [2, 21]]));
}

/// Session statements of the user's could change a level; several URLs are the nodes of one Galera
/// cluster, which SQLite and PostgreSQL are not: both are refused as bad input, before anything runs.
#[test]
fn init_sql_and_several_urls_of_a_non_cluster_are_refused() {
    let output = racelab(&["anomalies", "--database-url", "sqlite://x.db", "--init-sql", "SELECT 1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--init-sql does not apply to anomalies"), "{}", text(&output.stderr));
    let output = racelab(&["anomalies", "--database-url", "sqlite://x.db,sqlite://y.db"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("nodes of one MariaDB Galera cluster"), "{}", text(&output.stderr));
}
