//! Entity style, as an ORM's version counter does it: load, change, save. The unit of work runs in a
//! transaction at the default isolation, as an ORM session would. A stale save is returned as an
//! error, never swallowed: whether it is run again is the caller's decision (`versioned-no-retry`
//! shows what not running it again costs).

use super::Step;
use crate::db::Session;
use crate::error::DbError;
use crate::post::Post;

pub(super) async fn unit(session: &mut Session, step: Step<'_>, by: i64) -> Result<i64, DbError> {
    let mut post = Post::load(session, step.pk).await?;
    step.after_read(post.like(), post.version()).await;
    post.set_like(step.plus(post.like(), by)?);
    post.save(session).await.map_err(DbError::from)?;
    step.wrote(post.like());
    Ok(post.like())
}
