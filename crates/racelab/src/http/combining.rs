//! Write-combining of concurrent likes on one post (`serve --combine-likes`).
//!
//! A hot post's likes all want the same row: made one by one, each pays a transaction while the others
//! wait in line for its lock. Combined, the likes that arrive while a batch is being committed wait for
//! the next batch, and that batch is one transaction that adds their number in one write and stores
//! all their idempotency keys ([`racelab_core::likes`]). Each request is answered only after that
//! commit, with a count of its own. A batch commits whole or not at all: if it fails, every request in
//! it gets the error (a conflict is retried first, whole, by the liker).
//!
//! One batch per post at a time in this process: the row admits one writer at a time anyway, and the
//! queue behind it is what makes the next batch large when the post is hot (and a batch of one when it
//! is not, at the cost of one task hop).
//!
//! This module must never answer a request before its batch has committed, nor put likes of two posts
//! in one batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use racelab_core::likes::{LikeRequest, Liked, Liker};
use racelab_core::{Database, DbError, ErrorKind, Pk};
use tokio::sync::oneshot;

/// The route likes arrive by, which labels every like metric (as `http_requests_total` labels it):
/// here, below both the likes handler and this module's batches, which record them.
pub const ROUTE: &str = "/posts/{pk}/likes";

/// The most likes one transaction makes (each keyed like is two statements in it).
pub const MAX_BATCH: usize = 256;

/// The likes waiting for each post's next batch.
#[derive(Default)]
pub struct Combiner {
    queues: Mutex<HashMap<Pk, Queue>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// A task is committing this post's batches; it takes what waits here when its batch is done.
    flushing: bool,
}

struct Waiting {
    request: LikeRequest,
    reply: oneshot::Sender<Result<Liked, DbError>>,
}

/// Words a like's answer from its count (what is stored under its key).
pub type Answer = fn(Pk, i64) -> (u16, String);

impl Combiner {
    /// Makes `request` in the next batch of post `pk`, and answers when that batch has committed.
    pub async fn like(
        self: &Arc<Self>,
        db: &Database,
        liker: Liker,
        pk: Pk,
        request: LikeRequest,
        answer: Answer,
    ) -> Result<Liked, DbError> {
        let (reply, answered) = oneshot::channel();
        let start_flushing = {
            let mut queues = self.lock();
            let queue = queues.entry(pk).or_default();
            queue.waiting.push(Waiting { request, reply });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start_flushing {
            // A task of its own: the batch commits even if the request that started it goes away
            // (its client left), since the others in it wait for that commit.
            let flusher = Flusher { combiner: self.clone(), db: db.clone(), liker, pk, answer, finished: false };
            tokio::spawn(flusher.run());
        }
        answered.await.unwrap_or_else(|_| {
            // Only if the batch's task panicked: nothing is known of what it did.
            Err(DbError::new(ErrorKind::Other, "the like's batch ended without an answer"))
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Pk, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Commits one post's batches until its queue is empty.
struct Flusher {
    combiner: Arc<Combiner>,
    db: Database,
    liker: Liker,
    pk: Pk,
    answer: Answer,
    /// Set when the queue was found empty and removed: until then, dropping this (a panic) must not
    /// leave the post marked as flushing with no one flushing it.
    finished: bool,
}

impl Flusher {
    async fn run(mut self) {
        while let Some(batch) = self.next_batch() {
            metrics::histogram!("racelab_like_batch_size", "route" => ROUTE).record(batch.len() as f64);
            let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|w| (w.request, w.reply)).unzip();
            let (pk, answer) = (self.pk, self.answer);
            match self.liker.like(&self.db, pk, &requests, |like| answer(pk, like)).await {
                Ok(made) => {
                    for (reply, liked) in replies.into_iter().zip(made.results) {
                        let _ = reply.send(Ok(liked));
                    }
                }
                Err(err) => {
                    tracing::info!(%err, likes = requests.len(), "a combined batch of likes failed whole");
                    for reply in replies {
                        let _ = reply.send(Err(err.for_another()));
                    }
                }
            }
        }
    }

    /// The likes waiting now (at most [`MAX_BATCH`]), or `None` when there are none left (and the
    /// post's queue is gone, so the next like starts a new flusher).
    fn next_batch(&mut self) -> Option<Vec<Waiting>> {
        let mut queues = self.combiner.lock();
        let queue = queues.get_mut(&self.pk)?;
        if queue.waiting.is_empty() {
            queues.remove(&self.pk);
            self.finished = true;
            return None;
        }
        let take = queue.waiting.len().min(MAX_BATCH);
        Some(queue.waiting.drain(..take).collect())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if !self.finished {
            // The waiting requests' senders go with the queue: they answer an error instead of hanging.
            self.combiner.lock().remove(&self.pk);
        }
    }
}
