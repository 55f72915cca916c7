//! The naive read-modify-write, but in a SERIALIZABLE transaction: the database refuses to commit one of
//! two transactions that would lose an update (40001 on PostgreSQL, 1213 on MariaDB, busy on SQLite).

use super::Step;
use crate::db::{Session, TxMode};
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    session.begin(TxMode::Serializable).await?;
    let result = unit_of_work(session, step).await;
    session.finish(result).await
}

async fn unit_of_work(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    let read = session.read(step.pk).await?;
    step.after_read(read.like, read.version).await;
    let like = read.like + 1;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
