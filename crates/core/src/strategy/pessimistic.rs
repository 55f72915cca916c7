//! Lock the row first (`SELECT ... FOR UPDATE`), then read-modify-write it, then commit.

use super::Step;
use crate::db::{LockMode, Session, TxMode};
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>, mode: LockMode) -> Result<i64, DbError> {
    // On SQLite the lock is the database's write lock, taken by BEGIN IMMEDIATE: the wait may be
    // there rather than at the locking read.
    step.waits_for_lock();
    session.begin(TxMode::RowLocking(mode)).await?;
    let result = unit_of_work(session, step, mode).await;
    step.finish(session, result).await
}

async fn unit_of_work(session: &mut Session, step: Step<'_>, mode: LockMode) -> Result<i64, DbError> {
    let read = session.read_for_update(step.pk, mode).await?;
    step.locked(read.like, read.version);
    let like = read.like + 1;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
