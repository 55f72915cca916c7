//! The idempotency key store: a like made under a client's key happens once, however often the
//! request is sent.
//!
//! The key, the request it was used for (its fingerprint) and the answer are written in the same
//! transaction as the increment (`idempotency_keys`, migration 0003), so they commit together or not
//! at all. A retry then finds either no key (the first attempt left nothing: it makes the like) or the
//! stored answer (the like is in the row: it replays the answer), even when the first attempt's reply
//! was lost after its commit. A side store written after the commit could not promise that.
//!
//! The key is inserted first: a concurrent request with the same key waits on the key's unique index
//! until the first one's transaction ends, and never reaches the post's row. [`crate::likes`] makes
//! the likes; this module keeps what it stores. Nothing here knows about HTTP: a status is a number
//! the caller chose, a body its text.

use super::Database;
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

/// Keys deleted per statement when expired ones are purged: each statement is short, so a like that
/// waits for one (on a key it reuses, or for SQLite's write lock) waits briefly.
const PURGE_BATCH: i64 = 500;

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
}
