//! Likes as a service makes them: one like, or a batch of concurrent likes on one post, made with a
//! safe strategy in one transaction together with their idempotency keys.
//!
//! A batch is what write-combining hands over: N requests become one transaction that adds N in one
//! write and stores every key with its answer, so they commit together or not at all (never half of a
//! batch). Each like is answered with its own count, as if the likes had come one after the other:
//! the batch that moved the counter from 10 to 13 answers 11, 12 and 13.
//!
//! Keys follow [`Session::insert_idempotency_key`]: a key is inserted before the post's row is touched, so a
//! retry of a request still in flight waits on the key's unique index (and never double-counts); a
//! key found used is answered from its stored answer after the transaction ends.
//!
//! A conflict (deadlock, serialization failure, stale version, SQLite busy) re-runs the whole
//! transaction under the [`RetryPolicy`]; a refused lock (NOWAIT, SKIP LOCKED, a wait that ran out) is
//! not retried: the caller answers it (409), as the lock mode asked.
//!
//! The write itself is the strategy's own unit of work ([`Strategy::unit`]), the one the experiment
//! runs: this module never writes the counter by other means, never makes likes with a strategy that
//! loses updates, and never counts the like of a used key twice.
//!
//! ```
//! use racelab_core::likes::{LikeRequest, Liked, Liker};
//! use racelab_core::{ConnectOptions, Database, DatabaseUrl, RetryPolicy, Strategy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let path = std::env::temp_dir().join(format!("racelab-likes-doc-{}.db", std::process::id()));
//! let db = Database::connect(ConnectOptions::new(DatabaseUrl::parse(&format!("sqlite://{}", path.display()))?)).await?;
//! let pk = db.create_post().await?;
//! let liker = Liker::new(Strategy::Atomic, RetryPolicy::default())?;
//! let requests = [LikeRequest::keyed("k-1", "POST /posts/1/likes"), LikeRequest::default()];
//! let batch = liker.like(&db, pk, &requests, |like| (200, like.to_string())).await?;
//! assert!(matches!(batch.results[..], [Liked::Made { like: 1, .. }, Liked::Made { like: 2, .. }]));
//! // The same key again: answered from the store, the counter unmoved.
//! let again = liker.like(&db, pk, &requests[..1], |like| (200, like.to_string())).await?;
//! assert!(matches!(&again.results[0], Liked::Replayed { body, .. } if body == "1"));
//! assert_eq!(db.read_total(pk).await?.like, 2);
//! # std::fs::remove_file(&path).ok();
//! # Ok(())
//! # }
//! ```

use crate::db::{Database, LockMode, Pk, Session, TxMode};
use crate::error::{DbError, ErrorKind};
use crate::retry::RetryPolicy;
use crate::strategy::{Step, Strategy};

/// The key a like is made under and what identifies its request (equal requests, equal fingerprints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// One like asked for, with its key if the client sent one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LikeRequest {
    pub key: Option<IdempotencyKey>,
}

impl LikeRequest {
    pub fn keyed(key: impl Into<String>, fingerprint: impl Into<String>) -> Self {
        Self { key: Some(IdempotencyKey { key: key.into(), fingerprint: fingerprint.into() }) }
    }
}

/// What became of one like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liked {
    /// Made now: its count, and the answer (stored under its key, if it had one).
    Made { like: i64, status: u16, body: String },
    /// Its key was used by an earlier request for the same thing: that request's answer.
    Replayed { status: u16, body: String },
    /// Its key was used for another request; nothing was done.
    KeyReused,
}

/// The likes of one call, in the order asked, and the transactions it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeBatch {
    pub results: Vec<Liked>,
    pub attempts: u32,
}

/// A strategy that may lose likes cannot make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` loses updates, so it cannot make likes; use one of: {names}", names = Liker::safe_names().join(", "))]
pub struct UnsafeLikeStrategy(pub Strategy);

/// Makes likes with one strategy, retrying conflicts under one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liker {
    strategy: Strategy,
    retry: RetryPolicy,
}

/// A key found used, and gone when its answer was read (expired and purged in between): those likes
/// are made again, a few rounds at most.
const ROUNDS: usize = 3;

impl Liker {
    /// A liker for `strategy`; refuses the strategies that lose updates.
    pub fn new(strategy: Strategy, retry: RetryPolicy) -> Result<Self, UnsafeLikeStrategy> {
        if !strategy.retries() || strategy == Strategy::Naive {
            return Err(UnsafeLikeStrategy(strategy));
        }
        Ok(Self { strategy, retry })
    }

    /// The names of the strategies a liker accepts.
    pub fn safe_names() -> Vec<&'static str> {
        Strategy::names().iter().copied().filter(|name| !matches!(*name, "naive" | "versioned-no-retry")).collect()
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Makes `requests` (likes of post `pk`) in one transaction; `answer` words each made like's
    /// answer from its count. Either every like that is made commits, or none does (the error).
    #[tracing::instrument(level = "debug", name = "like", skip_all,
        fields(post = pk, strategy = self.strategy.name(), likes = requests.len()))]
    pub async fn like(
        &self,
        db: &Database,
        pk: Pk,
        requests: &[LikeRequest],
        answer: impl Fn(i64) -> (u16, String),
    ) -> Result<LikeBatch, DbError> {
        let mut session = db.session().await?;
        let mut results: Vec<Option<Liked>> = vec![None; requests.len()];
        let mut attempts = 0;
        for _ in 0..ROUNDS {
            let pending: Vec<Pending> = requests.iter().enumerate().filter(|(i, _)| results[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let done = self.make_retried(&mut session, pk, &pending, &answer, &mut attempts).await?;
            for (i, liked) in done.made {
                results[i] = Some(liked);
            }
            // After the transaction: a key another transaction held is committed (or gone) by now.
            for i in done.used {
                let Some(key) = &requests[i].key else { continue };
                results[i] = match session.idempotent_response(&key.key).await? {
                    Some(stored) if stored.fingerprint != key.fingerprint => Some(Liked::KeyReused),
                    Some(stored) => Some(Liked::Replayed { status: stored.status, body: stored.body }),
                    None => None,
                };
            }
        }
        let results = results.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| {
            DbError::new(
                ErrorKind::SerializationFailure,
                format!("idempotency key found used and then missing {ROUNDS} times"),
            )
        })?;
        Ok(LikeBatch { results, attempts })
    }

    /// One transaction for the `pending` requests, run again on a conflict.
    async fn make_retried(
        &self,
        session: &mut Session,
        pk: Pk,
        pending: &[Pending<'_>],
        answer: &impl Fn(i64) -> (u16, String),
        attempts: &mut u32,
    ) -> Result<Unit, DbError> {
        let mut retrier = self.retry.retrier();
        loop {
            *attempts += 1;
            let result = self.make_once(session, pk, pending, answer).await;
            match result {
                Err(err) if is_conflict(err.kind()) && retrier.retry_after(err.kind()).await => continue,
                other => return other,
            }
        }
    }

    /// One transaction: one span each, so a retried one shows as several.
    #[tracing::instrument(level = "debug", name = "like_transaction", skip_all, fields(post = pk, likes = pending.len()))]
    async fn make_once(
        &self,
        session: &mut Session,
        pk: Pk,
        pending: &[Pending<'_>],
        answer: &impl Fn(i64) -> (u16, String),
    ) -> Result<Unit, DbError> {
        // Without keys, the atomic write is one statement: autocommit is its transaction, and a hot
        // post's likes cost one round trip each. A sharded like is its slot's write and then the read of
        // the total it answers, which refuses a total past the maximum: one transaction, so that a
        // refused like does not stay in its slot.
        let keyless = pending.iter().all(|(_, request)| request.key.is_none());
        let sharded = matches!(self.strategy, Strategy::Sharded { .. });
        if !(keyless && self.strategy.is_one_statement() && !sharded) {
            session.begin(self.tx_mode()).await?;
        }
        let result = self.unit(session, pk, pending, answer).await;
        let result = match result {
            Ok(unit) if unit.made.is_empty() => {
                session.rollback_quietly().await;
                Ok(unit)
            }
            other => session.finish(other).await,
        };
        self.strategy.release(session, pk).await;
        result
    }

    /// Inserts the keys, adds the fresh likes in one write, stores their answers.
    async fn unit(
        &self,
        session: &mut Session,
        pk: Pk,
        pending: &[Pending<'_>],
        answer: &impl Fn(i64) -> (u16, String),
    ) -> Result<Unit, DbError> {
        let mut fresh = Vec::with_capacity(pending.len());
        let mut used = Vec::new();
        for &(i, request) in pending {
            match &request.key {
                Some(key) if !session.insert_idempotency_key(&key.key, &key.fingerprint).await? => used.push(i),
                _ => fresh.push((i, request)),
            }
        }
        if fresh.is_empty() {
            return Ok(Unit { made: Vec::new(), used });
        }
        let by = fresh.len() as i64;
        let last = self.add(session, pk, by).await?;
        let mut made = Vec::with_capacity(fresh.len());
        // The n-th fresh like's count is `last - by + n`: never past `last`, so no count overflows, even
        // the one that reaches the maximum (an open range from it would step past it).
        for (n, (i, request)) in (1..=by).zip(fresh) {
            let like = last - by + n;
            let (status, body) = answer(like);
            if let Some(key) = &request.key {
                session.save_idempotent_response(&key.key, status, &body).await?;
            }
            made.push((i, Liked::Made { like, status, body }));
        }
        Ok(Unit { made, used })
    }

    /// The strategy's write of `by` likes, inside the open transaction; returns the new count.
    async fn add(&self, session: &mut Session, pk: Pk, by: i64) -> Result<i64, DbError> {
        let wrote = self.strategy.unit(session, Step::new(pk, 0), by).await?;
        if let Strategy::Sharded { .. } = self.strategy {
            // The post's count is the sum: as of this read, which sees this write.
            return Ok(session.read_total(pk).await?.like);
        }
        Ok(wrote)
    }

    /// The strategy's own transaction, made a real one on every backend where it has none (SQLite's
    /// default mode is none at all; this one takes its write lock up front): the keys and the write
    /// are one unit.
    fn tx_mode(&self) -> TxMode {
        match self.strategy.tx_mode() {
            Some(mode @ (TxMode::Serializable | TxMode::RowLocking(_))) => mode,
            Some(TxMode::DefaultIsolation) | None => TxMode::RowLocking(LockMode::Wait),
        }
    }
}

/// A request still to be answered, with its place among those asked.
type Pending<'a> = (usize, &'a LikeRequest);

/// What one transaction did: likes made (request index, result), and requests whose key was used.
struct Unit {
    made: Vec<(usize, Liked)>,
    used: Vec<usize>,
}

/// Conflicts are retried; a refused lock is the caller's to answer, as its lock mode asked.
fn is_conflict(kind: ErrorKind) -> bool {
    kind.is_retryable() && !kind.is_lock_refusal()
}
