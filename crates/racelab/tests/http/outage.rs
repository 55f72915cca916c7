//! The database goes away and comes back (a proxy the test cuts between the service and the server):
//! 503 problem+json with `Retry-After` while it is away, 200 as soon as it is back, no restart. And
//! the service starts while the database is down.

use std::time::Duration;

use racelab_core::Backend;
use racelab_testkit::TestDb;

use crate::helpers::{TcpProxy, assert_problem, spawn_app_at};

async fn through_proxy(test: &TestDb) -> (TcpProxy, String) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let url = rewrite(proxy.port);
    (proxy, url)
}

fn assert_unavailable(answer: &crate::helpers::Answer, path: &str) {
    let problem = assert_problem(answer, 503);
    assert_eq!(problem["type"], "urn:racelab:problem:database-unavailable", "{path}: {}", answer.text);
    assert!(answer.headers.contains_key("retry-after"), "{path}: no Retry-After");
    // Neither the URL nor the driver's message reaches the client.
    for secret in ["postgres://", "mysql://", "127.0.0.1", "racelab_t_"] {
        assert!(!answer.text.contains(secret), "{path} leaks `{secret}`: {}", answer.text);
    }
}

async fn database_goes_away_and_comes_back(test: TestDb) {
    let (proxy, url) = through_proxy(&test).await;
    let app = spawn_app_at(&url, Duration::from_secs(1)).await;
    app.ok("/test-db/init").await;
    app.ok("/ready").await;

    proxy.cut();
    for path in ["/test-db/check", "/test-db/2th-plock", "/test-db/", "/ready"] {
        let answer = app.get(path).await;
        assert_unavailable(&answer, path);
    }
    app.ok("/health").await;

    proxy.restore();
    let body = app.ok("/test-db/2th-plock").await;
    assert_eq!(body["like_result"], 50, "{body}");
    app.ok("/ready").await;
}

async fn service_starts_while_the_database_is_down(test: TestDb) {
    let (proxy, url) = through_proxy(&test).await;
    proxy.cut();
    let app = spawn_app_at(&url, Duration::from_secs(1)).await;
    app.ok("/health").await;
    assert_unavailable(&app.get("/ready").await, "/ready");
    assert_unavailable(&app.get("/test-db/check").await, "/test-db/check");

    proxy.restore();
    // A failed connection attempt makes the next second answer 503 at once (no queue of attempts);
    // after that the first request connects.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = app.ok("/test-db/check").await;
    assert_eq!(body["like_result"], 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_goes_away_and_comes_back_postgres() {
    racelab_testkit::run(Backend::Postgres, database_goes_away_and_comes_back).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_goes_away_and_comes_back_mysql() {
    racelab_testkit::run(Backend::MySql, database_goes_away_and_comes_back).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_starts_while_the_database_is_down_postgres() {
    racelab_testkit::run(Backend::Postgres, service_starts_while_the_database_is_down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_starts_while_the_database_is_down_mysql() {
    racelab_testkit::run(Backend::MySql, service_starts_while_the_database_is_down).await;
}
