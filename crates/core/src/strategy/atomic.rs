//! One statement does read, add and write: `like = like + 1`. The database serialises it on the row.

use super::Step;
use crate::db::Session;
use crate::error::DbError;

pub(super) async fn attempt(session: &mut Session, step: Step<'_>) -> Result<i64, DbError> {
    let like = session.increment(step.pk).await?;
    step.wrote(like);
    Ok(like)
}
