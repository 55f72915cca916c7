//! Lock the row first (`SELECT ... FOR UPDATE`), then read-modify-write it, then commit. It never
//! writes a value it did not read under the lock.
//!
//! On SQLite the lock is the database's write lock, taken by `BEGIN IMMEDIATE`: the wait may be at
//! the start of the transaction rather than at the locking read ([`super::Strategy::attempt`] traces
//! it there).

use super::Step;
use crate::db::{LockMode, Session};
use crate::error::DbError;

pub(super) async fn unit(session: &mut Session, step: Step<'_>, mode: LockMode, by: i64) -> Result<i64, DbError> {
    let read = session.read_for_update(step.pk, mode).await?;
    step.locked(read.like, read.version);
    let like = step.plus(read.like, by)?;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
