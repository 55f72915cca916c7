//! Bad input is a 400 problem+json that names the parameter and what it accepts.

use racelab_core::Backend;
use racelab_testkit::TestDb;

use std::time::Duration;

use racelab_testkit::on_every_backend;

use crate::support::service::{Raw, Settings, assert_problem, assert_refused, spawn_app, spawn_app_with_lock_timeout};

#[tokio::test]
async fn a_body_member_given_twice_is_a_422_naming_it() {
    racelab_testkit::run(Backend::Sqlite, repeated_members).await;
}

// As a repeated query parameter is refused rather than the last one winning, so is a repeated JSON
// member: `workers` given as 2 then 3 must not run 3 workers silently.
async fn repeated_members(test: TestDb) {
    let app = spawn_app(&test).await;
    app.ok("/test-db/init").await;
    let cases = [
        ("POST", "/experiments", r#"{"kind": "lab", "strategies": ["naive"], "workers": 2, "workers": 3}"#, "workers"),
        ("PATCH", "/posts/1", r#"{"like": 1, "like": 5}"#, "like"),
    ];
    for (method, path, body, name) in cases {
        let request = app
            .client
            .request(method.parse().expect("method"), format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .header("if-match", "*")
            .body(body);
        let answer = crate::support::service::read_answer(request.send().await.expect(path)).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["invalid_params"][0]["name"], name, "{path}: {}", answer.text);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("is given 2 times; give it once"), "{path}: {detail}");
    }
    // Nothing was changed.
    assert_eq!(app.ok("/test-db/check").await["like"], 0);
}

#[tokio::test]
async fn bad_parameters_are_problems_naming_the_field() {
    racelab_testkit::run(Backend::Sqlite, bad_parameters).await;
}

async fn bad_parameters(test: TestDb) {
    let app = spawn_app(&test).await;
    let cases = [
        ("/test-db/2th?workers=-1", "workers", "between 1 and 32"),
        ("/test-db/2th?workers=0", "workers", "between 1 and 32"),
        ("/test-db/2th-plock?workers=33", "workers", "between 1 and 32"),
        ("/test-db/2th-olock?workers=abc", "workers", "between 1 and 32"),
        ("/test-db/2th-atomic?increments=99999999999999999999", "increments", "between 1 and 1000"),
        ("/test-db/2th-serializable?increments=1.5", "increments", "between 1 and 1000"),
        ("/test-db/inc?increments=1001", "increments", "between 1 and 1000"),
        ("/test-db/check?post=0", "post", "between 1 and 2147483647"),
        ("/test-db/2th?post=-5", "post", "between 1 and 2147483647"),
        ("/test-db/2th-plock?mode=sometimes", "mode", "one of wait, nowait, skip-locked"),
        ("/test-db/2th-olock-sqlalchemy-versioning?retry=maybe", "retry", "`true` or `false`"),
        ("/test-db/2th?force_race=yes", "force_race", "`true` or `false`"),
        ("/test-db/2th?worker=3", "worker", "it takes workers, increments, post, force_race"),
        ("/test-db/?verbose=1", "verbose", "takes none"),
    ];
    for (path, field, allowed) in cases {
        assert_refused(&app.get(path).await, field, allowed);
    }
}

#[tokio::test]
async fn unknown_paths_are_problems_too() {
    racelab_testkit::run(Backend::Sqlite, unknown_path).await;
}

async fn unknown_path(test: TestDb) {
    let app = spawn_app(&test).await;
    let answer = app.get("/test-db/3th").await;
    assert_problem(&answer, 404);
}

/// A row held locked by a transaction outside the service: a write that waits past the lock timeout is
/// a 409 problem (not a hang, not a 500), the service keeps serving, and the same request succeeds
/// once the lock is gone.
async fn a_row_locked_elsewhere_is_a_409_until_it_is_released(test: TestDb) {
    let app = spawn_app_with_lock_timeout(&test.url, Duration::from_millis(300)).await;
    app.ok("/test-db/init").await;
    let mut outside = Raw::connect(&test).await;
    match test.backend {
        // SQLite has no row locks: the outside writer holds the database's write lock.
        Backend::Sqlite => outside.execute("BEGIN IMMEDIATE").await,
        _ => {
            outside.hold_row_lock(1).await;
        }
    }

    let answer = app.get("/test-db/init").await;
    let problem = assert_problem(&answer, 409);
    assert_eq!(problem["type"], "urn:racelab:problem:conflict", "{}", answer.text);
    assert!(problem["detail"].as_str().unwrap().contains("locked"), "{}", answer.text);
    app.ok("/health").await;

    outside.execute("ROLLBACK").await;
    let body = app.ok("/test-db/init").await;
    assert_eq!(body["like_result"], 0, "{body}");
}

/// With `--pool-size 10`, two connections are kept for other requests: an experiment may have 8 workers.
/// 9 or 10 are refused up front with a 422 naming `workers` and the maximum (they used to run without a
/// reservation and time out acquiring connections: a 503). 8 run, two at once on different posts too.
async fn more_workers_than_the_pool_allows_are_a_422_naming_the_maximum(test: TestDb) {
    let app = Settings { max_connections: 10, ..Settings::default() }.spawn(&test.url).await;
    for workers in [9, 10] {
        let path = format!("/test-db/2th-atomic?workers={workers}&increments=5");
        let answer = app.get(&path).await;
        let problem = assert_problem(&answer, 422);
        assert_eq!(problem["type"], "urn:racelab:problem:invalid-experiment", "{path}: {}", answer.text);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("`workers` = ") && detail.contains("at most 8"), "{path}: {detail}");
    }
    let (a, b) = tokio::join!(
        app.ok("/test-db/2th-atomic?workers=8&increments=5&post=1"),
        app.ok("/test-db/2th-plock?workers=8&increments=5&post=2")
    );
    for body in [&a, &b] {
        assert_eq!(body["like_result"], 40, "{body}");
        assert_eq!(body["experiment"]["failed"], 0, "{body}");
    }
}

on_every_backend!(
    a_row_locked_elsewhere_is_a_409_until_it_is_released,
    more_workers_than_the_pool_allows_are_a_422_naming_the_maximum,
);
