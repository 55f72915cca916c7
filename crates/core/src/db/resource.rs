//! A post as a resource others change: conditional writes for a client that saw one version and must
//! not overwrite a newer one (HTTP's `If-Match`, RFC 9110 §13.1.1).
//!
//! The check and the write are one statement (`UPDATE ... WHERE pk = ? AND version = ?`): nothing can
//! commit between them. Only when that statement changed nothing is the row read again, inside the
//! same transaction, to tell the caller whether the post is gone or has moved on (and to what).
//! Nothing here knows about HTTP: the caller maps [`Precondition`] to its statuses.

use super::{Database, LockMode, Pk, PostRow, Session, TxMode};
use crate::error::{DbError, ErrorKind};

/// The versions a conditional write accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Any version, as long as the post exists (`If-Match: *`).
    Any,
    /// The post's version must be one of these.
    OneOf(Vec<i64>),
}

/// What a conditional write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition<T> {
    /// The version was as expected and the write was made.
    Met(T),
    /// The post exists at another version (returned as it now stands); nothing was written.
    Failed(PostRow),
    /// The post does not exist.
    Missing,
}

impl Database {
    /// Creates a post with `like = 0, version = 0` and returns the whole row.
    pub async fn create_post_row(&self) -> Result<PostRow, DbError> {
        let pk = self.create_post().await?;
        self.load_post(pk).await
    }

    /// Sets `like` of post `pk` if its version is one of `expected`; returns the row as written.
    pub async fn set_like_if_version(
        &self,
        pk: Pk,
        like: i64,
        expected: &Expected,
    ) -> Result<Precondition<PostRow>, DbError> {
        let mut session = self.session().await?;
        session.begin(TxMode::RowLocking(LockMode::Wait)).await?;
        let result = set_like(&mut session, pk, like, expected).await;
        session.finish(result).await
    }

    /// Deletes post `pk` if its version is one of `expected`.
    pub async fn delete_post_if_version(&self, pk: Pk, expected: &Expected) -> Result<Precondition<()>, DbError> {
        let mut session = self.session().await?;
        session.begin(TxMode::RowLocking(LockMode::Wait)).await?;
        let result = delete(&mut session, pk, expected).await;
        session.finish(result).await
    }
}

async fn set_like(
    session: &mut Session,
    pk: Pk,
    like: i64,
    expected: &Expected,
) -> Result<Precondition<PostRow>, DbError> {
    let written = match expected {
        Expected::Any => match session.write(pk, like).await {
            Ok(()) => true,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Precondition::Missing),
            Err(err) => return Err(err),
        },
        // One conditional statement per version: versions only grow, so the statement that matches
        // proves the precondition held at the moment it wrote.
        Expected::OneOf(versions) => {
            let mut written = false;
            for &version in versions {
                if session.write_if_version(pk, like, version).await? {
                    written = true;
                    break;
                }
            }
            written
        }
    };
    // Inside the transaction, the row written stays locked by it: the read sees exactly what was written.
    Ok(match (written, current(session, pk).await?) {
        (_, None) => Precondition::Missing,
        (true, Some(row)) => Precondition::Met(row),
        (false, Some(row)) => Precondition::Failed(row),
    })
}

async fn delete(session: &mut Session, pk: Pk, expected: &Expected) -> Result<Precondition<()>, DbError> {
    let versions = match expected {
        // The version is read under the transaction's lock (a row lock, or SQLite's write lock), so
        // the delete that follows cannot miss a write.
        Expected::Any => match session.read_for_update(pk, LockMode::Wait).await {
            Ok(counter) => vec![counter.version],
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Precondition::Missing),
            Err(err) => return Err(err),
        },
        Expected::OneOf(versions) => versions.clone(),
    };
    for version in versions {
        if session.delete_if_version(pk, version).await? {
            return Ok(Precondition::Met(()));
        }
    }
    Ok(current(session, pk).await?.map_or(Precondition::Missing, Precondition::Failed))
}

/// The post as it stands, or `None` if it does not exist.
async fn current(session: &mut Session, pk: Pk) -> Result<Option<PostRow>, DbError> {
    match session.load(pk).await {
        Ok(row) => Ok(Some(row)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}
