//! The naive read-modify-write, but in a SERIALIZABLE transaction: the database refuses to commit one of
//! two transactions that would lose an update (40001 on PostgreSQL, 1213 on MariaDB, busy on SQLite).

use super::{Step, naive};
use crate::db::{Session, TxMode};
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    session.begin(TxMode::Serializable).await?;
    let result = naive::read_modify_write(session, step).await;
    step.finish(session, result).await
}
