//! Read, then write back what was read plus the amount: the lost update, on purpose. Nothing that must
//! keep its updates may use it: the liker refuses it, and only the lab shows it.

use super::Step;
use crate::db::Session;
use crate::error::DbError;

/// Read, add `by`, write back what was computed. Whether that is safe depends only on the transaction
/// it runs in: the serializable strategy runs this very unit of work.
pub(super) async fn read_modify_write(session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
    let read = session.read(step.pk).await?;
    step.after_read(read.like, read.version).await;
    // Under the default isolation, another transaction may have written since our read: this
    // overwrites its increment.
    let like = step.plus(read.like, by)?;
    session.write(step.pk, like).await?;
    step.wrote(like);
    Ok(like)
}
