//! The accounting and the verdict on made-up counts, and how workers spread over nodes.

use super::outcome::Outcome;
use super::run::workers_on_node;
use super::stats::{NodeStats, WorkerStats, kind_index};
use super::*;
use crate::db::{Backend, Counter, LockMode};
use crate::error::ErrorKind;

fn outcome_with(
    strategy: Strategy,
    acknowledged: u64,
    failed: &[(ErrorKind, u64)],
    in_doubt: u64,
    before: (i64, i64),
    after: Result<(i64, i64), ErrorKind>,
) -> Outcome {
    let mut stats = WorkerStats::new();
    stats.acknowledged = acknowledged;
    stats.in_doubt = in_doubt;
    for (kind, n) in failed {
        stats.failed += n;
        stats.errors[kind_index(*kind)] += n;
    }
    let experiment = Experiment::new(strategy, 2, stats.expected() / 2);
    let counter = |(like, version)| Counter { like, version };
    let node = NodeStats { node: 1, workers: 2, stats };
    Outcome::account(&experiment, Backend::Postgres, 1, counter(before), after.map(counter), vec![node])
}

fn outcome(
    strategy: Strategy,
    acknowledged: u64,
    failed: &[(ErrorKind, u64)],
    before: (i64, i64),
    after: (i64, i64),
) -> Outcome {
    outcome_with(strategy, acknowledged, failed, 0, before, Ok(after))
}

#[test]
fn lost_updates_are_acknowledged_minus_actual() {
    // Naive: 50 writes landed (50 versions), but the counter moved by 27.
    let o = outcome(Strategy::Naive, 50, &[], (0, 0), (27, 50));
    assert_eq!((o.actual, o.lost, o.foreign_writes), (Some(27), Some(23), 0));
    assert!(o.verdict().starts_with("lost 23 of 50 updates"), "{}", o.verdict());
    assert_eq!(o.invariant_holds(), Some(false));
}

#[test]
fn writes_that_are_not_ours_void_the_lost_figure() {
    let o = outcome(Strategy::Atomic, 400, &[], (0, 0), (405, 405));
    assert_eq!((o.foreign_writes, o.lost), (5, None));
    assert!(o.verdict().contains("another writer changed post 1"), "{}", o.verdict());
    // A reset during the run moves the version backwards: also not ours.
    let o = outcome(Strategy::Atomic, 400, &[], (0, 7), (100, 100));
    assert!(o.foreign_writes < 0 && o.lost.is_none(), "{o:?}");
}

#[test]
fn an_in_doubt_commit_that_landed_is_counted_as_such_not_as_a_negative_loss() {
    let o = outcome_with(Strategy::Atomic, 9, &[], 1, (0, 0), Ok((10, 10)));
    assert_eq!((o.foreign_writes, o.lost, o.in_doubt, o.in_doubt_committed), (0, Some(0), 1, Some(1)));
    assert_eq!((o.expected, o.failed), (10, 0));
    assert_eq!(o.invariant_holds(), Some(true));
    assert!(o.verdict().contains("1 in doubt") && o.verdict().contains("1 of them committed"), "{}", o.verdict());
}

#[test]
fn an_in_doubt_commit_that_did_not_land_keeps_the_proof() {
    let o = outcome_with(Strategy::Pessimistic(LockMode::Wait), 9, &[], 1, (0, 0), Ok((9, 9)));
    assert_eq!((o.lost, o.in_doubt_committed), (Some(0), Some(0)));
    assert_eq!(o.invariant_holds(), Some(true));
}

#[test]
fn a_lost_update_hidden_behind_an_in_doubt_commit_is_still_found() {
    // 10 writes landed (9 acknowledged, the in-doubt one too), the counter moved by 9.
    let o = outcome_with(Strategy::Naive, 9, &[], 1, (0, 0), Ok((9, 10)));
    assert_eq!(o.lost, Some(1));
}

#[test]
fn an_unreadable_counter_keeps_what_was_counted() {
    let o =
        outcome_with(Strategy::Atomic, 7, &[(ErrorKind::PoolTimeout, 3)], 2, (0, 0), Err(ErrorKind::ConnectionLost));
    assert_eq!((o.actual, o.lost, o.like_after, o.counter_error), (None, None, None, Some(ErrorKind::ConnectionLost)));
    assert_eq!((o.acknowledged, o.failed, o.in_doubt, o.expected), (7, 3, 2, 12));
    assert_eq!(o.invariant_holds(), None);
    assert!(o.database_unavailable());
    assert!(
        o.verdict().starts_with("the counter could not be read after the run (connection_lost)"),
        "{}",
        o.verdict()
    );
}

#[test]
fn only_stale_versions_and_certification_conflicts_count_as_dropped() {
    let failed = [(ErrorKind::StaleVersion, 2), (ErrorKind::Deadlock, 1), (ErrorKind::PoolTimeout, 1)];
    let o = outcome(Strategy::VersionedNoRetry, 7, &failed, (0, 0), (7, 7));
    assert_eq!((o.dropped, o.failed), (3, 4));
    assert!(
        o.verdict().contains("4 increments gave up (deadlock: 1, stale_version: 2, pool_timeout: 1)"),
        "{}",
        o.verdict()
    );
}

#[test]
fn dropped_increments_are_the_no_retry_failures() {
    let o = outcome(Strategy::VersionedNoRetry, 7, &[(ErrorKind::StaleVersion, 3)], (0, 0), (7, 7));
    assert_eq!((o.dropped, o.lost, o.failed), (3, Some(0), 3));
    assert!(o.verdict().starts_with("dropped 3 of 10 increments"), "{}", o.verdict());
}

#[test]
fn refused_by_locks_means_nothing_succeeded_and_every_failure_was_a_lock() {
    let o = outcome(Strategy::Pessimistic(LockMode::NoWait), 0, &[(ErrorKind::LockNotAvailable, 4)], (0, 0), (0, 0));
    assert!(o.refused_by_locks());
    let o = outcome(Strategy::Pessimistic(LockMode::NoWait), 1, &[(ErrorKind::LockNotAvailable, 3)], (0, 0), (1, 1));
    assert!(!o.refused_by_locks());
}

#[test]
fn retries_are_counted_even_when_a_dead_node_left_increments_unattempted() {
    let mut stats = WorkerStats::new();
    stats.acknowledged = 10;
    stats.attempts = 14;
    stats.retried[kind_index(ErrorKind::Deadlock)] = 4;
    stats.fail_unattempted(ErrorKind::PoolTimeout, 90);
    let experiment = Experiment::new(Strategy::Atomic, 1, 100);
    let node = NodeStats { node: 1, workers: 1, stats };
    let counter = Counter { like: 10, version: 10 };
    let o = Outcome::account(&experiment, Backend::MySql, 1, Counter { like: 0, version: 0 }, Ok(counter), vec![node]);
    assert_eq!((o.expected, o.retries, o.nodes[0].retries), (100, 4, 4));
}

#[test]
fn workers_spread_round_robin_over_nodes() {
    let spread: Vec<usize> = (0..3).map(|node| workers_on_node(7, 3, node)).collect();
    assert_eq!(spread, [3, 2, 2]);
    assert_eq!(workers_on_node(2, 3, 2), 0);
}

#[test]
fn a_failover_the_run_went_through_is_accounted_for_and_a_lost_acknowledgement_is_not() {
    let failover = |failed_over, acknowledged_lost| failover::Failover {
        failed_over,
        timeline_before: Some(1),
        timeline_after: Some(2),
        host_before: Some(1),
        host_after: Some(2),
        write_gap_ms: 8000.0,
        failed_in_gap: 0,
        in_doubt_in_gap: 8,
        acknowledged_lost,
    };
    // 8 in doubt at the kill, 4 of which committed: the counter is between acknowledged and
    // acknowledged + in doubt, on the new primary.
    let mut o = outcome_with(Strategy::Atomic, 100, &[], 8, (0, 0), Ok((104, 104)));
    assert!(o.database_unavailable(), "in-doubt increments: the database went away for a while");
    o.failover = Some(failover(true, Some(0)));
    assert!(o.survived_failover() && o.lost_at_failover().is_none(), "{o:?}");
    o.failover = Some(failover(true, Some(3)));
    assert_eq!((o.survived_failover(), o.lost_at_failover()), (false, Some(3)));
    o.failover = Some(failover(false, Some(0)));
    assert!(!o.survived_failover(), "no promotion: an outage, not a failover");
    o.failover = Some(failover(true, Some(0)));
    o.actual = None;
    assert!(!o.survived_failover(), "the counter unread proves nothing");
}
