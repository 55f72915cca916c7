//! A PostgreSQL primary and two streaming replicas under Patroni (`scripts/pgha up`): a multi-host URL
//! finds the primary whichever host comes first and again after a failover, a replica is named as
//! such, and the outcome's `failover` part accounts for what a failover did to a run.
//!
//! One cluster for the suite; these tests change it (switch over, kill the primary, change the
//! replication mode), so they run one at a time (nextest's `pgha` group). The primary is killed (or
//! switched over) from the test once the run's progress shows acknowledged increments, never after a
//! sleep; the run is stopped once it has acknowledged more on the new primary.

use std::sync::Arc;
use std::time::Duration;

use racelab_core::db::{ConnectError, HostState};
use racelab_core::experiment::{Experiment, Progress, StopAfter};
use racelab_core::{ConnectOptions, Database, DatabaseUrl, Outcome, Strategy};
use racelab_testkit::pgha::{self, PghaDb};

/// Waits until `progress` shows more than `than` acknowledged increments (bounded: a run that
/// stopped acknowledging fails the test).
async fn acknowledged_past(progress: &Progress, than: u64, what: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = progress.snapshot().acknowledged;
        if seen > than {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no acknowledged increment {what} in 60 s: {:?}",
            progress.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn connect(url: &str) -> Result<Database, ConnectError> {
    let mut options = ConnectOptions::new(DatabaseUrl::parse(url).expect("URL parses"));
    options.max_connections = 10;
    options.acquire_timeout = Duration::from_secs(30);
    Database::connect(options).await
}

/// `atomic` at 8 workers on `url` until stopped: `disrupt` runs (a kill, a switchover) once 200
/// increments are acknowledged, and the run is stopped once 200 more are acknowledged after it.
async fn run_across(url: &str, disrupt: &[&str]) -> Outcome {
    let db = connect(url).await.expect("connecting through the multi-host URL");
    let mut experiment = Experiment::new(Strategy::Atomic, 8, 1);
    experiment.stop = StopAfter::Duration { warmup: Duration::ZERO, measure: Duration::from_secs(240) };
    let progress = Arc::new(Progress::default());
    let run = tokio::spawn({
        let progress = progress.clone();
        async move { experiment.run_on(std::slice::from_ref(&db), &progress).await }
    });
    acknowledged_past(&progress, 200, "before the failover").await;
    pgha::run(disrupt).await;
    // Every increment acknowledged from now on was acknowledged by the new primary.
    let after = pgha::primary().await;
    let from = progress.snapshot().acknowledged;
    acknowledged_past(&progress, from + 200, &format!("on the new primary (node {after})")).await;
    progress.stop();
    run.await.expect("the run's task").expect("the run")
}

/// The figures every outcome across a failover must satisfy, whatever was lost.
fn assert_accounted(outcome: &Outcome) -> u64 {
    let failover = outcome.failover.as_ref().expect("a multi-host URL's outcome has a failover part");
    assert!(failover.failed_over, "{failover:?}");
    let (Some(before), Some(after)) = (failover.timeline_before, failover.timeline_after) else {
        panic!("timelines unread: {failover:?}")
    };
    assert!(after > before, "{failover:?}");
    assert_ne!(failover.host_before, failover.host_after, "{failover:?}");
    assert!(failover.write_gap_ms > 0.0, "{failover:?}");
    assert_eq!(outcome.expected, outcome.acknowledged + outcome.failed + outcome.in_doubt, "{outcome:?}");
    let actual = outcome.actual.expect("the counter is read on the new primary");
    let lost = failover.acknowledged_lost.expect("counted once the counter is read");
    // Whatever was lost is counted: what the row holds plus what is missing covers every acknowledged
    // increment, and nothing is there that the in-doubt ones cannot explain.
    assert!(actual + lost as i64 >= outcome.acknowledged as i64, "{outcome:?}");
    assert!(actual <= (outcome.acknowledged + outcome.in_doubt) as i64, "{outcome:?}");
    assert!(failover.in_doubt_in_gap <= outcome.in_doubt && failover.failed_in_gap <= outcome.failed, "{failover:?}");
    lost
}

/// The primary's node, and the cluster whole again (the killed node back as a replica).
async fn rejoin(killed: &str) {
    pgha::run(&["rejoin", killed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgha_finds_the_primary_whichever_host_comes_first_and_names_a_replica() {
    pgha::run(&["up"]).await;
    let test = PghaDb::create().await;
    let primary = pgha::primary().await;
    let replicas = pgha::replicas().await;
    let address = |n: usize| pgha::node_addresses()[n - 1].clone();
    let name = test.name();

    // Replicas first, then a closed port, then the primary: the primary is host 4.
    let url = format!(
        "postgres://postgres@{},{},127.0.0.1:1,{}/{name}?target_session_attrs=read-write",
        address(replicas[0]),
        address(replicas[1]),
        address(primary)
    );
    let db = connect(&url).await.expect("the primary is found");
    assert_eq!(db.host_state(), Some(HostState::Serving(3)));
    assert_eq!(db.read_only().await.expect("asked"), Some(false));
    db.create_post().await.expect("a write goes to the primary");
    db.close().await;

    // `primary` is honoured too.
    let url = format!(
        "postgres://postgres@{},{}/{name}?target_session_attrs=primary",
        address(replicas[0]),
        address(primary)
    );
    assert_eq!(connect(&url).await.expect("found").host_state(), Some(HostState::Serving(1)));

    // Only replicas: no primary, each host's answer named.
    let url = format!(
        "postgres://postgres@{},{}/{name}?target_session_attrs=read-write",
        address(replicas[0]),
        address(replicas[1])
    );
    let err = connect(&url).await.expect_err("no host accepts writes").to_string();
    assert!(err.contains("no host of") && err.contains("accepts writes (target_session_attrs=read-write)"), "{err}");
    assert!(err.contains(&format!("host 1 ({}): read-only (a replica)", address(replicas[0]))), "{err}");
    assert!(err.contains(&format!("host 2 ({}): read-only (a replica)", address(replicas[1]))), "{err}");

    // One replica, named alone: refused as such, not as failed migrations.
    let err = connect(&test.node_url(replicas[0])).await.expect_err("a replica is refused");
    assert!(matches!(err, ConnectError::ReadOnlyReplica { .. }), "{err}");
    assert!(err.to_string().contains("is a read-only replica (in recovery)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgha_a_planned_switchover_loses_nothing_even_with_asynchronous_replication() {
    pgha::run(&["up"]).await;
    let test = PghaDb::create().await;
    let outcome = run_across(&test.url, &["switchover"]).await;
    let lost = assert_accounted(&outcome);
    assert_eq!(lost, 0, "{outcome:?}");
    assert_eq!(outcome.invariant_holds(), Some(true), "{outcome:?}");
    assert!(outcome.verdict().contains("every acknowledged increment kept"), "{}", outcome.verdict());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgha_a_killed_primary_under_synchronous_replication_loses_nothing_acknowledged() {
    pgha::run(&["up", "--sync"]).await;
    let test = PghaDb::create().await;
    let killed_before = pgha::primary().await;
    let outcome = run_across(&test.url, &["kill-primary"]).await;
    rejoin(&killed_before.to_string()).await;
    pgha::run(&["up"]).await;
    let lost = assert_accounted(&outcome);
    assert_eq!(lost, 0, "{outcome:?}");
    // The claim of synchronous replication.
    assert_eq!(outcome.invariant_holds(), Some(true), "{outcome:?}");
    let failover = outcome.failover.as_ref().expect("failover part");
    assert!(failover.write_gap_ms >= 1000.0, "a killed primary is replaced after its leader key expires: {failover:?}");
    let verdict = outcome.verdict();
    assert!(verdict.contains("every acknowledged increment kept: no write acknowledged for"), "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgha_a_killed_primary_under_asynchronous_replication_gives_figures_that_add_up() {
    pgha::run(&["up"]).await;
    let test = PghaDb::create().await;
    let killed_before = pgha::primary().await;
    let outcome = run_across(&test.url, &["kill-primary"]).await;
    rejoin(&killed_before.to_string()).await;
    // The loss is measured, not asserted: it depends on what the replicas had received at the kill.
    let lost = assert_accounted(&outcome);
    let verdict = outcome.verdict();
    if lost > 0 {
        assert!(verdict.contains("asynchronous replication lost"), "{verdict}");
    } else {
        assert!(verdict.contains("every acknowledged increment kept"), "{verdict}");
    }
}
