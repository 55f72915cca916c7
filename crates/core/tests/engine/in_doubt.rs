//! Commits whose answer is lost: a proxy of the test's own forwards the chosen COMMIT (or autocommit
//! write) and closes the connection before the answer comes back, or closes it instead of forwarding.
//! Either way the client cannot know; the experiment must say "in doubt", never count the increment
//! as failed or lost, and the proof `acknowledged <= actual <= acknowledged + in_doubt` must hold.

use std::time::Duration;

use racelab_core::{ConnectOptions, Database, DatabaseUrl, Experiment, LockMode, Outcome, Strategy};
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

/// One worker, five increments; the trap springs on the third.
async fn run_with_trap(db: &Database, strategy: Strategy, trap: &mut TrapHandle) -> Outcome {
    let outcome = Experiment::new(strategy, 1, 5).run(db).await.expect("the experiment runs");
    assert!(trap.has_sprung(), "the trap never sprang: {outcome:#?}");
    trap.sprung().await;
    outcome
}

fn assert_one_in_doubt(outcome: &Outcome, committed: u64) {
    assert_eq!((outcome.acknowledged, outcome.failed, outcome.in_doubt), (4, 0, 1), "{outcome:#?}");
    assert_eq!(outcome.expected, 5, "{outcome:#?}");
    assert_eq!(outcome.actual, Some(4 + committed as i64), "{outcome:#?}");
    assert_eq!(outcome.in_doubt_committed, Some(committed), "{outcome:#?}");
    assert_eq!((outcome.lost, outcome.foreign_writes), (Some(0), 0), "{outcome:#?}");
    assert_eq!(outcome.invariant_holds(), Some(true), "{outcome:#?}");
    assert!(outcome.errors.is_empty(), "an in-doubt increment is not a failure: {outcome:#?}");
    assert!(outcome.verdict().contains("1 in doubt"), "{}", outcome.verdict());
}

// The third COMMIT reaches the server and commits; its answer is dropped with the connection.
async fn a_commit_whose_answer_is_lost_is_in_doubt_and_in_the_row(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    let mut trap = proxy.lose_answer_to(b"COMMIT", 2);
    let outcome = run_with_trap(&db, Strategy::Pessimistic(LockMode::Wait), &mut trap).await;
    assert_one_in_doubt(&outcome, 1);
}

// The third COMMIT never reaches the server: the transaction is rolled back when the connection
// closes. The client cannot tell this case from the one above, so it is in doubt too.
async fn a_commit_cut_before_it_is_sent_is_in_doubt_and_not_in_the_row(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    let mut trap = proxy.drop_before(b"COMMIT", 2);
    let outcome = run_with_trap(&db, Strategy::Pessimistic(LockMode::Wait), &mut trap).await;
    assert_one_in_doubt(&outcome, 0);
}

// Optimistic and serializable commit the same way; the in-doubt increment is not retried (running it
// again could count it twice).
async fn every_transactional_strategy_reports_a_lost_commit_answer_as_in_doubt(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    for strategy in [Strategy::Serializable, Strategy::Versioned, Strategy::Advisory, Strategy::Naive] {
        let mut trap = proxy.lose_answer_to(b"COMMIT", 2);
        let outcome = run_with_trap(&db, strategy, &mut trap).await;
        assert_one_in_doubt(&outcome, 1);
        assert_eq!(outcome.retries, 0, "{strategy}: {outcome:#?}");
    }
}

// A connection lost inside the transaction, before the commit was sent, is a known failure: the
// server rolls back what the broken connection left open.
async fn a_connection_lost_before_the_commit_is_a_known_failure(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    let mut trap = proxy.lose_answer_to(b"BEGIN", 2);
    let outcome = run_with_trap(&db, Strategy::Pessimistic(LockMode::Wait), &mut trap).await;
    assert_eq!((outcome.acknowledged, outcome.failed, outcome.in_doubt), (4, 1, 0), "{outcome:#?}");
    assert_eq!(outcome.actual, Some(4), "{outcome:#?}");
    assert_eq!(outcome.errors.get(&racelab_core::ErrorKind::ConnectionLost), Some(&1), "{outcome:#?}");
}

// An autocommit write commits by itself: its lost answer leaves the increment in doubt too.
// PostgreSQL's answer names the statement ("UPDATE 1", "INSERT 0 1"), so the trap can find the atomic,
// optimistic and sharded increments (their text is sent once per connection, as a prepared statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_autocommit_write_whose_answer_is_lost_is_in_doubt() {
    racelab_testkit::run(racelab_core::Backend::Postgres, async |test| {
        let (proxy, db) = through_proxy(&test).await;
        // Each of these commits with one statement whose answer names it. (Setting up the post answers
        // `INSERT 0 1` too, so for `sharded` the trap springs on the second increment: no matter which.)
        let cases = [
            (Strategy::Atomic, b"UPDATE 1\0".as_slice()),
            (Strategy::Optimistic, b"UPDATE 1\0".as_slice()),
            (Strategy::Sharded { slots: 4 }, b"INSERT 0 1\0".as_slice()),
        ];
        for (strategy, answer) in cases {
            let mut trap = proxy.lose_answer_containing(answer, 2);
            let outcome = run_with_trap(&db, strategy, &mut trap).await;
            assert_one_in_doubt(&outcome, 1);
            assert_eq!(outcome.retries, 0, "{strategy}: {outcome:#?}");
        }
    })
    .await;
}

racelab_testkit::on_server_backends!(
    a_commit_whose_answer_is_lost_is_in_doubt_and_in_the_row,
    a_commit_cut_before_it_is_sent_is_in_doubt_and_not_in_the_row,
    every_transactional_strategy_reports_a_lost_commit_answer_as_in_doubt,
    a_connection_lost_before_the_commit_is_a_known_failure,
);
