//! What every workload's tests do with a run: run it, and check that every operation is accounted for.

use racelab_core::Database;
use racelab_core::workload::{WorkloadExperiment, WorkloadOutcome};

/// Runs `experiment` on `db`; a run that cannot start fails the test, naming its workload and strategy.
pub async fn run(db: &Database, experiment: WorkloadExperiment) -> WorkloadOutcome {
    experiment
        .run(db)
        .await
        .unwrap_or_else(|e| panic!("{} {} failed to run: {e}", experiment.workload, experiment.strategy))
}

/// Every one of the workers x operations ended as exactly one of acknowledged, refused, failed or in
/// doubt, and the invariant checked is the workload's.
pub fn assert_accounted(outcome: &WorkloadOutcome) {
    let counted = outcome.acknowledged + outcome.refused + outcome.failed + outcome.in_doubt;
    assert_eq!(counted, outcome.expected, "{outcome:#?}");
    assert_eq!(outcome.expected, outcome.workers as u64 * outcome.operations, "{outcome:#?}");
    assert_eq!(outcome.invariant.name, outcome.workload.invariant(), "{outcome:#?}");
}
