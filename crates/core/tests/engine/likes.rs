//! Likes made by a [`Liker`] on real PostgreSQL, MariaDB and SQLite: with every safe strategy a batch
//! adds its size in one write and answers consecutive counts; keys inside a batch and across batches
//! make a like once; concurrent batches lose nothing; and the strategies that lose updates are refused.

use std::sync::Arc;

use racelab_core::likes::{LikeRequest, Liked, Liker};
use racelab_core::strategy::DEFAULT_SLOTS;
use racelab_core::{Backend, Database, LockMode, RetryPolicy, Strategy};
use racelab_testkit::{TestDb, on_every_backend};

use crate::support::liked::{answer, made_counts};

fn safe_strategies(backend: Backend) -> Vec<Strategy> {
    let mut all = Strategy::all_for(backend);
    all.retain(|s| !matches!(s, Strategy::Naive | Strategy::VersionedNoRetry));
    all.push(Strategy::Pessimistic(LockMode::NoWait));
    all
}

// One batch of five likes, two of them keyed: the counter moves by five in one write (the version by
// one, except for sharded, whose writes are to a slot), the answers count 1..=5 in order, and each key's
// answer is the one stored.
async fn a_batch_adds_its_size_in_one_write_with_every_safe_strategy(test: TestDb) {
    let db = test.connect().await;
    for strategy in safe_strategies(test.backend) {
        let pk = db.create_post().await.unwrap();
        let liker = Liker::new(strategy, RetryPolicy::default()).unwrap();
        let requests: Vec<LikeRequest> =
            (0..5)
                .map(|i| {
                    if i % 2 == 0 { LikeRequest::default() } else { LikeRequest::keyed(format!("{strategy}-{i}"), "f") }
                })
                .collect();
        let batch = liker.like(&db, pk, &requests, answer).await.unwrap();
        assert_eq!(made_counts(&batch.results), vec![1, 2, 3, 4, 5], "{strategy}");
        let total = db.read_total(pk).await.unwrap();
        assert_eq!(total.like, 5, "{strategy}");
        assert_eq!(total.version, 1, "{strategy}: one write for the batch");
        // The keyed ones answer again from the store, and the counter stays.
        let again = liker.like(&db, pk, &requests[1..2], answer).await.unwrap();
        assert_eq!(again.results, vec![Liked::Replayed { status: 200, body: answer(2).1 }], "{strategy}");
        assert_eq!(db.read_total(pk).await.unwrap().like, 5, "{strategy}");
    }
}

// The same key twice in one batch (a client's retry combined with its first try), and a key used
// before for another request: one like made, the twin replays it, the other is refused.
async fn keys_inside_a_batch_make_one_like_and_a_reused_key_is_refused(test: TestDb) {
    let db = test.connect().await;
    let pk = db.create_post().await.unwrap();
    let liker = Liker::new(Strategy::Atomic, RetryPolicy::default()).unwrap();
    liker.like(&db, pk, &[LikeRequest::keyed("used", "POST /posts/9/likes")], answer).await.unwrap();
    let requests = [
        LikeRequest::keyed("twin", "POST /posts/1/likes"),
        LikeRequest::keyed("twin", "POST /posts/1/likes"),
        LikeRequest::keyed("used", "POST /posts/1/likes"),
        LikeRequest::default(),
    ];
    let batch = liker.like(&db, pk, &requests, answer).await.unwrap();
    assert_eq!(
        batch.results,
        vec![
            Liked::Made { like: 2, status: 200, body: answer(2).1 },
            Liked::Replayed { status: 200, body: answer(2).1 },
            Liked::KeyReused,
            Liked::Made { like: 3, status: 200, body: answer(3).1 },
        ]
    );
    assert_eq!(db.read_total(pk).await.unwrap().like, 3);
}

// Sixteen tasks, each making batches of three likes (one keyed) at once, with every safe strategy: the
// counter ends at exactly the likes made, and no count is answered twice (except sharded, whose
// counts are sums read as of each batch's own snapshot).
async fn concurrent_batches_lose_nothing_with_every_safe_strategy(test: TestDb) {
    let db = test.connect().await;
    for strategy in safe_strategies(test.backend) {
        let retry = RetryPolicy { max_attempts: 10_000, ..RetryPolicy::default() };
        let strategy = strategy.with_slots(DEFAULT_SLOTS);
        let liker = Arc::new(Liker::new(strategy, retry).unwrap());
        let pk = db.create_post().await.unwrap();
        let tasks = (0..16).map(|task| {
            let (db, liker) = (db.clone(), liker.clone());
            tokio::spawn(async move { batches(&db, &liker, pk, task).await })
        });
        let mut counts = Vec::new();
        let mut refused = 0;
        for task in tasks {
            let (made, lock_refusals) = task.await.unwrap();
            counts.extend(made);
            refused += lock_refusals;
        }
        let total = db.read_total(pk).await.unwrap().like;
        assert_eq!(total, counts.len() as i64, "{strategy}: {refused} batches refused by locks");
        if !matches!(strategy, Strategy::Sharded { .. }) {
            counts.sort_unstable();
            assert_eq!(counts, (1..=total).collect::<Vec<_>>(), "{strategy}");
        }
        if !matches!(strategy, Strategy::Pessimistic(LockMode::NoWait)) {
            assert_eq!(refused, 0, "{strategy}");
        }
    }
}

/// Five batches of three likes from one task; returns the counts made, and how many batches a lock
/// refused (a NOWAIT strategy is refused, never retried, when another batch holds the row).
async fn batches(db: &Database, liker: &Liker, pk: i64, task: usize) -> (Vec<i64>, usize) {
    let (mut made, mut refused) = (Vec::new(), 0);
    for round in 0..5 {
        let requests = [
            LikeRequest::default(),
            LikeRequest::keyed(format!("{}-{task}-{round}", liker.strategy()), "f"),
            LikeRequest::default(),
        ];
        match liker.like(db, pk, &requests, answer).await {
            Ok(batch) => made.extend(made_counts(&batch.results)),
            Err(err) if err.kind().is_lock_refusal() => refused += 1,
            Err(err) => panic!("{}: {err}", liker.strategy()),
        }
    }
    (made, refused)
}

#[test]
fn strategies_that_lose_updates_cannot_make_likes() {
    for strategy in [Strategy::Naive, Strategy::VersionedNoRetry] {
        let err = Liker::new(strategy, RetryPolicy::default()).unwrap_err().to_string();
        assert!(err.contains(strategy.name()) && err.contains("atomic"), "{err}");
    }
    assert!(!Liker::safe_names().contains(&"naive"));
    assert!(Liker::safe_names().contains(&"sharded"));
}

on_every_backend!(
    a_batch_adds_its_size_in_one_write_with_every_safe_strategy,
    keys_inside_a_batch_make_one_like_and_a_reused_key_is_refused,
    concurrent_batches_lose_nothing_with_every_safe_strategy,
);
