//! `POST /posts/{pk}/likes` with and without `Idempotency-Key`, on every backend: a key stored in the
//! like's own transaction makes every retry answer the first request's answer without a second like.

use racelab_testkit::{TestDb, on_every_backend, on_server_backends};
use reqwest::StatusCode;

use std::time::Duration;

use racelab::http::LikeSettings;

use crate::support::service::{
    Answer, Raw, Settings, TestApp, assert_problem, read_answer, spawn_app, spawn_app_with_lock_timeout,
};

async fn like(app: &TestApp, pk: i64, key: Option<&str>) -> Answer {
    let mut request = app.client.post(format!("{}/posts/{pk}/likes", app.address));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    read_answer(request.send().await.expect("POST likes")).await
}

/// The post's `like`, read by the test itself.
async fn count(test: &TestDb, pk: i64) -> i64 {
    let mut raw = Raw::connect(test).await;
    let column = raw.like();
    raw.count(&format!("SELECT {column} FROM posts WHERE pk = {pk}")).await
}

async fn likes_without_a_key_each_count(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    for expected in 1..=3 {
        let answer = like(&app, pk, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body, serde_json::json!({"pk": pk, "like": expected}));
    }
    assert_eq!(count(&test, pk).await, 3);
    assert_problem(&like(&app, 2_000_000_000, None).await, 404);
}

async fn a_retried_like_is_replayed_not_repeated(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    let other = app.new_post().await;

    let first = like(&app, pk, Some("\"retry-me\"")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // The same key, bare or as an sf-string, is the same key.
    for key in ["\"retry-me\"", "retry-me"] {
        let again = like(&app, pk, Some(key)).await;
        assert_eq!((again.status, &again.text), (first.status, &first.text));
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    assert_eq!(count(&test, pk).await, 1);

    // The key on another request: refused, and nothing done.
    let reused = like(&app, other, Some("retry-me")).await;
    assert_eq!(assert_problem(&reused, 422)["type"], "urn:racelab:problem:idempotency-key-reused");
    assert_eq!(count(&test, other).await, 0);

    // A like that failed stored nothing: its key is still free.
    assert_problem(&like(&app, 2_000_000_000, Some("was-404")).await, 404);
    let later = like(&app, other, Some("was-404")).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text);
    assert_eq!(count(&test, other).await, 1);

    let bad = like(&app, pk, Some("two words")).await;
    assert_eq!(assert_problem(&bad, 400)["invalid_params"][0]["name"], "idempotency-key", "{}", bad.text);
}

async fn fifty_concurrent_likes_under_one_key_count_once(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;

    let requests: Vec<_> = (0..50)
        .map(|_| {
            let request = app.client.post(format!("{}/posts/{pk}/likes", app.address)).header("idempotency-key", "one");
            tokio::spawn(async move { read_answer(request.send().await.expect("POST likes")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request task"));
    }

    assert_eq!(count(&test, pk).await, 1, "the counter moved by exactly one");
    let made: Vec<&Answer> = answers.iter().filter(|a| a.status == StatusCode::OK).collect();
    assert!(!made.is_empty(), "no like succeeded: {:?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
    for answer in &answers {
        if answer.status == StatusCode::CONFLICT {
            assert_eq!(answer.body["type"], "urn:racelab:problem:idempotency-key-in-flight", "{}", answer.text);
            continue;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body, serde_json::json!({"pk": pk, "like": 1}), "every answer is the first one's");
    }
    let fresh = made.iter().filter(|a| a.headers.get("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "exactly one answer made the like; the others replayed it");
}

async fn a_server_that_requires_keys_refuses_likes_without(test: TestDb) {
    let settings =
        Settings { likes: LikeSettings { require_key: true, ..LikeSettings::default() }, ..Settings::default() };
    let app = settings.spawn(&test.url).await;
    let pk = app.new_post().await;
    let refused = like(&app, pk, None).await;
    let problem = assert_problem(&refused, 400);
    assert_eq!(problem["invalid_params"][0]["name"], "idempotency-key", "{}", refused.text);
    assert_eq!(count(&test, pk).await, 0);
    assert_eq!(like(&app, pk, Some("k")).await.status, StatusCode::OK);
    assert_eq!(count(&test, pk).await, 1);
}

async fn expired_keys_are_purged_and_then_free(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    assert_eq!(like(&app, pk, Some("old")).await.status, StatusCode::OK);
    assert_eq!(like(&app, pk, Some("new")).await.status, StatusCode::OK);
    let db = app.state.db().await.expect("database");

    // Neither is a day old: a purge of day-old keys keeps both.
    assert_eq!(db.purge_idempotency_keys(Duration::from_secs(24 * 3600)).await.expect("purge"), 0);
    let kept = like(&app, pk, Some("old")).await;
    assert_eq!(kept.headers["idempotent-replayed"], "true");
    // Keys of any age: both go, and "old" makes a like again.
    assert_eq!(db.purge_idempotency_keys(Duration::ZERO).await.expect("purge"), 2);
    let again = like(&app, pk, Some("old")).await;
    assert!(again.headers.get("idempotent-replayed").is_none(), "{again:?}");
    assert_eq!(again.body["like"], 3);
    assert_eq!(count(&test, pk).await, 3);
}

/// The sum of `metric`'s series that carry every one of `labels` (`name="value"`).
async fn metric(app: &TestApp, metric: &str, labels: &[&str]) -> f64 {
    let text = app.get("/metrics").await.text;
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn likes_and_replays_are_counted_with_help(test: TestDb) {
    let app = spawn_app(&test).await;
    let pk = app.new_post().await;
    let route = r#"route="/posts/{pk}/likes""#;
    let likes = async |keyed: &str| metric(&app, "racelab_likes_total", &[route, keyed]).await;
    let (keyed, bare, replays) = (
        likes(r#"keyed="true""#).await,
        likes(r#"keyed="false""#).await,
        metric(&app, "racelab_idempotent_replays_total", &[route]).await,
    );

    like(&app, pk, None).await;
    like(&app, pk, Some("m")).await;
    like(&app, pk, Some("m")).await;

    assert_eq!(likes(r#"keyed="true""#).await, keyed + 1.0);
    assert_eq!(likes(r#"keyed="false""#).await, bare + 1.0);
    assert_eq!(metric(&app, "racelab_idempotent_replays_total", &[route]).await, replays + 1.0);
    let text = app.get("/metrics").await.text;
    for name in ["racelab_likes_total", "racelab_idempotent_replays_total", "http_requests_total"] {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
    }
}

// The first request with a key holds it until its transaction ends: here it waits for the post's row,
// which the test holds past the lock timeout. A retry meanwhile waits on the key and is told 409 (in
// flight), the first one too when its wait ends; nothing was counted, and the key is free for a retry.
async fn a_retry_while_the_first_is_stuck_is_409(test: TestDb) {
    let app = spawn_app_with_lock_timeout(&test.url, Duration::from_secs(1)).await;
    let pk = app.new_post().await;
    let mut holder = Raw::connect(&test).await;
    let mut watcher = Raw::connect(&test).await;
    holder.hold_row_lock(pk).await;

    let first = tokio::spawn({
        let request = app.client.post(format!("{}/posts/{pk}/likes", app.address)).header("idempotency-key", "stuck");
        async move { read_answer(request.send().await.expect("POST likes")).await }
    });
    watcher.wait_for_statement_waiting("UPDATE posts%").await;
    let retry = like(&app, pk, Some("stuck")).await;
    let first = first.await.expect("first request");
    holder.execute("ROLLBACK").await;

    for answer in [&first, &retry] {
        assert_eq!(
            assert_problem(answer, 409)["type"],
            "urn:racelab:problem:idempotency-key-in-flight",
            "{}",
            answer.text
        );
    }
    assert_eq!(count(&test, pk).await, 0);
    let later = like(&app, pk, Some("stuck")).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text);
    assert!(later.headers.get("idempotent-replayed").is_none());
    assert_eq!(count(&test, pk).await, 1);
}

on_server_backends!(a_retry_while_the_first_is_stuck_is_409);

on_every_backend!(
    likes_and_replays_are_counted_with_help,
    a_server_that_requires_keys_refuses_likes_without,
    expired_keys_are_purged_and_then_free,
    likes_without_a_key_each_count,
    a_retried_like_is_replayed_not_repeated,
    fifty_concurrent_likes_under_one_key_count_once,
);
