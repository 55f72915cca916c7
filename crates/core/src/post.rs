//! A versioned entity, as an ORM's `version_id_col` gives it: load a post, change it, save it, and the
//! save fails with a typed error if anyone else saved first.
//!
//! Detecting the conflict is half of the job: the seed's demo caught the ORM's stale-data error and
//! moved on, dropping the increment. Re-run the whole unit of work under a
//! [`RetryPolicy`](crate::RetryPolicy) instead. A `Post` never retries by itself, and never saves
//! without the version check.

use chrono::{DateTime, Utc};

use crate::db::{Pk, PostRow, Session};
use crate::error::{Classify, DbError, ErrorKind};

/// A post as loaded, with the version it was loaded at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    row: PostRow,
    dirty: bool,
}

/// Saving failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Someone saved the post after it was loaded: load it again and redo the change.
    #[error("post {pk} is stale: loaded at version {loaded_version}, but it has been saved since")]
    StaleVersion { pk: Pk, loaded_version: i64 },
    #[error(transparent)]
    Database(#[from] DbError),
}

impl Classify for SaveError {
    fn kind(&self) -> ErrorKind {
        match self {
            SaveError::StaleVersion { .. } => ErrorKind::StaleVersion,
            SaveError::Database(err) => err.kind(),
        }
    }
}

impl From<SaveError> for DbError {
    fn from(err: SaveError) -> Self {
        match err {
            SaveError::Database(err) => err,
            stale => DbError::new(ErrorKind::StaleVersion, stale.to_string()),
        }
    }
}

impl Post {
    /// Loads post `pk`.
    pub async fn load(session: &mut Session, pk: Pk) -> Result<Self, DbError> {
        Ok(Self { row: session.load(pk).await?, dirty: false })
    }

    pub fn pk(&self) -> Pk {
        self.row.pk
    }

    pub fn like(&self) -> i64 {
        self.row.like
    }

    /// The version this post was loaded (or last saved) at.
    pub fn version(&self) -> i64 {
        self.row.version
    }

    pub fn modified_at(&self) -> DateTime<Utc> {
        self.row.modified_at
    }

    pub fn set_like(&mut self, like: i64) {
        self.row.like = like;
        self.dirty = true;
    }

    /// Writes the change if the stored version is still the loaded one, and bumps the version.
    /// Saving an unchanged post does nothing.
    pub async fn save(&mut self, session: &mut Session) -> Result<(), SaveError> {
        if !self.dirty {
            return Ok(());
        }
        if !session.write_if_version(self.row.pk, self.row.like, self.row.version).await? {
            return Err(SaveError::StaleVersion { pk: self.row.pk, loaded_version: self.row.version });
        }
        self.row.version += 1;
        self.dirty = false;
        Ok(())
    }
}
