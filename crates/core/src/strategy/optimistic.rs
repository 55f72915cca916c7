//! Read `like` and `version`, then write only if `version` is unchanged: compare-and-set in SQL.
//! Nothing is locked between the two statements; a concurrent writer makes the write match no row.
//! That miss is a [`StaleVersion`](crate::ErrorKind::StaleVersion) error, never a silent success.

use super::Step;
use crate::db::Session;
use crate::error::{DbError, ErrorKind};

pub(super) async fn unit(session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
    let read = session.read(step.pk).await?;
    step.after_read(read.like, read.version).await;
    let like = step.plus(read.like, by)?;
    if !session.write_if_version(step.pk, like, read.version).await? {
        return Err(DbError::new(
            ErrorKind::StaleVersion,
            format!("post {} changed since version {} was read", step.pk, read.version),
        ));
    }
    step.wrote(like);
    Ok(like)
}
