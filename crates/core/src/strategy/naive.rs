//! Read, then write back what was read plus one: the lost update, on purpose.

use super::Step;
use crate::db::{Session, TxMode};
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    session.begin(TxMode::DefaultIsolation).await?;
    let result = read_modify_write(session, step).await;
    step.finish(session, result).await
}

/// Read, add one, write back what was computed. Whether that is safe depends only on the transaction
/// it runs in: the serializable strategy runs this very unit of work.
pub(super) async fn read_modify_write(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    let read = session.read(step.pk).await?;
    step.after_read(read.like, read.version).await;
    // Under the default isolation, another transaction may have written since our read: this
    // overwrites its increment.
    let like = read.like + 1;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
