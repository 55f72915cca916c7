//! Likes under load, one at a time and combined (`--combine-likes`), with every safe `--like-strategy`,
//! on every backend: the counter moves by exactly the likes acknowledged, each acknowledged like has a
//! count of its own, a combined batch is counted whole in the batch-size histogram, and a like whose
//! commit answer is lost is a 503 that its retry (same key) resolves without counting twice.

use std::collections::BTreeSet;

use racelab::http::LikeSettings;
use racelab_core::likes::Liker;
use racelab_core::strategy::DEFAULT_SLOTS;
use racelab_core::{LockMode, RetryPolicy, Strategy};
use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use reqwest::StatusCode;

use crate::support::service::{Answer, Settings, TcpProxy, TestApp, assert_problem, read_answer};

fn settings(strategy: Strategy, combine: bool) -> Settings {
    // Enough attempts that no like of a strategy that retries gives up under this load.
    let retry = RetryPolicy { max_attempts: 10_000, ..RetryPolicy::default() };
    let liker = Liker::new(strategy, retry).expect("a safe strategy");
    // And long enough a lock wait: on a loaded machine SQLite's busy wait (each writer polls, there is no
    // queue) can leave a like of 16 clients waiting past the 5 s default. A correctness test, not a benchmark.
    let lock_timeout = racelab_testkit::WIDE_LOCK_TIMEOUT;
    let likes = LikeSettings { liker, combine, ..LikeSettings::default() };
    Settings { likes, lock_timeout, ..Settings::default() }
}

async fn like(app: &TestApp, pk: i64, key: Option<String>) -> Answer {
    like_at(&app.client, &app.address, pk, key).await
}

async fn like_at(client: &reqwest::Client, address: &str, pk: i64, key: Option<String>) -> Answer {
    let mut request = client.post(format!("{address}/posts/{pk}/likes"));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    read_answer(request.send().await.expect("POST likes")).await
}

/// `total` likes from `clients` concurrent clients (every third one keyed, each key its own); returns
/// every answer.
async fn likes_from(app: &TestApp, pk: i64, clients: usize, total: usize) -> Vec<Answer> {
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            // Each client its own keep-alive connection.
            let (http, address) = (reqwest::Client::new(), app.address.clone());
            // Client `c` sends the likes numbered c, c + clients, c + 2 * clients, ...
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in (client..total).step_by(clients) {
                    let key = (n % 3 == 0).then(|| format!("like-{pk}-{n}"));
                    answers.push(like_at(&http, &address, pk, key).await);
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.expect("client task"));
    }
    answers
}

/// The post's whole counter (its row and any slots), as the service's database reads it.
async fn total(app: &TestApp, pk: i64) -> i64 {
    app.state.db().await.expect("database").read_total(pk).await.expect("read the counter").like
}

/// The sum and count of a histogram's series with `route`'s label.
async fn histogram(app: &TestApp, name: &str) -> (f64, f64) {
    let text = app.get("/metrics").await.text;
    let value = |suffix: &str| -> f64 {
        text.lines()
            .filter(|line| {
                line.starts_with(&format!("{name}_{suffix}{{")) && line.contains(r#"route="/posts/{pk}/likes""#)
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (value("sum"), value("count"))
}

// 1,000 likes from 32 clients, one at a time and then combined: every answer is 200, the counter moved
// by exactly 1,000, and the counts answered are 1..=1000 each once (no two likes saw the same count).
// Combined, the batch sizes recorded add up to the likes made (each in exactly one batch).
async fn a_thousand_likes_from_32_clients_are_all_in_the_row(test: TestDb) {
    for combine in [false, true] {
        let app = settings(Strategy::Atomic, combine).spawn(&test.url).await;
        let pk = app.new_post().await;
        let (batched_before, batches_before) = histogram(&app, "racelab_like_batch_size").await;

        let answers = likes_from(&app, pk, 32, 1000).await;

        let refused: Vec<&str> =
            answers.iter().filter(|a| a.status != StatusCode::OK).map(|a| a.text.as_str()).collect();
        assert!(
            refused.is_empty(),
            "combine={combine}: {} refused: {:?}",
            refused.len(),
            &refused[..refused.len().min(3)]
        );
        assert_eq!(total(&app, pk).await, 1000, "combine={combine}");
        let counts: BTreeSet<i64> = answers.iter().map(|a| a.body["like"].as_i64().expect("like")).collect();
        assert_eq!(counts, (1..=1000).collect(), "combine={combine}: each like answered its own count");

        let (batched, batches) = histogram(&app, "racelab_like_batch_size").await;
        if combine {
            assert_eq!(batched - batched_before, 1000.0, "every like in exactly one batch");
            assert!((1.0..=1000.0).contains(&(batches - batches_before)), "{batches} batches");
        } else {
            assert_eq!(batched, batched_before, "nothing combined without --combine-likes");
        }
    }
}

/// The strategies a service may make likes with on this backend.
fn like_strategies(test: &TestDb) -> Vec<Strategy> {
    let mut strategies: Vec<Strategy> = Strategy::all_for(test.backend)
        .into_iter()
        .filter(|s| Liker::new(*s, RetryPolicy::default()).is_ok())
        .map(|s| s.with_slots(DEFAULT_SLOTS))
        .collect();
    strategies.push(Strategy::Pessimistic(LockMode::SkipLocked));
    strategies
}

// Every safe strategy, combined and not: 200 likes from 16 clients, and the counter holds exactly the
// likes acknowledged. A lock mode that fails fast may refuse a like (409, nothing counted); any other
// strategy makes them all.
async fn every_like_strategy_loses_nothing_combined_or_not(test: TestDb) {
    for strategy in like_strategies(&test) {
        for combine in [false, true] {
            let app = settings(strategy, combine).spawn(&test.url).await;
            let pk = app.new_post().await;
            let answers = likes_from(&app, pk, 16, 200).await;
            let acknowledged = answers.iter().filter(|a| a.status == StatusCode::OK).count() as i64;
            for answer in answers.iter().filter(|a| a.status != StatusCode::OK) {
                assert_problem(answer, 409);
            }
            let fails_fast = strategy == Strategy::Pessimistic(LockMode::SkipLocked);
            assert!(fails_fast || acknowledged == 200, "{strategy} combine={combine}: {acknowledged} of 200");
            assert_eq!(total(&app, pk).await, acknowledged, "{strategy} combine={combine}");
        }
    }
}

// The crash between commit and reply: the proxy lets the like's COMMIT through and loses its answer.
// The like is in the row, its client got 503 saying the like may have been made, and the retry with
// the same key answers the stored answer (replayed) instead of liking twice. Combined or not.
async fn a_like_whose_commit_answer_is_lost_is_resolved_by_its_retry(test: TestDb) {
    for combine in [false, true] {
        let (upstream, rewrite) = TcpProxy::route(&test.url);
        let proxy = TcpProxy::start(upstream).await;
        let app = settings(Strategy::Atomic, combine).spawn(&rewrite(proxy.port)).await;
        let pk = app.new_post().await;

        let key = format!("lost-answer-{pk}");
        let mut trap = proxy.lose_answer_to(b"COMMIT", 0);
        let lost = like(&app, pk, Some(key.clone())).await;
        tokio::time::timeout(std::time::Duration::from_secs(10), trap.sprung()).await.expect("the trap sprang");
        let problem = assert_problem(&lost, 503);
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("may or may not")), "{}", lost.text);
        assert_eq!(total(&app, pk).await, 1, "combine={combine}: the commit went through");

        let retry = like(&app, pk, Some(key)).await;
        assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
        assert_eq!(retry.headers["idempotent-replayed"], "true");
        assert_eq!(retry.body, serde_json::json!({"pk": pk, "like": 1}));
        assert_eq!(total(&app, pk).await, 1, "combine={combine}: the retry did not like again");
    }
}

on_every_backend!(
    a_thousand_likes_from_32_clients_are_all_in_the_row,
    every_like_strategy_loses_nothing_combined_or_not
);
on_server_backends!(a_like_whose_commit_answer_is_lost_is_resolved_by_its_retry);
