//! The naive read-modify-write, but in a SERIALIZABLE transaction: the database refuses to commit one of
//! two transactions that would lose an update (40001 on PostgreSQL, 1213 on MariaDB, busy on SQLite).
//! It adds no lock of its own: the isolation level alone must catch the conflict.

use super::{Step, naive};
use crate::db::Session;
use crate::error::DbError;

pub(super) async fn unit(session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
    naive::read_modify_write(session, step, by).await
}
