//! The `oncall` workload's SQL: a run's shifts (`oncall_shifts`, with the count of doctors on call that
//! only the `materialized` strategy keeps) and their doctors (`oncall_doctors`, `on_call` 1 or 0).

use super::super::{Arg, Session, Statement};
use crate::error::{DbError, ErrorKind};

static CREATE_SHIFT: Statement = Statement::new("INSERT INTO oncall_shifts (on_call) VALUES (?){returning_id}");
static CREATE_DOCTOR: Statement =
    Statement::new("INSERT INTO oncall_doctors (shift, on_call) VALUES (?, 1){returning_id}");
static READ_SHIFT: Statement =
    Statement::new("SELECT id, shift, on_call FROM oncall_doctors WHERE shift = ? ORDER BY id");
static LOCK_SHIFT: Statement =
    Statement::new("SELECT id, shift, on_call FROM oncall_doctors WHERE shift = ? ORDER BY id{for_update}");
static GO_OFF: Statement = Statement::new("UPDATE oncall_doctors SET on_call = 0 WHERE id = ?");
static GO_OFF_IF_ON: Statement = Statement::new("UPDATE oncall_doctors SET on_call = 0 WHERE id = ? AND on_call = 1");
static LEAVE_IF_ANOTHER_STAYS: Statement =
    Statement::new("UPDATE oncall_shifts SET on_call = on_call - 1 WHERE id = ? AND on_call >= 2");
static STATE: Statement =
    Statement::new("SELECT id, shift, on_call FROM oncall_doctors WHERE shift >= ? AND shift <= ? ORDER BY id");

/// One doctor: its shift, and whether it is on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctorRow {
    pub id: i64,
    pub shift: i64,
    pub on_call: bool,
}

impl DoctorRow {
    fn of(row: &[i64]) -> Result<Self, DbError> {
        match row {
            [id, shift, on_call] => Ok(Self { id: *id, shift: *shift, on_call: *on_call != 0 }),
            _ => Err(DbError::new(ErrorKind::Other, "a doctor row without its three columns")),
        }
    }

    fn all(rows: Vec<Vec<i64>>) -> Result<Vec<Self>, DbError> {
        rows.iter().map(|r| Self::of(r)).collect()
    }
}

impl Session {
    /// A new shift whose materialized count says `on_call` doctors are on call; its key.
    pub(crate) async fn create_shift(&mut self, on_call: i64) -> Result<i64, DbError> {
        self.insert_id(&CREATE_SHIFT, &[Arg::Int(on_call)]).await
    }

    /// `count` new doctors of `shift`, on call; their keys.
    pub(crate) async fn create_doctors(&mut self, shift: i64, count: usize) -> Result<Vec<i64>, DbError> {
        self.insert_ids(&CREATE_DOCTOR, &[Arg::Int(shift)], count).await
    }

    /// Every doctor of `shift`, as this transaction sees them (no lock).
    pub(crate) async fn read_shift(&mut self, shift: i64) -> Result<Vec<DoctorRow>, DbError> {
        DoctorRow::all(self.fetch_all_ints(&READ_SHIFT, &[Arg::Int(shift)], 3).await?)
    }

    /// Every doctor of `shift`, locked in key order until the transaction ends (SQLite: read under
    /// `BEGIN IMMEDIATE`).
    pub(crate) async fn lock_shift(&mut self, shift: i64) -> Result<Vec<DoctorRow>, DbError> {
        DoctorRow::all(self.fetch_all_ints(&LOCK_SHIFT, &[Arg::Int(shift)], 3).await?)
    }

    /// Takes the doctor off call, as a check made before decided.
    pub(crate) async fn go_off_call(&mut self, doctor: i64) -> Result<(), DbError> {
        match self.exec(&GO_OFF, &[Arg::Int(doctor)]).await? {
            0 => Err(DbError::new(ErrorKind::NotFound, format!("doctor {doctor} does not exist"))),
            _ => Ok(()),
        }
    }

    /// Takes the doctor off call in one statement if on call; whether it did.
    pub(crate) async fn go_off_call_if_on(&mut self, doctor: i64) -> Result<bool, DbError> {
        Ok(self.exec(&GO_OFF_IF_ON, &[Arg::Int(doctor)]).await? == 1)
    }

    /// Decrements the shift's count of doctors on call if at least two are; whether it did.
    pub(crate) async fn leave_shift_if_another_stays(&mut self, shift: i64) -> Result<bool, DbError> {
        Ok(self.exec(&LEAVE_IF_ANOTHER_STAYS, &[Arg::Int(shift)]).await? == 1)
    }

    /// The doctors of every shift with a key from `first` to `last`, as they stand after every write
    /// committed before the read, on any node.
    pub(crate) async fn doctors_settled(&mut self, first: i64, last: i64) -> Result<Vec<DoctorRow>, DbError> {
        DoctorRow::all(self.fetch_all_settled(&STATE, &[Arg::Int(first), Arg::Int(last)], 3).await?)
    }
}
