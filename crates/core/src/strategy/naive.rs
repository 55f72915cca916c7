//! Read, then write back what was read plus one: the lost update, on purpose.

use super::Step;
use crate::db::{Session, TxMode};
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    session.begin(TxMode::DefaultIsolation).await?;
    let result = unit_of_work(session, step).await;
    session.finish(result).await
}

async fn unit_of_work(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    let read = session.read(step.pk).await?;
    step.after_read(read.like, read.version).await;
    // Another transaction may have written since our read: this overwrites its increment.
    let like = read.like + 1;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
