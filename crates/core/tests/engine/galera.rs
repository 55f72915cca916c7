//! racelab-core on a real 3-node MariaDB Galera cluster (`scripts/galera up`; see
//! `racelab_testkit::galera`): the nodes' state as the core reads it, setup statements that collide
//! across nodes, and a node that is killed and rejoins. Tests that break nodes take the private
//! cluster, one at a time, so the tests on the shared cluster never see a node go.
//!
//! ```sh
//! scripts/galera up && cargo nextest run -p racelab-core -E 'test(/^galera::/)'
//! ```

use std::sync::Arc;
use std::time::Duration;

use racelab_core::db::{ConnectError, NodeState};
use racelab_core::experiment::Progress;
use racelab_core::{Database, Experiment, LockMode, Outcome, Strategy, Target};
use racelab_testkit::galera::{GaleraDb, PrivateCluster};
use tokio::sync::Barrier;

/// Rounds of "three nodes create the same post at once": a cross-node conflict is a matter of timing,
/// so one round could pass by luck; twenty did not in any run without the retry.
const ROUNDS: i64 = 20;

async fn state_of(db: &Database) -> NodeState {
    db.node_state().await.expect("node state").expect("wsrep is on")
}

/// Connects to every node at once (each connection applies the migrations on an empty database).
async fn connect_all(test: &GaleraDb) -> Vec<Database> {
    assert_eq!(test.nodes(), 3, "these tests need a 3-node cluster: {:?}", test.urls);
    let (a, b, c) = tokio::join!(test.connect(0), test.connect(1), test.connect(2));
    vec![a, b, c]
}

/// Runs `op` on every node at the same moment (a barrier), and returns what each returned.
async fn on_every_node_at_once<T, F, Fut>(dbs: &[Database], op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Database) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(dbs.len()));
    let tasks: Vec<_> = dbs
        .iter()
        .map(|db| {
            let (barrier, work) = (barrier.clone(), op(db.clone()));
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_of_the_shared_cluster_is_synced_in_a_primary_component_of_three() {
    let test = GaleraDb::create().await;
    assert_eq!(test.nodes(), 3, "{:?}", test.urls);
    for (node, db) in connect_all(&test).await.iter().enumerate() {
        let state = state_of(db).await;
        assert!(state.is_serving(), "node {}: {state}", node + 1);
        assert_eq!((state.cluster_status.as_str(), state.cluster_size), ("Primary", 3), "node {}", node + 1);
    }
}

// The same post created from three nodes at once certifies as a deadlock (1213) on the losers: the
// setup retry makes every call succeed, and every node ends with the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_created_from_three_nodes_at_once_is_created_once_without_error() {
    let test = GaleraDb::create().await;
    let dbs = connect_all(&test).await;
    for pk in 1..=ROUNDS {
        for (node, result) in
            on_every_node_at_once(&dbs, move |db| async move { db.ensure_post(pk).await }).await.into_iter().enumerate()
        {
            result.unwrap_or_else(|e| panic!("ensure_post({pk}) on node {}: {e}", node + 1));
        }
        for (node, result) in
            on_every_node_at_once(&dbs, move |db| async move { db.reset_post(pk).await }).await.into_iter().enumerate()
        {
            result.unwrap_or_else(|e| panic!("reset_post({pk}) on node {}: {e}", node + 1));
        }
    }
    let created = on_every_node_at_once(&dbs, |db| async move { db.create_post().await }).await;
    let created: Vec<i64> = created.into_iter().map(|r| r.expect("create_post")).collect();
    assert!(created.iter().all(|&pk| pk > ROUNDS), "{created:?}");
    for node in 0..3 {
        let mut conn = test.synced_connection(node).await;
        let rows: (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(`like` + version), 0) AS SIGNED) FROM posts")
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(rows, (ROUNDS + 3, 0), "node {}", node + 1);
    }
}

// Kill -9 of a node while the others take writes; `scripts/galera rejoin` recovers its position and
// catches up by IST: Synced again, holding the same counter as the nodes that never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_rejoins_synced_with_the_same_data() {
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    let n1 = test.connect(0).await;
    let pk = n1.create_post().await.expect("create_post");
    let atomic = Experiment { target: Target::Post(pk), ..Experiment::new(Strategy::Atomic, 2, 50) };
    let before = atomic.run(&n1).await.expect("run before the kill");
    assert_eq!(before.acknowledged, 100);

    cluster.kill(2).await;
    let during = atomic.run(&n1).await.expect("run while node 3 is down");
    assert_eq!(during.acknowledged, 100, "{during:#?}");
    cluster.rejoin(2).await;

    let n3 = test.connect(2).await;
    let state = state_of(&n3).await;
    assert!(state.is_serving() && state.cluster_size == 3, "node 3 after rejoin: {state}");
    let on_n1 = test.synced_like(0, pk).await;
    assert_eq!(on_n1, 200);
    assert_eq!(test.synced_like(2, pk).await, on_n1, "node 3 after rejoin");
    assert_eq!(n3.load_post(pk).await.expect("load on node 3").like, 200);
}

// Two nodes killed: the survivor has no quorum. It still answers, but outside the Primary component it
// refuses every query (1047); the core reports its state, and connecting says "node not ready".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_quorum_reports_its_state_and_refuses_to_connect() {
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    let n1 = test.connect(0).await;
    cluster.kill(1).await;
    cluster.kill(2).await;

    // The survivor notices after its suspect timeout (a few seconds): poll, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let state = loop {
        let state = state_of(&n1).await;
        if !state.accepts_queries() || tokio::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((state.ready, state.cluster_status.as_str()), (false, "non-Primary"), "{state}");
    assert!(!state.is_serving());

    let refused = Database::connect(test.options(0)).await.expect_err("connecting to a node without quorum");
    assert!(matches!(refused, ConnectError::NodeNotReady { .. }), "{refused:?}");
    let message = refused.to_string();
    assert!(message.starts_with("node not ready: ") && message.contains("non-Primary"), "{message}");

    // Leave the cluster whole for the next test (and the database's drop).
    cluster.run(&["up"]).await;
    assert!(state_of(&n1).await.is_serving());
}

/// One experiment over the three nodes of `test` (workers round-robin, all on one row).
async fn run_across(nodes: &[Database], experiment: Experiment) -> Outcome {
    experiment
        .run_on(nodes, &Arc::default())
        .await
        .unwrap_or_else(|e| panic!("{} across {} nodes: {e}", experiment.strategy, nodes.len()))
}

/// Every increment accounted for, and per-node figures that add up to the whole.
fn assert_accounted(outcome: &Outcome, nodes: usize) {
    let strategy = outcome.strategy;
    assert_eq!(outcome.acknowledged + outcome.failed + outcome.in_doubt, outcome.expected, "{strategy}: {outcome:#?}");
    assert_eq!(outcome.foreign_writes, 0, "{strategy}: {outcome:#?}");
    assert_eq!(outcome.nodes.len(), nodes, "{strategy}: {outcome:#?}");
    let acknowledged: u64 = outcome.nodes.iter().map(|n| n.acknowledged).sum();
    assert_eq!(acknowledged, outcome.acknowledged, "{strategy}: {outcome:#?}");
    // Every node's workers made all their attempts. (Not "acknowledged some": a strategy that does not
    // retry a certification failure can see every attempt of one node refused.)
    let per_worker = outcome.expected / outcome.workers as u64;
    for node in &outcome.nodes {
        let attempts = node.acknowledged + node.failed + node.in_doubt;
        assert_eq!(attempts, node.workers as u64 * per_worker, "{strategy}: node {} {outcome:#?}", node.node);
    }
}

/// The strategies racelab calls safe, each as it must run across nodes.
fn safe_strategies() -> Vec<Experiment> {
    let mut strategies: Vec<Experiment> = [
        Strategy::Atomic,
        Strategy::Pessimistic(LockMode::Wait),
        Strategy::Optimistic,
        Strategy::Versioned,
        Strategy::Serializable,
        Strategy::Advisory,
        Strategy::Sharded { slots: racelab_core::strategy::DEFAULT_SLOTS },
    ]
    .into_iter()
    .map(|strategy| Experiment::new(strategy, 6, 20))
    .collect();
    // A lock mode that fails fast is refused by its neighbour on the same node: it is safe when the
    // refusal is tried again.
    for mode in [LockMode::NoWait, LockMode::SkipLocked] {
        strategies.push(Experiment { lock_retries: 10_000, ..Experiment::new(Strategy::Pessimistic(mode), 6, 20) });
    }
    strategies
}

// Six workers, two per node, all on one row: whatever the cross-node conflicts (1213 at COMMIT, or on
// the next statement after a brute-force abort), every acknowledged increment is in the row, on every
// node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_safe_strategy_loses_nothing_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    for experiment in safe_strategies() {
        let outcome = run_across(&nodes, experiment).await;
        let strategy = outcome.strategy;
        assert_accounted(&outcome, 3);
        assert_eq!((outcome.failed, outcome.in_doubt), (0, 0), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.lost, Some(0), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.actual, Some(outcome.acknowledged as i64), "{strategy}: {outcome:#?}");
    }
}

// The naive read-modify-write across nodes: some attempts fail with 1213 (certification), and of those
// acknowledged some are lost all the same (Galera's snapshot isolation allows lost updates,
// MDEV-38977). The loss is counted, not hidden: lost = acknowledged - actual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn naive_loses_increments_across_three_nodes_and_counts_them() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let outcome = run_across(&nodes, Experiment { force_race: true, ..Experiment::new(Strategy::Naive, 6, 20) }).await;
    assert_accounted(&outcome, 3);
    let (actual, lost) = (outcome.actual.expect("counter read"), outcome.lost.expect("no foreign writer"));
    assert!(lost > 0, "naive lost nothing across nodes: {outcome:#?}");
    assert_eq!(lost, outcome.acknowledged as i64 - actual, "{outcome:#?}");
    assert_eq!(test.synced_like(2, outcome.post).await, outcome.like_after.expect("counter read"));
}

// Node 3 is killed while six workers (two per node) increment one row. The survivors' workers finish
// (after the cluster's stall); the dead node's workers stop, their increments failed or in doubt; and
// the proof holds across the cluster: acknowledged <= actual <= acknowledged + in_doubt. After the
// rejoin, node 3 holds the same counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_run_keeps_every_acknowledged_increment_accounted() {
    let cluster = PrivateCluster::take().await;
    let test = cluster.database().await;
    let nodes = connect_all(&test).await;
    // The survivors stall for several seconds while the cluster evicts the dead node; the worker
    // that waits behind its neighbour's stalled statement must outlast that, not time out on the lock.
    let experiment =
        Experiment { lock_timeout: Some(Duration::from_secs(30)), ..Experiment::new(Strategy::Atomic, 6, 150) };
    let progress = Arc::new(Progress::default());
    let run = {
        let (nodes, progress, experiment) = (nodes.clone(), progress.clone(), experiment.clone());
        tokio::spawn(async move { experiment.run_on(&nodes, &progress).await })
    };
    // Kill once the run is well under way (bounded poll).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while progress.snapshot().acknowledged < 150 {
        assert!(tokio::time::Instant::now() < deadline, "the run made no progress: {:?}", progress.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(2).await;
    let outcome = run.await.expect("experiment task").expect("experiment");

    assert_eq!(outcome.acknowledged + outcome.failed + outcome.in_doubt, outcome.expected, "{outcome:#?}");
    assert_eq!(outcome.invariant_holds(), Some(true), "{outcome:#?}");
    let (survivors, dead) = (&outcome.nodes[..2], &outcome.nodes[2]);
    for node in survivors {
        assert_eq!(node.acknowledged, 2 * 150, "node {} did not finish: {outcome:#?}", node.node);
    }
    assert!(dead.failed + dead.in_doubt > 0, "node 3's workers did not notice its death: {outcome:#?}");

    cluster.rejoin(2).await;
    let like = outcome.like_after.expect("counter read on a survivor");
    assert_eq!(test.synced_like(0, outcome.post).await, like);
    assert_eq!(test.synced_like(2, outcome.post).await, like, "node 3 after rejoin");
}
