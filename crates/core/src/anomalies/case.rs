//! The cases: Hermitage's schedules (its ten anomalies; PMP and G-single also on a write predicate;
//! G2 also as Fekete et al.'s three-transaction example) and three of racelab's own, each with the
//! rule that tells an anomaly from its absence in what the transactions saw and what the table holds
//! at the end.
//!
//! The schedules follow Hermitage's PostgreSQL and MySQL pages (ept/hermitage), where each test is
//! two or three transactions on `test (id, value)` holding `(1, 10), (2, 20)`. Every transaction
//! begins first, in order; then the steps run in the order written, except that a step waiting for a
//! lock holds back the later steps of its own transaction only. Beginning early changes no case: no
//! level here takes its snapshot at BEGIN (PostgreSQL and InnoDB take it at the first statement or
//! read, as a plain `BEGIN` without `WITH CONSISTENT SNAPSHOT` does; SQLite's deferred transaction at
//! its first read), and a level that locks at BEGIN (SQLite's immediate) refuses the second
//! transaction wherever it begins.
//!
//! Data and rules only: nothing here runs a statement (the schedule runner does).

use serde::Serialize;

use super::conn::Rows;

/// The table every schedule runs on, created by the suite in the database it is pointed at.
pub(crate) const TABLE: &str = "racelab_anomaly_test";

/// One anomaly test: a row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Case {
    /// Write cycles (dirty writes).
    G0,
    /// Aborted reads.
    G1a,
    /// Intermediate reads.
    G1b,
    /// Circular information flow.
    G1c,
    /// Observed transaction vanishes.
    #[serde(rename = "OTV")]
    Otv,
    /// Predicate-many-preceders (a read predicate).
    #[serde(rename = "PMP")]
    Pmp,
    /// Predicate-many-preceders on a write predicate: a DELETE whose predicate another transaction's
    /// UPDATE changes while the DELETE waits for it.
    #[serde(rename = "PMP-write")]
    PmpWrite,
    /// Lost update, Hermitage's form: both read, both write a constant.
    P4,
    /// Read skew.
    #[serde(rename = "G-single")]
    GSingle,
    /// Read skew on a write predicate: the reader then deletes by a predicate the writer changed.
    #[serde(rename = "G-single-write")]
    GSingleWrite,
    /// Write skew on disjoint rows.
    #[serde(rename = "G2-item")]
    G2Item,
    /// Anti-dependency cycles on a predicate (both insert what the other's read would have seen).
    G2,
    /// Anti-dependency cycles, Fekete et al.'s example with two anti-dependency edges: a read-only
    /// transaction (T3) sees a state that no serial order of the three produces.
    #[serde(rename = "G2-fekete")]
    G2Fekete,
    /// Lost update with `SET value = value + 1` after a read: the atomic strategy's statement.
    #[serde(rename = "P4-increment")]
    P4Increment,
    /// The ORM's read-then-write: read the value, write back `read + 1` computed by the client (the
    /// seed's `/2th`, racelab's `naive`).
    #[serde(rename = "read-then-write")]
    ReadThenWrite,
    /// The same, with the second write after the first commit: the lost update that needs no
    /// concurrent write to happen (on Galera, the one certification lets through: the second write
    /// certifies because the first transaction has already committed; MariaDB's MDEV-38977).
    #[serde(rename = "read-then-write-late")]
    ReadThenWriteLate,
}

/// What one step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Opens the transaction at the level of the column.
    Begin,
    /// A statement; its rows, if any, are what the transaction saw.
    Sql(&'static str),
    /// `UPDATE ... SET value = <the value this transaction last read for id 1> + 1 WHERE id = 1`.
    WriteReadPlusOne,
    Commit,
    Rollback,
}

/// One step of a schedule: transaction `tx` (0-based) does `op`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub tx: usize,
    pub op: Op,
}

/// What a run of a schedule produced, for [`Case::is_anomaly`].
pub(crate) struct Observed<'a> {
    pub steps: &'a [Step],
    /// The rows each step returned, where it succeeded.
    pub rows: &'a [Option<Rows>],
    /// Whether each transaction's COMMIT succeeded.
    pub committed: &'a [bool],
    /// The table after every transaction ended.
    pub final_rows: &'a Rows,
}

impl Observed<'_> {
    /// The rows of every successful read of transaction `tx`, in order.
    fn reads(&self, tx: usize) -> impl Iterator<Item = &Rows> {
        self.steps
            .iter()
            .zip(self.rows)
            .filter(move |(s, _)| s.tx == tx && matches!(s.op, Op::Sql(sql) if sql.starts_with("SELECT")))
            .filter_map(|(_, r)| r.as_ref())
    }

    fn saw(&self, tx: usize, id: i64, value: i64) -> bool {
        self.reads(tx).any(|rows| rows.contains(&(id, value)))
    }

    fn both_committed(&self) -> bool {
        self.committed.iter().take(2).all(|c| *c)
    }

    fn all_committed(&self) -> bool {
        self.committed.iter().all(|c| *c)
    }

    fn final_value(&self, id: i64) -> Option<i64> {
        self.final_rows.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    /// A counter incremented once by each committed transaction ends at 10 + commits, or lost one.
    fn increment_lost(&self) -> bool {
        let commits = self.committed.iter().filter(|c| **c).count() as i64;
        self.final_value(1) != Some(10 + commits)
    }
}

const T1: usize = 0;
const T2: usize = 1;
const T3: usize = 2;

macro_rules! sql {
    ($($part:literal),+) => {
        Op::Sql(concat!($($part),+))
    };
}

fn step(tx: usize, op: Op) -> Step {
    Step { tx, op }
}

impl Case {
    pub const ALL: [Case; 16] = [
        Case::G0,
        Case::G1a,
        Case::G1b,
        Case::G1c,
        Case::Otv,
        Case::Pmp,
        Case::PmpWrite,
        Case::P4,
        Case::GSingle,
        Case::GSingleWrite,
        Case::G2Item,
        Case::G2,
        Case::G2Fekete,
        Case::P4Increment,
        Case::ReadThenWrite,
        Case::ReadThenWriteLate,
    ];

    /// The name in Hermitage's tables (or ours).
    pub fn name(self) -> &'static str {
        match self {
            Case::G0 => "G0",
            Case::G1a => "G1a",
            Case::G1b => "G1b",
            Case::G1c => "G1c",
            Case::Otv => "OTV",
            Case::Pmp => "PMP",
            Case::PmpWrite => "PMP-write",
            Case::P4 => "P4",
            Case::GSingle => "G-single",
            Case::GSingleWrite => "G-single-w",
            Case::G2Item => "G2-item",
            Case::G2 => "G2",
            Case::G2Fekete => "G2-fekete",
            Case::P4Increment => "P4 v+1",
            Case::ReadThenWrite => "read+write",
            Case::ReadThenWriteLate => "r+w late",
        }
    }

    /// What the anomaly is, in words.
    pub fn title(self) -> &'static str {
        match self {
            Case::G0 => "write cycles (dirty writes)",
            Case::G1a => "aborted reads",
            Case::G1b => "intermediate reads",
            Case::G1c => "circular information flow",
            Case::Otv => "observed transaction vanishes",
            Case::Pmp => "predicate-many-preceders (read predicate)",
            Case::PmpWrite => "predicate-many-preceders (write predicate)",
            Case::P4 => "lost update (both write a constant)",
            Case::GSingle => "read skew (read-only reader)",
            Case::GSingleWrite => "read skew (the reader deletes by a predicate)",
            Case::G2Item => "write skew",
            Case::G2 => "anti-dependency cycles (predicate write skew)",
            Case::G2Fekete => "anti-dependency cycles (Fekete's read-only transaction anomaly)",
            Case::P4Increment => "lost update with SET value = value + 1 (racelab)",
            Case::ReadThenWrite => "ORM read, then write read + 1 (racelab)",
            Case::ReadThenWriteLate => "ORM read, then write read + 1 after the other committed (racelab)",
        }
    }

    /// How many transactions the schedule has.
    pub(crate) fn transactions(self) -> usize {
        if matches!(self, Case::Otv | Case::G2Fekete) { 3 } else { 2 }
    }

    /// The steps, BEGINs included, in schedule order.
    pub(crate) fn schedule(self) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..self.transactions()).map(|tx| step(tx, Op::Begin)).collect();
        steps.extend(self.body().into_iter().map(|(tx, op)| step(tx, op)));
        steps
    }

    fn body(self) -> Vec<(usize, Op)> {
        use Op::{Commit, Rollback, WriteReadPlusOne};
        let read_1 = sql!("SELECT id, value FROM racelab_anomaly_test WHERE id = 1");
        let read_2 = sql!("SELECT id, value FROM racelab_anomaly_test WHERE id = 2");
        let read_all = sql!("SELECT id, value FROM racelab_anomaly_test ORDER BY id");
        let read_both = sql!("SELECT id, value FROM racelab_anomaly_test WHERE id IN (1, 2) ORDER BY id");
        let delete_20 = sql!("DELETE FROM racelab_anomaly_test WHERE value = 20");
        let read_mod_3 = sql!("SELECT id, value FROM racelab_anomaly_test WHERE value % 3 = 0 ORDER BY id");
        let set = |id: i64, value: i64| -> Op {
            // The few constants the schedules write, spelled out so that every statement is a literal.
            match (id, value) {
                (1, 0) => sql!("UPDATE racelab_anomaly_test SET value = 0 WHERE id = 1"),
                (1, 11) => sql!("UPDATE racelab_anomaly_test SET value = 11 WHERE id = 1"),
                (1, 12) => sql!("UPDATE racelab_anomaly_test SET value = 12 WHERE id = 1"),
                (1, 101) => sql!("UPDATE racelab_anomaly_test SET value = 101 WHERE id = 1"),
                (2, 18) => sql!("UPDATE racelab_anomaly_test SET value = 18 WHERE id = 2"),
                (2, 19) => sql!("UPDATE racelab_anomaly_test SET value = 19 WHERE id = 2"),
                (2, 21) => sql!("UPDATE racelab_anomaly_test SET value = 21 WHERE id = 2"),
                _ => sql!("UPDATE racelab_anomaly_test SET value = 22 WHERE id = 2"),
            }
        };
        match self {
            Case::G0 => {
                vec![(T1, set(1, 11)), (T2, set(1, 12)), (T1, set(2, 21)), (T1, Commit), (T2, set(2, 22)), (T2, Commit)]
            }
            Case::G1a => vec![(T1, set(1, 101)), (T2, read_all), (T1, Rollback), (T2, read_all), (T2, Commit)],
            Case::G1b => {
                vec![(T1, set(1, 101)), (T2, read_all), (T1, set(1, 11)), (T1, Commit), (T2, read_all), (T2, Commit)]
            }
            Case::G1c => {
                vec![(T1, set(1, 11)), (T2, set(2, 22)), (T1, read_2), (T2, read_1), (T1, Commit), (T2, Commit)]
            }
            Case::Otv => vec![
                (T1, set(1, 11)),
                (T1, set(2, 19)),
                (T2, set(1, 12)),
                (T1, Commit),
                (T3, read_all),
                (T2, set(2, 18)),
                (T3, read_all),
                (T2, Commit),
                (T3, read_all),
                (T3, Commit),
            ],
            Case::Pmp => vec![
                (T1, sql!("SELECT id, value FROM racelab_anomaly_test WHERE value = 30")),
                (T2, sql!("INSERT INTO racelab_anomaly_test (id, value) VALUES (3, 30)")),
                (T2, Commit),
                (T1, read_mod_3),
                (T1, Commit),
            ],
            Case::PmpWrite => vec![
                (T1, sql!("UPDATE racelab_anomaly_test SET value = value + 10")),
                (T2, read_all),
                (T2, delete_20),
                (T1, Commit),
                (T2, sql!("SELECT id, value FROM racelab_anomaly_test WHERE value = 20")),
                (T2, Commit),
            ],
            Case::GSingleWrite => vec![
                (T1, read_1),
                (T2, read_all),
                (T2, set(1, 12)),
                (T2, set(2, 18)),
                (T2, Commit),
                (T1, delete_20),
                (T1, read_2),
                (T1, Commit),
            ],
            Case::P4 => {
                vec![(T1, read_1), (T2, read_1), (T1, set(1, 11)), (T2, set(1, 11)), (T1, Commit), (T2, Commit)]
            }
            Case::GSingle => vec![
                (T1, read_1),
                (T2, read_1),
                (T2, read_2),
                (T2, set(1, 12)),
                (T2, set(2, 18)),
                (T2, Commit),
                (T1, read_2),
                (T1, Commit),
            ],
            Case::G2Item => {
                vec![(T1, read_both), (T2, read_both), (T1, set(1, 11)), (T2, set(2, 21)), (T1, Commit), (T2, Commit)]
            }
            Case::G2 => vec![
                (T1, read_mod_3),
                (T2, read_mod_3),
                (T1, sql!("INSERT INTO racelab_anomaly_test (id, value) VALUES (3, 30)")),
                (T2, sql!("INSERT INTO racelab_anomaly_test (id, value) VALUES (4, 42)")),
                (T1, Commit),
                (T2, Commit),
            ],
            // T2 and T3 begin with the others (steps 2 and 3) but see nothing until their first
            // statement, which comes where Hermitage begins them: T2 after T1's read, T3 after T2's
            // commit.
            Case::G2Fekete => vec![
                (T1, read_all),
                (T2, sql!("UPDATE racelab_anomaly_test SET value = value + 5 WHERE id = 2")),
                (T2, Commit),
                (T3, read_all),
                (T3, Commit),
                (T1, set(1, 0)),
                (T1, Commit),
            ],
            Case::P4Increment => {
                let increment = sql!("UPDATE racelab_anomaly_test SET value = value + 1 WHERE id = 1");
                vec![(T1, read_1), (T2, read_1), (T1, increment), (T2, increment), (T1, Commit), (T2, Commit)]
            }
            Case::ReadThenWrite => vec![
                (T1, read_1),
                (T2, read_1),
                (T1, WriteReadPlusOne),
                (T2, WriteReadPlusOne),
                (T1, Commit),
                (T2, Commit),
            ],
            Case::ReadThenWriteLate => vec![
                (T1, read_1),
                (T2, read_1),
                (T1, WriteReadPlusOne),
                (T1, Commit),
                (T2, WriteReadPlusOne),
                (T2, Commit),
            ],
        }
    }

    /// Whether what the transactions saw, and the table at the end, show this anomaly.
    pub(crate) fn is_anomaly(self, seen: &Observed<'_>) -> bool {
        match self {
            // One transaction's writes interleaved with the other's: 1 from one, 2 from the other.
            Case::G0 => {
                matches!((seen.final_value(1), seen.final_value(2)), (Some(12), Some(21)) | (Some(11), Some(22)))
            }
            // T2 saw a value that was rolled back (G1a) or overwritten before commit (G1b).
            Case::G1a | Case::G1b => seen.saw(T2, 1, 101),
            // Each saw the other's uncommitted write.
            Case::G1c => seen.saw(T1, 2, 22) && seen.saw(T2, 1, 11),
            // T3 saw T2's writes and then T1's, which T2 overwrote.
            Case::Otv => {
                let mut saw_t2 = false;
                for rows in seen.reads(T3) {
                    let values: Vec<i64> = rows.iter().map(|(_, v)| *v).collect();
                    saw_t2 |= values.iter().any(|v| [12, 18].contains(v));
                    if saw_t2 && values.iter().any(|v| [11, 19].contains(v)) {
                        return true;
                    }
                }
                false
            }
            // T1's second read sees the row that its first read's predicate missed.
            Case::Pmp => seen.reads(T1).last().is_some_and(|rows| rows.iter().any(|(id, _)| *id == 3)),
            // T2 committed, and no serial order explains what it read first, what its DELETE left
            // and what it read after: T2 before T1 (it saw the original rows; row 2 deleted, then
            // row 1 raised to 20), T1 before T2 (it saw 20 and 30; row 1 deleted), or T2 alone.
            Case::PmpWrite => {
                let reads: Vec<&Rows> = seen.reads(T2).collect();
                let (Some(before), Some(after)) = (reads.first(), reads.last()) else { return false };
                let serial = match before.as_slice() {
                    [(1, 10), (2, 20)] => [vec![(1, 20)], vec![(1, 10)]].contains(seen.final_rows),
                    [(1, 20), (2, 30)] => *seen.final_rows == [(2, 30)],
                    _ => false,
                };
                seen.committed[T2] && reads.len() == 2 && !(serial && after.is_empty())
            }
            // Both read and both wrote on what they read, and both committed. In G-single-write, T1
            // read row 1 before T2 wrote it and T2 read row 2 before T1's DELETE could take it: no
            // serial order has both commit.
            Case::P4 | Case::G2Item | Case::G2 | Case::GSingleWrite => seen.both_committed(),
            // T1 read 1 before T2's commit and 2 after it: a total T2 never wrote.
            Case::GSingle => {
                let value = |id: i64| seen.reads(T1).flatten().find(|(i, _)| *i == id).map(|(_, v)| *v);
                matches!((value(1), value(2)), (Some(a), Some(b)) if a + b != 30)
            }
            // T1 read 2 before T2 wrote it (T1 before T2); T3 read T2's write (T2 before T3) and 1
            // before T1 wrote it (T3 before T1): a cycle, if all three committed.
            Case::G2Fekete => seen.all_committed() && seen.saw(T1, 2, 20) && seen.saw(T3, 2, 25) && seen.saw(T3, 1, 10),
            Case::P4Increment | Case::ReadThenWrite | Case::ReadThenWriteLate => seen.increment_lost(),
        }
    }
}

impl Op {
    /// The SQL of this step at `begin` (the level's BEGIN), given the value of id 1 the transaction
    /// last read (for [`Op::WriteReadPlusOne`]).
    pub(crate) fn sql(self, begin: &str, last_read: Option<i64>) -> String {
        match self {
            Op::Begin => begin.to_owned(),
            Op::Sql(sql) => sql.to_owned(),
            Op::WriteReadPlusOne => match last_read {
                Some(value) => format!("UPDATE {TABLE} SET value = {} WHERE id = 1", value + 1),
                // No read to add to: the schedule always reads first, so this is never run.
                None => format!("UPDATE {TABLE} SET value = value WHERE id = 1"),
            },
            Op::Commit => "COMMIT".to_owned(),
            Op::Rollback => "ROLLBACK".to_owned(),
        }
    }

    /// Whether the step ends its transaction (and so may release locks others wait for).
    pub(crate) fn ends_transaction(self) -> bool {
        matches!(self, Op::Commit | Op::Rollback)
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
