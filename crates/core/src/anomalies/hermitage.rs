//! Hermitage's published results (github.com/ept/hermitage, README table, postgres.md run on
//! PostgreSQL 9.3.5 and mysql.md on MySQL 5.6.21), as facts to compare a run with.
//!
//! Hermitage has no MariaDB, no `innodb_snapshot_isolation`, no SQLite, and not racelab's own three
//! cases: those cells have no published expectation. MariaDB is compared with Hermitage's MySQL/InnoDB,
//! and every comparison says so.
//!
//! Published facts only: a result measured here must never be written back into this table.

use serde::Serialize;

use super::case::Case;
use crate::spec::Level;

/// What Hermitage published for one case at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Published {
    /// The level prevents the anomaly (✓ in Hermitage's table).
    Prevented,
    /// The level lets it happen (— in Hermitage's table).
    Anomaly,
    /// Prevented for read-only transactions only ("R/O"): prevented in the read-only schedule this
    /// suite runs, not in Hermitage's variants with a write predicate.
    ReadOnly,
}

impl Published {
    /// Whether a measured verdict agrees with this expectation.
    pub fn agrees(self, anomaly: bool) -> bool {
        match self {
            Published::Anomaly => anomaly,
            Published::Prevented | Published::ReadOnly => !anomaly,
        }
    }

    /// One character for the table: ✓ prevented, — anomaly, R prevented for read-only transactions.
    pub fn mark(self) -> &'static str {
        match self {
            Published::Prevented => "✓",
            Published::Anomaly => "—",
            Published::ReadOnly => "R",
        }
    }
}

/// Hermitage's expectation for `case` at `level`, and the database it was published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub published: Published,
    /// "PostgreSQL 9.3.5" or "MySQL/InnoDB 5.6.21".
    pub source: &'static str,
}

const POSTGRES: &str = "PostgreSQL 9.3.5";
const MYSQL: &str = "MySQL/InnoDB 5.6.21";

/// Hermitage's row for a level, in [`HERMITAGE_CASES`] order, and its source.
fn row(level: Level) -> Option<([Published; 10], &'static str)> {
    use Published::{Anomaly as A, Prevented as P, ReadOnly as R};
    Some(match level {
        Level::PgReadCommitted => ([P, P, P, P, P, A, A, A, A, A], POSTGRES),
        Level::PgRepeatableRead => ([P, P, P, P, P, P, P, P, A, A], POSTGRES),
        Level::PgSerializable => ([P; 10], POSTGRES),
        Level::MyReadUncommitted => ([P, A, A, A, A, A, A, A, A, A], MYSQL),
        Level::MyReadCommitted => ([P, P, P, P, P, A, A, A, A, A], MYSQL),
        Level::MyRepeatableRead => ([P, P, P, P, P, R, A, R, A, A], MYSQL),
        Level::MySerializable => ([P; 10], MYSQL),
        Level::MyRepeatableReadSnapshot | Level::SqliteDeferred | Level::SqliteImmediate => return None,
    })
}

/// The ten cases of Hermitage's table, in its column order.
const HERMITAGE_CASES: [Case; 10] =
    [Case::G0, Case::G1a, Case::G1b, Case::G1c, Case::Otv, Case::Pmp, Case::P4, Case::GSingle, Case::G2Item, Case::G2];

/// Hermitage's results for the further forms of its anomalies, which it ran at fewer levels: the
/// write-predicate forms of PMP and G-single, and Fekete et al.'s G2 with two anti-dependency edges
/// (run at serializable only, on both pages). The ✓ of a serializable column covers every form;
/// "R/O" means the write form is not prevented. A "—" in the table says that some schedule shows the
/// anomaly, not that this one does: it is not carried over to a form Hermitage did not run at that
/// level (so Fekete's G2 has no expectation below serializable).
fn further_form(level: Level, case: Case) -> Option<Published> {
    use Published::{Anomaly as A, Prevented as P};
    match (case, level) {
        (Case::G2Fekete, Level::PgSerializable | Level::MySerializable) => Some(P),
        (Case::PmpWrite, Level::PgReadCommitted | Level::MyReadCommitted | Level::MyRepeatableRead) => Some(A),
        (Case::GSingleWrite, Level::MyRepeatableRead) => Some(A),
        (
            Case::PmpWrite | Case::GSingleWrite,
            Level::PgRepeatableRead | Level::PgSerializable | Level::MySerializable,
        ) => Some(P),
        _ => None,
    }
}

/// What Hermitage published for `case` at `level`; `None` where it published nothing.
pub fn expectation(level: Level, case: Case) -> Option<Expectation> {
    if matches!(case, Case::PmpWrite | Case::GSingleWrite | Case::G2Fekete) {
        let (_, source) = row(level)?;
        return further_form(level, case).map(|published| Expectation { published, source });
    }
    let (row, source) = row(level)?;
    let column = HERMITAGE_CASES.iter().position(|c| *c == case)?;
    Some(Expectation { published: row[column], source })
}
