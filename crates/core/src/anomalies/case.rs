//! The cases: Hermitage's schedules (its ten anomalies; PMP and G-single also on a write predicate;
//! G2 also as Fekete et al.'s three-transaction example) and three of racelab's own, each with the
//! rule that tells an anomaly from its absence in what the transactions saw and what the table holds
//! at the end.
//!
//! Each case is a spec file, `specs/hermitage/<case>.spec`, embedded in the binary: the schedules
//! follow Hermitage's PostgreSQL and MySQL pages (ept/hermitage), where each test is two or three
//! transactions on `test (id, value)` holding `(1, 10), (2, 20)`. Every transaction begins first, in
//! order (its session's setup); then the steps run in the order of the spec's one permutation, except
//! that a step waiting for a lock holds back the later steps of its own transaction only (the spec
//! runner's schedule semantics). Beginning early changes no case: no level here takes its snapshot at
//! BEGIN (PostgreSQL and InnoDB take it at the first statement or read, as a plain `BEGIN` without
//! `WITH CONSISTENT SNAPSHOT` does; SQLite's deferred transaction at its first read), and a level that
//! locks at BEGIN (SQLite's immediate) refuses the second transaction wherever it begins.
//!
//! Data and rules only: nothing here runs a statement (the spec runner does).

use serde::Serialize;

use super::outcome::{CaseRun, Rows, StepReport, StepResult};

/// The table every case runs on, created by its spec's setup and dropped by its teardown.
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

/// A read-then-write case whose reads did not see what its writes were written for.
#[derive(Debug, thiserror::Error)]
#[error("{tx} wrote 11 after reading {read:?}, not (1, 10): the case did not run as written")]
pub struct NotAsWritten {
    pub tx: String,
    pub read: Option<Rows>,
}

// What a case's run showed, read the way its verdict asks.
impl CaseRun {
    /// The steps of transaction `tx` (0-based).
    fn of(&self, tx: usize) -> impl Iterator<Item = &StepReport> {
        let name = format!("T{}", tx + 1);
        self.steps.iter().filter(move |s| s.tx == name)
    }

    /// The rows of every successful read of transaction `tx`, in order.
    fn reads(&self, tx: usize) -> impl Iterator<Item = &Rows> {
        self.of(tx).filter(|s| s.answered() && s.sql.starts_with("SELECT")).map(|s| &s.rows)
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

    /// The read-then-write cases write the literal 11, what a client computes from the 10 that every
    /// level reads there. Each transaction whose write ran must have read exactly that.
    fn read_ten_before_writing(&self) -> Result<(), NotAsWritten> {
        for tx in [T1, T2] {
            let steps: Vec<&StepReport> = self.of(tx).collect();
            let Some(write) = steps.iter().position(|s| s.sql.starts_with("UPDATE") && s.result != StepResult::NotRun)
            else {
                continue;
            };
            let read = steps[..write].iter().rev().find(|s| s.answered() && s.sql.starts_with("SELECT"));
            let read = read.map(|s| s.rows.clone());
            if read.as_deref() != Some(&[(1, 10)][..]) {
                return Err(NotAsWritten { tx: format!("T{}", tx + 1), read });
            }
        }
        Ok(())
    }
}

const T1: usize = 0;
const T2: usize = 1;
const T3: usize = 2;

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

    /// The case's spec file (`specs/hermitage/`), as the binary holds it.
    pub(crate) fn spec_text(self) -> &'static str {
        match self {
            Case::G0 => include_str!("../../../../specs/hermitage/g0.spec"),
            Case::G1a => include_str!("../../../../specs/hermitage/g1a.spec"),
            Case::G1b => include_str!("../../../../specs/hermitage/g1b.spec"),
            Case::G1c => include_str!("../../../../specs/hermitage/g1c.spec"),
            Case::Otv => include_str!("../../../../specs/hermitage/otv.spec"),
            Case::Pmp => include_str!("../../../../specs/hermitage/pmp.spec"),
            Case::PmpWrite => include_str!("../../../../specs/hermitage/pmp-write.spec"),
            Case::P4 => include_str!("../../../../specs/hermitage/p4.spec"),
            Case::GSingle => include_str!("../../../../specs/hermitage/g-single.spec"),
            Case::GSingleWrite => include_str!("../../../../specs/hermitage/g-single-write.spec"),
            Case::G2Item => include_str!("../../../../specs/hermitage/g2-item.spec"),
            Case::G2 => include_str!("../../../../specs/hermitage/g2.spec"),
            Case::G2Fekete => include_str!("../../../../specs/hermitage/g2-fekete.spec"),
            Case::P4Increment => include_str!("../../../../specs/hermitage/p4-increment.spec"),
            Case::ReadThenWrite => include_str!("../../../../specs/hermitage/read-then-write.spec"),
            Case::ReadThenWriteLate => include_str!("../../../../specs/hermitage/read-then-write-late.spec"),
        }
    }

    /// Whether what the transactions saw, and the table at the end, show this anomaly; an error
    /// where a read-then-write case did not read what its writes were written for.
    pub(crate) fn verdict(self, seen: &CaseRun) -> Result<bool, NotAsWritten> {
        if matches!(self, Case::ReadThenWrite | Case::ReadThenWriteLate) {
            seen.read_ten_before_writing()?;
        }
        Ok(self.is_anomaly(seen))
    }

    /// Whether what the transactions saw, and the table at the end, show this anomaly.
    fn is_anomaly(self, seen: &CaseRun) -> bool {
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
                    [(1, 10), (2, 20)] => [vec![(1, 20)], vec![(1, 10)]].contains(&seen.final_rows),
                    [(1, 20), (2, 30)] => seen.final_rows == [(2, 30)],
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

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Case;
    use crate::anomalies::outcome::{CaseRun, StepReport, StepResult};

    /// Every case's embedded spec parses: one session per transaction (`t1`, `t2`, and `t3` for OTV
    /// and G2-fekete) whose setup opens it, then `check` with its one step, and one permutation, the
    /// schedule, ending with `check`'s read of the table.
    #[test]
    fn every_case_is_a_spec_of_its_schedule() {
        for case in Case::ALL {
            let spec = crate::spec::parse(case.spec_text()).unwrap_or_else(|e| panic!("{case}: {e}"));
            let names: Vec<&str> = spec.sessions.iter().map(|s| s.name.as_str()).collect();
            let three = matches!(case, Case::Otv | Case::G2Fekete);
            let expected: &[&str] = if three { &["t1", "t2", "t3", "check"] } else { &["t1", "t2", "check"] };
            assert_eq!(names, expected, "{case}");
            for session in &spec.sessions[..names.len() - 1] {
                assert!(session.setup.as_deref().is_some_and(|s| s.starts_with("BEGIN")), "{case}: {session:?}");
            }
            assert_eq!(spec.permutations.len(), 1, "{case}");
            assert_eq!(spec.permutations[0].steps.last().map(|s| s.name.as_str()), Some("rows"), "{case}");
        }
    }

    fn step(step: usize, tx: &str, sql: &str, rows: Vec<(i64, i64)>) -> StepReport {
        let result = StepResult::Done { blocked: false };
        StepReport { step, tx: tx.to_owned(), sql: sql.to_owned(), result, rows }
    }

    /// The read-then-write cases write 11 because every level reads 10 there: a run whose read saw
    /// anything else did not run the case as written, and says so instead of giving a verdict.
    #[test]
    fn a_read_then_write_that_did_not_read_ten_is_not_a_verdict() {
        let read = "SELECT id, value FROM racelab_anomaly_test WHERE id = 1";
        let write = "UPDATE racelab_anomaly_test SET value = 11 WHERE id = 1";
        let steps = |t2_read: Vec<(i64, i64)>| {
            vec![
                step(1, "T1", "BEGIN", vec![]),
                step(2, "T2", "BEGIN", vec![]),
                step(3, "T1", read, vec![(1, 10)]),
                step(4, "T2", read, t2_read),
                step(5, "T1", write, vec![]),
                step(6, "T2", write, vec![]),
                step(7, "T1", "COMMIT", vec![]),
                step(8, "T2", "COMMIT", vec![]),
            ]
        };
        let as_written = steps(vec![(1, 10)]);
        let seen = CaseRun { steps: as_written, committed: vec![true, true], final_rows: vec![(1, 11), (2, 20)] };
        assert!(Case::ReadThenWrite.verdict(&seen).unwrap(), "two commits, 11: an increment lost");
        let not = steps(vec![(1, 11)]);
        let seen = CaseRun { steps: not, committed: vec![true, true], final_rows: vec![(1, 11), (2, 20)] };
        let err = Case::ReadThenWrite.verdict(&seen).unwrap_err();
        assert_eq!(err.tx, "T2");
        assert!(err.to_string().contains("did not run as written"), "{err}");
    }
}
