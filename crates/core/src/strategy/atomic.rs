//! One statement does read, add and write: `like = like + by`. The database serialises it on the row.
//! It never reads first: the new value comes back from the statement itself.

use super::Step;
use crate::db::Session;
use crate::error::DbError;

pub(super) async fn unit(session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
    let like = session.increment_by(step.pk, by).await?;
    step.wrote(like);
    Ok(like)
}
