//! `oncall`: doctors go off call, each only if at least one other doctor of the shift stays on call.
//! The invariant `someone-on-call`: every shift keeps at least one doctor on call; `violations` counts
//! the shifts left uncovered (and doctors off call whom no acknowledged or in-doubt operation took
//! off, which only a write from outside the run could do).
//!
//! The unsafe way is `naive`: count the shift's doctors on call, then take oneself off. Two doctors who
//! count at once each see the other on call, and each writes only their own row: no write conflicts
//! with the other, so neither a row lock nor snapshot isolation's first-updater-wins stops it. This is
//! write skew: it passes REPEATABLE READ on PostgreSQL (snapshot isolation) and on MariaDB, even with
//! `innodb_snapshot_isolation = ON`, which refuses only rows changed since the snapshot that the
//! transaction itself writes. The fixes lock what was read (`pessimistic`: `FOR UPDATE` on the shift's
//! doctors), turn the skew into a conflict on one row every doctor writes (`materialized`: the shift's
//! count, decremented with a guard), or let the database see the read-write dependency
//! (`serializable`).

use super::experiment::WorkloadExperiment;
use super::invariant::Invariant;
use super::ledger::Ledger;
use super::op::{Answer, OpCtx};
use super::rng::Rng;
use super::scenario::{Scenario, TxKind, WorkloadStrategy};
use super::sizes::Sizes;
use super::workloads::Workload;
use crate::db::{DoctorRow, LockMode, Session};
use crate::error::DbError;

/// The `oncall` workload.
#[derive(Debug, Clone, Copy)]
pub struct OnCall;

/// How one doctor's going off call is made safe, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnCallStrategy {
    /// Count the shift's doctors on call, then take oneself off, at the default isolation (SQLite: in
    /// autocommit). Leaves shifts uncovered.
    Naive,
    /// The same, with the shift's doctors read `FOR UPDATE` in key order (SQLite: `BEGIN IMMEDIATE`).
    Pessimistic,
    /// Off call `WHERE on_call = 1`, then the shift's count decremented `WHERE on_call >= 2` (no row
    /// matched: the last on call), in one transaction.
    Materialized,
    /// The naive body in a SERIALIZABLE transaction, retried.
    Serializable,
}

impl WorkloadStrategy for OnCallStrategy {
    const ALL: &'static [Self] = &[
        OnCallStrategy::Naive,
        OnCallStrategy::Pessimistic,
        OnCallStrategy::Materialized,
        OnCallStrategy::Serializable,
    ];

    fn name(self) -> &'static str {
        match self {
            OnCallStrategy::Naive => "naive",
            OnCallStrategy::Pessimistic => "pessimistic",
            OnCallStrategy::Materialized => "materialized",
            OnCallStrategy::Serializable => "serializable",
        }
    }

    fn tx(self) -> TxKind {
        match self {
            OnCallStrategy::Naive => TxKind::Plain,
            OnCallStrategy::Pessimistic => TxKind::RowLocking(LockMode::Wait),
            OnCallStrategy::Materialized => TxKind::Transaction,
            OnCallStrategy::Serializable => TxKind::Serializable,
        }
    }

    fn retries(self) -> bool {
        self != OnCallStrategy::Naive
    }

    fn safe(self) -> bool {
        self != OnCallStrategy::Naive
    }

    // Two doctors of a shift going off call write two different rows: certification lets both
    // through whatever each node locked or read. Only the count row, which both write, is compared.
    fn safe_across_nodes(self) -> bool {
        self == OnCallStrategy::Materialized
    }
}

/// One shift of the run: its key and its doctors' keys, in creation order.
#[derive(Debug, Clone)]
pub struct Shift {
    pub id: i64,
    pub doctors: Vec<i64>,
}

/// The run's shifts, one per pair of workers, each with `--doctors` doctors on call.
#[derive(Debug, Clone)]
pub struct OnCallFixture {
    pub shifts: Vec<Shift>,
    /// Doctors per shift.
    pub doctors: usize,
}

/// One operation: doctor `doctor` of shift `shift` (indexes into the run's shifts and doctors) asks
/// to go off call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoOffCall {
    pub shift: usize,
    pub doctor: usize,
}

impl Scenario for OnCall {
    const WORKLOAD: Workload = Workload::OnCall;
    const INVARIANT: &'static str = "someone-on-call";
    const SENTENCE: &'static str = "every shift keeps at least one doctor on call (a doctor goes off call only if \
         another stays); violations are the shifts left uncovered";

    type Strategy = OnCallStrategy;
    type Fixture = OnCallFixture;
    type Op = GoOffCall;
    type State = Vec<DoctorRow>;

    fn validate(experiment: &WorkloadExperiment) -> Result<(), String> {
        let doctors = experiment.sizes.doctors;
        if !(1..=Sizes::MAX_DOCTORS).contains(&doctors) {
            return Err(format!("--doctors must be between 1 and {}, got {doctors}", Sizes::MAX_DOCTORS));
        }
        Ok(())
    }

    async fn setup(session: &mut Session, experiment: &WorkloadExperiment) -> Result<OnCallFixture, DbError> {
        let doctors = experiment.sizes.doctors;
        let mut shifts = Vec::with_capacity(shift_count(experiment.workers));
        for _ in 0..shift_count(experiment.workers) {
            let id = session.create_shift(doctors as i64).await?;
            let keys = session.create_doctors(id, doctors).await?;
            shifts.push(Shift { id, doctors: keys });
        }
        Ok(OnCallFixture { shifts, doctors })
    }

    fn sizes(fixture: &OnCallFixture) -> Vec<(&'static str, i64)> {
        vec![("shifts", fixture.shifts.len() as i64), ("doctors", fixture.doctors as i64)]
    }

    fn next_op(fixture: &OnCallFixture, rng: &mut Rng) -> GoOffCall {
        let shift = rng.below(fixture.shifts.len() as u64) as usize;
        let doctor = rng.below(fixture.doctors as u64) as usize;
        GoOffCall { shift, doctor }
    }

    fn forced_op(
        _strategy: OnCallStrategy,
        fixture: &OnCallFixture,
        worker: usize,
        _workers: usize,
    ) -> Option<GoOffCall> {
        // The workers fill the shifts in order, one distinct doctor each: every doctor of a filled
        // shift asks at once, and each sees all the others on call.
        let shift = (worker / fixture.doctors) % fixture.shifts.len();
        Some(GoOffCall { shift, doctor: worker % fixture.doctors })
    }

    fn races(strategy: OnCallStrategy, _fixture: &OnCallFixture, _worker: usize, _workers: usize) -> bool {
        // The strategies that read without a lock; a locking read would keep the others from the gate.
        matches!(strategy, OnCallStrategy::Naive | OnCallStrategy::Serializable)
    }

    async fn attempt(
        strategy: OnCallStrategy,
        session: &mut Session,
        fixture: &OnCallFixture,
        op: GoOffCall,
        ctx: &OpCtx<'_>,
    ) -> Result<Answer, DbError> {
        let shift = &fixture.shifts[op.shift];
        let doctor = shift.doctors[op.doctor];
        match strategy {
            OnCallStrategy::Naive | OnCallStrategy::Serializable => {
                let doctors = session.read_shift(shift.id).await?;
                ctx.after_read().await;
                go_off_if_another_stays(session, &doctors, doctor).await
            }
            OnCallStrategy::Pessimistic => {
                let doctors = session.lock_shift(shift.id).await?;
                go_off_if_another_stays(session, &doctors, doctor).await
            }
            OnCallStrategy::Materialized => {
                // Already off call, or the last on call: refused (the runner rolls back the first).
                if !session.go_off_call_if_on(doctor).await? || !session.leave_shift_if_another_stays(shift.id).await? {
                    return Ok(Answer::Refused);
                }
                Ok(Answer::Done)
            }
        }
    }

    async fn state(session: &mut Session, fixture: &OnCallFixture) -> Result<Vec<DoctorRow>, DbError> {
        let first = fixture.shifts.iter().map(|s| s.id).min().unwrap_or_default();
        let last = fixture.shifts.iter().map(|s| s.id).max().unwrap_or_default();
        let rows = session.doctors_settled(first, last).await?;
        Ok(rows.into_iter().filter(|row| fixture.shifts.iter().any(|s| s.id == row.shift)).collect())
    }

    /// Going off call contends for the shift: all but one of its doctors may go.
    fn contends(fixture: &OnCallFixture, _state: &Self::State, op: GoOffCall) -> Option<(i64, u64)> {
        Some((op.shift as i64, fixture.doctors.saturating_sub(1) as u64))
    }

    fn check(fixture: &OnCallFixture, state: &Vec<DoctorRow>, ledger: &Ledger<GoOffCall>) -> Invariant {
        let on_call = |id: i64| state.iter().find(|row| row.id == id).map(|row| row.on_call);
        let shifts: Vec<Vec<Option<bool>>> =
            fixture.shifts.iter().map(|shift| shift.doctors.iter().map(|id| on_call(*id)).collect()).collect();
        check_on_call(&shifts, ledger)
    }
}

/// One shift per pair of workers (at least one): two doctors' workers per shift on average.
fn shift_count(workers: usize) -> usize {
    workers.div_ceil(2).max(1)
}

/// Takes `doctor` off call if the doctors as read say it is on call and another one is too: the
/// check every strategy but `materialized` shares (safe or not by the locks and level it runs under).
async fn go_off_if_another_stays(session: &mut Session, doctors: &[DoctorRow], doctor: i64) -> Result<Answer, DbError> {
    let me_on_call = doctors.iter().any(|row| row.id == doctor && row.on_call);
    let on_call = doctors.iter().filter(|row| row.on_call).count();
    if !me_on_call || on_call < 2 {
        return Ok(Answer::Refused);
    }
    session.go_off_call(doctor).await?;
    Ok(Answer::Done)
}

/// The someone-on-call check over each shift's doctors (`Some(on call)`, `None`: the row is gone).
/// Violations: shifts with no doctor on call, doctors off call whom no acknowledged or in-doubt
/// operation took off (or acknowledged off call but on call), and missing doctors.
fn check_on_call(shifts: &[Vec<Option<bool>>], ledger: &Ledger<GoOffCall>) -> Invariant {
    let named =
        |ops: &[GoOffCall], shift: usize, doctor: usize| ops.iter().any(|op| op.shift == shift && op.doctor == doctor);
    let uncovered = shifts.iter().filter(|doctors| !doctors.contains(&Some(true))).count() as u64;
    let missing = shifts.iter().flatten().filter(|d| d.is_none()).count() as u64;
    let mut unexplained = 0u64;
    for (s, doctors) in shifts.iter().enumerate() {
        for (d, on_call) in doctors.iter().enumerate() {
            let acknowledged = named(&ledger.acknowledged, s, d);
            let may_be_off = acknowledged || named(&ledger.in_doubt, s, d);
            match on_call {
                Some(false) if !may_be_off => unexplained += 1,
                Some(true) if acknowledged => unexplained += 1,
                _ => {}
            }
        }
    }
    let on_call = shifts.iter().flatten().filter(|d| **d == Some(true)).count();
    let violations = uncovered + unexplained + missing;
    let detail = if violations == 0 {
        format!("every one of {} shifts kept a doctor on call ({on_call} on call in all)", shifts.len())
    } else {
        let mut parts = Vec::new();
        if uncovered > 0 {
            parts.push(format!("{uncovered} of {} shifts left with no doctor on call", shifts.len()));
        }
        if unexplained > 0 {
            parts.push(format!("{unexplained} doctors' state differs from what the acknowledged operations say"));
        }
        if missing > 0 {
            parts.push(format!("{missing} doctors missing"));
        }
        parts.join("; ")
    };
    Invariant::checked(OnCall::INVARIANT, violations, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(shift: usize, doctor: usize) -> GoOffCall {
        GoOffCall { shift, doctor }
    }

    #[test]
    fn an_uncovered_shift_is_a_violation_and_doubt_explains_either_state() {
        let ledger = Ledger { acknowledged: vec![off(0, 0)], in_doubt: vec![off(1, 1)] };
        let held = check_on_call(&[vec![Some(false), Some(true)], vec![Some(true), Some(true)]], &ledger);
        assert_eq!((held.held, held.violations), (Some(true), Some(0)), "{held:?}");
        let held = check_on_call(&[vec![Some(false), Some(true)], vec![Some(true), Some(false)]], &ledger);
        assert_eq!(held.violations, Some(0), "{held:?}");
        // Write skew: both doctors of shift 0 acknowledged off call.
        let skew = Ledger { acknowledged: vec![off(0, 0), off(0, 1)], in_doubt: vec![] };
        let broken = check_on_call(&[vec![Some(false), Some(false)], vec![Some(true), Some(true)]], &skew);
        assert_eq!((broken.held, broken.violations), (Some(false), Some(1)), "{broken:?}");
        assert!(broken.detail.starts_with("1 of 2 shifts left with no doctor on call"), "{}", broken.detail);
        // A doctor off call whom nobody took off, and one acknowledged off but on call.
        let odd = check_on_call(
            &[vec![Some(true), Some(false)]],
            &Ledger { acknowledged: vec![off(0, 0)], in_doubt: vec![] },
        );
        assert_eq!(odd.violations, Some(2), "{odd:?}");
    }

    #[test]
    fn forced_ops_fill_each_shift_with_distinct_doctors() {
        let fixture = OnCallFixture {
            shifts: (0..3).map(|i| Shift { id: i, doctors: vec![10 * i, 10 * i + 1] }).collect(),
            doctors: 2,
        };
        let ops: Vec<_> = (0..4).filter_map(|w| OnCall::forced_op(OnCallStrategy::Naive, &fixture, w, 4)).collect();
        assert_eq!(ops, vec![off(0, 0), off(0, 1), off(1, 0), off(1, 1)]);
        assert_eq!(shift_count(1), 1);
        assert_eq!(shift_count(16), 8);
    }
}
