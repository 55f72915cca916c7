//! `/ready` on the PostgreSQL high-availability cluster (`scripts/pgha up`): a service pointed at a
//! replica, or at a host list none of which accepts writes, says so by name (`read-only-replica`,
//! `no-primary`), as it names a Galera node that is not Synced; through the cluster's URL it is ready,
//! wherever the primary is. These tests run one at a time (nextest's `pgha` group): others change the
//! cluster.

use std::time::Duration;

use racelab_testkit::pgha::{self, PghaDb};

use crate::support::service::{assert_problem, spawn_app_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgha_ready_names_a_replica_and_a_host_list_without_a_primary() {
    pgha::run(&["up"]).await;
    let test = PghaDb::create().await;
    let replicas = pgha::replicas().await;

    let app = spawn_app_at(&test.url, Duration::from_secs(5)).await;
    let body = app.ok("/ready").await;
    assert_eq!(body["status"], "ready", "{body}");

    let app = spawn_app_at(&test.node_url(replicas[0]), Duration::from_secs(5)).await;
    let answer = app.get("/ready").await;
    let body = assert_problem(&answer, 503);
    assert_eq!(body["type"], "urn:racelab:problem:read-only-replica", "{}", answer.text);
    assert!(answer.headers.contains_key("retry-after"), "{:?}", answer.headers);
    assert!(body["detail"].as_str().unwrap_or_default().contains("target_session_attrs=read-write"), "{}", answer.text);

    let address = |n: usize| pgha::node_addresses()[n - 1].clone();
    let replicas_only = format!(
        "postgres://postgres@{},{}/{}?target_session_attrs=read-write",
        address(replicas[0]),
        address(replicas[1]),
        test.name()
    );
    let app = spawn_app_at(&replicas_only, Duration::from_secs(5)).await;
    let answer = app.get("/ready").await;
    let body = assert_problem(&answer, 503);
    assert_eq!(body["type"], "urn:racelab:problem:no-primary", "{}", answer.text);
    // The hosts' addresses are the log's, not a client's.
    assert!(!answer.text.contains(&address(replicas[0])), "{}", answer.text);
}
