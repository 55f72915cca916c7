//! The experiments through HTTP: safe strategies lose nothing, the unsafe ones lose or drop what they
//! must (forced, not hoped for), requests never mix, and an outside writer is named, not miscounted.

use racelab_core::Backend;
use racelab_testkit::{TestDb, on_every_backend};
use serde_json::Value;

use std::time::{Duration, Instant};

use crate::support::service::{Raw, Settings, assert_problem, detach_a_locked_run, spawn_app, spawn_app_with};

fn safe_endpoints(backend: Backend) -> Vec<&'static str> {
    let mut endpoints = vec![
        "/test-db/2th-plock",
        "/test-db/2th-olock",
        "/test-db/2th-olock-sqlalchemy-versioning",
        "/test-db/2th-atomic",
        "/test-db/2th-serializable",
        "/test-db/2th-sharded",
    ];
    if backend != Backend::Sqlite {
        endpoints.push("/test-db/2th-advisory");
    }
    endpoints
}

fn assert_nothing_lost(path: &str, body: &Value, expected: i64) {
    assert_eq!(body["like_result"], expected, "{path}: {body}");
    assert_eq!(body["experiment"]["lost"], 0, "{path}: {body}");
    assert_eq!(body["experiment"]["failed"], 0, "{path}: {body}");
    assert_eq!(body["experiment"]["foreign_writes"], 0, "{path}: {body}");
    assert!(body["verdict"].as_str().is_some_and(|v| v.starts_with("no update lost")), "{path}: {body}");
}

async fn safe_endpoints_lose_nothing(test: TestDb) {
    // 16 workers at once: a wide pool (the test is in the `many-connections` group).
    let app = Settings { max_connections: test.wide_pool_size(), ..Settings::default() }.spawn(&test.url).await;
    for path in safe_endpoints(test.backend) {
        app.ok("/test-db/init").await;
        assert_nothing_lost(path, &app.ok(path).await, 50);

        app.ok("/test-db/init").await;
        assert_nothing_lost(path, &app.ok(&format!("{path}?workers=16&increments=50")).await, 800);
    }
}

// Both workers read before either writes: the naive endpoint loses exactly one of the two increments.
async fn naive_loses_an_update_under_a_forced_race(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    let body = app.ok("/test-db/2th?workers=2&increments=1&force_race=true").await;
    assert_eq!(body["like_result"], 1, "{body}");
    assert_eq!(body["experiment"]["acknowledged"], 2, "{body}");
    assert_eq!(body["experiment"]["lost"], 1, "{body}");
    assert!(body["verdict"].as_str().is_some_and(|v| v.starts_with("lost 1 of 2 updates")), "{body}");
}

// The seed's mystery, reproduced and explained: the version check catches the conflict, nothing
// retries it, so increments are dropped — but no acknowledged one is lost.
async fn versioning_without_retry_drops_increments_and_says_how_many(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    let body = app.ok("/test-db/2th-olock-sqlalchemy-versioning?retry=false&force_race=true").await;
    let experiment = &body["experiment"];
    assert_eq!(experiment["strategy"], "versioned-no-retry", "{body}");
    let dropped = experiment["dropped"].as_u64().expect("dropped");
    assert!(dropped >= 1, "{body}");
    assert_eq!(body["like_result"], experiment["acknowledged"], "{body}");
    assert_eq!(experiment["lost"], 0, "{body}");
    assert_eq!(experiment["acknowledged"].as_u64().map(|a| a + dropped), Some(50), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains(&format!("{dropped} of 50 increments dropped")), "{message}");
    assert!(body["verdict"].as_str().is_some_and(|v| v.starts_with(&format!("dropped {dropped} of 50"))), "{body}");

    // With the retry (the default), the same forced conflict costs a retry and drops nothing.
    app.ok("/test-db/init").await;
    let body = app.ok("/test-db/2th-olock-sqlalchemy-versioning?force_race=true").await;
    assert_eq!(body["like_result"], 50, "{body}");
    assert!(body["experiment"]["retries"].as_u64().is_some_and(|r| r >= 1), "{body}");
}

async fn advisory_runs_on_servers_and_is_refused_on_sqlite(test: TestDb) {
    let app = spawn_app(&test).await;
    let answer = app.get("/test-db/2th-advisory").await;
    if test.backend == Backend::Sqlite {
        let problem = assert_problem(&answer, 501);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("advisory") && detail.contains("not supported on sqlite"), "{detail}");
    } else {
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.body["experiment"]["lost"], 0, "{}", answer.text);
    }
}

// The seed answered concurrent requests with the shared counter of the moment. Here four requests on
// post 1 at once each get their own run: no foreign writes, nothing lost, and their results are the
// four distinct steps 50, 100, 150, 200. Requests on other posts run beside them, unaffected.
async fn concurrent_requests_never_mix(test: TestDb) {
    // A wide pool (the test is in the `many-connections` group), which one experiment fills.
    let app = Settings { max_connections: test.wide_pool_size(), ..Settings::default() }.spawn(&test.url).await;
    app.ok("/test-db/init").await;
    let path = "/test-db/2th-olock?workers=4&increments=10";
    let other = "/test-db/2th-plock?workers=4&increments=10&post=2";
    let (a, b, c, d, e) = tokio::join!(app.ok(path), app.ok(path), app.ok(path), app.ok(path), app.ok(other));
    let mut results = Vec::new();
    for body in [&a, &b, &c, &d] {
        assert_eq!(body["experiment"]["foreign_writes"], 0, "{body}");
        assert_eq!(body["experiment"]["lost"], 0, "{body}");
        assert_eq!(body["experiment"]["actual"], 40, "{body}");
        let after = body["like_result"].as_i64().expect("like_result");
        assert_eq!(body["experiment"]["like_before"].as_i64(), Some(after - 40), "{body}");
        results.push(after);
    }
    results.sort();
    assert_eq!(results, [40, 80, 120, 160]);
    assert_eq!((e["post"].as_i64(), e["experiment"]["lost"].as_i64()), (Some(2), Some(0)), "{e}");

    // Two experiments that together need more connections than the pool holds queue for them (they
    // must not time out waiting for a connection, which would read as "database unavailable").
    let workers = app.state.max_workers();
    let big = |post: i64| format!("/test-db/2th-atomic?workers={workers}&increments=20&post={post}");
    let (three, four) = (big(3), big(4));
    let (f, g) = tokio::join!(app.ok(&three), app.ok(&four));
    let expected = i64::from(workers) * 20;
    for body in [&f, &g] {
        assert_eq!(
            (body["like_result"].as_i64(), body["experiment"]["lost"].as_i64()),
            (Some(expected), Some(0)),
            "{body}"
        );
    }
    assert_eq!(app.state.posts_in_use(), 0);
}

// A writer outside the service changes the post while an experiment runs on it: the test holds the
// row lock, waits until the experiment's workers queue behind it, writes, and lets go. The answer must
// say another writer interfered instead of reporting a `lost` figure.
async fn an_outside_writer_is_named_not_miscounted(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init?post=7").await;
    let mut raw = Raw::connect(&test).await;
    let like = raw.like();
    raw.hold_row_lock(7).await;

    let request = {
        let (client, url) = (app.client.clone(), format!("{}/test-db/2th-plock?post=7", app.address));
        tokio::spawn(async move { client.get(url).send().await.expect("request").json::<Value>().await })
    };
    let mut observer = Raw::connect(&test).await;
    observer.wait_for_lock_waiter().await;
    raw.execute(&format!("UPDATE posts SET {like} = {like} + 100, version = version + 1 WHERE pk = 7")).await;
    raw.execute("COMMIT").await;

    let body = request.await.expect("task").expect("JSON");
    let experiment = &body["experiment"];
    assert_eq!(experiment["lost"], Value::Null, "{body}");
    assert_eq!(experiment["foreign_writes"], 1, "{body}");
    assert_eq!(body["like_result"], 150, "{body}");
    assert!(body["verdict"].as_str().is_some_and(|v| v.contains("another writer changed post 7")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("another writer")), "{body}");
}

// A request that outlives the request timeout is answered 503 with what its experiment had done; the
// experiment is stopped (each worker finishes the increment in flight, the rest counted as `stopped`)
// and holds the post until then: the next request on the post waits for it and never overlaps it.
// The test keeps the row locked until the second request is seen queued on the post, then lets go.
async fn a_timed_out_request_never_overlaps_the_next(test: TestDb) {
    // The first request times out because the test holds the row; the second must not: its own run
    // and the rest of the first (60 increments) take a few ms, so 1.5 s is room, not a race.
    let app = spawn_app_with(&test.url, Duration::from_secs(3), Duration::from_millis(1500)).await;
    let mut holder = detach_a_locked_run(&app, &test).await;

    // The first run still holds the post (its workers wait for the test's row lock): the second request
    // queues for the post.
    let second = {
        let (client, url) = (app.client.clone(), format!("{}/test-db/2th-plock?workers=2&increments=5", app.address));
        tokio::spawn(async move { client.get(url).send().await.expect("request").json::<Value>().await })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.state.post_waiters() == 0 {
        assert!(Instant::now() < deadline, "the second request did not queue for the post within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    holder.execute("COMMIT").await;

    // It ran after the first, on its own numbers. The first made only the increments its two workers
    // had in flight when it was stopped, not the 50 it was asked for.
    let body = second.await.expect("task").expect("JSON");
    assert_eq!(body["experiment"]["foreign_writes"], 0, "{body}");
    let before = body["experiment"]["like_before"].as_i64().unwrap_or(-1);
    assert!((1..=2).contains(&before), "the stopped run made {before} increments: {body}");
    assert_eq!(body["like_result"], before + 10, "{body}");

    // The timed-out request is in the request metrics, with its status.
    let metrics = app.get("/metrics").await.text;
    let counted = metrics.lines().any(|line| {
        line.starts_with("http_requests_total{")
            && line.contains(r#"route="/test-db/2th-plock""#)
            && line.contains(r#"status="503""#)
    });
    assert!(counted, "no 503 for /test-db/2th-plock in the metrics:\n{metrics}");
}

// With post 1's row held from outside, a run whose every increment gives up on the lock (`nowait`:
// lock_not_available, `skip-locked`: row_skipped) answers 409 with the experiment, what was done: nothing
// acknowledged, nothing written. Once the row is free, the same request answers 200.
async fn a_run_refused_by_a_held_row_is_a_409_with_its_outcome(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    let mut holder = Raw::connect(&test).await;
    holder.hold_row_lock(1).await;
    for (mode, kind) in [("nowait", "lock_not_available"), ("skip-locked", "row_skipped")] {
        let path = format!("/test-db/2th-plock?mode={mode}&workers=1&increments=1");
        let answer = app.get(&path).await;
        let problem = assert_problem(&answer, 409);
        assert_eq!(problem["type"], "urn:racelab:problem:conflict", "{path}: {}", answer.text);
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(kind)), "{path}: {}", answer.text);
        let experiment = &problem["experiment"];
        assert_eq!(experiment["acknowledged"], 0, "{path}: {experiment}");
        assert_eq!(experiment["failed"], 1, "{path}: {experiment}");
        assert_eq!(experiment["errors"][kind], 1, "{path}: {experiment}");
        assert_eq!((experiment["like_after"].as_i64(), experiment["actual"].as_i64()), (Some(0), Some(0)));
    }
    holder.execute("ROLLBACK").await;
    let body = app.ok("/test-db/2th-plock?mode=nowait&workers=1&increments=1").await;
    assert_eq!((body["like_result"].as_i64(), body["experiment"]["failed"].as_i64()), (Some(1), Some(0)), "{body}");
}

// Server backends only: these hold a row lock, which SQLite does not have (the outside writer is covered
// there by the core's tests).
// `like_result` of the sharded endpoint is the whole counter: the post's own `like` (written here by
// the atomic endpoint) plus its slots, which `/check` shows too and `/init` clears.
async fn sharded_endpoint_answers_the_sum_of_post_and_slots(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    assert_eq!(app.ok("/test-db/2th-atomic?workers=2&increments=5").await["like_result"], 10);
    let body = app.ok("/test-db/2th-sharded?workers=8&increments=25").await;
    assert_nothing_lost("/test-db/2th-sharded", &body, 210);
    assert_eq!(body["experiment"]["strategy"], "sharded", "{body}");
    assert_eq!(
        (body["experiment"]["like_before"].as_i64(), body["experiment"]["actual"].as_i64()),
        (Some(10), Some(200))
    );

    let mut raw = Raw::connect(&test).await;
    let own = raw.count(&format!("SELECT {} FROM posts WHERE pk = 1", raw.like())).await;
    assert_eq!(own, 10, "the slots, not the post's row, took the sharded increments");
    assert!(raw.count("SELECT COUNT(*) FROM post_slots WHERE post = 1").await > 1, "spread over slots");
    let check = app.ok("/test-db/check").await;
    assert_eq!(
        (check["like_result"].as_i64(), check["like"].as_i64(), check["version"].as_i64()),
        (Some(210), Some(210), Some(210)),
        "{check}"
    );

    app.ok("/test-db/init").await;
    assert_eq!(raw.count("SELECT COUNT(*) FROM post_slots WHERE post = 1").await, 0, "/init cleared the slots");
    assert_eq!(app.ok("/test-db/check").await["like_result"], 0);
}

racelab_testkit::on_server_backends!(
    a_run_refused_by_a_held_row_is_a_409_with_its_outcome,
    a_timed_out_request_never_overlaps_the_next,
    an_outside_writer_is_named_not_miscounted
);

on_every_backend!(
    safe_endpoints_lose_nothing,
    naive_loses_an_update_under_a_forced_race,
    versioning_without_retry_drops_increments_and_says_how_many,
    advisory_runs_on_servers_and_is_refused_on_sqlite,
    concurrent_requests_never_mix,
    sharded_endpoint_answers_the_sum_of_post_and_slots,
);
