//! `/ready` on the nodes of a real MariaDB Galera cluster (the private one: these tests desync and kill
//! nodes; see `racelab_testkit::galera`). A node that answers queries is not necessarily one to send
//! work to: a desynced node lags behind, and a node without quorum refuses every table with 1047
//! while `SELECT VERSION()` still works. `/ready` says which, by name.

use std::time::{Duration, Instant};

use racelab_testkit::galera::PrivateCluster;
use sqlx::{Connection, Executor, MySqlConnection};

use crate::support::service::{Answer, TestApp, assert_problem, spawn_app_at};

/// Polls `/ready` until `done` says yes (bounded): a node's state changes a moment after the cause.
async fn ready_until(app: &TestApp, what: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = app.get("/ready").await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "/ready never {what}: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The 503 that names a node's state.
fn assert_node_not_ready<'a>(answer: &'a Answer, state: &str) -> &'a str {
    let body = assert_problem(answer, 503);
    assert_eq!(body["type"], "urn:racelab:problem:node-not-ready", "{}", answer.text);
    assert!(answer.headers.contains_key("retry-after"), "{:?}", answer.headers);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(state), "the detail does not name {state}: {detail}");
    detail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ready_names_the_state_of_a_desynced_node_and_of_a_node_without_quorum() {
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    let app = spawn_app_at(&test.urls[1], Duration::from_secs(5)).await;
    app.ok("/ready").await;

    // Desynced (as for a backup): Primary and ready, but no longer keeping up with the cluster.
    let mut node2 = MySqlConnection::connect(&test.urls[1]).await.expect("node 2");
    node2.execute("SET GLOBAL wsrep_desync = ON").await.expect("desync");
    let answer = ready_until(&app, "answered 503", |a| a.status == 503).await;
    assert_node_not_ready(&answer, "Donor/Desynced");
    node2.execute("SET GLOBAL wsrep_desync = OFF").await.expect("resync");
    ready_until(&app, "came back to 200", |a| a.status == 200).await;

    // Nodes 1 and 3 killed: node 2 is alone, outside the Primary component.
    cluster.kill(0).await;
    cluster.kill(2).await;
    let answer = ready_until(&app, "saw the quorum lost", |a| a.status == 503).await;
    let detail = assert_node_not_ready(&answer, "non-Primary");
    assert!(detail.contains("wsrep_ready OFF"), "{detail}");

    // racelab lab there says so too, rather than "check that the server runs".
    let lab = tokio::process::Command::new(env!("CARGO_BIN_EXE_racelab"))
        .args(["lab", "--database-url", &test.urls[1], "-s", "atomic", "-w", "1", "-n", "1"])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("racelab lab");
    let stderr = String::from_utf8_lossy(&lab.stderr);
    assert!(!lab.status.success(), "{stderr}");
    assert!(stderr.contains("node not ready: ") && stderr.contains("non-Primary"), "{stderr}");
    assert!(!stderr.contains("check that the server runs"), "{stderr}");

    // Whole again for the next test (and for dropping the database).
    cluster.run(&["up"]).await;
    ready_until(&app, "came back to 200 after the repair", |a| a.status == 200).await;
}

// The node under a server dies while a request's experiment runs on it: the server answers 503 with
// what was done (acknowledged, failed, in doubt: all 4000 accounted), not a bare error, and the
// cluster's row, read on a survivor once it has applied every certified write, holds every
// acknowledged increment and at most the in-doubt ones more. After the rejoin, the node holds the
// same counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_on_a_node_killed_mid_run_answers_503_with_what_was_done() {
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    let app = spawn_app_at(&test.urls[2], Duration::from_secs(1)).await;
    app.ok("/test-db/init").await;
    let request = app.get_in_background("/test-db/2th-atomic?workers=4&increments=1000");
    // More than one increment per worker in the row: some worker's first was acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while test.synced_like(0, 1).await <= 4 {
        assert!(Instant::now() < deadline, "the experiment wrote nothing within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill(2).await;

    let answer = tokio::time::timeout(Duration::from_secs(60), request).await.expect("an answer").expect("task");
    let row = test.synced_like(0, 1).await as u64;
    assert!(row < 4000, "the experiment finished before the kill: {}", answer.text);
    let problem = assert_problem(&answer, 503);
    let experiment = &problem["experiment"];
    let number = |name: &str| experiment[name].as_u64().unwrap_or_else(|| panic!("no `{name}`: {}", answer.text));
    let (acknowledged, failed, in_doubt) = (number("acknowledged"), number("failed"), number("in_doubt"));
    assert_eq!(acknowledged + failed + in_doubt, 4000, "{}", answer.text);
    assert!(acknowledged > 0 && failed + in_doubt > 0, "{}", answer.text);
    assert!(acknowledged <= row && row <= acknowledged + in_doubt, "row {row}: {}", answer.text);

    cluster.rejoin(2).await;
    assert_eq!(test.synced_like(2, 1).await as u64, row, "node 3 after its rejoin");
}
