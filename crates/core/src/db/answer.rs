//! What a statement's answer means, the same on every backend: a missing row is
//! [`ErrorKind::NotFound`], a slot refused by its foreign key belongs to a missing post, an empty
//! answer under SKIP LOCKED is a skipped row.
//!
//! Only interpretation: nothing here sends SQL of its own except the plain read that tells a skipped
//! row from a missing one.

use super::{Conn, Counter, Dialect, LockMode, Pk, db_err};
use crate::error::{DbError, ErrorKind};

/// PostgreSQL (55P03) and MariaDB (1205) report a failed NOWAIT with the code of a lock timeout: only
/// the locking read knows it asked for NOWAIT.
pub(crate) fn relabel_for_lock_mode(err: DbError, mode: LockMode) -> DbError {
    match (err.kind(), mode) {
        (ErrorKind::LockTimeout, LockMode::NoWait) => err.with_kind(ErrorKind::LockNotAvailable),
        _ => err,
    }
}

/// The result of a locking read. No row under SKIP LOCKED means the row is locked (skipped) or does
/// not exist; only a plain read tells which.
pub(crate) async fn locked_row<D: Dialect>(
    c: &mut Conn<D::Db>,
    pk: Pk,
    row: Option<(i64, i64)>,
    mode: LockMode,
) -> Result<Counter, DbError> {
    match (row, mode) {
        (None, LockMode::SkipLocked) => {
            D::read(c, pk).await?;
            Err(DbError::new(ErrorKind::RowSkipped, format!("post {pk} is locked by another transaction; skipped")))
        }
        (row, _) => read_counter(row, pk),
    }
}

/// `like, version` from a row that may be missing.
pub(crate) fn read_counter(row: Option<(i64, i64)>, pk: Pk) -> Result<Counter, DbError> {
    row.map(|(like, version)| Counter { like, version }).ok_or_else(|| not_found(pk))
}

/// A slot refused by its foreign key belongs to a post that does not exist.
pub(crate) fn slot_error<D: Dialect>(err: sqlx::Error, pk: Pk) -> DbError {
    match &err {
        sqlx::Error::Database(e) if e.is_foreign_key_violation() => not_found(pk),
        _ => db_err::<D>(err),
    }
}

/// The error for a post that does not exist.
pub(crate) fn not_found(pk: Pk) -> DbError {
    DbError::new(ErrorKind::NotFound, format!("post {pk} does not exist"))
}
