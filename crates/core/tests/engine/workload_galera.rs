//! The workloads across the three nodes of a real MariaDB Galera cluster (`scripts/galera up`): the
//! workers spread over the nodes as the counter's are, certification conflicts (1213) counted and
//! retried by the safe strategies, and the invariant proven on a node that has applied every write.
//! Only the strategies whose racing operations write a common row are asserted to hold: certification
//! compares written rows, and a lock is the node's own.
//!
//! ```sh
//! scripts/galera up && cargo nextest run -p racelab-core -E 'test(/^workload_galera::/)'
//! ```

use std::sync::Arc;

use racelab_core::workload::{Sizes, WorkloadExperiment, WorkloadOutcome};
use racelab_core::{Database, ErrorKind, Workload};
use racelab_testkit::galera::GaleraDb;

async fn connect_all(test: &GaleraDb) -> Vec<Database> {
    assert_eq!(test.nodes(), 3, "these tests need a 3-node cluster: {:?}", test.urls);
    let (a, b, c) = tokio::join!(test.connect(0), test.connect(1), test.connect(2));
    vec![a, b, c]
}

async fn run_across(nodes: &[Database], experiment: WorkloadExperiment) -> WorkloadOutcome {
    experiment.run_on(nodes, &Arc::default()).await.unwrap_or_else(|e| panic!("{} failed: {e}", experiment.strategy))
}

// Six buyers, two per node, of a stock of 12 with a demand of 24: every safe strategy sells exactly the
// stock across the nodes. The race forced on the first purchase makes the nodes certify conflicting
// writes: the losers' 1213 is retried (counted as deadlock), never an oversell.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_safe_strategies_hold_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let mut certified = 0;
    for strategy in ["conditional", "pessimistic", "optimistic", "serializable", "check-constraint"] {
        let experiment =
            WorkloadExperiment { force_race: true, ..WorkloadExperiment::new(Workload::Stock, strategy, 6, 4) };
        let outcome = run_across(&nodes, experiment).await;
        assert_eq!(outcome.nodes.len(), 3, "{strategy}: {outcome:#?}");
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (12, 12, 0), "{strategy}: {outcome:#?}");
        certified += outcome.retried_errors.get(&ErrorKind::Deadlock).copied().unwrap_or(0);
    }
    assert!(certified > 0, "no certification conflict in five raced runs across three nodes");
}

// The naive read-check-write across nodes oversells: all six buyers read the stock before their first
// write, and ten purchases each give the overwrites many more chances (never enough to sell out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_naive_oversells_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let experiment = WorkloadExperiment {
        force_race: true,
        sizes: Sizes { stock: Some(100), ..Sizes::default() },
        ..WorkloadExperiment::new(Workload::Stock, "naive", 6, 10)
    };
    let outcome = run_across(&nodes, experiment).await;
    // Galera certifies some of the conflicting writes away (1213, not retried by naive); on one node
    // the writes queue on the row lock and overwrite each other (MDEV-38977): units oversold.
    assert_eq!(outcome.invariant.held, Some(false), "{outcome:#?}");
    assert_eq!(outcome.acknowledged + outcome.failed, 60, "{outcome:#?}");
}

// Six workers, two per node, moving money between four accounts: every safe strategy conserves it
// across the nodes, each certification conflict (1213) retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_safe_strategies_conserve_money_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    for strategy in ["pessimistic-unordered", "pessimistic", "conditional", "optimistic", "serializable"] {
        let experiment = WorkloadExperiment {
            force_race: true,
            sizes: Sizes { accounts: 4, ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::Transfer, strategy, 6, 5)
        };
        let outcome = run_across(&nodes, experiment).await;
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.failed, outcome.in_doubt), (0, 0), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.acknowledged + outcome.refused, 30, "{strategy}: {outcome:#?}");
    }
}

/// The certification conflicts (1213, counted as deadlocks) an outcome's workers retried.
fn certified(outcome: &WorkloadOutcome) -> u64 {
    outcome.retried_errors.get(&ErrorKind::Deadlock).copied().unwrap_or(0)
}

// Six workers, two per node, three shifts of four doctors: `materialized` writes the shift's count row
// with every request, so two nodes' requests of one shift always conflict in certification (1213,
// retried) and every shift stays covered.
//
// `pessimistic` and `serializable` are not asserted to hold here: their locks (FOR UPDATE, SERIALIZABLE's
// shared read locks) are the node's own, and two doctors of a shift write different rows, which
// certification does not compare. Whether the shift stays covered is then timing: the replicated write
// aborts the other node's lock holder (a brute-force abort, retried) only if it arrives before that one
// commits. Measured on a private cluster: `pessimistic` left a shift uncovered in 3 of 10 such runs,
// `serializable` (two doctors on two nodes, raced) in 8 of 10. A run across nodes reports them unsafe
// (the test after this one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oncall_materialized_keeps_someone_on_call_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let experiment =
        WorkloadExperiment { force_race: true, ..WorkloadExperiment::new(Workload::OnCall, "materialized", 6, 4) };
    let outcome = run_across(&nodes, experiment).await;
    assert_eq!(outcome.nodes.len(), 3, "{outcome:#?}");
    assert_eq!(outcome.invariant.held, Some(true), "{outcome:#?}");
    assert_eq!((outcome.failed, outcome.in_doubt), (0, 0), "{outcome:#?}");
    assert_eq!(outcome.acknowledged + outcome.refused, 24, "{outcome:#?}");
    assert!(certified(&outcome) > 0, "no certification conflict among six workers on three shifts: {outcome:#?}");
}

// The strategies that are safe on one node only (oncall's `pessimistic` and `serializable`, booking's
// `serializable`) are reported unsafe when the workers write through three nodes, so a shift left
// uncovered there is the finding, not a failed run; the same run through one node of the same cluster
// reports them safe and holds (there the locks are everyone's). Every operation is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strategies_safe_on_one_node_only_are_reported_unsafe_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let runs =
        [(Workload::OnCall, "pessimistic"), (Workload::OnCall, "serializable"), (Workload::Booking, "serializable")];
    for (workload, strategy) in runs {
        let experiment = WorkloadExperiment {
            force_race: true,
            sizes: Sizes { rooms: 1, slots: 4, ..Sizes::default() },
            ..WorkloadExperiment::new(workload, strategy, 6, 4)
        };
        let across = run_across(&nodes, experiment.clone()).await;
        assert_eq!(across.nodes.len(), 3, "{workload} {strategy}: {across:#?}");
        assert!(!across.safe && !across.safe_strategy_broke_invariant(), "{workload} {strategy}: {across:#?}");
        assert_eq!((across.failed, across.in_doubt), (0, 0), "{workload} {strategy}: {across:#?}");
        assert_eq!(across.acknowledged + across.refused, 24, "{workload} {strategy}: {across:#?}");

        let one_node = run_across(&nodes[..1], experiment).await;
        assert!(one_node.safe, "{workload} {strategy}: {one_node:#?}");
        assert_eq!(one_node.invariant.held, Some(true), "{workload} {strategy}: {one_node:#?}");
    }
}

// Six workers, two per node, booking one room of four slots, every first booking of the same slot:
// `unique` (the unique key is a certification key) and `pessimistic` (every booking writes the room's
// row) book each slot once across the nodes, the others refused, the losers' 1213 retried.
// (`serializable` is not asserted: its read locks are the node's own and two bookings insert different
// rows, as oncall's above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_safe_strategies_never_double_book_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let mut conflicts = 0;
    for strategy in ["unique", "pessimistic"] {
        let experiment = WorkloadExperiment {
            force_race: true,
            sizes: Sizes { rooms: 1, slots: 4, ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::Booking, strategy, 6, 4)
        };
        let outcome = run_across(&nodes, experiment).await;
        assert_eq!(outcome.nodes.len(), 3, "{strategy}: {outcome:#?}");
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.failed, outcome.in_doubt), (0, 0), "{strategy}: {outcome:#?}");
        assert_eq!(outcome.acknowledged + outcome.refused, 24, "{strategy}: {outcome:#?}");
        assert!((1..=4).contains(&outcome.acknowledged), "{strategy}: {outcome:#?}");
        conflicts += certified(&outcome);
    }
    assert!(conflicts > 0, "no certification conflict in two runs of 24 bookings of 4 slots across three nodes");
}

// Six workers, two per node, claiming from a queue of twelve jobs: every safe strategy runs each job
// exactly once across the nodes. Every claim writes the job's row, so two nodes' claims of one job
// conflict in certification (SKIP LOCKED skips only its own node's locks) and the loser retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_safe_strategies_run_each_job_once_across_three_nodes() {
    let test = GaleraDb::create().await;
    let nodes = connect_all(&test).await;
    let mut conflicts = 0;
    for strategy in ["conditional", "pessimistic", "skip-locked"] {
        let experiment = WorkloadExperiment {
            force_race: true,
            sizes: Sizes { jobs: Some(12), ..Sizes::default() },
            ..WorkloadExperiment::new(Workload::Queue, strategy, 6, 4)
        };
        let outcome = run_across(&nodes, experiment).await;
        assert_eq!(outcome.nodes.len(), 3, "{strategy}: {outcome:#?}");
        assert_eq!(outcome.invariant.held, Some(true), "{strategy}: {outcome:#?}");
        assert_eq!((outcome.acknowledged, outcome.refused, outcome.failed), (12, 12, 0), "{strategy}: {outcome:#?}");
        conflicts += certified(&outcome);
    }
    assert!(conflicts > 0, "no certification conflict in three runs of 24 claims of 12 jobs across three nodes");
}
