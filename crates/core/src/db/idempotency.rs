//! Idempotent likes: a like made under a client's key happens once, however often the request is sent.
//!
//! The key, the request it was used for (its fingerprint) and the answer are written in the same
//! transaction as the increment (`idempotency_keys`, migration 0003), so they commit together or not
//! at all. A retry then finds either no key (the first attempt left nothing: it makes the like) or the
//! stored answer (the like is in the row: it replays the answer), even when the first attempt's reply
//! was lost after its commit. A side store written after the commit could not promise that.
//!
//! The key is inserted first: a concurrent request with the same key waits on the key's unique index
//! until the first one's transaction ends, and never reaches the post's row. Nothing here knows about
//! HTTP: a status is a number the caller chose, a body its text.

use super::{Database, LockMode, Pk, Session, TxMode};
use crate::error::DbError;

/// A request and the answer stored under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

impl StoredResponse {
    pub(crate) fn new(fingerprint: String, status: i32, body: String) -> Self {
        Self { fingerprint, status: u16::try_from(status).unwrap_or_default(), body }
    }
}

/// The key a like is made under, and what identifies the request (equal requests, equal fingerprints).
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// What a keyed like did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentLike {
    /// This request made the like; its answer is stored under the key.
    Made { status: u16, body: String },
    /// An earlier request with this key and fingerprint made it: its answer.
    Replayed { status: u16, body: String },
    /// The key was used for another request; nothing was done.
    KeyReused,
}

/// Keys deleted per statement when expired ones are purged: each statement is short, so a like that
/// waits for one (on a key it reuses, or for SQLite's write lock) waits briefly.
const PURGE_BATCH: i64 = 500;

/// A key found used, and then gone when its answer was read (expired and purged in between): the
/// like is tried again, a few times at most.
const ATTEMPTS: usize = 3;

impl Database {
    /// Deletes the keys first used `older_than` ago or earlier, in short batches; returns how many.
    pub async fn purge_idempotency_keys(&self, older_than: std::time::Duration) -> Result<u64, DbError> {
        let mut session = self.session().await?;
        let mut purged = 0;
        loop {
            let batch = session.purge_idempotency_keys(older_than, PURGE_BATCH).await?;
            purged += batch;
            if batch < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }

    /// Adds one like to post `pk` unless `keyed.key` was used before; `answer` words the answer from
    /// the new count, and it is stored with the key in the like's transaction.
    pub async fn like_once(
        &self,
        pk: Pk,
        keyed: Keyed<'_>,
        answer: impl Fn(i64) -> (u16, String),
    ) -> Result<IdempotentLike, DbError> {
        let mut session = self.session().await?;
        for _ in 0..ATTEMPTS {
            session.begin(TxMode::RowLocking(LockMode::Wait)).await?;
            let made = match make(&mut session, pk, keyed, &answer).await {
                Ok(made) => made,
                Err(err) => {
                    session.rollback_quietly().await;
                    return Err(err);
                }
            };
            if let Some((status, body)) = made {
                session.commit().await?;
                return Ok(IdempotentLike::Made { status, body });
            }
            session.rollback_quietly().await;
            match session.idempotent_response(keyed.key).await? {
                Some(stored) if stored.fingerprint != keyed.fingerprint => return Ok(IdempotentLike::KeyReused),
                Some(StoredResponse { status, body, .. }) => return Ok(IdempotentLike::Replayed { status, body }),
                None => continue,
            }
        }
        Err(DbError::new(
            crate::ErrorKind::SerializationFailure,
            format!("idempotency key found used and then missing {ATTEMPTS} times"),
        ))
    }
}

/// Inserts the key, increments, saves the answer; `None` if the key was there already.
async fn make(
    session: &mut Session,
    pk: Pk,
    keyed: Keyed<'_>,
    answer: &impl Fn(i64) -> (u16, String),
) -> Result<Option<(u16, String)>, DbError> {
    if !session.insert_idempotency_key(keyed.key, keyed.fingerprint).await? {
        return Ok(None);
    }
    let like = session.increment(pk).await?;
    let (status, body) = answer(like);
    session.save_idempotent_response(keyed.key, status, &body).await?;
    Ok(Some((status, body)))
}
