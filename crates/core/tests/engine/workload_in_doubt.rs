//! A workload's operation whose commit answer is lost: a proxy of the test's own forwards the chosen
//! COMMIT (or autocommit write) and closes the connection before the answer comes back, or closes it
//! instead of forwarding. The operation is in doubt, never failed nor acknowledged, and the invariant
//! holds with it counted either way: a stock unit it may or may not have taken, a transfer that may or
//! may not have moved.

use std::time::Duration;

use racelab_core::workload::{Sizes, WorkloadExperiment, WorkloadOutcome};
use racelab_core::{ConnectOptions, Database, DatabaseUrl, Workload};
use racelab_testkit::TestDb;
use racelab_testkit::proxy::{TcpProxy, TrapHandle};

/// A connection to the test's database through a proxy the test controls.
async fn through_proxy(test: &TestDb) -> (TcpProxy, Database) {
    let (upstream, rewrite) = TcpProxy::route(&test.url);
    let proxy = TcpProxy::start(upstream).await;
    let mut options = ConnectOptions::new(DatabaseUrl::parse(&rewrite(proxy.port)).expect("proxied URL parses"));
    options.acquire_timeout = Duration::from_secs(20);
    let db = Database::connect(options).await.expect("connects through the proxy");
    (proxy, db)
}

/// One worker, five operations, a stock of 10 (none refused); the trap springs on the third.
async fn stock_with_trap(db: &Database, strategy: &str, trap: &mut TrapHandle) -> WorkloadOutcome {
    let experiment = WorkloadExperiment {
        sizes: Sizes { stock: Some(10), ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::Stock, strategy, 1, 5)
    };
    let outcome = experiment.run(db).await.expect("the run runs");
    assert!(trap.has_sprung(), "the trap never sprang: {outcome:#?}");
    trap.sprung().await;
    outcome
}

fn assert_one_in_doubt(outcome: &WorkloadOutcome) {
    assert_eq!((outcome.acknowledged, outcome.failed, outcome.in_doubt), (4, 0, 1), "{outcome:#?}");
    assert!(outcome.errors.is_empty(), "an in-doubt operation is not a failure: {outcome:#?}");
    assert_eq!(outcome.retries, 0, "an in-doubt operation is never run again: {outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
    assert!(outcome.verdict().contains("1 in doubt"), "{}", outcome.verdict());
}

// The third COMMIT commits, its answer is lost: the unit left the stock, and the check allows it.
async fn a_purchase_whose_commit_answer_is_lost_is_in_doubt_and_bounded(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    let mut trap = proxy.lose_answer_to(b"COMMIT", 2);
    let outcome = stock_with_trap(&db, "pessimistic", &mut trap).await;
    assert_one_in_doubt(&outcome);
    assert!(outcome.invariant.detail.contains("4 sold (1 in doubt) of a stock of 10, 5 left"), "{outcome:#?}");

    // The third COMMIT never reaches the server: the unit stayed, and the check allows that too.
    let mut trap = proxy.drop_before(b"COMMIT", 2);
    let outcome = stock_with_trap(&db, "serializable", &mut trap).await;
    assert_one_in_doubt(&outcome);
    assert!(outcome.invariant.detail.contains("4 sold (1 in doubt) of a stock of 10, 6 left"), "{outcome:#?}");
}

// A transfer in doubt: it may have moved its amount or not; every balance is checked with it either way.
async fn a_transfer_whose_commit_answer_is_lost_is_in_doubt_and_bounded(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    for strategy in ["pessimistic", "conditional", "optimistic"] {
        let mut trap = proxy.lose_answer_to(b"COMMIT", 2);
        let experiment = WorkloadExperiment {
            sizes: Sizes { accounts: 3, ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::Transfer, strategy, 1, 5)
        };
        let outcome = experiment.run(&db).await.expect("the run runs");
        assert!(trap.has_sprung(), "{strategy}: the trap never sprang: {outcome:#?}");
        trap.sprung().await;
        assert_eq!(
            (outcome.acknowledged + outcome.refused, outcome.in_doubt, outcome.failed),
            (4, 1, 0),
            "{outcome:#?}"
        );
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
    }
}

racelab_testkit::on_server_backends!(
    a_purchase_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
    a_transfer_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
);
