//! The database goes away and comes back (a proxy the test cuts between the service and the server):
//! 503 problem+json with `Retry-After` while it is away, 200 as soon as it is back, no restart. And
//! the service starts while the database is down.

use std::time::{Duration, Instant};

use racelab_core::Backend;
use racelab_testkit::TestDb;

use crate::support::service::{Raw, TcpProxy, assert_problem, spawn_app_at};

async fn through_proxy(test: &TestDb) -> (TcpProxy, String) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let url = rewrite(proxy.port);
    (proxy, url)
}

fn assert_unavailable(answer: &crate::support::service::Answer, path: &str) {
    let problem = assert_problem(answer, 503);
    assert_eq!(problem["type"], "urn:racelab:problem:database-unavailable", "{path}: {}", answer.text);
    assert!(answer.headers.contains_key("retry-after"), "{path}: no Retry-After");
    // Neither the URL nor the driver's message reaches the client.
    for secret in ["postgres://", "mysql://", "127.0.0.1", "racelab_t_"] {
        assert!(!answer.text.contains(secret), "{path} leaks `{secret}`: {}", answer.text);
    }
}

/// Polls `/ready` until it answers 200 (a failed connection attempt makes the service refuse at once
/// for a cooldown), failing the test after 20 s.
async fn wait_until_ready(app: &crate::support::service::TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app.get("/ready").await;
        if answer.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "not ready 20 s after the database came back: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    wait_until_ready(&app).await;
    let body = app.ok("/test-db/check").await;
    assert_eq!(body["like_result"], 0, "{body}");
}

/// Starts `GET /test-db/2th-atomic?workers=4&increments=1000` on post 1 and returns once it has
/// acknowledged an increment (observed on a connection of the test's own, not through the proxy).
async fn start_a_long_run(
    app: &crate::support::service::TestApp,
    raw: &mut Raw,
    backend: Backend,
) -> tokio::task::JoinHandle<crate::support::service::Answer> {
    let request = app.get_in_background("/test-db/2th-atomic?workers=4&increments=1000");
    // More than one increment per worker in the row: some worker has started its second, so its first
    // was acknowledged (a write seen in the row may still be waiting for its answer when the cut comes,
    // and end in doubt: waiting for the first write alone made `acknowledged > 0` a race).
    let deadline = Instant::now() + Duration::from_secs(20);
    while like(raw, backend).await <= 4 {
        assert!(Instant::now() < deadline, "the experiment wrote nothing within 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    request
}

async fn like(raw: &mut Raw, backend: Backend) -> i64 {
    let int = if backend == Backend::Postgres { "BIGINT" } else { "SIGNED" };
    raw.count(&format!("SELECT CAST({} AS {int}) FROM posts WHERE pk = 1", raw.like())).await
}

/// The answer to a request started before the cut, failing the test if it takes more than 30 s (a
/// bound, not a wait: it comes as soon as the workers have given up).
async fn answer_within_30s(
    request: tokio::task::JoinHandle<crate::support::service::Answer>,
) -> crate::support::service::Answer {
    tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("the request answers within 30 s of the cut")
        .expect("request task")
}

// The database goes away while an experiment runs and stays away: the proxy severs the workers' live
// connections and refuses new ones. Each worker stops when it cannot get a connection back (instead of
// trying every remaining increment for an acquire timeout each, which took hours): the request answers
// 503 within seconds, with what was counted: every increment acknowledged, failed or in doubt, and the
// counter `null` (it cannot be read while the database is away). The post is released: the next
// request on it runs once the database is back.
async fn database_dies_mid_experiment(test: TestDb) {
    let (proxy, url) = through_proxy(&test).await;
    let app = spawn_app_at(&url, Duration::from_secs(1)).await;
    app.ok("/test-db/init").await;
    let mut raw = Raw::connect(&test).await;
    let request = start_a_long_run(&app, &mut raw, test.backend).await;
    proxy.cut();

    let answer = answer_within_30s(request).await;
    let written = like(&mut raw, test.backend).await;
    assert!(written < 4000, "the experiment finished before the cut ({written} increments): {}", answer.text);
    assert_unavailable(&answer, "/test-db/2th-atomic");
    let experiment = &answer.body["experiment"];
    let number = |name: &str| experiment[name].as_u64().unwrap_or_else(|| panic!("no `{name}`: {}", answer.text));
    let (acknowledged, failed, in_doubt) = (number("acknowledged"), number("failed"), number("in_doubt"));
    assert_eq!(acknowledged + failed + in_doubt, 4000, "{}", answer.text);
    assert!(acknowledged > 0 && failed > 0, "{}", answer.text);
    assert!(experiment["actual"].is_null() && experiment["counter_error"].is_string(), "{}", answer.text);
    // The row holds every acknowledged increment, and nothing the in-doubt ones cannot explain.
    let written = like(&mut raw, test.backend).await as u64;
    assert!(acknowledged <= written && written <= acknowledged + in_doubt, "row holds {written}: {}", answer.text);

    proxy.restore();
    wait_until_ready(&app).await;
    raw.wait_until_no_other_statement_runs().await;
    let body = app.ok("/test-db/2th-atomic?workers=2&increments=5").await;
    assert_eq!(body["experiment"]["actual"], 10, "{body}");
    assert_eq!(body["experiment"]["foreign_writes"], 0, "{body}");
    assert_eq!(app.state.posts_in_use(), 0);
}

// The workers' connections are severed mid-run but the database stays reachable: each worker's
// increment in flight fails, known not applied or in doubt (an autocommit write whose answer was
// lost), the worker takes a new connection and goes on. The answer is a 503 (Interrupted) with the
// outcome: every increment is acknowledged, failed or in doubt, and the row holds every acknowledged
// one plus at most the in-doubt ones.
async fn connections_severed_mid_experiment_are_counted(test: TestDb) {
    let (proxy, url) = through_proxy(&test).await;
    let app = spawn_app_at(&url, Duration::from_secs(1)).await;
    app.ok("/test-db/init").await;
    let mut raw = Raw::connect(&test).await;
    let request = start_a_long_run(&app, &mut raw, test.backend).await;
    proxy.sever();

    let answer = answer_within_30s(request).await;
    assert_unavailable(&answer, "/test-db/2th-atomic");
    let experiment = &answer.body["experiment"];
    let number = |name: &str| experiment[name].as_u64().unwrap_or_else(|| panic!("no `{name}`: {}", answer.text));
    let (acknowledged, failed, in_doubt) = (number("acknowledged"), number("failed"), number("in_doubt"));
    let actual = number("actual");
    assert!(failed + in_doubt > 0 && acknowledged < 4000, "{}", answer.text);
    assert_eq!(acknowledged + failed + in_doubt, 4000, "{}", answer.text);
    assert!(acknowledged <= actual && actual <= acknowledged + in_doubt, "{}", answer.text);

    raw.wait_until_no_other_statement_runs().await;
    let body = app.ok("/test-db/2th-atomic?workers=2&increments=5").await;
    assert_eq!(body["experiment"]["actual"], 10, "{body}");
    assert_eq!(app.state.posts_in_use(), 0);
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

racelab_testkit::on_server_backends!(database_dies_mid_experiment, connections_severed_mid_experiment_are_counted);
