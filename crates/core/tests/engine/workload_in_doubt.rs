//! A workload's operation whose commit answer is lost: a proxy of the test's own forwards the chosen
//! COMMIT (or autocommit write) and closes the connection before the answer comes back, or closes it
//! instead of forwarding. The operation is in doubt, never failed nor acknowledged, and the invariant
//! holds with it counted either way: a stock unit it may or may not have taken, a transfer that may or
//! may not have moved, a doctor who may or may not have gone off call, a booking that may or may not be
//! in the room, a job that may or may not have run. The rows read back say which, exactly.

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

/// The COMMITs a run's setup sends before its first operation: the seed rows (doctors, rooms, jobs)
/// are inserted in one transaction per batch (`Session::insert_ids`), one batch for these sizes.
const SETUP_COMMITS: usize = 1;

/// Runs `experiment` with `trap` set, and checks the accounting every trapped run shares: one worker's
/// five operations, one in doubt, none failed nor retried, the invariant held.
async fn run_with_trap(db: &Database, experiment: WorkloadExperiment, trap: &mut TrapHandle) -> WorkloadOutcome {
    let strategy = experiment.strategy.clone();
    let outcome = experiment.run(db).await.expect("the run runs");
    assert!(trap.has_sprung(), "{strategy}: the trap never sprang: {outcome:#?}");
    trap.sprung().await;
    assert_eq!(
        (outcome.acknowledged + outcome.refused, outcome.in_doubt, outcome.failed),
        (4, 1, 0),
        "{strategy}: {outcome:#?}"
    );
    assert!(outcome.errors.is_empty(), "{strategy}: an in-doubt operation is not a failure: {outcome:#?}");
    assert_eq!(outcome.retries, 0, "{strategy}: an in-doubt operation is never run again: {outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
    outcome
}

/// The trap on the third operation's COMMIT, that commits (`committed`) or never reaches the server.
fn third_commit(proxy: &TcpProxy, committed: bool) -> TrapHandle {
    if committed {
        proxy.lose_answer_to(b"COMMIT", SETUP_COMMITS + 2)
    } else {
        proxy.drop_before(b"COMMIT", SETUP_COMMITS + 2)
    }
}

// One shift of ten doctors, five requests to go off call: the in-doubt one took its doctor off call when
// its COMMIT ran (one fewer on call than the acknowledged say), not when it never reached the server.
// Either way every doctor's state is explained and the shift stays covered.
async fn a_doctor_going_off_call_whose_commit_answer_is_lost_is_in_doubt_and_bounded(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    for (strategy, committed) in
        [("pessimistic", true), ("materialized", true), ("serializable", true), ("pessimistic", false)]
    {
        let mut trap = third_commit(&proxy, committed);
        let experiment = WorkloadExperiment {
            sizes: Sizes { doctors: 10, ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::OnCall, strategy, 1, 5)
        };
        let outcome = run_with_trap(&db, experiment, &mut trap).await;
        let on_call = 10 - outcome.acknowledged - u64::from(committed);
        let detail = format!("every one of 1 shifts kept a doctor on call ({on_call} on call in all)");
        assert_eq!(outcome.invariant.detail, detail, "{strategy}, committed {committed}: {outcome:#?}");
    }
}

// One room of 64 slots, five bookings: the in-doubt booking is a row beside the acknowledged ones when its
// COMMIT ran, and absent when it never reached the server; no slot is booked twice either way.
async fn a_booking_whose_commit_answer_is_lost_is_in_doubt_and_bounded(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    for (strategy, committed) in [("pessimistic", true), ("serializable", true), ("serializable", false)] {
        let mut trap = third_commit(&proxy, committed);
        let outcome = run_with_trap(&db, booking(strategy), &mut trap).await;
        assert_bookings(&outcome, committed);
    }
}

fn booking(strategy: &str) -> WorkloadExperiment {
    WorkloadExperiment {
        sizes: Sizes { rooms: 1, slots: 64, ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::Booking, strategy, 1, 5)
    }
}

/// The bookings' rows are the acknowledged ones, and the in-doubt one if it `committed`.
fn assert_bookings(outcome: &WorkloadOutcome, committed: bool) {
    let rows = outcome.acknowledged + u64::from(committed);
    let detail =
        format!("no double booking: {rows} bookings, each of a different slot ({} acknowledged)", outcome.acknowledged);
    assert_eq!(outcome.invariant.detail, detail, "{}, committed {committed}: {outcome:#?}", outcome.strategy);
}

// `unique` books in autocommit: its INSERT is its commit. PostgreSQL's answer names it (`INSERT 0 1`;
// the text of a prepared statement is sent once per connection): the trap drops the third such answer
// (the room's own INSERT answers it first), and the booking it answers is in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_autocommit_booking_whose_answer_is_lost_is_in_doubt_and_in_the_room() {
    racelab_testkit::run(racelab_core::Backend::Postgres, async |test| {
        let (proxy, db) = through_proxy(&test).await;
        let mut trap = proxy.lose_answer_containing(b"INSERT 0 1\0", 2);
        let outcome = run_with_trap(&db, booking("unique"), &mut trap).await;
        assert_bookings(&outcome, true);
    })
    .await;
}

// A queue of ten jobs, five claims: the in-doubt claim's job ran and is done when its COMMIT ran, and is
// still pending when it never reached the server; no job runs twice, none is lost either way.
async fn a_claim_whose_commit_answer_is_lost_is_in_doubt_and_bounded(test: TestDb) {
    let (proxy, db) = through_proxy(&test).await;
    for (strategy, committed) in
        [("conditional", true), ("pessimistic", true), ("skip-locked", true), ("skip-locked", false)]
    {
        let mut trap = third_commit(&proxy, committed);
        let experiment = WorkloadExperiment {
            sizes: Sizes { jobs: Some(10), ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::Queue, strategy, 1, 5)
        };
        let outcome = run_with_trap(&db, experiment, &mut trap).await;
        assert_eq!(outcome.acknowledged, 4, "ten jobs: no claim is refused: {outcome:#?}");
        let done = 4 + u64::from(committed);
        let detail = format!("every job ran at most once: {done} of 10 done exactly once, {} pending", 10 - done);
        assert_eq!(outcome.invariant.detail, detail, "{strategy}, committed {committed}: {outcome:#?}");
    }
}

racelab_testkit::on_server_backends!(
    a_purchase_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
    a_transfer_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
    a_doctor_going_off_call_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
    a_booking_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
    a_claim_whose_commit_answer_is_lost_is_in_doubt_and_bounded,
);
